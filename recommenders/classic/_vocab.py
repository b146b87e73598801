"""Item vocabulary and profile encoding shared by the ID-based recommenders.

Index 0 is reserved for padding *and* for items the model never saw in training
(unknown items). The rule every classic model follows:

- an unknown item in a profile's history is dropped (it carries no learned signal);
- an unknown candidate maps to index 0, whose embedding is masked to zero and whose
  bias is zero, so it gets a neutral score (for the preference task: the base rate the
  model learned from the global bias) instead of an error.

Ratings enter the models as buckets: 0 = no rating (implicit feedback / NaN), otherwise
the rating rounded to half stars on a 0.5..5 scale, i.e. buckets 1..10 (ML-100K's
1..5 stars are buckets 2, 4, 6, 8, 10). Ratings outside 0.5..5 are clipped.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from benchmark.profiles import Profile

PAD = 0
N_RATING_BUCKETS = 11


def rating_bucket(rating: float) -> int:
    if rating is None or (isinstance(rating, float) and math.isnan(rating)):
        return 0
    return int(min(max(round(2.0 * float(rating)), 1), N_RATING_BUCKETS - 1))


def rating_buckets(ratings: np.ndarray) -> np.ndarray:
    """Vectorised `rating_bucket` for an array of ratings (NaN -> 0)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    out = np.clip(np.rint(2.0 * np.nan_to_num(ratings, nan=0.0)), 1, N_RATING_BUCKETS - 1).astype(np.int64)
    out[np.isnan(ratings)] = 0
    return out


class ItemVocab:
    """item_id (str) -> index 1..n; 0 = padding / unknown."""

    def __init__(self, item_ids: Iterable[str]):
        self.ids: list[str] = sorted({str(i) for i in item_ids})
        self._index = {item: k + 1 for k, item in enumerate(self.ids)}
        self._lookup = pd.Index(self.ids, dtype=object)  # position k -> index k + 1

    @property
    def size(self) -> int:
        """Rows an embedding table needs (items + the padding/unknown row)."""
        return len(self.ids) + 1

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._index

    def index(self, item_id: str) -> int:
        return self._index.get(item_id, PAD)

    def rows(self, item_ids: Iterable[str]) -> np.ndarray:
        """Each item's index (its row in the model's item tables); -1 for an unknown item."""
        return np.array([self._index.get(i, -1) for i in item_ids], dtype=np.int64)

    def encode(self, item_ids: Iterable[str]) -> np.ndarray:
        """Indices of item ids (PAD for unknown ones); vectorised through a pandas Index, so
        a whole training log (a pandas Series) encodes in milliseconds."""
        values = item_ids if isinstance(item_ids, (pd.Series, np.ndarray, list, tuple)) else list(item_ids)
        return (self._lookup.get_indexer(pd.Index(values, dtype=object)) + 1).astype(np.int64)  # -1 (unknown) -> PAD

    def encode_candidates(self, candidates: Sequence[Sequence[str]]) -> np.ndarray:
        """(n, c) indices; every row must have the same number of candidates."""
        widths = {len(c) for c in candidates}
        if len(widths) > 1:
            raise ValueError(f"every profile needs the same number of candidates, got widths {sorted(widths)}")
        width = widths.pop() if widths else 0
        flat = [item for row in candidates for item in row]
        return self.encode(flat).reshape(len(candidates), width)

    def encode_histories(self, profiles: Sequence[Profile], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Histories as left-aligned, right-padded (n, max_len) item indices and rating buckets.

        Unknown items are dropped, then the `max_len` most recent known entries are kept
        (oldest first), so position 0 is the oldest kept entry.
        """
        items = np.zeros((len(profiles), max_len), dtype=np.int64)
        buckets = np.zeros((len(profiles), max_len), dtype=np.int64)
        for r, profile in enumerate(profiles):
            known = [(self._index[h.item_id], rating_bucket(h.rating)) for h in profile.history if h.item_id in self._index]
            known = known[-max_len:] if max_len > 0 else []
            for c, (idx, bucket) in enumerate(known):
                items[r, c] = idx
                buckets[r, c] = bucket
        return items, buckets

    def to_json(self) -> list[str]:
        return list(self.ids)

    @classmethod
    def from_json(cls, ids: list[str]) -> "ItemVocab":
        return cls(ids)


class VocabIndexed:
    """recommenders.base.ItemIndexed for a model whose items are an ItemVocab (``self.vocab``,
    None until fitted): the items it knows, and each item's row in its item tables (the
    "item" embedding table of the torch models, the per-item arrays of the others)."""

    vocab: ItemVocab | None

    def item_ids(self) -> list[str]:
        """The items the model knows (learned embeddings or statistics for)."""
        self._require_vocab()
        return list(self.vocab.ids)

    def item_rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Each item's row in the model's item tables; -1 for an item the model does not know."""
        self._require_vocab()
        return self.vocab.rows(item_ids)

    def _require_vocab(self) -> None:
        if self.vocab is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted (call fit or load first)")
