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


def test_kernel_overwrites_whatever_the_gradient_buffers_held(ranking):
    from recommenders.classic._bpr_kernel import bpr_fold_in_grads

    model = BPRMF(**OPTS, fused_kernel=False).fit(ranking["train"], seed=0)
    batch = {k: v.numpy() for k, v in _batch(model, ranking["train"]).items()}
    gap = batch["buckets"] == GAP_BUCKET
    user_starts = np.flatnonzero(gap[1:] & ~gap[:-1]) + 1
    batch = {k: v[: user_starts[1]] for k, v in batch.items()}  # the first two users only
    net = model.net
    tables = [p.detach().numpy() for p in (net.history, net.item, net.item_bias, net.rating_gate)]
    results = []
    for fill in (0.0, np.nan):  # fresh buffers, and buffers full of a previous step's leftovers
        grads = [np.full_like(t, fill) for t in tables]
        loss = bpr_fold_in_grads(batch["items"], batch["buckets"], batch["norm"], batch["neg"], *tables,
                                 int(model.max_len), GAP_BUCKET, *grads)
        results.append((loss, grads))
    (loss0, clean), (loss1, stale) = results
    assert loss1 == loss0
    for a, b in zip(clean, stale):
        np.testing.assert_array_equal(a, b)
    # rows of items these two users' targets never touched (and the padding row) get a zero gradient
    untouched = np.setdiff1d(np.arange(len(tables[1])), np.r_[batch["items"][~gap[: len(batch["items"])]], batch["neg"]])
    assert 0 in untouched and len(untouched) >= 10
    assert not stale[0][untouched].any() and not stale[1][untouched].any()
    assert stale[0].any() and stale[1].any()


def test_take_segments_concatenates_the_segments_in_order():
    from recommenders.classic._bpr_kernel import take_segments

    source = np.arange(50, dtype=np.int64) * 3
    starts, lengths = np.array([30, 0, 12, 45]), np.array([5, 4, 0, 5])
    out = np.empty(lengths.sum(), dtype=source.dtype)
    take_segments(source, starts, lengths, out)
    expected = np.concatenate([source[s : s + n] for s, n in zip(starts, lengths)])
    np.testing.assert_array_equal(out, expected)
