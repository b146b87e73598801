"""Goal functions shared by profile and embedding attacks.

A goal is built for one example from its clean scores. It says whether a score vector
reaches the goal (``succeeded``), how close it is (``progress``, higher is closer, used by
greedy search), and gives a differentiable surrogate (``objective``, to maximise) over the
raw outputs of ``embedding_forward`` for gradient attacks.

- preference, "untargeted": flip the like/dislike decision (threshold 0.5).
- ranking, "demote" (also what "untargeted" means on ranking): the true item,
  candidates[0], leaves the top-10 of its candidates.
- ranking, "promote": a target chosen with the seed among the negatives ranked outside
  the top-10 enters the top-10.
Ranks count ties pessimistically for the attacked item, as benchmark.metrics does.

An example the goal cannot apply to (already misclassified, positive already outside the
top-10, no eligible target) raises Skip; attacks record it as "skipped".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attacks.records import TOP_K
from benchmark import seeding

THRESHOLD = 0.5


class Skip(Exception):
    """Nothing to attack on this example (the reason is recorded)."""


def example_rng(seed: int, example_id: str, salt: int) -> np.random.Generator:
    """Per-example generator: results do not depend on which other examples run or their order."""
    return seeding.rng(seed, example_id, salt)


def rank_of(scores: np.ndarray, index: int) -> int:
    """1-based rank of candidate `index`; a tie counts against it."""
    scores = np.asarray(scores, dtype=float)
    return 1 + int(np.sum(np.delete(scores, index) >= scores[index]))


def _kth_largest(values: np.ndarray, k: int) -> float:
    return float(np.partition(values, len(values) - k)[len(values) - k])


@dataclass(frozen=True)
class Outcome:
    score: float  # preference: like-probability; ranking: score of the attacked item
    rank: int | None  # ranking: rank of the attacked item
    correct: bool | None  # preference: decision == label


class Goal:
    name: str = ""
    index: int = 0  # candidate whose score / rank is reported
    target_item: str | None = None

    def succeeded(self, scores: np.ndarray) -> bool:
        raise NotImplementedError

    def progress(self, scores: np.ndarray) -> float:
        raise NotImplementedError

    def objective(self, raw):
        """Differentiable value to maximise, from one example's raw output row (torch, shape (c,))."""
        raise NotImplementedError

    def outcome(self, scores: np.ndarray) -> Outcome:
        raise NotImplementedError


class FlipPreference(Goal):
    name = "untargeted-classification"

    def __init__(self, label: int):
        self.label = int(label)

    def correct(self, scores) -> bool:
        return int(float(np.ravel(scores)[0]) >= THRESHOLD) == self.label

    def succeeded(self, scores) -> bool:
        return not self.correct(scores)

    def progress(self, scores) -> float:
        p = float(np.ravel(scores)[0])
        return THRESHOLD - p if self.label == 1 else p - THRESHOLD

    def objective(self, raw):
        import torch.nn.functional as F

        # Minus binary cross-entropy toward the wrong label (raw = logit).
        z = raw.reshape(-1)[0]
        wrong = raw.new_tensor(float(1 - self.label))
        return -F.binary_cross_entropy_with_logits(z, wrong)

    def outcome(self, scores) -> Outcome:
        return Outcome(float(np.ravel(scores)[0]), None, self.correct(scores))


class Demote(Goal):
    name = f"demote-top{TOP_K}"

    def __init__(self, index: int = 0, k: int = TOP_K):
        self.k = k
        self.index = index

    def succeeded(self, scores) -> bool:
        return rank_of(scores, self.index) > self.k

    def progress(self, scores) -> float:
        # >= 0 exactly when k negatives score at least as high as the positive.
        scores = np.asarray(scores, dtype=float)
        return _kth_largest(np.delete(scores, self.index), self.k) - float(scores[self.index])

    def objective(self, raw):
        import torch

        # Push the currently strongest k negatives up and the positive down.
        negatives = torch.cat([raw[: self.index], raw[self.index + 1 :]])
        return torch.topk(negatives, self.k).values.mean() - raw[self.index]

    def outcome(self, scores) -> Outcome:
        return Outcome(float(np.asarray(scores)[self.index]), rank_of(scores, self.index), None)


class Promote(Goal):
    name = f"promote-top{TOP_K}"

    def __init__(self, index: int, target_item: str, k: int = TOP_K):
        self.k = k
        self.index = index
        self.target_item = target_item

    def _others(self, scores: np.ndarray) -> np.ndarray:
        return np.delete(np.asarray(scores, dtype=float), self.index)

    def succeeded(self, scores) -> bool:
        return rank_of(scores, self.index) <= self.k

    def progress(self, scores) -> float:
        # > 0 exactly when fewer than k other candidates score at least as high as the target.
        return float(np.asarray(scores)[self.index]) - _kth_largest(self._others(scores), self.k)

    def objective(self, raw):
        import torch

        others = torch.cat([raw[: self.index], raw[self.index + 1 :]])
        return raw[self.index] - torch.topk(others, self.k).values.mean()

    def outcome(self, scores) -> Outcome:
        return Outcome(float(np.asarray(scores)[self.index]), rank_of(scores, self.index), None)


def resolve_goal_name(task: str, goal: str | None) -> str:
    """The goal an attack pursues on `task` ("untargeted" on ranking means demote)."""
    if task == "preference":
        if goal not in (None, "untargeted"):
            raise ValueError(f"goal {goal!r} applies to the ranking task; the preference task has goal 'untargeted'")
        return "untargeted"
    if task == "ranking":
        return "promote" if goal == "promote" else "demote"
    raise ValueError(f"unknown task {task!r}")


def make_goal(example, scores: np.ndarray, goal: str | None, seed: int) -> Goal:
    """The goal for `example` given its clean `scores`; raises Skip with the reason when
    there is nothing to attack."""
    scores = np.asarray(scores, dtype=float)
    kind = resolve_goal_name(example.task, goal)
    if kind == "untargeted":
        g = FlipPreference(example.label)
        if not g.correct(scores):
            raise Skip("the model already gets this example wrong")
        return g
    if kind == "demote":
        if len(scores) <= TOP_K:
            raise Skip(f"only {len(scores)} candidates: the true item cannot leave the top-{TOP_K}")
        if rank_of(scores, example.label) > TOP_K:
            raise Skip(f"the true item is already outside the top-{TOP_K}")
        return Demote(example.label)
    eligible = [i for i in range(len(scores)) if i != example.label and rank_of(scores, i) > TOP_K]
    if not eligible:
        raise Skip(f"no negative ranked outside the top-{TOP_K} to promote")
    index = int(example_rng(seed, example.example_id, 1).choice(eligible))
    return Promote(index, example.candidates[index])


def skipped_outcome(example, scores: np.ndarray, goal: str | None) -> Outcome:
    """What a skipped record reports: the clean state of the item the goal is about."""
    scores = np.asarray(scores, dtype=float)
    kind = resolve_goal_name(example.task, goal)
    if kind == "untargeted":
        return FlipPreference(example.label).outcome(scores)
    if kind == "demote":
        return Outcome(float(scores[example.label]), rank_of(scores, example.label), None)
    # promote with no eligible target: every negative is already in the top-k; report the best one.
    negatives = [i for i in range(len(scores)) if i != example.label]
    best = min(negatives, key=lambda i: rank_of(scores, i)) if negatives else example.label
    return Outcome(float(scores[best]), rank_of(scores, best), None)


def goal_label(task: str, goal: str | None) -> str:
    kind = resolve_goal_name(task, goal)
    return {"untargeted": FlipPreference.name, "demote": Demote.name, "promote": Promote.name}[kind]
