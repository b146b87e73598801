"""Evaluation metrics. Preference: AUC (primary), accuracy, log-loss. Ranking: HR@K, NDCG@K, MRR.

Ranking metrics take, per example, the scores of its candidates and the index of the
held-out positive. Ties are counted pessimistically for the positive (an item scored equal
to the positive ranks above it), so a constant scorer gets no credit for candidate order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import rankdata

from benchmark.tasks import TASK_SPECS

EPS = 1e-7


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC via the Mann-Whitney U statistic (average ranks for ties). NaN if one class only."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy(labels: Sequence[int], probs: Sequence[float], threshold: float = 0.5) -> float:
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=float)
    return float(np.mean((p >= threshold).astype(int) == y)) if len(y) else float("nan")


def log_loss(labels: Sequence[int], probs: Sequence[float]) -> float:
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probs, dtype=float), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else float("nan")


def positive_ranks(scores: Sequence[np.ndarray], positives: Sequence[int]) -> np.ndarray:
    """1-based rank of each example's positive among its candidates (ties pessimistic)."""
    ranks = np.empty(len(scores), dtype=np.int64)
    for i, (row, pos) in enumerate(zip(scores, positives)):
        row = np.asarray(row, dtype=float)
        if np.isnan(row).any():
            raise ValueError(f"example {i}: NaN score among candidates")
        others = np.delete(row, pos)
        ranks[i] = 1 + int(np.sum(others >= row[pos]))
    return ranks


def hit_rate_at_k(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    return (np.asarray(ranks) <= k).astype(float)


def ndcg_at_k(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-example NDCG@K with a single relevant item: 1/log2(rank+1) inside the top K."""
    r = np.asarray(ranks, dtype=float)
    return np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    return 1.0 / np.asarray(ranks, dtype=float)


def preference_metrics(labels, probs) -> dict[str, float]:
    return {"auc": auc(labels, probs), "accuracy": accuracy(labels, probs), "log_loss": log_loss(labels, probs)}


def ranking_metrics(ranks, k: int = 10) -> dict[str, float]:
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        return {f"hr@{k}": float("nan"), f"ndcg@{k}": float("nan"), "mrr": float("nan")}
    return {
        f"hr@{k}": float(hit_rate_at_k(ranks, k).mean()),
        f"ndcg@{k}": float(ndcg_at_k(ranks, k).mean()),
        "mrr": float(reciprocal_rank(ranks).mean()),
    }


PRIMARY_METRIC = {name: task.primary_metric for name, task in TASK_SPECS.items()}


def validation_metric(task: str, scores: Sequence[np.ndarray], labels: Sequence[int]) -> tuple[str, float]:
    """(name, value) of what every trained model early-stops on and picks its best epoch by:
    the task's primary metric (TASK_SPECS: AUC for preference, NDCG@10 for ranking).

    `scores`: one row per validation example (preference: the candidate's score, one value;
    ranking: every candidate's score); `labels`: 0/1 likes (preference) or the index of the
    positive (ranking; ties count against it). Higher is better."""
    name = PRIMARY_METRIC[task]
    if task == "preference":
        flat = np.concatenate([np.ravel(np.asarray(r, dtype=float)) for r in scores]) if len(scores) else []
        return name, auc(labels, flat)
    k = int(name.partition("@")[2] or 10)
    return name, ranking_metrics(positive_ranks(scores, labels), k)[name]

# Reproducibility: the same cell (seed, data, code) trained twice gives these metrics equal up
# to REPRODUCIBLE_TOL. Torch models score in float32 and, with more than one intra-op thread,
# sum in a thread-dependent order: measured on 2 threads, BPR-MF and SASRec log-loss moved in
# the 9th digit (7e-10 .. 6e-9) while AUC, accuracy and every ranking metric were identical.
# A resumed run that must retrain a model compares against the recorded metrics with these.
REPRODUCIBLE_TOL = {"log_loss": 1e-6, "auc": 1e-6}
DEFAULT_REPRODUCIBLE_TOL = 1e-9


def metric_differences(recorded: dict, again: dict) -> list[str]:
    """Metrics of `again` that differ from `recorded` beyond REPRODUCIBLE_TOL ("name a vs b")."""
    out = []
    for key, value in recorded.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        other = again.get(key)
        tol = REPRODUCIBLE_TOL.get(key, DEFAULT_REPRODUCIBLE_TOL)
        if not isinstance(other, (int, float)) or not (abs(float(other) - float(value)) <= tol
                                                       or (np.isnan(value) and np.isnan(other))):
            out.append(f"{key} {value!r} vs {other!r} (tolerance {tol:g})")
    return out
