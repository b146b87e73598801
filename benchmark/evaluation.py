"""Clean evaluation of a fitted recommender on one split of one task.

Every score matrix a model returns is checked here before any metric is computed from it
(``checked_scores``): one finite value per candidate, in the right shape, and a
probability in [0, 1] on the preference task. Anything else raises ScoreError naming the
model, the example and the shape or value, and the runner fails that cell.
"""

from __future__ import annotations

import numpy as np

from benchmark import metrics


class ScoreError(ValueError):
    """A model returned a malformed score matrix (wrong shape, NaN/inf, out of range)."""


def _name(model) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


def checked_scores(model, examples, scores, task: str) -> list[np.ndarray]:
    """`scores` (one row per example, as score_examples returns) as float arrays, or
    ScoreError naming the first bad example."""
    if len(scores) != len(examples):
        raise ScoreError(f"model {_name(model)!r} returned {len(scores)} score rows for {len(examples)} examples")
    out = []
    for example, row in zip(examples, scores):
        arr = np.asarray(row, dtype=float)
        expected = (len(example.candidates),)
        if arr.shape != expected:
            raise ScoreError(f"model {_name(model)!r}: example {example.example_id}: scores of shape {arr.shape} "
                             f"for {expected[0]} candidate(s) (want one value per candidate)")
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ScoreError(f"model {_name(model)!r}: example {example.example_id}: non-finite score "
                             f"{float(arr[bad][0])!r} for candidate {example.candidates[int(np.argmax(bad))]!r}")
        if task == "preference" and ((arr < 0) | (arr > 1)).any():
            value = float(arr[(arr < 0) | (arr > 1)][0])
            raise ScoreError(f"model {_name(model)!r}: example {example.example_id}: preference score {value!r} "
                             f"is not a probability in [0, 1]")
        out.append(arr)
    return out


def score_checked(model, examples, task: str, batch_size: int = 256) -> list[np.ndarray]:
    """model.score_examples(examples), checked (see checked_scores)."""
    try:
        scores = model.score_examples(examples, batch_size=batch_size)
    except ScoreError:
        raise
    except ValueError as err:  # e.g. numpy cannot split a matrix of the wrong shape into rows
        raise ScoreError(f"model {_name(model)!r}: scoring failed: {err}") from err
    return checked_scores(model, examples, list(scores), task)


def evaluate(model, data, k: int = 10, batch_size: int = 256, return_per_example: bool = False):
    """Metrics of `model` on `data` (a TaskData). Raises ScoreError (a ValueError) if the
    model's scores are malformed (a broken model must not score)."""
    scores = score_checked(model, data.examples, data.task, batch_size=batch_size)
    if data.task == "preference":
        probs = np.array([float(s[0]) for s in scores])
        labels = np.array([e.label for e in data.examples])
        result = metrics.preference_metrics(labels, probs)
        per_example = {"prob": probs, "label": labels, "correct": ((probs >= 0.5).astype(int) == labels)}
    else:
        ranks = metrics.positive_ranks(scores, [e.label for e in data.examples])
        result = metrics.ranking_metrics(ranks, k=k)
        per_example = {"rank": ranks, f"ndcg@{k}": metrics.ndcg_at_k(ranks, k)}
    result["examples"] = len(data.examples)
    return (result, per_example) if return_per_example else result
