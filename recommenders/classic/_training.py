"""Shared machinery of the torch-trained classic recommenders (BPR-MF, SASRec).

A subclass supplies the network and four pieces; this base class does the rest
(device, seeding, scoring, the differentiable hooks for gradient attacks, safetensors
persistence; the epochs, early stopping and best-state restore are recommenders.training's
loop). Defenses use only the public side: ``loss(batch, tables)``, ``embedding_tables()``,
``validation_metric(valid)`` and ``train_further(..., loss=...)`` (recommenders.base.Trainable).

The subclass hooks:

- ``_build_net()``: the ``nn.Module`` (after ``self.vocab``/``self.max_len`` are set);
- ``_prepare(train)``: the training data as arrays, once per fit;
- ``_batches(data, rng, gen)``: the batches of one epoch (dicts of tensors on the device);
- ``_loss(batch, tables=None)``: the training loss of a batch. ``tables`` overrides the
  embedding tables named by ``_embedding_params()`` (same keys), so an adversarial
  training defense (APR) can add a perturbation to them and reuse the same loss;
  ``_train_step(batch)`` runs it with autograd unless a subclass has a fused kernel;
- ``_raw_scores(items, buckets, candidates, tables=None)``: (n, c) logits (preference) or
  real scores (ranking) for encoded profiles and candidates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from benchmark import metrics
from benchmark.profiles import Profile
from recommenders.base import Recommender
from benchmark.options import Options, option
from recommenders.classic._options import check_task, parse_options
from recommenders.classic._vocab import ItemVocab, VocabIndexed
from recommenders.devices import resolve_device
from recommenders.training import EpochLoop

STATE_FILE = "model.safetensors"


@dataclass
class TorchOptions(Options):
    """The options this base class reads; each model's declaration extends it."""

    max_len: int | None = option(None, "history length the model reads; None = the task's history length")
    device: str = option("auto", "torch device ('auto': CUDA when available)")
    progress: bool | None = option(None, "tqdm bar: None = when attached to a terminal")


class TorchRecommender(VocabIndexed, Recommender):
    """Base for torch-trained ID models with profile fold-in (see module docstring); its item
    index (recommenders.base.ItemIndexed) is the vocabulary's: row k of the "item" table."""

    OPTIONS: ClassVar[type[Options]] = TorchOptions  # each model extends it with its own
    # Values for options left at None, by task (training settings that differ by task).
    TASK_DEFAULTS: ClassVar[dict[str, dict]] = {"preference": {}, "ranking": {}}
    TASKS: ClassVar[tuple[str, ...]] = ("preference", "ranking")

    def __init__(self, **options):
        super().__init__(**parse_options(self, options))
        self.vocab: ItemVocab | None = None
        self.max_len: int | None = None
        self.net: torch.nn.Module | None = None
        self.training_log: dict = {}

    # -- hooks the subclasses implement ---------------------------------------------
    def _build_net(self) -> torch.nn.Module:
        raise NotImplementedError

    def _vocab_items(self, train) -> set[str]:
        """Items the model learns embeddings for (default: those in the training interactions)."""
        return set(train.train_interactions["item_id"].astype(str).unique())  # unique first: fast on Arrow strings

    def _prepare(self, train) -> dict:
        raise NotImplementedError

    def _batches(self, data: dict, rng: np.random.Generator, gen: torch.Generator) -> Iterator[dict]:
        raise NotImplementedError

    def _loss(self, batch: dict, tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _embedding_params(self) -> dict[str, torch.nn.Parameter]:
        raise NotImplementedError

    def _train_step(self, batch: dict) -> torch.Tensor:
        """The batch's loss (detached), its gradients left in the parameters' ``.grad``.
        Autograd on ``_loss``; a subclass may compute the same loss and gradients with a
        fused kernel (BPR-MF on CPU)."""
        loss = self._loss(batch)
        loss.backward()
        return loss.detach()

    def _raw_scores(self, items, buckets, candidates, tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        raise NotImplementedError

    # -- training ---------------------------------------------------------------------
    def setting(self, name: str):
        """An option's value; None falls back to the task's default (TASK_DEFAULTS)."""
        value = self.options.get(name)
        if value is None:
            value = self.TASK_DEFAULTS.get(self.task or "", {}).get(name)
        return value

    @property
    def device(self) -> torch.device:
        return resolve_device(self.options.get("device", "auto"))

    def _tables(self, tables: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """The embedding tables to compute with: the parameters, overridden by `tables`."""
        merged: dict[str, torch.Tensor] = dict(self._embedding_params())
        if tables:
            unknown = sorted(set(tables) - set(merged))
            if unknown:
                raise KeyError(f"unknown embedding table(s) {unknown}; this model has {sorted(merged)}")
            merged.update(tables)
        return merged

    def _make_optimizer(self) -> torch.optim.Optimizer:
        # fused: one kernel for all parameters (matters when an epoch is a few ms of math)
        return torch.optim.Adam(self.net.parameters(), lr=float(self.setting("lr")),
                                weight_decay=float(self.setting("weight_decay") or 0.0), fused=True)

    def fit(self, train, valid=None, seed: int = 0) -> "TorchRecommender":
        check_task(type(self).__name__, train.task, self.TASKS)
        if valid is not None and valid.task != train.task:
            raise ValueError(f"valid split is for task {valid.task!r}, train split for {train.task!r}")
        self.task = train.task
        self.max_len = int(self.options.get("max_len") or train.history_len)
        self.vocab = ItemVocab(self._vocab_items(train))
        if len(self.vocab) == 0:
            raise ValueError(f"{type(self).__name__}: the training split has no items to learn from")
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        device = self.device
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        self.net = self._build_net().to(device)
        data = self._prepare(train)
        optimizer = self._make_optimizer()

        def run_epoch(epoch: int) -> float:
            total, n = torch.zeros((), device=device), 0
            for batch in self._batches(data, rng, gen):
                optimizer.zero_grad(set_to_none=True)
                total += self._train_step(batch)  # no per-step device sync
                optimizer.step()
                n += 1
            return float(total) / max(n, 1)

        start = time.perf_counter()
        validated = valid is not None and bool(valid.examples)
        loop = EpochLoop(epochs=int(self.setting("epochs")), patience=int(self.setting("patience") or 0),
                         metric=metrics.PRIMARY_METRIC[self.task], desc=f"{type(self).__name__} {self.task}",
                         progress=False if self.options.get("progress") is False else None, timed=True)
        log = loop.run(self.net, run_epoch, (lambda: self._evaluate(valid)) if validated else None)
        self.training_log = {
            "seconds": round(time.perf_counter() - start, 3),  # the whole fit, validation included
            "train_seconds": log["train_seconds"],  # training-loop time only (validation excluded)
            "epochs_run": log["epochs_run"],
            "best_epoch": log["best_epoch"],
            "valid_metric": log["valid_metric"],
            "best_valid": log["best_valid"],
            "seed": seed,
            "epochs": log["epochs"],
        }
        return self

    # -- the public training API defenses use ---------------------------------------------
    def loss(self, batch: dict, tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The training loss of one batch (from ``training_batches``); ``tables`` overrides
        embedding tables by name (see ``embedding_tables``), e.g. APR's perturbed copies."""
        return self._loss(batch, tables)

    def embedding_tables(self) -> dict[str, torch.nn.Parameter]:
        """The trainable embedding tables ``loss(batch, tables=...)`` accepts, by name."""
        return self._embedding_params()

    def validation_metric(self, valid) -> tuple[str, float]:
        """(name, value) of the metric fit early-stops on (benchmark.metrics.validation_metric), on `valid`."""
        return metrics.PRIMARY_METRIC[self.task], float(self._evaluate(valid))

    def train_further(self, train, valid=None, epochs: int = 1, seed: int = 0,
                      loss: Callable[[dict], torch.Tensor] | None = None, patience: int = 0,
                      progress: bool | None = False, select: str = "best") -> dict:
        """Continue training a fitted model on `train` (a TaskData) from its current weights,
        with the model's own loss or `loss(batch)` (a defense's objective, built on
        ``loss``/``embedding_tables``), through the same loop as fit (recommenders.training).
        With `valid`, the validation metric is logged each epoch; select="best" keeps the
        best epoch's weights (stopping after `patience` epochs without improvement, 0:
        never early), select="last" the last epoch's. The starting weights are never a
        candidate: the result is always trained under `loss`. Returns a log."""
        if self.net is None or self.task != train.task:
            raise ValueError(f"{type(self).__name__}.train_further needs a model fitted for the {train.task!r} task")
        started = time.perf_counter()
        data = self._prepare(train)
        if loss is None:
            train_step = self._train_step  # the model's own step (BPR-MF: its fused kernel on CPU)
        else:
            def train_step(batch):
                value = loss(batch)
                value.backward()
                return value.detach()
        device = self.device
        torch.manual_seed(seed)
        rng = np.random.default_rng([seed, 6007])
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        optimizer = self._make_optimizer()

        def run_epoch(epoch: int) -> float:
            total, n = 0.0, 0
            for batch in self._batches(data, rng, gen):
                optimizer.zero_grad(set_to_none=True)
                value = train_step(batch)
                optimizer.step()
                total += float(value)
                n += 1
            return total / max(n, 1)

        validated = valid is not None and bool(valid.examples)
        metric = metrics.PRIMARY_METRIC[self.task]
        loop = EpochLoop(epochs=int(epochs), patience=int(patience), select=select, metric=metric,
                         desc=f"{self.name} (defense)", progress=progress)
        log = loop.run(self.net, run_epoch, (lambda: self._evaluate(valid)) if validated else None)
        return {
            "epochs_run": log["epochs_run"],
            "best_epoch": log["best_epoch"],
            "valid_metric": metric if validated else None,
            "best_valid": log["best_valid"],
            "training_examples": len(train.examples),
            "epochs": log["epochs"],
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _evaluate(self, task_data, batch_size: int = 1024) -> float:
        examples = task_data.examples
        scores = []
        for i in range(0, len(examples), batch_size):
            chunk = examples[i : i + batch_size]
            raw = self._score_tensor([e.profile for e in chunk], [e.candidates for e in chunk])
            scores.append(raw.cpu().numpy())
        labels = np.array([e.label for e in examples])
        stacked = np.concatenate(scores) if scores else np.zeros((0, 1))
        return metrics.validation_metric(self.task, stacked, labels)[1]

    # -- scoring ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.net is None or self.vocab is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted (call fit or load first)")

    def _encode(self, profiles: Sequence[Profile], candidates: Sequence[Sequence[str]]):
        if len(profiles) != len(candidates):
            raise ValueError(f"{len(profiles)} profiles but {len(candidates)} candidate lists")
        items, buckets = self.vocab.encode_histories(profiles, self.max_len)
        cand = self.vocab.encode_candidates(candidates)
        device = self.device
        return (torch.from_numpy(items).to(device), torch.from_numpy(buckets).to(device),
                torch.from_numpy(cand).to(device))

    def _score_tensor(self, profiles, candidates) -> torch.Tensor:
        self._check_fitted()
        items, buckets, cand = self._encode(profiles, candidates)
        self.net.eval()
        with torch.no_grad():
            raw = self._raw_scores(items, buckets, cand)
        return torch.sigmoid(raw) if self.task == "preference" else raw

    def score(self, profiles: Sequence[Profile], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        return self._score_tensor(profiles, candidates).cpu().numpy().astype(np.float64)

    def embedding_forward(
        self, profiles: Sequence[Profile], candidates: Sequence[Sequence[str]]
    ) -> tuple[dict[str, torch.Tensor], Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
        """Hook for embedding-space (APR-style) attacks.

        Returns ``base`` — the embedding tables (detached, on the model's device) that an
        attack may perturb — and ``forward(tables)`` -> (n, c) raw scores (logits for
        the preference task, real scores for ranking) computed with the given tables,
        differentiable w.r.t. them. Keys missing from ``tables`` fall back to ``base``.
        The network runs in eval mode (no dropout), so forward is deterministic.
        """
        self._check_fitted()
        items, buckets, cand = self._encode(profiles, candidates)
        base = {name: p.detach() for name, p in self._embedding_params().items()}

        def forward(tables: dict[str, torch.Tensor]) -> torch.Tensor:
            self.net.eval()
            return self._raw_scores(items, buckets, cand, tables={**base, **tables})

        return base, forward

    # -- persistence --------------------------------------------------------------------
    def config(self) -> dict:
        cfg = super().config()
        cfg.update(
            vocab=None if self.vocab is None else self.vocab.to_json(),
            max_len=self.max_len,
            training=self.training_log,
        )
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> "TorchRecommender":
        model = super().from_config(config)
        if config.get("vocab") is not None:
            model.vocab = ItemVocab.from_json(config["vocab"])
        model.max_len = config.get("max_len")
        model.training_log = config.get("training") or {}
        return model

    def save_state(self, directory) -> None:
        self._check_fitted()
        state = {k: v.detach().cpu().clone().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(directory / STATE_FILE))

    def load_state(self, directory) -> None:
        if self.vocab is None or self.task is None:
            raise ValueError(f"{directory}: saved config has no vocabulary/task (was the model fitted before saving?)")
        self.net = self._build_net()
        self.net.load_state_dict(load_file(str(directory / STATE_FILE)))
        self.net.to(self.device).eval()
