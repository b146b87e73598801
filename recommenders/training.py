"""The training loop of the torch-trained recommenders, apart from the models (RecBole's
model / Trainer split): the model gives its batches and its loss, the loop does the
epochs, validation, early stopping, best-state restore and the progress bar.

    loop = EpochLoop(epochs=10, patience=3, select="best", metric="ndcg@10")
    log = loop.run(net, run_epoch, validate)

- ``run_epoch(epoch) -> float``: one pass over the batches (zero_grad, loss, backward,
  step); returns the epoch's mean loss. A defense changes the objective through the
  model's public loss hook (``TorchRecommender.train_further(loss=...)``), never here.
- ``validate() -> float`` (or None): the validation metric, higher is better.
- select="best" keeps the state of the best validated epoch and stops after `patience`
  epochs without improvement (0: never early); select="last" keeps the last epoch (an
  adversarial objective validated on clean data would otherwise pick its least trained epoch).

The loop only controls: seeding, data and optimisers belong to the caller, so a model's
numbers do not change by moving its loop here.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

SELECT = ("best", "last")


@dataclass
class EpochLoop:
    epochs: int
    patience: int = 0
    select: str = "best"
    metric: str | None = None  # the log key of validate()'s value
    desc: str = "training"
    progress: bool | None = None  # None: tqdm decides (off when not a terminal)
    timed: bool = False  # log the cumulative training seconds per epoch
    # Best-state copy and restore (default: a deep copy of state_dict; text models keep a CPU copy).
    snapshot: Callable[[torch.nn.Module], dict] | None = None

    def __post_init__(self):
        if self.select not in SELECT:
            raise ValueError(f"select must be one of {SELECT}, got {self.select!r}")
        if int(self.epochs) < 0 or int(self.patience) < 0:
            raise ValueError(f"epochs and patience must be >= 0, got {self.epochs}, {self.patience}")

    def run(self, net: torch.nn.Module, run_epoch: Callable[[int], float | dict],
            validate: Callable[[], float] | None = None, log: list[dict] | None = None) -> dict:
        """Train `net` in place. `run_epoch` returns the epoch's mean loss, or its whole log
        entry (a dict); entries are appended to `log` (a new list by default). Returns
        {"epochs": log, "epochs_run", "best_epoch" (1-based, of this run), "best_valid",
        "valid_metric", "train_seconds"}."""
        snapshot = self.snapshot or (lambda module: copy.deepcopy(module.state_dict()))
        best = (-np.inf, 0, None)  # (metric, epoch, state)
        log = [] if log is None else log
        run = 0
        train_seconds = 0.0
        bar = tqdm(range(1, int(self.epochs) + 1), desc=self.desc, unit="epoch",
                   disable=None if self.progress is None else not self.progress)
        for epoch in bar:
            net.train()
            tick = time.perf_counter()
            result = run_epoch(epoch)
            train_seconds += time.perf_counter() - tick
            net.eval()
            run = epoch
            entry = result if isinstance(result, dict) else {"epoch": epoch, "loss": float(result)}
            if self.timed:
                entry["seconds"] = round(train_seconds, 4)
            log.append(entry)
            if validate is not None:
                value = float(validate())
                entry[self.metric or "valid"] = value
                if self.select == "best" and value > best[0]:
                    best = (value, epoch, snapshot(net))
            bar.set_postfix({k: round(v, 4) for k, v in entry.items()
                             if k not in ("epoch", "seconds") and isinstance(v, float)})
            if self.patience and best[2] is not None and epoch - best[1] >= int(self.patience):
                break
        kept = best[2] is not None
        if kept and best[1] != run:  # the last epoch's weights are the best ones already
            net.load_state_dict(best[2])
        net.zero_grad(set_to_none=True)  # no stale .grad for gradient attacks to trip on
        net.eval()
        return {
            "epochs_run": run,
            "best_epoch": best[1] if kept else run,
            "valid_metric": self.metric if kept else None,
            "best_valid": float(best[0]) if kept else None,
            "train_seconds": round(train_seconds, 3),
            "epochs": log,
        }
