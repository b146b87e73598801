"""Small generated datasets for fast tests (real files are used through the shared_data fixture)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.data.dataset import Dataset
from benchmark.tasks import build_splits


def make_dataset(n_users: int = 30, n_items: int = 60, per_user: int = 12, seed: int = 0,
                 implicit: bool = False, with_titles: bool = True) -> Dataset:
    """Users with taste clusters: even users like even items, odd users odd items, so
    models that use the profile have something to learn."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=per_user, replace=False)
        for t, i in enumerate(items):
            liked = (i % 2) == (u % 2)
            rating = float(rng.choice([4, 5]) if liked else rng.choice([1, 2, 3]))
            rows.append((f"u{u}", f"i{i}", np.nan if implicit else rating, 1_000_000 + 1000 * t + u))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    inter = inter.astype({"user_id": str, "item_id": str, "rating": "float64", "timestamp": "int64"})
    ids = [f"i{i}" for i in range(n_items)]
    items = pd.DataFrame(
        {
            "title": [f"Movie {i} ({1990 + i % 20})" if with_titles else pd.NA for i in range(n_items)],
            "genres": ["Comedy|Drama" if i % 2 else "Action|Thriller" for i in range(n_items)],
        },
        index=pd.Index(ids, name="item_id"),
    )
    return Dataset("synthetic", inter, items, source="generated", format="generated")


def ml_latest_small_slice(folder, n_users: int) -> Dataset:
    """Users 1..n_users of ml-latest-small (the real files in `folder`), their ratings and
    the movies they rated: a small real dataset for the text models' tests."""
    ratings = pd.read_csv(folder / "ratings.csv", dtype={"userId": str, "movieId": str})
    ratings = ratings[ratings["userId"].isin([str(u) for u in range(1, n_users + 1)])]
    interactions = pd.DataFrame(
        {
            "user_id": ratings["userId"],
            "item_id": ratings["movieId"],
            "rating": ratings["rating"].astype("float64"),
            "timestamp": ratings["timestamp"].astype("int64"),
        }
    ).reset_index(drop=True)
    movies = pd.read_csv(folder / "movies.csv", dtype={"movieId": str}).set_index("movieId")
    movies.index.name = "item_id"
    return Dataset("ml-latest-small-slice", interactions, movies.loc[movies.index.isin(interactions["item_id"])])


def text_model_splits(dataset: Dataset) -> dict:
    """Both tasks' splits of a small dataset, ranking with 9 sampled negatives (the text
    models' tests)."""
    return {
        "preference": build_splits(dataset, "preference", seed=0),
        "ranking": build_splits(dataset, "ranking", seed=0, num_negatives=9),
    }
