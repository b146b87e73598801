"""Run a suite: expand it into cells, train each model once, attack it, write records.

Layout of a run (``<results>/<suite name>/``)::

    suite.yaml                      the validated suite (as run)
    records/<cell id>.json          one result record per cell (train and attack cells)
    records/<cell id>.examples.jsonl  per-example rows beside it (clean eval / attack records)
    models/<train cell id>/         the trained model (Recommender.save), reused by its attacks
    logs/run-<timestamp>.log        one log file per invocation

Cell ids hash the cell config, the dataset fingerprint and the code version (package
version + git commit). A cell whose record is valid and "ok" is skipped, so an interrupted
run resumes; failed and unavailable cells are retried. Records and models are written
atomically (temp + rename), so a SIGKILL leaves no half-written record. A failing cell
(exception, non-finite metric) gets a "failed" record with error and traceback and the run
goes on; RunSummary.failed lists them (the CLI exits non-zero). Timings hold wall seconds and
the process's CPU seconds per cell: on a shared machine the CPU figure is the one that
says what a cell costs.

Work is grouped by training cell (train once, then every attack on that model), and groups
run on one of three executors with identical records: "local" (in-process), "process"
(concurrent.futures process pool, ``jobs`` workers) and "ray" (Ray tasks; ``ray.init(address)``).
The experiment steps come from a Pipeline object, so tests substitute a fast fake.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from benchmark import records as rec
from benchmark.suite import (TIERS, AttackCell, AttackSpec, Catalog, CellGroup, DatasetSpec, DefenseSpec, ModelSpec,
                             Suite, TrainCell, check_suite, dump_suite, load_suite, model_tier)

EXECUTORS = ("local", "process", "ray")
LOGGER = "recrobust.run"
log = logging.getLogger(LOGGER)


class RunnerError(RuntimeError):
    """The run cannot start (bad executor, missing optional dependency, unreadable dataset)."""


class UpstreamFailed(RuntimeError):
    """An attack cell could not run because its training cell failed."""


class CellUnavailable(RuntimeError):
    """The cell cannot run here (defense/attack not applicable, data missing offline): recorded
    as "unavailable", not as a failure."""


# --------------------------------------------------------------------------- pipeline


class Pipeline:
    """The experiment steps the runner calls: the real ones (benchmark.experiment). Tests pass
    a subclass or any object with these methods. It must be importable by module name for the
    process and ray executors (it is sent to workers by reference)."""

    def catalog(self) -> Catalog:
        return Catalog.from_registries()

    def check_model(self, spec: str, options: dict):
        """The conformance report (recommenders.conformance) of a model spec with its options:
        `recrobust evaluate` runs it before any cell of a submission."""
        from recommenders.conformance import check_model

        return check_model(spec, options)

    def load_dataset(self, spec: DatasetSpec):
        from benchmark.data.load import load_dataset

        return load_dataset(spec.name, format=spec.format, meta=spec.meta)

    def fingerprint(self, dataset) -> str:
        from benchmark.data.load import dataset_fingerprint

        return dataset_fingerprint(dataset)

    def prepare(self, dataset, task: str, seed: int, sizes: dict) -> dict:
        from benchmark.experiment import prepare_task

        return prepare_task(dataset, task, seed=seed, history_len=sizes["history_len"],
                            num_negatives=sizes["num_negatives"], max_train_examples=sizes["max_train_examples"],
                            max_eval_examples=sizes["max_eval_examples"])

    def prepare_test(self, dataset, task: str, seed: int, sizes: dict):
        """prepare(...)["test"] without building the other splits (submission checks)."""
        from benchmark.experiment import prepare_task

        return prepare_task(dataset, task, seed=seed, history_len=sizes["history_len"],
                            num_negatives=sizes["num_negatives"], max_eval_examples=sizes["max_eval_examples"],
                            only=("test",))["test"]

    def train(self, model: ModelSpec, defense: DefenseSpec, splits: dict, seed: int):
        """(fitted model, training info dict) — info may hold per-round defense curves."""
        from attacks.defenses.registry import create as create_defense
        from benchmark.experiment import build_model, train_model

        instance = build_model(model.name, model.options)
        reason = create_defense(defense.name, **defense.options).unsupported_reason(instance)
        if reason:
            raise CellUnavailable(f"defense {defense.name!r} does not apply to {model.label!r}: {reason}")
        out = train_model(instance, splits, seed=seed, defense=defense.name, defense_options=defense.options)
        return out if isinstance(out, tuple) else (out, {})

    def evaluate(self, model, data) -> tuple[dict, list[dict]]:
        """(metrics, per-example rows with example_id)."""
        from benchmark.evaluation import evaluate

        metrics, per_example = evaluate(model, data, return_per_example=True)
        ids = [e.example_id for e in data.examples]
        rows = [{"example_id": ids[i], **{k: v[i] for k, v in per_example.items()}} for i in range(len(ids))]
        return metrics, rows

    def attack(self, model, data, attack: AttackSpec, seed: int, sizes: dict, progress: bool = False):
        """(summary dict, per-example record dicts, attack config dict)."""
        from attacks.base import AttackUnavailable
        from benchmark.experiment import run_attack

        try:
            result = run_attack(model, data, attack.name, seed=seed, budget=attack.budget,
                                query_budget=attack.query_budget, scope=attack.scope, goal=attack.goal,
                                max_examples=sizes["max_attack_examples"], options=attack.options, progress=progress)
        except AttackUnavailable as err:
            raise CellUnavailable(str(err)) from err
        return result.summary, [r.to_dict() for r in result.records], result.config

    def poison(self, model, splits: dict, cell: TrainCell, attack: AttackSpec, progress: bool = False):
        """A poisoning cell: (summary, per-(user, target) rows, config); the victim is retrained
        from scratch on train + fake users with the cell's model options, defense and seed.
        A promotion attack (item-promotion) instead rewrites each target's text against the
        fitted model; models without text input make it unavailable."""
        from attacks.base import AttackUnavailable
        from benchmark.experiment import is_promotion, run_poisoning, run_promotion

        if is_promotion(attack.name):  # one item-text rewrite against this model: nothing is retrained
            try:
                result = run_promotion(model, splits, attack.name, seed=cell.seed, options=attack.options,
                                       query_budget=attack.query_budget, progress=progress)
            except AttackUnavailable as err:
                raise CellUnavailable(str(err)) from err
            return result.summary, result.rows, result.config
        result = run_poisoning(model, splits, attack.name, seed=cell.seed, options=attack.options,
                               model_name=cell.model.name, model_options=cell.model.options,
                               defense=cell.defense.name, defense_options=cell.defense.options,
                               max_train_examples=cell.sizes.get("max_train_examples"), progress=progress)
        return result.summary, result.rows, result.config

    def save_model(self, model, directory: Path) -> None:
        model.save(directory)

    def load_model(self, directory: Path, expected: str | None = None):
        """The saved model, as the class that saved it; `expected` (the cell's model name)
        must be that class (a resumed run never attacks a different model)."""
        from recommenders.base import Recommender

        return Recommender.load(directory, expected=expected)


# --------------------------------------------------------------------------- summary


@dataclass
class RunSummary:
    suite: str
    run_dir: Path
    log_path: Path | None
    total: int = 0  # cells in the grid
    skipped: int = 0  # already done (resumed)
    completed: int = 0  # ok this run
    trainings: int = 0  # models trained this run
    failed: list[dict] = field(default_factory=list)  # {"cell_id", "cell", "error"}
    unavailable: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def format(self) -> str:
        lines = [f"suite {self.suite}: {self.total} cells — {self.skipped} already done, {self.completed} ran ok, "
                 f"{len(self.failed)} failed, {len(self.unavailable)} unavailable; {self.trainings} models trained; "
                 f"{self.seconds:.1f} s", f"results: {self.run_dir}"]
        if self.log_path:
            lines.append(f"log: {self.log_path}")
        for item in self.unavailable:
            lines.append(f"  unavailable {item['cell_id']} {item['cell']}: {item['error']}")
        for item in self.failed:
            lines.append(f"  FAILED {item['cell_id']} {item['cell']}: {item['error']}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- jobs


@dataclass
class GroupJob:
    """A training cell and its attack cells, with their ids and what is left to do."""

    group: CellGroup
    train_id: str
    train_config: dict
    attack_ids: list[str]
    attack_configs: list[dict]
    pending_train: bool
    pending_attacks: list[int]  # indices into group.attacks
    run_dir: str
    suite: dict  # record "suite" block
    code_version: str

    @property
    def n_pending(self) -> int:
        return int(self.pending_train) + len(self.pending_attacks)


def cell_id(kind: str, config: dict, code_version: str) -> str:
    return rec.content_hash({"kind": kind, "cell": config, "code_version": code_version})


def is_done(records_dir: Path, cid: str) -> bool:
    """A valid "ok" record exists (and its per-example file is intact)."""
    path = rec.record_path(records_dir, cid)
    if not path.is_file():
        return False
    try:
        return rec.read_record(path)["status"] == "ok"
    except rec.RecordError as err:
        log.warning("invalid record %s will be recomputed: %s", path, err)
        return False


def finished_cells(suite: Suite, results_dir: str | Path = "results", pipeline: "Pipeline | None" = None,
                   code_version: str | None = None) -> set[str]:
    """The cells of a checked `suite` (by ``describe()`` name) that have an "ok" record under
    ``<results_dir>/<suite name>/`` for this code version: what a resumed run would skip.
    Loads every dataset (cell ids hash its fingerprint); RunnerError when one cannot be."""
    pipeline = pipeline or Pipeline()
    run_dir = Path(results_dir) / suite.name
    done = set()
    for job in plan(suite, suite.expand(pipeline.catalog()), _fingerprints(pipeline, suite), run_dir,
                    code_version or rec.code_version()):
        if not job.pending_train:
            done.add(job.group.train.describe())
        pending = set(job.pending_attacks)
        done.update(a.describe() for i, a in enumerate(job.group.attacks) if i not in pending)
    return done


def _fingerprints(pipeline, suite: Suite) -> dict[str, str]:
    """Every dataset's fingerprint by label (loads each: bad data fails before any cell)."""
    fingerprints = {}
    for spec in suite.datasets:
        try:
            fingerprints[spec.label] = pipeline.fingerprint(_dataset(pipeline, spec))
        except Exception as err:
            raise RunnerError(f"dataset {spec.name!r}: {err}") from err
    return fingerprints


def plan(suite: Suite, groups: list[CellGroup], fingerprints: dict[str, str], run_dir: Path,
         code_version: str) -> list[GroupJob]:
    records_dir = run_dir / "records"
    jobs = []
    for g in groups:
        fp = fingerprints[g.train.dataset.label]
        tcfg = g.train.config(fp)
        tid = cell_id("train", tcfg, code_version)
        acfgs = [a.config(fp) for a in g.attacks]
        for c in acfgs:
            c["train_id"] = tid  # an attack cell depends on the exact training cell
        aids = [cell_id("attack", c, code_version) for c in acfgs]
        for c in acfgs:
            del c["train_id"]
        pending_attacks = [i for i, aid in enumerate(aids) if not is_done(records_dir, aid)]
        pending_train = not is_done(records_dir, tid)
        jobs.append(GroupJob(g, tid, tcfg, aids, acfgs, pending_train, pending_attacks, str(run_dir),
                             suite.identity(), code_version))
    return jobs


# --------------------------------------------------------------------------- executing one group

_DATASETS: dict[tuple, Any] = {}
_SPLITS: dict[tuple, Any] = {}


def _dataset(pipeline, spec: DatasetSpec):
    key = (spec.name, spec.format, spec.meta)
    if key not in _DATASETS:
        _DATASETS[key] = pipeline.load_dataset(spec)
    return _DATASETS[key]


def _splits(pipeline, cell: TrainCell):
    key = (cell.dataset.name, cell.task, cell.seed, rec.canonical_json(cell.sizes))
    if key not in _SPLITS:
        _SPLITS.clear()  # keep one task's splits in memory at a time
        _SPLITS[key] = pipeline.prepare(_dataset(pipeline, cell.dataset), cell.task, cell.seed, cell.sizes)
    return _SPLITS[key]


def _finite_or_fail(block: dict, required: list[str], what: str) -> None:
    for key in required:
        value = block.get(key)
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ValueError(f"{what}: metric {key!r} is {value!r} (non-finite or missing)")
    bad = [k for k, v in block.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(f"{what}: non-finite metric(s) {', '.join(bad)}")


def _training_block(info: dict) -> dict:
    info = rec.jsonable(dict(info or {}))
    rounds = info.pop("rounds", []) or []
    timing = {k: info.pop(k) for k in list(info) if "seconds" in k or k.endswith("_time")}
    return {"rounds": rounds, "info": info}, timing


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _payload(kind: str, record: dict, rows: list[dict] | None) -> dict:
    return {"kind": kind, "record": record, "rows": rows}


def _write_payload(run_dir: Path, payload: dict) -> None:
    """Per-example rows first, then the record naming their sha256: the record is the commit."""
    records_dir = run_dir / "records"
    record = payload["record"]
    if payload["rows"] is not None and record["status"] == "ok":
        digest, count = rec.write_jsonl_atomic(rec.examples_path(records_dir, record["cell_id"]), payload["rows"])
        record["per_example"] = {"file": rec.examples_path(records_dir, record["cell_id"]).name, "sha256": digest,
                                 "count": count}
    problems = rec.validate_record(record, where=record["cell_id"])
    if problems:  # a bug in record building: fail the cell rather than write an invalid record
        raise RuntimeError("record does not match the schema: " + "; ".join(problems[:3]))
    rec.write_json_atomic(rec.record_path(records_dir, record["cell_id"]), record)


def execute_group(job: GroupJob, pipeline, write: bool = True, progress: bool = False,
                  on_cell: Callable[[dict], None] | None = None) -> list[dict]:
    """Run what is pending in one group. Returns payloads ({"kind", "record", "rows"});
    with write=True each is written (atomically) as soon as its cell finishes."""
    run_dir = Path(job.run_dir)
    cell = job.group.train
    payloads: list[dict] = []

    def emit(payload: dict) -> None:
        if write:
            try:
                _write_payload(run_dir, payload)
            except Exception as err:  # e.g. an unserialisable metric: record the failure instead
                record = rec.failure(payload["record"], err, tb=traceback.format_exc())
                payload = _payload(payload["kind"], record, None)
                _write_payload(run_dir, payload)
        payloads.append(payload)
        if on_cell:
            on_cell(payload)

    if job.n_pending == 0:
        return payloads

    model_dir = run_dir / "models" / job.train_id
    model = None
    upstream_error: tuple[str, BaseException] | None = None
    needs_training = job.pending_train or not model_dir.is_dir()
    train_record = rec.base_record("train", job.train_id, job.suite, job.train_config, job.code_version)
    if needs_training:
        started, t0, cpu0 = _now(), time.perf_counter(), time.process_time()
        try:
            splits = _splits(pipeline, cell)
            log.info("training %s", cell.describe())
            model, info = pipeline.train(cell.model, cell.defense, splits, cell.seed)
            t1 = time.perf_counter()
            metrics, rows = pipeline.evaluate(model, splits["test"])
            t2 = time.perf_counter()
            metrics = rec.jsonable(metrics)
            _finite_or_fail(metrics, [_primary(cell.task)], f"clean evaluation of {cell.describe()}")
            if not job.pending_train:  # resuming without the saved model: the retrained one must be the same
                _same_as_recorded(run_dir, job.train_id, metrics)
            _save_model(pipeline, model, model_dir)
            training, train_timing = _training_block(info)
            train_record.update(metrics={"clean": metrics}, training=training,
                                model_dir=str(Path("models") / job.train_id))
            train_record["timings"] = {"started_at": started, "finished_at": _now(), "train_seconds": t1 - t0,
                                       "eval_seconds": t2 - t1,
                                       "cpu_seconds": time.process_time() - cpu0, **train_timing}
            if job.pending_train:
                emit(_payload("train", train_record, rows))
            else:  # retrained for its weights only: the recorded cell (perhaps committed) stays as it is
                log.info("retrained %s for its weights: same clean metrics as its record, which is kept",
                         cell.describe())
        # A retrain for weights that fails leaves the recorded training cell alone (its attack
        # cells carry the error): a finished record is never replaced by a failure.
        except CellUnavailable as err:
            upstream_error = ("unavailable", err)
            if job.pending_train:
                emit(_payload("train", rec.failure(train_record, err, status="unavailable"), None))
        except Exception as err:
            upstream_error = ("failed", err)
            if job.pending_train:
                emit(_payload("train", rec.failure(train_record, err, tb=traceback.format_exc()), None))
    elif job.pending_attacks:
        try:
            model = pipeline.load_model(model_dir, expected=cell.model.name)
        except Exception as err:
            upstream_error = ("failed", err)

    for i in job.pending_attacks:
        acell: AttackCell = job.group.attacks[i]
        record = rec.base_record("attack", job.attack_ids[i], job.suite, job.attack_configs[i], job.code_version,
                                 train_id=job.train_id)
        if upstream_error is not None:
            status, err = upstream_error
            cls = CellUnavailable if status == "unavailable" else UpstreamFailed
            wrapped = cls(f"training cell {job.train_id} {status}: {type(err).__name__}: {err}")
            emit(_payload("attack", rec.failure(record, wrapped, status=status), None))
            continue
        started, t0, cpu0 = _now(), time.perf_counter(), time.process_time()
        try:
            splits = _splits(pipeline, cell)
            if acell.attack.threat_model == "poisoning":  # retrains the victim on train + fake users
                summary, rows, attack_config = pipeline.poison(model, splits, cell, acell.attack, progress=progress)
            else:
                summary, rows, attack_config = pipeline.attack(model, splits["test"], acell.attack, cell.seed,
                                                               cell.sizes, progress=progress)
            clean, robust, rest, timing = rec.split_attack_summary(summary)
            if not robust:
                raise ValueError(f"attack {acell.attack.label} gave no robust metric "
                                 f"({rest.get('n_error', '?')} of {rest.get('examples', '?')} examples errored"
                                 + (f"; first error: {_first_error(rows)}" if _first_error(rows) else "") + ")")
            _finite_or_fail(robust, [], f"attack {acell.attack.label}")
            _finite_or_fail(clean, [], f"attack {acell.attack.label}")
            record["metrics"] = {"clean": clean, "robust": robust, "attack": {**rest, "config": rec.jsonable(attack_config)}}
            record["timings"] = {"started_at": started, "finished_at": _now(),
                                 "attack_seconds": time.perf_counter() - t0,
                                 "cpu_seconds": time.process_time() - cpu0, **timing}
            emit(_payload("attack", record, rows))
        except CellUnavailable as err:
            emit(_payload("attack", rec.failure(record, err, status="unavailable"), None))
        except Exception as err:
            emit(_payload("attack", rec.failure(record, err, tb=traceback.format_exc()), None))
    return payloads


def _same_as_recorded(run_dir: Path, train_id: str, metrics: dict) -> None:
    """Raise if a retrained model's clean metrics differ from the recorded ones beyond the
    reproducibility tolerance (benchmark.metrics.REPRODUCIBLE_TOL): its attack cells would
    otherwise attack a model other than the one whose clean figures are on record."""
    from benchmark.metrics import metric_differences

    path = rec.record_path(run_dir / "records", train_id)
    try:
        recorded = rec.read_record(path)["metrics"].get("clean") or {}
    except rec.RecordError:
        return
    diffs = metric_differences(recorded, metrics)
    if diffs:
        raise RuntimeError(f"the retrained model is not the recorded one ({path.name}): " + "; ".join(diffs))


def _first_error(rows) -> str | None:
    for r in rows or []:
        if isinstance(r, dict) and r.get("error"):
            return str(r["error"])
    return None


def _primary(task: str) -> str:
    from benchmark.metrics import PRIMARY_METRIC

    return PRIMARY_METRIC[task]


def _save_model(pipeline, model, model_dir: Path) -> None:
    """Save into a temp folder, then rename: a model folder exists only when complete."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_dir.parent / f".tmp-{model_dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    pipeline.save_model(model, tmp)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    os.replace(tmp, model_dir)


def _describe(payload: dict, job: GroupJob) -> str:
    r = payload["record"]
    if payload["kind"] == "train":
        return job.group.train.describe()
    return job.group.attacks[job.attack_ids.index(r["cell_id"])].describe()


# --------------------------------------------------------------------------- executors


def _setup_worker_logging(log_path: str | None, threads: int | None) -> None:
    """Process-pool initializer: same log file; share the cores among workers (set before
    torch is imported in the fresh interpreter)."""
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
    if log_path:
        _attach_file_handler(log_path)
    _exit_with_parent()


def _exit_with_parent(poll_seconds: float = 1.0) -> None:
    """A pool worker ends soon after the run that started it: a run killed by a signal
    (SIGTERM, a scheduler's time limit) runs no clean-up, and its workers would otherwise
    go on training and writing records into the results folder unattended. Writes are
    atomic, so a worker that stops mid-cell leaves no half record (only a temp file, which
    the next run's start-up removes)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _attach_file_handler(log_path: str) -> logging.Handler:
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(f"%(asctime)s pid{os.getpid()} %(levelname)s %(message)s"))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def _pool_task(job: GroupJob, pipeline) -> list[dict]:
    return execute_group(job, pipeline, write=True, progress=False)


def _run_local(jobs, pipeline, progress_bar, on_payload, progress):
    for job in jobs:
        # Attack bars over examples nest under the bar over cells (they do not stay on screen).
        execute_group(job, pipeline, write=True, progress=progress,
                      on_cell=lambda p: (on_payload(p), progress_bar and progress_bar.update(1)))


def _run_pool(jobs, pipeline, progress_bar, on_payload, workers: int, log_path: str | None):
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = get_context("spawn")  # fresh interpreters: no forked torch/OpenMP state
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_setup_worker_logging,
                             initargs=(log_path, threads)) as pool:
        futures = {pool.submit(_pool_task, job, pipeline): job for job in jobs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures[fut]
                try:
                    payloads = fut.result()
                except Exception as err:  # the worker died (e.g. out of memory): record every pending cell
                    payloads = _crash_payloads(job, err)
                    for p in payloads:
                        _write_payload(Path(job.run_dir), p)
                for p in payloads:
                    on_payload(p)
                if progress_bar is not None:
                    progress_bar.update(job.n_pending)


def _crash_payloads(job: GroupJob, err: BaseException) -> list[dict]:
    out = []
    tb = "".join(traceback.format_exception(err))
    if job.pending_train:
        r = rec.base_record("train", job.train_id, job.suite, job.train_config, job.code_version)
        out.append(_payload("train", rec.failure(r, err, tb=tb), None))
    for i in job.pending_attacks:
        r = rec.base_record("attack", job.attack_ids[i], job.suite, job.attack_configs[i], job.code_version,
                            train_id=job.train_id)
        out.append(_payload("attack", rec.failure(r, err, tb=tb), None))
    return out


def _ray_task(job: GroupJob, pipeline) -> list[dict]:
    # On a cluster the driver's results folder may not exist on this node: records come
    # back to the driver, which writes them; models stay in this node's copy of the path.
    try:
        Path(job.run_dir).mkdir(parents=True, exist_ok=True)
    except OSError:
        import tempfile

        job.run_dir = tempfile.mkdtemp(prefix="recrobust-")
    return execute_group(job, pipeline, write=False, progress=False)


def _import_ray():
    try:
        import ray  # noqa: F401
    except ImportError as err:
        raise RunnerError("executor 'ray' needs Ray: pip install -e '.[ray]' (or pip install ray)") from err
    return ray


def _run_ray(jobs, pipeline, progress_bar, on_payload, workers: int, address: str | None):
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
        if address is None:
            # A local instance: workers need the driver's import path (tests, plug-ins).
            kwargs["num_cpus"] = workers
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
        ray.init(**kwargs)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        refs = {remote.remote(job, pipeline): job for job in jobs}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            job = refs[done[0]]
            try:
                payloads = ray.get(done[0])
            except Exception as err:
                payloads = _crash_payloads(job, err)
            for p in payloads:
                try:
                    _write_payload(Path(job.run_dir), p)
                except Exception as err:
                    p = _payload(p["kind"], rec.failure(p["record"], err, tb=traceback.format_exc()), None)
                    _write_payload(Path(job.run_dir), p)
                on_payload(p)
            if progress_bar is not None:
                progress_bar.update(job.n_pending)
    finally:
        if started_here:
            ray.shutdown()


STALE_TEMP_SECONDS = 600  # a live writer renames its temp file within seconds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _remove_stale_temp(run_dir: Path) -> None:
    """Temp files a killed run left behind (never read: records and models are renamed into
    place only when complete). Only a dead writer's (its pid is in the name) or old ones:
    another run may be writing into the same folder right now (the two tiers of a suite,
    say), and its temp files are its own."""
    cutoff = time.time() - STALE_TEMP_SECONDS

    def stale(path: Path, pid: str) -> bool:
        try:
            if path.stat().st_mtime < cutoff:
                return True
        except FileNotFoundError:
            return False
        return pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))

    for tmp in (run_dir / "records").glob(".*.tmp"):  # .<name>.<pid>.<random>.tmp
        parts = tmp.name.rsplit(".", 3)
        if stale(tmp, parts[1] if len(parts) == 4 else ""):
            tmp.unlink(missing_ok=True)
    models = run_dir / "models"
    if models.is_dir():
        for tmp in models.glob(".tmp-*"):  # .tmp-<cell id>-<pid>
            if stale(tmp, tmp.name.rsplit("-", 1)[-1]):
                shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- entry point


def run_suite(suite: str | Path | Suite, results_dir: str | Path = "results", jobs: int = 1,
              executor: str = "local", address: str | None = None, progress: bool = True,
              pipeline: Pipeline | None = None, code_version: str | None = None,
              catalog: Catalog | None = None, tier: str | None = None,
              models: list[str] | None = None, train_only: bool = False) -> RunSummary:
    """Run every cell of `suite` (a built-in name such as "quick", a YAML path, or a Suite),
    writing records under ``<results_dir>/<suite name>/`` and resuming from what is there.

    CLI: ``recrobust run --suite NAME|FILE [--jobs N] [--executor local|process|ray]
    [--address RAY_ADDRESS] [--results DIR] [--tier classic|text]``. ``tier`` runs only the
    cells of that cost tier's models (the other tier's cells stay pending; the records go
    to the same folder, so two invocations make the whole run, one after the other or at
    the same time). ``models`` (``--models LABEL,...``) likewise runs only the cells of those
    model rows (suite labels). ``train_only`` (``--train-only``) runs the training cells and
    leaves every attack cell pending: the clean figures of a changed protocol can be checked
    before the attack budget is spent, and the saved models serve the later run's attacks.
    ``--jobs N`` > 1 with the local executor
    uses a process pool of N workers; with ray it sets the CPUs of a local Ray instance.
    The suite is validated (SuiteError) and datasets are loaded before any cell runs.
    Returns a RunSummary; ``summary.failed`` non-empty means the CLI should exit 1.
    """
    if executor not in EXECUTORS:
        raise RunnerError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise RunnerError(f"--jobs must be >= 1, got {jobs}")
    if tier is not None and tier not in TIERS:
        raise RunnerError(f"unknown tier {tier!r}; use one of {', '.join(TIERS)}")
    if executor == "ray":
        _import_ray()  # fail before any work when the extra is missing
    pipeline = pipeline or Pipeline()
    catalog = catalog or pipeline.catalog()
    suite = load_suite(suite, catalog=catalog) if not isinstance(suite, Suite) else suite
    if not suite.checked:
        check_suite(suite, catalog)
    suite.check_model_labels(models)
    code_version = code_version or rec.code_version()
    t_start = time.perf_counter()

    run_dir = Path(results_dir) / suite.name
    (run_dir / "records").mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "logs" / f"run-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    handler = _attach_file_handler(str(log_path))
    _remove_stale_temp(run_dir)
    try:
        (run_dir / "suite.yaml").write_text(dump_suite(suite), encoding="utf-8")
        groups = suite.expand(catalog)
        if tier is not None:
            groups = [g for g in groups if model_tier(catalog, g.train.model.name) == tier]
        if models:
            groups = [g for g in groups if g.train.model.label in models]
        log.info("run %s (%s) with executor=%s jobs=%d code=%s%s%s%s", suite.name, suite.path, executor, jobs,
                 code_version, f" tier={tier}" if tier else "", f" models={','.join(models)}" if models else "",
                 " train-only" if train_only else "")
        for note in suite.notes:
            log.info("note: %s", note)

        job_list = plan(suite, groups, _fingerprints(pipeline, suite), run_dir, code_version)
        if train_only:  # the attack cells stay pending (not counted: they are not this run's)
            job_list = [replace(j, pending_attacks=[]) for j in job_list]
        total = sum(1 + (0 if train_only else len(j.group.attacks)) for j in job_list)
        # Seed-major order: an interrupted long run has the whole grid at seed 0 before any
        # cell of seed 1 (the order of records changes nothing else).
        todo = sorted((j for j in job_list if j.n_pending), key=lambda j: j.group.train.seed)
        summary = RunSummary(suite.name, run_dir, log_path, total=total,
                             skipped=total - sum(j.n_pending for j in todo))
        log.info("%d cells, %d already done, %d to run", total, summary.skipped, total - summary.skipped)

        owner = {cid: j for j in todo for cid in (j.train_id, *j.attack_ids)}

        def on_payload(p: dict) -> None:
            r = p["record"]
            name = _describe(p, owner[r["cell_id"]])
            log.log(logging.INFO if r["status"] == "ok" else logging.WARNING, "%s %s %s%s", r["status"], r["cell_id"],
                    name, f": {r['error']['type']}: {r['error']['message']}" if r.get("error") else "")
            if p["kind"] == "train" and r["status"] == "ok":
                summary.trainings += 1  # a train record is only produced when a model was trained
            if r["status"] == "ok":
                summary.completed += 1
            else:
                item = {"cell_id": r["cell_id"], "cell": name,
                        "error": f"{r['error']['type']}: {r['error']['message']}"}
                (summary.failed if r["status"] == "failed" else summary.unavailable).append(item)
                if bar is not None:
                    bar.write(f"{r['status']}: {name}: {item['error']}")

        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(j.n_pending for j in todo), desc=f"suite {suite.name}", unit="cell")
        try:
            if executor == "ray":
                _run_ray(todo, pipeline, bar, on_payload, jobs, address)
            elif executor == "process" or jobs > 1:
                _run_pool(todo, pipeline, bar, on_payload, jobs, str(log_path))
            else:
                _run_local(todo, pipeline, bar, on_payload, progress)
        finally:
            if bar is not None:
                bar.close()
        summary.seconds = time.perf_counter() - t_start
        log.info("done: %s", summary.format().replace("\n", " | "))
        if progress:
            print(summary.format())
        return summary
    finally:
        logging.getLogger(LOGGER).removeHandler(handler)
        handler.close()
