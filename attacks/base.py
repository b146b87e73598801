"""The Attack interface: every attack takes a fitted recommender and test examples and
returns per-example records plus a summary.

Composition follows TextAttack: a goal function (what counts as success: flip the
preference decision, demote the true item out of the top-10, promote a target into it),
constraints (budget of edits, scope: "history" or "item", query budget), a
transformation (what one edit is) and a search (how edits are chosen). Attacks on text
use TextAttack's own components; profile and embedding attacks use ours, shaped alike.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

from tqdm.auto import tqdm

from attacks.records import AttackRecord, summarize

THREAT_MODELS = ("text", "profile", "embedding", "poisoning")
SCOPES = ("history", "item")
GOALS = ("untargeted", "demote", "promote")


@dataclass
class AttackResult:
    attack: str
    config: dict
    records: list[AttackRecord]
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"attack": self.attack, "config": self.config, "summary": self.summary}


class Attack(ABC):
    name: ClassVar[str] = ""
    threat_model: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()  # e.g. ("WordNet data",) — shown by `recrobust list attacks`

    def __init__(
        self,
        budget: int | None = None,
        query_budget: int | None = None,
        scope: str = "history",
        goal: str | None = None,
        seed: int = 0,
        **options,
    ):
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        if query_budget is not None and query_budget < 1:
            raise ValueError(f"query budget must be >= 1, got {query_budget}")
        if goal is not None and goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {goal!r}")
        self.budget = budget
        self.query_budget = query_budget
        self.scope = scope
        self.goal = goal
        self.seed = seed
        self.options = options

    # -- applicability -------------------------------------------------------
    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        """None if the attack applies to `model`, else a one-line reason."""
        return None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None if everything the attack needs is present (data, models), else why not."""
        return None

    def config(self) -> dict:
        return {
            "attack": self.name,
            "threat_model": self.threat_model,
            "budget": self.budget,
            "query_budget": self.query_budget,
            "scope": self.scope,
            "goal": self.goal,
            "seed": self.seed,
            **self.options,
        }

    # -- running -------------------------------------------------------------
    @abstractmethod
    def attack_example(self, model, example) -> AttackRecord:
        """Attack one example (the default run loop calls this once per example)."""

    def run(self, model, examples: Sequence, progress: bool = True) -> AttackResult:
        reason = self.unsupported_reason(model) or self.unavailable_reason()
        if reason:
            raise AttackUnavailable(f"{self.name}: {reason}")
        records = []
        for example in tqdm(examples, desc=self.name, disable=not progress, leave=False):
            started = time.perf_counter()
            try:
                record = self.attack_example(model, example)
            except AttackUnavailable:
                raise
            except Exception as err:  # one failing example is recorded; the run goes on
                record = AttackRecord(
                    example_id=example.example_id,
                    attack=self.name,
                    task=example.task,
                    status="error",
                    original=None,
                    perturbed=None,
                    score_before=float("nan"),
                    score_after=None,
                    error=f"{type(err).__name__}: {err}",
                    notes=[traceback.format_exc(limit=3)],
                )
            record.seconds = time.perf_counter() - started
            records.append(record)
        return AttackResult(self.name, self.config(), records, summarize(records))


class AttackUnavailable(RuntimeError):
    """The attack cannot run here (missing data/model offline, or not applicable to the model)."""
