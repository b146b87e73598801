"""Embedding (gradient) attacks for `recrobust list attacks` (import paths only)."""

from attacks.registry import register

_MODULE = "attacks.embedding.attacks"
_APPLIES = "differentiable models (bpr-mf, sasrec: item embeddings; cross-encoder, two-tower: token embeddings)"

register("embedding-fgsm", f"{_MODULE}:EmbeddingFGSM", "embedding", _APPLIES)
register("embedding-pgd", f"{_MODULE}:EmbeddingPGD", "embedding", _APPLIES)
