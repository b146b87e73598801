"""How a defense trains each kind of recommender further.

Three kinds, told apart by what the model exposes (no model names):

- "text": text models (``fine_tune_text``): continue from the current weights on rendered
  (profile text, candidate text) units — the only way to learn from an adversarial TEXT;
- "torch": torch models built on the classic training hooks (``_prepare``, ``_batches``,
  ``_loss(batch, tables)``, ``_make_optimizer``; recommenders.classic._training):
  continue from the current weights with the model's own data pipeline and loss, or
  with a loss a defense supplies (APR);
- "refit": everything else (ItemKNN, Popularity, plug-ins without hooks): nothing to
  continue from, so "fine-tune" means fitting again on the augmented training data.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import numpy as np

TORCH_HOOKS = ("_prepare", "_batches", "_loss", "_make_optimizer", "_embedding_params")


def model_kind(model) -> str:
    caps = getattr(model, "capabilities", None)
    if getattr(caps, "text_input", False) and callable(getattr(model, "fine_tune_text", None)):
        return "text"
    if all(callable(getattr(model, h, None)) for h in TORCH_HOOKS):
        return "torch"
    return "refit"


def valid_metric(model, valid) -> tuple[str, float]:
    """The metric the model early-stops on (AUC / NDCG@10), computed as its fit does."""
    if callable(getattr(model, "_evaluate", None)):
        from recommenders.classic._training import VALID_METRIC

        return VALID_METRIC[model.task], float(model._evaluate(valid))
    from benchmark.evaluation import evaluate

    metrics = evaluate(model, valid)
    name = "auc" if valid.task == "preference" else "ndcg@10"
    return name, float(metrics[name])


def continue_training(model, train, valid=None, epochs: int = 1, seed: int = 0,
                      loss: Callable | None = None, patience: int = 0, progress: bool | None = False,
                      select: str = "best") -> dict:
    """Train a fitted "torch" model further on `train` (a TaskData) from its current weights.

    `loss(batch)` replaces the model's ``_loss(batch)``. With `valid`, the validation metric
    is logged every epoch; select="best" keeps the weights of the best epoch and stops after
    `patience` epochs without improvement (0: never early), select="last" keeps the last
    epoch's (a clean validation metric would pick the least adversarially trained epoch).
    The starting weights are never a candidate: the result is always trained under this
    loop's loss. Returns a log."""
    import torch
    from tqdm.auto import tqdm

    if model_kind(model) != "torch" or getattr(model, "net", None) is None:
        raise ValueError(f"{getattr(model, 'name', model)!r}: continue_training needs a fitted model with the classic training hooks")
    if select not in ("best", "last"):
        raise ValueError(f"select must be 'best' or 'last', got {select!r}")
    started = time.perf_counter()
    data = model._prepare(train)
    if loss is None and callable(getattr(model, "_train_step", None)):
        train_step = model._train_step  # the model's own step (BPR-MF: its fused kernel on CPU)
    else:
        def train_step(batch):
            value = (loss or model._loss)(batch)
            value.backward()
            return value.detach()
    device = model.device
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 6007])
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    optimizer = model._make_optimizer()
    best = (-np.inf, 0, None)
    log: list[dict] = []
    metric_name = None
    for epoch in tqdm(range(1, int(epochs) + 1), desc=f"{model.name} (defense)", unit="epoch",
                      disable=None if progress is None else not progress):
        model.net.train()
        total, n = 0.0, 0
        for batch in model._batches(data, rng, gen):
            optimizer.zero_grad(set_to_none=True)
            value = train_step(batch)
            optimizer.step()
            total += float(value)
            n += 1
        model.net.eval()
        entry = {"epoch": epoch, "loss": total / max(n, 1)}
        if valid is not None and valid.examples:
            metric_name, value = valid_metric(model, valid)
            entry[metric_name] = value
            if select == "last":
                pass
            elif value > best[0]:
                best = (value, epoch, copy.deepcopy(model.net.state_dict()))
            elif patience and epoch - best[1] >= patience:
                log.append(entry)
                break
        log.append(entry)
    if best[2] is not None:
        model.net.load_state_dict(best[2])
    model.net.eval()
    return {
        "epochs_run": len(log),
        "best_epoch": best[1] if best[2] is not None else len(log),
        "valid_metric": metric_name,
        "best_valid": None if best[2] is None else float(best[0]),
        "training_examples": len(train.examples),
        "epochs": log,
        "seconds": round(time.perf_counter() - started, 3),
    }


def text_units(model, examples: Sequence, seed: int) -> tuple[list[str], list, list[int]]:
    """(profile texts, candidate texts, labels) for fine_tune_text, rendered like the model's
    own training data: preference -> one pair per example; ranking -> the profile with its
    positive first and the model's number of sampled negatives (from the example's own
    candidates), label 0."""
    renderer = model.renderer
    profiles, candidates, labels = [], [], []
    if model.task == "preference":
        for ex in examples:
            r = renderer.render(ex.profile, ex.candidates[0])
            profiles.append(r.profile_text)
            candidates.append(r.candidate_text)
            labels.append(int(ex.label))
        return profiles, candidates, labels
    n_neg = int(model.opts.get("negatives", 4))
    rng = np.random.default_rng([seed, 31337])
    for ex in examples:
        positive = ex.candidates[ex.label]
        others = [c for i, c in enumerate(ex.candidates) if i != ex.label]
        chosen = [others[i] for i in rng.choice(len(others), size=min(n_neg, len(others)), replace=False)] if others else []
        profiles.append(renderer.render(ex.profile, positive).profile_text)
        candidates.append([renderer.candidate_text(c) for c in [positive, *chosen]])
        labels.append(0)
    return profiles, candidates, labels


def fine_tune_text(model, profiles: list[str], candidates: list, labels: list[int], epochs: int, seed: int,
                   lr: float | None = None) -> dict:
    """model.fine_tune_text on text units; returns a log with the number of units it saw."""
    started = time.perf_counter()
    history = model.fine_tune_text(profiles, candidates, labels, epochs=int(epochs), seed=seed, lr=lr)
    return {
        "epochs_run": len(history),
        "units_seen": int(sum(h.get("units", 0) for h in history)),
        "training_examples": len(profiles),
        "epochs": history,
        "seconds": round(time.perf_counter() - started, 3),
    }
