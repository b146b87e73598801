"""Datasets from installed plug-ins: the entry-point group ``recrobust.datasets``.

An entry point names a callable taking no argument (``name = "pkg.module:loader"``) that
returns either a ``benchmark.data.dataset.Dataset`` or a local path, which is read like
any path (``benchmark.data.readers.read_path``, format detected). A plug-in cannot shadow
a built-in dataset name (see benchmark.data.sources).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data.dataset import Dataset
from benchmark.data.errors import DataError
from benchmark.data.readers import read_path
from benchmark.registry import Registry

ENTRY_POINT_GROUP = "recrobust.datasets"

DATASETS = Registry("dataset", ENTRY_POINT_GROUP)


def is_plugin(name: str) -> bool:
    return name in DATASETS


def load_plugin(name: str) -> Dataset:
    """The Dataset a plug-in provides (a DataError names the plug-in when it fails)."""
    entry = DATASETS.entry(name)
    loader = DATASETS.resolve(name)
    if not callable(loader):
        raise DataError(f"dataset plug-in {name!r} ({entry.path}) is not callable")
    found = loader()
    if isinstance(found, Dataset):
        return found
    if isinstance(found, (str, Path)):
        return read_path(found, name=name)
    raise DataError(f"dataset plug-in {name!r} ({entry.path}) returned {type(found).__name__}, "
                    "expected a Dataset or a path")


def listing() -> list[dict]:
    return [{"name": e.name, "description": f"{e.origin}: {e.path}", "cached": False}
            for e in sorted(DATASETS.entries().values(), key=lambda e: e.name)]
