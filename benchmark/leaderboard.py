"""Leaderboards from result records: one table per suite x dataset x task.

Rows are model x defense; columns are the clean metrics (from the training cell, on the
test split), the robust metric under each leaderboard attack (from the attack cells), the
mean robust metric over the attacks every row faced, the worst case over all attacks the
row faced, and the rank (by mean robust). Each cell is mean ± std over seeds, with a 95%
bootstrap interval from resampling per-example values within each seed (seeded, so tables
are reproducible). Defended rows are compared with the same model without defense on the
same examples: exact McNemar (binomial test on discordant pairs) for 0/1 metrics
(accuracy, target-out-of-top-K), Wilcoxon signed-rank for per-user NDCG; p-values are
Holm-corrected within each table and significant differences are marked †.

Submitted models (records under ``results/submissions/<name>/``) appear as rows of their
own; figures the card reports are shown beside ours, and a reported robust figure more than
one point (0.01) above the verified one is flagged, as RobustBench does. Every name and
card string is escaped for the output format (Markdown, LaTeX, HTML).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import attack_stats as astats
from benchmark import records as rec
from benchmark.escaping import escape_html, escape_latex, escape_md, slug  # noqa: F401 (public here too)
from benchmark.plots import display_model
from benchmark.poisoning_board import append_poisoning  # poisoning tables + HR-vs-budget plot
from benchmark.metrics import PRIMARY_METRIC, auc, ndcg_at_k

FORMATS = ("md", "latex", "csv", "html")
FILE_NAMES = {"md": "leaderboard.md", "latex": "leaderboard.tex", "csv": "leaderboard.csv", "html": "leaderboard.html"}
SITE_DIR = "site"  # with an output folder: the static HTML site (benchmark.website), index.html first
DEFAULT_METRIC = {"preference": "accuracy", "ranking": "ndcg@10"}
LOWER_IS_BETTER = {"log_loss"}
BINARY_METRICS = {"accuracy", "hr@10", "target_out_of_top10"}
REPORTED_TOLERANCE = 0.01  # "one point" on a 0..1 scale
DAGGER = "†"
FLAG = "⚠"
DEGENERATE = "‡"  # an attack column where every row scores the same extreme
CHANCE = "§"  # a row at or below chance: the test majority rate (preference), a random order (ranking)
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
METRIC_NAMES = {"accuracy": "Acc", "auc": "AUC", "log_loss": "LogLoss", "ndcg@10": "NDCG@10", "hr@10": "HR@10",
                "mrr": "MRR", "target_out_of_top10": "Target∉Top10"}


# --------------------------------------------------------------------------- statistics


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Exact McNemar: two-sided binomial test on the discordant pairs of two 0/1 vectors."""
    from scipy.stats import binomtest

    a, b = np.asarray(a, bool), np.asarray(b, bool)
    n01, n10 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return 1.0 if n01 + n10 == 0 else float(binomtest(n01, n01 + n10, 0.5).pvalue)


def wilcoxon_paired(a: np.ndarray, b: np.ndarray) -> float:
    """Wilcoxon signed-rank p-value of a - b (1.0 when every pair is tied)."""
    from scipy.stats import wilcoxon

    d = np.asarray(a, float) - np.asarray(b, float)
    if not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox").pvalue)


_auc_rows = astats.auc_rows  # one definition, shared with the per-attack statistics


def bootstrap_ci(samples: list[dict], statistic: str, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean-over-seeds statistic, resampling examples within each
    seed. `samples` holds one dict per seed: {"values"} for a mean, {"labels", "scores"} for AUC."""
    rng = np.random.default_rng(seed)
    stats = np.zeros(n_boot)
    used = 0
    for s in samples:
        if statistic == "auc":
            y, p = np.asarray(s["labels"]), np.asarray(s["scores"], float)
            n = len(y)
            if n == 0:
                continue
            idx = rng.integers(0, n, size=(n_boot, n))
            stats += _auc_rows(y[idx].astype(bool), p[idx])
        else:
            v = np.asarray(s["values"], float)
            if len(v) == 0:
                continue
            stats += v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
        used += 1
    if used == 0:
        return (math.nan, math.nan)
    stats = stats / used
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return (math.nan, math.nan)
    lo, hi = np.percentile(stats, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- per-example values


def clean_values(rows: list[dict], task: str, metric: str) -> dict | None:
    """Per-example values of a clean metric from a training record's rows."""
    if not rows:
        return None
    ids = [r["example_id"] for r in rows]
    if metric == "auc" and "prob" in rows[0]:
        return {"ids": ids, "labels": [int(r["label"]) for r in rows], "scores": [float(r["prob"]) for r in rows]}
    if metric == "accuracy" and "correct" in rows[0]:
        return {"ids": ids, "values": [float(bool(r["correct"])) for r in rows]}
    if "rank" in rows[0]:
        ranks = np.array([int(r["rank"]) for r in rows])
        if metric.startswith("ndcg@"):
            return {"ids": ids, "values": ndcg_at_k(ranks, int(metric.split("@")[1])).tolist()}
        if metric.startswith("hr@"):
            return {"ids": ids, "values": (ranks <= int(metric.split("@")[1])).astype(float).tolist()}
        if metric == "mrr":
            return {"ids": ids, "values": (1.0 / ranks).tolist()}
    return None


def robust_values(rows: list[dict], metric: str) -> dict | None:
    """Per-example values of a robust metric from an attack record's rows (errors excluded,
    skipped examples count as they were: wrong before, wrong after)."""
    rows = [r for r in rows if r.get("status") != "error"]
    if not rows:
        return None
    ids = [r["example_id"] for r in rows]
    if metric == "accuracy":
        vals = [float(bool(r["correct_after"] if r.get("correct_after") is not None else r.get("correct_before")))
                for r in rows]
        return {"ids": ids, "values": vals}
    if metric == "auc":
        labels = [r.get("label") for r in rows]
        if any(l is None for l in labels):
            return None
        scores = [float(r["score_after"] if r.get("score_after") is not None else r["score_before"]) for r in rows]
        return {"ids": ids, "labels": labels, "scores": scores}
    if rows[0].get("rank_before") is None:
        return None
    ranks = np.array([r["rank_after"] if r.get("rank_after") is not None else r["rank_before"] for r in rows])
    if metric.startswith("ndcg@"):
        return {"ids": ids, "values": ndcg_at_k(ranks, int(metric.split("@")[1])).tolist()}
    if metric.startswith("hr@"):
        return {"ids": ids, "values": (ranks <= int(metric.split("@")[1])).astype(float).tolist()}
    if metric == "mrr":
        return {"ids": ids, "values": (1.0 / ranks).tolist()}
    if metric.startswith("target_out_of_top"):
        return {"ids": ids, "values": (ranks > int(metric.rsplit("top", 1)[1])).astype(float).tolist()}
    return None


# --------------------------------------------------------------------------- collecting


@dataclass
class Entry:
    """One record, flattened for the tables."""

    path: Path
    record: dict
    source: str  # "" for our runs, the submission's folder name otherwise
    rows: list[dict] | None = None

    @property
    def cell(self) -> dict:
        return self.record["cell"]

    def load_rows(self) -> list[dict]:
        if self.rows is None:
            self.rows = rec.read_examples(self.path, self.record)
        return self.rows


@dataclass
class Collected:
    entries: list[Entry]
    cards: dict[str, dict]  # submission source -> card
    problems: list[str] = field(default_factory=list)
    suites: dict[str, dict] = field(default_factory=dict)  # suite name -> record suite block


def _source_of(path: Path, root: Path) -> str:
    parts = path.resolve().relative_to(root.resolve()).parts
    return parts[1] if len(parts) >= 2 and parts[0] == "submissions" else ""


def _logical_key(record: dict, source: str) -> str:
    return rec.canonical_json({"kind": record["kind"], "cell": record["cell"], "source": source})


def collect(results_dir: str | Path, suite: str | None = None) -> Collected:
    """Valid "ok" records under results_dir (runs and filed submissions), deduplicated:
    for one logical cell (config without code version) the latest record wins. With `suite`
    (a name, a path, or None for all), only records of that suite's current protocol count."""
    import yaml

    root = Path(results_dir)
    pairs, problems = rec.load_records(root)
    wanted_hash = None
    wanted_name = None
    wanted_version = None
    grid: set[str] = set()
    if suite is not None:
        from benchmark.suite import SuiteError, cell_key, load_suite

        try:
            s = load_suite(suite, check_names=False)
            wanted_name, wanted_hash, wanted_version = s.name, s.protocol_hash(), s.version
            grid = s.cell_keys()
        except SuiteError:
            wanted_name = str(suite)
    latest: dict[str, Entry] = {}
    cards: dict[str, dict] = {}
    ignored = 0
    for path, record in pairs:
        if record["status"] != "ok":
            continue
        if wanted_name is not None and record["suite"]["name"] != wanted_name:
            continue
        source = _source_of(path, root)
        if wanted_hash is not None:
            # Our own cells must be in the grid (the hash leaves the model rows out: a model
            # dropped from a task keeps the hash); one from an earlier revision of this
            # version counts when its cell is still there as it was.
            in_grid = not source and cell_key(record["cell"]) in grid
            if (not source and not in_grid) or (record["suite"]["protocol_hash"] != wanted_hash and not (
                    in_grid and record["suite"].get("version") == wanted_version)):
                ignored += 1
                continue
        if source and source not in cards:
            card_file = root / "submissions" / source / "card.yaml"
            try:
                cards[source] = yaml.safe_load(card_file.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                cards[source] = {}
        key = _logical_key(record, source)
        prev = latest.get(key)
        if prev is None or record["timings"].get("finished_at", "") >= prev.record["timings"].get("finished_at", ""):
            latest[key] = Entry(path, record, source)
    if ignored:
        problems.append(f"{ignored} record(s) of other versions of suite {wanted_name!r} or of cells no longer "
                        f"in its grid ignored")
    entries = sorted(latest.values(), key=lambda e: str(e.path))
    # Without a suite filter, keep each suite name's most recent protocol only.
    if suite is None:
        newest: dict[str, tuple[str, str]] = {}
        for e in entries:
            s = e.record["suite"]
            stamp = e.record["timings"].get("finished_at", "")
            if s["name"] not in newest or stamp > newest[s["name"]][1]:
                newest[s["name"]] = (s["protocol_hash"], stamp)
        kept = [e for e in entries if e.record["suite"]["protocol_hash"] == newest[e.record["suite"]["name"]][0]]
        if len(kept) < len(entries):
            problems.append(f"{len(entries) - len(kept)} record(s) of older suite versions ignored")
        entries = kept
    suites = {e.record["suite"]["name"]: e.record["suite"] for e in entries}
    return Collected(entries, cards, problems, suites)


# --------------------------------------------------------------------------- tables


@dataclass
class Table:
    suite: dict
    dataset: str
    task: str
    metric: str  # the robust (leaderboard) metric
    clean_metrics: list[str]
    attacks: list[str]  # attack column labels, in suite order
    common: list[str]  # attacks every row faced (mean robust is over these)
    stats: pd.DataFrame  # one row per (row, column)
    rows: list[dict]  # {"row", "model", "defense", "source", "display"}
    protocol: dict  # caption facts
    has_submissions: bool = False
    details: pd.DataFrame | None = None  # one line per (row, attack): same-example clean, robust, ASR, drop
    degenerate: dict[str, str] = field(default_factory=dict)  # attack label -> why it is not ranked on
    areas: list[str] = field(default_factory=list)  # attack families with an area-under-budget column
    threat_models: dict[str, str] = field(default_factory=dict)  # attack label -> threat model

    @property
    def title(self) -> str:
        return f"{self.dataset} — {self.task}"


def _row_key(e: Entry) -> str:
    c = e.cell
    return "\x1f".join([e.source, c["model"]["label"], c["defense"]["label"]])


def build_tables(collected: Collected, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                 metric: dict | None = None) -> list[Table]:
    metric = {**DEFAULT_METRIC, **(metric or {})}
    groups: dict[tuple, list[Entry]] = {}
    for e in collected.entries:
        key = (e.record["suite"]["name"], e.cell["dataset"]["label"], e.cell["task"])
        groups.setdefault(key, []).append(e)
    tables = []
    for (suite_name, dataset, task), entries in sorted(groups.items()):
        tables.append(_build_table(collected.suites[suite_name], dataset, task, entries, collected.cards,
                                   metric[task], n_boot, alpha, seed))
    return tables


def _build_table(suite: dict, dataset: str, task: str, entries: list[Entry], cards: dict, metric: str,
                 n_boot: int, alpha: float, seed: int) -> Table:
    train = [e for e in entries if e.record["kind"] == "train"]
    def _poisoning(e) -> bool:  # poisoning cells have their own tables: benchmark.poisoning_board
        return e.cell["attack"].get("threat_model") == "poisoning"

    attacks = [e for e in entries if e.record["kind"] == "attack" and not e.cell["attack"].get("sweep") and not _poisoning(e)]
    sweeps = [e for e in entries if e.record["kind"] == "attack" and e.cell["attack"].get("sweep") and not _poisoning(e)]
    primary = PRIMARY_METRIC[task]
    clean_metrics = [primary] + ([metric] if metric != primary else [])
    attack_labels = sorted({e.cell["attack"]["label"]: _attack_order(e) for e in attacks}.items(), key=lambda kv: kv[1])
    attack_labels = [label for label, _ in attack_labels]

    rows: dict[str, dict] = {}
    for e in train + attacks:
        k = _row_key(e)
        rows.setdefault(k, {"row": k, "model": e.cell["model"]["label"], "defense": e.cell["defense"]["label"],
                            "defense_name": e.cell["defense"]["name"], "source": e.source,
                            "display": display_model(e, cards)})

    # value[(row, column)] -> list of (seed, value, per-example sample)
    values: dict[tuple[str, str], list[tuple[int, float, dict | None]]] = {}
    for e in train:
        for m in clean_metrics:
            v = e.record["metrics"]["clean"].get(m)
            if v is not None:
                values.setdefault((_row_key(e), f"clean:{m}"), []).append(
                    (e.cell["seed"], float(v), clean_values(e.load_rows(), task, m)))
    details: dict[tuple[str, str], list[dict]] = {}  # (row, attack) -> per-seed same-example figures
    for e in attacks:
        robust = e.record["metrics"].get("robust", {})
        m = metric if metric in robust else (next(iter(robust)) if len(robust) == 1 else None)
        if m is None or robust.get(m) is None:
            continue
        rows_ = e.load_rows()
        sample = robust_values(rows_, m)
        values.setdefault((_row_key(e), f"attack:{e.cell['attack']['label']}"), []).append(
            (e.cell["seed"], float(robust[m]), sample))
        details.setdefault((_row_key(e), e.cell["attack"]["label"]), []).append(
            _attack_detail(e, rows_, m, float(robust[m]), sample))
    for r, info in rows.items():
        info["chance_level"], info["at_chance"] = _chance_level(r, train, task, metric)

    faced = {r: {a for a in attack_labels if (r, f"attack:{a}") in values} for r in rows}
    detail_stats = _detail_stats(details, metric, n_boot, seed)
    degenerate = _degenerate_columns(detail_stats, attack_labels)
    common = [a for a in attack_labels if all(a in faced[r] for r in rows) and a not in degenerate] if rows else []
    curves = _curve_areas(attacks + sweeps, details, metric)

    stat_rows = []
    for (row, col), items in values.items():
        items = sorted(items, key=lambda t: t[0])
        vals = np.array([v for _, v, _ in items])
        samples = [s for _, _, s in items if s is not None]
        name = col.split(":", 1)[1]
        m = name if col.startswith("clean:") else metric
        statistic = "auc" if (samples and "labels" in samples[0]) else "mean"
        lo, hi = bootstrap_ci(samples, statistic, n_boot, seed) if samples and len(samples) == len(items) else (math.nan, math.nan)
        n_ex = sum(len(s["ids"]) for s in samples) if samples else None
        stat_rows.append({"row": row, "column": col, "metric": m, "mean": float(vals.mean()),
                          "std": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan, "n_seeds": len(vals),
                          "seeds": ",".join(str(s) for s, _, _ in items), "ci_low": lo, "ci_high": hi,
                          "n_examples": n_ex})
    # Areas under robustness-vs-budget curves: one column per swept attack.
    for (r, family), per_seed in curves.items():
        areas = np.array([v for _, v in sorted(per_seed.items()) if math.isfinite(v)])
        if len(areas):
            stat_rows.append({"row": r, "column": f"area:{family}", "metric": metric, "mean": float(areas.mean()),
                              "std": float(areas.std(ddof=1)) if len(areas) > 1 else math.nan,
                              "n_seeds": len(areas), "seeds": ",".join(str(s) for s in sorted(per_seed)),
                              "ci_low": math.nan, "ci_high": math.nan, "n_examples": None})
    stats = pd.DataFrame(stat_rows, columns=["row", "column", "metric", "mean", "std", "n_seeds", "seeds", "ci_low",
                                             "ci_high", "n_examples"])
    area_families = sorted({fam for _, fam in curves}, key=lambda f: attack_labels.index(f) if f in attack_labels else 99)

    # Aggregates: mean robust over the common attacks (else over what the row faced), worst case;
    # degenerate columns count in neither.
    agg_rows = []
    for r in rows:
        faced[r] = {a for a in faced[r] if a not in degenerate}
        use = common or sorted(faced[r])
        per_seed: dict[int, list[float]] = {}
        for a in use:
            for s, v, _ in values.get((r, f"attack:{a}"), []):
                per_seed.setdefault(s, []).append(v)
        seeds_full = {s: v for s, v in per_seed.items() if len(v) == len(use)}
        if use and seeds_full:
            means = np.array([np.mean(v) for v in seeds_full.values()])
            agg_rows.append({"row": r, "column": "mean_robust", "metric": metric, "mean": float(means.mean()),
                             "std": float(means.std(ddof=1)) if len(means) > 1 else math.nan,
                             "n_seeds": len(means), "seeds": ",".join(map(str, sorted(seeds_full)))})
        worst = [stats.loc[(stats.row == r) & (stats.column == f"attack:{a}"), "mean"].iloc[0] for a in faced[r]]
        if worst:
            agg_rows.append({"row": r, "column": "worst_robust", "metric": metric, "mean": float(min(worst)),
                             "std": math.nan, "n_seeds": None, "seeds": ""})
    if agg_rows:
        stats = pd.concat([stats, pd.DataFrame(agg_rows)], ignore_index=True)

    stats = _significance(stats, rows, values, alpha)
    stats = _rank_and_best(stats, rows)
    stats.loc[stats.column.isin([f"attack:{a}" for a in degenerate]), "best"] = False  # nothing to rank on
    has_sub = any(v["source"] for v in rows.values())
    if has_sub:
        stats = _reported(stats, rows, cards, dataset, task, metric)
    protocol = _protocol(train, attacks, attack_labels, suite)
    detail_stats = _detail_significance(detail_stats, stats)
    threats = {e.cell["attack"]["label"]: e.cell["attack"].get("threat_model") or "other" for e in attacks}
    return Table(suite, dataset, task, metric, clean_metrics, attack_labels, common, stats,
                 sorted(rows.values(), key=lambda r: (r["source"], r["model"], r["defense_name"] != "none", r["defense"])),
                 protocol, has_sub, details=detail_stats, degenerate=degenerate, areas=area_families,
                 threat_models={a: threats[a] for a in attack_labels})


def _attack_detail(e: Entry, rows: list[dict], metric: str, robust: float, sample: dict | None) -> dict:
    """One seed's same-example figures of an attack cell: clean before / robust after on the
    attacked examples, success over the examples the model got right, relative drop."""
    clean_sample = astats.clean_same_values(rows, metric)
    block = e.record["metrics"]
    if clean_sample is not None:
        clean = astats.sample_statistic(clean_sample)
    else:
        clean = block.get("clean", {}).get(metric)
        clean = float(clean) if clean is not None else math.nan
    success = astats.success_values(rows)
    asr = block.get("attack", {}).get("attack_success_rate")
    if success:
        asr = float(np.mean(success))
    paired = clean_sample is not None and sample is not None and clean_sample["ids"] == sample["ids"]
    return {"seed": e.cell["seed"], "clean": clean, "robust": robust,
            "asr": math.nan if asr is None else float(asr), "drop": astats.relative_drop(clean, robust),
            "n": len(sample["ids"]) if sample else block.get("attack", {}).get("examples"),
            "n_attacked": len(success), "success": success,
            "pair": (clean_sample, sample) if paired else None}


def _detail_stats(details: dict, metric: str, n_boot: int, seed: int) -> pd.DataFrame:
    """One line per (row, attack): mean over seeds of the same-example figures, with
    bootstrap intervals from the per-example rows."""
    out = []
    for (row, attack), items in details.items():
        items = sorted(items, key=lambda d: d["seed"])
        line = {"row": row, "attack": attack, "metric": metric, "n_seeds": len(items),
                "n_examples": sum(d["n"] or 0 for d in items), "n_attacked": sum(d["n_attacked"] for d in items)}
        for key in ("clean", "robust", "asr", "drop"):
            v = np.array([d[key] for d in items], float)
            v = v[np.isfinite(v)]
            line[key] = float(v.mean()) if len(v) else math.nan
            line[f"{key}_std"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
        pairs = [d["pair"] for d in items]
        full = all(p is not None for p in pairs)
        for key, which in (("clean", 0), ("robust", 1)):
            lo, hi = (bootstrap_ci([p[which] for p in pairs], "auc" if "labels" in pairs[0][which] else "mean",
                                   n_boot, seed) if full else (math.nan, math.nan))
            line[f"{key}_ci_low"], line[f"{key}_ci_high"] = lo, hi
        line["asr_ci_low"], line["asr_ci_high"] = (astats.mean_ci([d["success"] for d in items], n_boot, seed)
                                                   if all(d["success"] for d in items) else (math.nan, math.nan))
        line["drop_ci_low"], line["drop_ci_high"] = astats.drop_ci(pairs, n_boot, seed) if full else (math.nan, math.nan)
        out.append(line)
    cols = ["row", "attack", "metric", "n_seeds", "n_examples", "n_attacked"] + [
        f"{k}{s}" for k in ("clean", "robust", "asr", "drop") for s in ("", "_std", "_ci_low", "_ci_high")]
    return pd.DataFrame(out, columns=cols)


def _detail_significance(details: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Copy the paired test of each attack column (defended vs undefended) onto the detail lines."""
    details = details.copy()
    details["p_holm"] = math.nan
    details["significant"] = False
    for i, line in details.iterrows():
        hit = stats[(stats.row == line["row"]) & (stats.column == f"attack:{line['attack']}")]
        if not hit.empty:
            details.loc[i, "p_holm"] = hit["p_holm"].iloc[0]
            details.loc[i, "significant"] = bool(hit["significant"].iloc[0])
    return details


def _degenerate_columns(details: pd.DataFrame, labels: list[str]) -> dict[str, str]:
    """Attack label -> reason, for columns where every row scores the same extreme."""
    out = {}
    for a in labels:
        grp = details[details.attack == a]
        reason = astats.degenerate_reason(list(zip(grp["robust"], grp["clean"])))
        if reason:
            out[a] = reason
    return out


def _chance_level(row: str, train: list[Entry], task: str, metric: str) -> tuple[float | None, bool]:
    """(chance level, clean figure at or below it) of a row, averaged over its seeds.
    Preference: the test majority-label rate against clean accuracy (always predicting one
    label). Ranking: the table metric's expected value when the positive's rank among the
    1 + num_negatives candidates is uniform (a random order), against the clean metric."""
    levels, values = [], []
    for e in train:
        if _row_key(e) != row:
            continue
        clean = e.record["metrics"]["clean"]
        if task == "preference":
            level, value = astats.majority_rate(e.load_rows()), clean.get("accuracy")
        else:
            level, value = _random_order_level(e.cell["sizes"], metric), clean.get(metric)
        if level is not None and value is not None:
            levels.append(level)
            values.append(float(value))
    if not levels:
        return None, False
    level = float(np.mean(levels))
    return level, bool(np.mean(values) <= level + astats.TOLERANCE)


def _random_order_level(sizes: dict, metric: str) -> float | None:
    """A ranking metric's expected value with the positive's rank uniform over the candidates."""
    negatives = sizes.get("num_negatives")
    if not isinstance(negatives, int) or negatives < 1:
        return None
    every_rank = [{"example_id": str(r), "rank": r} for r in range(1, negatives + 2)]
    values = clean_values(every_rank, "ranking", metric)
    return float(np.mean(values["values"])) if values and "values" in values else None


def _curve_areas(attacks: list[Entry], details: dict, metric: str) -> dict[tuple[str, str], dict[int, float]]:
    """(row, attack family) -> {seed: normalised area under robust-vs-budget}. Points: the
    sweep cells and the leaderboard cell of a swept attack (edit budget, query budget or an
    option), or the epsilon curve an embedding attack records; plus budget 0 = the clean
    figure on the same examples (no attack)."""
    swept = {e.cell["attack"]["sweep"]["of"]: e.cell["attack"]["sweep"]["param"]
             for e in attacks if e.cell["attack"].get("sweep")}
    points: dict[tuple[str, str, int], dict[float, float]] = {}
    for e in attacks:
        a = e.cell["attack"]
        family = a["sweep"]["of"] if a.get("sweep") else a["label"]
        key = (_row_key(e), family, e.cell["seed"])
        if family in swept:
            param = swept[family]
            x = a["sweep"]["value"] if a.get("sweep") else (
                a.get(param) if param in ("budget", "query_budget") else (a.get("options") or {}).get(param))
            y = (e.record["metrics"].get("robust") or {}).get(metric)
            if x is not None and y is not None:
                points.setdefault(key, {})[float(x)] = float(y)
        elif not a.get("sweep"):
            for point in (e.record["metrics"].get("attack") or {}).get("curve") or []:
                eps = point.get("epsilon", point.get("eps"))
                y = (point.get("robust") or {}).get(metric)
                if eps is not None and y is not None:
                    points.setdefault(key, {})[float(eps)] = float(y)
    out: dict[tuple[str, str], dict[int, float]] = {}
    for (row, family, s), pts in points.items():
        if len(pts) < 2:
            continue
        clean = next((d["clean"] for d in details.get((row, family), []) if d["seed"] == s), None)
        if clean is not None and math.isfinite(clean) and 0.0 not in pts:
            pts = {0.0: clean, **pts}
        out.setdefault((row, family), {})[s] = astats.curve_area(pts)
    return out


THREAT_ORDER = {"profile": 0, "text": 1, "embedding": 2}


def _attack_order(e: Entry):
    a = e.cell["attack"]
    return (THREAT_ORDER.get(a.get("threat_model"), 3), a["label"])


def _significance(stats: pd.DataFrame, rows: dict, values: dict, alpha: float) -> pd.DataFrame:
    stats = stats.copy()
    stats["test"] = None
    stats["p_value"] = math.nan
    tests = []
    for r, info in rows.items():
        if info["defense_name"] == "none":
            continue
        base = next((k for k, v in rows.items() if v["source"] == info["source"] and v["model"] == info["model"]
                     and v["defense_name"] == "none"), None)
        if base is None:
            continue
        for (row, col), items in values.items():
            if row != r or (base, col) not in values:
                continue
            m = stats.loc[(stats.row == r) & (stats.column == col), "metric"].iloc[0]
            if m not in BINARY_METRICS and not m.startswith("ndcg@") and m != "mrr":
                continue  # AUC / log-loss: no per-example paired test here
            a, b = _paired(items, values[(base, col)])
            if len(a) == 0:
                continue
            if m in BINARY_METRICS:
                p, test = mcnemar_exact(a, b), "mcnemar-exact"
            else:
                p, test = wilcoxon_paired(a, b), "wilcoxon"
            tests.append((r, col, p, test))
    if tests:
        adjusted = holm([t[2] for t in tests])
        for (r, col, p, test), p_adj in zip(tests, adjusted):
            mask = (stats.row == r) & (stats.column == col)
            stats.loc[mask, "p_value"] = p
            stats.loc[mask, "p_holm"] = p_adj
            stats.loc[mask, "test"] = test
    if "p_holm" not in stats:
        stats["p_holm"] = math.nan
    stats["significant"] = stats["p_holm"] < alpha
    return stats


def _paired(items_a, items_b) -> tuple[np.ndarray, np.ndarray]:
    """Per-example values of two rows matched on (seed, example id)."""
    a_map, b_map = {}, {}
    for target, items in ((a_map, items_a), (b_map, items_b)):
        for s, _, sample in items:
            if sample and "values" in sample:
                for i, v in zip(sample["ids"], sample["values"]):
                    target[(s, i)] = v
    keys = sorted(set(a_map) & set(b_map))
    return np.array([a_map[k] for k in keys]), np.array([b_map[k] for k in keys])


def _rank_and_best(stats: pd.DataFrame, rows: dict) -> pd.DataFrame:
    stats = stats.copy()
    stats["best"] = False
    for _, grp in stats.groupby("column"):
        m = grp["metric"].iloc[0]
        best = grp["mean"].min() if m in LOWER_IS_BETTER else grp["mean"].max()
        stats.loc[grp.index[np.isclose(grp["mean"], best)], "best"] = True
    mr = stats[stats.column == "mean_robust"].copy()
    ranks = mr["mean"].rank(ascending=False, method="min")
    stats["rank"] = math.nan
    stats.loc[mr.index, "rank"] = ranks
    return stats


def _reported(stats: pd.DataFrame, rows: dict, cards: dict, dataset: str, task: str, metric: str) -> pd.DataFrame:
    stats = stats.copy()
    stats["reported"] = math.nan
    stats["flag"] = False
    for r, info in rows.items():
        if not info["source"]:
            continue
        card = cards.get(info["source"]) or {}
        for item in card.get("reported") or []:
            if not isinstance(item, dict) or item.get("dataset") not in (dataset, None) or item.get("task") != task:
                continue
            if item.get("defense", "none") != info["defense"]:
                continue
            for col, value in _reported_columns(item, metric):
                mask = (stats.row == r) & (stats.column == col)
                if not mask.any() or not isinstance(value, (int, float)):
                    continue
                stats.loc[mask, "reported"] = float(value)
                verified = stats.loc[mask, "mean"].iloc[0]
                if col != "clean" and float(value) > verified + REPORTED_TOLERANCE:
                    stats.loc[mask, "flag"] = True
    return stats


def _reported_columns(item: dict, metric: str):
    if "clean" in item:
        yield f"clean:{item.get('clean_metric', metric)}", item["clean"]
    if "robust" in item:
        yield "mean_robust", item["robust"]
    for label, v in (item.get("attacks") or {}).items():
        yield f"attack:{label}", v


def _protocol(train: list[Entry], attacks: list[Entry], labels: list[str], suite: dict) -> dict:
    seeds = sorted({e.cell["seed"] for e in train + attacks})
    sizes = train[0].cell["sizes"] if train else (attacks[0].cell["sizes"] if attacks else {})
    clean_n = sorted({e.record["metrics"]["clean"].get("examples") for e in train} - {None})
    attacked_n = sorted({e.record["metrics"].get("attack", {}).get("examples") for e in attacks} - {None})
    settings = {}
    for e in attacks:
        a = e.cell["attack"]
        if a["label"] in settings:
            continue
        parts = []
        if a.get("budget") is not None:
            parts.append(f"budget {a['budget']}")
        if a.get("query_budget") is not None:
            parts.append(f"query budget {a['query_budget']}")
        for k in ("epsilon", "eps"):
            if k in (a.get("options") or {}):
                parts.append(f"epsilon {a['options'][k]}")
        parts.append(f"scope {a['scope']}")
        if a.get("goal"):
            parts.append(f"goal {a['goal']}")
        settings[a["label"]] = ", ".join(parts)
    return {"suite": f"{suite['name']} v{suite['version']}", "seeds": seeds, "sizes": sizes,
            "clean_examples": clean_n, "attacked_examples": attacked_n,
            "attacks": {l: settings.get(l, "") for l in labels}}


# --------------------------------------------------------------------------- rendering
#
# Every format renders one format-neutral view of a table (raw strings; nothing escaped):
# Markdown through tabulate, HTML and LaTeX through the Jinja2 templates in
# benchmark/templates/ — HTML with autoescape, LaTeX with escape_latex applied to every
# value the template prints (so card text can never break out of either).


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _finite(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _cell(stats: pd.DataFrame, row: str, col: str) -> dict | None:
    hit = stats[(stats.row == row) & (stats.column == col)]
    return None if hit.empty else hit.iloc[0].to_dict()


def _columns(t: Table) -> list[tuple[str, str]]:
    cols = [(f"clean:{m}", f"{METRIC_NAMES.get(m, m)} (clean)") for m in t.clean_metrics]
    cols += [(f"attack:{a}", a + (f" {DEGENERATE}" if a in t.degenerate else "")) for a in t.attacks]
    cols += [(f"area:{a}", f"Area {a}") for a in t.areas]
    cols += [("mean_robust", "Mean robust"), ("worst_robust", "Worst")]
    return cols


def _caption(t: Table, esc) -> str:
    p = t.protocol
    sizes = p["sizes"]
    attacks = "; ".join(f"{esc(a)}: {esc(s)}" for a, s in p["attacks"].items())
    common = ", ".join(esc(a) for a in t.common) or "all attacks each row faced"
    return (f"{esc(t.dataset)}, {esc(t.task)} task, suite {esc(p['suite'])}. Leave-last-out test split; "
            f"history length {sizes.get('history_len')}"
            + (f", {sizes.get('num_negatives')} sampled negatives" if t.task == "ranking" else "")
            + f"; {esc('/'.join(map(str, p['clean_examples'])))} clean test examples, "
            f"{esc('/'.join(map(str, p['attacked_examples'])))} attacked per attack. "
            f"Robust metric: {esc(METRIC_NAMES.get(t.metric, t.metric))} after attack ({attacks}). "
            + (f"Mean ± std over seeds {esc(', '.join(map(str, p['seeds'])))}" if len(p["seeds"]) > 1
               else f"One seed ({esc(', '.join(map(str, p['seeds'])))}): no std")
            + f"; mean robust over {common}; rank by mean robust. "
            f"{DAGGER}: differs from the same model without defense (Holm-corrected p < 0.05; exact McNemar for 0/1 "
            f"metrics, Wilcoxon signed-rank for NDCG).")


def _notes(t: Table) -> list[str]:
    """Sentences after the caption for the flags this table uses (raw text)."""
    notes = []
    if t.degenerate:
        what = "; ".join(f"{a}: {why}" for a, why in t.degenerate.items())
        notes.append(f"{DEGENERATE}: every row scores the same extreme under this attack ({what}), so it says nothing "
                     f"about the rows: flagged, not counted in mean robust, worst or rank.")
    at_chance = [r for r in t.rows if r.get("at_chance")]
    if at_chance:
        levels = ", ".join(sorted({_fmt(r["chance_level"]) for r in at_chance}))
        if t.task == "preference":
            notes.append(f"{CHANCE}: clean accuracy at or below the test majority-label rate ({levels}): "
                         f"no better than always predicting the majority label.")
        else:
            notes.append(f"{CHANCE}: clean {METRIC_NAMES.get(t.metric, t.metric)} at or below a random order of "
                         f"the candidates ({levels}): the model ranks no better than chance.")
    if t.areas:
        notes.append("Area: normalised area under the robustness-vs-budget curve (budget 0 = clean on the same "
                     "examples, then every swept budget; trapezoids divided by the budget range).")
    return notes


DETAIL_NOTE = ("Per attack, on the attacked examples: clean = the metric on exactly these examples before the attack "
               "(the full-test-split clean figure is in the table above); ASR = attack success rate over the examples "
               "the model got right; drop = (clean - robust) / clean; n = examples summed over seeds, attacked = those "
               "the model got right before the attack. Intervals: 95% bootstrap over examples.")


def _value(c: dict | None, ci: bool) -> dict:
    """{text, best, sig, ci}: the number with its std, and the interval as text (or None)."""
    if c is None:
        return {"text": "–", "best": False, "sig": False, "ci": None}
    text = _fmt(c["mean"])
    if _finite(c.get("std")):
        text += f" ± {_fmt(c['std'])}"
    interval = None
    if ci and _finite(c.get("ci_low")):
        interval = f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]"
    return {"text": text, "best": bool(c.get("best")) and text != "–", "sig": bool(c.get("significant")), "ci": interval}


def _rank_text(t: Table, row: str) -> str:
    c = _cell(t.stats, row, "mean_robust")
    return "–" if c is None or c.get("rank") is None or math.isnan(c["rank"]) else str(int(c["rank"]))


def _reported_text(t: Table, row: str, flag_mark: str) -> str:
    if "reported" not in t.stats:
        return ""
    hit = t.stats[(t.stats.row == row) & t.stats.reported.notna()]
    if hit.empty:
        return "–"
    parts = []
    for _, c in hit.iterrows():
        label = "clean" if c["column"].startswith("clean:") else (
            "mean robust" if c["column"] == "mean_robust" else c["column"].split(":", 1)[1])
        parts.append(f"{label} {_fmt(c['reported'])}" + (f" {flag_mark}" if c["flag"] else ""))
    return "; ".join(parts)


def _flagged(t: Table, row: str) -> bool:
    return "flag" in t.stats and bool(t.stats[(t.stats.row == row) & (t.stats.flag == True)].shape[0])  # noqa: E712


def _detail_value(line, key: str, digits: int = 3) -> dict:
    text = _fmt(line[key], digits)
    if _finite(line.get(f"{key}_std")):
        text += f" ± {_fmt(line[f'{key}_std'], digits)}"
    interval = f"[{_fmt(line[f'{key}_ci_low'])}, {_fmt(line[f'{key}_ci_high'])}]" if _finite(line.get(f"{key}_ci_low")) else None
    return {"text": text, "ci": interval}


def table_view(t: Table, ci: bool = True) -> dict:
    """The format-neutral view of a table that every renderer prints (raw, unescaped strings)."""
    cols = _columns(t)
    rows = []
    for r in t.rows:
        cells = [_value(_cell(t.stats, r["row"], col), ci and col.startswith(("clean", "attack"))) for col, _ in cols]
        rows.append({"model": r["display"], "defense": r["defense"], "at_chance": bool(r.get("at_chance")),
                     "cells": cells, "rank": _rank_text(t, r["row"]),
                     "reported": _reported_text(t, r["row"], "") if t.has_submissions else "",
                     "flagged": _flagged(t, r["row"]) if t.has_submissions else False})
    info = {r["row"]: r for r in t.rows}
    details = []
    if t.details is not None and not t.details.empty:
        order = {a: i for i, a in enumerate(t.attacks)}
        lines = sorted((line for _, line in t.details.iterrows()),
                       key=lambda l: (order.get(l["attack"], 99), [r["row"] for r in t.rows].index(l["row"])))
        for line in lines:
            r = info[line["row"]]
            details.append({"attack": line["attack"], "degenerate": line["attack"] in t.degenerate,
                            "model": r["display"], "defense": r["defense"],
                            "at_chance": bool(r.get("at_chance")), "n": int(line["n_examples"]),
                            "n_attacked": int(line["n_attacked"]), "clean": _detail_value(line, "clean"),
                            "robust": _detail_value(line, "robust"), "asr": _detail_value(line, "asr"),
                            "drop": _detail_value(line, "drop"), "sig": bool(line["significant"])})
    return {"title": t.title, "label": f"{slug(t.protocol['suite'])}-{slug(t.dataset)}-{slug(t.task)}",
            "headers": [h for _, h in cols], "columns": [c for c, _ in cols],
            "rows": rows, "details": details, "caption": _caption(t, str), "notes": _notes(t),
            "has_submissions": t.has_submissions, "metric": METRIC_NAMES.get(t.metric, t.metric)}


def _marks(model: str, at_chance: bool) -> str:
    return model + (f" {CHANCE}" if at_chance else "")


def render_markdown(tables: list[Table], ci: bool = True) -> str:
    from tabulate import tabulate

    out = []
    for t in tables:
        v = table_view(t, ci)
        headers = ["Model", "Defense"] + [escape_md(h) for h in v["headers"]] + ["Rank"]
        if v["has_submissions"]:
            headers.append("Reported (card)")
        body = []
        for r in v["rows"]:
            line = [escape_md(_marks(r["model"], r["at_chance"])), escape_md(r["defense"])]
            for c in r["cells"]:
                text = c["text"] + (f" {c['ci']}" if c["ci"] else "") + (DAGGER if c["sig"] else "")  # numbers only
                line.append(f"**{text}**" if c["best"] else text)
            line.append(r["rank"])
            if v["has_submissions"]:
                line.append(escape_md(r["reported"]) + (f" {FLAG}" if r["flagged"] else ""))
            body.append(line)
        text = (f"### {escape_md(v['title'])}\n\n" + tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
                + f"\n\n{_caption(t, escape_md)}"
                + (f" {FLAG}: a reported robust figure more than {REPORTED_TOLERANCE:.2f} above ours." if t.has_submissions else "")
                + (" Intervals: 95% bootstrap over examples." if ci else "")
                + "".join(f" {escape_md(n)}" for n in v["notes"]) + "\n")
        if v["details"]:
            dhead = ["Attack", "Model", "Defense", "n", "Clean (same examples)", "Robust", "ASR", "Drop"]
            dbody = [[escape_md(d["attack"] + (f" {DEGENERATE}" if d["degenerate"] else "")),
                      escape_md(_marks(d["model"], d["at_chance"])), escape_md(d["defense"]),
                      f"{d['n']} ({d['n_attacked']} attacked)"]
                     + [d[k]["text"] + (f" {d[k]['ci']}" if d[k]["ci"] else "") + (DAGGER if k == "robust" and d["sig"] else "")
                        for k in ("clean", "robust", "asr", "drop")] for d in v["details"]]
            text += (f"\n{escape_md(DETAIL_NOTE)}\n\n"
                     + tabulate(dbody, headers=dhead, tablefmt="github", disable_numparse=True) + "\n")
        out.append(text)
    return "\n".join(out) if out else "No result records found.\n"


class LatexCode(str):
    """LaTeX that is already safe (escaped text or the templates' own markup)."""


def latex_filter(value: Any) -> LatexCode:
    """The one LaTeX escaping filter: text in, safe LaTeX out (idempotent on LatexCode)."""
    return value if isinstance(value, LatexCode) else LatexCode(escape_latex(value))


@lru_cache(maxsize=None)
def _template(name: str):
    """A template from benchmark/templates (package data). HTML: autoescape on. LaTeX:
    <<...>> / <%...%> delimiters (LaTeX braces stay literal) and every printed value passes
    through latex_filter, so nothing is printed unescaped by accident."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    loader = FileSystemLoader(str(TEMPLATE_DIR))
    common = dict(loader=loader, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  keep_trailing_newline=True)
    if name.endswith(".html.j2"):
        env = Environment(autoescape=True, **common)
    else:
        env = Environment(autoescape=False, finalize=latex_filter, variable_start_string="<<",
                          variable_end_string=">>", block_start_string="<%", block_end_string="%>",
                          comment_start_string="<#", comment_end_string="#>", **common)
        env.filters["latex"] = latex_filter
    return env.get_template(name)


def render_latex(tables: list[Table]) -> str:
    views = [table_view(t, ci=False) for t in tables]
    return _template("leaderboard.tex.j2").render(tables=views, dagger=DAGGER, flag_note=(
        f" (!): reported robust figure more than {REPORTED_TOLERANCE:.2f} above ours."), detail_note=DETAIL_NOTE,
        chance=CHANCE, degenerate=DEGENERATE)


def render_html(tables: list[Table], ci: bool = True) -> str:
    views = [table_view(t, ci) for t in tables]
    return _template("leaderboard.html.j2").render(tables=views, dagger=DAGGER, flag=FLAG, flag_note=(
        f" {FLAG}: a reported robust figure more than {REPORTED_TOLERANCE:.2f} above ours."), detail_note=DETAIL_NOTE,
        chance=CHANCE, degenerate=DEGENERATE)


def render_csv(tables: list[Table]) -> str:
    """A tidy table: one line per (suite, dataset, task, row, column) with every statistic."""
    frames = []
    for t in tables:
        info = pd.DataFrame(t.rows).set_index("row")
        df = t.stats.join(info[["model", "defense", "source", "display"]], on="row")
        df.insert(0, "task", t.task)
        df.insert(0, "dataset", t.dataset)
        df.insert(0, "suite", t.protocol["suite"])
        frames.append(df.drop(columns=["row"]))
    if not frames:
        return ""
    df = pd.concat(frames, ignore_index=True)
    lead = ["suite", "dataset", "task", "display", "model", "defense", "source", "column", "metric", "mean", "std",
            "ci_low", "ci_high", "n_seeds", "seeds", "n_examples", "test", "p_value", "p_holm", "significant", "best",
            "rank"]
    cols = [c for c in lead if c in df] + [c for c in df if c not in lead]
    df = df[cols].sort_values(["suite", "dataset", "task", "model", "defense", "column"], kind="mergesort")
    # Card text must not become a spreadsheet formula.
    for c in ("display", "model", "defense"):
        df[c] = df[c].astype(str).map(lambda s: "'" + s if s[:1] in ("=", "+", "-", "@") else s)
    return df.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def render(tables: list[Table], fmt: str) -> str:
    if fmt == "md":
        return render_markdown(tables)
    if fmt == "latex":
        return render_latex(tables)
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "html":
        return render_html(tables)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def build_leaderboard(results_dir: str | Path = "results", suite: str | None = None, fmt: str = "md",
                      out_dir: str | Path | None = None, plots: bool = True, n_boot: int | None = None,
                      seed: int = 0) -> str:
    """Leaderboard text in `fmt` (md, latex, csv, html) from the records under results_dir.

    CLI: ``recrobust leaderboard [--results DIR] [--suite S] [--format md|latex|csv|html]
    [--out DIR]``. With `out_dir`, every format is written there (leaderboard.md/.tex/.csv/
    .html) plus plots/ (PNG and PDF) and site/ (the static HTML site: index.html, one page
    per dataset x task, model cards; benchmark.website), and the requested format is
    returned for printing.
    `suite` limits the tables to one suite's current protocol (name or YAML path).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    collected = collect(results_dir, suite)
    settings = _suite_settings(suite)
    tables = build_tables(collected, n_boot=n_boot or settings.get("bootstrap", 1000),
                          alpha=settings.get("alpha", 0.05), seed=seed, metric=settings.get("metric"))
    texts = {f: render(tables, f) for f in (FORMATS if out_dir else (fmt,))}
    texts = append_poisoning(texts, collected)
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for f, text in texts.items():
            rec._atomic_write_bytes(out / FILE_NAMES[f], text.encode("utf-8"))
        figures = []
        if plots:
            from benchmark.plots import draw_plots
            from benchmark.poisoning_board import draw_budget_plots

            figures = draw_budget_plots(collected, out / "plots")
            figures += draw_plots(collected, out / "plots", metric=settings.get("metric"), tables=tables)
            # Figures of a table no longer on the board (a task dropped from a dataset) would
            # sit beside the fresh ones and be committed as if current.
            drawn = {path.resolve() for f in figures for path in f.files}
            for stale in (out / "plots").glob("*"):
                if stale.suffix in (".png", ".pdf") and stale.resolve() not in drawn:
                    stale.unlink()
        from benchmark.website import write_site

        write_site(out / SITE_DIR, tables, collected, figures, results_dir, downloads=[out / FILE_NAMES[f] for f in texts],
                   suite=suite, metric=settings.get("metric"))
    text = texts[fmt]
    if collected.problems and fmt == "md":
        text += "\n" + "\n".join(f"<!-- note: {escape_html(p)} -->" for p in collected.problems) + "\n"
    return text


def _suite_settings(suite: str | None) -> dict:
    if suite is None:
        return {}
    from benchmark.suite import SuiteError, load_suite

    try:
        return load_suite(suite, check_names=False).leaderboard
    except SuiteError:
        return {}
