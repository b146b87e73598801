"""Defenses (attacks.defenses): adv-augment, embedding-at, profile-augment on tiny models
and generated data."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from attacks.base import Attack
from attacks.defenses import registry as defense_registry
from attacks.defenses.embedding_at import EmbeddingAT, apr_perturbation
from attacks.defenses.profile_augment import augment_examples
from attacks.defenses.training_data import PSEUDO_PREFIX
from attacks.records import AttackRecord
from attacks import registry as attack_registry
from benchmark.cli import main
from benchmark.experiment import build_model, prepare_task, train_model
from tests.helpers import make_dataset

BPR = dict(factors=8, epochs=4, lr=0.05, batch_size=64, device="cpu", progress=False, patience=0)
SAS = dict(hidden=16, layers=1, heads=1, epochs=2, batch_size=64, device="cpu", progress=False, patience=0)
TINY_TEXT = dict(backbone="tiny-bert", epochs=1, lr=1e-3, batch_size=8, max_length=96, progress=False, device="cpu")


@pytest.fixture(scope="module")
def dataset():
    return make_dataset(n_users=24, n_items=40, per_user=10, seed=1)


@pytest.fixture(scope="module")
def pref(dataset):
    return prepare_task(dataset, "preference", seed=0)


@pytest.fixture(scope="module")
def rank(dataset):
    return prepare_task(dataset, "ranking", seed=0, num_negatives=15)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.net.state_dict().items()}


def _differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


# -- catalog and applicability ----------------------------------------------------------------
def test_list_defenses_shows_what_applies_to_which_model(capsys):
    names = {r["name"]: r for r in defense_registry.listing()}
    assert {"none", "adv-augment", "embedding-at", "profile-augment"} <= set(names)
    assert "bpr-mf" in names["embedding-at"]["applies_to"] and "cross-encoder" in names["embedding-at"]["applies_to"]
    assert main(["list", "defenses"]) == 0
    out = capsys.readouterr().out
    assert "embedding-at" in out and "popularity" in out


@pytest.mark.parametrize("defense, model, options, why", [
    ("embedding-at", "itemknn", {}, "not differentiable"),
    ("embedding-at", "popularity", {}, "not differentiable"),
    ("adv-augment", "popularity", {}, "ignores the profile"),
    ("profile-augment", "popularity", {}, "ignores the profile"),
    ("adv-augment", "bpr-mf", {"attack": "deepwordbug"}, "text attack"),
    ("adv-augment", "bpr-mf", {"attack": "embedding-pgd"}, "use embedding-at"),
])
def test_unsupported_models_get_a_reason_and_training_refuses(pref, defense, model, options, why):
    guard = defense_registry.create(defense, **options)
    assert why in guard.unsupported_reason(build_model(model))
    with pytest.raises(ValueError, match=why):
        train_model(model, pref, defense=defense, defense_options=options)


@pytest.mark.parametrize("defense, model", [("embedding-at", "bpr-mf"), ("embedding-at", "sasrec"),
                                            ("embedding-at", "cross-encoder"), ("adv-augment", "itemknn"),
                                            ("profile-augment", "itemknn"), ("profile-augment", "two-tower")])
def test_supported_pairs_have_no_reason(defense, model):
    assert defense_registry.create(defense).unsupported_reason(build_model(model)) is None


@pytest.mark.parametrize("defense, options", [("adv-augment", {"round": 2}), ("embedding-at", {"epsilon": 0}),
                                              ("embedding-at", {"norm": "linf"}), ("embedding-at", {"select": "robust"}),
                                              ("profile-augment", {"budget": 0}),
                                              ("profile-augment", {"kinds": ["shuffle"]})])
def test_bad_options_are_refused(defense, options):
    with pytest.raises(ValueError, match=defense):
        defense_registry.create(defense, **options)


# -- embedding-at: APR ------------------------------------------------------------------------
def test_apr_perturbation_has_the_configured_norm_per_row():
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(50, 8, generator=gen) * torch.rand(50, 1, generator=gen) * 3
    grad = torch.randn(50, 8, generator=gen)
    grad[::7] = 0.0  # rows the batch did not touch
    touched = grad.norm(dim=-1) > 0
    for eps in (0.1, 0.5, 2.0):
        delta = apr_perturbation(grad, ref, eps, "relative")
        torch.testing.assert_close(delta.norm(dim=-1)[touched], eps * ref.norm(dim=-1)[touched])
        assert torch.all(delta[~touched] == 0)
        # the direction is the gradient's (fast gradient method)
        cos = torch.nn.functional.cosine_similarity(delta[touched], grad[touched], dim=-1)
        torch.testing.assert_close(cos, torch.ones_like(cos))
        absolute = apr_perturbation(grad, ref, eps, "absolute")
        torch.testing.assert_close(absolute.norm(dim=-1)[touched], torch.full((int(touched.sum()),), eps))


@pytest.mark.parametrize("task", ["preference", "ranking"])
def test_apr_trains_bpr_mf_with_perturbations_of_the_configured_norm(pref, rank, task):
    splits = pref if task == "preference" else rank
    plain, _ = train_model("bpr-mf", splits, seed=0, options=BPR)
    model, info = train_model("bpr-mf", splits, seed=0, options=BPR, defense="embedding-at",
                              defense_options={"epsilon": 0.3, "epochs": 3})
    assert info["method"] == "apr" and info["adversarial"]["epochs_run"] >= 1
    p = info["perturbation"]
    assert p["rows_perturbed"] > 0
    assert p["min_relative_norm"] == pytest.approx(0.3, abs=1e-4)
    assert p["max_relative_norm"] == pytest.approx(0.3, abs=1e-4)
    assert _differs(_weights(plain), _weights(model))  # the adversarial epochs changed the model
    scores = model.score_examples(splits["test"].examples[:5])
    assert all(np.isfinite(s).all() for s in scores)


def test_apr_loss_is_clean_plus_the_loss_at_the_fast_gradient_perturbation(pref):
    model, _ = train_model("bpr-mf", pref, seed=0, options=BPR)
    data = model._prepare(pref["train"])
    batch = next(model._batches(data, np.random.default_rng(0), torch.Generator().manual_seed(0)))
    params = model.embedding_tables()
    clean = model.loss(batch)
    grads = torch.autograd.grad(clean, list(params.values()))
    # APR by hand: per row, epsilon * ||e_r|| in the gradient's direction
    tables = {k: p.detach() + 0.5 * p.detach().norm(dim=-1, keepdim=True) * g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
              for (k, p), g in zip(params.items(), grads)}
    adv = float(model.loss(batch, tables=tables).detach())
    assert adv > float(clean.detach())  # the perturbation goes uphill
    total = float(EmbeddingAT(epsilon=0.5, adv_weight=2.0).apr_loss(model)(batch).detach())
    assert total == pytest.approx(float(clean.detach()) + 2.0 * adv, rel=1e-5)
    only_item = EmbeddingAT(epsilon=0.5, tables=["item"])
    assert float(only_item.apr_loss(model)(batch).detach()) != pytest.approx(total)
    with pytest.raises(ValueError, match="not in the model"):
        EmbeddingAT(tables=["users"]).apr_loss(model)(batch)


def test_apr_trains_sasrec(rank):
    model, info = train_model("sasrec", rank, seed=0, options=SAS, defense="embedding-at",
                              defense_options={"epochs": 2})
    assert info["perturbation"]["max_relative_norm"] == pytest.approx(0.5, abs=1e-4)
    assert model.score([e.profile for e in rank["test"].examples[:3]],
                       [e.candidates for e in rank["test"].examples[:3]]).shape == (3, 16)


# -- embedding-at: text models --------------------------------------------------------------------
@pytest.mark.parametrize("model_name, method", [("cross-encoder", "pgd"), ("two-tower", "freelb")])
def test_embedding_at_on_token_embeddings_stays_within_the_budget(pref, model_name, method):
    model, info = train_model(model_name, pref, seed=0, options={**TINY_TEXT, "max_train_examples": 48},
                              defense="embedding-at", defense_options={"epsilon": 0.2, "steps": 2, "method": method})
    p = info["perturbation"]
    assert p["rows_perturbed"] > 0 and p["batches"] == 6 * (2 if model_name == "two-tower" else 1)
    assert 0 < p["max_relative_norm"] <= 0.2 + 1e-5
    assert "_loss" not in vars(model) and "_train" not in vars(model)  # the patches are gone
    assert model.history and math.isfinite(model.history[0]["train_loss"])
    probs = model.score_examples(pref["test"].examples[:4])
    assert all(0.0 <= float(s[0]) <= 1.0 for s in probs)


# -- profile-augment -------------------------------------------------------------------------
def test_profile_augment_edits_stay_within_the_budget(pref):
    examples = pref["train"].examples
    universe = pref["train"].train_interactions["item_id"].unique()
    aug, edits = augment_examples(examples, universe, budget=2, ratio=0.5, seed=3)
    assert len(aug) == round(0.5 * len(examples))
    by_id = {e.example_id: e for e in examples}
    kinds = Counter()
    for a, done in zip(aug, edits):
        orig = by_id[a.example_id.split("~")[0]]
        assert 1 <= len(done) <= 2
        kinds.update(done)
        assert a.candidates == orig.candidates and a.label == orig.label
        assert not set(a.candidates) & (set(a.profile.item_ids()) - set(orig.profile.item_ids()))
        # an independent lower bound on the edits from the histories themselves
        before = Counter(h.item_id for h in orig.profile.history)
        after = Counter(h.item_id for h in a.profile.history)
        removed, added = sum((before - after).values()), sum((after - before).values())
        old = {h.item_id: h.rating for h in orig.profile.history}
        flipped = sum(1 for h in a.profile.history if h.item_id in old and h.rating != old[h.item_id])
        assert max(removed, added) + flipped <= 2
        assert (removed, added, flipped, len(a.profile.history)) != (0, 0, 0, len(orig.profile.history))
    assert set(kinds) == {"swap", "insert", "delete", "flip"}
    again, _ = augment_examples(examples, universe, budget=2, ratio=0.5, seed=3)
    assert [a.profile for a in again] == [a.profile for a in aug]  # seeded


def test_profile_augment_feeds_interaction_models_pseudo_sequences(rank, monkeypatch):
    model = build_model("bpr-mf", BPR)
    seen = {}
    original = type(model)._prepare

    def spy(train):
        seen["users"] = train.train_interactions["user_id"].astype(str)
        return original(model, train)

    monkeypatch.setattr(model, "_prepare", spy)
    _, info = train_model(model, rank, seed=0, defense="profile-augment", defense_options={"budget": 2, "ratio": 0.5})
    pseudo = seen["users"][seen["users"].str.startswith(PSEUDO_PREFIX)]
    assert info["augmented_examples"] > 0 and pseudo.nunique() == info["augmented_examples"]
    assert info["max_edits"] <= 2
    plain, _ = train_model("bpr-mf", rank, seed=0, options=BPR)
    assert _differs(_weights(plain), _weights(model))


def test_profile_augment_adds_examples_for_text_models(pref):
    model, info = train_model("cross-encoder", pref, seed=0, options={**TINY_TEXT, "max_train_examples": 24},
                              defense="profile-augment", defense_options={"ratio": 0.5})
    assert info["original_examples"] == 24 and info["augmented_examples"] == 12
    assert model.history[0]["units"] == 36  # the model trained on both, not on a re-cut subset
    assert model.opts["max_train_examples"] == 24


# -- adv-augment -------------------------------------------------------------------------------
def test_adv_augment_adds_profile_adversarial_examples_and_records_rounds(pref, monkeypatch):
    model = build_model("bpr-mf", BPR)
    fed = []
    original = type(model)._prepare

    def spy(train):
        fed.append(list(train.examples))
        return original(model, train)

    monkeypatch.setattr(model, "_prepare", spy)
    options = {"rounds": 2, "attack_examples": 40, "eval_examples": 40, "attack_eval_examples": 12, "epochs": 1,
               "attack_options": {"budget": 2, "pool_size": 8}}
    _, info = train_model(model, pref, seed=0, defense="adv-augment", defense_options=options)
    rounds = info["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert info["attack"] == "profile-swap"
    added = [r["added_examples"] for r in rounds]
    assert added[0] == 0 and sum(added) > 0 and sum(added) == info["adversarial_examples"]
    for r in rounds:
        assert "auc" in r["clean"] and "accuracy" in r["robust"] and "attack_success_rate" in r
    for k, r in enumerate(rounds[1:], start=1):
        assert r["adversarial_total"] == sum(added[: k + 1])
        if r["adversarial_total"]:
            ft = r["finetune"]
            # clean_mix 1: as many clean examples as adversarial ones, all of them fed to the model
            assert ft["adversarial_examples"] == r["adversarial_total"]
            assert ft["training_examples"] == ft["clean_examples"] + r["adversarial_total"]
    # fed[0] is the plain fit; then one fine-tune per round with adversarial examples
    last = fed[-1]
    adversarial = [e for e in last if "~adv" in e.example_id]
    assert len(adversarial) == info["adversarial_examples"]
    originals = {e.example_id: e for e in pref["train"].examples}
    for e in adversarial:
        source = originals[e.example_id.split("~")[0]]
        assert e.label == source.label and e.candidates == source.candidates  # true labels
        assert e.profile.history != source.profile.history  # the attack's perturbed profile


def test_adv_augment_clean_mix_all_grows_the_training_set_by_the_adversarial_count(rank, monkeypatch):
    model = build_model("bpr-mf", BPR)
    sizes = []
    original = type(model)._prepare

    def spy(train):
        sizes.append((len(train.examples), train.train_interactions["user_id"].astype(str).str.startswith(PSEUDO_PREFIX).sum()))
        return original(model, train)

    monkeypatch.setattr(model, "_prepare", spy)
    options = {"rounds": 1, "attack_examples": 30, "attack_eval_examples": 8, "epochs": 1, "clean_mix": "all",
               "negatives": 15, "attack_options": {"budget": 2, "pool_size": 8}}
    _, info = train_model(model, rank, seed=0, defense="adv-augment", defense_options=options)
    n_adv = info["adversarial_examples"]
    assert n_adv > 0
    assert sizes[-1][0] == len(rank["train"].examples) + n_adv
    assert sizes[-1][1] > 0  # ranking: the adversarial examples are pseudo-user sequences too
    assert "ndcg@10" in info["rounds"][1]["robust"]


def test_adv_augment_refits_itemknn_on_the_augmented_data(pref):
    options = {"rounds": 1, "attack_examples": 40, "attack_eval_examples": 8, "attack_options": {"budget": 2, "pool_size": 8}}
    _, info = train_model("itemknn", pref, seed=0, defense="adv-augment", defense_options=options)
    r1 = info["rounds"][1]
    assert r1["added_examples"] > 0
    assert r1["finetune"] == {"refit": True, "training_examples": len(pref["train"].examples) + r1["added_examples"]}


class AppendTypo(Attack):
    """A deterministic stand-in for a text attack (no TextAttack): every example the model
    gets right "succeeds" with one word of the profile text misspelt."""

    name = "test-append-typo"
    threat_model = "text"

    def attack_example(self, model, example):
        r = model.renderer.render(example.profile, example.candidates[0])
        prob = float(model.score_text([r.profile_text], [r.candidate_text])[0])
        correct = (prob >= 0.5) == bool(example.label)
        text = {"profile": r.profile_text, "candidate": r.candidate_text}
        if not correct:
            return AttackRecord(example.example_id, self.name, example.task, "skipped", text, None, prob, None,
                                label=example.label, correct_before=False)
        perturbed = {"profile": r.profile_text.replace("Movie", "Mvoie", 1), "candidate": r.candidate_text}
        return AttackRecord(example.example_id, self.name, example.task, "succeeded", text, perturbed, prob,
                            prob, label=example.label, correct_before=True, correct_after=False, success=True)


def test_adv_augment_fine_tunes_text_models_on_the_adversarial_texts(pref, monkeypatch, request):
    attack_registry.register(AppendTypo.name, f"{__name__}:AppendTypo", "text", "test", "-")
    request.addfinalizer(lambda: attack_registry.REGISTRY.unregister(AppendTypo.name))
    model = build_model("cross-encoder", {**TINY_TEXT, "max_train_examples": 48})
    calls = []
    original = type(model).fine_tune_text

    def spy(profile_texts, candidate_texts, labels, **kw):
        calls.append((list(profile_texts), list(labels)))
        return original(model, profile_texts, candidate_texts, labels, **kw)

    monkeypatch.setattr(model, "fine_tune_text", spy)
    options = {"rounds": 1, "attack": AppendTypo.name, "attack_examples": 16, "eval_examples": 20,
               "attack_eval_examples": 6}
    _, info = train_model(model, pref, seed=0, defense="adv-augment", defense_options=options)
    r1 = info["rounds"][1]
    n = r1["added_examples"]
    assert n > 0 and n == info["adversarial_examples"]
    assert r1["finetune"]["units_seen"] == r1["finetune"]["clean_examples"] + n  # one epoch over both
    texts, labels = calls[0]
    adversarial = [t for t in texts if "Mvoie" in t]
    assert len(adversarial) == n
    assert "accuracy" in r1["robust"] and "auc" in r1["clean"]
