"""Training data for the defenses: extra (adversarial or augmented) examples in the forms
every recommender learns from.

A recommender learns either from labelled examples (``train.examples``: the preference
task, the text models) or from interactions (``train.train_interactions``: BPR-MF and
SASRec on the ranking task, ItemKNN's similarities). An extra example therefore enters
the training data twice:

- as an Example (its edited profile, its candidates, its TRUE label), appended to the
  examples;
- as a pseudo-user sequence in the train part of the timeline: the example's history,
  oldest first, followed by its target (the candidate, with the held-out rating). An
  interaction-trained model then learns "after this (edited) history comes the true next
  item" like it learns from any user's sequence. Pseudo users get ids starting with
  ``PSEUDO_PREFIX`` and contiguous rows, as the timeline contract asks.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from benchmark.profiles import Interaction
from benchmark import seeding
from benchmark.tasks import Example, TaskData

PSEUDO_PREFIX = "~aug:"


def seeded_sample(n: int, k: int | None, *key: int) -> np.ndarray:
    """Sorted indices of a random subset of size k of range(n), fixed by `key` (all when k is None or >= n)."""
    return seeding.seeded_subset(n, k, *key)


def model_training_examples(model, train: TaskData, seed: int) -> list[Example]:
    """The examples `model` actually learns from: text models may keep a seeded subset
    (their ``max_train_examples`` option), the others use every example."""
    opts = getattr(model, "opts", None)  # a text model's declared options (benchmark.options.Options)
    limit = opts.get("max_train_examples") if callable(getattr(opts, "get", None)) else None
    if limit is None:
        return list(train.examples)
    return [train.examples[i] for i in seeding.seeded_subset(len(train.examples), limit, seed, 104729)]


def history_from_record(original: Sequence[Interaction], perturbed: Iterable[dict]) -> tuple[Interaction, ...]:
    """Interactions from an attack record's perturbed history ([{item_id, rating}, ...]).

    Records carry no timestamps; models read the order only. An item that was already in
    the profile keeps its timestamp, a new one takes its predecessor's (the start of the
    original history when it comes first)."""
    stamps = {h.item_id: h.timestamp for h in original}
    last = original[0].timestamp if original else 0
    out = []
    for entry in perturbed:
        item = str(entry["item_id"])
        rating = entry.get("rating")
        rating = math.nan if rating is None else float(rating)
        last = stamps.get(item, last)
        out.append(Interaction(item, rating, int(last)))
    return tuple(out)


def with_history(example: Example, history: Sequence[Interaction], suffix: str) -> Example:
    """The example with another history (same candidates, same true label)."""
    return replace(example, example_id=f"{example.example_id}{suffix}", split="train",
                   profile=example.profile.replace_history(history))


def _touched_items(timeline: pd.DataFrame) -> dict[str, set[str]]:
    return {str(u): set(map(str, g)) for u, g in timeline.groupby("user_id", sort=False)["item_id"]}


def with_negatives(examples: Sequence[Example], data: TaskData, n: int, seed: int) -> list[Example]:
    """Ranking examples with `n` sampled negatives added after the positive (candidates[0]),
    drawn from items the user never touched and fixed by (seed, example id). Training
    examples carry only their positive; a top-10 goal needs a candidate list to rank in."""
    if not examples or examples[0].task != "ranking":
        return list(examples)
    
    universe = np.array(data.item_ids, dtype=object)
    touched = _touched_items(data.timeline)
    out = []
    for ex in examples:
        if len(ex.candidates) > 1:
            out.append(ex)
            continue
        seen = touched.get(ex.profile.user_id, set()) | {ex.candidates[0]} | set(ex.profile.item_ids())
        pool = np.array([i for i in universe if i not in seen], dtype=object)
        rng = seeding.rng(seed, ex.example_id, 4099)
        chosen = rng.choice(len(pool), size=min(n, len(pool)), replace=False) if len(pool) else []
        out.append(replace(ex, candidates=(ex.candidates[0], *(str(pool[i]) for i in chosen)), label=0))
    return out


def pseudo_timeline(examples: Sequence[Example], columns: Sequence[str], tag: str) -> pd.DataFrame:
    """One pseudo user per example: its history, then its target (rated with the example's
    rating), as train rows with positions 0..n-1."""
    rows = []
    for k, ex in enumerate(examples):
        user = f"{PSEUDO_PREFIX}{tag}:{k}:{ex.example_id}"
        seq = [*ex.profile.history]
        last = seq[-1].timestamp if seq else 0
        seq.append(Interaction(ex.target_item, float(ex.rating), int(last) + 1))
        for pos, h in enumerate(seq):
            rows.append({"user_id": user, "item_id": h.item_id, "rating": float(h.rating),
                         "timestamp": int(h.timestamp), "position": pos, "split": "train"})
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp", "position", "split"])
    for col in columns:
        if col not in frame.columns:
            frame[col] = pd.NA
    return frame[list(columns)]


def _concat_timelines(base: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    if extra.empty:
        return base
    extra = extra.astype({c: base[c].dtype for c in ("user_id", "item_id", "rating", "timestamp", "position")
                          if c in base.columns}, errors="ignore")
    return pd.concat([base, extra], ignore_index=True)


def augmented(train: TaskData, extra: Sequence[Example], tag: str, base_examples: Sequence[Example] | None = None) -> TaskData:
    """`train` (all of it: its examples — or `base_examples` — and its timeline) plus the
    `extra` examples, each also a pseudo-user sequence."""
    timeline = _concat_timelines(train.timeline, pseudo_timeline(extra, train.timeline.columns, tag))
    examples = list(train.examples if base_examples is None else base_examples) + list(extra)
    return TaskData(train.dataset, train.task, "train", examples, timeline, seed=train.seed,
                    history_len=train.history_len)


def only(train: TaskData, examples: Sequence[Example], tag: str) -> TaskData:
    """A training set made of `examples` alone: its timeline is their pseudo-user sequences
    (train rows) plus the original valid/test rows (so the item universe is unchanged)."""
    held_out = train.timeline[train.timeline["split"] != "train"]
    timeline = _concat_timelines(held_out, pseudo_timeline(examples, train.timeline.columns, tag))
    return TaskData(train.dataset, train.task, "train", list(examples), timeline, seed=train.seed,
                    history_len=train.history_len)
