"""How a defense trains each kind of recommender further.

Three kinds, told apart by the public protocols of recommenders.base (no model names):

- "text": text models (``TextFineTunable``: ``fine_tune_text``): continue from the current
  weights on rendered (profile text, candidate text) units — the only way to learn from an
  adversarial TEXT;
- "torch": ``Trainable`` models (BPR-MF, SASRec): ``model.train_further`` continues from
  the current weights with the model's own data pipeline and loss, or with a loss a
  defense builds from ``model.loss(batch, tables)`` and ``model.embedding_tables()`` (APR);
- "refit": everything else (ItemKNN, Popularity, plug-ins without them): nothing to
  continue from, so "fine-tune" means fitting again on the augmented training data.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from benchmark import seeding
from recommenders.base import TextFineTunable, Trainable


def model_kind(model) -> str:
    caps = getattr(model, "capabilities", None)
    if getattr(caps, "text_input", False) and isinstance(model, TextFineTunable):
        return "text"
    if isinstance(model, Trainable):
        return "torch"
    return "refit"


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
    rng = seeding.rng(seed, 31337)
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
