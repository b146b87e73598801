"""The checks issue 15 added outside the bundle check itself: score matrices, loading as the
saved class, validation that builds every attack and defence, mathtext-safe plot labels, CLI
errors without tracebacks, and reproducible metric blocks (also with 2 threads)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from benchmark import records as rec
from benchmark.evaluation import ScoreError, evaluate
from benchmark.metrics import metric_differences
from benchmark.runner import run_suite
from benchmark.suite import SuiteError, load_suite
from benchmark.tasks import build_splits
from recommenders.base import Recommender
from recommenders.registry import create
from tests.fake_pipeline import FakePipeline, toy_suite
from tests.helpers import make_dataset
from tests.plugin_model import BadShapeBlend, OutOfRangeBlend, ProfileMeanBlend


@pytest.fixture(scope="module")
def splits():
    ds = make_dataset(n_users=30, n_items=40, per_user=12, seed=5)
    return {task: build_splits(ds, task, seed=0, history_len=5, num_negatives=15) for task in ("preference", "ranking")}


# --------------------------------------------------------------------------- 3. score checks


@pytest.mark.parametrize("cls, task, message", [
    (BadShapeBlend, "ranking", r"bad-shape-blend.*example \S+: scores of shape \(15,\) for 16 candidate"),
    (OutOfRangeBlend, "preference", r"out-of-range-blend.*example \S+: preference score 1\.\d+ is not a probability"),
])
def test_malformed_scores_fail_the_evaluation_naming_model_example_and_value(splits, cls, task, message):
    model = cls().fit(splits[task]["train"])
    with pytest.raises(ScoreError, match=message):
        evaluate(model, splits[task]["test"])
    if task == "ranking":  # the same model on the preference task (1 candidate) returns no column at all
        with pytest.raises(ScoreError, match=r"shape \(0,\) for 1 candidate"):
            evaluate(cls().fit(splits["preference"]["train"]), splits["preference"]["test"])


def test_non_finite_scores_fail(splits):
    model = ProfileMeanBlend().fit(splits["ranking"]["train"])
    model.item_mean[:] = np.nan
    with pytest.raises(ScoreError, match=r"profile-mean-blend.*non-finite score nan"):
        evaluate(model, splits["ranking"]["test"])
    ok = ProfileMeanBlend().fit(splits["ranking"]["train"])
    assert 0 <= evaluate(ok, splits["ranking"]["test"])["ndcg@10"] <= 1


# --------------------------------------------------------------------------- 4. load as the saved class


def test_a_saved_model_loads_as_the_class_that_saved_it(splits, tmp_path):
    model = ProfileMeanBlend().fit(splits["preference"]["train"])
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "recommender.json").read_text())
    meta["name"] = "popularity"  # the registry now maps its name to another class
    (tmp_path / "m" / "recommender.json").write_text(json.dumps(meta))
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is ProfileMeanBlend
    examples = splits["preference"]["test"].examples[:5]
    args = ([e.profile for e in examples], [e.candidates for e in examples])
    np.testing.assert_array_equal(loaded.score(*args), model.score(*args))
    assert type(Recommender.load(tmp_path / "m", expected="tests.plugin_model:ProfileMeanBlend")) is ProfileMeanBlend
    with pytest.raises(ValueError, match="refusing to load these weights into a different class"):
        Recommender.load(tmp_path / "m", expected="popularity")  # what a resumed popularity cell would ask


# --------------------------------------------------------------------------- 5. validation builds everything


def test_validation_builds_every_attack_and_defence_with_its_options(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "name": "bad", "version": "1", "datasets": ["movielens-100k"], "tasks": ["preference"], "seeds": [0],
        "models": ["popularity", "bpr-mf"],
        "defenses": ["none", {"name": "embedding-at", "models": ["bpr-mf"], "options": {"epsilon": "big"}},
                     {"name": "adv-augment", "options": {"rounds": 1, "colour": "red"}}],
        "attacks": [{"name": "profile-swap", "budget": 2, "options": {"pool_size": "ten"}},
                    {"name": "embedding-pgd", "options": {"epsilon": 0.1, "steps": "many"}}]}))
    with pytest.raises(SuiteError) as info:
        load_suite(str(bad))
    text = str(info.value)
    for field in ("defenses/1/options/epsilon", "defenses/2/options/colour", "attacks/0/options/pool_size",
                  "attacks/1/options/steps"):
        assert f"at {field}:" in text, text
    assert "'big'" in text and "'many'" in text


def test_text_attacks_refuse_unknown_options():
    from attacks.registry import create as create_attack

    with pytest.raises(ValueError, match=r"attack 'deepwordbug': unknown option 'colour'; valid options: masked_lm, "):
        create_attack("deepwordbug", query_budget=10, colour="red")
    assert create_attack("deepwordbug", query_budget=10, window=8).window == 8
    with pytest.raises(ValueError, match=r"unknown option 'windw' \(did you mean 'window'\?\)"):
        create_attack("deepwordbug", query_budget=10, windw=8)


# --------------------------------------------------------------------------- 6. plot labels


def test_plot_labels_are_escaped_for_mathtext(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from benchmark.plots import _plot_lines, escape_mathtext

    hostile = r"$\frac{a}{$ model"
    assert escape_mathtext(hostile) == r"\$\frac{a}{\$ model"
    paths = _plot_lines({hostile: {1.0: [0.5], 2.0: [0.4]}}, f"title {hostile}", "budget", "acc $x", tmp_path / "p")
    assert all(p.stat().st_size > 0 for p in paths)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_title(hostile)  # unescaped, the same text breaks the renderer
    with pytest.raises(ValueError):
        fig.canvas.draw()
    plt.close(fig)


# --------------------------------------------------------------------------- 7. CLI errors


def test_cli_user_errors_are_one_line_and_exit_non_zero(tmp_path, capsys):
    from benchmark.cli import main

    assert main(["run", "--jobs", "0", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--jobs must be >= 1" in err and "Traceback" not in err

    garbage = tmp_path / "u.data"
    garbage.write_bytes(b"\x00\x01 not a dataset\n")
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "version": "1", "datasets": [str(garbage)], "tasks": ["preference"],
                                     "seeds": [0], "models": ["popularity"],
                                     "attacks": [{"name": "rating-flip", "budget": 1}]}))
    assert main(["run", "--suite", str(suite), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("recrobust: error: dataset") and "u.data" in err, err

    assert main(["leaderboard", "--results", str(tmp_path / "empty")]) == 1
    assert "no result records" in capsys.readouterr().err

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("recrobust ")


# --------------------------------------------------------------------------- 8. determinism


@pytest.mark.parametrize("name, options", [
    ("bpr-mf", {"factors": 8, "epochs": 2, "batch_size": 64, "progress": False}),
    ("sasrec", {"hidden": 16, "layers": 1, "heads": 2, "epochs": 1, "batch_size": 64, "progress": False}),
])
def test_same_seed_same_metric_blocks_with_two_threads(splits, name, options):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for task in ("preference", "ranking"):
            s = splits[task]
            one = evaluate(create(name, **options).fit(s["train"], s["valid"], seed=1), s["test"])
            two = evaluate(create(name, **options).fit(s["train"], s["valid"], seed=1), s["test"])
            assert metric_differences(one, two) == []
            exact = {k for k in one if k not in ("log_loss", "auc")}  # the documented tolerances cover these two
            assert {k: one[k] for k in exact} == {k: two[k] for k in exact}
    finally:
        torch.set_num_threads(before)


def test_metric_differences_uses_the_documented_tolerances():
    assert metric_differences({"log_loss": 0.7, "accuracy": 0.5}, {"log_loss": 0.7 + 5e-9, "accuracy": 0.5}) == []
    assert metric_differences({"accuracy": 0.5}, {"accuracy": 0.502}) == ["accuracy 0.5 vs 0.502 (tolerance 1e-09)"]


def test_resume_that_must_retrain_checks_the_model_is_the_recorded_one(tmp_path):
    """A resumed run whose saved model vanished retrains it; if the retrained model's clean
    metrics are not the recorded ones, its pending attacks are not run on it."""
    suite = toy_suite(tasks=["preference"], defenses=["none"], models=["popularity"])
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(suite))
    from benchmark.suite import parse_suite, check_suite

    def fresh():
        return check_suite(parse_suite(yaml.safe_load(path.read_text()), str(path)), FakePipeline().catalog())

    assert run_suite(fresh(), tmp_path, pipeline=FakePipeline(), progress=False, code_version="t").ok
    records = {p: json.loads(p.read_text()) for p in (tmp_path / "toy" / "records").glob("*.json")}
    train_path, train = next((p, r) for p, r in records.items() if r["kind"] == "train")
    attack_path = next(p for p, r in records.items() if r["kind"] == "attack")

    def lose_model_and_one_attack():
        shutil.rmtree(tmp_path / "toy" / "models")
        attack_path.unlink()

    recorded = train_path.read_bytes()
    lose_model_and_one_attack()  # same seed, same fake model: retrained identically, attack re-run
    again = run_suite(fresh(), tmp_path, pipeline=FakePipeline(), progress=False, code_version="t")
    assert again.ok and again.completed == 1 and (tmp_path / "toy" / "models").is_dir()
    assert train_path.read_bytes() == recorded  # retrained for its weights: the record (committed, say) is kept

    lose_model_and_one_attack()
    train = json.loads(train_path.read_text())
    train["metrics"]["clean"]["accuracy"] += 0.1  # the record says another model was trained
    rec.write_json_atomic(train_path, train)
    third = run_suite(fresh(), tmp_path, pipeline=FakePipeline(), progress=False, code_version="t")
    assert not third.ok
    assert any("retrained model is not the recorded one" in f["error"] and "UpstreamFailed" in f["error"]
               for f in third.failed)
    assert json.loads(train_path.read_text())["status"] == "ok"  # no failure written over the finished record
