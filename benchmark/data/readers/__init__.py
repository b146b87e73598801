"""Dataset readers: one entry point, `read_path`, for every on-disk format we support.

    read_path("ml-latest-small/")                     # MovieLens, format detected
    read_path("Gift_Cards_5.json.gz")                  # Amazon 2018 + meta_Gift_Cards.json.gz beside it
    read_path("x.jsonl", format="amazon2023", meta="meta_x.jsonl")

Every reader returns a Dataset that follows the column contract in benchmark/data/dataset.py,
and raises DataError (naming the file, and the line where there is one) on bad input.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data.dataset import Dataset
from benchmark.data.errors import DataError
from benchmark.data.readers.amazon import AMAZON_FORMATS, read_amazon
from benchmark.data.readers.common import gzip_damage
from benchmark.data.readers.detect import FORMATS, Detected, detect
from benchmark.data.readers.movielens import read_ml1m, read_ml100k, read_ml_latest
from benchmark.data.readers.recbole import read_recbole

__all__ = ["FORMATS", "Detected", "detect", "read_path"]


def read_path(
    path: str | Path,
    format: str | None = None,
    meta: str | Path | None = None,
    name: str | None = None,
    text: bool = True,
) -> Dataset:
    """Read a dataset from a folder or file.

    path: a MovieLens folder (or one of its files), a RecBole atomic folder (or .inter file),
        or an Amazon reviews file (.json/.jsonl, gz or not).
    format: one of FORMATS to skip detection.
    meta: Amazon metadata file, when it is not beside the reviews as meta_<Category>.json[l][.gz].
    name: dataset name to record (default: from the folder or file name).
    text: keep Amazon review text (False: not parsed into columns nor kept; no template renders it).
    """
    try:
        return _read(Path(path).expanduser(), format, meta, name, text)
    except DataError as err:
        # A parse error inside a gz file may really be damage to the file: say so instead.
        if err.path is not None and not getattr(err, "gzip_damage", False):
            damage = gzip_damage(Path(err.path))
            if damage is not None:
                raise damage from None
        raise
    except OSError as err:  # unreadable file, permissions, a folder where a file should be
        raise DataError(f"cannot read: {err.strerror or err}", err.filename or path) from None


def _read(path: Path, format: str | None, meta: str | Path | None, name: str | None, text: bool = True) -> Dataset:
    found = detect(path, format)
    meta_path = None if meta is None else Path(meta).expanduser()
    if meta_path is not None and found.format not in AMAZON_FORMATS:
        raise DataError(f"a metadata file is only used with Amazon reviews, not {found.format}", meta_path)
    if found.format == "movielens-100k":
        return read_ml100k(found.path, name=name)
    if found.format == "movielens-1m":
        return read_ml1m(found.path, ratings_path=found.ratings_file, name=name)
    if found.format == "movielens-latest":
        return read_ml_latest(found.path, name=name)
    if found.format == "recbole":
        return read_recbole(found.path, name=name)
    return read_amazon(found.path, found.format, meta=meta_path, name=name, text=text)
