"""RecBole atomic files: `<name>.inter` (+ `<name>.item`, `<name>.user`), tab-separated,
with a typed header such as `user_id:token	item_id:token	rating:float	timestamp:float`.

Field names differ between RecBole's datasets (Yelp uses `business_id` and `stars`,
ML-100K's item file has `movie_title`, `release_year`, `class`), so each role is
matched against a short list of the names RecBole's converted datasets use.
Values are never quoted in atomic files, so quote characters are read literally.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import Dataset
from benchmark.data.errors import DataError
from benchmark.data.readers.common import (
    check_present,
    compression_of,
    drop_blank_rows,
    interactions_frame,
    make_dataset,
    pandas_errors,
    require_nonempty,
    strip_compression,
    to_float,
    to_seconds,
)

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
USER_FIELDS = ("user_id", "uid", "user")
ITEM_FIELDS = (
    "item_id", "iid", "business_id", "movie_id", "book_id", "song_id", "track_id", "artist_id", "poi_id", "venue_id",
)  # fmt: skip
RATING_FIELDS = ("rating", "stars", "score", "overall")
TIME_FIELDS = ("timestamp", "date", "time")
TITLE_FIELDS = ("movie_title", "title", "item_name", "business_name", "name", "book_title", "track_name")
YEAR_FIELDS = ("release_year", "year")
GENRE_FIELDS = ("class", "genre", "genres")  # token_seq of single-word genres
TEXT_FIELDS = {"categories": ("categories", "category"), "brand": ("brand",), "description": ("description",)}
# RecBole's ML-100K item file spells the placeholder of item 267 "unkonwn".
PLACEHOLDERS = {"unknown", "unkonwn"}
_YEAR = re.compile(r"^\d{4}$")


def inter_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and strip_compression(p.name).endswith(".inter"))


def _header(path: Path) -> dict[str, str]:
    """Typed header -> {field name: column label in the file}; checks every type."""
    with pandas_errors(path):
        header = pd.read_csv(path, sep="\t", nrows=0, quoting=csv.QUOTE_NONE, compression=compression_of(path))
    labels = list(header.columns)
    fields: dict[str, str] = {}
    for label in labels:
        name, sep, ftype = str(label).rpartition(":")
        if not sep or ftype not in FIELD_TYPES:
            raise DataError(
                f"header field {label!r} is not 'name:type' with type one of {', '.join(FIELD_TYPES)}", path, 1
            )
        fields[name] = label
    return fields


def _pick(fields: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    return next((fields[c] for c in candidates if c in fields), None)


def _read(path: Path, labels: list[str], numeric: tuple[str | None, ...] = ()) -> pd.DataFrame:
    """The labelled columns of an atomic file, `numeric` ones parsed as numbers. Every
    column is read (no usecols: with it, pandas silently accepts a line with too many fields)."""
    dtype = {label: str for label in labels if label not in numeric}
    with pandas_errors(path):
        df = pd.read_csv(
            path, sep="\t", dtype=dtype, quoting=csv.QUOTE_NONE, keep_default_na=False,
            na_values=[""], skip_blank_lines=False, compression=compression_of(path),
        )  # fmt: skip
    return drop_blank_rows(df[labels])


def read_recbole(path: Path, name: str | None = None) -> Dataset:
    """`path` is the folder (holding exactly one .inter file) or the .inter file itself."""
    if path.is_dir():
        found = inter_files(path)
        if len(found) != 1:
            what = ", ".join(p.name for p in found) or "none"
            raise DataError(f"expected one RecBole .inter file in the folder, found {what}", path)
        inter_path = found[0]
    else:
        inter_path = path
    folder = inter_path.parent
    stem = strip_compression(inter_path.name)[: -len(".inter")]
    require_nonempty(inter_path)

    fields = _header(inter_path)
    user, item = _pick(fields, USER_FIELDS), _pick(fields, ITEM_FIELDS)
    rating, time = _pick(fields, RATING_FIELDS), _pick(fields, TIME_FIELDS)
    roles = (("user", user, USER_FIELDS), ("item", item, ITEM_FIELDS), ("timestamp", time, TIME_FIELDS))
    for role, label, candidates in roles:
        if label is None:
            raise DataError(
                f"missing {role} field: none of {', '.join(candidates)} in the header "
                f"(found: {', '.join(fields)})",
                inter_path,
                1,
            )
    labels = [user, item, time] + ([rating] if rating else [])
    df = _read(inter_path, labels, numeric=(rating, time))
    check_present(df, {user: user, item: item, time: time}, inter_path, 2)
    notes: list[str] = []
    if rating:
        ratings = to_float(df[rating], rating, inter_path, 2)
    else:
        ratings = np.full(len(df), np.nan)
        notes.append("no rating field: implicit feedback (rating NaN)")
    interactions = interactions_frame(
        df[user].to_numpy(), df[item].to_numpy(), ratings, to_seconds(df[time], time, inter_path, 2)
    )

    item_path = next((p for p in (folder / f"{stem}.item", folder / f"{stem}.item.gz") if p.is_file()), None)
    items = None
    if item_path is None:
        notes.append(f"no {stem}.item beside {inter_path.name}: items have no titles")
    else:
        items = _read_items(item_path, item_field=next(n for n, lab in fields.items() if lab == item))
    return make_dataset(
        name=name or stem, interactions=interactions, items=items, source=folder, format="recbole",
        notes=notes, ratings_path=inter_path,
    )  # fmt: skip


def _clean(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    value = str(value).strip()
    return None if not value or value.lower() in PLACEHOLDERS else value


def _genres(value) -> str | None:
    """token_seq of genres (space-separated single words) -> "|"-joined."""
    if not isinstance(value, str):
        return None
    return "|".join(g for g in value.split() if g.lower() not in PLACEHOLDERS) or None


def _read_items(path: Path, item_field: str) -> pd.DataFrame:
    require_nonempty(path)
    fields = _header(path)
    if item_field not in fields:
        raise DataError(
            f"missing field {item_field!r} (the item id of the .inter file) in the header "
            f"(found: {', '.join(fields)})",
            path,
            1,
        )
    roles = {"item_id": fields[item_field]}
    for role, candidates in (("title", TITLE_FIELDS), ("year", YEAR_FIELDS), ("genres", GENRE_FIELDS)):
        label = _pick(fields, candidates)
        if label:
            roles[role] = label
    for role, candidates in TEXT_FIELDS.items():
        label = _pick(fields, candidates)
        if label:
            roles[role] = label
    df = _read(path, list(roles.values()))
    check_present(df, {roles["item_id"]: item_field}, path, 2)
    out = pd.DataFrame({"item_id": df[roles["item_id"]].str.strip()})
    n = len(df)
    titles = [_clean(v) for v in df[roles["title"]]] if "title" in roles else [None] * n
    if "year" in roles:
        # ML-100K/1M keep the year apart from the title; put it back as "Title (1995)" like
        # the MovieLens files themselves, so one movie renders the same from either format.
        years = [_clean(v) for v in df[roles["year"]]]
        titles = [
            f"{t} ({y})" if t and y and _YEAR.match(y) and not t.endswith(f"({y})") else t
            for t, y in zip(titles, years)
        ]
    out["title"] = pd.Series(titles, index=df.index, dtype=object)
    if "genres" in roles:
        out["genres"] = pd.Series([_genres(v) for v in df[roles["genres"]]], index=df.index, dtype=object)
    for role in TEXT_FIELDS:
        if role in roles:
            out[role] = pd.Series([_clean(v) for v in df[roles[role]]], index=df.index, dtype=object)
    return out
