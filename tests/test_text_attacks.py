"""Text attacks (TextAttack recipes) on tiny text recommenders over a slice of real MovieLens.

The models are tiny random BERTs built from a config (initializer range 0.3, so that their
decisions depend on the text), with the preference model's bias centred on the test
examples so that some decisions can be flipped. No download happens: the hub is treated as
unreachable, so the masked-LM recipes must say they are unavailable.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch

from attacks.base import AttackUnavailable
from attacks.records import STATUSES, TOP_K
from attacks.registry import create
from attacks.text import attack as _text_attack  # noqa: F401  (imports TextAttack once, up front)
from attacks.text import offline, recipes
from benchmark.data.dataset import Dataset
from benchmark.tasks import build_splits
from recommenders.base import Capabilities
from recommenders.llm.cross_encoder import CrossEncoder
from recommenders.llm.two_tower import TwoTower

RECIPES = ["deepwordbug", "pruthi", "textbugger", "pwws", "textfooler", "bae", "bert-attack", "a2t", "hotflip"]
TINY = dict(backbone="tiny-bert", backbone_config={"initializer_range": 0.3, "vocab_size": 600}, epochs=1,
            lr=1e-9, batch_size=16, max_length=160, max_train_examples=16, progress=False)
HEADER = "Rated, oldest first:"


@pytest.fixture(scope="module", autouse=True)
def offline_and_one_thread():
    """No hub, no NLTK server (tests must not download), one torch thread (tiny models gain
    nothing from more, and the test machines are shared)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(offline, "hub_reachable", lambda: False)
    real = offline.host_reachable
    mp.setattr(offline, "host_reachable", lambda host, *a, **k: False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    mp.undo()
    assert real is offline.host_reachable


@pytest.fixture(scope="module")
def dataset(shared_data) -> Dataset:
    folder = shared_data / "ml-latest-small"
    ratings = pd.read_csv(folder / "ratings.csv", dtype={"userId": str, "movieId": str})
    ratings = ratings[ratings["userId"].isin([str(u) for u in range(1, 13)])]
    interactions = pd.DataFrame({
        "user_id": ratings["userId"], "item_id": ratings["movieId"],
        "rating": ratings["rating"].astype("float64"), "timestamp": ratings["timestamp"].astype("int64"),
    }).reset_index(drop=True)
    movies = pd.read_csv(folder / "movies.csv", dtype={"movieId": str}).set_index("movieId")
    movies.index.name = "item_id"
    return Dataset("ml-latest-small-slice", interactions, movies.loc[movies.index.isin(interactions["item_id"])])


def _centre(model, examples):
    """Shift the output bias so that half of these examples are predicted 'like'."""
    p, c = model.render_pairs([e.profile for e in examples], [e.candidates[:1] for e in examples])
    z = model.score_text_logits(p, c)
    with torch.no_grad():
        head = model.model.classifier if isinstance(model, CrossEncoder) else model.model
        bias = head.bias if isinstance(model, CrossEncoder) else head.pref_bias
        bias -= float(np.median(z))
    model.invalidate_cache()
    return model


@pytest.fixture(scope="module")
def pref(dataset):
    splits = build_splits(dataset, "preference", seed=0, history_len=3)
    model = CrossEncoder(**TINY).fit(splits["train"], seed=0)
    examples = splits["test"].examples
    return _centre(model, examples), examples


@pytest.fixture(scope="module")
def right(pref):
    """Test examples the centred model gets right (the ones an attack works on)."""
    model, examples = pref
    p, c = model.render_pairs([e.profile for e in examples], [e.candidates for e in examples])
    ok = (model.score_text(p, c) > 0.5).astype(int) == np.array([e.label for e in examples])
    return [e for e, good in zip(examples, ok) if good]


@pytest.fixture(scope="module")
def rank(dataset):
    splits = build_splits(dataset, "ranking", seed=0, history_len=3, num_negatives=24)
    model = CrossEncoder(**TINY).fit(splits["train"], seed=0)
    return model, splits["test"].examples


def _decision(model, profile_text, candidate_text) -> int:
    model.invalidate_cache()
    return int(model.score_text([profile_text], [candidate_text])[0] > 0.5)


def _check_records(result, model, scope="history"):
    column, fixed = ("profile", "candidate") if scope == "history" else ("candidate", "profile")
    assert len(result.records) and result.summary["examples"] == len(result.records)
    for r in result.records:
        assert r.status in STATUSES, r
        json.dumps(r.to_dict())  # JSON-ready
        assert r.status != "error", r.error
        assert isinstance(r.original, dict) and set(r.original) == {"profile", "candidate"}
        if r.status == "skipped":
            assert r.perturbed is None and r.queries >= 1
            continue
        assert r.queries >= 1 and r.perturbation.char_edits is not None
        assert r.perturbed[fixed] == r.original[fixed], "changed text outside the scope"
        if scope == "history":
            assert r.perturbed["profile"].startswith(HEADER), "the template header is not the user's to edit"
        if r.status == "succeeded":
            assert r.perturbed[column] != r.original[column]
            assert r.perturbation.char_edits > 0 and r.perturbation.words_changed_pct > 0
            if r.task == "preference":
                # the model really changes its decision on the perturbed text
                assert _decision(model, r.perturbed["profile"], r.perturbed["candidate"]) != r.label
                assert r.correct_before and r.correct_after is False


# -- offline data -----------------------------------------------------------------------


def test_packaged_stopwords_are_nltks_179_words():
    words = (offline.PACKAGED_NLTK_DATA / "corpora" / "stopwords" / "english").read_text().split("\n")
    assert words[-1] == "" and len(words[:-1]) == 179 and words[0] == "i" and words[-2] == "wouldn't"
    assert offline.ensure_stopwords() in ("NLTK data", "packaged copy", "downloaded")
    from nltk.corpus import stopwords

    assert len(stopwords.words("english")) == 179


def test_nltk_downloads_are_answered_locally_offline():
    assert offline.local_first_download("stopwords") is True  # found locally
    assert offline.local_first_download("punkt_tab") is False  # missing, offline: no network noise


def test_wordnet_from_the_debian_files(tmp_path, monkeypatch):
    """ensure_wordnet copies Debian's database into RECROBUST_HOME/nltk_data and writes the
    lexnames file NLTK needs (the pwws test then reads WordNet through NLTK)."""
    source = offline._wordnet_source_dir()
    if source is None:
        pytest.skip("Debian's wordnet-base is not installed")
    import nltk

    monkeypatch.setenv("RECROBUST_HOME", str(tmp_path))
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    real_has = offline.nltk_has
    monkeypatch.setattr(offline, "nltk_has", lambda r: False if r == "corpora/wordnet" else real_has(r))
    assert offline.wordnet_status() == "Debian WordNet (to be copied)"
    assert offline.ensure_wordnet().startswith("Debian WordNet")
    target = tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert str(tmp_path / "nltk_data") in nltk.data.path
    lines = (target / "lexnames").read_text().splitlines()
    assert len(lines) == 45 and lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"
    assert all((target / name).is_file() for name in offline.WORDNET_FILES)
    assert not target.is_symlink() and not (target / "data.noun").is_symlink()


def test_missing_wordnet_says_what_to_install(monkeypatch):
    monkeypatch.setattr(offline, "nltk_has", lambda resource: False)
    monkeypatch.setattr(offline, "_wordnet_source_dir", lambda: None)
    monkeypatch.setenv("RECROBUST_HOME", "/nonexistent-recrobust-home")
    with pytest.raises(offline.ResourceMissing, match="apt-get install wordnet-base wordnet-sense-index"):
        offline.ensure_wordnet()
    with pytest.raises(AttackUnavailable, match="WordNet"):
        create("pwws").run(_FakeTextModel(), [])


class _FakeTextModel:
    """Only what the applicability checks read: a fitted text model's interface."""

    capabilities = Capabilities(text_input=True, differentiable=True)
    task = "preference"

    def score_text(self, p, c):
        raise AssertionError("not reached")

    def token_gradients(self, *a, **k):
        raise AssertionError("not reached")


# -- every recipe, end to end ----------------------------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_or_reports_unavailable(recipe, pref, right):
    model, examples = pref[0], right
    if recipes.unavailable_reason(recipe) == offline.WORDNET_HINT:
        # `make test` installs Debian's wordnet-base; test_missing_wordnet_says_what_to_install covers the message
        pytest.skip("WordNet data not installed")
    attack = create(recipe, scope="history", seed=0, query_budget=120)
    if recipe in ("bae", "bert-attack"):
        with pytest.raises(AttackUnavailable, match="masked language model 'bert-base-uncased'.*unreachable"):
            attack.run(model, examples[:2], progress=False)
        return
    n = 2 if recipe in ("a2t", "textbugger", "textfooler", "pwws") else 3
    result = attack.run(model, examples[:n], progress=False)
    _check_records(result, model)
    assert result.summary["n_skipped"] == 0
    assert result.summary["n_error"] == 0
    if recipe in ("textbugger", "textfooler", "a2t", "hotflip"):  # offline substitutes are named
        assert any("all-MiniLM-L6-v2" in note for r in result.records for note in r.notes)


def test_attacks_flip_decisions_and_count_skips(pref):
    model, examples = pref
    result = create("deepwordbug", scope="history", seed=0).run(model, examples[:8], progress=False)
    _check_records(result, model)
    s = result.summary
    assert s["n_succeeded"] >= 1 and s["n_skipped"] >= 1  # the centred model gets some wrong
    assert s["clean"]["accuracy"] == (s["n_succeeded"] + s["n_failed"]) / s["examples"]
    assert s["robust"]["accuracy"] == s["n_failed"] / s["examples"]
    skipped = [r for r in result.records if r.status == "skipped"]
    assert all(r.correct_before is False and r.queries == 1 for r in skipped)


@pytest.mark.slow  # bert-attack expands multi-subword words into candidate combinations
def test_masked_lm_recipes_run_with_a_local_masked_lm(pref, right, tmp_path):
    """bae and bert-attack with a local MLM directory (a tiny random BERT MLM here)."""
    from transformers import BertConfig, BertForMaskedLM

    model, examples = pref[0], right
    tok = model.tokenizer
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    BertForMaskedLM(cfg).save_pretrained(tmp_path / "mlm")
    tok.save_pretrained(tmp_path / "mlm")
    for recipe in ("bae", "bert-attack"):
        result = create(recipe, masked_lm=str(tmp_path / "mlm"), seed=0, query_budget=60).run(
            model, examples[:2], progress=False)
        _check_records(result, model)
        assert all(any("masked LM:" in n for n in r.notes) for r in result.records)


def test_item_scope_edits_only_the_candidate(pref):
    model, examples = pref
    result = create("deepwordbug", scope="item", seed=0).run(model, examples[:8], progress=False)
    _check_records(result, model, scope="item")
    assert result.summary["n_succeeded"] + result.summary["n_failed"] >= 1


def test_budgets(pref, right):
    model, examples = pref[0], right
    capped = create("deepwordbug", seed=0, query_budget=5).run(model, examples[:6], progress=False)
    assert all(r.queries <= 5 for r in capped.records)
    one_word = create("pwws", seed=0, budget=1, query_budget=200).run(model, examples[:3], progress=False)
    from textattack.shared.utils import words_from_text

    for r in one_word.records:
        if r.perturbed:
            a, b = words_from_text(r.original["profile"]), words_from_text(r.perturbed["profile"])
            assert sum(x != y for x, y in zip(a, b)) <= 1


def test_engine_gives_the_same_results_as_one_by_one_textattack(pref):
    """Examples interleaved in the engine (window 8) get exactly what stock textattack.Attacker
    gives attacking each example alone with the same seed (random char edits included)."""
    import textattack

    from attacks.text.attack import example_seed
    from attacks.text.components import ScopeModification
    from attacks.text.wrapper import RecommenderWrapper

    model, examples = pref
    examples = examples[:6]
    ours = create("deepwordbug", scope="history", seed=3, window=8).run(model, examples, progress=False)
    wrapper = RecommenderWrapper(model)
    attack = textattack.attack_recipes.DeepWordBugGao2018.build(wrapper)
    scope = ScopeModification("history", frozen_prefix_words=3)
    attack = textattack.Attack(attack.goal_function, attack.pre_transformation_constraints + attack.constraints
                               + [scope], attack.transformation, attack.search_method)
    for ex, record in zip(examples, ours.records):
        r = model.renderer.render(ex.profile, ex.candidates[0])
        dataset = textattack.datasets.Dataset([((r.profile_text, r.candidate_text), ex.label)],
                                              input_columns=["profile", "candidate"])
        args = textattack.AttackArgs(num_examples=1, random_seed=example_seed(3, ex.example_id), silent=True,
                                     disable_stdout=True)
        (stock,) = textattack.Attacker(attack, dataset, args).attack_dataset()
        if record.status == "skipped":
            assert isinstance(stock, textattack.attack_results.SkippedAttackResult)
            continue
        assert record.perturbed["profile"] == stock.perturbed_result.attacked_text.tokenizer_input[0]
        assert record.success == isinstance(stock, textattack.attack_results.SuccessfulAttackResult)


# -- ranking goals ---------------------------------------------------------------------------


def _rank_with(model, example, profile_text, target_index, target_text):
    texts = [model.renderer.candidate_text(c) for c in example.candidates]
    texts[target_index] = target_text
    model.invalidate_cache()
    s = model.score_text([profile_text] * len(texts), texts)
    return 1 + int(np.sum(np.delete(s, target_index) >= s[target_index]))


@pytest.mark.parametrize("goal", ["demote", "promote"])
def test_ranking_goals(goal, rank):
    model, examples = rank
    result = create("deepwordbug", scope="item", goal=goal, seed=0, query_budget=80).run(
        model, examples[:6], progress=False)
    _check_records(result, model, scope="item")
    assert all(r.goal == f"{goal}-top{TOP_K}" for r in result.records)
    for r, ex in zip(result.records, examples):
        target = list(ex.candidates).index(r.target_item)
        assert (target == 0) == (goal == "demote")
        before = _rank_with(model, ex, r.original["profile"], target, r.original["candidate"])
        assert before == r.rank_before
        if goal == "promote":
            assert r.rank_before > TOP_K and r.status != "skipped"
        if r.status == "skipped":
            assert goal == "demote" and r.rank_before > TOP_K
        if r.status in ("succeeded", "failed"):
            after = _rank_with(model, ex, r.perturbed["profile"], target, r.perturbed["candidate"])
            assert after == r.rank_after
            assert (after > TOP_K if goal == "demote" else after <= TOP_K) == (r.status == "succeeded")
    assert result.summary["n_succeeded"] >= 1


def test_history_scope_demote_rescores_every_candidate(rank):
    model, examples = rank
    attack = create("deepwordbug", scope="history", goal="demote", seed=0, query_budget=15)
    result = attack.run(model, examples[:3], progress=False)
    _check_records(result, model)
    attacked = [r for r in result.records if r.status != "skipped"]
    # every query with a new profile text scores all the example's candidates
    assert attack.last_run_stats["forward_pairs"] >= sum(r.queries - 1 for r in attacked) * len(examples[0].candidates)


# -- gradients and the two-tower ---------------------------------------------------------------


def test_hotflip_swap_proposes_whole_words_in_scope(pref):
    from textattack.shared import AttackedText

    from attacks.text.components import ScopeModification, TokenGradientSwap
    from attacks.text.wrapper import RecommenderWrapper

    model, examples = pref
    r = model.renderer.render(examples[0].profile, examples[0].candidates[0])
    text = AttackedText(OrderedDict(profile=r.profile_text, candidate=r.candidate_text))
    wrapper = RecommenderWrapper(model)
    swap = TokenGradientSwap(wrapper, top_n=5)
    scope = ScopeModification("item")
    out = swap(text, pre_transformation_constraints=[scope])
    assert 1 <= len(out) <= 5
    for t in out:
        assert t.tokenizer_input[0] == r.profile_text
        (i,) = t.attack_attrs["newly_modified_indices"]
        assert not t.words[i].startswith("##") and t.words[i] != text.words[i]
    grad = wrapper.get_grad((r.profile_text, r.candidate_text))
    tokens = wrapper.tokenize([(r.profile_text, r.candidate_text)])[0]
    assert grad["gradient"].shape[0] == len(grad["ids"]) == len(tokens)


def test_two_tower_text_attacks(dataset):
    splits = build_splits(dataset, "preference", seed=0, history_len=3)
    model = TwoTower(**TINY).fit(splits["train"], seed=0)
    examples = splits["test"].examples[:4]
    _centre(model, splits["test"].examples)
    for recipe in ("deepwordbug", "hotflip"):
        result = create(recipe, scope="history", seed=0, query_budget=60).run(model, examples, progress=False)
        _check_records(result, model)


def test_not_for_models_without_text():
    class NoText:
        capabilities = Capabilities(text_input=False)
        task = "preference"

    with pytest.raises(AttackUnavailable, match="text-input model"):
        create("deepwordbug").run(NoText(), [])
    with pytest.raises(ValueError, match="scope"):
        create("deepwordbug", scope="everything")


def test_goal_must_fit_the_task(pref):
    model, examples = pref
    with pytest.raises(ValueError, match="ranking task"):
        create("deepwordbug", goal="demote").run(model, examples[:1], progress=False)
