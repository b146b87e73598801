"""Profile transformations: what one edit of a history is, and which edits are possible.

State = the history plus, per entry, whether an earlier edit produced or touched it.
Like TextAttack's RepeatModification constraint, an entry is edited at most once, so the
number of edits is exactly the number of search steps (never more than the budget).

Edits:
- swap:   replace entry i's item with a pool item; rating and timestamp are kept.
- insert: add a fake interaction with a pool item as the most recent entry (timestamp =
          last + 1) with one of ``insert_ratings`` (default: the scale's lowest and highest,
          whichever hurts the goal more is what the search keeps).
- delete: remove entry i (a profile keeps at least one entry).
- flip:   rating r -> lo + hi - r on the [lo, hi] rating scale (6 - r on 1-5), clipped to
          the scale (set rating_scale [0.5, 5] for half-star data); entries without a
          rating, or at the midpoint, cannot be flipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from benchmark.profiles import Interaction

KINDS = ("swap", "insert", "delete", "flip")


@dataclass(frozen=True)
class State:
    history: tuple[Interaction, ...]
    edited: tuple[bool, ...]  # per entry: produced or touched by an earlier edit

    @classmethod
    def start(cls, history: Sequence[Interaction]) -> "State":
        return cls(tuple(history), (False,) * len(history))

    def items(self) -> set[str]:
        return {h.item_id for h in self.history}


@dataclass(frozen=True)
class Edit:
    kind: str
    position: int  # entry index the edit applies to (insert: index of the new entry)
    item_id: str | None = None  # swap / insert: the new item
    rating: float | None = None  # insert: the fake rating; flip: the new rating

    def describe(self, state: State) -> str:
        if self.kind == "swap":
            return f"swap #{self.position}: {state.history[self.position].item_id} -> {self.item_id}"
        if self.kind == "insert":
            return f"insert {self.item_id} rated {_fmt(self.rating)} as the most recent entry"
        if self.kind == "delete":
            return f"delete #{self.position} ({state.history[self.position].item_id})"
        old = state.history[self.position].rating
        return f"flip #{self.position} ({state.history[self.position].item_id}): rating {_fmt(old)} -> {_fmt(self.rating)}"


def _fmt(r: float | None) -> str:
    return "none" if r is None or math.isnan(r) else f"{r:g}"


def apply(state: State, edit: Edit) -> State:
    h, e = list(state.history), list(state.edited)
    if edit.kind == "swap":
        old = h[edit.position]
        h[edit.position] = Interaction(edit.item_id, old.rating, old.timestamp)
        e[edit.position] = True
    elif edit.kind == "insert":
        last = h[-1].timestamp if h else 0
        rating = float("nan") if edit.rating is None else float(edit.rating)
        h.insert(edit.position, Interaction(edit.item_id, rating, last + 1))
        e.insert(edit.position, True)
    elif edit.kind == "delete":
        del h[edit.position]
        del e[edit.position]
    elif edit.kind == "flip":
        old = h[edit.position]
        h[edit.position] = Interaction(old.item_id, float(edit.rating), old.timestamp)
        e[edit.position] = True
    else:
        raise ValueError(f"unknown edit kind {edit.kind!r}; known: {KINDS}")
    return State(tuple(h), tuple(e))


@dataclass
class EditContext:
    """Per-example inputs to the transformations."""

    pool: list[str]  # replacement / insertion items (seeded sample, see attacks.profile.items)
    rating_scale: tuple[float, float] = (1.0, 5.0)
    insert_ratings: tuple[float, ...] | None = None  # None: (lo, hi), or no rating when the profile has none
    protected: set[str] = field(default_factory=set)  # items never put into the profile (the candidates)


class Transformation:
    kinds: tuple[str, ...] = ()

    def edits(self, state: State, ctx: EditContext) -> list[Edit]:
        out: list[Edit] = []
        if "swap" in self.kinds:
            out += swap_edits(state, ctx)
        if "insert" in self.kinds:
            out += insert_edits(state, ctx)
        if "delete" in self.kinds:
            out += delete_edits(state)
        if "flip" in self.kinds:
            out += flip_edits(state, ctx)
        return out


def _free_positions(state: State) -> list[int]:
    return [i for i, done in enumerate(state.edited) if not done]


def swap_edits(state: State, ctx: EditContext) -> list[Edit]:
    present = state.items() | ctx.protected
    pool = [i for i in ctx.pool if i not in present]
    return [Edit("swap", pos, item) for pos in _free_positions(state) for item in pool]


def insert_ratings(state: State, ctx: EditContext) -> tuple[float | None, ...]:
    if ctx.insert_ratings is not None:
        return tuple(ctx.insert_ratings)
    if all(math.isnan(h.rating) for h in state.history):
        return (None,)  # implicit feedback: an interaction without a rating
    lo, hi = ctx.rating_scale
    return (float(lo), float(hi))


def insert_edits(state: State, ctx: EditContext) -> list[Edit]:
    present = state.items() | ctx.protected
    pool = [i for i in ctx.pool if i not in present]
    ratings = insert_ratings(state, ctx)
    return [Edit("insert", len(state.history), item, r) for item in pool for r in ratings]


def delete_edits(state: State) -> list[Edit]:
    if len(state.history) <= 1:
        return []
    return [Edit("delete", pos) for pos in _free_positions(state)]


def flip_edits(state: State, ctx: EditContext) -> list[Edit]:
    lo, hi = ctx.rating_scale
    out = []
    for pos in _free_positions(state):
        r = state.history[pos].rating
        if math.isnan(r):
            continue
        flipped = min(max(lo + hi - r, lo), hi)
        if flipped != r:
            out.append(Edit("flip", pos, rating=float(flipped)))
    return out


class Swap(Transformation):
    kinds = ("swap",)


class Insert(Transformation):
    kinds = ("insert",)


class Delete(Transformation):
    kinds = ("delete",)


class FlipRating(Transformation):
    kinds = ("flip",)


class Mix(Transformation):
    kinds = KINDS
