"""Human-readable original-vs-perturbed view of an attack record (`recrobust attack --show`)."""

from __future__ import annotations

import difflib
import sys

from attacks.records import AttackRecord


def _highlight(before: str, after: str, color: bool) -> tuple[str, str]:
    """Word-level diff: removed words [-like this-], added {+like this+} (or red/green on a TTY)."""
    a, b = before.split(), after.split()
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        old, new = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        if op == "equal":
            left.append(old)
            right.append(new)
            continue
        if old:
            left.append(f"\x1b[31m{old}\x1b[0m" if color else f"[-{old}-]")
        if new:
            right.append(f"\x1b[32m{new}\x1b[0m" if color else f"{{+{new}+}}")
    return " ".join(left), " ".join(right)


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " || ".join(f"{k}: {_as_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_as_text(v) for v in value)
    return str(value)


def format_record(record: AttackRecord, color: bool | None = None) -> str:
    color = sys.stdout.isatty() if color is None else color
    head = f"[{record.status}] {record.example_id} ({record.attack})"
    if record.task == "preference":
        head += f" p(like) {record.score_before:.3f} -> " + ("-" if record.score_after is None else f"{record.score_after:.3f}")
    else:
        head += f" rank {record.rank_before} -> {record.rank_after if record.rank_after is not None else '-'}"
    head += f", {record.queries} queries"
    if record.status in ("skipped", "error"):
        return head + (f"\n  error: {record.error}" if record.error else "") + "\n"
    before, after = _highlight(_as_text(record.original), _as_text(record.perturbed), color)
    return f"{head}\n  original:  {before}\n  perturbed: {after}\n"
