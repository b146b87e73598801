"""ID-based recommenders (popularity, ItemKNN, BPR-MF, SASRec)."""
