"""Profile attacks: goal (attacks.profile.goals) + edit budget and no-repeat constraint +
transformation (attacks.profile.transformations) + search (attacks.profile.search).

Options (besides Attack's budget / query_budget / goal / seed): declared in
ProfileAttackOptions (pool_size, item_pool, rating_scale, insert_ratings, batch_size) and
ProfileGradientOptions (+ verify); the item universe is attacks.profile.items'.

Queries per example are at most 1 + budget x (edits per step): with history length H and
pool size M, swap H*M, insert 2M, delete H, flip H, mix the sum (H=10, M=50: 500, 100,
10, 10, 620); profile-gradient 1 + verify per step. Use query_budget to cap them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Sequence

from attacks.base import Attack
from attacks.profile import items as item_access
from attacks.profile.goals import Skip, example_rng, goal_label, make_goal, resolve_goal_name, skipped_outcome
from attacks.profile.search import GradientSwapSearch, GreedySearch, Scorer
from attacks.profile.transformations import Delete, EditContext, FlipRating, Insert, Mix, State, Swap, Transformation
from attacks.records import AttackRecord, Perturbation
from benchmark.options import Options, option

DEFAULT_BUDGET = 3
DEFAULT_POOL_SIZE = 50
DEFAULT_VERIFY = 20


@dataclass
class ProfileAttackOptions(Options):
    pool_size: int | None = option(DEFAULT_POOL_SIZE, "items per example that swaps and inserts may use (a seeded "
                                                      "sample of the item universe); None: all of them")
    item_pool: list | None = option(None, "an explicit item universe (default: the model's items, else the "
                                          "attacked examples' items)")
    rating_scale: list = option([1.0, 5.0], "[low, high] of the ratings, for rating flips and insert ratings")
    insert_ratings: list | None = option(None, "ratings an inserted item may get (default: the scale's lowest "
                                               "and highest; none for implicit feedback)")
    batch_size: int | None = option(None, "profiles per model.score call (default: a whole step in one call)")


@dataclass
class ProfileGradientOptions(ProfileAttackOptions):
    pool_size: int | None = option(None, "items per example the gradient ranks as replacements; None: every "
                                         "known item (ranking by gradient is cheap)")
    verify: int = option(DEFAULT_VERIFY, "gradient-ranked swaps scored for real per step")


def history_record(history) -> list[dict]:
    return [{"item_id": h.item_id, "rating": None if math.isnan(h.rating) else h.rating} for h in history]


class ProfileAttack(Attack):
    threat_model = "profile"
    transformation: ClassVar[type[Transformation]] = Mix
    OPTIONS: ClassVar[type[Options]] = ProfileAttackOptions
    RECORDED: ClassVar[tuple[str, ...]] = ("pool_size", "rating_scale")  # in the config even when not given

    def __init__(self, budget: int | None = None, query_budget: int | None = None, scope: str = "history",
                 goal: str | None = None, seed: int = 0, **options):
        self.settings = self.OPTIONS.parse(f"attack {self.name!r}", options)
        if scope != "history":
            raise ValueError(f"{self.name}: profile attacks edit the history; scope {scope!r} is for text attacks")
        for key in self.RECORDED:
            options.setdefault(key, self.settings[key])
        pool_size = options["pool_size"]
        if pool_size is not None and (not isinstance(pool_size, int) or pool_size < 1):
            raise ValueError(f"{self.name}: pool_size must be a positive integer or null, got {pool_size!r}")
        lo, hi = (float(x) for x in options["rating_scale"])
        if not lo < hi:
            raise ValueError(f"{self.name}: rating_scale must be [low, high] with low < high, got {options['rating_scale']!r}")
        super().__init__(budget=DEFAULT_BUDGET if budget is None else budget, query_budget=query_budget,
                         scope=scope, goal=goal, seed=seed, **options)
        self._universe: list[str] | None = None

    def make_search(self) -> GreedySearch:
        return GreedySearch(self.transformation())

    # -- running -------------------------------------------------------------
    def run(self, model, examples: Sequence, progress: bool = True):
        for task in {e.task for e in examples}:
            resolve_goal_name(task, self.goal)  # a goal that does not fit the task fails before any query
        self._universe = item_access.universe(model, examples, self.options.get("item_pool"))
        try:
            return super().run(model, examples, progress=progress)
        finally:
            self._universe = None

    def _context(self, model, example) -> EditContext:
        universe = self._universe
        if universe is None:  # attack_example called directly, outside run()
            universe = item_access.universe(model, [example], self.options.get("item_pool"))
        protected = set(example.candidates)
        exclude = protected | set(example.profile.item_ids())
        pool = item_access.sample_pool(universe, exclude, self.options["pool_size"],
                                       example_rng(self.seed, example.example_id, 3))
        ratings = self.options.get("insert_ratings")
        return EditContext(pool=pool, rating_scale=tuple(float(x) for x in self.options["rating_scale"]),
                           insert_ratings=None if ratings is None else tuple(float(r) for r in ratings),
                           protected=protected)

    def attack_example(self, model, example) -> AttackRecord:
        scorer = Scorer(model, example.profile, example.candidates, self.query_budget, self.options.get("batch_size"))
        start = State.start(example.profile.history)
        clean = scorer.score([start])[0]
        original = history_record(example.profile.history)
        common = dict(example_id=example.example_id, attack=self.name, task=example.task, original=original,
                      label=example.label if example.task == "preference" else None,
                      goal=goal_label(example.task, self.goal))
        try:
            goal = make_goal(example, clean, self.goal, self.seed)
        except Skip as why:
            before = skipped_outcome(example, clean, self.goal)
            return AttackRecord(status="skipped", perturbed=None, score_before=before.score, score_after=None,
                                correct_before=before.correct, rank_before=before.rank,
                                queries=scorer.queries, notes=[f"skipped: {why}"], **common)
        ctx = self._context(model, example)
        result = self.make_search().run(scorer, goal, start, clean, self.budget, ctx,
                                        example_rng(self.seed, example.example_id, 4))
        before, after = goal.outcome(clean), goal.outcome(result.scores)
        return AttackRecord(
            status="succeeded" if result.success else "failed",
            perturbed=history_record(result.state.history),
            score_before=before.score, score_after=after.score,
            correct_before=before.correct, correct_after=after.correct,
            rank_before=before.rank, rank_after=after.rank,
            target_item=goal.target_item, success=result.success, queries=scorer.queries,
            perturbation=Perturbation(profile_edits=len(result.edits)),
            notes=[*result.edits, f"stopped: {result.stop}", f"pool: {len(ctx.pool)} items"], **common,
        )


class ProfileSwap(ProfileAttack):
    name = "profile-swap"
    description = "replace history items with catalog items (rating and time kept), greedy on scores"
    transformation = Swap


class ProfileInsert(ProfileAttack):
    name = "profile-insert"
    description = "add fake interactions (lowest or highest rating) as the most recent entries, greedy on scores"
    transformation = Insert


class ProfileDelete(ProfileAttack):
    name = "profile-delete"
    description = "remove history entries, greedy on scores"
    transformation = Delete


class RatingFlip(ProfileAttack):
    name = "rating-flip"
    description = "flip history ratings r -> 6 - r (1-5 scale), greedy on scores"
    transformation = FlipRating


class ProfileMix(ProfileAttack):
    name = "profile-mix"
    description = "any of swap / insert / delete / rating flip at each step, greedy on scores"
    transformation = Mix


class ProfileGradient(ProfileAttack):
    """Gradient-guided swaps on models whose embedding_forward exposes an "item" embedding
    table (BPR-MF, SASRec). LLM models expose input token embeddings only: there is no
    first-order way to rank whole-item replacements, so the attack reports them as
    unsupported (profile-swap runs the same edits black-box) rather than silently falling
    back to a different search."""

    name = "profile-gradient"
    description = "HotFlip-style swaps: item-embedding gradients rank replacements, best verified by scoring"
    transformation = Swap
    OPTIONS = ProfileGradientOptions
    RECORDED = (*ProfileAttack.RECORDED, "verify")

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        if not isinstance(self.options["verify"], int) or self.options["verify"] < 1:
            raise ValueError(f"{self.name}: verify must be a positive integer, got {self.options['verify']!r}")

    def make_search(self) -> GreedySearch:
        return GradientSwapSearch(self.transformation(), verify=self.options["verify"])

    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        caps = getattr(model, "capabilities", None)
        if not getattr(caps, "differentiable", False) or not callable(getattr(model, "embedding_forward", None)):
            return "needs a differentiable model (capabilities.differentiable and embedding_forward)"
        if not item_access.has_item_rows(model):
            return ("needs item embeddings with an item-row map (recommenders.base.ItemIndexed: item_ids, item_rows); "
                    "text models expose token embeddings only: use profile-swap for the same edits black-box")
        return None
