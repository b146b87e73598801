"""Defenses: training modes any compatible recommender can use (see attacks.defenses.registry)."""
