"""How a defense trains each kind of recommender further.

Three kinds, told apart by the public protocols of recommenders.base (no model names):

- "text": text models (``TextFineTunable``: ``fine_tune_text``, ``training_units``): continue from the current
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

from recommenders.base import TextFineTunable, Trainable


def model_kind(model) -> str:
    caps = getattr(model, "capabilities", None)
    if getattr(caps, "text_input", False) and isinstance(model, TextFineTunable):
        return "text"
    if isinstance(model, Trainable):
        return "torch"
    return "refit"


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
