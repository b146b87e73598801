"""Which items an attacker can put into a profile, and where they sit in a model's
item-embedding table.

Item universe (where swap/insert replacements come from), first that applies:
1. the attack option ``item_pool`` (an explicit list of item ids);
2. ``model.item_ids`` (a sequence, or a method returning one), else ``model.vocab.ids``
   (the classic models' ItemVocab): the items the model knows;
3. every item seen in the attacked examples (their candidates and histories).
Each example then draws a seeded sample of ``pool_size`` items from the universe,
leaving out the items already in its history and its own candidates (the attacker edits
the profile, not the candidate list), so the number of queries per step is bounded.

Models implementing ``recommenders.base.ItemIndexed`` (``item_ids()``, ``item_rows(ids)``;
the torch ID models) answer both questions; the other probes serve plug-ins without it.

Item rows (for gradient-guided swaps): ``model.item_rows(item_ids)`` giving the row of
each item in ``embedding_forward``'s item tables (-1 when unknown), else a mapping
``model.item_index`` {item_id: row}, else ``model.vocab.index(item_id)`` where the
vocabulary's padding / unknown index (``vocab.ids`` absent) reads as unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

import numpy as np


def _vocab(model):
    vocab = getattr(model, "vocab", None)
    return vocab if callable(getattr(vocab, "index", None)) and getattr(vocab, "ids", None) is not None else None


def model_items(model) -> list[str] | None:
    ids = getattr(model, "item_ids", None)
    if callable(ids):
        ids = ids()
    if ids is None and _vocab(model) is not None:
        ids = _vocab(model).ids
    if ids is None:
        return None
    return [str(i) for i in ids]


def universe(model, examples: Sequence, item_pool: Sequence[str] | None = None) -> list[str]:
    if item_pool is not None:
        items = [str(i) for i in item_pool]
    else:
        items = model_items(model)
        if items is None:
            seen: set[str] = set()
            for ex in examples:
                seen.update(ex.candidates)
                seen.update(ex.profile.item_ids())
            items = list(seen)
    return sorted(set(items))


def sample_pool(items: Sequence[str], exclude: set[str], size: int | None, rng: np.random.Generator) -> list[str]:
    """A seeded sample of `size` items not in `exclude` (all of them, shuffled, when size is None)."""
    allowed = [i for i in items if i not in exclude]
    order = rng.permutation(len(allowed))
    if size is not None:
        order = order[:size]
    return [allowed[i] for i in order]


def has_item_rows(model) -> bool:
    return (callable(getattr(model, "item_rows", None)) or isinstance(getattr(model, "item_index", None), Mapping)
            or _vocab(model) is not None)


def item_rows(model, item_ids: Sequence[str]) -> np.ndarray:
    """Row of each item in the model's "item" embedding tensor; -1 when the model does not know it."""
    rows_fn = getattr(model, "item_rows", None)
    if callable(rows_fn):
        return np.asarray(rows_fn(list(item_ids)), dtype=np.int64)
    index = getattr(model, "item_index", None)
    if isinstance(index, Mapping):
        return np.array([int(index.get(i, -1)) for i in item_ids], dtype=np.int64)
    vocab = _vocab(model)
    if vocab is not None:
        known = set(vocab.ids)
        return np.array([int(vocab.index(i)) if i in known else -1 for i in item_ids], dtype=np.int64)
    raise AttributeError("the model exposes no item-row map (item_rows, item_index or vocab)")
