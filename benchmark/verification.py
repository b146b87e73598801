"""What makes a submitted figure "verified": we recompute it, we never take it from the bundle.

Two checks on every record of a bundle (``benchmark.submissions`` calls them):

1. ``recompute_problems``: the summary metrics of the record are recomputed from its
   per-example rows with our metric code (``benchmark.metrics`` for clean evaluations,
   ``attacks.records.summarize`` for attacks) and must equal the record's to METRIC_TOL;
   each row must be consistent with itself (``correct`` vs probability and label, ``ndcg@10``
   vs rank). A bundle whose records and checksums were rewritten together fails here
   unless the rows were rewritten to match, which check 2 catches.
2. ``rerun_problems``: the rows are checked against what the submitted model actually does.
   The trained model is loaded from the bundle (safetensors + JSON through
   ``Recommender.load``, as the class the manifest names; never pickle), our own copy of the
   dataset is split with the cell's seed and sizes, and a seeded sample of clean examples
   (CLEAN_SAMPLE per training record) is re-scored and a seeded sample of attacked
   examples (ATTACK_SAMPLE per attack record) is re-attacked. The example ids must be the
   protocol's own; re-scored probabilities must agree within PROB_TOL, ranks exactly
   (up to ties within PROB_TOL), attack outcomes exactly and their scores within PROB_TOL.

The sample seed is drawn fresh at each ``recrobust submit`` (and written to the filed
verification report), so a submitter cannot know which rows will be re-run.
Every problem names the record file and the example.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmark import metrics

CLEAN_SAMPLE = 25  # clean examples re-scored per training record
ATTACK_SAMPLE = 3  # attacked examples re-run per attack record
PROB_TOL = 1e-4  # the same weights and code re-score to float noise (batching, thread count)
METRIC_TOL = 1e-9  # summary metrics recomputed from the rows: exact up to float summation order
K = 10


def _close(a, b, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
        return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol))
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=tol)


def _compare_block(name: str, what: str, submitted: dict, ours: dict, tol: float = METRIC_TOL) -> list[str]:
    out = []
    for key, value in ours.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key not in submitted:
            out.append(f"{name}: {what} {key} is missing (recomputed from the rows: {value!r})")
        elif not _close(submitted[key], value, tol):
            out.append(f"{name}: {what} {key} is {submitted[key]!r} but the per-example rows give {value!r}")
    return out


# --------------------------------------------------------------------------- 1. summaries


def recompute_problems(name: str, record: dict, rows: list[dict]) -> list[str]:
    """Problems of one "ok" record whose figures do not follow from its own rows."""
    if record.get("status") != "ok":
        return []
    if record["kind"] == "train":
        return _train_problems(name, record, rows)
    return _attack_problems(name, record, rows)


def _train_problems(name: str, record: dict, rows: list[dict]) -> list[str]:
    task = record["cell"]["task"]
    clean = record["metrics"].get("clean") or {}
    if not rows:
        return [f"{name}: a clean evaluation without per-example rows cannot be verified"]
    try:
        if task == "preference":
            probs = np.array([float(r["prob"]) for r in rows])
            labels = np.array([int(r["label"]) for r in rows])
            for r, p, lab in zip(rows, probs, labels):
                if bool(r.get("correct")) != bool((p >= 0.5) == lab):
                    return [f"{name}: example {r.get('example_id')}: 'correct' {r.get('correct')!r} contradicts "
                            f"prob {p!r} and label {lab}"]
            ours = metrics.preference_metrics(labels, probs)
        else:
            ranks = np.array([int(r["rank"]) for r in rows])
            nd = metrics.ndcg_at_k(ranks, K)
            for r, v in zip(rows, nd):
                if f"ndcg@{K}" in r and not _close(r[f"ndcg@{K}"], float(v), METRIC_TOL):
                    return [f"{name}: example {r.get('example_id')}: ndcg@{K} {r[f'ndcg@{K}']!r} contradicts "
                            f"rank {r['rank']}"]
            ours = metrics.ranking_metrics(ranks, K)
    except (KeyError, TypeError, ValueError) as err:
        return [f"{name}: per-example rows lack what the {task} metrics need ({type(err).__name__}: {err})"]
    ours["examples"] = len(rows)
    return _compare_block(name, "clean", clean, ours)


def _attack_record(row: dict):
    from attacks.records import AttackRecord, Perturbation

    fields = dict(row)
    fields["perturbation"] = Perturbation(**(fields.get("perturbation") or {}))
    return AttackRecord(**fields)


def _attack_problems(name: str, record: dict, rows: list[dict]) -> list[str]:
    from attacks.records import summarize

    if not rows:
        return [f"{name}: an attack without per-example rows cannot be verified"]
    try:
        parsed = [_attack_record(r) for r in rows]
    except (TypeError, ValueError) as err:
        return [f"{name}: per-example rows are not attack records ({err})"]
    for r in parsed:
        if r.goal == "untargeted-classification" and r.label is not None:
            for when, score, correct in (("before", r.score_before, r.correct_before),
                                         ("after", r.score_after, r.correct_after)):
                if isinstance(score, (int, float)) and correct is not None and math.isfinite(score) \
                        and bool(correct) != bool((score >= 0.5) == r.label):
                    return [f"{name}: example {r.example_id}: correct_{when} {correct!r} contradicts score_{when} "
                            f"{score!r} and label {r.label}"]
    ours = summarize(parsed)
    m = record["metrics"]
    problems = _compare_block(name, "clean", m.get("clean") or {}, ours.get("clean") or {})
    problems += _compare_block(name, "robust", m.get("robust") or {}, ours.get("robust") or {})
    rest = {k: v for k, v in ours.items() if k not in ("clean", "robust", "mean_seconds") and v is not None}
    problems += _compare_block(name, "attack", m.get("attack") or {}, rest)
    return problems


# --------------------------------------------------------------------------- 2. re-running


def _sample(rows: list, n: int, seed: int, cell_id: str) -> list:
    if len(rows) <= n:
        return list(rows)
    rng = np.random.default_rng([seed, zlib.crc32(cell_id.encode())])
    return [rows[i] for i in sorted(rng.choice(len(rows), n, replace=False))]


class _Splits:
    """Our own splits of our own copy of each dataset, built once per cell setting."""

    def __init__(self, pipeline, datasets: dict):
        self.pipeline, self.datasets, self._data, self._splits = pipeline, datasets, {}, {}

    def test(self, cell: dict):
        from benchmark.records import canonical_json

        label = cell["dataset"]["label"]
        key = (label, cell["task"], cell["seed"], canonical_json(cell["sizes"]))
        if key not in self._splits:
            if label not in self._data:
                self._data[label] = self.pipeline.load_dataset(self.datasets[label])
            self._splits[key] = self.pipeline.prepare_test(self._data[label], cell["task"], cell["seed"],
                                                           cell["sizes"])
        return self._splits[key]


def _setting(item):
    """Sort key of a (name, (record, rows)) item: training records first, then attacks, each
    with the records of one split setting together (each split built once)."""
    name, (record, _) = item
    c = record["cell"]
    return (record["kind"] != "train", c["dataset"]["label"], c["task"], c["seed"], str(sorted(c["sizes"].items())),
            name)


def _deviation(report: dict, d: float) -> None:
    report["max_prob_deviation"] = max(report["max_prob_deviation"], float(d))


def rerun_problems(bundle: Path, records: dict, spec: str, pipeline, datasets: dict, seed: int,
                   report: dict | None = None) -> list[str]:
    """Re-score / re-attack seeded samples with the submitted model (see the module doc).

    `records`: file name -> (record, rows); `datasets`: our DatasetSpec per label;
    `report` (optional) gets what was re-run and the largest deviation seen.
    """
    report = report if report is not None else {}
    report.update(seed=seed, clean_examples=0, attack_examples=0, max_prob_deviation=0.0,
                  clean_sample=CLEAN_SAMPLE, attack_sample=ATTACK_SAMPLE, prob_tolerance=PROB_TOL)
    splits = _Splits(pipeline, datasets)
    models: dict[str, object] = {}
    problems: list[str] = []

    def model_for(train_id: str):
        if train_id not in models:
            model_dir = bundle / "models" / train_id
            if not (model_dir / "recommender.json").is_file():
                raise ValueError(f"models/{train_id}/ is missing: a bundle ships the trained model of every "
                                 "training cell (safetensors + JSON) so that its figures can be re-run")
            models[train_id] = pipeline.load_model(model_dir, expected=spec)
        return models[train_id]

    for name, (record, rows) in sorted(records.items(), key=_setting):
        rerun = _RERUN.get(record["kind"])
        if rerun is None or record["status"] != "ok":
            continue
        try:
            model = model_for(record["cell_id"] if record["kind"] == "train" else record.get("train_id"))
            test = splits.test(record["cell"])
        except Exception as err:
            problems.append(f"{name}: cannot re-run: {type(err).__name__}: {err}")
            continue
        problems += rerun(name, record, rows, model, test, pipeline, seed, report)
    return problems


def _rescore(name: str, record: dict, rows: list[dict], model, test, pipeline, seed: int, report: dict) -> list[str]:
    """A training record: a seeded sample of its clean rows re-scored with the model."""
    from benchmark.evaluation import ScoreError, score_checked

    cell = record["cell"]
    ids = [e.example_id for e in test.examples]
    if [r.get("example_id") for r in rows] != ids:
        return [f"{name}: per-example rows are not the protocol's {len(ids)} test examples "
                f"({len(rows)} rows, e.g. {rows[0].get('example_id') if rows else None!r} vs {ids[0]!r})"]
    by_id = {e.example_id: e for e in test.examples}
    if cell["task"] == "preference":
        bad = next((r for r in rows if int(r["label"]) != int(by_id[r["example_id"]].label)), None)
        if bad is not None:
            return [f"{name}: example {bad['example_id']}: label {bad['label']} is not the protocol's"]
    sample = _sample(rows, CLEAN_SAMPLE, seed, record["cell_id"])
    examples = [by_id[r["example_id"]] for r in sample]
    try:
        scores = score_checked(model, examples, cell["task"])
    except (ScoreError, Exception) as err:
        return [f"{name}: re-scoring failed: {type(err).__name__}: {err}"]
    report["clean_examples"] += len(examples)
    wrong: list[str] = []
    for row, example, s in zip(sample, examples, scores):
        if cell["task"] == "preference":
            d = abs(float(s[0]) - float(row["prob"]))
            _deviation(report, d)
            if d > PROB_TOL:
                wrong.append(f"{name}: example {row['example_id']}: submitted prob {row['prob']!r} but the "
                             f"model scores {float(s[0])!r} (tolerance {PROB_TOL})")
        else:
            pos, others = s[example.label], np.delete(s, example.label)
            lo, hi = 1 + int(np.sum(others > pos + PROB_TOL)), 1 + int(np.sum(others >= pos - PROB_TOL))
            if not lo <= int(row["rank"]) <= hi:
                wrong.append(f"{name}: example {row['example_id']}: submitted rank {row['rank']} but the model "
                             f"ranks the positive {lo if lo == hi else f'{lo}-{hi}'}")
    return wrong[:3] + ([f"{name}: ... and {len(wrong) - 3} more of the {len(sample)} re-scored examples"]
                        if len(wrong) > 3 else [])


def _reattack(name: str, record: dict, rows: list[dict], model, test, pipeline, seed: int, report: dict) -> list[str]:
    """An attack record: a seeded sample of its attacked examples attacked again."""
    from benchmark.experiment import attack_sample
    from benchmark.suite import AttackSpec

    cell = record["cell"]
    attacked = attack_sample(test.examples, cell["sizes"].get("max_attack_examples"), cell["seed"])
    if [r.get("example_id") for r in rows] != [e.example_id for e in attacked]:
        return [f"{name}: attacked examples are not the protocol's {len(attacked)} "
                f"(seeded sample of the test split)"]
    by_id = {e.example_id: e for e in attacked}
    sample = _sample(rows, ATTACK_SAMPLE, seed, record["cell_id"])
    spec_fields = {k: cell["attack"][k] for k in ("name", "label", "budget", "query_budget", "scope", "goal",
                                                 "options", "threat_model", "sweep")}
    if spec_fields["threat_model"] == "profile" and "item_pool" not in (spec_fields["options"] or {}):
        # A profile attack draws replacement items from the model's item list, or, for a
        # model that lists none, from all attacked examples: pin that universe, or a
        # re-run on a sample would search other items than the cell did.
        from attacks.profile.items import universe

        spec_fields["options"] = {**(spec_fields["options"] or {}), "item_pool": universe(model, attacked)}
    attack = AttackSpec(**spec_fields)
    data = SimpleNamespace(task=cell["task"], examples=[by_id[r["example_id"]] for r in sample])
    try:
        _, again, _ = pipeline.attack(model, data, attack, cell["seed"], {**cell["sizes"], "max_attack_examples": None})
    except Exception as err:
        return [f"{name}: re-running the attack failed: {type(err).__name__}: {err}"]
    report["attack_examples"] += len(sample)
    problems: list[str] = []
    for row, new in zip(sample, again):
        problems += _same_outcome(name, row, new, lambda d: _deviation(report, d))
    return problems


_RERUN = {"train": _rescore, "attack": _reattack}  # what re-running a record of each kind means


def _same_outcome(name: str, row: dict, new: dict, deviation) -> list[str]:
    where = f"{name}: example {row.get('example_id')}"
    for key in ("status", "success", "correct_before", "correct_after", "rank_before", "rank_after", "target_item"):
        if row.get(key) != new.get(key):
            return [f"{where}: submitted {key} {row.get(key)!r} but re-running the attack gives {new.get(key)!r}"]
    for key in ("score_before", "score_after"):
        a, b = row.get(key), new.get(key)
        if not _close(a, b, PROB_TOL):
            return [f"{where}: submitted {key} {a!r} but re-running the attack gives {b!r} (tolerance {PROB_TOL})"]
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isfinite(a) and math.isfinite(b):
            deviation(abs(a - b))
    return []


__all__ = ["ATTACK_SAMPLE", "CLEAN_SAMPLE", "METRIC_TOL", "PROB_TOL", "recompute_problems", "rerun_problems"]
