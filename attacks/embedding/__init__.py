"""Embedding attacks: FGSM / PGD on the embeddings a differentiable recommender exposes
through ``embedding_forward`` (item embeddings for MF/SASRec, input token embeddings for
LLM models), with a per-row relative L2 budget and an epsilon grid (robustness curve)."""
