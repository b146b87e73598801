"""BPR-MF's fused CPU kernel (recommenders.classic._bpr_kernel) against the torch loss it
replaces: same loss, same gradients, same fitted model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from benchmark.tasks import build_splits
from recommenders.classic.bpr_mf import GAP_BUCKET, BPRMF
from tests.helpers import make_dataset

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
OPTS = {"factors": 8, "epochs": 2, "batch_size": 400, "progress": False}


@pytest.fixture(scope="module")
def ranking():
    ds = make_dataset(n_users=50, n_items=40, per_user=12, seed=11)
    # every third user keeps 5 interactions: a training timeline shorter than the window (5)
    inter = ds.interactions.sort_values("timestamp")
    keep = inter.groupby("user_id").cumcount() < np.where(inter["user_id"].str[1:].astype(int) % 3 == 0, 5, 12)
    ds = dataclasses.replace(ds, interactions=inter[keep].reset_index(drop=True))
    return build_splits(ds, "ranking", seed=0, history_len=5, num_negatives=20)


def _batch(model, train, seed=3):
    data = model._prepare(train)
    batch = next(model._batches(data, np.random.default_rng(seed), torch.Generator().manual_seed(seed)))
    return batch


def _grads(model, batch, fused):
    model.options["fused_kernel"] = fused
    model.net.zero_grad(set_to_none=True)
    loss = model._train_step(batch)
    grads = {name: p.grad.clone() for name, p in model.net.named_parameters() if p.grad is not None}
    model.net.zero_grad(set_to_none=True)
    return float(loss), grads


def test_kernel_loss_and_gradients_equal_autograd(ranking):
    model = BPRMF(**OPTS, fused_kernel=False).fit(ranking["train"], seed=0)
    batch = _batch(model, ranking["train"])
    users = int(np.count_nonzero(np.diff((batch["buckets"] == GAP_BUCKET).numpy().astype(int)) == -1))
    assert users >= 4 and len(batch["items"]) > 100  # several users, gaps between them
    targets = torch.nonzero(batch["norm"] > 0).ravel()
    batch["neg"][targets[:3]] = batch["items"][targets[:3]]  # a negative equal to its positive
    loss_ref, ref = _grads(model, batch, fused=False)
    before = torch.get_num_threads()
    loss, got = _grads(model, batch, fused=True)
    assert torch.get_num_threads() == before  # the kernel leaves torch's threads alone
    assert set(got) == set(ref) == {"history", "item", "item_bias", "rating_gate"}
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    for name in ref:
        assert ref[name].abs().max() > 0, name
        torch.testing.assert_close(got[name], ref[name], rtol=1e-4, atol=1e-7, msg=name)


def test_fused_and_autograd_fits_give_the_same_model(ranking):
    test = ranking["test"].examples[:20]
    args = ([e.profile for e in test], [e.candidates for e in test])
    fused = BPRMF(**OPTS, fused_kernel=True).fit(ranking["train"], ranking["valid"], seed=0)
    plain = BPRMF(**OPTS, fused_kernel=False).fit(ranking["train"], ranking["valid"], seed=0)
    np.testing.assert_allclose(fused.score(*args), plain.score(*args), rtol=1e-4, atol=1e-5)
    assert [e["loss"] for e in fused.training_log["epochs"]] == pytest.approx(
        [e["loss"] for e in plain.training_log["epochs"]], rel=1e-5)


def test_fused_kernel_option(ranking):
    ds = make_dataset(n_users=20, n_items=30, per_user=8, seed=2)
    preference = build_splits(ds, "preference", seed=0, history_len=4)
    with pytest.raises(ValueError, match="fused_kernel=true needs the ranking task"):
        BPRMF(**OPTS, fused_kernel=True).fit(preference["train"], seed=0)
    BPRMF(**OPTS).fit(preference["train"], seed=0)  # "auto": the torch loss for preference
    with pytest.raises(ValueError, match="fused_kernel must be"):
        BPRMF(**OPTS, fused_kernel="yes").fit(ranking["train"], seed=0)
