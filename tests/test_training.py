"""The one training loop (recommenders.training) and the public loss hooks defenses use:
TorchRecommender.train_further(loss=...) and TextRecommender.training_objective."""

from __future__ import annotations

import pytest
import torch

from benchmark.experiment import build_model, prepare_task
from recommenders.base import Trainable
from recommenders.training import EpochLoop
from tests.helpers import make_dataset

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

BPR = dict(factors=8, epochs=2, lr=0.05, batch_size=64, device="cpu", progress=False, patience=0)
TINY_TEXT = dict(backbone="tiny-bert", epochs=1, lr=1e-3, batch_size=8, max_length=96, progress=False, device="cpu",
                 max_train_examples=24)


@pytest.fixture(scope="module")
def pref():
    return prepare_task(make_dataset(n_users=20, n_items=30, per_user=10, seed=2), "preference", seed=0)


def _scripted(values):
    """A one-weight net whose weight is set to the epoch number, and a scripted validation."""
    net = torch.nn.Linear(1, 1, bias=False)
    seen = iter(values)

    def run_epoch(epoch):
        with torch.no_grad():
            net.weight.fill_(float(epoch))
        return 1.0 / epoch

    return net, run_epoch, lambda: next(seen)


def test_loop_stops_after_patience_and_restores_the_best_epoch():
    net, run_epoch, validate = _scripted([0.1, 0.5, 0.3, 0.2, 0.9, 1.0])
    log = EpochLoop(epochs=6, patience=2, metric="auc", progress=False).run(net, run_epoch, validate)
    assert log["epochs_run"] == 4 and log["best_epoch"] == 2 and log["best_valid"] == 0.5
    assert float(net.weight.detach()) == 2.0  # the best epoch's state, not the last
    assert [e["auc"] for e in log["epochs"]] == [0.1, 0.5, 0.3, 0.2]


def test_loop_select_last_keeps_the_last_epoch_and_never_stops_early():
    net, run_epoch, validate = _scripted([0.9, 0.1, 0.1])
    log = EpochLoop(epochs=3, patience=1, select="last", metric="auc", progress=False).run(net, run_epoch, validate)
    assert log["epochs_run"] == 3 and float(net.weight.detach()) == 3.0 and log["valid_metric"] is None


def test_loop_refuses_a_bad_select():
    with pytest.raises(ValueError, match="select must be one of"):
        EpochLoop(epochs=1, select="first")


def test_train_further_runs_a_defense_loss_through_the_loop(pref):
    model = build_model("bpr-mf", BPR).fit(pref["train"], pref["valid"], seed=0)
    assert isinstance(model, Trainable)
    before = {k: v.detach().clone() for k, v in model.embedding_tables().items()}
    calls = []

    def loss(batch):
        calls.append(1)
        return 2.0 * model.loss(batch)

    log = model.train_further(pref["train"], pref["valid"], epochs=2, seed=1, loss=loss, select="last")
    assert calls and log["epochs_run"] == 2 and log["valid_metric"] == "auc" and log["best_valid"] is None
    assert all("auc" in e for e in log["epochs"])
    assert any(not torch.equal(before[k], v) for k, v in model.embedding_tables().items())
    again = build_model("bpr-mf", BPR).fit(pref["train"], pref["valid"], seed=0)
    again.train_further(pref["train"], pref["valid"], epochs=2, seed=1, loss=lambda b: 2.0 * again.loss(b),
                        select="last")
    for k, v in model.embedding_tables().items():  # same seed, same loss: the same weights
        assert torch.equal(v, again.embedding_tables()[k])


def test_train_further_needs_a_model_fitted_for_the_task(pref):
    with pytest.raises(ValueError, match="fitted for the 'preference' task"):
        build_model("bpr-mf", BPR).train_further(pref["train"])


def test_text_training_objective_replaces_the_batch_loss_for_one_run_and_closes(pref):
    model = build_model("cross-encoder", TINY_TEXT)
    events = []

    def factory(batch_loss):
        events.append("start")

        def loss(prepared, idx):
            events.append("batch")
            return batch_loss(prepared, idx)

        return loss, lambda: events.append("close")

    with model.training_objective(factory):
        model.fit(pref["train"], seed=0)
    assert events[0] == "start" and events[-1] == "close" and events.count("batch") == 3  # 24 examples / 8
    events.clear()
    model.fine_tune_text(["a profile"], ["a candidate"], [1], epochs=1)
    assert events == []  # outside the context the model's own loss trains
