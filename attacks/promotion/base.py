"""The promotion-attack interface (light: no TextAttack import), shaped like the other
attack families' so that the registry, listings and suites treat it alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

THREAT_MODEL = "poisoning"  # a target-item attack: the poisoning board and protocol


class PromotionOptionError(ValueError):
    """A bad promotion option; the message names the option."""


@dataclass
class PromotionResult:
    """summary: the record's metric blocks (clean = before, robust = after) and the rest;
    rows: one per (held-out user, target); per_target: one per target (texts, edits, queries)."""

    attack: str
    config: dict
    summary: dict
    rows: list[dict]
    per_target: list[dict] = field(default_factory=list)


class PromotionAttack(ABC):
    """Base class: run(model, test, targets) -> PromotionResult over the test split."""

    name: ClassVar[str] = ""
    threat_model: ClassVar[str] = THREAT_MODEL
    description: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        return None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None

    @classmethod
    def option_problems(cls, options: dict) -> list[str]:
        """Problems with suite options, as 'options/NAME: ...' lines (nothing is built)."""
        return []

    @abstractmethod
    def config(self) -> dict:
        """What the record's attack config holds."""

    @abstractmethod
    def run(self, model, test, targets, progress: bool = True) -> PromotionResult:
        """Promote each target over the test split's users."""
