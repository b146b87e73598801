"""Which reader a path needs, from file names and (for Amazon JSON) the first record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.errors import DataError
from benchmark.data.readers.common import strip_compression

FORMATS = (
    "movielens-100k",
    "movielens-1m",
    "movielens-latest",
    "recbole",
    "amazon2014",
    "amazon2018",
    "amazon2023",
)
LOOKED_FOR = (
    "u.data (MovieLens 100K), ratings.dat (MovieLens 1M), ratings.csv (MovieLens latest/25M/32M), "
    "<name>.inter (RecBole atomic files), *.json / *.jsonl reviews (Amazon 2014/2018/2023); "
    "each optionally .gz"
)
# Files of a MovieLens release: a path to any of them means "this release's folder".
ML_FILES = {
    "movielens-100k": ("u.data", "u.item", "u.user", "u.genre", "u.info", "u.occupation"),
    "movielens-1m": ("ratings.dat", "movies.dat", "users.dat"),
    "movielens-latest": ("ratings.csv", "movies.csv", "tags.csv", "links.csv"),
}
_JSON_NAME = re.compile(r"\.jsonl?$", re.IGNORECASE)
_ML1M_PARTIAL = re.compile(r"^ratings.*\.dat$")


@dataclass(frozen=True)
class Detected:
    format: str
    path: Path  # folder for MovieLens/RecBole, reviews file for Amazon
    ratings_file: Path | None = None  # an explicitly chosen ML-1M ratings file (e.g. a subset)


def is_json_name(path: Path) -> bool:
    return bool(_JSON_NAME.search(strip_compression(path.name)))


def amazon_edition(path: Path) -> str:
    """2023 records use user_id/parent_asin; 2014 and 2018 share reviewerID/asin, and 2014
    files are named reviews_<Category>... and carry `helpful` where 2018 has `vote`/`verified`."""
    from benchmark.data.readers.amazon import first_record

    if strip_compression(path.name).startswith("meta_"):
        raise DataError("this is an Amazon metadata file; pass the reviews file (and this one as meta)", path)
    record = first_record(path, python_literals=True)
    if "parent_asin" in record or ("user_id" in record and "rating" in record):
        return "amazon2023"
    if "reviewerID" in record or "overall" in record:
        if strip_compression(path.name).startswith("reviews_") or "helpful" in record:
            return "amazon2014"
        return "amazon2018"
    keys = ", ".join(list(record)[:12])
    raise DataError(
        "JSON records are not Amazon reviews: expected reviewerID/asin/overall/unixReviewTime (2014, 2018) "
        f"or user_id/parent_asin/rating/timestamp (2023); found keys {keys}",
        path,
        1,
    )


def _in_folder(folder: Path, names: tuple[str, ...]) -> bool:
    return any((folder / n).is_file() or (folder / f"{n}.gz").is_file() for n in names)


def _detect_folder(folder: Path) -> Detected:
    from benchmark.data.readers.recbole import inter_files

    if _in_folder(folder, ("u.data",)):
        return Detected("movielens-100k", folder)
    if _in_folder(folder, ("ratings.dat",)):
        return Detected("movielens-1m", folder)
    if _in_folder(folder, ("ratings.csv",)):
        return Detected("movielens-latest", folder)
    if inter_files(folder):
        return Detected("recbole", folder)
    partial = sorted(p.name for p in folder.iterdir() if _ML1M_PARTIAL.match(strip_compression(p.name)))
    if partial:
        # Reuse the 1M reader's refusal, which tells the user how to load a subset explicitly.
        return Detected("movielens-1m", folder)
    from benchmark.data.sources import MANIFEST  # a fetched dataset's provenance file, not data

    reviews = sorted(
        p for p in folder.iterdir()
        if p.is_file() and is_json_name(p) and not p.name.startswith("meta_") and p.name != MANIFEST
    )
    if len(reviews) == 1:
        return Detected(amazon_edition(reviews[0]), reviews[0])
    if len(reviews) > 1:
        names = ", ".join(p.name for p in reviews)
        raise DataError(f"several Amazon review files in this folder ({names}); pass one of them", folder)
    inner = _single_subfolder(folder)
    if inner is not None:  # an unzipped release: ml-latest-small/ml-latest-small/ratings.csv
        try:
            return _detect_folder(inner)
        except DataError:
            pass
    raise DataError(f"unrecognised dataset format: looked for {LOOKED_FOR}", folder)


def _single_subfolder(folder: Path) -> Path | None:
    """The one subfolder of a folder that holds no files of its own (zip metadata such as
    __MACOSX and hidden entries aside)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__"))]
    subs = [p for p in entries if p.is_dir()]
    return subs[0] if len(subs) == 1 and len(entries) == 1 else None


def _detect_file(path: Path) -> Detected:
    name = strip_compression(path.name)
    for fmt, names in ML_FILES.items():
        if name in names:
            return Detected(fmt, path.parent)
    if _ML1M_PARTIAL.match(name):  # e.g. ratings_subset_users_1-2999.dat.gz, chosen explicitly
        return Detected("movielens-1m", path.parent, ratings_file=path)
    if re.search(r"\.(inter|item|user|kg|link)$", name):
        inter = path if name.endswith(".inter") else None
        return Detected("recbole", inter or path.parent)
    if is_json_name(path):
        return Detected(amazon_edition(path), path)
    raise DataError(f"unrecognised dataset file: looked for {LOOKED_FOR}", path)


def detect(path: Path, format: str | None = None) -> Detected:
    if not path.exists():
        raise DataError("path does not exist", path)
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"unknown format {format!r}; known: {', '.join(FORMATS)}", path)
        return _with_format(path, format)
    return _detect_folder(path) if path.is_dir() else _detect_file(path)


def _with_format(path: Path, fmt: str) -> Detected:
    """An explicit format: only the path's role (folder or file) is still worked out."""
    if fmt.startswith("amazon"):
        if path.is_dir():
            found = _detect_folder(path)
            if not found.format.startswith("amazon"):
                raise DataError(f"no Amazon reviews file in this folder (format {fmt} was asked for)", path)
            return Detected(fmt, found.path)
        return Detected(fmt, path)
    if path.is_dir():
        try:  # the folder that holds the files (it may be one level down, as unzipped)
            located = _detect_folder(path).path
        except DataError:
            located = path  # the format's reader will say which file is missing
        return Detected(fmt, located if located.is_dir() else path)
    if fmt == "recbole":
        return Detected(fmt, path)
    name = strip_compression(path.name)
    explicit = path if fmt == "movielens-1m" and _ML1M_PARTIAL.match(name) and name != "ratings.dat" else None
    return Detected(fmt, path.parent, ratings_file=explicit)
