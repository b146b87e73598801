"""The poisoning part of the leaderboard: one table per (suite, dataset, task), rows model x
defense. Ranking: columns the target's HR@10 after each poisoning attack at the suite's
budget (mean ± std over seeds; "before" = the clean model, same users and targets), plus the
clean NDCG@10 after poisoning (mean over the attacks: the cost the attack leaves visible).
Preference (text models retrained on fake users' rendered histories): the target's mean
like-probability before and after, the prediction shift with its user-bootstrap interval
(one seed) or ± std (several), and the AUC after. And a plot of target HR@10 vs fake-user
budget for each swept poisoning attack.
Cross-user promotion attacks (item-promotion: one rewrite of the target's text, no
retraining; their records hold ``exposure@10``) get two columns each, exposure@10 before
and after over their own held-out users (not the fake-user attacks' "before" users).

Kept apart from `benchmark.leaderboard` (which excludes poisoning cells from its robust
columns: target exposure is not a robust accuracy) and called from it in a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.escaping import escape_latex, escape_md, slug
from benchmark.plots import Plot, _plot_lines

THREAT = "poisoning"
METRIC = "target_hr@10"
NOTE = ("Target HR@10 over real test users who never interacted with a target (target + 98 of the "
        "user's sampled negatives), the victim retrained on train + fake users; mean ± std over seeds. "
        "NDCG@10 after: the clean ranking metric of the poisoned models (mean over attacks).")
EXPOSURE_NOTE = (" Exposure@10 (item-text promotion, no retraining): share of held-out users who never "
                 "interacted with a target and have it in their top 10, mean over targets, before and after "
                 "the one rewrite of its text.")
EXPOSURE = "exposure@10"
PREFERENCE_NOTE = ("Target like-probability: the victim's mean predicted probability that a real test user "
                   "who never interacted with a target likes it, before (clean model) and after (retrained on "
                   "train + fake users); shift = after - before over the same (user, target) pairs, with its "
                   "95% user-bootstrap interval for one seed, mean ± std over seeds for several. "
                   "AUC after: the clean preference metric of the poisoned models (mean over attacks).")


@dataclass(frozen=True)
class TaskView:
    """What a task's poisoning table shows: the target metric, the clean metric, the words."""

    metric: str
    metric_name: str
    quality: str
    quality_name: str
    title: str
    note: str
    shift: bool = False  # a prediction-shift column beside each attack (from metrics.attack)


VIEWS = {
    "ranking": TaskView(METRIC, "HR@10", "ndcg@10", "NDCG@10", "target HR@10 after fake-user injection", NOTE),
    "preference": TaskView("target_like_prob", "like-prob", "auc", "AUC",
                           "target like-probability after fake-user injection", PREFERENCE_NOTE, shift=True),
}


def is_poisoning(entry) -> bool:
    attack = entry.cell.get("attack") or {}
    return entry.record["kind"] == "attack" and attack.get("threat_model") == THREAT


@dataclass
class PoisonTable:
    suite: str
    dataset: str
    attacks: list[str]  # column labels, by fake-user budget then label (as the main tables: not record order)
    budgets: dict[str, float | None]  # attack label -> fake-user fraction
    rows: dict[str, dict] = field(default_factory=dict)  # "model / defense" -> {col: [values over seeds]}
    exposure: list[str] = field(default_factory=list)  # promotion attack labels (exposure@10 columns)
    task: str = "ranking"

    @property
    def view(self) -> TaskView:
        return VIEWS[self.task]


def poisoning_tables(collected) -> list[PoisonTable]:
    groups: dict[tuple, PoisonTable] = {}
    for e in collected.entries:
        if not is_poisoning(e) or e.cell["task"] not in VIEWS or e.cell["attack"].get("sweep"):
            continue
        key = (e.record["suite"]["name"], e.cell["dataset"]["label"], e.cell["task"])
        t = groups.setdefault(key, PoisonTable(key[0], key[1], [], {}, task=key[2]))
        label = e.cell["attack"]["label"]
        m = e.record["metrics"]
        row = t.rows.setdefault(f"{e.cell['model']['label']} / {e.cell['defense']['label']}", {})
        if EXPOSURE in (m.get("robust") or {}):  # a promotion attack: its own users, its own columns
            if label not in t.exposure:
                t.exposure.append(label)
            for col, block in (((label, "before"), "clean"), ((label, "after"), "robust")):
                value = (m.get(block) or {}).get(EXPOSURE)
                if value is not None:
                    row.setdefault(col, []).append(float(value))
            continue
        if label not in t.attacks:
            t.attacks.append(label)
            t.budgets[label] = (e.cell["attack"].get("options") or {}).get("fake_users")
        view = t.view
        for col, value in ((label, m.get("robust", {}).get(view.metric)), ("before", m.get("clean", {}).get(view.metric)),
                           ("ndcg_after", m.get("robust", {}).get(view.quality))):
            if value is not None:
                row.setdefault(col, []).append(float(value))
        shift = (m.get("attack") or {}).get("prediction_shift")
        if view.shift and shift is not None:
            row.setdefault((label, "shift"), []).append((float(shift), m["attack"].get("prediction_shift_ci")))
    for t in groups.values():
        t.attacks.sort(key=lambda label: (t.budgets[label] is None, t.budgets[label] or 0.0, label))
        t.exposure.sort()
    return [groups[k] for k in sorted(groups)]


def _fmt(values: list[float] | None) -> str:
    if not values:
        return "-"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _fmt_shift(values: list[tuple[float, list | None]] | None) -> str:
    """A prediction shift: with its bootstrap interval for one seed, ± std over several."""
    if not values:
        return "-"
    if len(values) > 1:
        shifts = [v for v, _ in values]
        return f"{np.mean(shifts):+.3f} ± {np.std(shifts):.3f}"
    value, ci = values[0]
    return f"{value:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci and None not in ci else f"{value:+.3f}"


SAME_NOTE = (" ≡: {names} show the same figures in every row: on this data the attacks (nearly) coincide "
             "(random and average, say, differ only in the fillers' ratings, which a victim trained on implicit "
             "interactions ignores), so they are one result, not {n}.")


def same_columns(t: PoisonTable) -> list[list[str]]:
    """Groups of attack columns that show the same figures (mean ± std as printed) in every
    row: a column that repeats another tells the reader nothing new, so it is flagged, as the
    main tables flag degenerate ones."""
    groups: dict[tuple[str, ...], list[str]] = {}  # the column as printed -> its attacks
    for a in t.attacks:
        shown = tuple(_fmt(t.rows[r].get(a)) for r in sorted(t.rows))
        if any(c != "-" for c in shown):
            groups.setdefault(shown, []).append(a)
    return [g for g in groups.values() if len(g) > 1]


def _note(t: PoisonTable) -> str:
    same = "".join(SAME_NOTE.format(names=" and ".join(g), n=len(g)) for g in same_columns(t))
    return t.view.note + same + (EXPOSURE_NOTE if t.exposure else "")


def _header(t: PoisonTable) -> list[str]:
    same = {a for g in same_columns(t) for a in g}
    columns = []
    for a in t.attacks:
        name = (f"{a} ({t.budgets[a]:.0%})" if isinstance(t.budgets[a], float) else a) + (" ≡" if a in same else "")
        columns += [name, f"{a}: shift"] if t.view.shift else [name]
    return (["model / defense", f"{t.view.metric_name} before"] + columns + [f"{t.view.quality_name} after"]
            + [f"{a}: exposure@10 {when}" for a in t.exposure for when in ("before", "after")])


def _cells(t: PoisonTable, row: dict) -> list[str]:
    attacks = [c for a in t.attacks for c in ([_fmt(row.get(a)), _fmt_shift(row.get((a, "shift")))]
                                              if t.view.shift else [_fmt(row.get(a))])]
    return ([_fmt(row.get("before"))] + attacks + [_fmt(row.get("ndcg_after"))]
            + [_fmt(row.get((a, when))) for a in t.exposure for when in ("before", "after")])


def render_markdown(tables: list[PoisonTable]) -> str:
    out = []
    for t in tables:
        out.append(f"\n## Poisoning: {escape_md(t.dataset)} ({escape_md(t.suite)}, {t.task}), {t.view.title}\n")
        out.append(_note(t) + "\n")
        head = _header(t)
        out.append("| " + " | ".join(escape_md(h) for h in head) + " |")
        out.append("|" + "---|" * len(head))
        for name, row in sorted(t.rows.items()):
            out.append("| " + " | ".join([escape_md(name)] + _cells(t, row)) + " |")
    return "\n".join(out) + ("\n" if out else "")


def render_latex(tables: list[PoisonTable]) -> str:
    out = []
    for t in tables:
        head = _header(t)
        out += ["", f"% Poisoning: {t.dataset} ({t.suite}, {t.task})", "\\begin{table}[t]", "\\centering",
                f"\\begin{{tabular}}{{l{'r' * (len(head) - 1)}}}", "\\toprule",
                " & ".join(escape_latex(h).replace("≡", "$\\equiv$") for h in head) + " \\\\", "\\midrule"]
        for name, row in sorted(t.rows.items()):
            out.append(" & ".join([escape_latex(name)] + [escape_latex(c).replace("±", "$\\pm$")
                                                          for c in _cells(t, row)]) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}",
                f"\\caption{{{escape_latex(t.dataset)} ({t.task}): {t.view.title} (mean $\\pm$ std "
                f"over seeds); {t.view.quality_name} after poisoning."
                + "".join(f" {escape_latex(' = '.join(g))}: the same figures in every row (the attacks coincide here)."
                          for g in same_columns(t)) + "}", "\\end{table}"]
    return "\n".join(out) + ("\n" if out else "")


def write_budget_plots(collected, out_dir: Path) -> list[Path]:
    """Target HR@10 vs fake-user budget, one line per model / defense, per swept attack."""
    return [f for plot in draw_budget_plots(collected, out_dir) for f in plot.files]


def draw_budget_plots(collected, out_dir: Path) -> list[Plot]:
    """write_budget_plots, returning what each figure shows (benchmark.plots.Plot)."""
    swept = {(e.record["suite"]["name"], e.cell["dataset"]["label"], e.cell["attack"]["sweep"]["of"])
             for e in collected.entries if is_poisoning(e) and e.cell["attack"].get("sweep")}
    series: dict[tuple, dict] = {}
    for e in collected.entries:
        if not is_poisoning(e) or e.cell["task"] != "ranking":
            continue
        a = e.cell["attack"]
        key = (e.record["suite"]["name"], e.cell["dataset"]["label"], a["sweep"]["of"] if a.get("sweep") else a["label"])
        x = (a.get("options") or {}).get("fake_users")
        y = e.record["metrics"].get("robust", {}).get(METRIC)
        if key in swept and x is not None and y is not None:
            line = f"{e.cell['model']['label']} / {e.cell['defense']['label']}"
            series.setdefault(key, {}).setdefault(line, {}).setdefault(float(x), []).append(float(y))
    written: list[Plot] = []
    for (suite, dataset, family), lines in sorted(series.items()):
        title = f"{dataset}: {family} — target HR@10 vs fake-user budget"
        paths = _plot_lines(lines, title, "fake users (fraction of real users)", "target HR@10",
                            Path(out_dir) / slug(f"{suite}-{dataset}-poisoning-{family}-vs-fake-users"))
        written.append(Plot(paths[0], paths[1], "poisoning", suite, dataset, None, family, title))
    return written


def table_view(t: PoisonTable) -> dict:
    """The format-neutral view of a poisoning table (raw strings), for the HTML site."""
    return {"suite": t.suite, "dataset": t.dataset, "task": t.task, "headers": _header(t), "note": _note(t),
            "rows": [[name] + _cells(t, row) for name, row in sorted(t.rows.items())]}


def append_poisoning(texts: dict[str, str], collected, plot_dir: Path | None = None) -> dict[str, str]:
    """The leaderboard texts with the poisoning tables appended (md, latex); plots if asked."""
    tables = poisoning_tables(collected)
    if plot_dir is not None:
        write_budget_plots(collected, plot_dir)
    if not tables:
        return texts
    extra = {"md": render_markdown, "latex": render_latex}
    return {f: text + extra[f](tables) if f in extra else text for f, text in texts.items()}
