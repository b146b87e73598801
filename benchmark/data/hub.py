"""Amazon Reviews 2023 through the Hugging Face Hub, or from local files in the Hub's layout.

`amazon2023:<Category>` is one category of McAuley-Lab/Amazon-Reviews-2023 (Hou et al., 2024):
the review config `raw_review_<Category>` and the metadata config `raw_meta_<Category>`,
split "full". Where it is read from, first found wins:

1. the category already fetched into the cache (`recrobust data fetch amazon2023:<Category>`);
2. local files in the Hub repository's layout, under `local_root`, RECROBUST_AMAZON2023_ROOT
   or a drop folder (RECROBUST_HOME/downloads, RECROBUST_MIRRORS):
       raw/review_categories/<Category>.jsonl[.gz]
       raw/meta_categories/meta_<Category>.jsonl[.gz]
   read by the Amazon 2023 reader (bad input -> an error naming the file and line);
3. the Hub: `datasets.load_dataset(repo, "raw_review_<Category>", split="full", columns=...)`
   (the configs are Parquet on the Hub, so only the columns asked for are read, and `datasets`
   caches them as memory-mapped Arrow), and the same for `raw_meta_<Category>`.

Review text is left out unless asked for (`text=True`): no template renders it and it is most
of the data. A category, repository or config that does not exist is an error naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import Dataset
from benchmark.data.errors import DataError, UnknownDatasetError

HUB_REPO = "McAuley-Lab/Amazon-Reviews-2023"
ROOT_ENV = "RECROBUST_AMAZON2023_ROOT"
# The 33 categories of the release plus "Unknown" (amazon-reviews-2023.github.io).
CATEGORIES = (
    "All_Beauty", "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Baby_Products",
    "Beauty_and_Personal_Care", "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food",
    "Handmade_Products", "Health_and_Household", "Health_and_Personal_Care", "Home_and_Kitchen",
    "Industrial_and_Scientific", "Kindle_Store", "Magazine_Subscriptions", "Movies_and_TV",
    "Musical_Instruments", "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Software",
    "Sports_and_Outdoors", "Subscription_Boxes", "Tools_and_Home_Improvement", "Toys_and_Games",
    "Video_Games", "Unknown",
)  # fmt: skip
REVIEW_COLUMNS = ["user_id", "parent_asin", "rating", "timestamp"]
TEXT_COLUMNS = ["title", "text"]
META_COLUMNS = ["parent_asin", "title", "categories", "details", "store", "description"]


def review_config(category: str) -> str:
    return f"raw_review_{category}"


def meta_config(category: str) -> str:
    return f"raw_meta_{category}"


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        close = [c for c in CATEGORIES if c.lower() == category.lower()]
        hint = f"did you mean {close[0]}? " if close else ""
        raise UnknownDatasetError(
            f"amazon2023:{category}: no such category in {HUB_REPO} (no config {review_config(category)}); "
            f"{hint}categories: {', '.join(CATEGORIES)}")
    return category


def local_files(category: str, local_root: str | Path | None = None) -> tuple[Path, Path | None] | None:
    """(reviews, metadata or None) in the Hub layout under the first root that has the reviews."""
    from benchmark.data.sources import drop_folders

    roots = [Path(local_root)] if local_root is not None else []
    if os.environ.get(ROOT_ENV):
        roots.append(Path(os.environ[ROOT_ENV]))
    roots += drop_folders()
    for root in roots:
        root = root.expanduser()
        reviews = _first(root / "raw" / "review_categories", f"{category}.jsonl")
        if reviews is not None:
            return reviews, _first(root / "raw" / "meta_categories", f"meta_{category}.jsonl")
    return None


def _first(folder: Path, name: str) -> Path | None:
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


def load_amazon2023(category: str, *, local_root: str | Path | None = None, repo: str = HUB_REPO,
                    text: bool = False, revision: str | None = None) -> Dataset:
    """One Amazon 2023 category as a Dataset: local files in the Hub layout if there are any,
    else the Hub (`repo` may also be a local folder holding a copy of the repository)."""
    from benchmark.data.readers.amazon import read_amazon

    check_category(category)
    found = local_files(category, local_root)
    name = f"amazon2023:{category}"
    if found is not None:
        reviews, meta = found
        dataset = read_amazon(reviews, "amazon2023", meta=meta, name=name, text=text)
        dataset.notes.append(f"read from local files in the {repo} layout ({reviews.parent.parent.parent})")
        return dataset
    return load_from_hub(category, repo=repo, text=text, revision=revision)


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A quick TCP check, so that an offline machine gets one clear error at once instead of
    huggingface_hub's retries (about half a minute of warnings)."""
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True  # let datasets answer from its own cache
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_split(repo: str, config: str, columns: list[str], revision: str | None, cache_dir: str | None = None):
    import datasets

    if not Path(repo).exists() and not hub_reachable():
        raise DataError(f"Hugging Face dataset {repo!r}, config {config!r}: the Hub (huggingface.co) is not reachable; "
                        f"offline, put the files in the Hub layout (raw/review_categories/<Category>.jsonl, "
                        f"raw/meta_categories/meta_<Category>.jsonl) under {ROOT_ENV} or RECROBUST_HOME/downloads")

    try:
        try:
            return datasets.load_dataset(repo, config, split="full", columns=columns, revision=revision,
                                         cache_dir=cache_dir)
        except ValueError as err:
            if "columns" not in str(err):
                raise
            # A JSON-lines config (the builder has no column selection): read it, keep the columns.
            ds = datasets.load_dataset(repo, config, split="full", revision=revision, cache_dir=cache_dir)
            return ds.select_columns([c for c in columns if c in ds.column_names])
    except DataError:
        raise
    except Exception as err:  # datasets raises many types (hub errors, ValueError for configs, ConnectionError)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if len(first) > 300:
            first = first[:300] + "..."
        hint = ""
        if any(w in first.lower() for w in ("connect", "offline", "resolve", "reach")):
            hint = (f"; offline, put the files in the Hub layout (raw/review_categories/<Category>.jsonl, "
                    f"raw/meta_categories/meta_<Category>.jsonl) under {ROOT_ENV} or RECROBUST_HOME/downloads")
        raise DataError(f"Hugging Face dataset {repo!r}, config {config!r}: {type(err).__name__}: {first}{hint}") from None


def load_from_hub(category: str, *, repo: str = HUB_REPO, text: bool = False, revision: str | None = None,
                  cache_dir: str | None = None) -> Dataset:
    """Reviews and metadata of one category through `datasets.load_dataset` (the real Hub path).
    cache_dir: where `datasets` keeps its Arrow copy (default: its own cache, HF_DATASETS_CACHE)."""
    from benchmark.data.readers.amazon import _meta_row
    from benchmark.data.readers.common import interactions_frame, make_dataset

    check_category(category)
    where = f"hf://datasets/{repo}" if not Path(repo).exists() else str(repo)
    reviews = _hub_split(repo, review_config(category), REVIEW_COLUMNS + (TEXT_COLUMNS if text else []), revision,
                         cache_dir)
    table = reviews.data.table  # the memory-mapped Arrow table
    for column in REVIEW_COLUMNS:
        if column not in reviews.column_names:
            raise DataError(f"config {review_config(category)!r} has no column {column!r}", where)
        if table.column(column).null_count:
            raise DataError(f"config {review_config(category)!r}: column {column!r} has empty values", where)
    ratings = np.asarray(table.column("rating").to_numpy(), dtype="float64")
    times = np.asarray(table.column("timestamp").to_numpy(), dtype="int64") // 1000  # milliseconds
    review = None
    if text:
        title = table.column("title").to_pandas().fillna("").str.strip()
        body = table.column("text").to_pandas().fillna("").str.strip()
        review = (title + "\n" + body).str.strip("\n")
    interactions = interactions_frame(table.column("user_id").to_pandas(), table.column("parent_asin").to_pandas(),
                                      ratings, times, review)
    del reviews, table
    meta = _hub_split(repo, meta_config(category), META_COLUMNS, revision, cache_dir)
    wanted = set(pd.unique(interactions["item_id"]))
    rows = {}
    for rec in meta.select_columns([c for c in META_COLUMNS if c in meta.column_names]).iter(batch_size=4096):
        for i, item in enumerate(rec["parent_asin"]):
            if item in wanted and item not in rows:
                one = {k: rec[k][i] for k in rec}
                if isinstance(one.get("details"), str):  # the Parquet conversion keeps details as a JSON string
                    try:
                        one["details"] = json.loads(one["details"])
                    except ValueError:
                        one["details"] = {}
                rows[item] = {"item_id": item, **_meta_row(one, "amazon2023")}
    items = pd.DataFrame(list(rows.values()), columns=["item_id", "title", "categories", "brand", "description"])
    notes = [f"loaded from the Hugging Face Hub: {repo}, configs {review_config(category)} and {meta_config(category)}",
             f"metadata: {len(items)} of {len(wanted)} reviewed items have a record"]
    return make_dataset(name=f"amazon2023:{category}", interactions=interactions, items=items, source=where,
                        format="amazon2023", notes=notes, ratings_path=Path(where))
