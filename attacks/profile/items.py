"""Which items an attacker can put into a profile, and where they sit in a model's
item-embedding table: both asked of the model through ``recommenders.base.ItemIndexed``
(``item_ids()``, ``item_rows(ids)``), never by probing its attributes.

Item universe (where swap/insert replacements come from), first that applies:
1. the attack option ``item_pool`` (an explicit list of item ids);
2. ``model.item_ids()`` for an ItemIndexed model: the items the model knows;
3. every item seen in the attacked examples (their candidates and histories).
Each example then draws a seeded sample of ``pool_size`` items from the universe,
leaving out the items already in its history and its own candidates (the attacker edits
the profile, not the candidate list), so the number of queries per step is bounded.

Item rows (for gradient-guided swaps): ``model.item_rows(item_ids)``, the row of each item
in ``embedding_forward``'s item tables (-1 when unknown).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from recommenders.base import ItemIndexed


def model_items(model) -> list[str] | None:
    """The items an ItemIndexed model knows (None for any other model)."""
    if not isinstance(model, ItemIndexed):
        return None
    return [str(i) for i in model.item_ids()]


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
    return isinstance(model, ItemIndexed)


def item_rows(model, item_ids: Sequence[str]) -> np.ndarray:
    """Row of each item in the model's "item" embedding tensor; -1 when the model does not know it."""
    if not isinstance(model, ItemIndexed):
        raise TypeError(f"{getattr(model, 'name', type(model).__name__)!r} is not recommenders.base.ItemIndexed "
                        "(item_ids(), item_rows(ids)): it has no item-row map")
    return np.asarray(model.item_rows(list(item_ids)), dtype=np.int64)
