"""prune-records: the records of cells a changed protocol no longer holds are listed and
removed (record, per-example file, saved model); the grid's own records stay and the
leaderboard built from what is left is the same."""

from __future__ import annotations

import shutil

import pytest

from benchmark import records as rec
from benchmark.leaderboard import build_leaderboard
from benchmark.pruning import remove_stale, stale_records, summarize
from benchmark.runner import run_suite
from benchmark.suite import SuiteError, check_suite, parse_suite
from tests.fake_pipeline import FakePipeline, toy_suite


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    pipeline = FakePipeline(examples=60)
    suite = check_suite(parse_suite(toy_suite(), "toy.yaml"), pipeline.catalog())
    assert run_suite(suite, root, pipeline=pipeline, progress=False, code_version="t").ok
    return root, pipeline


def _changed(pipeline, **overrides):
    """The toy protocol after a change: BPR-MF retrained with other options."""
    raw = toy_suite(models=["popularity", {"name": "bpr-mf", "options": {"factors": 4}}], **overrides)
    return check_suite(parse_suite(raw, "toy.yaml"), pipeline.catalog())


def test_an_unchanged_grid_has_nothing_stale(run):
    root, pipeline = run
    suite = check_suite(parse_suite(toy_suite(), "toy.yaml"), pipeline.catalog())
    assert stale_records(root / "toy", suite, catalog=pipeline.catalog()) == []


def test_a_changed_models_records_are_listed_and_removed_with_their_files(run, tmp_path):
    root, pipeline = run
    work = tmp_path / "results"
    shutil.copytree(root, work)
    run_dir = work / "toy"
    before = rec.load_records(run_dir, strict=True)[0]
    suite = _changed(pipeline)
    stale = stale_records(run_dir, suite, catalog=pipeline.catalog())
    bpr = [r for _, r in before if r["cell"]["model"]["label"] == "bpr-mf"]
    assert len(stale) == len(bpr) > 0 and {e.model for e, _ in stale} == {"bpr-mf"}
    assert summarize(stale) == [("bpr-mf", "toy-a", len(bpr))]
    model_dirs = [run_dir / r["model_dir"] for _, r in stale if r.get("model_dir")]
    examples = [e.path.with_name(r["per_example"]["file"]) for e, r in stale if r.get("per_example")]
    assert model_dirs and all(d.is_dir() for d in model_dirs) and examples

    assert remove_stale(run_dir, stale) == len(bpr)
    left = rec.load_records(run_dir, strict=True)[0]  # what stays is intact
    assert {r["cell"]["model"]["label"] for _, r in left} == {"popularity"}
    assert len(left) == len(before) - len(bpr)
    assert not any(d.exists() for d in model_dirs) and not any(f.exists() for f in examples)
    # The board of the changed protocol read the same records before the prune.
    assert build_leaderboard(work, suite=suite, fmt="csv") == build_leaderboard(root, suite=suite, fmt="csv")


def test_the_model_filter_and_unknown_labels(run):
    root, pipeline = run
    suite = _changed(pipeline)
    assert stale_records(root / "toy", suite, models=["popularity"], catalog=pipeline.catalog()) == []
    with pytest.raises(SuiteError, match=r"--models: no model labelled 'sasrec' in suite toy; its models are popularity"):
        stale_records(root / "toy", suite, models=["sasrec"], catalog=pipeline.catalog())


def test_prune_command_names_a_missing_results_folder(run, tmp_path, capsys):
    from benchmark.cli import main

    root, _ = run
    missing = tmp_path / "nowhere"
    assert main(["prune-records", str(missing), "--suite", "quick"]) == 2
    assert f"no results folder {missing}" in capsys.readouterr().err
    # The model filter is named as run's is, and an unknown label is a one-line error.
    assert main(["prune-records", str(root / "toy"), "--suite", "quick", "--models", "nope", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--models: no model labelled 'nope' in suite quick" in err and "Traceback" not in err
