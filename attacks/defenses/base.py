"""The Defense interface: a training mode wrapped around a recommender's fit.

Options are declared once, as a benchmark.options.Options dataclass (``OPTIONS``), and
parsed by ``Defense.__init__`` into ``self.settings`` (``self.options``: as given).
`train(model, train, valid, seed) -> dict` fits `model` (in place) under the defense and
returns training information, e.g. per-round clean/robust validation metrics
(`{"rounds": [{"round": 0, "clean": {...}, "robust": {...}, "added_examples": n}, ...]}`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from benchmark.options import Options


class Defense(ABC):
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    applies_to: ClassVar[str] = ""  # shown by `recrobust list defenses` for plug-ins
    # The declared options (benchmark.options); None: undeclared (a plug-in checking its own).
    OPTIONS: ClassVar[type[Options] | None] = None

    def __init__(self, **options):
        declared = type(self).OPTIONS
        self.settings = None if declared is None else declared.parse(f"defense {self.name!r}", options)
        self.options = dict(options)  # as given

    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        """None if the defense applies to `model`, else a one-line reason."""
        return None

    @abstractmethod
    def train(self, model, train, valid=None, seed: int = 0) -> dict: ...


class NoDefense(Defense):
    name = "none"
    description = "plain training"
    OPTIONS = Options  # none

    def train(self, model, train, valid=None, seed: int = 0) -> dict:
        model.fit(train, valid, seed=seed)
        return {}
