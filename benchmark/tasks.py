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
from typing import Iterable, Iterator

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
    primary_metric: str  # the headline metric, and what every trained model early-stops on (metrics.validation_metric)
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



def _sample_negative_codes(rng, n_universe: int, touched: set[int], n: int) -> np.ndarray:
    """_sample_negatives on item codes (positions in the sorted catalog): the same draws,
    so the same negatives, without a string per catalog item."""
    available = n_universe - len(touched)
    n = min(n, max(available, 0))
    chosen: list[int] = []
    seen: set[int] = set()
    if len(touched) < 0.5 * n_universe:
        while len(chosen) < n:
            for idx in rng.integers(0, n_universe, size=2 * (n - len(chosen)) + 8).tolist():
                if idx not in touched and idx not in seen:
                    seen.add(idx)
                    chosen.append(idx)
                    if len(chosen) == n:
                        break
    else:
        pool = np.array([i for i in range(n_universe) if i not in touched], dtype=np.int64)
        chosen = list(rng.choice(pool, size=n, replace=False))
    return np.asarray(chosen, dtype=np.int64)

def _eligible(timeline: pd.DataFrame, task: str, split: str) -> np.ndarray:
    """Boolean mask of the timeline rows that give an example of `split`: the split's rows
    with at least one earlier interaction (and, for preference, a rating)."""
    mask = (timeline["split"].to_numpy() == split) & (timeline["position"].to_numpy() > 0)
    if task == "preference":
        mask &= ~np.isnan(timeline["rating"].to_numpy(dtype="float64"))
    return mask


def count_examples(timeline: pd.DataFrame, task: str, split: str) -> int:
    """How many examples `iter_examples` yields for a split (vectorised, builds nothing)."""
    return int(_eligible(timeline, task, split).sum())



def subset_indices(timeline: pd.DataFrame, task: str, split: str, seed: int, max_examples: int | None) -> np.ndarray | None:
    """The seeded subset `build_task(max_examples=...)` keeps, as sorted indices for
    `iter_examples(keep=...)`; None when the whole split is kept."""
    if max_examples is None:
        return None
    total = count_examples(timeline, task, split)
    if total <= max_examples:
        return None
    return seeding.seeded_subset(total, max_examples, seed, 7919)

def iter_examples(
    timeline: pd.DataFrame,
    task: str,
    split: str,
    seed: int = 0,
    history_len: int = DEFAULT_HISTORY,
    num_negatives: int = DEFAULT_NEGATIVES,
    keep: np.ndarray | None = None,
) -> Iterator[Example]:
    """The examples of one split, one at a time, in timeline order (users sorted by id).

    `keep`: sorted indices into that sequence to yield (a seeded subset); the others are
    skipped without being built. Only the interactions a yielded example shows are turned
    into Python objects, so memory stays flat whatever the dataset's size.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    eligible = np.flatnonzero(_eligible(timeline, task, split))
    if keep is not None:
        eligible = eligible[np.asarray(keep, dtype=np.int64)]
    if not len(eligible):
        return
    positions = timeline["position"].to_numpy(dtype="int64")
    expected = np.where(positions[1:] == 0, 0, positions[:-1] + 1)
    if len(positions) and (positions[0] != 0 or not np.array_equal(positions[1:], expected)):
        raise ValueError("timeline is not in leave_last_out order (each user's rows contiguous, positions 0, 1, ...)")
    # Items as integer codes into the sorted catalog: no Python string per interaction.
    codes, universe = pd.factorize(timeline["item_id"], sort=True)
    universe = np.asarray(universe, dtype=object)
    ratings = timeline["rating"].to_numpy(dtype="float64")
    times = timeline["timestamp"].to_numpy(dtype="int64")
    user_ids = timeline["user_id"].take(eligible).to_numpy(dtype=object)
    starts = eligible - positions[eligible]  # each example's first row of its user
    if task == "ranking":
        bounds = np.append(np.flatnonzero(positions == 0), len(positions))
        ends = bounds[np.searchsorted(bounds, starts, side="right")]
    touched_of: tuple[int, set] = (-1, set())
    # A user's history entries are built once, from the first row any of its examples shows.
    user_start, base, entries = -1, 0, []
    for k, (row, start) in enumerate(zip(eligible.tolist(), starts.tolist())):
        pos = row - start
        lo = max(start, row - history_len)
        if start != user_start:
            user_start, base, entries = start, lo, []
        for r in range(base + len(entries), row):
            entries.append(Interaction(universe[codes[r]], float(ratings[r]), int(times[r])))
        history = tuple(entries[lo - base : row - base])
        user_id = str(user_ids[k])
        profile = Profile(user_id, history)
        rating = float(ratings[row])
        if task == "preference":
            candidates: tuple[str, ...] = (universe[codes[row]],)
            label = int(rating >= LIKE_THRESHOLD)
        else:
            if touched_of[0] != start:
                touched_of = (start, set(codes[start:int(ends[k])].tolist()))
            negatives = _sample_negative_codes(_user_rng(seed, user_id, pos), len(universe), touched_of[1], num_negatives)
            candidates = (universe[codes[row]],) + tuple(universe[negatives].tolist())
            label = 0
        yield Example(f"{user_id}:{pos}", task, split, profile, candidates, label, rating)


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

    keep = subset_indices(timeline, task, split, seed, max_examples)
    examples = list(iter_examples(timeline, task, split, seed=seed, history_len=history_len,
                                  num_negatives=num_negatives, keep=keep))
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
