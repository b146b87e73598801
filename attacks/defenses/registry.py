"""Defense names -> classes (lazy import paths, as for attacks and models).

Plug-ins register through the entry-point group ``recrobust.defenses`` (name = defense
name, value = ``module:Class``, an ``attacks.defenses.base.Defense`` subclass whose
``description`` and ``applies_to`` class attributes fill `recrobust list defenses`).
"""

from __future__ import annotations

from attacks.defenses.base import Defense
from benchmark.registry import Registry

ENTRY_POINT_GROUP = "recrobust.defenses"


def _check(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Defense)):
        raise ValueError(f"defense {name!r} is not an attacks.defenses.base.Defense subclass")


REGISTRY = Registry("defense", ENTRY_POINT_GROUP, catalogs=("attacks.defenses.catalog",), check=_check)


def register(name: str, path: str, applies_to: str, description: str) -> None:
    REGISTRY.register(name, path, applies_to=applies_to, description=description)


register("none", "attacks.defenses.base:NoDefense", "all models", "plain training")


def resolve(name: str):
    return REGISTRY.resolve(name)


def create(name: str, **options):
    return resolve(name)(**options)


def info(name: str) -> dict:
    entry = REGISTRY.entry(name)
    if not entry.plugin:
        return {"name": name, **entry.info, "origin": entry.origin}
    cls = REGISTRY.resolve(name)
    return {"name": name, "applies_to": getattr(cls, "applies_to", "") or "-",
            "description": cls.description or "-", "origin": entry.origin}


def listing() -> list[dict]:
    rows = []
    for name in REGISTRY.names():
        try:
            rows.append(info(name))
        except ValueError as err:
            rows.append({"name": name, "applies_to": "?", "description": f"error: {err}",
                         "origin": REGISTRY.entry(name).origin})
    return rows
