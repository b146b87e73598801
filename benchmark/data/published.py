"""Published statistics of the standard datasets, to check a loaded copy against.

Figures are keyed by the names the statistics in benchmark/data/stats.py use:
- "users", "items" (items with at least one interaction), "interactions" (after the
  readers' documented duplicate filter);
- "rows_in_file": records in the file as published, before any filter. The Amazon review
  counts on the dataset pages count lines of the 5-core files, and the 2018 5-core files
  contain repeated lines (see shared/data/*/PROVENANCE.md), so those counts are compared with
  rows_in_file, not with the deduplicated interactions.

Each figure says where it comes from: a number printed by the publisher, or (marked as such)
a count measured on a verified copy of the official file, where the publisher gives none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_ML_PAGE = "GroupLens release README"
_AMAZON18_PAGE = "Amazon Review Data (2018) page, nijianmo.github.io/amazon (per-category 5-core review count)"
_MEASURED = "not published; measured on the verified official file (shared/data/{folder}/PROVENANCE.md)"


@dataclass(frozen=True)
class Published:
    key: str  # registry name, e.g. "movielens-100k", "amazon2018:Gift_Cards"
    title: str
    figures: dict[str, int]
    sources: dict[str, str]  # figure -> where it comes from
    note: str = ""
    aliases: tuple[str, ...] = field(default=())


def _amazon18(category: str, folder: str, rows: int, users: int, items: int, note: str = "") -> Published:
    measured = _MEASURED.format(folder=folder)
    return Published(
        key=f"amazon2018:{category}",
        title=f"Amazon Review Data (2018), {category.replace('_', ' ')}, 5-core",
        figures={"users": users, "items": items, "rows_in_file": rows},
        sources={"rows_in_file": _AMAZON18_PAGE, "users": measured, "items": measured},
        note=note
        or "The 5-core file repeats some reviews; the published count is of lines in the file, "
        "so it is compared with rows_in_file (interactions before the duplicate filter).",
    )


PUBLISHED: tuple[Published, ...] = (
    Published(
        key="movielens-100k",
        title="MovieLens 100K",
        figures={"users": 943, "items": 1682, "interactions": 100_000},
        sources=dict.fromkeys(("users", "items", "interactions"), _ML_PAGE + " (ml-100k)"),
        aliases=("ml-100k", "ml100k", "movielens100k"),
    ),
    Published(
        key="movielens-1m",
        title="MovieLens 1M",
        figures={"users": 6040, "items": 3706, "interactions": 1_000_209},
        sources={
            "users": _ML_PAGE + " (ml-1m)",
            "interactions": _ML_PAGE + " (ml-1m)",
            "items": "rated movies in the official ratings.dat (the README says 'approximately 3,900' movies, "
            "3,883 in movies.dat)",
        },
        aliases=("ml-1m", "ml1m", "movielens1m"),
    ),
    Published(
        key="movielens-latest-small",
        title="MovieLens latest-small (2018-09-26)",
        figures={"users": 610, "items": 9724, "interactions": 100_836},
        sources={
            "users": _ML_PAGE + " (ml-latest-small)",
            "interactions": _ML_PAGE + " (ml-latest-small)",
            "items": "rated movies; the README gives 9,742 movies, of which 9,724 have a rating",
        },
        aliases=("ml-latest-small", "movielens-latest-small", "ml_latest_small"),
    ),
    # Rated-movie counts are not in these READMEs (they give movies in movies.csv), so only
    # users and ratings are checked.
    Published(
        key="movielens-25m",
        title="MovieLens 25M",
        figures={"users": 162_541, "interactions": 25_000_095},
        sources=dict.fromkeys(("users", "interactions"), _ML_PAGE + " (ml-25m)"),
        aliases=("ml-25m", "ml25m", "movielens25m"),
    ),
    Published(
        key="movielens-32m",
        title="MovieLens 32M",
        figures={"users": 200_948, "interactions": 32_000_204},
        sources=dict.fromkeys(("users", "interactions"), _ML_PAGE + " (ml-32m)"),
        aliases=("ml-32m", "ml32m", "movielens32m"),
    ),
    Published(
        key="amazon2014:Musical_Instruments",
        title="Amazon product data (2014), Musical Instruments, 5-core",
        figures={"users": 1429, "items": 900, "rows_in_file": 10_261},
        sources=dict.fromkeys(
            ("users", "items", "rows_in_file"), "Amazon product data (2014) page, jmcauley.ucsd.edu/data/amazon"
        ),
        aliases=("amazon2014:musical_instruments",),
    ),
    _amazon18(
        "Gift_Cards",
        "amazon2018_gift_cards",
        rows=2972,
        users=458,
        items=148,
        note="The page's '5-core (2,972 reviews)' counts lines of Gift_Cards_5.json.gz. That file has 3 lines "
        "repeating an earlier line's user, item, rating and time (7 repeated user-item pairs in all), so "
        "the reader keeps 2,969 interactions; 2,972 is compared with rows_in_file. Users and items are "
        "not on the page and the duplicate filter does not change them.",
    ),
    _amazon18("Magazine_Subscriptions", "amazon2018_magazine_subscriptions", rows=2375, users=348, items=157),
    _amazon18("AMAZON_FASHION", "amazon2018_fashion", rows=3176, users=406, items=31),
    _amazon18("All_Beauty", "amazon2018_all_beauty", rows=5269, users=991, items=85),
)


def _norm(name: str) -> str:
    return name.strip().lower()


_BY_NAME: dict[str, Published] = {}
for _entry in PUBLISHED:
    for _alias in (_entry.key, *_entry.aliases):
        _BY_NAME[_norm(_alias)] = _entry


def published_for(name: str) -> Published | None:
    """The published statistics for a registry name or alias (case-insensitive), else None."""
    return _BY_NAME.get(_norm(name))


_AMAZON_FILE = re.compile(r"^(reviews_)?(?P<cat>.+)_5\.jsonl?(\.gz)?$", re.IGNORECASE)


def published_for_path(path: str | Path, format: str | None = None) -> Published | None:
    """Recognise a standard dataset from where it was read: a MovieLens or RecBole folder
    named like the release (ml-100k, ml-1m, ml-latest-small) or an Amazon 5-core file
    (reviews_<Category>_5.json.gz for 2014, <Category>_5.json.gz for 2018)."""
    path = Path(path)
    match = _AMAZON_FILE.match(path.name)
    if match:
        edition = format if format in ("amazon2014", "amazon2018") else None
        if edition is None:
            edition = "amazon2014" if match.group(1) else "amazon2018"
        return published_for(f"{edition}:{match.group('cat')}")
    for candidate in (path.name, path.parent.name, re.sub(r"\.(inter|item)$", "", path.name)):
        found = published_for(candidate)
        if found is not None and not found.key.startswith("amazon"):
            return found
    return None
