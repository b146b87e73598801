"""The causal-lm recommender on a small slice of real MovieLens data, with a tiny Llama built
from a config (no download); the GGUF path on tiny GGUF files written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.dataset import Dataset
from tests.helpers import ml_latest_small_slice, text_model_splits
from recommenders.base import Recommender
from recommenders.llm import backbones, causal_backbones
from recommenders.llm.causal_lm import CausalLM
from recommenders.registry import create

TINY = dict(backbone="tiny-llama", epochs=1, lr=1e-3, batch_size=8, max_length=256, max_train_examples=48,
            progress=False, eval_batch_size=5)  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def dataset(shared_data) -> Dataset:
    """Six users of ml-latest-small, their ratings and the movies they rated."""
    return ml_latest_small_slice(shared_data / "ml-latest-small", 6)


@pytest.fixture(scope="module")
def splits(dataset):
    return text_model_splits(dataset)


_fitted: dict = {}


@pytest.fixture(scope="module")
def fitted(splits):
    """fitted(task, lora) -> a tiny causal LM trained once per module."""

    def get(task, lora=False):
        key = (task, lora)
        if key not in _fitted:
            _fitted[key] = CausalLM(**TINY, lora=lora).fit(splits[task]["train"], seed=0)
        return _fitted[key]

    yield get
    _fitted.clear()


def _batch(task_data, n=3):
    ex = task_data.examples[:n]
    return [e.profile for e in ex], [e.candidates for e in ex]


def test_registered_and_answer_tokens_checked(fitted):
    assert isinstance(create("causal-lm", backbone="tiny-llama"), CausalLM)
    model = fitted("preference")
    tok = model.tokenizer
    assert [tok.convert_ids_to_tokens(i) for i in model.answer_ids] == ["Yes", "No"]
    assert model.card["name"] == "tiny-llama" and model.card["parameters"] > 0
    assert model.config()["backbone_card"] == model.card


def test_prompt_uses_the_chat_template_and_keeps_the_span_map(fitted, splits):
    model = fitted("preference")
    ex = splits["preference"]["test"].examples[0]
    r = model.renderer.render(ex.profile, ex.candidates[0])
    prompt = model.prompt_text(r.profile_text, r.candidate_text)
    assert prompt.text.startswith("<|im_start|>system\n") and prompt.text.endswith("<|im_start|>assistant\n")
    assert prompt.text[slice(*prompt.profile_span)] == r.profile_text
    assert prompt.text[slice(*prompt.candidate_span)] == r.candidate_text
    # The token sequence is the pieces tokenised one by one: the prefix does not depend on the candidate.
    other = model.renderer.candidate_text(ex.candidates[0] if len(ex.candidates) == 1 else ex.candidates[1])
    prefix = model.prefix_ids(r.profile_text)
    assert model.prompt_ids(r.profile_text, other)[: len(prefix)] == prefix


@pytest.mark.parametrize("task", ["preference", "ranking"])
def test_fit_and_score_both_tasks(task, fitted, splits):
    model = fitted(task)
    assert model.trained and np.isfinite(model.history[0]["train_loss"])
    profiles, candidates = _batch(splits[task]["test"])
    scores = model.score(profiles, candidates)
    assert scores.shape == (len(profiles), len(candidates[0])) and np.isfinite(scores).all()
    if task == "preference":
        assert ((scores > 0) & (scores < 1)).all()
    assert np.ptp(scores) > 0


def test_preference_score_is_p_yes_over_p_yes_plus_p_no(fitted, splits):
    model = fitted("preference")
    p, c = model.render_pairs(*_batch(splits["preference"]["test"], n=1))
    ids = torch.tensor([model.prompt_ids(p[0], c[0])])
    with torch.no_grad():
        probs = torch.softmax(model.model(input_ids=ids).logits[0, -1].double(), -1)
    yes, no = probs[model.answer_ids[0]], probs[model.answer_ids[1]]
    model.invalidate_cache()
    np.testing.assert_allclose(model.score_text(p, c), [float(yes / (yes + no))], rtol=1e-4)


def test_mixed_length_batches_score_like_one_by_one(fitted, splits):
    model = fitted("preference")
    examples = splits["preference"]["test"].examples[:6]
    p, c = [], []
    for k, e in enumerate(examples):  # profiles of very different lengths
        r = model.renderer.render(e.profile.replace_history(e.profile.history[-(1 + 2 * k) :]), e.candidates[0])
        p.append(r.profile_text)
        c.append(r.candidate_text)
    lengths = {len(model.prompt_ids(a, b)) for a, b in zip(p, c)}
    assert len(lengths) == len(p)
    batched = model.score_full(p, c)
    alone = np.array([model.score_full([a], [b])[0] for a, b in zip(p, c)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_prefix_cache_equals_the_uncached_scores(fitted, splits):
    model = fitted("ranking")
    ex = splits["ranking"]["test"].examples[0]
    p, c = model.render_pairs([ex.profile], [ex.candidates])
    assert len(set(len(model.suffix_ids(t)) for t in c)) > 1  # suffixes of mixed lengths
    cached = model.score_from_prefix(p[0], c)
    full = model.score_full(p, c)
    np.testing.assert_allclose(cached, full, atol=1e-4)
    assert (np.argsort(-cached, kind="stable") == np.argsort(-full, kind="stable")).all()


def test_zero_shot_needs_no_training(splits):
    model = CausalLM(**{**TINY, "max_train_examples": 0}).fit(splits["preference"]["train"], seed=0)
    assert not model.trained and model.history == []
    scores = model.score(*_batch(splits["preference"]["test"]))
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("lora", [False, True])
def test_save_load_gives_identical_scores(lora, fitted, splits, tmp_path):
    model = fitted("preference", lora=lora)
    profiles, candidates = _batch(splits["preference"]["test"])
    model.invalidate_cache()
    before = model.score(profiles, candidates)
    model.save(tmp_path)
    assert not list(tmp_path.rglob("*.bin")) and list(tmp_path.rglob("*.safetensors"))
    if lora:
        assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    loaded = Recommender.load(tmp_path)
    assert type(loaded) is CausalLM and loaded.card == model.card
    np.testing.assert_allclose(loaded.score(profiles, candidates), before, rtol=1e-5, atol=1e-6)


def test_lora_trains_only_adapters(fitted):
    model = fitted("preference", lora=True)
    trainable = [n for n, p in model.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_gradient_hooks(fitted, splits):
    model = fitted("preference")
    profiles, candidates = _batch(splits["preference"]["test"])
    base, forward = model.embedding_forward(profiles, candidates)
    x = base["tokens"].clone().requires_grad_(True)
    out = forward({"tokens": x})
    out.sum().backward()
    assert out.shape == (3, 1) and x.grad.abs().sum() > 0
    p, c = model.render_pairs(profiles, candidates)
    tg = model.token_gradients(p, c, targets=[1, 0, 1])
    assert tg.grads.shape[:2] == tg.input_ids.shape and set(tg.segment.unique().tolist()) == {-1, 0, 1}
    row = 0
    for j in torch.nonzero(tg.segment[row] == 1).ravel().tolist():  # offsets index the candidate text
        s, e = tg.offsets[row, j].tolist()
        assert 0 <= s <= e <= len(c[row])
    np.testing.assert_allclose(tg.scores.numpy(), model.score_text_logits(p, c), atol=1e-5)


def test_unknown_backbone_gives_a_one_line_error(monkeypatch, splits):
    monkeypatch.setattr(backbones, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(backbones.BackboneError, match="no-such-org/no-such-llm") as err:
        CausalLM(backbone="no-such-org/no-such-llm", max_train_examples=0).fit(splits["preference"]["train"])
    assert "\n" not in str(err.value)


def test_unreadable_gguf_files_give_a_one_line_error_naming_them(tmp_path):
    gguf = pytest.importorskip("gguf")
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(backbones.BackboneError, match="garbage.gguf: not a readable GGUF file") as err:
        causal_backbones.load_causal_lm(str(garbage))
    assert "\n" not in str(err.value)
    # A valid GGUF container that holds no model: readable by gguf, not loadable as a causal LM.
    empty = tmp_path / "empty.gguf"
    writer = gguf.GGUFWriter(str(empty), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert causal_backbones.gguf_file_type(empty) == "unknown"
    with pytest.raises(backbones.BackboneError, match="empty.gguf: cannot load this GGUF file") as err:
        causal_backbones.load_causal_lm(str(empty))
    assert "\n" not in str(err.value)
    with pytest.raises(backbones.BackboneError, match="no such GGUF file"):
        causal_backbones.load_causal_lm(str(tmp_path / "missing.gguf"))


@pytest.mark.slow  # loads a real dataset first (a minute on the shared CPU)
def test_cli_names_an_unreadable_gguf_backbone_in_one_line(shared_data, tmp_path, capsys):
    from benchmark.cli import main

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 7)  # the magic, then a truncated header
    code = main(["train", "--dataset", str(shared_data / "ml-latest-small"), "--task", "preference", "--model", "causal-lm",
                 "--backbone", str(bad), "--max-train-examples", "0", "--max-eval-examples", "5",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("recrobust: error:") and "broken.gguf" in err and "\n" not in err


def test_the_model_card_goes_into_the_training_info(splits):
    from benchmark.experiment import train_model

    model, info = train_model(CausalLM(**{**TINY, "max_train_examples": 0}), splits["preference"], seed=0)
    assert info["backbone_card"] == model.card and info["backbone_card"]["name"] == "tiny-llama"


@pytest.mark.parametrize("attack", ["deepwordbug", "hotflip", "profile-swap", "embedding-fgsm"])
def test_every_attack_family_runs_on_it(attack, fitted, splits):
    from benchmark.experiment import run_attack

    model = fitted("preference")
    result = run_attack(model, splits["preference"]["test"], attack, seed=0, query_budget=30, max_examples=2,
                        progress=False)  # fmt: skip
    assert len(result.records) == 2 and result.summary["n_error"] == 0


@pytest.mark.parametrize("defense", ["embedding-at", "adv-augment"])
def test_defenses_train_it(defense, splits):
    from benchmark.experiment import train_model

    options = {"embedding-at": {"epochs": 1}, "adv-augment": {"rounds": 1, "attack_examples": 4, "attack_eval_examples": 2,
                                                       "eval_examples": 4, "attack_options": {"query_budget": 20}}}
    model, info = train_model(CausalLM(**{**TINY, "max_train_examples": 16}), splits["preference"], seed=0,
                              defense=defense, defense_options=options[defense])  # fmt: skip
    assert model.trained and np.isfinite(model.score(*_batch(splits["preference"]["test"]))).all()


def test_fine_tuned_preference_threshold_is_set_on_validation(splits, tmp_path):
    """As for every text model: after fit, 0.5 is the validation subset's most accurate cut
    (kept as logit_offset beside the weights, since the LM head has no bias), and it
    survives save/load."""
    from recommenders.llm import text_training as tt

    data = splits["preference"]
    model = CausalLM(**{**TINY, "max_valid_examples": 30}).fit(data["train"], data["valid"], seed=0)
    info = model.calibration
    assert info["valid_accuracy_calibrated"] >= info["valid_accuracy_at_0.5"]
    assert model.logit_offset == info["threshold_logit"]
    valid = [data["valid"].examples[i] for i in tt.seeded_subset(len(data["valid"].examples), 30, 0, salt=7)]
    probs = np.array([r[0] for r in model.score_examples(valid)])
    assert np.mean((probs >= 0.5) == np.array([e.label for e in valid])) == pytest.approx(info["valid_accuracy_calibrated"])
    model.save(tmp_path)
    np.testing.assert_allclose(Recommender.load(tmp_path).score_examples(valid)[0], model.score_examples(valid)[0],
                               rtol=1e-5)
