"""Defenses for `recrobust list defenses` (import paths only: no heavy imports here).
What each one means for each kind of model is in its module docstring."""

from attacks.defenses.registry import register

_PKG = "attacks.defenses"

register("adv-augment", f"{_PKG}.adv_augment:AdvAugment",
         "all but popularity (text attacks: cross-encoder, two-tower; profile attacks: all)",
         "rounds of attack -> add adversarial examples (true labels) -> fine-tune -> clean/robust curve")
register("embedding-at", f"{_PKG}.embedding_at:EmbeddingAT",
         "bpr-mf, sasrec (APR); cross-encoder, two-tower (PGD/FreeLB on token embeddings)",
         "adversarial training in embedding space, ||delta_r|| <= epsilon ||e_r||")
register("profile-augment", f"{_PKG}.profile_augment:ProfileAugment",
         "all but popularity (examples, or pseudo-user sequences for interaction-trained models)",
         "random swap/insert/delete/rating-flip edits (k <= budget) as data augmentation")
register("detect-and-drop", f"{_PKG}.detect_drop:DetectAndDrop", "all models (drops flagged users' training rows)",
         "fake-user detector (pca, rdma, degsim) flags the top 5% of users; their training rows are removed")
