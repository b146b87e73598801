"""The one rule for options (models, attacks, defenses): every option a component takes
is declared once (its defaults, or its list of names), and an unknown one is an error
naming the component, the unknown names and the known ones (a misspelt option is never
silently ignored)."""

from __future__ import annotations

from typing import Iterable, Mapping


def check_options(owner: str, known: Iterable[str], given: Mapping) -> None:
    known = list(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{owner}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def with_defaults(owner: str, defaults: Mapping, given: Mapping) -> dict:
    """`defaults` overridden by `given`, after check_options."""
    check_options(owner, defaults, given)
    return {**defaults, **given}
