"""Text-based recommenders over rendered profiles (cross-encoder, two-tower)."""
