"""Poisoning attacks for `recrobust list attacks` (import paths only: no heavy imports)."""

from attacks.registry import register

_ALL = "every model (retrained on train + fake users)"

register("random", "attacks.poisoning.heuristics:RandomAttack", "poisoning", _ALL)
register("average", "attacks.poisoning.heuristics:AverageAttack", "poisoning", _ALL)
register("bandwagon", "attacks.poisoning.heuristics:BandwagonAttack", "poisoning", _ALL)
register("segment", "attacks.poisoning.heuristics:SegmentAttack", "poisoning", _ALL)
register("pga", "attacks.poisoning.pga:PGAAttack", "poisoning", _ALL + "; trains its own WRMF surrogate")
