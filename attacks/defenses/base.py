"""The Defense interface: a training mode wrapped around a recommender's fit.

`train(model, train, valid, seed) -> dict` fits `model` (in place) under the defense and
returns training information, e.g. per-round clean/robust validation metrics
(`{"rounds": [{"round": 0, "clean": {...}, "robust": {...}, "added_examples": n}, ...]}`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar


class Defense(ABC):
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    applies_to: ClassVar[str] = ""  # shown by `recrobust list defenses` for plug-ins

    def __init__(self, **options):
        self.options = dict(options)

    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        """None if the defense applies to `model`, else a one-line reason."""
        return None

    @abstractmethod
    def train(self, model, train, valid=None, seed: int = 0) -> dict: ...


class NoDefense(Defense):
    name = "none"
    description = "plain training"

    def train(self, model, train, valid=None, seed: int = 0) -> dict:
        model.fit(train, valid, seed=seed)
        return {}
