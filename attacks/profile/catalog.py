"""Profile attacks for `recrobust list attacks` (import paths only: no heavy imports)."""

from attacks.registry import register

_MODULE = "attacks.profile.attacks"
_ALL = "every model (black-box, on scores)"

register("profile-swap", f"{_MODULE}:ProfileSwap", "profile", _ALL)
register("profile-insert", f"{_MODULE}:ProfileInsert", "profile", _ALL)
register("profile-delete", f"{_MODULE}:ProfileDelete", "profile", _ALL)
register("rating-flip", f"{_MODULE}:RatingFlip", "profile", _ALL)
register("profile-mix", f"{_MODULE}:ProfileMix", "profile", _ALL)
register("profile-gradient", f"{_MODULE}:ProfileGradient", "profile",
         "differentiable models with item embeddings (bpr-mf, sasrec)")
