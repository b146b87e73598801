"""The one interface every recommender implements (scikit-learn style fit/score).

Contract
--------
- ``fit(train, valid=None, seed=0) -> self``: learn from ``train`` (a TaskData of the
  "train" split; ``train.train_interactions`` for ID-based learning, ``train.examples``
  for example-based learning); ``valid`` is for early stopping only.
- ``score(profiles, candidates) -> np.ndarray`` of shape (len(profiles), len(candidates[i]))
  (every row must have the same number of candidates). Higher = preferred. For the
  preference task each value is a like-probability in [0, 1]. The profile passed in
  must drive the score (fold-in or history-based): profile attacks edit it at test time.
- ``save(dir)`` / ``Recommender.load(dir)``: JSON for config, safetensors for tensors;
  never pickle.
- ``capabilities``: text input (then also ``score_text``), differentiable (then the
  embedding hooks used by gradient attacks), and whether the profile drives the score
  (``profile_driven``; False only for a deliberately non-personalised baseline such as
  Popularity, which profile attacks and profile-based defenses then skip).

Optional protocols (``typing.runtime_checkable``; generic code asks ``isinstance(model,
TextScorer)`` etc., never a model's name). A declared capability promises its protocol,
and ``recommenders.conformance.check_model`` verifies that the promise is kept:

- ``TextScorer`` (``text_input=True``): ``renderer``, ``render_pairs``, ``score_text``;
- ``EmbeddingDifferentiable`` (``differentiable=True``): ``embedding_forward(profiles,
  candidates) -> (base tensors, forward(tables) -> raw scores (n, c))``;
- ``Trainable``: ``loss(batch, tables=None)``, ``embedding_tables()``,
  ``validation_metric(valid)`` and ``train_further(train, valid, epochs, seed, loss=...)``
  (continue training through recommenders.training's loop, under a defense's loss);
- ``TextFineTunable``: ``fine_tune_text(profile_texts, candidate_texts, labels, epochs,
  seed, lr)`` continues training on (adversarial) texts, and ``training_units(examples,
  seed)`` renders examples into those texts as the model's own training data;
- ``ItemIndexed``: ``item_ids()`` (the items the model knows: profile attacks draw their
  replacements from them) and ``item_rows(ids)`` (each item's row in the model's item
  tables, the "item" embedding table of a differentiable model, -1 when unknown).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from benchmark.profiles import Profile
from benchmark.registry import Registry

CONFIG_FILE = "recommender.json"


@dataclass(frozen=True)
class Capabilities:
    text_input: bool = False  # scores rendered text: text attacks apply
    differentiable: bool = False  # gradients w.r.t. input embeddings: gradient attacks apply
    tasks: tuple[str, ...] = ("preference", "ranking")
    profile_driven: bool = True  # the profile passed to score changes the scores (profile attacks apply)


@runtime_checkable
class TextScorer(Protocol):
    """Scores rendered text: text attacks apply (Capabilities.text_input)."""

    renderer: Any

    def render_pairs(self, profiles, candidates) -> tuple[list[str], list[str]]: ...

    def score_text(self, profile_texts: Sequence[str], candidate_texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class EmbeddingDifferentiable(Protocol):
    """Differentiable scoring from embeddings: gradient attacks apply (Capabilities.differentiable)."""

    def embedding_forward(self, profiles, candidates) -> tuple[dict, Callable[[dict], Any]]: ...


@runtime_checkable
class Trainable(Protocol):
    """Trained by batches and a loss (the torch ID models): a defense can continue training
    it under its own objective, built from the model's loss and embedding tables."""

    def loss(self, batch, tables: dict | None = None) -> Any: ...

    def embedding_tables(self) -> dict: ...

    def validation_metric(self, valid) -> tuple[str, float]: ...

    def train_further(self, train, valid=None, epochs: int = 1, seed: int = 0, loss=None, patience: int = 0,
                      progress=False, select: str = "best") -> dict: ...


@runtime_checkable
class TextFineTunable(Protocol):
    """Continues training on texts (attack-augmented training of text models)."""

    def fine_tune_text(self, profile_texts, candidate_texts, labels, epochs: int = 1, seed: int = 0,
                       lr=None) -> list[dict]: ...

    def training_units(self, examples, seed: int = 0) -> tuple[list[str], list, list[int]]: ...


@runtime_checkable
class ItemIndexed(Protocol):
    """Knows its items and where each sits in its item tables (the "item" embedding table
    of a differentiable model: gradient-guided swaps read its rows)."""

    def item_ids(self) -> list[str]: ...

    def item_rows(self, item_ids: Sequence[str]) -> np.ndarray: ...


class Recommender(ABC):
    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, **options):
        self.options = dict(options)
        self.task: str | None = None  # set by fit: the task the model was trained for

    # -- training and scoring ------------------------------------------------
    @abstractmethod
    def fit(self, train, valid=None, seed: int = 0) -> "Recommender": ...

    @abstractmethod
    def score(self, profiles: Sequence[Profile], candidates: Sequence[Sequence[str]]) -> np.ndarray: ...

    def score_examples(self, examples, batch_size: int = 256) -> list[np.ndarray]:
        """Scores for each example's candidates (batched calls to ``score``)."""
        out: list[np.ndarray] = []
        for i in range(0, len(examples), batch_size):
            chunk = examples[i : i + batch_size]
            out.extend(self.score([e.profile for e in chunk], [e.candidates for e in chunk]))
        return out

    # -- persistence ---------------------------------------------------------
    def config(self) -> dict:
        """JSON-serialisable state besides tensors (options, task, vocabularies...)."""
        return {"options": self.options, "task": self.task}

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "name": self.name,
            "capabilities": asdict(self.capabilities),
            "config": self.config(),
        }
        (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        self.save_state(directory)
        return directory

    def save_state(self, directory: Path) -> None:
        """Write tensors (safetensors) and other files; default: nothing beyond the config."""

    @classmethod
    def from_config(cls, config: dict) -> "Recommender":
        model = cls(**config.get("options", {}))
        model.task = config.get("task")
        return model

    def load_state(self, directory: Path) -> None:
        """Read what save_state wrote."""

    @staticmethod
    def load(directory: str | Path, expected: str | None = None) -> "Recommender":
        """Load a saved recommender as the class that saved it.

        The stored import path ("class") is what gets imported, whatever class is
        registered under the stored name today (a plug-in renamed, a registry entry
        changed, a subclass that kept its parent's name). `expected` (a name or
        module:Class), when given, must resolve to that same class or loading fails: a
        resumed run or a submission check never scores a model other than the one trained.
        """
        directory = Path(directory)
        path = directory / CONFIG_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: no saved recommender here (missing {CONFIG_FILE})")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            stored = meta["class"]
            config = meta["config"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a saved recommender config ({type(err).__name__}: {err})") from None
        cls = MODELS.resolve(stored)  # the stored class wins over whatever its name is registered as now
        if expected:
            other = MODELS.resolve(expected)
            if other is not cls:
                raise ValueError(f"{path}: saved by {stored} but the model to load is {expected!r} "
                                 f"({other.__module__}:{other.__qualname__}): refusing to load these weights into a different class")
        model = cls.from_config(config)
        model.load_state(directory)
        return model


def _check_recommender(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ValueError(f"{name!r} is not a recommenders.base.Recommender subclass")


# The model registry. It lives here so that Recommender.load can resolve saved models;
# the built-ins are registered by its catalog, recommenders.registry (loaded on first use),
# plug-ins through the entry-point group.
MODELS = Registry("model", "recrobust.recommenders", catalogs=("recommenders.registry",), accept_paths=True,
                  check=_check_recommender)
