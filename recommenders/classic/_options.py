"""Option and task checks shared by the classic recommenders (no heavy imports here)."""

from __future__ import annotations

from typing import Sequence

from benchmark.options import with_defaults


def check_options(cls_name: str, defaults: dict, options: dict) -> dict:
    """Defaults overridden by `options`; an unknown option is an error (benchmark.options)."""
    return with_defaults(cls_name, defaults, options)


def check_task(cls_name: str, task: str, tasks: Sequence[str]) -> None:
    if task not in tasks:
        raise ValueError(f"{cls_name} does not support task {task!r}; supported: {', '.join(tasks)}")
