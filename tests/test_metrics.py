import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from benchmark import metrics


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 1)  # many ties
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_auc_single_class_is_nan():
    assert math.isnan(metrics.auc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_accuracy_and_log_loss_match_sklearn():
    y = np.array([1, 0, 1, 1, 0])
    p = np.array([0.9, 0.4, 0.35, 0.6, 0.5])
    assert metrics.accuracy(y, p) == pytest.approx(accuracy_score(y, (p >= 0.5).astype(int)))
    assert metrics.log_loss(y, p) == pytest.approx(log_loss(y, p))


def test_ranking_metrics_hand_computed():
    # positive at index 0; ranks: 1, 3, 12
    scores = [np.array([5.0, 1, 2]), np.array([1.0, 3, 2, 0]), np.array([0.0] + [1.0] * 11)]
    ranks = metrics.positive_ranks(scores, [0, 0, 0])
    assert ranks.tolist() == [1, 3, 12]
    m = metrics.ranking_metrics(ranks, k=10)
    assert m["hr@10"] == pytest.approx(2 / 3)
    assert m["ndcg@10"] == pytest.approx((1.0 + 1 / math.log2(4) + 0) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 12) / 3)


def test_ties_are_pessimistic():
    ranks = metrics.positive_ranks([np.ones(100)], [0])
    assert ranks[0] == 100


def test_nan_scores_rejected():
    with pytest.raises(ValueError, match="NaN"):
        metrics.positive_ranks([np.array([np.nan, 1.0])], [0])


def test_validation_metric_is_the_task_primary_metric():
    from benchmark.metrics import validation_metric
    from benchmark.tasks import TASK_SPECS

    name, value = validation_metric("preference", [np.array([0.9]), np.array([0.2]), np.array([0.6])], [1, 0, 0])
    assert name == TASK_SPECS["preference"].primary_metric == "auc" and value == pytest.approx(1.0)
    rows = np.array([[0.9, 0.1, 0.2], [0.1, 0.5, 0.4], [0.3, 0.3, 0.0]])  # positive at index 0: ranks 1, 3, 2 (tie)
    name, value = validation_metric("ranking", rows, [0, 0, 0])
    assert name == TASK_SPECS["ranking"].primary_metric == "ndcg@10"
    assert value == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(3)) / 3)
