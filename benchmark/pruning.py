"""Records that a suite's grid no longer holds, and their removal.

When a protocol changes (a model's options, a dataset's tasks, a dropped column) the cells
it replaces keep their records: the runner never deletes, and the leaderboard ignores them
("record(s) ... of cells no longer in its grid ignored"). For committed results that is
dead weight in git, so `recrobust prune-records` lists them (by model) and removes them on
request: the record, its per-example file and, for a training cell, its saved model.
A record counts as stale by its cell config alone (Suite.cell_keys), never by code version:
a version bump must not delete a whole run.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmark import records as rec
from benchmark.suite import cell_key, load_suite


@dataclass(frozen=True)
class StaleRecord:
    path: Path
    model: str
    dataset: str

    def files(self, run_dir: Path, record: dict) -> list[Path]:
        """What removing this record removes: the record, its per-example file, its model."""
        out = [self.path]
        pe = record.get("per_example")
        if pe:
            out.append(self.path.with_name(pe["file"]))
        if record.get("model_dir"):
            out.append(run_dir / record["model_dir"])
        return out


def stale_records(run_dir: str | Path, suite, models: list[str] | None = None,
                  catalog=None) -> list[tuple[StaleRecord, dict]]:
    """The records under `run_dir` (a run folder, e.g. results/standard) of `suite` (name,
    path or Suite) whose cell is not in its grid; with `models` (labels), only those models'.
    Records of other suites and unreadable records are left alone. `catalog`: the
    registries the suite is checked against (default: the installed ones)."""
    s = load_suite(suite, catalog)
    grid = s.cell_keys(catalog)
    s.check_model_labels(models)
    pairs, _ = rec.load_records(run_dir)
    out = []
    for path, record in pairs:
        cell = record["cell"]
        label = cell["model"]["label"]
        if record["suite"]["name"] != s.name or cell_key(cell) in grid:
            continue
        if models and label not in models:
            continue
        out.append((StaleRecord(path, label, cell["dataset"]["label"]), record))
    return out


def remove_stale(run_dir: str | Path, stale: list[tuple[StaleRecord, dict]]) -> int:
    """Delete each stale record's files, the record first: an interrupted prune then leaves
    at worst an orphan per-example file or model folder, never a record missing its rows."""
    run_dir = Path(run_dir)
    for entry, record in stale:
        for path in entry.files(run_dir, record):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    return len(stale)


def summarize(stale: list[tuple[StaleRecord, dict]]) -> list[tuple[str, str, int]]:
    """(model, dataset, records) counts, sorted, for the command's report."""
    counts = Counter((e.model, e.dataset) for e, _ in stale)
    return [(m, d, n) for (m, d), n in sorted(counts.items())]
