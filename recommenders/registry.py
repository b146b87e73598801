"""Name -> recommender class: built-ins, installed plug-ins, and a user's ``module:Class``.

Built-ins are listed lazily as import paths so that ``recrobust list models`` does not
import torch/transformers. Plug-ins register through the entry-point group
``recrobust.recommenders`` (name = model name, value = ``module:Class``); see
benchmark.registry for the pattern every extension point shares.
"""

from __future__ import annotations

from benchmark.registry import import_path
from recommenders.base import MODELS

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


REGISTRY = MODELS  # one registration line per built-in: add it to BUILTIN
for _name, _path in BUILTIN.items():
    REGISTRY.register(_name, _path)


def available() -> dict[str, str]:
    """All model names -> import path (a plug-in cannot shadow a built-in)."""
    return {name: entry.path for name, entry in sorted(REGISTRY.entries().items())}


def _import(path: str):
    return import_path(path)


def resolve_class(name: str, fallback: str | None = None):
    """A registered name, an entry-point plug-in, or ``module.path:ClassName``."""
    return REGISTRY.resolve(name, fallback=fallback)


def class_path(cls) -> str:
    """'module:QualName' of a class (what a saved model stores)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def create(name: str, **options):
    return resolve_class(name)(**options)
