"""Defense names -> classes (lazy import paths, as for attacks and models)."""

from __future__ import annotations

import importlib

# name -> (import path, applies to, description)
DEFENSES: dict[str, tuple[str, str, str]] = {
    "none": ("attacks.defenses.base:NoDefense", "all models", "plain training"),
}


def register(name: str, path: str, applies_to: str, description: str) -> None:
    DEFENSES[name] = (path, applies_to, description)


def _load_catalog() -> None:
    try:
        importlib.import_module("attacks.defenses.catalog")
    except ModuleNotFoundError as err:
        if err.name != "attacks.defenses.catalog":
            raise


def resolve(name: str):
    _load_catalog()
    if name not in DEFENSES:
        raise ValueError(f"unknown defense {name!r}; known: {', '.join(sorted(DEFENSES))}")
    module_name, _, attr = DEFENSES[name][0].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create(name: str, **options):
    return resolve(name)(**options)


def listing() -> list[dict]:
    _load_catalog()
    return [{"name": n, "applies_to": a, "description": d} for n, (p, a, d) in sorted(DEFENSES.items())]
