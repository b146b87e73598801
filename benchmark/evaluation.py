"""Clean evaluation of a fitted recommender on one split of one task."""

from __future__ import annotations

import numpy as np

from benchmark import metrics


def evaluate(model, data, k: int = 10, batch_size: int = 256, return_per_example: bool = False):
    """Metrics of `model` on `data` (a TaskData). Raises ValueError if the model returns
    NaN/inf or a preference probability outside [0, 1] (a broken model must not score)."""
    scores = model.score_examples(data.examples, batch_size=batch_size)
    flat = np.concatenate([np.asarray(s, dtype=float).ravel() for s in scores]) if scores else np.array([])
    if not np.isfinite(flat).all():
        raise ValueError(f"model {getattr(model, 'name', model)!r} returned non-finite scores")
    if data.task == "preference":
        probs = np.array([float(np.asarray(s).ravel()[0]) for s in scores])
        if ((probs < 0) | (probs > 1)).any():
            raise ValueError(f"model {getattr(model, 'name', model)!r}: preference scores must be probabilities in [0, 1]")
        labels = np.array([e.label for e in data.examples])
        result = metrics.preference_metrics(labels, probs)
        per_example = {"prob": probs, "label": labels, "correct": ((probs >= 0.5).astype(int) == labels)}
    else:
        ranks = metrics.positive_ranks(scores, [e.label for e in data.examples])
        result = metrics.ranking_metrics(ranks, k=k)
        per_example = {"rank": ranks, f"ndcg@{k}": metrics.ndcg_at_k(ranks, k)}
    result["examples"] = len(data.examples)
    return (result, per_example) if return_per_example else result
