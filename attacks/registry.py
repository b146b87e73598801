"""Attack names -> classes, with the metadata `recrobust list attacks` shows.

Kept as import paths so that listing does not import TextAttack (slow, needs NLTK data).
"""

from __future__ import annotations

import importlib

# name -> (import path, threat model, applies to, needs)
ATTACKS: dict[str, tuple[str, str, str, str]] = {}


def register(name: str, path: str, threat_model: str, applies_to: str, needs: str = "-") -> None:
    ATTACKS[name] = (path, threat_model, applies_to, needs)


# Light modules holding only register(...) calls, one per threat model (no heavy imports).
CATALOGS = ("attacks.text.catalog", "attacks.profile.catalog", "attacks.embedding.catalog",
            "attacks.poisoning.catalog")


def _load_catalogs() -> None:
    for module in CATALOGS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


def resolve(name: str):
    _load_catalogs()
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")
    module_name, _, attr = ATTACKS[name][0].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create(name: str, **options):
    return resolve(name)(**options)


def listing() -> list[dict]:
    _load_catalogs()
    return [
        {"name": n, "threat_model": t, "applies_to": a, "needs": d}
        for n, (p, t, a, d) in sorted(ATTACKS.items(), key=lambda kv: (kv[1][1], kv[0]))
    ]
