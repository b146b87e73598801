"""FGSM / PGD in embedding space, over an epsilon grid (robustness curve).

The model's ``embedding_forward(profiles, candidates)`` gives the embedding tensors to
perturb and a differentiable forward returning raw scores (preference: logits; ranking:
scores) of shape (n, c). Every floating tensor with at least two dimensions is perturbed
(option ``tensors`` names a subset), under the per-row relative L2 budget of
attacks.embedding.perturb: ||delta_r|| <= epsilon * ||e_r||.

Goals and their objectives (maximised) come from attacks.profile.goals: preference ->
minus BCE toward the wrong label; ranking -> mean of the top-10 negative scores minus the
positive's (demote), or the target's score minus the mean of the top-10 others (promote).

- embedding-fgsm: one L2 step of size epsilon (APR's fast gradient method).
- embedding-pgd: ``steps`` (default 10) L2 steps of size alpha = 2.5 * epsilon / steps
  (Madry et al.), projected onto the budget after each step; starts from zero (no random
  start: deterministic). The final iterate is evaluated.

Epsilons: ``epsilons`` (default 0.05, 0.1, 0.25, 0.5, 1.0) give the curve; ``epsilon``
(default 0.5, APR's default, see perturb.py) gives the records and the single-figure
robust metric, and is added to the grid when missing. The summary carries
``curve: [{epsilon, attack_success_rate, robust: {...}, ...}]``.

Batching: examples go through embedding_forward together when the tensors it returns are
per example (e.g. token embeddings: leading dimension grows with the batch); a tensor
shared by the batch (an item table) would make one perturbation serve every example, so
then examples are attacked one at a time. Queries per example: 1 (clean) + one per
gradient step + 1 (evaluation); a query budget cuts the number of PGD steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
from tqdm.auto import tqdm

from attacks.base import Attack, AttackResult, AttackUnavailable
from attacks.embedding import perturb
from attacks.profile.attacks import history_record
from attacks.profile.goals import Skip, goal_label, make_goal, resolve_goal_name, skipped_outcome
from attacks.records import AttackRecord, Perturbation, summarize
from benchmark.options import Options, option

DEFAULT_EPSILON = 0.5
DEFAULT_EPSILONS = (0.05, 0.1, 0.25, 0.5, 1.0)
DEFAULT_STEPS = 10


@dataclass
class EmbeddingAttackOptions(Options):
    epsilon: float = option(DEFAULT_EPSILON, "budget of the records and the single-figure robust metric: "
                                             "||delta_r|| <= epsilon * ||e_r|| (added to the grid)")
    epsilons: list | None = option(None, "the robustness curve's grid (default 0.05, 0.1, 0.25, 0.5, 1.0)")
    steps: int = option(DEFAULT_STEPS, "embedding-pgd: gradient steps (embedding-fgsm takes one step of size epsilon)")
    alpha: float | None = option(None, "embedding-pgd: step size (default 2.5 * epsilon / steps)")
    batch_size: int | None = option(None, "examples per embedding_forward call (default: 256 candidates' worth)")
    tensors: list | None = option(None, "which of embedding_forward's tensors to perturb (default: every "
                                        "floating tensor with at least two dimensions)")
SCORE_CHECK_TOL = 1e-3


class EmbeddingAttack(Attack):
    threat_model = "embedding"
    iterative: ClassVar[bool] = False

    OPTIONS: ClassVar[type[Options]] = EmbeddingAttackOptions

    def __init__(self, budget: int | None = None, query_budget: int | None = None, scope: str = "history",
                 goal: str | None = None, seed: int = 0, **options):
        settings = self.OPTIONS.parse(f"attack {self.name!r}", options)
        if scope != "history":
            raise ValueError(f"{self.name}: embedding attacks perturb the model's input embeddings; scope {scope!r} is for text attacks")
        epsilon = float(settings.epsilon)
        grid = [float(e) for e in settings.epsilons or DEFAULT_EPSILONS]
        if epsilon <= 0 or any(e <= 0 for e in grid):
            raise ValueError(f"{self.name}: epsilons must be > 0, got epsilon={epsilon}, epsilons={grid}")
        options["epsilon"] = epsilon
        options["epsilons"] = sorted(set(grid) | {epsilon})
        if self.iterative:
            steps = int(settings.steps)
            if steps < 1:
                raise ValueError(f"{self.name}: steps must be >= 1, got {steps}")
            options["steps"] = steps
        elif "steps" in options or "alpha" in options:
            raise ValueError(f"{self.name}: one step of size epsilon; steps/alpha are embedding-pgd options")
        # budget (edits) does not apply in embedding space: kept in the config as given.
        super().__init__(budget=budget, query_budget=query_budget, scope=scope, goal=goal, seed=seed, **options)

    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        caps = getattr(model, "capabilities", None)
        if not getattr(caps, "differentiable", False):
            return f"model {getattr(model, 'name', type(model).__name__)!r} is not differentiable (capabilities.differentiable is False): no embeddings to perturb"
        if not callable(getattr(model, "embedding_forward", None)):
            return "the model declares itself differentiable but has no embedding_forward(profiles, candidates)"
        return None

    # -- one batch -------------------------------------------------------------
    def _keys(self, base: dict) -> list[str]:
        import torch

        wanted = self.options.get("tensors")
        if wanted:
            missing = [k for k in wanted if k not in base]
            if missing:
                raise ValueError(f"{self.name}: tensors {missing} not in embedding_forward's {sorted(base)}")
            return list(wanted)
        keys = [k for k, t in base.items() if torch.is_tensor(t) and t.is_floating_point() and t.dim() >= 2]
        if not keys:
            raise AttackUnavailable(f"{self.name}: embedding_forward returned no floating tensor to perturb ({sorted(base)})")
        return keys

    def _delta(self, base, forward, keys, goals, epsilon: float) -> tuple[dict, int]:
        import torch

        if self.iterative:
            steps_cfg = self.options["steps"]
            alpha = float(self.options.get("alpha") or 2.5 * epsilon / steps_cfg)
        else:
            steps_cfg, alpha = 1, epsilon
        steps = steps_cfg if self.query_budget is None else min(steps_cfg, max(self.query_budget - 2, 0))
        delta = {k: torch.zeros_like(base[k]) for k in keys}
        for _ in range(steps):
            leaves = {k: delta[k].clone().requires_grad_(True) for k in keys}
            with torch.enable_grad():
                raw = forward({**base, **{k: base[k] + leaves[k] for k in keys}})
                objective = sum(g.objective(raw[i]) for i, g in goals.items())
                grads = torch.autograd.grad(objective, [leaves[k] for k in keys], allow_unused=True)
            for k, g in zip(keys, grads):
                if g is None:
                    continue
                delta[k] = perturb.project(delta[k] + perturb.l2_step(g, base[k], alpha), base[k], epsilon)
        return delta, steps

    def _batch(self, model, batch: Sequence, per_example: bool, check_scores: bool) -> dict[float, list[AttackRecord]]:
        import torch

        started = time.perf_counter()
        n = len(batch)
        profiles = [e.profile for e in batch]
        candidates = [e.candidates for e in batch]
        base, forward = model.embedding_forward(profiles, candidates)
        base = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in base.items()}
        keys = self._keys(base)
        task = batch[0].task
        with torch.no_grad():
            clean = self._scores(forward(base), task)
        if check_scores:
            reference = np.asarray(model.score(profiles, candidates), dtype=float)
            diff = float(np.max(np.abs(reference - clean))) if reference.shape == clean.shape else float("inf")
            if not diff <= SCORE_CHECK_TOL:
                raise ValueError(
                    f"{self.name}: embedding_forward's clean output disagrees with score() (max |diff| {diff:.3g}): "
                    "forward must return logits (preference) or scores (ranking) of the same model")
        goals, skips = {}, {}
        for i, ex in enumerate(batch):
            try:
                goals[i] = make_goal(ex, clean[i], self.goal, self.seed)
            except Skip as why:
                skips[i] = str(why)
        clean_seconds = time.perf_counter() - started

        out: dict[float, list[AttackRecord]] = {}
        for epsilon in self.options["epsilons"]:
            t0 = time.perf_counter()
            delta, steps = self._delta(base, forward, keys, goals, epsilon) if goals else ({}, 0)
            if goals:
                with torch.no_grad():
                    adv = self._scores(forward({**base, **{k: base[k] + delta[k] for k in keys}}), task)
            seconds = (clean_seconds + time.perf_counter() - t0) / n
            records = []
            for i, ex in enumerate(batch):
                records.append(self._record(ex, i, n, per_example, clean[i], None if i in skips else adv[i],
                                            goals.get(i), skips.get(i), base, delta, keys, epsilon, steps, seconds))
            out[epsilon] = records
        return out

    @staticmethod
    def _scores(raw, task: str) -> np.ndarray:
        import torch

        raw = raw.detach().float()
        return (torch.sigmoid(raw) if task == "preference" else raw).cpu().numpy().astype(float)

    def _record(self, ex, i, n, per_example, clean, adv, goal, skip, base, delta, keys, epsilon, steps, seconds):
        common = dict(example_id=ex.example_id, attack=self.name, task=ex.task,
                      original={"history": history_record(ex.profile.history)},
                      label=ex.label if ex.task == "preference" else None,
                      goal=goal_label(ex.task, self.goal), seconds=seconds)
        if skip is not None:
            before = skipped_outcome(ex, clean, self.goal)
            return AttackRecord(status="skipped", perturbed=None, score_before=before.score, score_after=None,
                                correct_before=before.correct, rank_before=before.rank, queries=1,
                                notes=[f"skipped: {skip}"], **common)
        sizes = {}
        for k in keys:
            d, ref = delta[k], base[k]
            if per_example and n > 1:
                size = d.shape[0] // n
                d, ref = d[i * size : (i + 1) * size], ref[i * size : (i + 1) * size]
            sizes[k] = {"rows_changed": perturb.rows_changed(d),
                        "max_relative_norm": round(perturb.max_relative_norm(d, ref), 6)}
        before, after = goal.outcome(clean), goal.outcome(adv)
        success = goal.succeeded(adv)
        return AttackRecord(
            status="succeeded" if success else "failed",
            perturbed={"history": common["original"]["history"], "embedding_delta": sizes},
            score_before=before.score, score_after=after.score,
            correct_before=before.correct, correct_after=after.correct,
            rank_before=before.rank, rank_after=after.rank, target_item=goal.target_item,
            success=success, queries=1 + steps + (1 if steps else 0),
            perturbation=Perturbation(epsilon=epsilon),
            notes=[f"{steps} gradient step(s); tensors {', '.join(keys)}"], **common)

    # -- the run -----------------------------------------------------------------
    def _per_example_layout(self, model, examples) -> bool:
        """True when every perturbed tensor has one slice per example (batching is exact)."""
        same = [e for e in examples if len(e.candidates) == len(examples[0].candidates)][:2]
        if len(same) < 2:
            return False
        one, _ = model.embedding_forward([same[0].profile], [same[0].candidates])
        two, _ = model.embedding_forward([e.profile for e in same], [e.candidates for e in same])
        keys = self._keys(one)
        return all(two[k].shape[0] == 2 * one[k].shape[0] for k in keys)

    def _batches(self, examples, per_example: bool) -> list[list[int]]:
        if not per_example:
            return [[i] for i in range(len(examples))]
        size = self.options.get("batch_size") or max(1, 256 // max(len(examples[0].candidates), 1))
        groups: dict[int, list[int]] = {}
        for i, e in enumerate(examples):
            groups.setdefault(len(e.candidates), []).append(i)
        return [idx[s : s + size] for idx in groups.values() for s in range(0, len(idx), size)]

    def attack_example(self, model, example) -> AttackRecord:
        return self._batch(model, [example], per_example=False, check_scores=False)[self.options["epsilon"]][0]

    def run(self, model, examples: Sequence, progress: bool = True) -> AttackResult:
        reason = self.unsupported_reason(model) or self.unavailable_reason()
        if reason:
            raise AttackUnavailable(f"{self.name}: {reason}")
        examples = list(examples)
        for task in {e.task for e in examples}:
            resolve_goal_name(task, self.goal)  # a goal that does not fit the task fails before any query
        grid = self.options["epsilons"]
        per_eps: dict[float, list[AttackRecord | None]] = {e: [None] * len(examples) for e in grid}
        if examples:
            per_example = self._per_example_layout(model, examples)
            batches = self._batches(examples, per_example)
            for b, idx in enumerate(tqdm(batches, desc=self.name, disable=not progress, leave=False)):
                batch = [examples[i] for i in idx]
                try:
                    results = self._batch(model, batch, per_example, check_scores=(b == 0))
                except AttackUnavailable:
                    raise
                except ValueError as err:
                    if b == 0 and "disagrees with score()" in str(err):
                        raise
                    results = {e: [_error(self.name, ex, err) for ex in batch] for e in grid}
                except Exception as err:  # one failing batch is recorded; the run goes on
                    results = {e: [_error(self.name, ex, err) for ex in batch] for e in grid}
                for e in grid:
                    for i, rec in zip(idx, results[e]):
                        per_eps[e][i] = rec
        curve = []
        for e in grid:
            s = summarize(per_eps[e])
            curve.append({"epsilon": e, "attack_success_rate": s["attack_success_rate"], "robust": s["robust"],
                          "n_succeeded": s["n_succeeded"], "n_failed": s["n_failed"]})
        records = per_eps[self.options["epsilon"]]
        summary = summarize(records)
        summary["epsilon"] = self.options["epsilon"]
        summary["curve"] = curve
        return AttackResult(self.name, self.config(), records, summary)


def _error(name: str, ex, err: Exception) -> AttackRecord:
    return AttackRecord(example_id=ex.example_id, attack=name, task=ex.task, status="error", original=None,
                        perturbed=None, score_before=float("nan"), score_after=None,
                        error=f"{type(err).__name__}: {err}")


class EmbeddingFGSM(EmbeddingAttack):
    name = "embedding-fgsm"
    description = "one L2 gradient step of relative size epsilon on input embeddings (APR-style FGM)"
    iterative = False


class EmbeddingPGD(EmbeddingAttack):
    name = "embedding-pgd"
    description = "projected gradient ascent on input embeddings, relative L2 ball per row"
    iterative = True
