"""Shared machinery of the text recommenders: devices, mixed precision, length-aware
batching with dynamic padding, the query cache, optimisation and the decision threshold
(the validation metric is benchmark.metrics.validation_metric, the same for every model).

Speed notes (DESIGN, "Performance facts"): the forward passes are the cost, so we never
pad to the tokenizer's model_max_length (padding ~100-token profiles to 512 costs ~4.7x);
every batch is padded only to its own longest sequence, and inference sorts pairs by
token length so that batches hold sequences of similar length.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from typing import Callable, Hashable, Iterable, Sequence

import numpy as np
import torch

from recommenders.devices import resolve_device  # noqa: F401 (part of this module's API)
from benchmark import seeding

# -- devices and precision ---------------------------------------------------


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA GPUs that support it; a no-op elsewhere (bf16 on these CPUs is slower)."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# -- the query cache -----------------------------------------------------------


class LRUCache:
    """A bounded least-recently-used map. Attacks query the same text many times."""

    def __init__(self, maxsize: int = 100_000):
        self.maxsize = int(maxsize)
        self._data: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default=None):
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        return default

    def put(self, key: Hashable, value) -> None:
        if self.maxsize <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
        self.hits = self.misses = 0


# -- tokenisation and batching ------------------------------------------------


def prepare_tokenizer(tokenizer):
    """Truncate from the left: the profile lists history oldest first, so when a profile is
    too long we drop its oldest entries and keep the most recent ones and the candidate."""
    tokenizer.truncation_side = "left"
    return tokenizer


def encode(tokenizer, texts: Sequence[str], pair_texts: Sequence[str] | None, max_length: int) -> dict[str, list]:
    """Token ids without padding (lists of lists), truncated to max_length."""
    kwargs = dict(truncation=True, max_length=max_length, padding=False, return_attention_mask=False)
    if pair_texts is None:
        return tokenizer(list(texts), **kwargs)
    return tokenizer(list(texts), list(pair_texts), **kwargs)


def pad_batch(encoded: dict[str, list], indices: Sequence[int], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Tensors for the chosen rows, padded to the longest of them (dynamic padding)."""
    ids = [encoded["input_ids"][i] for i in indices]
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    types = torch.zeros((len(ids), width), dtype=torch.long) if "token_type_ids" in encoded else None
    for row, (i, seq) in enumerate(zip(indices, ids)):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[row, : len(seq)] = 1
        if types is not None:
            types[row, : len(seq)] = torch.tensor(encoded["token_type_ids"][i], dtype=torch.long)
    batch = {"input_ids": input_ids, "attention_mask": attention}
    if types is not None:
        batch["token_type_ids"] = types
    return {k: v.to(device) for k, v in batch.items()}


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Inference batches of similar length (longest first, so a memory problem shows at once)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator, chunk_batches: int = 50
) -> list[np.ndarray]:
    """Training batches: shuffle, sort by length within chunks of `chunk_batches` batches
    (less padding), then shuffle the batch order (batches stay random)."""
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    batches: list[np.ndarray] = []
    step = batch_size * chunk_batches
    for start in range(0, len(order), step):
        chunk = order[start : start + step]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def unit_batches(prepared: dict, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Training batches over prepared units ("lengths"; "sizes" for ranking groups): for
    groups, batch_size counts pairs, so a step holds whole groups (positive + negatives)."""
    if prepared["kind"] == "groups":
        batch_size = max(1, batch_size // int(np.max(prepared["sizes"])))
    return length_grouped_batches(prepared["lengths"], batch_size, rng)


def group_rows(prepared: dict, idx: np.ndarray) -> list[np.ndarray]:
    """The flat pair rows of each ranking group in `idx` (prepared "starts" and "sizes")."""
    return [np.arange(s, s + n) for s, n in zip(prepared["starts"][idx], prepared["sizes"][idx])]


def listwise_loss(scores: torch.Tensor, rows: Sequence[np.ndarray]) -> torch.Tensor:
    """Mean listwise softmax cross-entropy over consecutive groups of `scores` (one group
    per entry of `rows`, its positive first)."""
    losses, at = [], 0
    for r in rows:
        losses.append(-torch.nn.functional.log_softmax(scores[at : at + len(r)], dim=0)[0])
        at += len(r)
    return torch.stack(losses).mean()


# -- optimisation ---------------------------------------------------------------


def make_optimizer(
    params: Iterable[tuple[str, torch.nn.Parameter]],
    lr: float,
    weight_decay: float,
    head_lr: float | None = None,
    is_head: Callable[[str], bool] | None = None,
):
    """AdamW; no weight decay on biases and LayerNorm weights (the usual BERT recipe).
    Parameters for which is_head(name) holds (small freshly initialised heads) train at head_lr."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in params:
        if not p.requires_grad:
            continue
        head = bool(head_lr and is_head and is_head(name))
        no_decay = p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        groups.setdefault((head, no_decay), []).append(p)
    return torch.optim.AdamW(
        [
            {"params": ps, "lr": head_lr if head else lr, "weight_decay": 0.0 if no_decay else weight_decay}
            for (head, no_decay), ps in groups.items()
        ],
        lr=lr,
    )


def make_scheduler(optimizer, total_steps: int, warmup: float):
    """Linear warmup then linear decay. warmup < 1 is a share of the steps, >= 1 a step count."""
    from transformers import get_linear_schedule_with_warmup

    warmup_steps = int(round(warmup * total_steps)) if warmup < 1 else int(warmup)
    return get_linear_schedule_with_warmup(optimizer, warmup_steps, max(total_steps, 1))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the trainable state, for best-epoch selection."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def seeded_subset(n: int, k: int | None, seed: int, salt: int = 104729) -> np.ndarray:
    """Indices of a seeded random subset of size k (all of them, in order, when k is None or >= n)."""
    return seeding.seeded_subset(n, k, seed, salt)


def accuracy_threshold(labels: Sequence[int], logits: Sequence[float]) -> tuple[float, float]:
    """(t, accuracy): the logit threshold t for which "like exactly when logit >= t" is most
    accurate on (labels, logits), a midpoint between adjacent distinct logits (or below or
    above them all); among equally accurate thresholds, 0 (the untouched decision rule) where
    it is one of them, else the one closest to 0."""
    y = np.asarray(labels, dtype=int)
    z = np.asarray(logits, dtype=float)
    if not len(y):
        return 0.0, math.nan
    values, inverse = np.unique(z, return_inverse=True)
    pos = np.bincount(inverse, weights=y, minlength=len(values))
    neg = np.bincount(inverse, weights=1 - y, minlength=len(values))
    # Split k: values[:k] predicted "dislike", values[k:] "like" (k = 0 .. len(values)).
    correct = np.concatenate([[0.0], np.cumsum(neg)]) + np.concatenate([np.cumsum(pos[::-1])[::-1], [0.0]])
    lo = np.concatenate([[-np.inf], values])  # split k holds every t in (lo[k], hi[k]]
    hi = np.concatenate([values, [np.inf]])
    accuracy = float(correct.max() / len(y))
    best = np.flatnonzero(correct == correct.max())
    if np.any((lo[best] < 0) & (0 <= hi[best])):
        return 0.0, accuracy
    mid = np.where(np.isinf(lo), hi - 1.0, np.where(np.isinf(hi), lo + 1.0, (lo + hi) / 2))
    return float(mid[best][np.argmin(np.abs(mid[best]))]), accuracy
