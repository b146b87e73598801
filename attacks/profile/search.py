"""Search over profile edits: greedy on black-box scores, and gradient-guided swaps.

Query accounting (as TextAttack): one query = one (profile, candidate list) scored by the
model; the clean profile is the first query; a profile already scored for this example is
answered from a cache and not counted; a gradient computation on one profile counts as one
query. With a query budget Q, a step whose batch would pass Q is cut to the queries left
(candidate edits are in a seeded random order, so the cut is unbiased), and the search
stops with failure once Q is reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from attacks.base import AttackUnavailable
from attacks.profile import items as item_access
from attacks.profile.goals import Goal
from attacks.profile.transformations import Edit, EditContext, State, Transformation, apply

IMPROVEMENT_TOL = 1e-6


def _key(state: State) -> tuple:
    return tuple((h.item_id, None if math.isnan(h.rating) else h.rating, h.timestamp) for h in state.history)


class Scorer:
    """Scores candidate histories of one example against its candidate list."""

    def __init__(self, model, profile, candidates: Sequence[str], query_budget: int | None = None,
                 batch_size: int | None = None):
        self.model = model
        self.profile = profile
        self.candidates = tuple(candidates)
        self.query_budget = query_budget
        self.batch_size = batch_size
        self.queries = 0
        self._cache: dict[tuple, np.ndarray] = {}

    def remaining(self) -> int | None:
        return None if self.query_budget is None else max(self.query_budget - self.queries, 0)

    def exhausted(self) -> bool:
        return self.query_budget is not None and self.queries >= self.query_budget

    def spend(self, n: int = 1) -> None:
        self.queries += n

    def score(self, states: Sequence[State]) -> list[np.ndarray | None]:
        """Scores per state, None for states left unscored because the query budget ran out.
        All new states go to the model in one score() call (or chunks of batch_size)."""
        out: list[np.ndarray | None] = [None] * len(states)
        todo: dict[tuple, list[int]] = {}
        for i, s in enumerate(states):
            key = _key(s)
            if key in self._cache:
                out[i] = self._cache[key]
            elif key in todo:
                todo[key].append(i)
            else:
                left = self.remaining()
                if left is not None and len(todo) >= left:
                    continue
                todo[key] = [i]
        keys = list(todo)
        if not keys:
            return out
        profiles = [self.profile.replace_history(states[todo[k][0]].history) for k in keys]
        step = self.batch_size or len(profiles)
        rows: list[np.ndarray] = []
        for start in range(0, len(profiles), step):
            chunk = profiles[start : start + step]
            scores = np.asarray(self.model.score(chunk, [self.candidates] * len(chunk)), dtype=float)
            if scores.shape != (len(chunk), len(self.candidates)):
                raise ValueError(f"model.score returned shape {scores.shape}, expected {(len(chunk), len(self.candidates))}")
            rows.extend(scores)
        self.queries += len(keys)
        for k, row in zip(keys, rows):
            self._cache[k] = row
            for i in todo[k]:
                out[i] = row
        return out


@dataclass
class SearchResult:
    state: State
    scores: np.ndarray
    edits: list[str] = field(default_factory=list)  # human-readable, in order
    success: bool = False
    stop: str = ""  # why the search ended


def _pick(goal: Goal, options: list[tuple[Edit, State, np.ndarray]]):
    """The option that reaches the goal, else the one with the most progress (first wins ties)."""
    return max(options, key=lambda o: (goal.succeeded(o[2]), goal.progress(o[2])))


class GreedySearch:
    """At each step score every possible edit of the current profile in one batch and
    keep the best; stop at success, when no edit improves the goal, at the edit budget or
    at the query budget."""

    def __init__(self, transformation: Transformation):
        self.transformation = transformation

    def candidate_edits(self, scorer, goal, state, ctx, rng) -> list[Edit]:
        edits = self.transformation.edits(state, ctx)
        return [edits[i] for i in rng.permutation(len(edits))]

    def run(self, scorer: Scorer, goal: Goal, start: State, scores: np.ndarray, budget: int,
            ctx: EditContext, rng: np.random.Generator) -> SearchResult:
        result = SearchResult(start, scores)
        for _ in range(budget):
            if scorer.exhausted():
                result.stop = "query budget reached"
                return result
            edits = self.candidate_edits(scorer, goal, result.state, ctx, rng)
            if scorer.exhausted():
                result.stop = "query budget reached"
                return result
            if not edits:
                result.stop = "no possible edit left"
                return result
            states = [apply(result.state, e) for e in edits]
            scored = scorer.score(states)
            options = [(e, s, sc) for e, s, sc in zip(edits, states, scored) if sc is not None]
            if not options:
                result.stop = "query budget reached"
                return result
            edit, state, best = _pick(goal, options)
            current = goal.progress(result.scores)
            # Float noise in a model's scores is no improvement: ask for a real one.
            if not goal.succeeded(best) and goal.progress(best) <= current + IMPROVEMENT_TOL * (1.0 + abs(current)):
                result.stop = "no edit improves the goal"
                return result
            result.edits.append(edit.describe(result.state))
            result.state, result.scores = state, best
            if goal.succeeded(best):
                result.success = True
                result.stop = "goal reached"
                return result
        result.stop = result.stop or "edit budget reached"
        return result


class GradientSwapSearch(GreedySearch):
    """HotFlip-style swaps: the gradient g_i of the goal objective w.r.t. the embedding of
    history entry i ranks every replacement j by the first-order gain (e_j - e_i) . g_i;
    the `verify` best (entry, item) pairs are then scored for real and the best kept.

    Uses the item table the history is embedded with: embedding_forward's "history"
    tensor when the model has a separate history-side table (BPR-MF / FISM's P), else its
    "item" table (SASRec's shared E), with the model's item-row map. g_i is the gradient
    at the table row of entry i's item (an item repeated in the history, or also a
    candidate in a shared table, shares its row: the usual first-order caveat).
    """

    def __init__(self, transformation: Transformation, verify: int = 20):
        super().__init__(transformation)
        self.verify = verify

    def candidate_edits(self, scorer, goal, state, ctx, rng) -> list[Edit]:
        import torch

        swaps = [e for e in self.transformation.edits(state, ctx) if e.kind == "swap"]
        if not swaps:
            return []
        model = scorer.model
        base, forward = model.embedding_forward([scorer.profile.replace_history(state.history)], [scorer.candidates])
        key = "history" if "history" in base else "item"
        if key not in base or base[key].dim() != 2:
            raise AttackUnavailable(f"embedding_forward exposes {sorted(base)}, not an 'item' (or 'history') embedding table")
        table = base[key].detach()
        leaf = table.clone().requires_grad_(True)
        with torch.enable_grad():
            raw = forward({**base, key: leaf})
            # autograd.grad, not backward(): the model's parameters must not accumulate .grad
            (grad,) = torch.autograd.grad(goal.objective(raw[0]), [leaf], allow_unused=True)
        scorer.spend(1)
        if grad is None:
            raise AttackUnavailable(f"no gradient reached the {key!r} embeddings: forward does not use the tensor it was given")

        positions = sorted({e.position for e in swaps})
        replacements = sorted({e.item_id for e in swaps})
        pos_rows = item_access.item_rows(model, [state.history[p].item_id for p in positions])
        rep_rows = item_access.item_rows(model, replacements)
        known_pos = [k for k, r in enumerate(pos_rows) if r >= 0]
        known_rep = [k for k, r in enumerate(rep_rows) if r >= 0]
        if not known_pos or not known_rep:
            return []
        flat = table.reshape(table.shape[0], -1)
        g = grad.reshape(grad.shape[0], -1)
        e_pos = flat[torch.as_tensor(pos_rows[known_pos])]  # (P, d)
        g_pos = g[torch.as_tensor(pos_rows[known_pos])]  # (P, d)
        e_rep = flat[torch.as_tensor(rep_rows[known_rep])]  # (R, d)
        # gain[p, r] = (e_r - e_p) . g_p
        gain = g_pos @ e_rep.T - (g_pos * e_pos).sum(dim=1, keepdim=True)
        allowed = {(e.position, e.item_id) for e in swaps}
        order = torch.argsort(gain.reshape(-1), descending=True, stable=True).tolist()
        chosen: list[Edit] = []
        n_rep = len(known_rep)
        for flat_idx in order:
            p = positions[known_pos[flat_idx // n_rep]]
            item = replacements[known_rep[flat_idx % n_rep]]
            if (p, item) in allowed:
                chosen.append(Edit("swap", p, item))
                if len(chosen) == self.verify:
                    break
        return chosen
