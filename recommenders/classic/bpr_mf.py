"""BPR-MF with profile fold-in (a FISM / SVD++-style history-pooling factor model).

There is no per-user embedding: a user is the pooled, rating-gated embeddings of the
profile's history, so any profile — unseen, or edited by an attack — is scored by the
same function it was trained with:

    u       = sum_j g[r_j] * P[i_j] / n^alpha      (history items i_j, rating buckets r_j)
    ranking:     s(c) = u . Q[c] + b[c]                          (BPR loss, sampled negatives)
    preference:  p(c) = sigmoid(u . Q[c] + b[c] + w . u + b0)    (logistic loss on like labels)

P (history side) and Q (candidate side) are separate item tables as in FISM, so an
item is not trivially similar to itself; g is a learned vector per rating bucket
(see ``_vocab``), which lets a 1-star and a 5-star entry pull the user different ways.
At training time the profile of a target is the ``max_len`` interactions before it,
exactly like the task's examples.

Ranking training: every train interaction with an earlier one is a positive, paired
with one item drawn uniformly from the vocabulary. A batch is a set of whole user
timelines laid end to end, each preceded by ``max_len`` zero rows, so the history sum of
every position is one sliding-window sum over the batch (``window_sum``: O(log max_len)
shifted adds, forward and backward) instead of a (positions, max_len) gather: each
history embedding is read once per epoch, not max_len times.
On the CPU the ranking loss and its gradients come from a fused kernel
(``_bpr_kernel``: one sweep with running window sums, ~7x less time per epoch than
autograd on ``_loss``, which stays the definition and runs on GPUs, for APR's perturbed
tables and with ``fused_kernel=False``), stepped by ``_cpu_adam.CpuAdam``: torch's Adam
update in one compiled call (torch's own Adam is used everywhere else).
Preference training: the labelled ``train.examples`` (their own profiles), so
augmented or edited training examples are learned as given.

L2 regularisation (``weight_decay``) is applied by the optimizer to all parameters.
Unknown items: dropped from histories; unknown candidates get a zero vector and bias.
Embedding tables for gradient attacks (``embedding_forward``): ``item`` (Q, the
candidate-side table) and ``history`` (P, the table the user vector is pooled from —
the fold-in counterpart of APR's user embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.options import Options, option
from recommenders.base import Capabilities
from recommenders.classic._training import TorchOptions, TorchRecommender
from recommenders.classic._vocab import N_RATING_BUCKETS, PAD, rating_buckets


GAP_BUCKET = N_RATING_BUCKETS  # rating bucket of the zero rows between users (its gate is 0)


def _shifted_sum(y: torch.Tensor, z: torch.Tensor, shift: int, reverse: bool) -> torch.Tensor:
    """A new tensor y[k] + z[k - shift] (reverse: z[k + shift]); z reads as 0 outside its rows."""
    out = torch.empty_like(y)
    n = len(y)
    shift = min(shift, n)
    if reverse:
        torch.add(y[: n - shift], z[shift:], out=out[: n - shift])
        out[n - shift :] = y[n - shift :]
    else:
        torch.add(y[shift:], z[: n - shift], out=out[shift:])
        out[:shift] = y[:shift]
    return out


def _window(x: torch.Tensor, width: int, reverse: bool) -> torch.Tensor:
    """out[k] = x[k] + x[k-1] + ... + x[k-width+1] (reverse: x[k] + ... + x[k+width-1]), by
    doubling: O(log width) shifted adds instead of a cumulative sum or a (rows, width) gather."""
    powers = {1: x}  # powers[L] = the window of width L
    length = 1
    while 2 * length <= width:
        powers[2 * length] = _shifted_sum(powers[length], powers[length], length, reverse)
        length *= 2
    total, offset = None, 0
    for size in sorted(powers, reverse=True):
        if width & size:
            total = powers[size] if total is None else _shifted_sum(total, powers[size], offset, reverse)
            offset += size
    return total.clone() if total is x else total  # a Function must not hand back its input


class _WindowSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, width: int) -> torch.Tensor:
        ctx.width = width
        return _window(x, width, reverse=False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # The adjoint of "sum of this row and the width-1 before" is "... and the width-1 after".
        return _window(grad, ctx.width, reverse=True), None


def window_sum(x: torch.Tensor, width: int) -> torch.Tensor:
    """out[k] = x[k-width+1] + ... + x[k] (rows before 0 read as zero); width >= 1."""
    if width < 1:
        raise ValueError(f"window width must be >= 1, got {width}")
    return _WindowSum.apply(x, width)


class FoldInMF(nn.Module):
    def __init__(self, n_items: int, factors: int, alpha: float, preference: bool, init_std: float):
        super().__init__()
        self.alpha = alpha
        self.history = nn.Parameter(torch.randn(n_items, factors) * init_std)  # P
        self.item = nn.Parameter(torch.randn(n_items, factors) * init_std)  # Q
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.rating_gate = nn.Parameter(torch.ones(N_RATING_BUCKETS, factors))
        self.preference = preference
        if preference:
            self.user_bias = nn.Parameter(torch.zeros(factors))  # w: user generosity from the history
            self.global_bias = nn.Parameter(torch.zeros(()))

    def fold_in(self, items: torch.Tensor, buckets: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """(n, L) padded histories -> (n, d) user vectors."""
        mask = (items != PAD).to(history.dtype)
        pooled = (history[items] * self.rating_gate[buckets] * mask.unsqueeze(-1)).sum(1)
        return pooled / mask.sum(1).clamp(min=1.0).pow(self.alpha).unsqueeze(-1)

    def candidate_scores(self, user: torch.Tensor, cand: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """(n, d) users x (n, c) candidate indices -> (n, c) raw scores."""
        known = (cand != PAD).to(item.dtype)
        scores = torch.einsum("nd,ncd->nc", user, item[cand]) + self.item_bias[cand]
        scores = scores * known
        if self.preference:
            scores = scores + (user @ self.user_bias).unsqueeze(-1) + self.global_bias
        return scores


@dataclass
class BPRMFOptions(TorchOptions):
    factors: int = option(64, "embedding size of the history (P) and candidate (Q) item tables")
    epochs: int = option(30, "training epochs (at most: early stopping on the validation metric)")
    lr: float = option(0.01, "Adam learning rate")
    batch_size: int = option(8192, "training positions (ranking) or examples (preference) per step")
    weight_decay: float | None = option(None, "L2 on all parameters, by the optimizer; None = the task's "
                                              "default (1e-4 preference, 1e-5 ranking)")
    alpha: float = option(0.5, "history pooling normalisation n^alpha (FISM)")
    init_std: float = option(0.05, "standard deviation of the initial embeddings")
    patience: int = option(5, "epochs without a better validation metric before stopping (0: never early)")
    fused_kernel: str | bool = option("auto", "ranking on CPU: loss, gradients and Adam from the fused kernel "
                                              "(same model, ~7x faster); 'auto' = ranking on CPU, False = autograd")


class BPRMF(TorchRecommender):
    name = "bpr-mf"
    capabilities = Capabilities(differentiable=True)
    TASK_DEFAULTS: ClassVar[dict[str, dict]] = {
        "preference": {"weight_decay": 1e-4},
        "ranking": {"weight_decay": 1e-5},
    }
    OPTIONS: ClassVar[type[Options]] = BPRMFOptions

    def _vocab_items(self, train) -> set[str]:
        items = super()._vocab_items(train)
        if train.task == "preference":
            for e in train.examples:
                items.update(e.candidates)
                items.update(h.item_id for h in e.profile.history)
        return items

    def _build_net(self) -> nn.Module:
        o = self.options
        return FoldInMF(self.vocab.size, int(o["factors"]), float(o["alpha"]), self.task == "preference", float(o["init_std"]))

    def _embedding_params(self) -> dict[str, nn.Parameter]:
        return {"item": self.net.item, "history": self.net.history}


    # -- data -----------------------------------------------------------------------------
    def _prepare(self, train) -> dict:
        if self.task == "preference":
            examples = [e for e in train.examples if self.vocab.index(e.candidates[0]) != PAD]
            if not examples:
                raise ValueError("BPRMF: the training split has no labelled preference examples")
            items, buckets = self.vocab.encode_histories([e.profile for e in examples], self.max_len)
            return {
                "items": items,
                "buckets": buckets,
                "cand": self.vocab.encode([e.candidates[0] for e in examples]),
                "label": np.array([e.label for e in examples], dtype=np.float32),
            }
        # Ranking: the training timelines in the "gap layout": each user's rows in time order,
        # preceded by max_len zero rows, so a causal window of max_len rows never reaches
        # into another user (see window_sum).
        tl = train.train_interactions
        items = self.vocab.encode(tl["item_id"].astype(str))
        buckets = rating_buckets(tl["rating"].to_numpy())
        users = tl["user_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        lengths = np.diff(np.r_[starts, len(users)])
        position = np.arange(len(users)) - np.repeat(starts, lengths)
        if not (position >= 1).any():
            raise ValueError("BPRMF: no user has two training interactions to learn from")
        gap = int(self.max_len)
        ext_lengths = lengths + gap
        ext_starts = np.r_[0, np.cumsum(ext_lengths)[:-1]]
        real = np.repeat(ext_starts + gap - starts, lengths) + np.arange(len(users))  # ext row of each row
        size = int(ext_lengths.sum())
        count = np.minimum(position, gap)
        alpha = float(self.options["alpha"])
        ext = {
            "items": np.zeros(size, dtype=np.int64),
            "buckets": np.full(size, GAP_BUCKET, dtype=np.int64),
            "norm": np.zeros(size, dtype=np.float32),  # count^-alpha; 0 = no history: not a target
        }
        ext["items"][real] = items
        ext["buckets"][real] = buckets
        ext["norm"][real] = np.where(count > 0, np.maximum(count, 1) ** -alpha, 0.0)
        return {"ext": ext, "starts": ext_starts, "lengths": ext_lengths}

    def _batches(self, data: dict, rng: np.random.Generator, gen: torch.Generator) -> Iterator[dict]:
        device = self.device
        bs = int(self.options["batch_size"])
        if self.task == "preference":
            order = rng.permutation(len(data["label"]))
            for i in range(0, len(order), bs):
                idx = order[i : i + bs]
                yield {k: torch.from_numpy(v[idx]).to(device) for k, v in data.items()}
            return
        # Ranking: shuffle users, keep each user's segment contiguous, cut at user boundaries.
        from recommenders.classic._bpr_kernel import take_segments  # numba: compiled once, cached

        perm = rng.permutation(len(data["starts"]))
        starts, lengths = data["starts"][perm], data["lengths"][perm]
        offsets = np.r_[0, np.cumsum(lengths)[:-1]]
        batch_of_user = offsets // bs
        bounds = np.r_[np.searchsorted(batch_of_user, np.unique(batch_of_user)), len(perm)]
        row_start = np.r_[offsets, lengths.sum()]
        epoch = {}
        for key, source in data["ext"].items():
            epoch[key] = np.empty(int(row_start[-1]), dtype=source.dtype)
            take_segments(source, starts, lengths, epoch[key])
        epoch = {k: torch.from_numpy(v).to(device) for k, v in epoch.items()}
        # one uniform negative per row, drawn for the whole epoch at once (on the CPU the
        # same stream as one draw per batch, at a fraction of the calls)
        epoch["neg"] = torch.randint(1, self.vocab.size, (len(epoch["items"]),), generator=gen, device=device)
        for a, b in zip(bounds[:-1], bounds[1:]):
            lo, hi = int(row_start[a]), int(row_start[b])
            yield {k: v[lo:hi] for k, v in epoch.items()}

    # -- loss -----------------------------------------------------------------------------
    def _fused(self) -> bool:
        choice = self.options.get("fused_kernel", "auto")
        if choice not in ("auto", True, False):
            raise ValueError(f"BPRMF: fused_kernel must be 'auto', true or false, got {choice!r}")
        usable = self.task == "ranking" and self.device.type == "cpu"
        if choice is True and not usable:
            raise ValueError("BPRMF: fused_kernel=true needs the ranking task on the CPU "
                             f"(task {self.task!r}, device {self.device.type!r}); use 'auto'")
        return bool(choice) and usable

    def _make_optimizer(self) -> torch.optim.Optimizer:
        if not self._fused():
            return super()._make_optimizer()
        from recommenders.classic._cpu_adam import CpuAdam  # numba: compiled once, cached

        # torch's Adam update in one compiled call per step (see _cpu_adam)
        return CpuAdam(self.net.parameters(), lr=float(self.setting("lr")),
                       weight_decay=float(self.setting("weight_decay") or 0.0))

    def _train_step(self, batch: dict) -> torch.Tensor:
        if not self._fused():
            return super()._train_step(batch)
        from recommenders.classic._bpr_kernel import bpr_fold_in_grads  # numba: compiled once, cached

        net: FoldInMF = self.net
        params = (net.history, net.item, net.item_bias, net.rating_gate)
        # Gradient buffers (and numpy views of them and of the tables) kept across steps:
        # fresh ones each batch cost more (page faults, cold cache) than the kernel's own
        # work on them. The kernel overwrites them; renewed if the tables are replaced.
        key = tuple(p.data_ptr() for p in params)
        if getattr(self, "_kernel_arrays", (None,))[0] != key:
            grads = [torch.zeros_like(p) for p in params]
            self._kernel_arrays = (key, grads, [p.detach().numpy() for p in params], [g.numpy() for g in grads])
        _, grads, tables, grad_arrays = self._kernel_arrays
        loss = bpr_fold_in_grads(batch["items"].numpy(), batch["buckets"].numpy(), batch["norm"].numpy(),
                                 batch["neg"].numpy(), *tables, int(self.max_len), GAP_BUCKET, *grad_arrays)
        for p, g in zip(params, grads):
            p.grad = g
        return torch.tensor(loss, dtype=torch.float32)

    def _loss(self, batch: dict, tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        t = self._tables(tables)
        net: FoldInMF = self.net
        if self.task == "preference":
            user = net.fold_in(batch["items"], batch["buckets"], t["history"])
            cand = batch["cand"].unsqueeze(1)
            logits = net.candidate_scores(user, cand, t["item"]).squeeze(1)
            return F.binary_cross_entropy_with_logits(logits, batch["label"])
        # Gap layout: the history of row k is the max_len rows before it, zero rows beyond
        # the user's start, i.e. window_sum(...)[k - 1]; rows with norm 0 (gaps, first
        # interactions) are no target. Separate gathers for positives and negatives keep
        # the backward free of slice bookkeeping.
        items, neg, norm = batch["items"][1:], batch["neg"][1:], batch["norm"][1:]
        gate = torch.cat([net.rating_gate, net.rating_gate.new_zeros(1, net.rating_gate.shape[1])])  # + GAP row
        emb = t["history"].index_select(0, batch["items"]) * gate.index_select(0, batch["buckets"])
        pooled = window_sum(emb, int(self.max_len))[:-1]
        q_pos, q_neg = t["item"].index_select(0, items), t["item"].index_select(0, neg)
        diff = norm * (pooled * (q_pos - q_neg)).sum(-1) + net.item_bias.index_select(0, items) - net.item_bias.index_select(0, neg)
        weight = (norm > 0).to(diff.dtype)
        return -(F.logsigmoid(diff) * weight).sum() / weight.sum()

    def _raw_scores(self, items, buckets, candidates, tables=None) -> torch.Tensor:
        t = self._tables(tables)
        user = self.net.fold_in(items, buckets, t["history"])
        return self.net.candidate_scores(user, candidates, t["item"])
