"""Submissions: evaluate on the fixed protocol, validate and file bundles, hostile input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from benchmark import records as rec
from benchmark import suite as suite_mod
from benchmark.leaderboard import build_leaderboard
from benchmark.runner import run_suite
from benchmark.submissions import (SubmissionError, evaluate_submission, load_card, slugify, submission_dir,
                                   submit_bundle, validate_bundle)
from tests.fake_pipeline import FakePipeline, toy_suite

SPEC = "tests.fake_pipeline:SubmittedModel"
HOSTILE = "<script>alert(1)</script> ../../etc \\input{/etc/passwd} | **x**"


@pytest.fixture
def builtin_toy(tmp_path, monkeypatch):
    """Make the toy suite a built-in (submissions only accept built-in protocols)."""
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "toy.yaml").write_text(yaml.safe_dump(toy_suite(tasks=["preference"], defenses=["none", "profile-augment"])))
    monkeypatch.setattr(suite_mod, "SUITES_DIR", suites)
    return suites


def _card(path: Path, **overrides) -> Path:
    card = {"name": "My Robust Rec", "authors": ["A. Author"], "paper_url": "https://example.org/paper",
            "license": "MIT", "model_options": {"factors": 4},
            "reported": [{"dataset": "toy-a", "task": "preference", "robust": 0.99, "clean": 0.9}]}
    card.update(overrides)
    path.write_text(yaml.safe_dump(card, allow_unicode=True))
    return path


@pytest.fixture
def bundle(tmp_path, builtin_toy):
    card = _card(tmp_path / "card.yaml")
    return evaluate_submission(SPEC, card, suite="toy", results_dir=tmp_path / "results", progress=False,
                               pipeline=FakePipeline(), code_version="t")


def _rewrite_manifest(bundle: Path, mutate=None) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    if mutate:
        mutate(manifest)
    files = {}
    for p in sorted(bundle.rglob("*")):
        rel = p.relative_to(bundle).as_posix()
        if p.is_file() and rel != "manifest.json":
            files[rel] = rec.sha256_file(p)
    manifest["files"] = files
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_evaluate_then_submit_files_it_and_the_leaderboard_shows_it(tmp_path, bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["slug"] == "my-robust-rec" and manifest["suite"]["name"] == "toy"
    assert not list(bundle.rglob("*.safetensors")) and (bundle / "card.yaml").is_file()
    results = tmp_path / "results"
    # Our own baseline run on the same protocol.
    assert run_suite("toy", results, pipeline=FakePipeline(), progress=False, code_version="t").ok
    where = submit_bundle(bundle, results, pipeline=FakePipeline(), rerun=False)
    assert where == (results / "submissions" / "my-robust-rec").resolve()
    md = build_leaderboard(results, suite="toy", fmt="md")
    assert "My Robust Rec (submitted)" in md and "popularity" in md
    # The card reports robust 0.99: far above ours, so flagged.
    assert "⚠" in md and "mean robust 0.990" in md
    csv = build_leaderboard(results, suite="toy", fmt="csv")
    assert "my-robust-rec" in csv
    with pytest.raises(SubmissionError, match="filed already"):
        submit_bundle(bundle, results, pipeline=FakePipeline(), rerun=False)


def test_honest_reported_figure_is_not_flagged(tmp_path, builtin_toy):
    results = tmp_path / "results"
    card = _card(tmp_path / "card.yaml", reported=[{"dataset": "toy-a", "task": "preference", "robust": 0.0}])
    b = evaluate_submission(SPEC, card, suite="toy", results_dir=results, progress=False, pipeline=FakePipeline(),
                            code_version="t")
    submit_bundle(b, results, pipeline=FakePipeline(), rerun=False)
    assert "⚠" not in build_leaderboard(results, suite="toy", fmt="md").split("### ")[1].split("\n\n")[1]


def test_hostile_card_is_escaped_everywhere_and_cannot_escape_results(tmp_path, builtin_toy):
    results = tmp_path / "results"
    card = _card(tmp_path / "card.yaml", name=HOSTILE, description="<img src=x onerror=alert(1)>")
    b = evaluate_submission(SPEC, card, suite="toy", results_dir=results, progress=False, pipeline=FakePipeline(),
                            code_version="t")
    where = submit_bundle(b, results, pipeline=FakePipeline(), rerun=False)
    assert where.parent == (results / "submissions").resolve() and ".." not in where.name
    out = tmp_path / "lb"
    md = build_leaderboard(results, suite="toy", fmt="md", out_dir=out, plots=False)
    assert "<script" not in md and "&lt;script&gt;" in md and "\\*\\*x\\*\\*" in md and "\\|" in md
    assert "<script" not in (out / "leaderboard.html").read_text()
    tex = (out / "leaderboard.tex").read_text()
    assert "\\input{" not in tex and "\\textbackslash{}input\\{/etc/passwd\\}" in tex


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("license"), "license"),
    (lambda c: c.update(paper_url="javascript:alert(1)"), "paper_url"),
    (lambda c: c.pop("paper_url"), "paper_url"),
    (lambda c: c.update(authors=[]), "authors"),
    (lambda c: c.update(name="../../"), "no letters or digits"),
    (lambda c: c.update(reported=[{"dataset": "x", "task": "preference", "robust": float("nan")}]), "robust"),
])
def test_bad_cards_are_rejected_with_the_field(tmp_path, change, message):
    card = {"name": "ok", "authors": ["a"], "paper_url": "https://x.org", "license": "MIT"}
    change(card)
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    with pytest.raises(SubmissionError, match=message):
        load_card(path)


def test_slug_and_target_folder_never_leave_results(tmp_path):
    assert slugify("../../etc/passwd") == "etc-passwd"
    assert slugify("Ünïcode Model v2") == "unicode-model-v2"
    for bad in ("../x", "a/b", "..", ".hidden", ""):
        with pytest.raises(SubmissionError):
            submission_dir(tmp_path, bad)


def test_tampered_bundles_are_rejected(tmp_path, bundle):
    def fresh(name):
        target = tmp_path / name
        shutil.copytree(bundle, target)
        return target

    # A NaN smuggled into a metric (checksums updated so only the content check can catch it).
    b = fresh("nan")
    rf = next((b / "records").glob("*.json"))
    rf.write_text(rf.read_text().replace('"accuracy": 0.', '"accuracy": NaN, "x": 0.', 1))
    _rewrite_manifest(b)
    with pytest.raises(SubmissionError, match="unreadable record|non-finite"):
        validate_bundle(b, pipeline=FakePipeline(), rerun=False)

    # A missing cell.
    b = fresh("missing")
    victim = next(p for p in (b / "records").glob("*.json") if json.loads(p.read_text())["kind"] == "attack")
    victim.unlink()
    victim.with_name(victim.stem + ".examples.jsonl").unlink()
    _rewrite_manifest(b)
    with pytest.raises(SubmissionError, match="incomplete: 1 of"):
        validate_bundle(b, pipeline=FakePipeline(), rerun=False)

    # Edited numbers without updating the checksums.
    b = fresh("edited")
    rf = next((b / "records").glob("*.json"))
    rf.write_text(rf.read_text().replace('"seed": 0', '"seed": 0 ', 1))
    with pytest.raises(SubmissionError, match="sha256"):
        validate_bundle(b, pipeline=FakePipeline(), rerun=False)

    # Another protocol version.
    b = fresh("version")
    _rewrite_manifest(b, lambda m: m["suite"].update(version="0-old"))
    with pytest.raises(SubmissionError, match="protocol"):
        validate_bundle(b, pipeline=FakePipeline(), rerun=False)

    # A pickle (or anything else) in the bundle, and a symlink.
    b = fresh("pickle")
    (b / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(SubmissionError, match="unexpected file"):
        validate_bundle(b, pipeline=FakePipeline(), rerun=False)
    b = fresh("link")
    (b / "records" / "0000000000000000.json").symlink_to("/etc/passwd")
    with pytest.raises(SubmissionError, match="symbolic"):
        validate_bundle(b, pipeline=FakePipeline(), rerun=False)

    # Records whose schema is broken (a field removed), checksums updated.
    b = fresh("schema")
    rf = next((b / "records").glob("*.json"))
    data = json.loads(rf.read_text())
    del data["environment"]
    rf.write_text(json.dumps(data))
    _rewrite_manifest(b)
    with pytest.raises(SubmissionError, match="environment"):
        validate_bundle(b, pipeline=FakePipeline(), rerun=False)

    validate_bundle(bundle, pipeline=FakePipeline(), rerun=False)  # the untouched bundle passes


def test_evaluate_only_runs_builtin_protocols(tmp_path, builtin_toy):
    card = _card(tmp_path / "card.yaml")
    custom = tmp_path / "mine.yaml"
    custom.write_text(yaml.safe_dump(toy_suite(seeds=[7])))
    with pytest.raises(SubmissionError, match="built-in"):
        evaluate_submission(SPEC, card, suite=str(custom), results_dir=tmp_path, pipeline=FakePipeline())


def test_evaluate_rejects_a_model_failing_the_conformance_check_before_any_cell(tmp_path, builtin_toy, monkeypatch):
    train_log = tmp_path / "train.log"
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(train_log))
    monkeypatch.setenv("FAKE_CONFORMANCE_FAIL", "save-load")
    card = _card(tmp_path / "card.yaml")
    with pytest.raises(SubmissionError, match=r"conformance check(.|\n)*FAIL save-load"):
        evaluate_submission(SPEC, card, suite="toy", results_dir=tmp_path / "results", progress=False,
                            pipeline=FakePipeline(), code_version="t")
    assert not train_log.exists()  # no compute spent
    assert not (tmp_path / "results" / ".evaluations").exists()
