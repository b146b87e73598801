"""Task and option checks shared by the classic recommenders (no heavy imports here)."""

from __future__ import annotations

from typing import Sequence

from benchmark.options import Options


def parse_options(model, options: dict) -> dict:
    """Every option of `model` (its class's OPTIONS declaration), `options` overriding the
    defaults; an unknown option is a ValueError naming the model and the valid options."""
    declared: type[Options] = type(model).OPTIONS
    return declared.parse(f"model {model.name or type(model).__name__!r}", options).to_dict()


def check_task(cls_name: str, task: str, tasks: Sequence[str]) -> None:
    if task not in tasks:
        raise ValueError(f"{cls_name} does not support task {task!r}; supported: {', '.join(tasks)}")
