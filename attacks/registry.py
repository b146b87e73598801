"""Attack names -> classes, with the metadata `recrobust list attacks` shows.

Built-ins are kept as import paths (registered by light catalog modules, one per threat
model) so that listing does not import TextAttack (slow, needs NLTK data). Plug-ins
register through the entry-point group ``recrobust.attacks`` (name = attack name, value =
``module:Class``, an ``attacks.base.Attack`` subclass whose ``threat_model``,
``description`` and ``needs`` class attributes fill the listing).
"""

from __future__ import annotations

from attacks.base import THREAT_MODELS, Attack
from attacks.poisoning.base import PoisoningAttack
from attacks.promotion.base import PromotionAttack
from benchmark.registry import Registry

ENTRY_POINT_GROUP = "recrobust.attacks"

# Light modules holding only register(...) calls, one per threat model (no heavy imports).
CATALOGS = ("attacks.text.catalog", "attacks.profile.catalog", "attacks.embedding.catalog",
            "attacks.poisoning.catalog", "attacks.promotion.catalog")


def _check(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, (Attack, PoisoningAttack, PromotionAttack))):
        raise ValueError(f"attack {name!r} is not an attacks.base.Attack, attacks.poisoning.base.PoisoningAttack "
                         "or attacks.promotion.base.PromotionAttack subclass")


REGISTRY = Registry("attack", ENTRY_POINT_GROUP, catalogs=CATALOGS, check=_check)


def register(name: str, path: str, threat_model: str, applies_to: str, needs: str = "-") -> None:
    REGISTRY.register(name, path, threat_model=threat_model, applies_to=applies_to, needs=needs)


def resolve(name: str):
    return REGISTRY.resolve(name)


def create(name: str, **options):
    return resolve(name)(**options)


def info(name: str) -> dict:
    """{"name", "threat_model", "applies_to", "needs", "origin"}; a plug-in is imported to
    read them from its class."""
    entry = REGISTRY.entry(name)
    if not entry.plugin:
        return {"name": name, **entry.info, "origin": entry.origin}
    cls = REGISTRY.resolve(name)
    if cls.threat_model not in THREAT_MODELS:
        raise ValueError(f"attack plug-in {name!r} ({entry.path}): threat_model must be one of {THREAT_MODELS}, "
                         f"got {cls.threat_model!r}")
    return {"name": name, "threat_model": cls.threat_model, "applies_to": cls.description or "-",
            "needs": ", ".join(cls.needs) or "-", "origin": entry.origin}


def threat_model(name: str) -> str:
    return info(name)["threat_model"]


def listing() -> list[dict]:
    rows = []
    for name in REGISTRY.names():
        try:
            rows.append(info(name))
        except ValueError as err:  # a broken plug-in is listed with its error, not fatal
            rows.append({"name": name, "threat_model": "?", "applies_to": f"error: {err}", "needs": "-",
                         "origin": REGISTRY.entry(name).origin})
    return sorted(rows, key=lambda r: (r["threat_model"], r["name"]))
