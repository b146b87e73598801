"""Popularity: the non-personalised baseline.

It deliberately ignores the profile — every user gets the same score for an item — so it
is the floor the personalised models must beat, and profile attacks cannot move it (a
useful control in the robustness tables). Scores come from item statistics only:

- ranking: log(1 + number of training interactions with the item);
- preference: the item's like-rate on the labelled training examples, shrunk towards the
  global like-rate with ``prior`` pseudo-examples (a Bayesian average), so that items with
  few ratings do not get extreme probabilities.

Items never seen in training get 0 (ranking) or the global like-rate (preference).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from benchmark.profiles import Profile
from recommenders.base import Capabilities, Recommender
from benchmark.options import Options, option
from recommenders.classic._options import check_task, parse_options
from recommenders.classic._vocab import PAD, ItemVocab, VocabIndexed

STATS_FILE = "item_stats.json"


@dataclass
class PopularityOptions(Options):
    prior: float = option(10.0, "preference: pseudo-examples at the global like-rate each item's rate is shrunk with")


class Popularity(VocabIndexed, Recommender):
    name = "popularity"
    capabilities = Capabilities(profile_driven=False)  # by design: the non-personalised floor
    OPTIONS: ClassVar[type[Options]] = PopularityOptions

    def __init__(self, **options):
        super().__init__(**parse_options(self, options))
        self.vocab: ItemVocab | None = None
        self.item_score = np.zeros(1)  # by vocabulary index; [0] = unknown items

    def fit(self, train, valid=None, seed: int = 0) -> "Popularity":
        check_task(type(self).__name__, train.task, self.capabilities.tasks)
        self.task = train.task
        if self.task == "ranking":
            counts = train.train_interactions["item_id"].astype(str).value_counts()
            self._set(counts.index, np.log1p(counts.to_numpy(dtype=np.float64)), 0.0)
            return self
        if not train.examples:
            raise ValueError("Popularity: the training split has no labelled preference examples")
        items = np.array([e.candidates[0] for e in train.examples], dtype=object)
        labels = np.array([e.label for e in train.examples], dtype=np.float64)
        global_rate = float(labels.mean())
        prior = float(self.options["prior"])
        uniq, inverse = np.unique(items, return_inverse=True)
        likes = np.bincount(inverse, weights=labels)
        n = np.bincount(inverse)
        rate = (likes + prior * global_rate) / (n + prior)
        self._set(uniq, rate, global_rate)
        return self

    def _set(self, item_ids, scores: np.ndarray, default: float) -> None:
        self.vocab = ItemVocab(item_ids)
        self.item_score = np.full(self.vocab.size, float(default))
        self.item_score[self.vocab.encode(str(i) for i in item_ids)] = scores

    def score(self, profiles: Sequence[Profile], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        if self.vocab is None:
            raise RuntimeError("Popularity is not fitted (call fit or load first)")
        if len(profiles) != len(candidates):
            raise ValueError(f"{len(profiles)} profiles but {len(candidates)} candidate lists")
        return self.item_score[self.vocab.encode_candidates(candidates)]

    def save_state(self, directory) -> None:
        # Plain numbers keyed by item id: JSON is the natural format (no tensors here).
        if self.vocab is None:
            raise RuntimeError("Popularity is not fitted: nothing to save")
        payload = {
            "default": float(self.item_score[PAD]),
            "items": {item: float(self.item_score[k]) for k, item in enumerate(self.vocab.ids, start=1)},
        }
        (directory / STATS_FILE).write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")

    def load_state(self, directory) -> None:
        payload = json.loads((directory / STATS_FILE).read_text(encoding="utf-8"))
        items = payload["items"]
        self._set(list(items), np.array(list(items.values()), dtype=np.float64), float(payload["default"]))
