"""One entry point for datasets: a registered name (fetched into the cache) or a local path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import Dataset
from benchmark.data.errors import DataError, UnknownDatasetError


def load_dataset(name_or_path: str | Path, format: str | None = None, meta: str | Path | None = None,
                 text: bool = False) -> Dataset:
    """Load by registry name (e.g. "movielens-100k", "amazon2018:Gift_Cards") or by path.

    A path wins when it exists; otherwise the name must be registered (see
    `recrobust data list`). Names are fetched into the cache on first use; Amazon 2023
    categories not fetched before load through the Hugging Face Hub (benchmark/data/hub.py).
    Amazon review text is left out unless text=True: no template renders it, and it is most of
    a review file (read_path keeps it by default).
    """
    from benchmark.data import plugins, sources
    from benchmark.data.readers import read_path

    path = Path(str(name_or_path)).expanduser()
    if path.exists():
        return read_path(path, format=format, meta=meta, name=path.name, text=text)
    name = str(name_or_path)
    if not sources.is_known(name) and plugins.is_plugin(name):
        return plugins.load_plugin(name)
    if not sources.is_known(name):
        if any(sep in name for sep in ("/", "\\")) or path.suffix:
            raise DataError("no such file or directory", path=path)
        raise UnknownDatasetError(
            f"unknown dataset {name!r}: not a path, and not one of: "
            + ", ".join(d["name"] for d in [*sources.list_datasets(), *plugins.listing()])
        )
    src = sources.source(name)
    if src.format == "amazon2023" and sources.read_manifest(sources.dataset_dir(name)) is None:
        # Not fetched: local files in the Hub layout, else the Hub through `datasets` (benchmark/data/hub.py).
        from benchmark.data.hub import load_amazon2023

        return load_amazon2023(src.name.partition(":")[2], text=text)
    folder, detected = sources.resolve(name)
    return read_path(folder, format=format or detected, meta=meta, name=name, text=text)


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 of the canonical content (interactions in a fixed order + item titles),
    so the same data read from a different format or path gives the same fingerprint."""
    inter = dataset.interactions[["user_id", "item_id", "rating", "timestamp"]]
    # The order of sort_values(["user_id", "timestamp", "item_id", "rating"]), computed on integer
    # codes of the sorted ids (same order, far faster on millions of rows; rows that tie are equal).
    users = pd.factorize(inter["user_id"], sort=True)[0]
    items = pd.factorize(inter["item_id"], sort=True)[0]
    order = np.lexsort((inter["rating"].to_numpy(dtype="float64"), items, inter["timestamp"].to_numpy(), users))
    inter = inter.take(order)
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(inter, index=False).values.tobytes())
    titles = dataset.items["title"] if "title" in dataset.items else pd.Series(dtype=object)
    titles = titles.astype("string").fillna("").sort_index()
    digest.update(pd.util.hash_pandas_object(titles, index=True).values.astype(np.uint64).tobytes())
    return digest.hexdigest()
