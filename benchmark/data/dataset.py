"""The in-memory dataset every reader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

# Column contract. Readers must produce exactly these dtypes so that splits,
# rendering and hashing are identical whichever on-disk format a dataset came from.
INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")  # + optional "review"
# items: index "item_id" (str); "title" (str or <NA>); optional text attributes below.
ITEM_TEXT_COLUMNS = ("genres", "categories", "brand", "description")


@dataclass
class Dataset:
    """Interactions plus an item catalog.

    interactions: DataFrame with user_id (str), item_id (str), rating (float64, NaN when
        implicit), timestamp (int64, seconds since the epoch), and optionally review (str).
    items: DataFrame indexed by item_id (str) with a "title" column (str, <NA> when
        unknown) and any of ITEM_TEXT_COLUMNS (strings, "|"-joined lists).
        Every interacted item_id has a row (readers add empty rows where metadata is missing).
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    source: str = ""  # path or URL it was read from
    format: str = ""  # reader that produced it, e.g. "movielens-100k", "amazon2018"
    notes: list[str] = field(default_factory=list)  # documented filters applied (e.g. duplicates dropped)

    @property
    def n_users(self) -> int:
        return int(self.interactions["user_id"].nunique())

    @property
    def n_items(self) -> int:
        """Items with at least one interaction (the published statistics count these)."""
        return int(self.interactions["item_id"].nunique())

    @property
    def n_interactions(self) -> int:
        return int(len(self.interactions))
