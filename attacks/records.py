"""One record format for every attack, and the summary computed from records.

An attack on one example yields an AttackRecord. Status follows TextAttack:
"succeeded", "failed", "skipped" (the model already got the example wrong: nothing to
attack, counted), or "error" (the attack raised on this example: recorded, run goes on).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from benchmark import metrics

STATUSES = ("succeeded", "failed", "skipped", "error")
TOP_K = 10


@dataclass
class Perturbation:
    words_changed_pct: float | None = None  # share of words changed in the attacked text (text attacks)
    char_edits: int | None = None  # Levenshtein distance between original and perturbed text
    profile_edits: int | None = None  # history entries swapped/inserted/deleted/re-rated
    epsilon: float | None = None  # embedding-space perturbation size (relative L2 norm)


@dataclass
class AttackRecord:
    example_id: str
    attack: str
    task: str  # "preference" or "ranking"
    status: str
    original: Any  # text pair or profile (JSON-ready)
    perturbed: Any  # same shape as original; None when skipped/error
    score_before: float | list[float]  # preference: like-probability; ranking: score of the attacked item
    score_after: float | list[float] | None
    label: int | None = None  # preference label
    correct_before: bool | None = None  # preference
    correct_after: bool | None = None
    rank_before: int | None = None  # ranking: 1-based rank of the positive (demote) or target (promote)
    rank_after: int | None = None
    goal: str = ""  # "untargeted-classification", "demote-top10", "promote-top10", ...
    target_item: str | None = None
    success: bool = False
    queries: int = 0
    perturbation: Perturbation = field(default_factory=Perturbation)
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. substitutes used offline

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"record {self.example_id}: status {self.status!r} not in {STATUSES}")

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarize(records: Sequence[AttackRecord]) -> dict:
    """Clean vs robust metric, attack success rate (over examples the model got right),
    mean perturbation and mean queries (over attacked examples)."""
    n = len(records)
    counts = {s: sum(r.status == s for r in records) for s in STATUSES}
    attacked = [r for r in records if r.status in ("succeeded", "failed")]
    summary: dict[str, Any] = {"examples": n, **{f"n_{k}": v for k, v in counts.items()}}
    summary["attack_success_rate"] = counts["succeeded"] / len(attacked) if attacked else None
    summary["mean_queries"] = _mean([r.queries for r in attacked])
    summary["mean_seconds"] = _mean([r.seconds for r in attacked])
    for key in ("words_changed_pct", "char_edits", "profile_edits", "epsilon"):
        summary[f"mean_{key}"] = _mean([getattr(r.perturbation, key) for r in attacked if r.status == "succeeded"])
    valid = [r for r in records if r.status != "error"]
    if not valid:
        summary.update(clean={}, robust={})
        return summary
    task = valid[0].task
    if task == "preference":
        before = [bool(r.correct_before) for r in valid]
        after = [bool(r.correct_after if r.correct_after is not None else r.correct_before) for r in valid]
        summary["clean"] = {"accuracy": float(np.mean(before))}
        summary["robust"] = {"accuracy": float(np.mean(after))}
        labels = [r.label for r in valid]
        if len(set(labels)) == 2:
            s_before = [float(r.score_before) for r in valid]
            s_after = [float(r.score_after if r.score_after is not None else r.score_before) for r in valid]
            summary["clean"]["auc"] = metrics.auc(labels, s_before)
            summary["robust"]["auc"] = metrics.auc(labels, s_after)
    else:
        rb = np.array([r.rank_before for r in valid])
        ra = np.array([r.rank_after if r.rank_after is not None else r.rank_before for r in valid])
        promote = valid[0].goal.startswith("promote")
        if promote:
            # For a promotion attack the "metric" is how often the target stays out of the top-K.
            summary["clean"] = {f"target_out_of_top{TOP_K}": float(np.mean(rb > TOP_K))}
            summary["robust"] = {f"target_out_of_top{TOP_K}": float(np.mean(ra > TOP_K))}
        else:
            summary["clean"] = metrics.ranking_metrics(rb, TOP_K)
            summary["robust"] = metrics.ranking_metrics(ra, TOP_K)
    return _jsonable(summary)
