"""Runner: records, resume, atomicity under SIGKILL, failures, determinism, executors.

Most tests use the fast fake pipeline (tests/fake_pipeline.py); one runs the real pipeline
on a small slice of MovieLens-latest-small.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark import records as rec
from benchmark.leaderboard import build_leaderboard
from benchmark.runner import RunnerError, run_suite
from benchmark.suite import SuiteError, check_suite, parse_suite
from tests.fake_pipeline import FakePipeline, toy_suite

TESTS = Path(__file__).resolve().parent


def _suite(**overrides):
    pipeline = FakePipeline()
    suite = parse_suite(toy_suite(**overrides), "toy.yaml")
    return check_suite(suite, pipeline.catalog()), pipeline


def _records(run_dir: Path) -> dict[str, dict]:
    return {p.stem: rec.read_record(p) for p in sorted((run_dir / "records").glob("*.json"))}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def logs(tmp_path, monkeypatch):
    train, attack = tmp_path / "train.log", tmp_path / "attack.log"
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(train))
    monkeypatch.setenv("FAKE_ATTACK_LOG", str(attack))
    return train, attack


def test_run_writes_schema_valid_records_and_reuses_each_model(tmp_path, logs):
    suite, pipeline = _suite()
    summary = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    groups = suite.expand(pipeline.catalog())
    n_attacks = sum(len(g.attacks) for g in groups)
    assert summary.total == len(groups) + n_attacks and summary.ok
    assert summary.completed == summary.total and summary.trainings == len(groups)
    records = _records(tmp_path / "toy")
    assert len(records) == summary.total
    # One training per (dataset, task, model, defense, seed); every attack reuses a saved model.
    assert len(_lines(logs[0])) == len(groups)
    trains = {cid: r for cid, r in records.items() if r["kind"] == "train"}
    for r in records.values():
        assert rec.validate_record(r) == []
        if r["kind"] == "attack":
            assert r["train_id"] in trains
            assert (tmp_path / "toy" / "models" / r["train_id"] / "recommender.json").is_file()
            rows = rec.read_examples(tmp_path / "toy" / "records" / f"{r['cell_id']}.json", r)
            assert len(rows) == r["per_example"]["count"] == r["metrics"]["attack"]["examples"]
            assert "mean_seconds" not in r["metrics"]["attack"] and "mean_seconds" in r["timings"]
    # Defense curves land in the training record.
    defended = [r for r in trains.values() if r["cell"]["defense"]["name"] != "none"]
    assert defended and all(len(r["training"]["rounds"]) == 3 for r in defended)
    assert (tmp_path / "toy" / "suite.yaml").is_file()
    log_files = list((tmp_path / "toy" / "logs").glob("run-*.log"))
    assert len(log_files) == 1 and "ok" in log_files[0].read_text()

    again = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    assert again.skipped == again.total and again.completed == 0 and again.trainings == 0
    assert len(_lines(logs[0])) == len(groups)  # nothing retrained


def test_two_runs_with_one_seed_give_identical_metric_blocks(tmp_path):
    suite, pipeline = _suite()
    run_suite(suite, tmp_path / "a", pipeline=pipeline, progress=False, code_version="t")
    run_suite(suite, tmp_path / "b", pipeline=pipeline, progress=False, code_version="t")
    a, b = _records(tmp_path / "a" / "toy"), _records(tmp_path / "b" / "toy")
    assert a.keys() == b.keys()
    for cid in a:
        assert a[cid]["metrics"] == b[cid]["metrics"], cid
        assert a[cid].get("training") == b[cid].get("training")
        assert a[cid]["cell"] == b[cid]["cell"]
    # Timings are real measurements kept apart (they differ between runs).
    assert any(a[c]["timings"] != b[c]["timings"] for c in a)


def test_cell_ids_change_with_config_code_and_data(tmp_path):
    suite, pipeline = _suite()
    run_suite(suite, tmp_path / "a", pipeline=pipeline, progress=False, code_version="v1")
    run_suite(suite, tmp_path / "b", pipeline=pipeline, progress=False, code_version="v2")
    other, _ = _suite(datasets=["toy-b"])
    run_suite(other, tmp_path / "c", pipeline=pipeline, progress=False, code_version="v1")
    a, b, c = (set(_records(tmp_path / d / "toy")) for d in "abc")
    assert not (a & b) and not (a & c)


def test_failing_and_nan_cells_are_recorded_and_the_rest_complete(tmp_path, logs):
    suite, pipeline = _suite(models=["popularity", {"name": "bpr-mf", "label": "exploding", "options": {"raise_on_train": True}},
                                     {"name": "bpr-mf", "label": "nan-model", "options": {"nan_scores": True}}],
                             defenses=["none"])
    summary = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    records = _records(tmp_path / "toy")
    failed = {cid: r for cid, r in records.items() if r["status"] == "failed"}
    bad_models = {r["cell"]["model"]["label"] for r in failed.values()}
    assert bad_models == {"exploding", "nan-model"}
    assert all(r["cell"]["model"]["label"] == "popularity" for r in records.values() if r["status"] == "ok")
    ok_popularity = [r for r in records.values() if r["cell"]["model"]["label"] == "popularity"]
    assert ok_popularity and all(r["status"] == "ok" for r in ok_popularity)
    trains = [r for r in failed.values() if r["kind"] == "train"]
    assert any("exploded" in r["error"]["message"] and "Traceback" in r["error"]["traceback"] for r in trains)
    assert any("nan" in r["error"]["message"].lower() or "non-finite" in r["error"]["message"] for r in trains)
    assert all("training cell" in r["error"]["message"] for r in failed.values() if r["kind"] == "attack")
    assert not summary.ok and {f["cell_id"] for f in summary.failed} == set(failed)
    assert "FAILED" in summary.format()
    # A rerun retries failed cells only.
    n_train = len(_lines(logs[0]))
    again = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    assert len(_lines(logs[0])) - n_train == len(trains)
    assert again.skipped == len(records) - len(failed)


def test_a_raising_attack_fails_only_its_cell(tmp_path):
    suite, pipeline = _suite(attacks=[{"name": "profile-swap", "budget": 2},
                                      {"name": "rating-flip", "label": "crashing", "options": {"raise": True}}],
                             defenses=["none"], tasks=["preference"])
    summary = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    records = _records(tmp_path / "toy")
    assert {r["cell"]["attack"]["label"] for r in records.values() if r["status"] == "failed"} == {"crashing"}
    assert sum(r["status"] == "ok" for r in records.values()) == 4  # 2 trainings + 2 profile-swap cells
    assert len(summary.failed) == 2


def test_unavailable_is_not_a_failure(tmp_path):
    suite, pipeline = _suite(defenses=["none", "embedding-at"], tasks=["preference"])
    summary = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    assert summary.ok and summary.unavailable
    assert all("popularity" in u["cell"] and "embedding-at" in u["cell"] for u in summary.unavailable)


def test_corrupt_record_is_recomputed(tmp_path, logs):
    suite, pipeline = _suite(tasks=["preference"], defenses=["none"])
    run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    records = _records(tmp_path / "toy")
    train_id = next(c for c, r in records.items() if r["kind"] == "train")
    path = tmp_path / "toy" / "records" / f"{train_id}.json"
    path.write_text(path.read_text()[:100])  # truncated, as a non-atomic writer would leave it
    n = len(_lines(logs[0]))
    summary = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    assert summary.completed == 1 and len(_lines(logs[0])) == n + 1
    assert rec.read_record(path)["status"] == "ok"


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.runner import run_suite
    from benchmark.suite import parse_suite
    run_suite(parse_suite(toy_suite()), sys.argv[1], pipeline=FakePipeline(delay=0.05), progress=False,
              code_version="t")
""")


def test_sigkill_mid_run_then_resume_recomputes_nothing_finished(tmp_path, logs, monkeypatch):
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(repo=str(TESTS.parent)))
    killed_dir = tmp_path / "killed"
    env = {**os.environ, "FAKE_TRAIN_LOG": str(tmp_path / "killed-train.log"), "FAKE_ATTACK_LOG": str(tmp_path / "k.log")}
    proc = subprocess.Popen([sys.executable, str(script), str(killed_dir)], env=env, cwd=str(TESTS.parent))
    records_dir = killed_dir / "toy" / "records"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(records_dir.glob("*.json"))) < 8:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.stem: rec.read_record(p) for p in records_dir.glob("*.json")}  # every record parses and validates
    assert 8 <= len(done_before) < 40, "the run should have been killed mid-way"
    finished_trains = sum(r["kind"] == "train" for r in done_before.values())

    suite, pipeline = _suite()
    summary = run_suite(suite, killed_dir, pipeline=pipeline, progress=False, code_version="t")
    n_groups = len(suite.expand(pipeline.catalog()))
    assert summary.ok and summary.skipped == len(done_before)
    assert len(_lines(logs[0])) == n_groups - finished_trains  # no finished training redone
    assert len(_lines(logs[1])) == summary.total - n_groups - (len(done_before) - finished_trains)
    after = _records(killed_dir / "toy")
    for cid, r in done_before.items():
        assert after[cid] == r  # untouched
    assert not list(records_dir.glob(".*")) and not list((killed_dir / "toy" / "models").glob(".tmp-*"))

    run_suite(suite, tmp_path / "clean", pipeline=pipeline, progress=False, code_version="t")
    for fmt in ("csv", "md"):
        assert build_leaderboard(killed_dir, fmt=fmt, n_boot=200) == build_leaderboard(tmp_path / "clean", fmt=fmt,
                                                                                      n_boot=200)


def test_process_pool_gives_the_same_records(tmp_path):
    suite, pipeline = _suite(tasks=["preference"])
    run_suite(suite, tmp_path / "local", pipeline=pipeline, progress=False, code_version="t")
    summary = run_suite(suite, tmp_path / "pool", pipeline=pipeline, progress=False, code_version="t", jobs=2)
    assert summary.ok and summary.completed == summary.total
    a, b = _records(tmp_path / "local" / "toy"), _records(tmp_path / "pool" / "toy")
    assert a.keys() == b.keys() and all(a[c]["metrics"] == b[c]["metrics"] for c in a)


@pytest.mark.slow  # ~18 s: starting a local Ray instance
def test_ray_executor_gives_the_same_records(tmp_path):
    pytest.importorskip("ray")
    suite, pipeline = _suite(tasks=["preference"], defenses=["none"])
    run_suite(suite, tmp_path / "local", pipeline=pipeline, progress=False, code_version="t")
    summary = run_suite(suite, tmp_path / "ray", pipeline=pipeline, progress=False, code_version="t",
                        executor="ray", jobs=2)
    assert summary.ok and summary.completed == summary.total
    a, b = _records(tmp_path / "local" / "toy"), _records(tmp_path / "ray" / "toy")
    assert a.keys() == b.keys() and all(a[c]["metrics"] == b[c]["metrics"] for c in a)


def test_bad_executor_and_jobs_fail_before_work(tmp_path):
    suite, pipeline = _suite()
    with pytest.raises(RunnerError, match="executor"):
        run_suite(suite, tmp_path, pipeline=pipeline, executor="slurm")
    with pytest.raises(RunnerError, match="jobs"):
        run_suite(suite, tmp_path, pipeline=pipeline, jobs=0)
    assert not (tmp_path / "toy").exists()


def test_unreadable_dataset_fails_before_any_cell(tmp_path, logs):
    suite, pipeline = _suite()
    suite.datasets[0] = type(suite.datasets[0])(name="missing", label="missing")
    with pytest.raises(RunnerError, match="missing"):
        run_suite(suite, tmp_path, pipeline=pipeline, progress=False)
    assert not _lines(logs[0])


def _ml_slice(shared_data, folder: Path, users: int = 60) -> Path:
    import pandas as pd

    src = shared_data / "ml-latest-small"
    folder.mkdir(parents=True)
    ratings = pd.read_csv(src / "ratings.csv")
    ratings = ratings[ratings.userId.isin(sorted(ratings.userId.unique())[:users])]
    ratings.to_csv(folder / "ratings.csv", index=False)
    movies = pd.read_csv(src / "movies.csv")
    movies[movies.movieId.isin(ratings.movieId)].to_csv(folder / "movies.csv", index=False)
    return folder


@pytest.mark.slow  # ~20 s: two real runs
def test_real_pipeline_end_to_end_on_a_movielens_slice(shared_data, tmp_path):
    """popularity + itemknn on 60 users of ML-latest-small, one profile attack, both tasks."""
    import yaml

    data = _ml_slice(shared_data, tmp_path / "ml-slice")
    suite_file = tmp_path / "e2e.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "e2e", "version": "1", "datasets": [str(data)], "tasks": ["preference", "ranking"], "seeds": [0],
        "sizes": {"max_eval_examples": 40, "max_attack_examples": 8, "num_negatives": 49},
        "models": ["popularity", "itemknn"], "defenses": ["none"],
        "attacks": [{"name": "profile-swap", "budget": 2}]}))
    first = run_suite(str(suite_file), tmp_path / "a", progress=False)
    assert first.ok and first.total == 8 and first.completed == 8 and first.trainings == 4, first.format()
    records = _records(tmp_path / "a" / "e2e")
    for r in records.values():
        assert r["cell"]["dataset"]["label"] == "ml-slice" and len(r["cell"]["dataset"]["fingerprint"]) == 64
        if r["kind"] == "attack":
            assert r["metrics"]["attack"]["examples"] == 8 and r["metrics"]["robust"]
            rows = rec.read_examples(tmp_path / "a" / "e2e" / "records" / f"{r['cell_id']}.json", r)
            assert all(row["perturbation"]["profile_edits"] in (None, 0, 1, 2) for row in rows)
        else:
            assert r["metrics"]["clean"]["examples"] == 40
    # The saved models load through Recommender.load (JSON/safetensors, no pickle).
    from recommenders.base import Recommender

    model_dirs = list((tmp_path / "a" / "e2e" / "models").iterdir())
    assert len(model_dirs) == 4 and all(Recommender.load(d).task in ("preference", "ranking") for d in model_dirs)
    # Resume: nothing to do; a second run elsewhere: identical metric blocks.
    assert run_suite(str(suite_file), tmp_path / "a", progress=False).skipped == 8
    run_suite(str(suite_file), tmp_path / "b", progress=False)
    other = _records(tmp_path / "b" / "e2e")
    assert other.keys() == records.keys()
    assert all(other[c]["metrics"] == records[c]["metrics"] for c in records)
    md = build_leaderboard(tmp_path / "a", fmt="md")
    assert "ml-slice — preference" in md and "itemknn" in md and "profile-swap" in md


def test_tier_runs_only_its_models_and_the_other_tier_completes_the_run(tmp_path, logs):
    suite, pipeline = _suite(models=["popularity", "cross-encoder"], defenses=["none"])
    classic = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t", tier="classic")
    models = {r["cell"]["model"]["name"] for r in _records(tmp_path / "toy").values()}
    assert classic.ok and models == {"popularity"}
    text = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t", tier="text")
    assert text.ok and text.completed == text.total and text.skipped == 0
    whole = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    assert whole.skipped == whole.total == classic.total + text.total  # nothing left, nothing rerun
    with pytest.raises(RunnerError, match="unknown tier 'gpu'"):
        run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t", tier="gpu")


def test_models_option_runs_only_those_rows_and_names_an_unknown_label(tmp_path, logs):
    suite, pipeline = _suite(models=["popularity", "cross-encoder"], defenses=["none"])
    part = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t", models=["cross-encoder"])
    assert part.ok and {r["cell"]["model"]["name"] for r in _records(tmp_path / "toy").values()} == {"cross-encoder"}
    rest = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    assert rest.ok and rest.skipped == part.total and rest.skipped + rest.completed == rest.total
    with pytest.raises(SuiteError, match=r"--models: no model labelled 'bprmf' in suite toy; its models are popularity"):
        run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t", models=["bprmf"])


def test_train_only_trains_and_saves_every_model_and_the_next_run_attacks_them(tmp_path, logs):
    suite, pipeline = _suite(models=["popularity", "cross-encoder"], defenses=["none"])
    first = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t", train_only=True)
    records = _records(tmp_path / "toy")
    assert first.ok and records and {r["kind"] for r in records.values()} == {"train"}
    assert first.total == first.completed == first.trainings == len(records)
    assert all((tmp_path / "toy" / r["model_dir"]).is_dir() for r in records.values())
    rest = run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t")
    assert rest.ok and rest.trainings == 0  # the attacks use the saved models
    assert rest.skipped == len(records) and rest.completed == rest.total - len(records) > 0


def test_a_second_run_leaves_another_runs_fresh_temp_files_alone(tmp_path, logs):
    from benchmark.runner import STALE_TEMP_SECONDS

    suite, pipeline = _suite()
    records = tmp_path / "toy" / "records"
    records.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a live writer
    try:
        fresh = records / f".abc.json.{other.pid}.x1.tmp"
        old = records / f".def.json.{other.pid}.x2.tmp"
        dead = records / ".ghi.json.999999999.x3.tmp"  # no such process
        for path in (fresh, old, dead):
            path.write_text("a temp file")
        past = time.time() - STALE_TEMP_SECONDS - 60
        os.utime(old, (past, past))
        assert run_suite(suite, tmp_path, pipeline=pipeline, progress=False, code_version="t").ok
        assert fresh.exists() and not old.exists() and not dead.exists()
    finally:
        other.kill()
        other.wait()


_POOL_PARENT = r"""
import sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from benchmark.runner import _setup_worker_logging
from tests.test_runner import _sleep_and_report

with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_setup_worker_logging,
                         initargs=(None, 1)) as pool:
    pool.submit(_sleep_and_report, sys.argv[1]).result()
"""


def _sleep_and_report(path):
    import os
    import time

    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(120)


def test_pool_workers_end_when_the_run_is_killed(tmp_path):
    # A run killed by SIGTERM runs no clean-up; its pool workers must not go on writing
    # records unattended (they used to, for as long as their cells took).
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", _POOL_PARENT, str(pid_file)], cwd=Path(__file__).parents[1])
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = int(pid_file.read_text())
        os.kill(parent.pid, signal.SIGTERM)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError("the pool worker outlived the killed run")
    finally:
        parent.kill()
