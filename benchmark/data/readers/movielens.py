"""MovieLens readers: 100K (u.data, u.item), 1M (ratings.dat, movies.dat) and
latest / 25M / 32M (ratings.csv, movies.csv). gz copies of any file work too.

User attributes (u.user, users.dat) are not read: the Dataset has no user table and
profiles are built from interactions only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from benchmark.data.dataset import Dataset
from benchmark.data.errors import DataError
from benchmark.data.readers.common import (
    check_present,
    drop_blank_rows,
    interactions_frame,
    make_dataset,
    pandas_errors,
    compression_of,
    read_text,
    require_nonempty,
    strip_compression,
    to_float,
    to_seconds,
)

# The 19 genre flags of u.item, in file order (as listed in the release's u.genre).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
# Placeholders meaning "no genre": they are not a genre a profile should show.
NO_GENRE = {"unknown", "(no genres listed)"}
# ML-100K item 267 has the title "unknown": a placeholder, not a title.
PLACEHOLDER_TITLES = {"unknown"}


def find_file(folder: Path, name: str) -> Path | None:
    """`name` or `name.gz` in folder."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _ratings_frame(df: pd.DataFrame, path: Path, first_line: int, fields: dict[str, str]) -> pd.DataFrame:
    """df has columns user, item, rating, timestamp (text or numbers); validate and convert.
    `fields` names the columns as the file calls them, for error messages."""
    df = drop_blank_rows(df)
    check_present(df, fields, path, first_line)
    rating = to_float(df["rating"], fields["rating"], path, first_line)
    timestamp = to_seconds(df["timestamp"], fields["timestamp"], path, first_line)
    return interactions_frame(df["user"].to_numpy(), df["item"].to_numpy(), rating, timestamp)


def _read_headerless(path: Path, sep: str, n_fields: int, id_columns: tuple[int, ...]) -> pd.DataFrame:
    """A headerless ratings file. Id columns are read as text; the others are left to the
    C parser's number inference (fast), and to_float reports any that are not numbers."""
    require_nonempty(path)
    with pandas_errors(path, "latin-1"):
        df = pd.read_csv(
            path, sep=sep, header=None, dtype=dict.fromkeys(id_columns, str), encoding="latin-1",
            quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[""], skip_blank_lines=False,
            compression=compression_of(path),
        )  # fmt: skip
    if df.shape[1] != n_fields:
        raise DataError(f"expected {n_fields} fields separated by {sep!r}, found {df.shape[1]}", path, 1)
    return df


def _finish_title(title: str) -> str | None:
    title = title.strip()
    return None if not title or title.lower() in PLACEHOLDER_TITLES else title


def _genres(names) -> str | None:
    kept = [g for g in names if g and g not in NO_GENRE]
    return "|".join(kept) if kept else None


# -- 100K -----------------------------------------------------------------------------------


def read_ml100k(folder: Path, name: str | None = None) -> Dataset:
    ratings_path = find_file(folder, "u.data")
    if ratings_path is None:
        raise DataError("MovieLens 100K folder has no u.data", folder)
    df = _read_headerless(ratings_path, "\t", 4, id_columns=(0, 1))
    df.columns = ["user", "item", "rating", "timestamp"]
    fields = {"user": "user id", "item": "item id", "rating": "rating", "timestamp": "timestamp"}
    interactions = _ratings_frame(df, ratings_path, 1, fields)

    notes: list[str] = []
    items_path = find_file(folder, "u.item")
    items = None
    if items_path is None:
        notes.append("no u.item beside u.data: items have no titles")
    else:
        items = _read_ml100k_items(items_path)
    return make_dataset(
        name=name or folder.name, interactions=interactions, items=items, source=folder,
        format="movielens-100k", notes=notes, ratings_path=ratings_path,
    )  # fmt: skip


def _read_ml100k_items(path: Path) -> pd.DataFrame:
    """u.item: id|title|release date|video release date|IMDb URL|19 genre flags (latin-1)."""
    rows = []
    for lineno, line in enumerate(read_text(path, "latin-1"), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 5 + len(ML100K_GENRES):
            raise DataError(f"expected {5 + len(ML100K_GENRES)} '|'-separated fields, found {len(fields)}", path, lineno)
        flags = fields[5:]
        if any(f not in ("0", "1") for f in flags):
            raise DataError("genre flags must be 0 or 1", path, lineno)
        if not fields[0].strip():
            raise DataError("missing field 'movie id'", path, lineno)
        genres = _genres(g for g, f in zip(ML100K_GENRES, flags) if f == "1")
        rows.append((fields[0].strip(), _finish_title(fields[1]), genres))
    return pd.DataFrame(rows, columns=["item_id", "title", "genres"])


# -- 1M -------------------------------------------------------------------------------------


def ml1m_ratings_file(folder: Path) -> Path:
    """ratings.dat[.gz]; a clear refusal when only a partial copy is there."""
    found = find_file(folder, "ratings.dat")
    if found is not None:
        return found
    others = sorted(p.name for p in folder.glob("ratings*.dat*") if p.is_file())
    if others:
        raise DataError(
            f"no ratings.dat (full ML-1M ratings) in this folder; only {', '.join(others)}, which is not "
            f"the full dataset. To load it anyway as a partial dataset, pass that file's path",
            folder,
        )
    raise DataError("MovieLens 1M folder has no ratings.dat", folder)


def read_ml1m(folder: Path, ratings_path: Path | None = None, name: str | None = None) -> Dataset:
    notes: list[str] = []
    if ratings_path is None:
        ratings_path = ml1m_ratings_file(folder)
    partial = strip_compression(ratings_path.name) != "ratings.dat"
    if partial:
        notes.append(
            f"PARTIAL: ratings read from {ratings_path.name}, not ratings.dat; this is not the full "
            f"ML-1M, so its statistics are not ML-1M benchmark numbers"
        )
    # "::" needs pandas' slow python engine; ":" with the C engine gives the four fields at
    # positions 0, 2, 4, 6 with empty fields between them (every ratings field is numeric).
    df = _read_headerless(ratings_path, ":", 7, id_columns=(0, 2))
    between = df[[1, 3, 5]].notna().to_numpy().any(axis=1)
    if between.any():
        raise DataError("fields must be separated by '::'", ratings_path, int(df.index[between.argmax()]) + 1)
    df = df[[0, 2, 4, 6]]
    df.columns = ["user", "item", "rating", "timestamp"]
    fields = {"user": "UserID", "item": "MovieID", "rating": "Rating", "timestamp": "Timestamp"}
    interactions = _ratings_frame(df, ratings_path, 1, fields)

    movies_path = find_file(folder, "movies.dat")
    items = None
    if movies_path is None:
        notes.append("no movies.dat beside the ratings: items have no titles")
    else:
        items = _read_ml1m_movies(movies_path)
    return make_dataset(
        name=name or (f"{folder.name} (partial: {ratings_path.name})" if partial else folder.name),
        interactions=interactions, items=items, source=ratings_path if partial else folder,
        format="movielens-1m", notes=notes, ratings_path=ratings_path,
    )  # fmt: skip


def _read_ml1m_movies(path: Path) -> pd.DataFrame:
    """movies.dat: MovieID::Title::Genres (latin-1)."""
    rows = []
    for lineno, line in enumerate(read_text(path, "latin-1"), 1):
        if not line.strip():
            continue
        fields = line.split("::")
        if len(fields) != 3:
            raise DataError(f"expected 3 '::'-separated fields, found {len(fields)}", path, lineno)
        if not fields[0].strip():
            raise DataError("missing field 'MovieID'", path, lineno)
        rows.append((fields[0].strip(), _finish_title(fields[1]), _genres(fields[2].strip().split("|"))))
    return pd.DataFrame(rows, columns=["item_id", "title", "genres"])


# -- latest-small / 25M / 32M ----------------------------------------------------------------


def _csv_header(path: Path, required: tuple[str, ...]) -> None:
    with pandas_errors(path):
        header = pd.read_csv(path, nrows=0, compression=compression_of(path)).columns
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"missing column {missing[0]!r} in the header (found: {', '.join(map(str, header))})", path, 1
        )


def read_ml_latest(folder: Path, name: str | None = None) -> Dataset:
    ratings_path = find_file(folder, "ratings.csv")
    if ratings_path is None:
        raise DataError("MovieLens folder has no ratings.csv", folder)
    require_nonempty(ratings_path)
    required = ("userId", "movieId", "rating", "timestamp")
    _csv_header(ratings_path, required)
    interactions = _read_ml_latest_ratings_arrow(ratings_path)
    if interactions is None:  # the pandas reader is the authority: it names the bad line
        with pandas_errors(ratings_path):
            # No usecols: with it pandas silently ignores a line with too many fields.
            df = pd.read_csv(
                ratings_path, dtype={"userId": str, "movieId": str},
                keep_default_na=False, na_values=[""], skip_blank_lines=False,
                compression=compression_of(ratings_path),
            )  # fmt: skip
        df = df[list(required)].rename(columns={"userId": "user", "movieId": "item"})
        fields = {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"}
        interactions = _ratings_frame(df, ratings_path, 2, fields)

    notes: list[str] = []
    movies_path = find_file(folder, "movies.csv")
    items = None
    if movies_path is None:
        notes.append("no movies.csv beside ratings.csv: items have no titles")
    else:
        items = _read_ml_latest_movies(movies_path)
    return make_dataset(
        name=name or folder.name, interactions=interactions, items=items, source=folder,
        format="movielens-latest", notes=notes, ratings_path=ratings_path,
    )  # fmt: skip


def _read_ml_latest_ratings_arrow(path: Path) -> pd.DataFrame | None:
    """Fast path for big ratings.csv files (ML-25M/32M): Arrow's multi-threaded CSV reader with
    the exact column types. None when the file is anything but clean (a missing or
    non-numeric field, a fractional timestamp, a wrong field count, damage): then the
    pandas reader reads it and reports the offending line."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:  # pragma: no cover - pandas 3 installs pyarrow alongside
        return None
    types = {"userId": pa.string(), "movieId": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()}
    try:
        with pa.input_stream(str(path), compression="gzip" if compression_of(path) else None) as stream:
            table = pa_csv.read_csv(stream, read_options=pa_csv.ReadOptions(block_size=1 << 24),
                                    convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                                          quoted_strings_can_be_null=False))
    except (pa.ArrowException, OSError, EOFError, ValueError):
        return None
    if table.num_rows == 0 or any(c not in table.column_names for c in types):
        return None
    if any(table[c].null_count for c in types):
        return None
    import pyarrow.compute as pc

    if not pc.all(pc.is_finite(table["rating"])).as_py():
        return None
    return interactions_frame(table["userId"].to_pandas(), table["movieId"].to_pandas(),
                              table["rating"].to_numpy(), table["timestamp"].to_numpy())


def _read_ml_latest_movies(path: Path) -> pd.DataFrame:
    require_nonempty(path)
    _csv_header(path, ("movieId", "title", "genres"))
    with pandas_errors(path):
        df = pd.read_csv(
            path, usecols=["movieId", "title", "genres"], dtype=str, keep_default_na=False,
            na_values=[""], compression=compression_of(path),
        )  # fmt: skip
    check_present(df, {"movieId": "movieId"}, path, 2)
    titles = [None if pd.isna(t) else _finish_title(t) for t in df["title"]]
    genres = [None if pd.isna(g) else _genres(g.split("|")) for g in df["genres"]]
    return pd.DataFrame({"item_id": df["movieId"].str.strip(), "title": titles, "genres": genres})
