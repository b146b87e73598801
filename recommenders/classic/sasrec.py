"""SASRec (Kang & McAuley 2018): a causal self-attentive model of the history sequence.

Input token j = item embedding E[i_j] + position embedding (j = 0 for the oldest kept
entry) + rating embedding R[r_j] (rating buckets of ``_vocab``; bucket 0 = no rating), so
an edited rating changes the representation. Blocks are pre-norm causal self-attention +
point-wise feed-forward with residuals; h = the final hidden state at the last real
position of the profile (sequences are left-aligned and right-padded, so with causal
attention real positions never see padding).

- ranking: s(c) = h . E[c] (input and output item embeddings are shared, as in SASRec).
  Trained on the training timelines cut into windows of ``max_len`` + 1 items (every
  ``window_stride`` items): every position predicts the next item against ``negatives``
  uniformly sampled items (BPR loss, averaged over the negatives).
- preference: p(c) = sigmoid(MLP([h, E[c], h * E[c]]) + b[c]), trained with the logistic
  loss on the labelled ``train.examples`` (their own profiles).

``max_len`` defaults to the task's history length; longer profiles keep their most recent
``max_len`` entries. Unknown items are dropped from histories; an unknown candidate gets a
zero embedding (and zero bias). An empty history still gets a (learned, constant) state.
Embedding tables for gradient attacks (``embedding_forward``): ``item`` (E, shared by the
history and the candidates).
"""

from __future__ import annotations

import math
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


class CausalBlock(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # No dropout on the attention weights: on CPU it forces the slow materialised path
        # (residual and embedding dropout regularise enough).
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.drop(self.out(att.transpose(1, 2).reshape(n, length, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class SASRecNet(nn.Module):
    def __init__(self, n_items: int, hidden: int, layers: int, heads: int, dropout: float, max_len: int, preference: bool):
        super().__init__()
        self.item = nn.Parameter(torch.randn(n_items, hidden) * hidden**-0.5)
        self.position = nn.Parameter(torch.randn(max_len, hidden) * 0.02)
        self.rating = nn.Parameter(torch.zeros(N_RATING_BUCKETS, hidden))
        self.blocks = nn.ModuleList(CausalBlock(hidden, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.preference = preference
        if preference:
            self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))
            self.item_bias = nn.Parameter(torch.zeros(n_items))

    def encode(self, items: torch.Tensor, buckets: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """(n, L) left-aligned sequences -> (n, L, d) hidden states (position t sees 0..t)."""
        length = items.shape[1]
        mask = (items != PAD).unsqueeze(-1).to(item.dtype)
        x = (item[items] * math.sqrt(item.shape[1]) + self.position[:length] + self.rating[buckets]) * mask
        x = self.drop(x)
        for block in self.blocks:
            x = block(x) * mask
        return self.norm(x)

    def last_state(self, items: torch.Tensor, buckets: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        if items.shape[1] == 0:  # max_len 0 or no history columns: the empty-history state
            items, buckets = items.new_zeros(items.shape[0], 1), buckets.new_zeros(items.shape[0], 1)
        hidden = self.encode(items, buckets, item)
        last = (items != PAD).sum(1).clamp(min=1) - 1
        return hidden[torch.arange(len(items), device=items.device), last]

    def candidate_scores(self, state: torch.Tensor, cand: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """(n, d) states x (n, c) candidates -> (n, c) raw scores."""
        emb = item[cand] * (cand != PAD).unsqueeze(-1).to(item.dtype)
        if not self.preference:
            return torch.einsum("nd,ncd->nc", state, emb)
        s = state.unsqueeze(1).expand_as(emb)
        logits = self.head(torch.cat([s, emb, s * emb], dim=-1)).squeeze(-1)
        return logits + self.item_bias[cand] * (cand != PAD).to(item.dtype)


@dataclass
class SASRecOptions(TorchOptions):
    hidden: int = option(64, "hidden size (item, position and rating embeddings)")
    layers: int = option(2, "causal self-attention blocks")
    heads: int = option(2, "attention heads (must divide hidden)")
    dropout: float = option(0.2, "dropout on embeddings, residuals and feed-forward")
    epochs: int | None = option(None, "training epochs (at most); None = the task's default (10 preference, 30 ranking)")
    lr: float | None = option(None, "Adam learning rate; None = the task's default (0.001 preference, 0.003 ranking)")
    batch_size: int = option(512, "training sequences per step")
    weight_decay: float = option(0.0, "L2 on all parameters, applied by the optimizer")
    negatives: int = option(4, "ranking: sampled negatives per target position (BPR, averaged)")
    window_stride: int | None = option(None, "ranking: stride of the training windows; None = max_len // 2 "
                                             "(overlapping windows)")
    patience: int | None = option(None, "epochs without a better validation metric before stopping; "
                                        "None = the task's default (2 preference, 3 ranking)")


class SASRec(TorchRecommender):
    name = "sasrec"
    capabilities = Capabilities(differentiable=True)
    # Preference trains on every example's own sequence (10x the tokens of a ranking epoch)
    # and overfits within a few epochs; ranking trains on timeline windows for longer.
    TASK_DEFAULTS: ClassVar[dict[str, dict]] = {
        "preference": {"epochs": 10, "lr": 0.001, "patience": 2},
        "ranking": {"epochs": 30, "lr": 0.003, "patience": 3},
    }
    OPTIONS: ClassVar[type[Options]] = SASRecOptions

    def _vocab_items(self, train) -> set[str]:
        items = super()._vocab_items(train)
        if train.task == "preference":
            for e in train.examples:
                items.update(e.candidates)
                items.update(h.item_id for h in e.profile.history)
        return items

    def _build_net(self) -> nn.Module:
        o = self.options
        return SASRecNet(self.vocab.size, int(o["hidden"]), int(o["layers"]), int(o["heads"]), float(o["dropout"]),
                         max(int(self.max_len), 1), self.task == "preference")

    def _embedding_params(self) -> dict[str, nn.Parameter]:
        return {"item": self.net.item}

    # -- data -----------------------------------------------------------------------------
    def _prepare(self, train) -> dict:
        if self.task == "preference":
            examples = [e for e in train.examples if self.vocab.index(e.candidates[0]) != PAD]
            if not examples:
                raise ValueError("SASRec: the training split has no labelled preference examples")
            items, buckets = self.vocab.encode_histories([e.profile for e in examples], self.max_len)
            return {
                "items": items,
                "buckets": buckets,
                "cand": self.vocab.encode([e.candidates[0] for e in examples]),
                "label": np.array([e.label for e in examples], dtype=np.float32),
            }
        return self._windows(train.train_interactions)

    def _windows(self, tl) -> dict:
        """Each user's training timeline cut into windows of max_len + 1 items every
        `window_stride` items: inputs = window[:-1], targets = window[1:] (with stride
        max_len every item is a target once per epoch; smaller strides overlap)."""
        length = int(self.max_len)
        stride = int(self.options["window_stride"] or max(length // 2, 1))
        items = self.vocab.encode(tl["item_id"].astype(str))
        buckets = rating_buckets(tl["rating"].to_numpy())
        users = tl["user_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        win_items, win_buckets = [], []
        for s, e in zip(starts, ends):
            for w in range(s, e - 1, stride):
                chunk = slice(w, min(w + length + 1, e))
                row_i = np.zeros(length + 1, dtype=np.int64)
                row_b = np.zeros(length + 1, dtype=np.int64)
                row_i[: chunk.stop - chunk.start] = items[chunk]
                row_b[: chunk.stop - chunk.start] = buckets[chunk]
                win_items.append(row_i)
                win_buckets.append(row_b)
        if not win_items:
            raise ValueError("SASRec: no user has two training interactions to learn from")
        return {"windows": np.stack(win_items), "window_buckets": np.stack(win_buckets)}

    def _batches(self, data: dict, rng: np.random.Generator, gen: torch.Generator) -> Iterator[dict]:
        device = self.device
        bs = int(self.options["batch_size"])
        first = next(iter(data.values()))
        order = rng.permutation(len(first))
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            batch = {k: torch.from_numpy(v[idx]).to(device) for k, v in data.items()}
            if self.task == "ranking":
                target = batch["windows"][:, 1:]
                shape = (*target.shape, int(self.options["negatives"]))
                batch["neg"] = torch.randint(1, self.vocab.size, shape, generator=gen, device=device)
            yield batch

    # -- loss -----------------------------------------------------------------------------
    def _loss(self, batch: dict, tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        item = self._tables(tables)["item"]
        net: SASRecNet = self.net
        if self.task == "preference":
            state = net.last_state(batch["items"], batch["buckets"], item)
            logits = net.candidate_scores(state, batch["cand"].unsqueeze(1), item).squeeze(1)
            return F.binary_cross_entropy_with_logits(logits, batch["label"])
        windows, buckets = batch["windows"], batch["window_buckets"]
        inputs, target = windows[:, :-1], windows[:, 1:]
        hidden = net.encode(inputs, buckets[:, :-1], item)
        pos = (hidden * item[target]).sum(-1, keepdim=True)  # (n, L, 1)
        neg = torch.einsum("nld,nlkd->nlk", hidden, item[batch["neg"]])  # (n, L, negatives)
        weight = ((target != PAD) & (inputs != PAD)).to(hidden.dtype)  # real (input, target) pairs
        return -(F.logsigmoid(pos - neg).mean(-1) * weight).sum() / weight.sum()

    def _raw_scores(self, items, buckets, candidates, tables=None) -> torch.Tensor:
        item = self._tables(tables)["item"]
        state = self.net.last_state(items, buckets, item)
        return self.net.candidate_scores(state, candidates, item)
