"""What a suite would cost before running it: `recrobust run --suite S --dry-run`.

The suite is expanded into its cells exactly as the runner expands it; each cell is a
training cell (train + clean evaluation) or an attack cell, in the "classic" tier (ID-based
models) or the "text" tier (models that score rendered text). Each cell's time comes from
measured times in existing result records (any suite, any run under the results folder),
most specific match first:

- training cells: same model, task and defense; else same model and task; else same model.
  A measured training time is scaled by the ratio of training examples when both cells cap
  them (``max_train_examples``) and by the ratio of epochs when both set ``epochs``;
  evaluation time is scaled by the ratio of clean test examples.
- attack cells: same model, task, attack and budgets; else same model, task and attack;
  else same model and attack; else same model, task and threat model. Measured as seconds
  per scored candidate (1 an example for preference, 1 + num_negatives for ranking), times
  the cell's candidates and ``max_attack_examples``: so a match from the other task scales
  (a text model's ranking example costs ~100 of its preference examples; the two-tower's
  ranking PGD cell took ~120x what its preference cells predicted). A match measured at
  another query budget is scaled by the budgets' ratio (a query attack that spends its
  budget costs in proportion to it; one that succeeds early costs less, so this errs high). Poisoning cells retrain
  the victim, so they are measured per cell (same model, task and attack, ...), and with no
  record they cost the training cell's estimate times POISONING_RETRAIN_FACTOR.

Times are CPU-bound work measured on a possibly shared machine: each measured wall time is
scaled by the cell's CPU share (cpu_seconds / wall seconds, at most 1), so a run made while
other jobs competed for the cores does not inflate the estimate.

Given the finished cells (benchmark.runner.finished_cells: an "ok" record for this code
version, which needs the datasets' fingerprints), the report also says how many cells are
done and what the rest would cost, so a resuming run shows what is left.

With no record to go by, DEFAULT_COSTS gives a per-model default (rough figures measured on
a 2-core CPU, see docs there), and TIER_DEFAULTS one per tier for unknown models. The report
says how many cells rest on measurements and how many on defaults.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from benchmark import records as rec
from benchmark.suite import TIERS, Catalog, Suite, load_suite, model_tier

# Per-model defaults when no record measured the cell (2-core CPU, no GPU; from DESIGN.md's
# performance facts and the quick suite's records of 2026-12-01):
#   train: seconds to train (classic models on all of ML-100K's interactions), or
#   train_example: seconds per training example and epoch (text models: MiniLM trains at
#     ~10 sequences/s at 128 tokens); eval_example: seconds per clean test example scored
#     (ranking scores 100 candidates each); attack_example: seconds per attacked example.
#   (CPU seconds, 1 thread, from the quick and standard suites' records of 2026-12-02.)
DEFAULT_COSTS: dict[str, dict[str, float]] = {
    "popularity": {"train": 2.0, "eval_example": 0.001, "attack_example": 0.002},
    "itemknn": {"train": 5.0, "eval_example": 0.002, "attack_example": 0.004},
    "bpr-mf": {"train": 12.0, "eval_example": 0.002, "attack_example": 0.02},
    "sasrec": {"train": 60.0, "eval_example": 0.01, "attack_example": 0.05},
    "cross-encoder": {"train_example": 0.08, "eval_example": 0.02, "attack_example": 3.5},
    "two-tower": {"train_example": 0.08, "eval_example": 0.02, "attack_example": 2.5},
    "causal-lm": {"train_example": 1.5, "eval_example": 0.4, "attack_example": 40.0},
}
POISONING_RETRAIN_FACTOR = 1.5  # a poisoning cell: retrain on train + fakes, then rank the targets
TIER_DEFAULTS: dict[str, dict[str, float]] = {
    "classic": {"train": 60.0, "eval_example": 0.01, "attack_example": 1.0},
    "text": {"train_example": 0.2, "eval_example": 0.1, "attack_example": 30.0},
}
DEFAULT_TRAIN_EXAMPLES = 20000  # a text model's training examples when the suite does not cap them
DEFAULT_EPOCHS = 1


@dataclass
class TierCost:
    cells: int = 0
    train_cells: int = 0
    attack_cells: int = 0
    seconds: float = 0.0
    measured: int = 0  # cells estimated from records
    defaulted: int = 0  # cells estimated from DEFAULT_COSTS / TIER_DEFAULTS
    done: int = 0  # cells with a finished record (when known)
    left_seconds: float = 0.0  # the estimate for the cells not done


@dataclass
class Estimate:
    suite: str
    version: str
    tiers: dict[str, TierCost] = field(default_factory=lambda: {t: TierCost() for t in TIERS})
    models: dict[str, TierCost] = field(default_factory=dict)  # per model row (suite label): where the time goes
    records_used: int = 0
    results_dir: str = ""
    finished_known: str | None = None  # None: finished cells were subtracted; else why not

    @property
    def cells(self) -> int:
        return sum(t.cells for t in self.tiers.values())

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.tiers.values())


# --------------------------------------------------------------------------- measured times


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


@dataclass
class _Timings:
    """Measured cell times from records, indexed from most to least specific key."""

    train: dict[tuple, list[dict]] = field(default_factory=dict)
    # (seconds per scored candidate, the query budget it was measured at or None)
    attack: dict[tuple, list[tuple[float, float | None]]] = field(default_factory=dict)
    poisoning: dict[tuple, list[float]] = field(default_factory=dict)  # seconds per cell
    n: int = 0

    def add(self, record: dict) -> None:
        cell, t = record["cell"], record.get("timings") or {}
        model, task = cell["model"]["name"], cell["task"]
        if record["kind"] == "train":
            seconds = _num(t.get("train_seconds"))
            if seconds is None:
                return
            share = _cpu_share(t, seconds + (_num(t.get("eval_seconds")) or 0.0))
            sample = {"train": seconds * share, "eval": (_num(t.get("eval_seconds")) or 0.0) * share,
                      "eval_examples": _num((record.get("metrics") or {}).get("clean", {}).get("examples")),
                      "train_examples": _num(cell["sizes"].get("max_train_examples")),
                      "epochs": _num((cell["model"].get("options") or {}).get("epochs"))}
            for key in ((model, task, cell["defense"]["name"]), (model, task), (model,)):
                self.train.setdefault(key, []).append(sample)
        else:
            seconds = _num(t.get("attack_seconds"))
            if seconds is None:
                return
            seconds *= _cpu_share(t, seconds)
            a = cell["attack"]
            if a.get("threat_model") == "poisoning":
                for key in ((model, task, a["name"]), (model, a["name"]), (model, task, "poisoning")):
                    self.poisoning.setdefault(key, []).append(seconds)
                self.n += 1
                return
            examples = _num((record.get("metrics") or {}).get("attack", {}).get("examples"))
            if not examples:
                return
            per_candidate = seconds / examples / _candidates(task, cell["sizes"])
            for key in ((model, task, a["name"], a.get("budget"), a.get("query_budget")), (model, task, a["name"]),
                        (model, a["name"]), (model, task, a.get("threat_model"))):
                self.attack.setdefault(key, []).append((per_candidate, _num(a.get("query_budget"))))
        self.n += 1


def _candidates(task: str, sizes: dict) -> float:
    """Texts (or items) one example scores: the positive and its negatives when ranking."""
    return 1.0 + (_num(sizes.get("num_negatives")) or 0.0) if task == "ranking" else 1.0


def _cpu_share(timings: dict, wall: float) -> float:
    """The share of a cell's wall time it had a core for (1 when unknown or on an idle machine)."""
    cpu = _num(timings.get("cpu_seconds"))
    return min(1.0, cpu / wall) if cpu and wall and wall > 0 else 1.0


def measured_timings(results_dir: str | Path) -> _Timings:
    timings = _Timings()
    root = Path(results_dir)
    if not root.is_dir():
        return timings
    pairs, _ = rec.load_records(root)
    for _, record in pairs:
        if record.get("status") == "ok":
            timings.add(record)
    return timings


# --------------------------------------------------------------------------- estimating


def _ratio(target, measured) -> float:
    target, measured = _num(target), _num(measured)
    return target / measured if target and measured else 1.0


def _train_seconds(cell, timings: _Timings, tier: str) -> tuple[float, bool]:
    model, task, sizes = cell.model.name, cell.task, cell.sizes
    epochs = _num(cell.model.options.get("epochs"))
    for key in ((model, task, cell.defense.name), (model, task), (model,)):
        samples = timings.train.get(key)
        if samples:
            per = [s["train"] * _ratio(sizes.get("max_train_examples"), s["train_examples"]) * _ratio(epochs, s["epochs"])
                   + s["eval"] * _ratio(sizes.get("max_eval_examples"), s["eval_examples"]) for s in samples]
            return statistics.median(per), True
    costs = DEFAULT_COSTS.get(model, TIER_DEFAULTS[tier])
    if "train" in costs:
        train = costs["train"]
    else:
        train = costs["train_example"] * (_num(sizes.get("max_train_examples")) or DEFAULT_TRAIN_EXAMPLES) * (
            epochs or DEFAULT_EPOCHS)
    return train + costs["eval_example"] * (_num(sizes.get("max_eval_examples")) or 1000), False


def _attack_seconds(acell, timings: _Timings, tier: str) -> tuple[float, bool]:
    cell, a = acell.train, acell.attack
    if a.threat_model == "poisoning":
        for key in ((cell.model.name, cell.task, a.name), (cell.model.name, a.name),
                    (cell.model.name, cell.task, "poisoning")):
            if timings.poisoning.get(key):
                return statistics.median(timings.poisoning[key]), True
        return _train_seconds(cell, timings, tier)[0] * POISONING_RETRAIN_FACTOR, False
    examples = _num(cell.sizes.get("max_attack_examples")) or _num(cell.sizes.get("max_eval_examples")) or 1000
    for key in ((cell.model.name, cell.task, a.name, a.budget, a.query_budget), (cell.model.name, cell.task, a.name),
                (cell.model.name, a.name), (cell.model.name, cell.task, a.threat_model)):
        samples = timings.attack.get(key)
        if samples:
            per = [seconds * _ratio(a.query_budget, budget) for seconds, budget in samples]
            return statistics.median(per) * _candidates(cell.task, cell.sizes) * examples, True
    return DEFAULT_COSTS.get(cell.model.name, TIER_DEFAULTS[tier])["attack_example"] * examples, False


def estimate_suite(suite: str | Path | Suite, results_dir: str | Path = "results",
                   catalog: Catalog | None = None, finished: set[str] | None = None,
                   unfinished_because: str = "not asked") -> Estimate:
    """Cell counts and estimated seconds per tier for `suite` (name, YAML path or Suite),
    from the records under results_dir. `finished` (cell names, benchmark.runner.finished_cells)
    are counted as done and left out of the time still to spend; without it,
    `unfinished_because` says why. Runs nothing and writes nothing."""
    catalog = catalog or Catalog.from_registries()
    suite = suite if isinstance(suite, Suite) else load_suite(suite, catalog=catalog)
    timings = measured_timings(results_dir)
    est = Estimate(suite.name, suite.version, records_used=timings.n, results_dir=str(results_dir),
                   finished_known=None if finished is not None else unfinished_because)
    finished = finished or set()
    tiers = {m.name: model_tier(catalog, m.name) for m in suite.models}
    for group in suite.expand(catalog):
        tier = tiers[group.train.model.name]
        cells = [(group.train, *_train_seconds(group.train, timings, tier))]
        cells += [(acell, *_attack_seconds(acell, timings, tier)) for acell in group.attacks]
        for cost in (est.tiers[tier], est.models.setdefault(group.train.model.label, TierCost())):
            for cell, seconds, measured in cells:
                done = cell.describe() in finished
                cost.seconds += seconds
                cost.left_seconds += 0.0 if done else seconds
                cost.done += done
                cost.measured += measured
                cost.defaulted += not measured
            cost.train_cells += 1
            cost.attack_cells += len(group.attacks)
            cost.cells = cost.train_cells + cost.attack_cells
    return est


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 120 else (f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h")


def format_estimate(est: Estimate) -> str:
    from tabulate import tabulate

    tiers = dict(est.tiers)
    tiers["total"] = TierCost(*(sum(getattr(c, f) for c in est.tiers.values()) for f in
                                ("cells", "train_cells", "attack_cells", "seconds", "measured", "defaulted",
                                 "done", "left_seconds")))
    known = est.finished_known is None
    rows = [[tier, c.cells, c.train_cells, c.attack_cells, _duration(c.seconds)]
            + ([c.done, _duration(c.left_seconds)] if known else []) + [c.measured, c.defaulted]
            for tier, c in tiers.items()]
    headers = ["tier", "cells", "train", "attack", "estimated time"] + (["done", "left"] if known else []) + \
        ["from records", "from defaults"]
    table = tabulate(rows, headers=headers, disable_numparse=True)
    per_model = tabulate([[label, c.cells, _duration(c.seconds)] + ([c.done, _duration(c.left_seconds)] if known else [])
                          for label, c in est.models.items()],
                         headers=["model", "cells", "estimated time"] + (["done", "left"] if known else []),
                         disable_numparse=True)
    done = "finished cells (an ok record for this code version) are counted as done and not in 'left'" if known \
        else f"finished cells are not subtracted ({est.finished_known})"
    return (f"dry run: suite {est.suite} v{est.version}, {est.cells} cells (nothing run)\n{table}\n\n{per_model}\n"
            f"Estimated from {est.records_used} measured record(s) under {est.results_dir} where a cell matches "
            f"(same model/task/attack, scaled to the cell's example counts), else from per-model defaults "
            f"(benchmark.estimate.DEFAULT_COSTS). Single process; {done}.")
