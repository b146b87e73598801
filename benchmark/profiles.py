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
    return _ordered(interactions)[0]


def _ordered(interactions: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """order_interactions, plus each ordered row's user code (users numbered in id order)."""
    df = interactions.reset_index(drop=True)
    # Sorting integer codes of the sorted ids is the same order as sorting the strings, and
    # several times faster on millions of rows; lexsort is stable, so ties keep row order.
    users = pd.factorize(df["user_id"], sort=True)[0]
    items = pd.factorize(df["item_id"], sort=True)[0]
    order = np.lexsort((items, df["timestamp"].to_numpy(), users))
    return df.take(order).reset_index(drop=True), users[order]


def leave_last_out(interactions: pd.DataFrame, min_history: int = 3) -> pd.DataFrame:
    """Label each interaction with its split: last -> test, second last -> valid, rest -> train.

    Users with fewer than `min_history` interactions cannot give a train, valid and test
    interaction; they are dropped (a documented filter, reported by `split_summary`).
    Returns the ordered interactions with a "split" column and "position" (0-based rank
    of the interaction in the user's timeline).
    """
    df, users = _ordered(interactions)
    # Rows are grouped by user now: run lengths give sizes and positions without a groupby.
    new_user = np.ones(len(df), dtype=bool)
    if len(df):
        new_user[1:] = users[1:] != users[:-1]
    starts = np.flatnonzero(new_user)
    sizes = np.diff(np.append(starts, len(df)))
    size = np.repeat(sizes, sizes)
    keep = size >= min_history
    if not keep.all():
        df = df[keep].reset_index(drop=True)
        sizes = sizes[sizes >= min_history]
        size = size[keep]
    first = np.repeat(np.cumsum(np.concatenate([[0], sizes[:-1]])).astype(np.int64), sizes)
    pos = np.arange(len(df), dtype=np.int64) - first
    from_end = size - pos - 1
    split = np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))
    return df.assign(position=pos, split=split)


def split_dataset(dataset: Dataset, min_history: int = 3) -> pd.DataFrame:
    return leave_last_out(dataset.interactions, min_history=min_history)
