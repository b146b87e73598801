"""Profile attacks end to end on tiny models (a differentiable fold-in MF, a numpy
co-occurrence model): budgets, query budgets, real decision changes on re-scoring,
determinism, applicability."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from attacks.base import AttackUnavailable
from attacks.profile.goals import rank_of
from attacks.records import STATUSES, TOP_K
from attacks.registry import create, listing
from benchmark.evaluation import evaluate
from benchmark.profiles import Interaction
from benchmark.tasks import build_splits
from tests.attack_models import CooccurrenceScorer, FoldInMF, GatheredMF, make_taste_dataset

BLACK_BOX = ("profile-swap", "profile-insert", "profile-delete", "rating-flip", "profile-mix")
N = 12


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
        out[("cooc", task)] = CooccurrenceScorer().fit(sp["train"])
        out[("gathered", task)] = GatheredMF().fit(sp["train"])
    return out


def _history(entries) -> tuple[Interaction, ...]:
    # Records keep item and rating; timestamps are not needed to re-score fold-in models.
    return tuple(Interaction(e["item_id"], math.nan if e["rating"] is None else e["rating"], i)
                 for i, e in enumerate(entries))


def _rescore(model, example, perturbed) -> np.ndarray:
    profile = example.profile.replace_history(_history(perturbed))
    return model.score([profile], [example.candidates])[0]


def _check_common(result, examples, budget):
    by_id = {e.example_id: e for e in examples}
    assert len(result.records) == len(examples)
    json.dumps([r.to_dict() for r in result.records])
    for r in result.records:
        assert r.status in STATUSES and r.status != "error", (r.error, r.notes)
        assert r.queries >= 1
        assert r.original == [{"item_id": h.item_id, "rating": h.rating} for h in by_id[r.example_id].profile.history]
        if r.status == "skipped":
            assert r.perturbed is None and not r.success
        else:
            assert r.success == (r.status == "succeeded")
            assert 0 <= r.perturbation.profile_edits <= budget
            assert len([n for n in r.notes if not n.startswith(("stopped", "pool"))]) == r.perturbation.profile_edits
    s = result.summary
    assert s["n_succeeded"] + s["n_failed"] + s["n_skipped"] == len(examples)


def test_listed_in_registry():
    rows = {r["name"]: r for r in listing()}
    for name in (*BLACK_BOX, "profile-gradient"):
        assert rows[name]["threat_model"] == "profile"


@pytest.mark.parametrize("kind", ["mf", "cooc"])
@pytest.mark.parametrize("name", BLACK_BOX)
def test_preference_attack_flips_the_rescored_decision(splits, models, name, kind):
    model = models[(kind, "preference")]
    examples = splits["preference"]["test"].examples[:N]
    result = create(name, seed=0).run(model, examples, progress=False)
    _check_common(result, examples, budget=3)
    by_id = {e.example_id: e for e in examples}
    _, per = evaluate(model, splits["preference"]["test"], return_per_example=True)
    wrong = sum(not c for c in per["correct"][:N])
    assert result.summary["n_skipped"] == wrong  # skipped exactly where the model is already wrong
    for r in result.records:
        ex = by_id[r.example_id]
        if r.status == "skipped":
            assert r.correct_before is False
            continue
        assert r.correct_before is True
        p = float(_rescore(model, ex, r.perturbed)[0])
        assert p == pytest.approx(r.score_after, abs=1e-5)
        assert (int(p >= 0.5) != ex.label) == (r.status == "succeeded")


def test_attacks_do_succeed(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    for kind, name in (("mf", "profile-swap"), ("cooc", "rating-flip"), ("mf", "profile-gradient")):
        result = create(name).run(models[(kind, "preference")], examples, progress=False)
        assert result.summary["n_succeeded"] >= 2, (name, result.summary)
        assert result.summary["attack_success_rate"] > 0


@pytest.mark.parametrize("goal", ["demote", "promote"])
@pytest.mark.parametrize("name", ["profile-swap", "profile-mix", "profile-gradient"])
def test_ranking_goals_rescored(splits, models, name, goal):
    model = models[("mf", "ranking")]
    examples = splits["ranking"]["test"].examples[:N]
    options = {} if name == "profile-gradient" else {"pool_size": 20}
    result = create(name, goal=goal, budget=2, **options).run(model, examples, progress=False)
    _check_common(result, examples, budget=2)
    by_id = {e.example_id: e for e in examples}
    assert result.summary["n_succeeded"] + result.summary["n_failed"] > 0
    for r in result.records:
        ex = by_id[r.example_id]
        clean = model.score([ex.profile], [ex.candidates])[0]
        if goal == "demote":
            assert r.goal == f"demote-top{TOP_K}"
            assert r.rank_before == rank_of(clean, 0)
            if r.status == "skipped":
                assert r.rank_before > TOP_K
                continue
            assert r.rank_before <= TOP_K
            assert (rank_of(_rescore(model, ex, r.perturbed), 0) > TOP_K) == (r.status == "succeeded")
        else:
            assert r.goal == f"promote-top{TOP_K}"
            assert r.target_item in ex.candidates[1:]
            t = ex.candidates.index(r.target_item)
            assert r.rank_before == rank_of(clean, t) > TOP_K
            assert r.rank_after == rank_of(_rescore(model, ex, r.perturbed), t)
            assert (r.rank_after <= TOP_K) == (r.status == "succeeded")


def test_edits_are_what_the_attack_says(splits, models):
    model = models[("cooc", "preference")]
    examples = splits["preference"]["test"].examples[:N]
    by_id = {e.example_id: e for e in examples}
    for name in BLACK_BOX[:4]:
        for r in create(name, pool_size=20).run(model, examples, progress=False).records:
            if r.status == "skipped":
                continue
            ex, k = by_id[r.example_id], r.perturbation.profile_edits
            before, after = r.original, r.perturbed
            if name == "profile-swap":
                assert len(after) == len(before)
                changed = [(a, b) for a, b in zip(before, after) if a != b]
                assert len(changed) == k
                assert all(a["rating"] == b["rating"] and b["item_id"] not in ex.candidates for a, b in changed)
                assert len({e["item_id"] for e in after}) == len(after)  # no duplicate items
            elif name == "profile-insert":
                assert len(after) == len(before) + k and after[: len(before)] == before
                assert all(e["rating"] in (1.0, 5.0) for e in after[len(before):])
            elif name == "profile-delete":
                assert len(after) == len(before) - k >= 1
                it = iter(before)
                assert all(any(e == b for b in it) for e in after)  # a subsequence of the original
            else:
                assert [e["item_id"] for e in after] == [e["item_id"] for e in before]
                flips = [(a["rating"], b["rating"]) for a, b in zip(before, after) if a != b]
                assert len(flips) == k and all(b == 6 - a for a, b in flips)


@pytest.mark.parametrize("budget", [0, 1])
def test_edit_budget(splits, models, budget):
    examples = splits["preference"]["test"].examples[:N]
    result = create("profile-mix", budget=budget).run(models[("mf", "preference")], examples, progress=False)
    _check_common(result, examples, budget=budget)
    if budget == 0:
        assert result.summary["n_succeeded"] == 0


@pytest.mark.parametrize("q", [1, 5, 40])
@pytest.mark.parametrize("name", ["profile-swap", "profile-gradient"])
def test_query_budget_respected(splits, models, name, q):
    examples = splits["preference"]["test"].examples[:N]
    result = create(name, query_budget=q).run(models[("mf", "preference")], examples, progress=False)
    _check_common(result, examples, budget=3)
    assert all(r.queries <= q for r in result.records)
    if q == 1:
        assert result.summary["n_succeeded"] == 0
        assert all("query budget" in r.notes[-2] for r in result.records if r.status == "failed")


def test_queries_are_counted_per_profile(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    for r in create("rating-flip", budget=1).run(models[("mf", "preference")], examples, progress=False).records:
        if r.status != "skipped":
            flippable = sum(1 for h in r.original if h["rating"] != 3)
            assert r.queries == 1 + flippable  # the clean profile, then one batch of every flip


def test_gradient_ranks_the_whole_catalog_with_few_queries(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    result = create("profile-gradient", verify=5).run(models[("mf", "preference")], examples, progress=False)
    for r in result.records:
        assert r.queries <= 1 + 3 * (1 + 5)
    pools = {int(r.notes[-1].split()[1]) for r in result.records if r.status != "skipped"}
    assert max(pools) > 50  # every known item outside the history and candidates


def test_deterministic_for_a_seed(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    model = models[("mf", "preference")]

    def run(seed):
        res = create("profile-mix", seed=seed, pool_size=10).run(model, examples, progress=False)
        return [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in res.records]

    assert run(0) == run(0)
    assert run(0) != run(1)  # another seed draws other pools


def test_order_independent(splits, models):
    examples = splits["ranking"]["test"].examples[:N]
    model = models[("cooc", "ranking")]
    a = create("profile-swap", goal="promote", pool_size=10).run(model, examples, progress=False).records
    b = create("profile-swap", goal="promote", pool_size=10).run(model, examples[::-1], progress=False).records
    strip = lambda r: (r.example_id, r.status, r.target_item, json.dumps(r.perturbed))
    assert sorted(map(strip, a)) == sorted(map(strip, b))


def test_applicability(models, splits):
    cls = type(create("profile-gradient"))
    assert "differentiable" in cls.unsupported_reason(models[("cooc", "preference")])
    assert cls.unsupported_reason(models[("mf", "preference")]) is None
    with pytest.raises(AttackUnavailable, match="differentiable"):
        create("profile-gradient").run(models[("cooc", "preference")], splits["preference"]["test"].examples[:2], progress=False)
    # per-example embeddings only (the LLM layout): no item table to rank replacements with
    with pytest.raises(AttackUnavailable, match="'item'"):
        create("profile-gradient").run(models[("gathered", "preference")], splits["preference"]["test"].examples[:4], progress=False)
    for name in BLACK_BOX:
        assert type(create(name)).unsupported_reason(models[("cooc", "ranking")]) is None


def test_bad_options_fail_clearly(splits, models):
    with pytest.raises(ValueError, match="unknown option"):
        create("profile-swap", pool=3)
    with pytest.raises(ValueError, match="scope"):
        create("profile-swap", scope="item")
    with pytest.raises(ValueError, match="pool_size"):
        create("profile-swap", pool_size=0)
    with pytest.raises(ValueError, match="unknown option"):
        create("profile-swap", verify=3)  # a profile-gradient option
    with pytest.raises(ValueError, match="verify"):
        create("profile-gradient", verify=0)
    with pytest.raises(ValueError, match="ranking task"):
        create("profile-swap", goal="promote").run(models[("mf", "preference")],
                                                   splits["preference"]["test"].examples[:2], progress=False)


def test_item_pool_option_limits_replacements(splits, models):
    examples = splits["preference"]["test"].examples[:N]
    allowed = ["i0", "i1", "i2", "i3"]
    result = create("profile-swap", item_pool=allowed).run(models[("mf", "preference")], examples, progress=False)
    for r in result.records:
        if r.status != "skipped":
            new = {e["item_id"] for e in r.perturbed} - {e["item_id"] for e in r.original}
            assert new <= set(allowed)
