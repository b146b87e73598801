"""Amazon review readers: the 2014, 2018 and 2023 editions (McAuley lab), gz or not.

- 2014: reviews are JSON lines (reviewerID, asin, overall, unixReviewTime); metadata lines
  are Python literals (single quotes), read with ast.literal_eval, never eval.
- 2018: JSON lines with the same review keys; metadata JSON lines with title, brand,
  category, description.
- 2023: JSONL with user_id, parent_asin, rating, timestamp (milliseconds); metadata with
  parent_asin, title, categories, description, store. Items are parent_asin, the key the
  metadata uses.

Metadata sits beside the reviews as meta_<Category>.json[l][.gz] or is given explicitly.
Its values are kept raw (some 2018 titles are HTML fragments); rendering cleans them.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.dataset import Dataset
from benchmark.data.errors import DataError
from benchmark.data.readers.common import (
    interactions_frame,
    is_gzip,
    iter_lines,
    join_values,
    make_dataset,
    require_nonempty,
    strip_compression,
)

AMAZON_FORMATS = ("amazon2014", "amazon2018", "amazon2023")


@dataclass(frozen=True)
class ReviewKeys:
    user: str
    item: str
    rating: str
    time: str
    text: str
    summary: str
    time_divisor: int  # 1000 for millisecond timestamps


REVIEW_KEYS = {
    "amazon2014": ReviewKeys("reviewerID", "asin", "overall", "unixReviewTime", "reviewText", "summary", 1),
    "amazon2018": ReviewKeys("reviewerID", "asin", "overall", "unixReviewTime", "reviewText", "summary", 1),
    "amazon2023": ReviewKeys("user_id", "parent_asin", "rating", "timestamp", "text", "title", 1000),
}
META_ID_KEY = {"amazon2014": "asin", "amazon2018": "asin", "amazon2023": "parent_asin"}
# Cheap look at a metadata line's id before parsing it: meta files are far larger than
# the 5-core review files and only the reviewed items are wanted.
_META_ID = {
    "amazon2014": re.compile(rb"""['"]asin['"]\s*:\s*['"]([^'"]+)['"]"""),
    "amazon2018": re.compile(rb'"asin"\s*:\s*"([^"]+)"'),
    "amazon2023": re.compile(rb'"parent_asin"\s*:\s*"([^"]+)"'),
}


def category_of(path: Path) -> str:
    """reviews_Musical_Instruments_5.json.gz, Gift_Cards_5.json.gz, Gift_Cards.jsonl -> the
    category name the metadata file is named after."""
    stem = strip_compression(path.name)
    stem = re.sub(r"\.jsonl?$", "", stem, flags=re.IGNORECASE)
    stem = re.sub(r"^reviews_", "", stem)
    return re.sub(r"_\d+$", "", stem)  # k-core suffix (_5)


def meta_candidates(reviews_path: Path) -> list[Path]:
    cat = category_of(reviews_path)
    folder = reviews_path.parent
    return [folder / f"meta_{cat}{ext}{gz}" for ext in (".json", ".jsonl") for gz in (".gz", "")]


def find_meta(reviews_path: Path) -> Path | None:
    return next((p for p in meta_candidates(reviews_path) if p.is_file()), None)


def _utf8_error(raw: bytes, exc: UnicodeDecodeError, path: Path, lineno: int) -> DataError:
    return DataError(f"not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})", path, lineno)


def parse_line(raw: bytes, path: Path, lineno: int, python_literals: bool = False) -> dict:
    """One record. JSON first; 2014 metadata (python_literals) falls back to literal_eval."""
    try:
        record = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise _utf8_error(raw, exc, path, lineno) from None
    except ValueError as exc:
        if not python_literals:
            raise DataError(f"not a JSON object ({exc})", path, lineno) from None
        try:
            record = ast.literal_eval(raw.decode("utf-8"))
        except UnicodeDecodeError as uexc:
            raise _utf8_error(raw, uexc, path, lineno) from None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataError(f"neither a JSON object nor a Python literal (JSON: {exc})", path, lineno) from None
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, found {type(record).__name__}", path, lineno)
    return record


def first_record(path: Path, python_literals: bool = False) -> dict:
    for lineno, raw in iter_lines(path):
        if raw.strip():
            return parse_line(raw, path, lineno, python_literals)
    raise DataError("empty file", path)


def _first_bad(values: list, ok, lines: list[int]) -> int | None:
    """Line of the first value for which ok(value) is false (the slow re-scan)."""
    for value, line in zip(values, lines):
        if not ok(value):
            return line
    return None


def _is_number(value) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def _is_id(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip() != ""


def _review_text(summary, text) -> str:
    parts = [p.strip() for p in (summary, text) if isinstance(p, str) and p.strip()]
    return "\n".join(parts)


def read_reviews(path: Path, fmt: str, text: bool = True) -> pd.DataFrame:
    """Fast path: Arrow's JSON reader, parsing only the keys we keep. Anything it cannot
    take cleanly (a bad line, a missing key, Python-literal lines, gzip damage) goes to the
    line-by-line reader, which is the authority and names the offending line.
    text=False: no "review" column (the review text is neither parsed into columns nor kept)."""
    require_nonempty(path)
    fast = _read_reviews_arrow(path, fmt, text) if fmt != "amazon2014" else None
    return fast if fast is not None else _read_reviews_lines(path, fmt, text)


def _read_reviews_arrow(path: Path, fmt: str, text: bool = True) -> pd.DataFrame | None:
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pandas 3 installs pyarrow alongside
        return None
    keys = REVIEW_KEYS[fmt]
    fields = [(keys.user, pa.string()), (keys.item, pa.string()), (keys.rating, pa.float64()), (keys.time, pa.int64())]
    if text:
        fields += [(keys.text, pa.string()), (keys.summary, pa.string())]
    try:
        return _arrow_frame(path, keys, pa.schema(fields), text)
    except (pa.ArrowException, OSError, EOFError, ValueError):
        return None


def _arrow_frame(path: Path, keys: ReviewKeys, schema, text: bool = True) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pa_json

    with pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None) as stream:
        table = pa_json.read_json(
            stream,
            read_options=pa_json.ReadOptions(block_size=1 << 24),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )

    def trimmed(column: str):
        values = pc.utf8_trim_whitespace(table[column])  # also validates UTF-8
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)

    users, items = trimmed(keys.user), trimmed(keys.item)
    ratings, times = table[keys.rating], table[keys.time]
    if table.num_rows == 0 or any(c.null_count for c in (users, items, ratings, times)):
        return None
    if not pc.all(pc.is_finite(ratings)).as_py():
        return None
    review = None
    if text:
        review = pc.binary_join_element_wise(trimmed(keys.summary), trimmed(keys.text), "\n", null_handling="skip")
        review = review.to_pandas()
    return interactions_frame(
        users.to_pandas(), items.to_pandas(), ratings.to_numpy(), times.to_numpy() // keys.time_divisor, review,
    )  # fmt: skip


def _read_reviews_lines(path: Path, fmt: str, text: bool = True) -> pd.DataFrame:
    keys = REVIEW_KEYS[fmt]
    users: list = []
    items: list = []
    ratings: list = []
    times: list = []
    summaries: list = []
    texts: list = []
    lines: list[int] = []
    for lineno, raw in iter_lines(path):
        if not raw.strip():
            continue
        rec = parse_line(raw, path, lineno, python_literals=fmt == "amazon2014")
        try:
            users.append(rec[keys.user])
            items.append(rec[keys.item])
            ratings.append(rec[keys.rating])
            times.append(rec[keys.time])
        except KeyError as exc:
            raise DataError(f"missing key {exc.args[0]!r}", path, lineno) from None
        if text:
            summaries.append(rec.get(keys.summary))
            texts.append(rec.get(keys.text))
        lines.append(lineno)
    if not lines:
        raise DataError("empty file", path)

    # Vectorised conversion; only when it fails is the offending line looked up.
    for values, key in ((users, keys.user), (items, keys.item)):
        line = _first_bad(values, _is_id, lines)
        if line is not None:
            raise DataError(f"key {key!r} is empty or not a string", path, line)
    for values, key in ((ratings, keys.rating), (times, keys.time)):
        try:
            numbers = np.asarray(values, dtype="float64")
            good = bool(np.isfinite(numbers).all()) and not any(v is None or isinstance(v, bool) for v in values)
        except (TypeError, ValueError):
            good = False
        if not good:
            line = _first_bad(values, _is_number, lines)
            bad = values[lines.index(line)] if line is not None else None
            raise DataError(f"key {key!r} is not a number: {bad!r}", path, line)
    timestamps = np.floor(np.asarray(times, dtype="float64") / keys.time_divisor).astype("int64")
    reviews = [_review_text(s, t) for s, t in zip(summaries, texts)] if text else None
    return interactions_frame(
        [str(u).strip() for u in users], [str(i).strip() for i in items],
        np.asarray(ratings, dtype="float64"), timestamps, reviews,
    )  # fmt: skip


def _description(value) -> str | None:
    """2014: a string; 2018 and 2023: a list of paragraphs ("|"-joined like other lists)."""
    if isinstance(value, list):
        return join_values(value)
    return value.strip() or None if isinstance(value, str) else None


def _meta_row(rec: dict, fmt: str) -> dict:
    title = rec.get("title")
    row = {"title": title if isinstance(title, str) else None}
    if fmt == "amazon2014":
        row["categories"] = join_values(rec.get("categories"))
        row["brand"] = rec.get("brand") if isinstance(rec.get("brand"), str) else None
    elif fmt == "amazon2018":
        row["categories"] = join_values(rec.get("category"))
        row["brand"] = rec.get("brand") if isinstance(rec.get("brand"), str) else None
    else:  # 2023 has no brand field: details["Brand"] where given, else the store name
        details = rec.get("details") if isinstance(rec.get("details"), dict) else {}
        brand = details.get("Brand") or rec.get("store")
        row["categories"] = join_values(rec.get("categories"))
        row["brand"] = brand if isinstance(brand, str) else None
    row["description"] = _description(rec.get("description"))
    if row["brand"] is not None:
        row["brand"] = row["brand"].strip() or None
    return row


def read_meta(path: Path, fmt: str, wanted: set[str]) -> pd.DataFrame:
    """Metadata rows for the wanted item ids (first record wins when an id repeats)."""
    require_nonempty(path)
    id_key = META_ID_KEY[fmt]
    peek = _META_ID[fmt]
    rows: dict[str, dict] = {}
    for lineno, raw in iter_lines(path):
        if not raw.strip():
            continue
        hint = peek.search(raw)
        if hint is not None:
            hinted = hint.group(1).decode("utf-8", "replace")
            if hinted not in wanted or hinted in rows:
                continue
        rec = parse_line(raw, path, lineno, python_literals=fmt == "amazon2014")
        item = rec.get(id_key)
        if not _is_id(item):
            raise DataError(f"missing key {id_key!r}", path, lineno)
        item = str(item).strip()
        if item in wanted and item not in rows:
            rows[item] = {"item_id": item, **_meta_row(rec, fmt)}
    columns = ["item_id", "title", "categories", "brand", "description"]
    return pd.DataFrame(list(rows.values()), columns=columns)


def read_amazon(path: Path, fmt: str, meta: Path | None = None, name: str | None = None,
                text: bool = True) -> Dataset:
    """text=False: leave the review text out (no template renders it; it is most of the file)."""
    if fmt not in AMAZON_FORMATS:
        raise ValueError(f"not an Amazon format: {fmt}")
    interactions = read_reviews(path, fmt, text=text)
    notes: list[str] = []
    if meta is None:
        meta = find_meta(path)
        if meta is None:
            looked = ", ".join(p.name for p in meta_candidates(path))
            notes.append(f"no metadata found (looked for {looked} beside the reviews): items have no titles")
    elif not meta.is_file():
        raise DataError("metadata file does not exist", meta)
    items = None
    if meta is not None:
        wanted = set(interactions["item_id"].unique())
        items = read_meta(meta, fmt, wanted)
        notes.append(f"metadata from {meta.name}: {len(items)} of {len(wanted)} reviewed items have a record")
    return make_dataset(
        name=name or re.sub(r"\.jsonl?$", "", strip_compression(path.name), flags=re.IGNORECASE),
        interactions=interactions, items=items, source=path, format=fmt, notes=notes, ratings_path=path,
    )  # fmt: skip
