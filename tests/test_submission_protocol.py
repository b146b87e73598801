"""Submissions on the REAL built-in suites: evaluate -> submit -> leaderboard end to end with a
plug-in model (tests.plugin_model), and forged bundles rejected by recomputation.

The suite is sized down only through the submission's size override (the models entry,
outside the protocol hash), so the records carry the built-in quick protocol's identity.
Assertions do not depend on which models the built-in suite lists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmark import metrics
from benchmark import records as rec
from benchmark.leaderboard import build_leaderboard
from benchmark.suite import Catalog, load_suite
from benchmark.submissions import (SubmissionError, check_size_override, evaluate_submission, submission_suite,
                                   submit_bundle, validate_bundle)

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = "tests.plugin_model:ProfileMeanBlend"
SIZES = {"max_train_examples": 2000, "max_eval_examples": 40, "max_attack_examples": 8}  # > ATTACK_SAMPLE


def _card(path: Path, name="Profile Mean Blend") -> Path:
    path.write_text(yaml.safe_dump({
        "name": name, "authors": ["A. Tester"], "code_url": "https://example.org/pmb", "license": "MIT",
        "model_options": {"item_weight": 1.5},
        "reported": [{"dataset": "movielens-100k", "task": "preference", "robust": 0.99}]}))
    return path


def _rewrite_manifest(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = {p.relative_to(bundle).as_posix(): rec.sha256_file(p) for p in sorted(bundle.rglob("*"))
                         if p.is_file() and p.name != "manifest.json"}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _records(bundle: Path, kind: str, task: str):
    for path in sorted((bundle / "records").glob("*.json")):
        r = json.loads(path.read_text())
        if r["kind"] == kind and r["cell"]["task"] == task and r["status"] == "ok":
            yield path, r


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quick-submission")
    bundle = evaluate_submission(SPEC, _card(tmp / "card.yaml"), suite="quick", results_dir=tmp / "results",
                                 progress=False, sizes=SIZES)
    return tmp, bundle


def test_submission_suite_keeps_the_protocol_for_plugins_and_builtins():
    """Every built-in suite accepts a plug-in and a built-in model; restricted defences and
    sweeps move to the submitted model by capability; the protocol hash is the board's."""
    from benchmark.suite import available_suites

    catalog = Catalog.from_registries()
    for name in available_suites():
        ours = load_suite(name, check_names=False)  # structure only: its text attacks would import TextAttack
        for spec in (SPEC, "popularity", "bpr-mf"):
            sub = submission_suite(ours, spec, "sub", {}, catalog)
            assert sub.identity() == ours.identity()
            groups = sub.expand(catalog)
            assert groups and {g.train.model.label for g in groups} == {"sub"}
            caps = catalog.model_capabilities(spec)
            for g in groups:
                for a in g.attacks:  # attacks needing a capability reach only models that have it
                    assert a.attack.threat_model != "text" or caps.text_input
                    assert a.attack.threat_model != "embedding" or caps.differentiable
        if name == "quick":  # bpr-mf gets the adversarial training quick gives to differentiable models
            bpr = submission_suite(ours, "bpr-mf", "sub", {}, catalog)
            assert "embedding-at" in {g.train.defense.name for g in bpr.expand(catalog)}
        if name == "standard":  # adv-augment is scoped per model: BPR-MF's copy runs on every preference dataset
            bpr = submission_suite(ours, "bpr-mf", "sub", {}, catalog)
            assert {g.train.dataset.label for g in bpr.expand(catalog) if g.train.defense.name == "adv-augment"} == \
                {"movielens-100k", "movielens-latest-small"}
            # Embedding attacks are scoped per model too: a classic submission faces them on both tasks.
            assert {g.train.task for g in bpr.expand(catalog)
                    if any(c.attack.label == "embedding-pgd" for c in g.attacks)} == {"preference", "ranking"}
    with pytest.raises(SubmissionError, match="above the protocol"):
        check_size_override(load_suite("quick"), {"max_eval_examples": 10 ** 7})
    with pytest.raises(SubmissionError, match="may set only"):
        check_size_override(load_suite("quick"), {"num_negatives": 5})


def test_evaluate_submit_leaderboard_on_quick(evaluated):
    tmp, bundle = evaluated
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["suite"] == load_suite("quick").identity()  # the board's protocol, not a copy
    assert any(rel.startswith("models/") and rel.endswith(".safetensors") for rel in manifest["files"])
    results = tmp / "results"
    where = submit_bundle(bundle, results, verify_seed=7)
    report = json.loads((where / "verification.json").read_text())["rerun"]
    assert report["clean_examples"] > 0 and report["attack_examples"] > 0 and report["max_prob_deviation"] <= 1e-4
    assert not (where / "models").exists()  # weights are checked, not filed
    md = build_leaderboard(results, suite="quick", fmt="md")
    row = next(line for line in md.splitlines() if line.startswith("| Profile Mean Blend (submitted) | none"))
    assert "0.990 ⚠" in md.split("### movielens-100k — ranking")[0]  # reported vs verified, flagged
    assert row.count("|") > 6


def test_consistently_rewritten_bundle_is_rejected(evaluated, tmp_path):
    """Rows, summary metrics and every checksum rewritten together: only re-running the model
    can tell, and it names the record and the example."""
    _, bundle = evaluated
    forged = tmp_path / "forged"
    shutil.copytree(bundle, forged)
    path, record = next(_records(forged, "train", "preference"))
    rows = rec.read_examples(path, record)
    for r in rows:  # a perfect model
        r["prob"] = 0.99 if r["label"] == 1 else 0.01
        r["correct"] = True
    digest, count = rec.write_jsonl_atomic(path.with_name(record["per_example"]["file"]), rows)
    clean = metrics.preference_metrics(np.array([r["label"] for r in rows]), np.array([r["prob"] for r in rows]))
    record["metrics"]["clean"].update(clean)
    record["per_example"].update(sha256=digest, count=count)
    path.write_text(json.dumps(record))
    _rewrite_manifest(forged)
    validate_bundle(forged, rerun=False)  # consistent in itself: the summary check alone passes
    with pytest.raises(SubmissionError, match=rf"{path.name}: example \S+: submitted prob 0\.(99|01) but the model "
                                              r"scores"):
        validate_bundle(forged, verify_seed=1)

    # Summary metrics edited without their rows (checksums updated): recomputed and rejected.
    edited = tmp_path / "edited"
    shutil.copytree(bundle, edited)
    path, record = next(_records(edited, "attack", "ranking"))
    record["metrics"]["robust"]["ndcg@10"] = 1.0
    path.write_text(json.dumps(record))
    _rewrite_manifest(edited)
    with pytest.raises(SubmissionError, match=rf"{path.name}: robust ndcg@10 is 1.0 but the per-example rows give"):
        validate_bundle(edited, rerun=False)

    # A model whose weights were swapped: the re-scored examples disagree.
    swapped = tmp_path / "swapped"
    shutil.copytree(bundle, swapped)
    from safetensors.numpy import load_file, save_file

    weights = next((swapped / "models").glob("*/item_means.safetensors"))
    table = load_file(str(weights))["item_mean"]
    save_file({"item_mean": table[::-1].copy()}, str(weights))
    _rewrite_manifest(swapped)
    with pytest.raises(SubmissionError, match="but the model (scores|ranks)|re-running the attack gives"):
        validate_bundle(swapped, verify_seed=3)

    # Capabilities declared falsely (to dodge the text attacks, say) are caught.
    lying = tmp_path / "lying"
    shutil.copytree(bundle, lying)
    manifest = json.loads((lying / "manifest.json").read_text())
    manifest["model"]["capabilities"]["tasks"] = ["preference"]
    (lying / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SubmissionError, match="a cell that is not in the quick protocol|capabilities"):
        validate_bundle(lying)


def test_a_model_with_malformed_scores_fails_its_cells_by_name(tmp_path):
    """`evaluate` rejects a model that returns one column too few before any compute (the
    conformance check names the shape); and should such a model reach the runner, its
    clean evaluation checks the score matrix: every training cell fails, naming the model,
    the example and the shape, and no clean metric is computed."""
    from benchmark.runner import run_suite

    with pytest.raises(SubmissionError) as info:
        evaluate_submission("tests.plugin_model:BadShapeBlend", _card(tmp_path / "card.yaml", name="Bad Shape"),
                            suite="quick", results_dir=tmp_path / "results", progress=False, sizes=SIZES)
    assert "fails the conformance check" in str(info.value) and "score-shape" in str(info.value)

    catalog = Catalog.from_registries()
    ours = load_suite("quick", catalog=catalog)
    sub = submission_suite(ours, "tests.plugin_model:BadShapeBlend", "bad-shape", {}, catalog,
                           check_size_override(ours, SIZES))
    summary = run_suite(sub, tmp_path / "run", progress=False, catalog=catalog)
    text = summary.format()
    assert not summary.ok
    records = [json.loads(p.read_text()) for p in (tmp_path / "run" / "quick" / "records").glob("*.json")]
    trains = [r for r in records if r["kind"] == "train"]
    errors = " ".join((r.get("error") or {}).get("message", "") for r in trains)
    assert "ScoreError" in " ".join((r.get("error") or {}).get("type", "") for r in trains) or "ScoreError" in text
    assert "scores of shape (0,) for 1 candidate(s)" in errors and "scores of shape (99,) for 100 candidate(s)" in errors
    assert all(r["status"] != "ok" for r in trains) and not any((r.get("metrics") or {}).get("clean") for r in trains)
