"""Attack battery and defenses. Every attack is a composition (as in TextAttack):
goal function + constraints + transformation + search, run over a trained recommender
and test examples, producing one record per example (attacks.records)."""
