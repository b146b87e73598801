"""Per-attack statistics for the leaderboards, from the per-example rows of attack records.

Every attack cell is judged on its own examples: the clean metric on exactly the attacked
examples (before the attack) beside the robust metric after it, the attack success rate
over the examples the model got right (TextAttack's "skipped" examples, already wrong, are
not attacked), and the relative drop (clean - robust) / clean. Intervals come from the
per-example rows (percentile bootstrap within each seed, averaged over seeds, the same
scheme as the leaderboard's other intervals; the drop's interval resamples clean and robust
values of the same examples together). Also here: a column where every row scores the same
extreme (all 0, or nobody moved from clean) is degenerate; the area under a robustness-vs-
budget curve; the majority-label rate of a preference test split.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from benchmark.metrics import ndcg_at_k

TOLERANCE = 1e-9


# --------------------------------------------------------------------------- per-example values


def _rank_values(ranks: np.ndarray, metric: str) -> list[float] | None:
    if metric.startswith("ndcg@"):
        return ndcg_at_k(ranks, int(metric.split("@")[1])).tolist()
    if metric.startswith("hr@"):
        return (ranks <= int(metric.split("@")[1])).astype(float).tolist()
    if metric == "mrr":
        return (1.0 / ranks).tolist()
    if metric.startswith("target_out_of_top"):
        return (ranks > int(metric.rsplit("top", 1)[1])).astype(float).tolist()
    return None


def clean_same_values(rows: list[dict], metric: str) -> dict | None:
    """Per-example values of `metric` BEFORE the attack, on the attack record's own examples
    (errors excluded, as for the robust values). Same shape as the robust sample."""
    rows = [r for r in rows if r.get("status") != "error"]
    if not rows:
        return None
    ids = [r["example_id"] for r in rows]
    if metric == "accuracy":
        if any(r.get("correct_before") is None for r in rows):
            return None
        return {"ids": ids, "values": [float(bool(r["correct_before"])) for r in rows]}
    if metric == "auc":
        if any(r.get("label") is None for r in rows):
            return None
        return {"ids": ids, "labels": [r["label"] for r in rows], "scores": [float(r["score_before"]) for r in rows]}
    if any(r.get("rank_before") is None for r in rows):
        return None
    values = _rank_values(np.array([int(r["rank_before"]) for r in rows]), metric)
    return None if values is None else {"ids": ids, "values": values}


def success_values(rows: list[dict]) -> list[float]:
    """1/0 per attacked example (succeeded / failed); skipped and errored ones are not attacked."""
    return [float(r["status"] == "succeeded") for r in rows if r.get("status") in ("succeeded", "failed")]


# --------------------------------------------------------------------------- statistics


def auc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUC of every row of (labels, scores) matrices (Mann-Whitney U, average ranks for ties)."""
    from scipy.stats import rankdata

    ranks = rankdata(p, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * y).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _resampled(sample: dict, idx: np.ndarray) -> np.ndarray:
    """The statistic of `sample` on each row of resampling indices."""
    if "labels" in sample:
        y = np.asarray(sample["labels"]).astype(bool)
        return auc_rows(y[idx], np.asarray(sample["scores"], float)[idx])
    return np.asarray(sample["values"], float)[idx].mean(axis=1)


def sample_statistic(sample: dict) -> float:
    """The statistic of one sample: its mean, or its AUC for {labels, scores}."""
    n = len(sample["ids"])
    if n == 0:
        return math.nan
    return float(_resampled(sample, np.arange(n)[None, :])[0])


def relative_drop(clean: float, robust: float) -> float:
    """(clean - robust) / clean; NaN when the clean figure is 0 (nothing to lose)."""
    if clean is None or robust is None or not math.isfinite(clean) or abs(clean) < TOLERANCE:
        return math.nan
    return (clean - robust) / clean


def _percentile(stats: np.ndarray, level: float) -> tuple[float, float]:
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return (math.nan, math.nan)
    lo, hi = np.percentile(stats, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def drop_ci(pairs: Sequence[tuple[dict, dict]], n_boot: int = 1000, seed: int = 0,
            level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean-over-seeds relative drop. `pairs` holds one
    (clean sample, robust sample) per seed, both over the same examples in the same order;
    each bootstrap draw resamples examples once and applies the draw to both."""
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    used = 0
    for clean, robust in pairs:
        n = len(clean["ids"])
        if n == 0 or n != len(robust["ids"]):
            continue
        idx = rng.integers(0, n, size=(n_boot, n))
        c, r = _resampled(clean, idx), _resampled(robust, idx)
        with np.errstate(invalid="ignore", divide="ignore"):
            total += np.where(np.abs(c) < TOLERANCE, np.nan, (c - r) / c)
        used += 1
    if used == 0:
        return (math.nan, math.nan)
    return _percentile(total / used, level)


def mean_ci(samples: Sequence[Sequence[float]], n_boot: int = 1000, seed: int = 0,
            level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean over seeds of per-seed means (e.g. success rates)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    used = 0
    for values in samples:
        v = np.asarray(values, float)
        if len(v) == 0:
            continue
        total += v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
        used += 1
    if used == 0:
        return (math.nan, math.nan)
    return _percentile(total / used, level)


# --------------------------------------------------------------------------- columns and curves


def degenerate_reason(points: Sequence[tuple[float, float | None]]) -> str | None:
    """Why an attack column says nothing about the rows, or None. `points` holds one
    (robust, clean on the same examples) per row: every robust figure 0 ("all 0"), or every
    row exactly at its clean figure ("no effect": the attack moved nobody)."""
    points = [(r, c) for r, c in points if r is not None and math.isfinite(r)]
    if not points:
        return None
    if all(abs(r) < TOLERANCE for r, _ in points):
        return "all 0"
    if all(c is not None and math.isfinite(c) and abs(r - c) < TOLERANCE for r, c in points):
        return "no effect"
    return None


def curve_area(points: dict[float, float]) -> float:
    """Normalised area under a robustness-vs-budget curve: the trapezoid integral divided by
    the budget range, i.e. the curve's mean height over the budgets measured (in metric
    units, comparable across rows measured on the same budgets). NaN with fewer than 2 points."""
    xs = sorted(x for x, y in points.items() if y is not None and math.isfinite(y))
    if len(xs) < 2 or xs[-1] == xs[0]:
        return math.nan
    ys = [points[x] for x in xs]
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return float(area / (xs[-1] - xs[0]))


def majority_rate(rows: list[dict]) -> float | None:
    """Share of the more frequent label among clean-evaluation rows (preference task)."""
    labels = [int(r["label"]) for r in rows if r.get("label") is not None]
    if not labels:
        return None
    p = float(np.mean(labels))
    return max(p, 1.0 - p)
