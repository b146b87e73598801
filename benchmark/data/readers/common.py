"""Shared plumbing for the readers: gzip-aware opening, turning low-level failures into
one-line DataErrors that name the file and line, and building a Dataset that follows the
column contract in benchmark/data/dataset.py."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from benchmark.data.dataset import ITEM_TEXT_COLUMNS, Dataset
from benchmark.data.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
# Low-level exceptions that mean "the compressed stream is damaged".
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)

# The one note format for the duplicate filter; stats.py reads the count back from it.
_DUPLICATES_NOTE = "dropped {n} duplicate lines from {file} (same user, item, rating and timestamp; first kept)"
_DUPLICATES_RE = re.compile(r"^dropped (\d+) duplicate lines\b")


def is_gzip(path: Path) -> bool:
    """By content, not by name: people rename files."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def compression_of(path: Path) -> str | None:
    """The `compression` argument for pandas readers."""
    return "gzip" if is_gzip(path) else None


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def strip_compression(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def gzip_error(path: Path, exc: BaseException, line: int | None = None) -> DataError:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = f" after line {line}" if line else ""
    err = DataError(f"truncated or corrupt gzip{where} ({detail})", path)
    err.gzip_damage = True  # type: ignore[attr-defined]
    return err


def gzip_damage(path: Path) -> DataError | None:
    """Read a gz file to its end: damage in the middle of a stream can decompress to
    garbage that only the end-of-stream CRC check catches. Used after a parse error, so
    that the user hears about the damaged file rather than about the garbage."""
    if not path.is_file() or not is_gzip(path):
        return None
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except GZIP_ERRORS as exc:
        return gzip_error(path, exc)
    return None


def require_nonempty(path: Path) -> None:
    """Empty (or, for gz, empty once decompressed) files get their own clear message."""
    if path.stat().st_size == 0:
        raise DataError("empty file", path)
    if is_gzip(path):
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(1)
        except GZIP_ERRORS as exc:
            raise gzip_error(path, exc) from None
        if not head:
            raise DataError("empty file (the gzip decompresses to nothing)", path)


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) pairs; gzip damage becomes a DataError."""
    lineno = 0
    try:
        with open_binary(path) as fh:
            for lineno, raw in enumerate(fh, 1):  # noqa: B007 - lineno is used after the loop
                yield lineno, raw
    except GZIP_ERRORS as exc:
        raise gzip_error(path, exc, lineno) from None


def first_undecodable_line(path: Path, encoding: str) -> tuple[int, str] | None:
    """Re-scan after a fast reader failed to decode: which line is it?"""
    for lineno, raw in iter_lines(path):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as exc:
            return lineno, f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
    return None


def encoding_error(path: Path, encoding: str) -> DataError:
    found = first_undecodable_line(path, encoding)
    if found is None:
        return DataError(f"not valid {encoding.upper()} text", path)
    line, what = found
    return DataError(f"not valid {encoding.upper()} text ({what})", path, line)


@contextmanager
def pandas_errors(path: Path, encoding: str = "utf-8") -> Iterator[None]:
    """Translate what pandas raises while parsing a file into a DataError naming it."""
    try:
        yield
    except DataError:
        raise
    except GZIP_ERRORS as exc:
        raise gzip_error(path, exc) from None
    except UnicodeDecodeError:
        raise encoding_error(path, encoding) from None
    except pd.errors.EmptyDataError:
        raise DataError("empty file", path) from None
    except pd.errors.ParserError as exc:
        # The C parser says e.g. "Error tokenizing data. C error: Expected 4 fields in line 7, saw 5".
        text = str(exc).strip().splitlines()[-1]
        match = re.search(r"line (\d+)", text)
        detail = text.split("C error: ")[-1]
        raise DataError(f"malformed line: {detail}", path, int(match.group(1)) if match else None) from None


# -- validating parsed columns (vectorised; the line number is only looked up on failure) --


def _line_of(values: pd.Series, bad: np.ndarray, first_line: int) -> tuple[int, int]:
    """(position, file line) of the first flagged row. The frame index is the row's
    position in the file, so blank lines that were dropped do not shift line numbers."""
    pos = int(np.argmax(bad))
    return pos, first_line + int(values.index[pos])


def check_present(df: pd.DataFrame, columns: dict[str, str], path: Path, first_line: int) -> None:
    """No empty fields. `columns` maps frame column -> field name shown to the user;
    the row labelled i in the frame is file line `first_line + i`."""
    for column, field_name in columns.items():
        missing = df[column].isna().to_numpy()
        if missing.any():
            _, line = _line_of(df[column], missing, first_line)
            raise DataError(f"missing field {field_name!r}", path, line)


def to_float(values: pd.Series, field_name: str, path: Path, first_line: int) -> np.ndarray:
    """Numeric column as float64; the first non-numeric value is reported with its line."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype="float64")
    numeric = pd.to_numeric(values, errors="coerce")
    bad = (numeric.isna() & values.notna()).to_numpy()
    if bad.any():
        pos, line = _line_of(values, bad, first_line)
        raise DataError(f"field {field_name!r} is not a number: {values.iloc[pos]!r}", path, line)
    return numeric.to_numpy(dtype="float64")


def to_seconds(values: pd.Series, field_name: str, path: Path, first_line: int, divisor: int = 1) -> np.ndarray:
    """Timestamps as int64 seconds (divisor 1000 for millisecond files)."""
    as_float = to_float(values, field_name, path, first_line)
    bad = ~np.isfinite(as_float)
    if bad.any():
        _, line = _line_of(values, bad, first_line)
        raise DataError(f"field {field_name!r} is not a finite timestamp", path, line)
    return (as_float // divisor).astype("int64") if divisor != 1 else np.floor(as_float).astype("int64")


# -- building the Dataset ------------------------------------------------------------------


def duplicates_note(n: int, file_name: str) -> str:
    return _DUPLICATES_NOTE.format(n=n, file=file_name)


def duplicates_dropped(notes: list[str]) -> int:
    """How many duplicate lines a reader dropped, read back from Dataset.notes."""
    return sum(int(m.group(1)) for note in notes if (m := _DUPLICATES_RE.match(note)))


def interactions_frame(
    user_id, item_id, rating, timestamp, review=None
) -> pd.DataFrame:
    columns = {
        "user_id": pd.Series(user_id, dtype="str"),
        "item_id": pd.Series(item_id, dtype="str"),
        "rating": pd.Series(rating, dtype="float64"),
        "timestamp": pd.Series(timestamp, dtype="int64"),
    }
    if review is not None:
        columns["review"] = pd.Series(review, dtype="str")
    return pd.DataFrame(columns)


def drop_duplicates(interactions: pd.DataFrame, file_name: str, notes: list[str]) -> pd.DataFrame:
    """Exact repeats (same user, item, rating, time) are a documented filter, not silent.
    Two NaN ratings count as equal, so implicit repeats are caught too."""
    key = ["user_id", "item_id", "rating", "timestamp"]
    dup = interactions.duplicated(subset=key, keep="first")
    n = int(dup.sum())
    if n:
        notes.append(duplicates_note(n, file_name))
        interactions = interactions.loc[~dup.to_numpy()].reset_index(drop=True)
    return interactions


def items_frame(records: pd.DataFrame | None, interacted: pd.Series) -> pd.DataFrame:
    """Item catalog indexed by item_id (str) with "title" and any ITEM_TEXT_COLUMNS present;
    every interacted item gets a row (empty where there was no metadata). Empty strings
    become <NA> so "no value" has one representation."""
    if records is None or records.empty:
        records = pd.DataFrame({"item_id": pd.Series([], dtype="str"), "title": pd.Series([], dtype="str")})
    keep = ["item_id", "title"] + [c for c in ITEM_TEXT_COLUMNS if c in records.columns]
    items = records[keep].copy()
    items["item_id"] = items["item_id"].astype("str")
    items = items.drop_duplicates(subset="item_id", keep="first").set_index("item_id")
    missing = pd.Index(pd.unique(interacted.astype("str"))).difference(items.index)
    if len(missing):
        items = pd.concat([items, pd.DataFrame(index=pd.Index(missing, name="item_id"), columns=items.columns)])
    for column in items.columns:
        values = items[column].astype("str")
        values = values.where(items[column].notna() & (values.str.strip() != ""))
        items[column] = values
    items.index = items.index.astype("str")
    items.index.name = "item_id"
    return items


def make_dataset(
    *,
    name: str,
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    source: Path,
    format: str,
    notes: list[str],
    ratings_path: Path,
) -> Dataset:
    if interactions.empty:
        raise DataError("no interactions in file", ratings_path)
    interactions = drop_duplicates(interactions, ratings_path.name, notes)
    catalog = items_frame(items, interactions["item_id"])
    return Dataset(name=name, interactions=interactions, items=catalog, source=str(source), format=format, notes=notes)


def join_values(values, sep: str = "|") -> str | None:
    """List-ish metadata -> "|"-joined string (None when nothing usable is left)."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        if isinstance(v, (list, tuple)):  # 2014 categories are lists of category paths
            out.extend(str(x).strip() for x in v)
        elif v is not None:
            out.append(str(v).strip())
    seen: dict[str, None] = {}
    for v in out:
        if v and v not in seen:
            seen[v] = None
    return sep.join(seen) if seen else None


def drop_blank_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Blank lines carry nothing; they are read (skip_blank_lines=False) only so that the
    frame index stays equal to the line offset, then dropped here."""
    blank = df.isna().all(axis=1).to_numpy()
    return df.loc[~blank] if blank.any() else df


def read_text(path: Path, encoding: str) -> list[str]:
    """Whole (small) file as lines, for the metadata files parsed line by line."""
    require_nonempty(path)
    chunks = [raw for _, raw in iter_lines(path)]
    try:
        return b"".join(chunks).decode(encoding).splitlines()
    except UnicodeDecodeError:
        raise encoding_error(path, encoding) from None
