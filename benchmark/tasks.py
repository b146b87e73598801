"""Preference and ranking examples built from the leave-last-out split.

Preference (TALLRec-style, the seed's task): profile = up to H most recent earlier
interactions with ratings, candidate = the interaction's item, label = rating >= 4.
Ranking: the held-out positive plus N negatives sampled from items the user never
touched, fixed by the seed (candidates[0] is the positive; models score each candidate
independently, so the position carries no information).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from benchmark import seeding
from benchmark.data.dataset import Dataset
from benchmark.profiles import SPLITS, Interaction, Profile, split_dataset

TASKS = ("preference", "ranking")
LIKE_THRESHOLD = 4.0


@dataclass(frozen=True)
class Task:
    """What a task is scored by: the one place the task -> metric rules are written."""

    name: str
    primary_metric: str  # the headline metric, and what the ID models early-stop on
    metrics: tuple[str, ...]  # what benchmark.evaluation reports
    like_threshold: float | None = None  # preference: rating >= this is a "like"


TASK_SPECS: dict[str, Task] = {
    "preference": Task("preference", "auc", ("auc", "accuracy", "log_loss"), LIKE_THRESHOLD),
    "ranking": Task("ranking", "ndcg@10", ("hr@10", "ndcg@10", "mrr")),
}


def task_spec(name: str) -> Task:
    if name not in TASK_SPECS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASK_SPECS)}")
    return TASK_SPECS[name]

DEFAULT_HISTORY = 10
DEFAULT_NEGATIVES = 99


@dataclass(frozen=True)
class Example:
    example_id: str  # "<user_id>:<position in the user's timeline>"
    task: str
    split: str
    profile: Profile
    candidates: tuple[str, ...]
    label: int  # preference: 1 = liked (rating >= 4), 0 = not; ranking: index of the positive (0)
    rating: float  # the held-out interaction's rating (NaN when implicit)

    @property
    def target_item(self) -> str:
        return self.candidates[0] if self.task == "preference" else self.candidates[self.label]


@dataclass
class TaskData:
    """One split of one task, with everything a model needs to fit or score it."""

    dataset: Dataset
    task: str
    split: str
    examples: list[Example]
    timeline: pd.DataFrame  # all ordered interactions with "split" and "position" columns
    seed: int = 0
    history_len: int = DEFAULT_HISTORY

    @property
    def train_interactions(self) -> pd.DataFrame:
        """Interactions a model may learn from: the train part of every user's timeline."""
        return self.timeline[self.timeline["split"] == "train"]

    @property
    def item_ids(self) -> list[str]:
        """The catalog of interacted items, sorted (the universe candidates come from)."""
        return sorted(self.timeline["item_id"].unique())


def _user_rng(seed: int, user_id: str, position: int) -> np.random.Generator:
    # Independent of iteration order: each example's negatives depend only on (seed, user, position).
    return seeding.rng(seed, user_id, position)


def _sample_negatives(rng, universe: np.ndarray, touched: set[str], n: int) -> tuple[str, ...]:
    available = len(universe) - len(touched)
    n = min(n, max(available, 0))
    chosen: list[str] = []
    seen: set[str] = set()
    # Rejection sampling is fast when the user touched a small share of the catalog;
    # otherwise fall back to sampling from the explicit complement.
    if len(touched) < 0.5 * len(universe):
        while len(chosen) < n:
            for idx in rng.integers(0, len(universe), size=2 * (n - len(chosen)) + 8):
                item = universe[idx]
                if item not in touched and item not in seen:
                    seen.add(item)
                    chosen.append(item)
                    if len(chosen) == n:
                        break
    else:
        pool = np.array([i for i in universe if i not in touched])
        chosen = list(rng.choice(pool, size=n, replace=False))
    return tuple(str(i) for i in chosen)


def build_task(
    dataset: Dataset,
    task: str,
    split: str,
    seed: int = 0,
    history_len: int = DEFAULT_HISTORY,
    num_negatives: int = DEFAULT_NEGATIVES,
    max_examples: int | None = None,
    timeline: pd.DataFrame | None = None,
) -> TaskData:
    """Examples of `task` for `split` ("train", "valid" or "test").

    Train examples are every train interaction that has at least one earlier
    interaction to form a profile. `max_examples` keeps a seeded random subset
    (in timeline order), so that a budgeted run is still deterministic.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if timeline is None:
        timeline = split_dataset(dataset)
    if task == "preference" and timeline["rating"].isna().all():
        raise ValueError(f"dataset {dataset.name!r} has no ratings (implicit feedback): the preference task needs them")

    universe = np.array(sorted(timeline["item_id"].unique()), dtype=object)
    examples: list[Example] = []
    for user_id, group in timeline.groupby("user_id", sort=True):
        entries = [
            Interaction(i, float(r), int(t))
            for i, r, t in zip(group["item_id"], group["rating"], group["timestamp"])
        ]
        touched = set(group["item_id"]) if task == "ranking" else set()
        for pos, s in zip(group["position"], group["split"]):
            if s != split or pos == 0:
                continue
            target = entries[pos]
            if task == "preference" and math.isnan(target.rating):
                continue
            profile = Profile(str(user_id), tuple(entries[max(0, pos - history_len) : pos]))
            if task == "preference":
                candidates: tuple[str, ...] = (target.item_id,)
                label = int(target.rating >= LIKE_THRESHOLD)
            else:
                negatives = _sample_negatives(_user_rng(seed, str(user_id), int(pos)), universe, touched, num_negatives)
                candidates = (target.item_id,) + negatives
                label = 0
            examples.append(Example(f"{user_id}:{pos}", task, split, profile, candidates, label, target.rating))

    if max_examples is not None and len(examples) > max_examples:
        keep = seeding.seeded_subset(len(examples), max_examples, seed, 7919)
        examples = [examples[i] for i in keep]
    return TaskData(dataset, task, split, examples, timeline, seed=seed, history_len=history_len)


def build_splits(dataset: Dataset, task: str, seed: int = 0, **kwargs) -> dict[str, TaskData]:
    """train/valid/test TaskData sharing one timeline (computed once)."""
    timeline = split_dataset(dataset)
    return {s: build_task(dataset, task, s, seed=seed, timeline=timeline, **kwargs) for s in SPLITS}


def example_record(example: Example, renderer) -> dict:
    """A JSON-ready record of an example with its rendered text and span map."""
    record = {
        "example_id": example.example_id,
        "task": example.task,
        "split": example.split,
        "user_id": example.profile.user_id,
        "history": [
            {"item_id": h.item_id, "rating": None if math.isnan(h.rating) else h.rating, "timestamp": h.timestamp}
            for h in example.profile.history
        ],
        "candidates": list(example.candidates),
        "label": example.label,
        "template": renderer.template.name,
    }
    renderings = [renderer.render(example.profile, c) for c in example.candidates]
    first = renderings[0]
    record["text"] = first.text
    record["span_map"] = first.span_map()
    if example.task == "ranking":
        # The profile text is shared; each candidate has its own text.
        record["profile_text"] = first.profile_text
        record["candidate_texts"] = [r.candidate_text for r in renderings]
    return record


def write_examples_jsonl(examples: Iterable[Example], renderer, path: str | Path) -> int:
    """Write examples as JSON lines, deterministically (sorted keys, fixed separators)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for ex in examples:
            fh.write(json.dumps(example_record(ex, renderer), sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n
