"""User profiles: time-ordered histories and the chronological leave-last-out split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.data.dataset import Dataset

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Interaction:
    """One history entry. rating is NaN for implicit feedback."""

    item_id: str
    rating: float
    timestamp: int


@dataclass(frozen=True)
class Profile:
    """What a recommender sees of a user at scoring time: the user id and a history,
    oldest first. Profile attacks edit `history`; every model's score must depend on it."""

    user_id: str
    history: tuple[Interaction, ...]

    def item_ids(self) -> list[str]:
        return [h.item_id for h in self.history]

    def replace_history(self, history) -> "Profile":
        return Profile(self.user_id, tuple(history))


def order_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """Sort by user, then time; ties broken by item id, then by original row order,
    so that the order never depends on how a file happened to be read."""
    df = interactions.reset_index(drop=True)
    df = df.assign(_row=np.arange(len(df)))
    df = df.sort_values(["user_id", "timestamp", "item_id", "_row"], kind="mergesort")
    return df.drop(columns="_row").reset_index(drop=True)


def leave_last_out(interactions: pd.DataFrame, min_history: int = 3) -> pd.DataFrame:
    """Label each interaction with its split: last -> test, second last -> valid, rest -> train.

    Users with fewer than `min_history` interactions cannot give a train, valid and test
    interaction; they are dropped (a documented filter, reported by `split_summary`).
    Returns the ordered interactions with a "split" column and "position" (0-based rank
    of the interaction in the user's timeline).
    """
    df = order_interactions(interactions)
    counts = df.groupby("user_id", sort=False)["item_id"].transform("size")
    df = df[counts >= min_history].reset_index(drop=True)
    pos = df.groupby("user_id", sort=False).cumcount()
    from_end = df.groupby("user_id", sort=False)["item_id"].transform("size") - pos - 1
    split = np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))
    return df.assign(position=pos.astype("int64"), split=split)


def split_dataset(dataset: Dataset, min_history: int = 3) -> pd.DataFrame:
    return leave_last_out(dataset.interactions, min_history=min_history)
