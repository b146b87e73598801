"""Result records: one JSON file per suite cell, validated against a versioned JSON Schema,
with per-example records as JSON lines beside it.

A record keeps what is deterministic for a seed (the cell config, ``metrics``, ``training``
curves) apart from what is not (``timings``, ``environment``), so two runs with one seed
give identical metric blocks. Files are written atomically (temp file, then ``os.replace``):
a killed run leaves either the old file or the new one, never half of one. The JSON record
is written after its JSON-lines file and stores that file's sha256, so a record is only
valid when its per-example file is complete.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import math
import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from benchmark.files import atomic_write_bytes as _atomic_write_bytes
from benchmark.files import sha256_file

SCHEMA_VERSION = "1.0"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
RECORD_SUFFIX = ".json"
EXAMPLES_SUFFIX = ".examples.jsonl"
STATUSES = ("ok", "failed", "unavailable")
# Attack-summary keys that measure time, not robustness: moved to the timings block.
_TIMING_KEYS = ("mean_seconds", "seconds", "total_seconds")


class RecordError(ValueError):
    """An invalid result record; the message names the file and the offending field."""


# --------------------------------------------------------------------------- JSON helpers


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, NaN/inf -> None, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Path):
        return str(value)
    return value


def canonical_json(value: Any) -> str:
    """Deterministic compact JSON (sorted keys): the input of content hashes."""
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def content_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode("ascii")).hexdigest()[:length]


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name} is not valid JSON")


def loads_strict(text: str) -> Any:
    """json.loads that refuses NaN/Infinity (Python's json accepts them by default)."""
    return json.loads(text, parse_constant=_reject_constant)


def write_json_atomic(path: str | Path, value: Any) -> Path:
    path = Path(path)
    text = json.dumps(jsonable(value), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _atomic_write_bytes(path, text.encode("utf-8"))
    return path


def write_jsonl_atomic(path: str | Path, rows: Iterable[Any]) -> tuple[str, int]:
    """Write rows as JSON lines atomically; returns (sha256 of the file, row count)."""
    path = Path(path)
    lines = [json.dumps(jsonable(r), sort_keys=True, ensure_ascii=False, allow_nan=False) for r in rows]
    data = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
    _atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), len(lines)


# --------------------------------------------------------------------------- schema


@lru_cache(maxsize=None)
def load_schema(name: str = "result") -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def schema_errors(instance: Any, schema_name: str, where: str = "") -> list[str]:
    """Every schema violation as 'WHERE: at FIELD: message' (sorted, stable)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        field = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"{where + ': ' if where else ''}at {field}: {err.message}")
    return out


def nonfinite_fields(value: Any, prefix: str = "") -> list[str]:
    """Paths of NaN/inf floats anywhere inside `value` (a loaded record should have none)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += nonfinite_fields(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += nonfinite_fields(v, f"{prefix}/{i}")
    elif isinstance(value, float) and not math.isfinite(value):
        found.append(prefix or "(value)")
    return found


def validate_record(record: Any, where: str = "record") -> list[str]:
    """Problems with a loaded record: schema violations and non-finite numbers (empty = valid)."""
    problems = schema_errors(record, "result", where)
    problems += [f"{where}: at {p}: non-finite number" for p in nonfinite_fields(record)]
    return problems


# --------------------------------------------------------------------------- environment


@lru_cache(maxsize=1)
def git_commit(repo: str | None = None) -> str | None:
    """The checkout's commit (None outside a git checkout or without git)."""
    root = Path(repo) if repo else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def code_version() -> str:
    """The package version: part of every cell id, so a release that changes results makes
    new cells. The git commit is not part of it (it is recorded in each record's
    environment): committed reference results must resume in a later checkout instead of
    being recomputed after every commit. A change that alters a figure bumps the version."""
    from benchmark import __version__

    return __version__


_PACKAGES = ("recrobust", "torch", "transformers", "textattack", "numpy", "pandas", "scipy", "scikit-learn", "implicit")


def environment() -> dict:
    """Where a record was produced: not part of the metrics, not part of the cell id."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    device = "cpu"
    torch = sys.modules.get("torch")  # only report what is already imported: no import cost here
    if torch is not None:
        try:
            if torch.cuda.is_available():
                device = f"cuda:{torch.cuda.get_device_name(0)}"
        except Exception:  # a broken CUDA set-up must not fail a record
            pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "packages": versions,
        "git_commit": git_commit(),
    }


# --------------------------------------------------------------------------- building


def split_attack_summary(summary: dict) -> tuple[dict, dict, dict, dict]:
    """(clean, robust, rest of the summary, timings) from an attack summary."""
    summary = jsonable(dict(summary or {}))
    clean = summary.pop("clean", {}) or {}
    robust = summary.pop("robust", {}) or {}
    timings = {k: summary.pop(k) for k in list(summary) if k in _TIMING_KEYS}
    return clean, robust, summary, timings


def base_record(kind: str, cell_id: str, suite: dict, cell: dict, code: str, train_id: str | None = None) -> dict:
    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "cell_id": cell_id,
        "status": "ok",
        "suite": suite,
        "cell": cell,
        "code_version": code,
        "metrics": {},
        "per_example": None,
        "error": None,
        "environment": environment(),
        "timings": {},
    }
    if kind == "attack":
        record["train_id"] = train_id
    else:
        record["training"] = None
        record["model_dir"] = None
    return record


def failure(record: dict, err: BaseException, status: str = "failed", tb: str | None = None) -> dict:
    """Mark `record` failed (or unavailable) with the error; metrics are dropped."""
    record = dict(record)
    record["status"] = status
    record["metrics"] = {}
    record["per_example"] = None
    record["error"] = {"type": type(err).__name__, "message": str(err), "traceback": tb}
    return record


# --------------------------------------------------------------------------- reading


def record_path(records_dir: str | Path, cell_id: str) -> Path:
    return Path(records_dir) / f"{cell_id}{RECORD_SUFFIX}"


def examples_path(records_dir: str | Path, cell_id: str) -> Path:
    return Path(records_dir) / f"{cell_id}{EXAMPLES_SUFFIX}"


def read_record(path: str | Path, check_examples: bool = True) -> dict:
    """Load and validate one record; raises RecordError naming the file and field."""
    path = Path(path)
    try:
        record = loads_strict(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RecordError(f"{path}: unreadable record ({err})") from err
    problems = validate_record(record, where=str(path))
    if problems:
        raise RecordError("; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
    if record["cell_id"] + RECORD_SUFFIX != path.name:
        raise RecordError(f"{path}: cell_id {record['cell_id']!r} does not match the file name")
    pe = record.get("per_example")
    if check_examples and pe:
        jsonl = path.with_name(pe["file"])
        if not jsonl.is_file():
            raise RecordError(f"{path}: per-example file {jsonl.name} is missing")
        if sha256_file(jsonl) != pe["sha256"]:
            raise RecordError(f"{path}: per-example file {jsonl.name} does not match its recorded sha256")
    return record


# How a per-example file is packed, by its name: plain JSON lines, gzip (an earlier form of
# committed results) or xz (what compress_examples writes: a third smaller than gzip here).
_OPENERS = {".gz": gzip.open, ".xz": lzma.open}


def _open_examples(path: Path):
    return _OPENERS.get(path.suffix, open)(path, "rt", encoding="utf-8")


def read_examples(record_file: str | Path, record: dict) -> list[dict]:
    """The per-example rows of a record (empty when it has none); plain, gzip or xz JSON lines."""
    pe = record.get("per_example")
    if not pe:
        return []
    jsonl = Path(record_file).with_name(pe["file"])
    rows = []
    with _open_examples(jsonl) as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(loads_strict(line))
                except ValueError as err:
                    raise RecordError(f"{jsonl}:{lineno}: bad JSON line ({err})") from err
    return rows


def compress_examples(record_file: str | Path, min_bytes: int = 0,
                      rewrite: Callable[[dict], dict] | None = None) -> bool:
    """Replace a record's per-example file by its xz (``.examples.jsonl.xz``) when it holds
    at least `min_bytes` (a gzip file is repacked whatever its size); the record's
    ``per_example`` (file, sha256) is updated. For committed results (results/standard).
    `rewrite`, when given, maps each row to the form it is kept in (see
    attacks.poisoning.slim_row); without it the rows are kept whole. The output is
    deterministic (xz stores no name or time), so the same rows give the same bytes.
    Returns whether the record changed. Both files are written atomically, the record last."""
    record_file = Path(record_file)
    record = read_record(record_file)
    pe = record.get("per_example")
    if not pe:
        return False
    current = record_file.with_name(pe["file"])
    if current.suffix == ".xz" and rewrite is None:
        return False
    if current.suffix == ".jsonl" and rewrite is None and current.stat().st_size < min_bytes:
        return False
    rows = read_examples(record_file, record)
    if rewrite is not None:
        rows = [rewrite(r) for r in rows]
    data = "".join(json.dumps(jsonable(r), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    packed = lzma.compress(data.encode("utf-8"), format=lzma.FORMAT_XZ, preset=6)
    target = record_file.with_name(record["cell_id"] + EXAMPLES_SUFFIX + ".xz")
    if target == current and sha256_file(current) == hashlib.sha256(packed).hexdigest():
        return False
    _atomic_write_bytes(target, packed)
    record["per_example"] = {**pe, "file": target.name, "sha256": hashlib.sha256(packed).hexdigest(),
                             "count": len(rows)}
    write_json_atomic(record_file, record)
    if current != target:
        current.unlink()
    return True


def iter_record_files(root: str | Path) -> Iterator[Path]:
    """Every record file under `root` (records/ folders of runs and submissions), sorted."""
    root = Path(root)
    if not root.exists():
        return iter(())
    # Hidden folders (work dirs of evaluations, bundles, temp copies) and files are not results.
    return iter(sorted(p for p in root.rglob(f"*{RECORD_SUFFIX}") if p.parent.name == "records"
                       and not any(part.startswith(".") for part in p.relative_to(root).parts)))


def load_records(root: str | Path, strict: bool = False) -> tuple[list[tuple[Path, dict]], list[str]]:
    """(path, record) for every valid record under `root`, plus the problems of invalid ones
    (raised instead when strict)."""
    good, bad = [], []
    for path in iter_record_files(root):
        try:
            good.append((path, read_record(path)))
        except RecordError as err:
            if strict:
                raise
            bad.append(str(err))
    return good, bad
