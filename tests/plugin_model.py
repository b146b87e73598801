"""A tiny "submitted" recommender for the submission tests: a plug-in given as module:Class.

Profile-mean blend (a baseline predictor): an item's mean training rating (centred on the
global mean) plus the user's mean offset from the items in the profile's history
(rating - item mean), through a logistic link; the profile's items and ratings drive the
score, so swapping, inserting or re-rating history entries moves it. It lists no items
(no item_ids): profile attacks draw replacement items from the attacked examples. Fits in milliseconds on ML-100K, saves
its item table as safetensors and its vocabulary as JSON (the paths submissions accept).
"""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from recommenders.base import Recommender

STATE_FILE = "item_means.safetensors"
VOCAB_FILE = "vocab.json"


class ProfileMeanBlend(Recommender):
    name = "profile-mean-blend"
    DEFAULTS: ClassVar[dict] = {"item_weight": 1.5, "profile_weight": 1.0, "prior": 5.0}

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"ProfileMeanBlend: unknown option(s) {unknown}")
        super().__init__(**{**self.DEFAULTS, **options})
        self.items: dict[str, int] = {}
        self.item_mean = np.zeros(1)
        self.global_mean = 3.5

    def fit(self, train, valid=None, seed: int = 0):
        self.task = train.task
        inter = train.train_interactions
        ratings = inter["rating"].astype(float).fillna(4.0)
        self.global_mean = float(ratings.mean())
        prior = float(self.options["prior"])
        grouped = ratings.groupby(inter["item_id"].astype(str))
        means = (grouped.sum() + prior * self.global_mean) / (grouped.count() + prior)
        self.items = {item: i + 1 for i, item in enumerate(means.index)}
        self.item_mean = np.concatenate([[self.global_mean], means.to_numpy(dtype=np.float64)])
        return self

    def score(self, profiles, candidates):
        if len(profiles) != len(candidates):
            raise ValueError(f"{len(profiles)} profiles but {len(candidates)} candidate lists")
        out = np.empty((len(profiles), len(candidates[0]) if candidates else 0))
        for row, (profile, cands) in enumerate(zip(profiles, candidates)):
            offsets = [h.rating - self.item_mean[self.items.get(str(h.item_id), 0)]
                       for h in profile.history if h.rating == h.rating]
            user = float(np.mean(offsets)) if offsets else 0.0
            idx = np.array([self.items.get(str(c), 0) for c in cands])
            z = self.options["item_weight"] * (self.item_mean[idx] - self.global_mean) + self.options["profile_weight"] * user
            out[row] = 1.0 / (1.0 + np.exp(-z))
        return out

    def config(self) -> dict:
        return {**super().config(), "global_mean": self.global_mean}

    @classmethod
    def from_config(cls, config: dict):
        model = super().from_config(config)
        model.global_mean = float(config["global_mean"])
        return model

    def save_state(self, directory) -> None:
        save_file({"item_mean": np.ascontiguousarray(self.item_mean)}, str(directory / STATE_FILE))
        (directory / VOCAB_FILE).write_text(json.dumps(sorted(self.items, key=self.items.get)), encoding="utf-8")

    def load_state(self, directory) -> None:
        self.item_mean = load_file(str(directory / STATE_FILE))["item_mean"]
        ids = json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))
        self.items = {item: i + 1 for i, item in enumerate(ids)}


class BadShapeBlend(ProfileMeanBlend):
    """Returns one column too few: the score checks must fail its cells by name."""

    name = "bad-shape-blend"

    def score(self, profiles, candidates):
        return super().score(profiles, candidates)[:, :-1] if candidates and len(candidates[0]) > 1 else \
            np.zeros((len(profiles), 0))


class OutOfRangeBlend(ProfileMeanBlend):
    """A 'probability' of 1.5 for every candidate."""

    name = "out-of-range-blend"

    def score(self, profiles, candidates):
        return super().score(profiles, candidates) + 1.0
