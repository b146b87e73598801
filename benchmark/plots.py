"""Plots from result records (matplotlib, Agg backend; each figure as PNG and PDF):

- robust metric vs attack budget, one line per model x defense: from an attack's sweep
  cells (edits budget, model-query budget, or an option such as epsilon) plus its
  leaderboard cell;
- robust metric vs epsilon from the curve embedding attacks put in their summary;
- robustness (and clean accuracy) vs adversarial-training round, from the per-round
  curves defenses record;
- per leaderboard table, the utility/robustness trade-off: clean metric (full test split)
  against mean robust metric, one point per row, with the robust = clean diagonal (a model
  whose score ignores its input sits on it, at the bottom right when its clean figure is
  low) and the chance level (the test majority rate for preference accuracy, a random
  order of the candidates for ranking).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.escaping import slug

DEFAULT_METRIC = {"preference": "accuracy", "ranking": "ndcg@10"}


@dataclass(frozen=True)
class Plot:
    """One written figure and what it shows, so a page can put it next to its table.

    kind: "tradeoff" (clean vs mean robust of a table), "budget" (robust metric vs a swept
    budget or option), "epsilon" (an embedding attack's curve), "rounds" (adversarial-
    training rounds), "poisoning" (target exposure vs fake-user budget). task is None for
    poisoning plots (ranking only); family is the attack label for budget/epsilon/poisoning."""

    png: Path
    pdf: Path
    kind: str
    suite: str
    dataset: str
    task: str | None
    family: str | None
    title: str

    @property
    def files(self) -> list[Path]:
        return [self.png, self.pdf]


def _pick(block: dict | None, metric: str):
    """The metric from a clean/robust block (or its only value when it is named otherwise)."""
    if not isinstance(block, dict):
        return None
    if block.get(metric) is not None:
        return float(block[metric])
    numeric = [v for v in block.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return float(numeric[0]) if len(numeric) == 1 else None


def escape_mathtext(text) -> str:
    """Text shown literally by matplotlib: a '$' pair would otherwise start mathtext (a card
    name like "$\\frac{a}{$" breaks the renderer or draws something else)."""
    return str(text).replace("$", r"\$")


def display_model(e, cards: dict) -> str:
    """A row's model name as tables and figures show it: a submission by its card's name."""
    if e.source:
        name = str((cards.get(e.source) or {}).get("name") or e.source)
        return f"{name} (submitted)"
    return e.cell["model"]["label"]


def _line_label(e, cards) -> str:
    return f"{display_model(e, cards)} / {e.cell['defense']['label']}"


def _save(fig, path_stem: Path) -> list[Path]:
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = path_stem.with_suffix(".png"), path_stem.with_suffix(".pdf")
    fig.savefig(png, dpi=120, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(pdf, bbox_inches="tight", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return [png, pdf]


def _plot_lines(series: dict[str, dict[float, list[float]]], title: str, xlabel: str, ylabel: str, stem: Path,
                log_x: bool = False, dashed: dict[str, dict[float, list[float]]] | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, points) in enumerate(sorted(series.items())):
        xs = sorted(points)
        ys = [float(np.mean(points[x])) for x in xs]
        line, = ax.plot(xs, ys, marker="o", label=escape_mathtext(label))
        if dashed and label in dashed:
            dx = sorted(dashed[label])
            ax.plot(dx, [float(np.mean(dashed[label][x])) for x in dx], linestyle="--", color=line.get_color(),
                    alpha=0.6)
    if log_x:
        ax.set_xscale("log")
    ax.set_title(escape_mathtext(title), fontsize=10)
    ax.set_xlabel(escape_mathtext(xlabel))
    ax.set_ylabel(escape_mathtext(ylabel))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    paths = _save(fig, stem)
    plt.close(fig)
    return paths


def tradeoff_plot(table, stem: Path) -> list[Path]:
    """Clean (y) vs mean robust (x) scatter of one leaderboard table (benchmark.leaderboard.Table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = table.stats
    clean_col = f"clean:{table.metric}" if f"clean:{table.metric}" in set(stats.column) else f"clean:{table.clean_metrics[0]}"
    clean_name = clean_col.split(":", 1)[1]
    points = []
    for r in table.rows:
        c = stats[(stats.row == r["row"]) & (stats.column == clean_col)]
        m = stats[(stats.row == r["row"]) & (stats.column == "mean_robust")]
        if c.empty or m.empty or not np.isfinite(c["mean"].iloc[0]) or not np.isfinite(m["mean"].iloc[0]):
            continue
        points.append((float(m["mean"].iloc[0]), float(c["mean"].iloc[0]), f"{r['display']} / {r['defense']}",
                       bool(r.get("at_chance"))))
    if not points:
        return []
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lo = min(0.0, *(min(x, y) for x, y, _, _ in points))
    hi = max(1.0 if clean_name in ("accuracy", "auc") else 0.0, *(max(x, y) for x, y, _, _ in points))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle=":", linewidth=1, label="robust = clean (attack has no effect)")
    levels = [r["chance_level"] for r in table.rows if r.get("chance_level") is not None]
    if levels and (clean_name == "accuracy" or table.task == "ranking"):
        ax.axhline(float(np.mean(levels)), color="tab:red", linestyle="--", linewidth=1,
                   label="test majority rate" if table.task == "preference" else "random order (chance)")
    for i, (x, y, label, below) in enumerate(points):
        ax.scatter([x], [y], marker="o", s=36, color=f"C{i % 10}", facecolors="none" if below else f"C{i % 10}",
                   label=label + (" (at/below chance)" if below else ""))
    ax.set_xlabel(f"mean robust {table.metric} (over the table's ranked attacks)")
    ax.set_ylabel(f"clean {clean_name} (full test split)")
    ax.set_title(f"{table.dataset} {table.task}: utility vs robustness", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="best")
    paths = _save(fig, stem)
    plt.close(fig)
    return paths


def write_plots(collected, out_dir: str | Path, metric: dict | None = None, tables=None) -> list[Path]:
    """Write every plot the records support under out_dir; returns the files written.
    With `tables` (leaderboard tables), also one clean-vs-robust scatter per table."""
    return [f for plot in draw_plots(collected, out_dir, metric, tables) for f in plot.files]


def draw_plots(collected, out_dir: str | Path, metric: dict | None = None, tables=None) -> list[Plot]:
    """write_plots, returning what each figure shows (see Plot) instead of bare paths."""
    metric = {**DEFAULT_METRIC, **(metric or {})}
    out_dir = Path(out_dir)
    written: list[Plot] = []

    def add(paths: list[Path], kind: str, suite: str, dataset: str, task: str | None, family: str | None,
            title: str) -> None:
        if paths:
            written.append(Plot(paths[0], paths[1], kind, suite, dataset, task, family, title))

    for t in tables or []:
        add(tradeoff_plot(t, out_dir / slug(f"{t.suite['name']}-{t.dataset}-{t.task}-clean-vs-robust")),
            "tradeoff", t.suite["name"], t.dataset, t.task, None, f"{t.dataset} {t.task}: utility vs robustness")
    cards = collected.cards
    attacks = [e for e in collected.entries if e.record["kind"] == "attack"]
    trains = [e for e in collected.entries if e.record["kind"] == "train"]

    # 1. robust metric vs budget (sweep families).
    families: dict[tuple, dict] = {}
    swept = {(e.record["suite"]["name"], e.cell["dataset"]["label"], e.cell["task"], e.cell["attack"]["sweep"]["of"]):
             e.cell["attack"]["sweep"]["param"] for e in attacks if e.cell["attack"].get("sweep")}
    for e in attacks:
        a = e.cell["attack"]
        family = a["sweep"]["of"] if a.get("sweep") else a["label"]
        key = (e.record["suite"]["name"], e.cell["dataset"]["label"], e.cell["task"], family)
        if key not in swept:
            continue
        param = swept[key]
        x = a["sweep"]["value"] if a.get("sweep") else (a.get(param) if param in ("budget", "query_budget")
                                                         else (a.get("options") or {}).get(param))
        y = _pick(e.record["metrics"].get("robust"), metric[e.cell["task"]])
        if x is None or y is None:
            continue
        families.setdefault(key, {"param": param, "series": {}})["series"].setdefault(
            _line_label(e, cards), {}).setdefault(float(x), []).append(y)
    for (suite, dataset, task, family), info in sorted(families.items()):
        param = info["param"]
        xlabel = {"budget": "attack budget (edits)", "query_budget": "model-query budget"}.get(param, param)
        title = f"{dataset} {task}: {family} — robust {metric[task]} vs {param}"
        add(_plot_lines(info["series"], title, xlabel, f"robust {metric[task]}",
                        out_dir / slug(f"{suite}-{dataset}-{task}-{family}-vs-{param}"), log_x=(param == "query_budget")),
            "budget", suite, dataset, task, family, title)

    # 2. embedding-attack curves (epsilon grid inside one cell).
    curves: dict[tuple, dict] = {}
    for e in attacks:
        curve = (e.record["metrics"].get("attack") or {}).get("curve")
        if not curve or e.cell["attack"].get("sweep"):
            continue
        key = (e.record["suite"]["name"], e.cell["dataset"]["label"], e.cell["task"], e.cell["attack"]["label"])
        series = curves.setdefault(key, {}).setdefault(_line_label(e, cards), {})
        for point in curve:
            eps = point.get("epsilon", point.get("eps"))
            y = _pick(point.get("robust"), metric[e.cell["task"]])
            if eps is not None and y is not None:
                series.setdefault(float(eps), []).append(y)
    for (suite, dataset, task, label), series in sorted(curves.items()):
        title = f"{dataset} {task}: {label} — robust {metric[task]} vs epsilon"
        add(_plot_lines(series, title, "epsilon (relative L2)", f"robust {metric[task]}",
                        out_dir / slug(f"{suite}-{dataset}-{task}-{label}-vs-epsilon")),
            "epsilon", suite, dataset, task, label, title)

    # 3. robustness vs adversarial-training round.
    rounds: dict[tuple, tuple[dict, dict]] = {}
    for e in trains:
        per_round = (e.record.get("training") or {}).get("rounds") or []
        if len(per_round) < 2:
            continue
        key = (e.record["suite"]["name"], e.cell["dataset"]["label"], e.cell["task"])
        robust_series, clean_series = rounds.setdefault(key, ({}, {}))
        label = _line_label(e, cards)
        for i, point in enumerate(per_round):
            r = point.get("round", i)
            y = _pick(point.get("robust"), metric[e.cell["task"]])
            c = _pick(point.get("clean"), metric[e.cell["task"]])
            if y is not None:
                robust_series.setdefault(label, {}).setdefault(float(r), []).append(y)
            if c is not None:
                clean_series.setdefault(label, {}).setdefault(float(r), []).append(c)
    for (suite, dataset, task), (robust_series, clean_series) in sorted(rounds.items()):
        if not robust_series:
            continue
        title = f"{dataset} {task}: robust {metric[task]} (solid) and clean (dashed) vs adversarial-training round"
        add(_plot_lines(robust_series, title, "round", metric[task],
                        out_dir / slug(f"{suite}-{dataset}-{task}-defense-rounds"), dashed=clean_series),
            "rounds", suite, dataset, task, None, title)
    return written
