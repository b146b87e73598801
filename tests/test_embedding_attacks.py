"""Embedding (gradient) attacks on tiny differentiable models: the per-row relative L2
budget, the epsilon curve, batching exactness, query budgets, applicability."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attacks.base import AttackUnavailable
from attacks.embedding import perturb
from attacks.embedding.attacks import DEFAULT_EPSILON, DEFAULT_EPSILONS
from attacks.records import STATUSES, TOP_K
from attacks.registry import create, listing
from benchmark.tasks import build_splits
from tests.attack_models import CooccurrenceScorer, FoldInMF, GatheredMF, make_taste_dataset

ATTACKS = ("embedding-fgsm", "embedding-pgd")
N = 16


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def splits():
    ds = make_taste_dataset()
    return {t: build_splits(ds, t, num_negatives=19) for t in ("preference", "ranking")}


@pytest.fixture(scope="module")
def models(splits):
    out = {}
    for task, sp in splits.items():
        out[("mf", task)] = FoldInMF().fit(sp["train"])
        out[("gathered", task)] = GatheredMF().fit(sp["train"])
    out["cooc"] = CooccurrenceScorer().fit(splits["preference"]["train"])
    return out


def test_listed_in_registry():
    rows = {r["name"]: r for r in listing()}
    assert all(rows[n]["threat_model"] == "embedding" for n in ATTACKS)


def test_projection_and_step_respect_the_relative_budget():
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(7, 5, 6, generator=gen) * torch.rand(7, 5, 1, generator=gen) * 10
    ref[0, 0] = 0.0  # a zero row (padding) admits no perturbation
    delta = torch.randn(7, 5, 6, generator=gen) * 50
    for eps in (0.01, 0.3, 2.0):
        out = perturb.project(delta, ref, eps)
        ratio = out.norm(dim=-1) / ref.norm(dim=-1).clamp_min(1e-12)
        assert float(ratio.max()) <= eps * (1 + 1e-5)
        assert float(out[0, 0].abs().max()) == 0.0
        small = 0.1 * eps * ref
        assert torch.allclose(perturb.project(small, ref, eps), small)  # inside the ball: unchanged
    grad = torch.randn(7, 5, 6, generator=gen)
    grad[1] = 0.0
    step = perturb.l2_step(grad, ref, 0.5)
    assert torch.allclose(step.norm(dim=-1)[2:], 0.5 * ref.norm(dim=-1)[2:], rtol=1e-4)
    assert float(step[1].abs().max()) == 0.0  # no gradient, no step


@pytest.mark.parametrize("task", ["preference", "ranking"])
@pytest.mark.parametrize("name", ATTACKS)
@pytest.mark.parametrize("kind", ["mf", "gathered"])
def test_runs_with_curve_and_valid_records(splits, models, name, task, kind):
    model = models[(kind, task)]
    examples = splits[task]["test"].examples[:N]
    result = create(name).run(model, examples, progress=False)
    s = result.summary
    json.dumps([r.to_dict() for r in result.records])
    json.dumps(s)
    assert [p["epsilon"] for p in s["curve"]] == sorted(DEFAULT_EPSILONS)
    assert s["epsilon"] == DEFAULT_EPSILON
    assert s["n_error"] == 0
    assert s["n_succeeded"] + s["n_failed"] > 0
    steps = 1 if name == "embedding-fgsm" else 10
    clean = model.score([e.profile for e in examples], [e.candidates for e in examples])
    for r, ex, row in zip(result.records, examples, clean):
        assert r.status in STATUSES
        assert r.example_id == ex.example_id
        if task == "preference":
            assert r.score_before == pytest.approx(float(row[0]), abs=1e-5)
        else:
            assert r.rank_before == 1 + int(np.sum(row[1:] >= row[0]))
        if r.status == "skipped":
            assert r.queries == 1
            assert (r.correct_before is False) if task == "preference" else (r.rank_before > TOP_K)
            continue
        assert r.perturbation.epsilon == DEFAULT_EPSILON
        assert r.queries == steps + 2
        for info in r.perturbed["embedding_delta"].values():
            assert info["max_relative_norm"] <= DEFAULT_EPSILON * (1 + 1e-4)
        if task == "preference":
            assert r.success == ((r.score_after >= 0.5) != bool(ex.label)) == (r.status == "succeeded")
        else:
            assert r.success == (r.rank_after > TOP_K) == (r.status == "succeeded")


def test_pgd_gets_stronger_with_epsilon(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    s = create("embedding-pgd", epsilons=[1e-4, 2.0]).run(models[("mf", "preference")], examples, progress=False).summary
    rates = {p["epsilon"]: p["attack_success_rate"] for p in s["curve"]}
    assert rates[1e-4] == 0.0
    assert rates[2.0] > 0.5
    assert [p["epsilon"] for p in s["curve"]] == [1e-4, DEFAULT_EPSILON, 2.0]  # the default epsilon is added


def test_pgd_beats_or_matches_fgsm_at_large_epsilon(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    model = models[("mf", "preference")]
    fgsm = create("embedding-fgsm", epsilons=[1.0], epsilon=1.0).run(model, examples, progress=False).summary
    pgd = create("embedding-pgd", epsilons=[1.0], epsilon=1.0).run(model, examples, progress=False).summary
    assert pgd["robust"]["accuracy"] <= fgsm["robust"]["accuracy"] + 1e-9


def test_batching_is_exact(splits, models):
    """Per-example tensors (GatheredMF, like token embeddings) are attacked in batches; the
    records must equal attacking each example alone."""
    examples = splits["ranking"]["test"].examples[:N]
    model = models[("gathered", "ranking")]
    batched = create("embedding-pgd", batch_size=8).run(model, examples, progress=False).records
    alone = create("embedding-pgd", batch_size=1).run(model, examples, progress=False).records
    for a, b in zip(batched, alone):
        assert (a.example_id, a.status, a.rank_after) == (b.example_id, b.status, b.rank_after)
        if a.score_after is not None:
            assert a.score_after == pytest.approx(b.score_after, abs=1e-4)


def test_query_budget_cuts_steps(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    result = create("embedding-pgd", query_budget=5).run(models[("mf", "preference")], examples, progress=False)
    assert all(r.queries <= 5 for r in result.records)
    assert any(r.queries == 5 for r in result.records)


def test_promote_goal(splits, models):
    examples = splits["ranking"]["test"].examples[:N]
    result = create("embedding-pgd", goal="promote", epsilons=[1.0]).run(models[("mf", "ranking")], examples, progress=False)
    for r, ex in zip(result.records, examples):
        assert r.goal == f"promote-top{TOP_K}"
        if r.status != "skipped":
            assert r.target_item in ex.candidates[1:] and r.rank_before > TOP_K
            assert r.success == (r.rank_after <= TOP_K)
    assert "target_out_of_top10" in result.summary["robust"]


def test_deterministic(splits, models):
    examples = splits["ranking"]["test"].examples[:N]

    def run():
        res = create("embedding-pgd").run(models[("mf", "ranking")], examples, progress=False)
        return [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in res.records], res.summary["curve"]

    assert run() == run()


def test_non_differentiable_model_is_unsupported(splits, models):
    for name in ATTACKS:
        cls = type(create(name))
        reason = cls.unsupported_reason(models["cooc"])
        assert reason and "not differentiable" in reason
        with pytest.raises(AttackUnavailable, match="not differentiable"):
            create(name).run(models["cooc"], splits["preference"]["test"].examples[:3], progress=False)


class ProbabilityForward(FoldInMF):
    """A broken hook: forward returns probabilities where logits are due."""

    def embedding_forward(self, profiles, candidates):
        base, forward = super().embedding_forward(profiles, candidates)
        return base, lambda p: torch.sigmoid(forward(p))


def test_forward_that_disagrees_with_score_is_reported(splits):
    model = ProbabilityForward().fit(splits["preference"]["train"])
    with pytest.raises(ValueError, match="disagrees with score"):
        create("embedding-fgsm").run(model, splits["preference"]["test"].examples[:4], progress=False)


def test_bad_options_fail_clearly():
    with pytest.raises(ValueError, match="unknown option"):
        create("embedding-pgd", eps=0.1)
    with pytest.raises(ValueError, match="> 0"):
        create("embedding-pgd", epsilons=[0.0, 0.5])
    with pytest.raises(ValueError, match="embedding-pgd options"):
        create("embedding-fgsm", steps=5)
    with pytest.raises(ValueError, match="steps"):
        create("embedding-pgd", steps=0)
