"""Tiny recommenders for the profile and embedding attack tests (trained in well under a second).

- FoldInMF: differentiable MF with profile fold-in: the user vector is the rating-weighted
  mean of the history's item embeddings (weight (r - 3) / 2, 1 when implicit); score =
  user . item + item bias. embedding_forward exposes the whole item table ({"item": ...})
  and item_rows, like BPR-MF / SASRec.
- GatheredMF: the same model, but embedding_forward exposes per-example tensors
  ({"history": (n, H, d), "candidates": (n, c, d)}), like an LLM's inputs_embeds: the
  layout where examples are batched, and where profile-gradient does not apply (no "item").
- CooccurrenceScorer: a numpy item-item co-occurrence model, not differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from benchmark.data.dataset import Dataset
from recommenders.base import Capabilities, Recommender


def make_taste_dataset(n_users: int = 40, n_items: int = 80, per_user: int = 16, seed: int = 0) -> Dataset:
    """Users mostly pick items of their own parity and rate those high (4-5), others low
    (1-2): both which items a user picks (ranking) and the ratings (preference) are learnable."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        own = [i for i in range(n_items) if i % 2 == u % 2]
        other = [i for i in range(n_items) if i % 2 != u % 2]
        n_other = per_user // 4
        picks = list(rng.choice(own, per_user - n_other, replace=False)) + list(rng.choice(other, n_other, replace=False))
        rng.shuffle(picks)
        for t, i in enumerate(picks):
            rating = float(rng.choice([4, 5]) if i % 2 == u % 2 else rng.choice([1, 2]))
            rows.append((f"u{u}", f"i{i}", rating, 1_000_000 + 1000 * t + u))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    inter = inter.astype({"user_id": str, "item_id": str, "rating": "float64", "timestamp": "int64"})
    items = pd.DataFrame({"title": [f"Movie {i}" for i in range(n_items)]},
                         index=pd.Index([f"i{i}" for i in range(n_items)], name="item_id"))
    return Dataset("taste", inter, items, source="generated", format="generated")


def _weights(ratings) -> list[float]:
    return [1.0 if math.isnan(r) else (r - 3.0) / 2.0 for r in ratings]


class FoldInMF(Recommender):
    name = "test-foldin-mf"
    capabilities = Capabilities(differentiable=True)

    def __init__(self, dim: int = 8, epochs: int = 150, lr: float = 0.05, **options):
        super().__init__(dim=dim, epochs=epochs, lr=lr, **options)

    def item_ids(self) -> list[str]:
        return list(self._ids)

    def item_rows(self, item_ids):
        return [self._index.get(i, -1) for i in item_ids]

    def fit(self, train, valid=None, seed: int = 0):
        self.task = train.task
        self._ids = train.item_ids
        self._index = {i: r for r, i in enumerate(self._ids)}
        gen = torch.Generator().manual_seed(seed)
        dim = self.options["dim"]
        self.emb = torch.nn.Parameter(0.3 * torch.randn(len(self._ids), dim, generator=gen))
        self.bias = torch.nn.Parameter(torch.zeros(len(self._ids)))
        profiles, cands, labels = [], [], []
        for e in train.examples:
            if train.task == "preference":
                profiles.append(e.profile), cands.append(e.candidates), labels.append([float(e.label)])
            else:
                profiles.append(e.profile), cands.append(e.candidates[:4]), labels.append([1.0, 0.0, 0.0, 0.0])
        y = torch.tensor(labels)
        encoded = self._encode(profiles, cands)  # once: the lookups do not change while training
        params = [self.emb, self.bias]
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        lr, b1, b2 = self.options["lr"], 0.9, 0.999
        # A hand-written Adam: torch.optim's first use imports torch._dynamo (seconds).
        for step in range(1, self.options["epochs"] + 1):
            raw = self._combine(*self._lookup(self.emb, encoded))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(raw, y) + 1e-3 * self.emb.pow(2).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g, (m, v) in zip(params, grads, moments):
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    p -= lr * (m / (1 - b1**step)) / ((v / (1 - b2**step)).sqrt() + 1e-8)
        return self

    def _encode(self, profiles, candidates):
        """Row indices and fold-in weights of the histories, rows of the candidates."""
        h_len = max(1, max(len(p.history) for p in profiles))
        idx = np.zeros((len(profiles), h_len), dtype=np.int64)
        w = np.zeros((len(profiles), h_len), dtype=np.float32)
        for i, p in enumerate(profiles):
            for j, (r, wt) in enumerate(zip(self.item_rows(p.item_ids()), _weights([h.rating for h in p.history]))):
                if r >= 0:
                    idx[i, j], w[i, j] = r, wt
        c_rows = np.array([self.item_rows(c) for c in candidates], dtype=np.int64)
        return torch.from_numpy(idx), torch.from_numpy(w), torch.from_numpy(c_rows)

    def _lookup(self, table, encoded):
        """History vectors (n, H, d), weights (n, H), candidate vectors (n, c, d), candidate biases (n, c)."""
        idx, w, c_rows = encoded
        known = (c_rows >= 0).float()
        rows = c_rows.clamp_min(0)
        return table[idx], w, table[rows] * known[..., None], self.bias[rows] * known

    @staticmethod
    def _combine(hist, w, cand, bias):
        user = (hist * w[..., None]).sum(1) / w.abs().sum(1).clamp_min(1.0)[:, None]
        return (cand * user[:, None, :]).sum(-1) + bias

    def _raw(self, table, profiles, candidates):
        return self._combine(*self._lookup(table, self._encode(profiles, candidates)))

    def score(self, profiles, candidates) -> np.ndarray:
        with torch.no_grad():
            raw = self._raw(self.emb, profiles, candidates)
            return (torch.sigmoid(raw) if self.task == "preference" else raw).numpy().astype(float)

    def embedding_forward(self, profiles, candidates):
        base = {"item": self.emb.detach()}
        return base, lambda p: self._raw(p["item"], profiles, candidates)


class GatheredMF(FoldInMF):
    name = "test-gathered-mf"

    def embedding_forward(self, profiles, candidates):
        with torch.no_grad():
            hist, w, cand, bias = self._lookup(self.emb, self._encode(profiles, candidates))
        base = {"history": hist, "candidates": cand}
        return base, lambda p: self._combine(p["history"], w, p["candidates"], bias)


class CooccurrenceScorer(Recommender):
    name = "test-cooccurrence"
    capabilities = Capabilities(differentiable=False)

    def fit(self, train, valid=None, seed: int = 0):
        self.task = train.task
        inter = train.train_interactions
        self._ids = sorted(inter["item_id"].unique())
        self._index = {i: r for r, i in enumerate(self._ids)}
        users = sorted(inter["user_id"].unique())
        u_index = {u: r for r, u in enumerate(users)}
        m = np.zeros((len(users), len(self._ids)))
        for u, i, r in zip(inter["user_id"], inter["item_id"], inter["rating"]):
            m[u_index[u], self._index[i]] = 1.0 if math.isnan(r) else (r - 3.0) / 2.0
        sim = m.T @ m
        norm = np.sqrt(np.abs(np.diag(sim))) + 1e-9
        self._sim = sim / norm[:, None] / norm[None, :]
        return self

    def item_ids(self) -> list[str]:
        return list(self._ids)

    def item_rows(self, item_ids):
        return [self._index.get(i, -1) for i in item_ids]

    def score(self, profiles, candidates) -> np.ndarray:
        out = np.zeros((len(profiles), len(candidates[0])))
        for i, (p, cands) in enumerate(zip(profiles, candidates)):
            known = [(self._index[h.item_id], wt) for h, wt in zip(p.history, _weights([h.rating for h in p.history]))
                     if h.item_id in self._index]
            if not known:
                continue
            rows, wts = zip(*known)
            cols = [self._index.get(c, -1) for c in cands]
            sims = self._sim[np.ix_(rows, [max(c, 0) for c in cols])] * (np.array(cols) >= 0)
            out[i] = np.asarray(wts) @ sims / len(rows)
        return 1.0 / (1.0 + np.exp(-6.0 * out)) if self.task == "preference" else out
