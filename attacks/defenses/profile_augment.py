"""profile-augment: random profile perturbations within the attack budget, as data augmentation.

For a seeded share (`ratio`) of the training examples, a copy is made whose history gets
k random edits, k uniform in [1, budget] (default budget 3 = the profile attacks' default),
each edit a random swap / insert / delete / rating flip with exactly the profile attacks'
semantics (attacks.profile.transformations: an entry is edited at most once, swaps keep
rating and time, inserts become the most recent entry with the scale's lowest or highest
rating, a profile keeps one entry, ratings flip r -> lo + hi - r). Replacement and
inserted items are drawn uniformly from the training catalog, never the example's own
candidates. The copy keeps its candidates and its true label: the model learns that a
few edits do not change the answer. The model is then fitted on the original plus the
augmented data.

What that means per model:
- example-trained (the preference task of every model, and the text models on both
  tasks): the augmented copies are extra labelled examples;
- interaction-trained (bpr-mf and sasrec on the ranking task, itemknn's similarities and
  item statistics): each copy is also a pseudo-user sequence — its edited history followed
  by its true next item (attacks.defenses.training_data) — so BPR-MF learns to rank the
  true item after a perturbed window, SASRec sees perturbed sequences (like the random
  substitution / insertion / deletion augmentations of sequential recommenders), and
  itemknn's co-occurrences include the perturbed sequences. Edited entries inside a
  sequence are also next-item targets for what precedes them: noisy positives, the usual
  price of sequence augmentation.
- popularity ignores the profile: nothing to augment (the defense does not apply).

Options: ProfileAugmentOptions (budget, kinds, ratio, rating_scale, fit, epochs; fit=false trains a
fitted model further: text models via fine_tune_text, torch classic models via their training hooks).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from attacks.defenses.base import Defense
from benchmark.options import Options, option
from attacks.defenses import fitting, training_data as td
from attacks.profile.transformations import KINDS, Edit, State, apply
from benchmark import seeding

DEFAULT_BUDGET = 3  # = attacks.profile.attacks.DEFAULT_BUDGET


@dataclass
class ProfileAugmentOptions(Options):
    budget: int = option(DEFAULT_BUDGET, "most edits per augmented copy (k ~ U{1..budget})")
    kinds: list | None = option(None, "edit kinds drawn from (default: swap, insert, delete, flip)")
    ratio: float = option(0.5, "augmented copies per training example (a seeded share below 1, several above)")
    rating_scale: list = option([1.0, 5.0], "[low, high] of the ratings, for flips and inserted ratings")
    fit: bool = option(True, "fit on the augmented data; false: train the fitted model further on it")
    epochs: int = option(1, "fit=false: epochs of further training")


def _free(state: State) -> list[int]:
    return [i for i, done in enumerate(state.edited) if not done]


def _draw_item(universe: np.ndarray, exclude: set[str], rng: np.random.Generator) -> str | None:
    if len(universe) <= len(exclude):
        allowed = [i for i in universe if i not in exclude]
        return str(allowed[rng.integers(len(allowed))]) if allowed else None
    for _ in range(64):
        item = str(universe[rng.integers(len(universe))])
        if item not in exclude:
            return item
    allowed = [i for i in universe if i not in exclude]
    return str(allowed[rng.integers(len(allowed))]) if allowed else None


def random_edit(state: State, kinds: Sequence[str], universe: np.ndarray, protected: set[str],
                rating_scale: tuple[float, float], rng: np.random.Generator) -> Edit | None:
    """One random edit among the kinds possible on `state` (None when no edit is possible)."""
    lo, hi = rating_scale
    free = _free(state)
    exclude = state.items() | protected
    options = []
    for kind in kinds:
        if kind in ("swap",) and free and len(universe) > len(exclude):
            options.append(kind)
        elif kind == "insert" and len(universe) > len(exclude):
            options.append(kind)
        elif kind == "delete" and free and len(state.history) > 1:
            options.append(kind)
        elif kind == "flip" and any(_flippable(state.history[i].rating, lo, hi) for i in free):
            options.append(kind)
    if not options:
        return None
    kind = options[rng.integers(len(options))]
    if kind == "swap":
        item = _draw_item(universe, exclude, rng)
        return None if item is None else Edit("swap", int(free[rng.integers(len(free))]), item)
    if kind == "insert":
        item = _draw_item(universe, exclude, rng)
        if item is None:
            return None
        implicit = all(math.isnan(h.rating) for h in state.history)
        rating = None if implicit else float((lo, hi)[rng.integers(2)])
        return Edit("insert", len(state.history), item, rating)
    if kind == "delete":
        return Edit("delete", int(free[rng.integers(len(free))]))
    flippable = [i for i in free if _flippable(state.history[i].rating, lo, hi)]
    pos = int(flippable[rng.integers(len(flippable))])
    return Edit("flip", pos, rating=float(min(max(lo + hi - state.history[pos].rating, lo), hi)))


def _flippable(rating: float, lo: float, hi: float) -> bool:
    return not math.isnan(rating) and min(max(lo + hi - rating, lo), hi) != rating


def augment_example(example, budget: int, kinds: Sequence[str], universe: np.ndarray,
                    rating_scale: tuple[float, float], rng: np.random.Generator, suffix: str):
    """(augmented example, list of edit kinds applied); k ~ U{1..budget} edits."""
    k = int(rng.integers(1, budget + 1)) if budget > 0 else 0
    state = State.start(example.profile.history)
    protected = set(example.candidates)
    done = []
    for _ in range(k):
        edit = random_edit(state, kinds, universe, protected, rating_scale, rng)
        if edit is None:
            break
        state = apply(state, edit)
        done.append(edit.kind)
    return td.with_history(example, state.history, suffix), done


def augment_examples(examples: Sequence, universe: Sequence[str], budget: int = DEFAULT_BUDGET,
                     kinds: Sequence[str] = KINDS, ratio: float = 0.5, rating_scale=(1.0, 5.0),
                     seed: int = 0) -> tuple[list, list[list[str]]]:
    """Augmented copies of a seeded share `ratio` of `examples` (several per example above 1),
    each with its own random stream fixed by (seed, example id, copy)."""
    universe = np.array(sorted({str(i) for i in universe}), dtype=object)
    n = len(examples)
    whole, frac = int(ratio), float(ratio) - int(ratio)
    picks = [i for i in range(n) for _ in range(whole)]
    picks += list(td.seeded_sample(n, int(round(frac * n)), seed, 7101)) if frac > 0 else []
    picks.sort()
    out, edits = [], []
    copy_of: Counter = Counter()
    for i in picks:
        ex = examples[i]
        copy = copy_of[i]
        copy_of[i] += 1
        rng = seeding.rng(seed, ex.example_id, copy, 7102)
        aug, done = augment_example(ex, budget, kinds, universe, rating_scale, rng, f"~aug{copy}")
        out.append(aug)
        edits.append(done)
    return out, edits


class ProfileAugment(Defense):
    name = "profile-augment"
    description = "random profile edits (swap/insert/delete/rating flip, k <= budget) as data augmentation"

    OPTIONS = ProfileAugmentOptions

    def __init__(self, **options):
        super().__init__(**options)
        s = self.settings
        budget = int(s.budget)
        if budget < 1:
            raise ValueError(f"profile-augment: budget must be >= 1, got {budget}")
        kinds = list(s.kinds or KINDS)
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ValueError(f"profile-augment: unknown edit kind(s) {bad}; known: {', '.join(KINDS)}")
        ratio = float(s.ratio)
        if ratio < 0:
            raise ValueError(f"profile-augment: ratio must be >= 0, got {ratio}")
        lo, hi = (float(x) for x in s.rating_scale)
        if not lo < hi:
            raise ValueError(f"profile-augment: rating_scale must be [low, high] with low < high")
        self.budget, self.kinds, self.ratio, self.rating_scale = budget, kinds, ratio, (lo, hi)

    def unsupported_reason(self, model) -> str | None:
        if not getattr(getattr(model, "capabilities", None), "profile_driven", True):
            return f"{model.name} ignores the profile: augmenting profiles cannot change it"
        return None

    def train(self, model, train, valid=None, seed: int = 0) -> dict:
        reason = self.unsupported_reason(model)
        if reason:
            raise ValueError(f"profile-augment does not apply: {reason}")
        started = time.perf_counter()
        fit = self.settings.fit
        if not fit and getattr(model, "task", None) != train.task:
            raise ValueError(f"profile-augment: fit=false needs a model fitted for the {train.task!r} task")
        base = td.model_training_examples(model, train, seed)
        universe = train.train_interactions["item_id"].astype(str).unique()
        extra, edits = augment_examples(base, universe, self.budget, self.kinds, self.ratio, self.rating_scale, seed)
        counts = Counter(k for e in edits for k in e)
        info = {
            "defense": self.name, "budget": self.budget, "kinds": self.kinds, "ratio": self.ratio,
            "original_examples": len(base), "augmented_examples": len(extra),
            "edits": {k: counts.get(k, 0) for k in KINDS},
            "mean_edits": float(np.mean([len(e) for e in edits])) if edits else 0.0,
            "max_edits": max((len(e) for e in edits), default=0),
        }
        kind = fitting.model_kind(model)
        data = td.augmented(train, extra, tag="aug", base_examples=base)
        info["training_examples"] = len(data.examples)
        info["pseudo_users"] = len(extra)
        if fit:
            self._fit(model, data, valid, seed, kind)
        elif kind == "text":
            if train.task == "ranking":
                units_from = td.with_negatives(data.examples, train, int(model.opts.get("negatives", 4)), seed)
            else:
                units_from = data.examples
            p, c, y = model.training_units(units_from, seed)
            info["fine_tune"] = fitting.fine_tune_text(model, p, c, y, int(self.settings.epochs), seed)
        elif kind == "torch":
            info["fine_tune"] = model.train_further(data, valid, epochs=int(self.settings.epochs), seed=seed)
        else:
            model.fit(data, valid, seed=seed)
        if isinstance(info.get("fine_tune"), dict):
            info["fine_tune_seconds"] = info["fine_tune"].pop("seconds", None)
        info["train_seconds"] = round(time.perf_counter() - started, 3)
        return info

    @staticmethod
    def _fit(model, data, valid, seed, kind) -> None:
        """Fit on the augmented data. A text model's own example cap (max_train_examples)
        was applied when choosing what to augment; it must not cut the augmented set again."""
        if kind == "text" and model.opts.get("max_train_examples") is not None:
            with model.options_overridden(max_train_examples=None):
                model.fit(data, valid, seed=seed)
            return
        model.fit(data, valid, seed=seed)
