"""Dataset statistics (JSON-ready) and the check against published figures."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from benchmark.data.dataset import Dataset
from benchmark.data.published import Published, published_for, published_for_path
from benchmark.data.readers.common import duplicates_dropped
from benchmark.rendering import clean_title


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rating_key(value: float) -> str:
    return f"{value:g}"


def dataset_stats(ds: Dataset) -> dict:
    """Counts, rating histogram, time span and title coverage of a dataset.

    items counts interacted items (as the published statistics do); catalog_items counts
    rows of the item table. rows_in_file adds back the duplicate lines the reader dropped."""
    inter = ds.interactions
    n = len(inter)
    users = int(inter["user_id"].nunique())
    interacted = pd.unique(inter["item_id"])
    items = len(interacted)
    dropped = duplicates_dropped(ds.notes)

    ratings = inter["rating"]
    rated = ratings.dropna()
    histogram = None
    if len(rated):
        counts = rated.value_counts().sort_index()
        histogram = {_rating_key(float(v)): int(c) for v, c in counts.items()}

    span = None
    if n:
        first, last = int(inter["timestamp"].min()), int(inter["timestamp"].max())
        span = {"first": _iso(first), "last": _iso(last), "first_seconds": first, "last_seconds": last}

    with_title = 0
    if "title" in ds.items.columns and items:
        titles = ds.items["title"].reindex(pd.Index(interacted))
        with_title = sum(clean_title(t) is not None for t in titles)

    per_user = inter.groupby("user_id", sort=False).size()
    return {
        "name": ds.name,
        "format": ds.format,
        "source": ds.source,
        "users": users,
        "items": items,
        "interactions": n,
        "rows_in_file": n + dropped,
        "duplicates_dropped": dropped,
        "catalog_items": int(len(ds.items)),
        "implicit": histogram is None,
        "ratings_missing": int(n - len(rated)) if histogram is not None else None,
        "rating_histogram": histogram,
        "time_span": span,
        "items_with_title": int(with_title),
        "title_share": round(with_title / items, 4) if items else None,
        "mean_interactions_per_user": round(n / users, 3) if users else None,
        "min_interactions_per_user": int(per_user.min()) if users else None,
        "mean_interactions_per_item": round(n / items, 3) if items else None,
        "density": round(n / (users * items), 6) if users and items else None,
        "has_reviews": "review" in inter.columns,
        "notes": list(ds.notes),
    }


def _resolve(name_or_format: str, stats: dict) -> Published | None:
    found = published_for(name_or_format)
    if found is not None:
        return found
    # A format ("movielens-latest", "recbole", "amazon2018") or a path: recognise the dataset
    # from where it was read.
    fmt = stats.get("format") or name_or_format
    for where in (name_or_format, stats.get("source")):
        if where and ("/" in str(where) or Path(str(where)).exists()):
            found = published_for_path(where, fmt)
            if found is not None:
                return found
    return None


def check_published(name_or_format: str, stats: dict) -> dict | None:
    """Compare dataset_stats() output with the published figures for that dataset.

    name_or_format: a registry name ("movielens-100k", "amazon2018:Gift_Cards"), an alias
    ("ml-latest-small"), a path, or a format whose dataset is then recognised from
    stats["source"]. Returns None when no published figures are known for it."""
    published = _resolve(name_or_format, stats)
    if published is None:
        return None
    expected = dict(published.figures)
    observed = {key: stats.get(key) for key in expected}
    differences = []
    for key, want in expected.items():
        got = observed[key]
        if got != want:
            delta = "" if got is None else f" ({got - want:+,})"
            differences.append(f"{key}: expected {want:,}, observed {'missing' if got is None else f'{got:,}'}{delta}")
    if differences:  # say why, when the reader knows the copy is partial
        differences += [note for note in stats.get("notes", []) if note.startswith("PARTIAL")]
    result = {
        "dataset": published.key,
        "title": published.title,
        "expected": expected,
        "observed": observed,
        "status": "match" if not differences else "mismatch",
        "differences": differences,
        "sources": dict(published.sources),
    }
    if published.note:
        result["note"] = published.note
    return result


def format_check(result: dict | None) -> str:
    """One line for a CLI: 'published statistics (MovieLens 100K): match' or the differences."""
    if result is None:
        return "published statistics: none known for this dataset"
    head = f"published statistics ({result['title']}): {result['status']}"
    return head if result["status"] == "match" else head + " - " + "; ".join(result["differences"])

