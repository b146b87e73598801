"""Name -> recommender class: built-ins, installed plug-ins, and a user's ``module:Class``.

Built-ins are listed lazily as import paths so that ``recrobust list models`` does not
import torch/transformers. Plug-ins register through the entry-point group
``recrobust.recommenders`` (name = model name, value = ``module:Class``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "recrobust.recommenders"

BUILTIN: dict[str, str] = {
    "popularity": "recommenders.classic.popularity:Popularity",
    "itemknn": "recommenders.classic.itemknn:ItemKNN",
    "bpr-mf": "recommenders.classic.bpr_mf:BPRMF",
    "sasrec": "recommenders.classic.sasrec:SASRec",
    "cross-encoder": "recommenders.llm.cross_encoder:CrossEncoder",
    "two-tower": "recommenders.llm.two_tower:TwoTower",
    "causal-lm": "recommenders.llm.causal_lm:CausalLM",
}


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """All model names -> import path (built-ins first; a plug-in cannot shadow a built-in)."""
    names = dict(_plugins())
    names.update(BUILTIN)
    return names


def _import(path: str):
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{path!r}: expected 'module.path:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{path!r}: cannot import module {module_name!r} ({err})") from err
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{path!r}: module {module_name!r} has no attribute {attr!r}")
    return obj


def resolve_class(name: str, fallback: str | None = None):
    """A registered name, an entry-point plug-in, or ``module.path:ClassName``."""
    from recommenders.base import Recommender

    known = available()
    if name in known:
        cls = _import(known[name])
    elif ":" in name:
        cls = _import(name)
    elif fallback:
        cls = _import(fallback)
    else:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(known))}, or give 'module.path:ClassName'")
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ValueError(f"{name!r} is not a recommenders.base.Recommender subclass")
    return cls


def create(name: str, **options):
    return resolve_class(name)(**options)
