"""The leaderboard as a small static web site (``<out>/site/``), built with the tables.

Pages (all plain files, no server, nothing fetched from the network: the style sheet and
the sorting script are inline, the plots are relative links to ``<out>/plots/``):

- ``index.html``: the protocol (suite, version, datasets, tasks, seeds, sizes, attacks and
  their budgets by threat model), how to read intervals and marks, links to every table
  and model card;
- one page per suite x dataset x task: the leaderboard table (sortable by any column), its
  clean-vs-robust plot, then one section per threat model with the per-attack table and the
  robustness-vs-budget / epsilon plots of those attacks; poisoning on its task's page;
- one card per model: ``models/<label>.html`` for ours, ``submissions/<name>.html`` for
  submitted ones (authors, paper/code links, license, reported vs verified figures, what
  verification re-ran) with the records behind every number.

Card and record text is author-controlled: every value goes through Jinja2 autoescape, links
are made only from http(s) URLs, and a Content-Security-Policy allows only this module's
own script and style (by hash), so even markup that slipped through would not run.
The output is a pure function of the records (no dates, sorted everywhere): rebuilding
from the same records gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from benchmark import leaderboard as lb
from benchmark import poisoning_board
from benchmark.escaping import slug
from benchmark.files import atomic_write_bytes
from benchmark.plots import Plot

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
REFERENCE_CARDS = Path(__file__).resolve().parent / "cards" / "reference.yaml"
THREAT_TITLES = {"profile": "Profile attacks", "text": "Text attacks", "embedding": "Embedding attacks",
                 "poisoning": "Poisoning", "other": "Other attacks"}
THREAT_ORDER = ["profile", "text", "embedding", "other", "poisoning"]
SAFE_URL = re.compile(r"https?://[^\s<>\"'`]+")


# --------------------------------------------------------------------------- templates


@lru_cache(maxsize=None)
def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


@lru_cache(maxsize=None)
def _assets() -> dict:
    """The inline style and script, and the Content-Security-Policy that allows exactly them."""
    css = (TEMPLATE_DIR / "site.css").read_text(encoding="utf-8")
    js = (TEMPLATE_DIR / "site.js").read_text(encoding="utf-8")

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"

    csp = (f"default-src 'none'; img-src 'self'; style-src {digest(css)}; script-src {digest(js)}; "
           "base-uri 'none'; form-action 'none'")
    return {"css": css, "js": js, "csp": csp}


def _render(name: str, page_dir: Path, root: Path, **context) -> bytes:
    rel_root = _rel(root, page_dir)
    text = _env().get_template(name).render(assets=_assets(), root=rel_root, marks=MARKS, **context)
    return text.encode("utf-8")


MARKS = {"dagger": lb.DAGGER, "flag": lb.FLAG, "degenerate": lb.DEGENERATE, "chance": lb.CHANCE,
         "tolerance": f"{lb.REPORTED_TOLERANCE:.2f}"}


# --------------------------------------------------------------------------- helpers


def _rel(target: Path, page_dir: Path) -> str:
    """A relative URL from a page's folder to a file (posix separators)."""
    try:
        return Path(os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())).as_posix()
    except ValueError:  # another drive: no relative path exists
        return ""


def _sort_value(text: str) -> str:
    """The numeric sort key of a figure's text ("0.633 ± 0.010", "30 (24 attacked)", "3"),
    or "" for a missing value ("–"), so the script sorts numbers as numbers."""
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", text or "")
    return m.group(1) if m else ""


def safe_url(value) -> str | None:
    """An http(s) URL usable as a link, or None (javascript:, data: and the like never are)."""
    return value if isinstance(value, str) and SAFE_URL.fullmatch(value) else None


def _classes(**flags) -> str:
    """An HTML class attribute value from flags: _classes(best=True, degenerate=False) == "best"."""
    return " ".join(name for name, on in flags.items() if on)


def _page_name(t: lb.Table) -> str:
    return f"{slug(t.protocol['suite'])}-{slug(t.dataset)}-{slug(t.task)}.html"


@dataclass
class Card:
    """One model's card: ours (source "") or a filed submission (source = its folder)."""

    key: tuple[str, str]  # (source, model label)
    href: str  # relative to the site root
    name: str
    submitted: bool
    info: dict = field(default_factory=dict)  # card fields (escaped by the template)
    entries: list = field(default_factory=list)  # leaderboard Entries behind its numbers
    reported: list = field(default_factory=list)  # reported vs verified lines
    verification: dict | None = None


def _reference_cards() -> dict:
    try:
        return yaml.safe_load(REFERENCE_CARDS.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{REFERENCE_CARDS}: cannot read the reference model cards ({err})") from None


def _cards(collected, results_dir: Path) -> dict[tuple[str, str], Card]:
    refs = _reference_cards()
    cards: dict[tuple[str, str], Card] = {}
    used: set[str] = set()
    for e in sorted(collected.entries, key=lambda e: (e.source, e.cell["model"]["label"], str(e.path))):
        key = (e.source, e.cell["model"]["label"])
        card = cards.get(key)
        if card is None:
            folder = "submissions" if e.source else "models"
            stem = slug(e.source or key[1])
            while f"{folder}/{stem}" in used:
                stem += "-x"
            used.add(f"{folder}/{stem}")
            if e.source:
                info = dict(collected.cards.get(e.source) or {})
                name = str(info.get("name") or e.source)
                verification = _verification(results_dir, e.source)
            else:
                info = dict(refs.get(e.cell["model"]["name"]) or {})
                name = key[1]
                verification = None
            info.setdefault("registry_name", e.cell["model"]["name"])
            info["options"] = json.dumps(e.cell["model"].get("options") or {}, sort_keys=True)
            card = cards[key] = Card(key, f"{folder}/{stem}.html", name, bool(e.source), info, [], [], verification)
        card.entries.append(e)
    return cards


def _verification(results_dir: Path, source: str) -> dict | None:
    path = Path(results_dir) / "submissions" / source / "verification.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _record_line(e, page_dir: Path, results_dir: Path, metric: dict) -> dict:
    """One record behind a card's numbers: what cell it is and its headline figure."""
    cell = e.cell
    kind = e.record["kind"]
    m = metric.get(cell["task"], "")
    block = e.record["metrics"].get("robust" if kind == "attack" else "clean") or {}
    value = block.get(m)
    if value is None:
        value = next((v for k, v in sorted(block.items()) if k != "examples" and isinstance(v, (int, float))), None)
    try:
        shown = Path(e.path).resolve().relative_to(Path(results_dir).resolve()).as_posix()
    except ValueError:
        shown = Path(e.path).name
    return {"suite": e.record["suite"]["name"], "dataset": cell["dataset"]["label"], "task": cell["task"],
            "defense": cell["defense"]["label"], "kind": kind,
            "attack": (cell.get("attack") or {}).get("label", "") if kind == "attack" else "",
            "threat": (cell.get("attack") or {}).get("threat_model", "") if kind == "attack" else "",
            "seed": cell["seed"], "metric": m if block.get(m) is not None else "",
            "value": "–" if value is None else f"{float(value):.3f}",
            "cell_id": e.record["cell_id"], "path": shown, "href": _rel(Path(e.path), page_dir)}


# --------------------------------------------------------------------------- tables


def _figure(plot: Plot, page_dir: Path) -> dict:
    return {"src": _rel(plot.png, page_dir), "pdf": _rel(plot.pdf, page_dir), "title": plot.title, "kind": plot.kind}


def _records_of(collected, t: lb.Table, row: dict) -> list:
    return [e for e in collected.entries
            if e.record["suite"]["name"] == t.suite["name"] and e.cell["dataset"]["label"] == t.dataset
            and e.cell["task"] == t.task and e.source == row["source"] and e.cell["model"]["label"] == row["model"]
            and e.cell["defense"]["label"] == row["defense"]]


def _cell_records(entries: list, column: str) -> str:
    """The record ids behind one table cell (a tooltip): training records for clean columns,
    the attack's records (and its sweep) for its column and area, the attack columns' for the
    aggregates."""
    if column.startswith("clean:"):
        hit = [e for e in entries if e.record["kind"] == "train"]
    elif column.startswith(("attack:", "area:")):
        label = column.split(":", 1)[1]
        hit = [e for e in entries if e.record["kind"] == "attack"
               and label in (e.cell["attack"]["label"], (e.cell["attack"].get("sweep") or {}).get("of"))]
    else:  # mean robust / worst: the leaderboard cells of the attack columns
        hit = [e for e in entries if e.record["kind"] == "attack" and not e.cell["attack"].get("sweep")
               and e.cell["attack"].get("threat_model") != "poisoning"]
    ids = sorted(f"{e.record['cell_id']} (seed {e.cell['seed']})" for e in hit)
    return "records: " + ", ".join(ids) if ids else ""


def _table_page(t: lb.Table, collected, cards: dict, figures: list[Plot], poison: list, page_dir: Path,
                root: Path) -> dict:
    v = lb.table_view(t)
    degenerate_cols = {i for i, c in enumerate(v["columns"]) if c.startswith("attack:") and c[7:] in t.degenerate}
    rows = []
    for info, r in zip(t.rows, v["rows"]):
        card = cards.get((info["source"], info["model"]))
        entries = _records_of(collected, t, info)
        cells = [dict(c, sort=_sort_value(c["text"]), records=_cell_records(entries, v["columns"][i]),
                      classes=_classes(best=c["best"], degenerate=i in degenerate_cols))
                 for i, c in enumerate(r["cells"])]
        rows.append(dict(r, cells=cells, submitted=bool(info["source"]),
                         classes=_classes(submitted=info["source"], **{"at-chance": r["at_chance"]}),
                         card=_rel(root / card.href, page_dir) if card else "",
                         verified=bool(card and card.verification)))
        if card is not None and t.has_submissions:
            card.reported += _reported_lines(t, info, _page_name(t))
    mine = [p for p in figures if p.suite == t.suite["name"] and p.dataset == t.dataset and p.task == t.task]
    threat_of = {**t.threat_models, **_threats(collected, t)}
    sections = []
    for threat in THREAT_ORDER:
        attacks = [a for a in t.attacks if t.threat_models.get(a, "other") == threat]
        if threat == "poisoning" or not attacks:
            continue
        details = [dict(d, n_sort=str(d["n"]),
                        classes=_classes(degenerate=d["degenerate"], **{"at-chance": d["at_chance"]}),
                        **{k: dict(d[k], sort=_sort_value(d[k]["text"]))
                                                  for k in ("clean", "robust", "asr", "drop")})
                   for d in v["details"] if d["attack"] in attacks]
        plots = [_figure(p, page_dir) for p in mine if p.kind in ("budget", "epsilon") and p.family in attacks]
        sections.append({"id": threat, "title": THREAT_TITLES[threat], "details": details, "plots": plots,
                         "poisoning": [],
                         "settings": [(a, t.protocol["attacks"].get(a, ""), a in t.degenerate,
                                       t.degenerate.get(a, "")) for a in attacks]})
    poison_plots = [_figure(p, page_dir) for p in figures if p.suite == t.suite["name"] and p.dataset == t.dataset
                    and ((p.kind == "poisoning" and t.task == "ranking") or (p.task == t.task and p.kind == "budget"
                                                   and threat_of.get(p.family) == "poisoning"))]
    if poison or (t.task == "ranking" and poison_plots):
        sections.append({"id": "poisoning", "title": THREAT_TITLES["poisoning"], "details": [], "settings": [],
                         "plots": poison_plots, "poisoning": [_poison_view(p) for p in poison]})
    return {"view": v, "rows": rows, "page": _page_name(t), "sections": sections,
            "degenerate_cols": sorted(degenerate_cols), "threats": t.threat_models,
            "plots": [_figure(p, page_dir) for p in mine if p.kind in ("tradeoff", "rounds")],
            "protocol": t.protocol, "suite": t.suite, "dataset": t.dataset, "task": t.task,
            "n_rows": len(rows), "submitted_rows": sum(r["submitted"] for r in rows)}


def _poison_view(p) -> dict:
    view = poisoning_board.table_view(p)
    view["rows"] = [[row[0]] + [{"text": c, "sort": _sort_value(c)} for c in row[1:]] for row in view["rows"]]
    return view


def _threats(collected, t: lb.Table) -> dict[str, str]:
    return {e.cell["attack"]["label"]: e.cell["attack"].get("threat_model") or "other" for e in collected.entries
            if e.record["kind"] == "attack" and e.record["suite"]["name"] == t.suite["name"]
            and e.cell["dataset"]["label"] == t.dataset}


def _reported_lines(t: lb.Table, info: dict, page: str) -> list[dict]:
    """Reported (card) vs verified (recomputed) figures of one submitted row."""
    if "reported" not in t.stats:
        return []
    hit = t.stats[(t.stats.row == info["row"]) & t.stats.reported.notna()]
    out = []
    for _, c in hit.sort_values("column").iterrows():
        col = c["column"]
        label = ("clean " + lb.METRIC_NAMES.get(col[6:], col[6:]) if col.startswith("clean:")
                 else "mean robust" if col == "mean_robust" else col.split(":", 1)[1])
        verified = float(c["mean"])
        out.append({"table": t.title, "page": page, "defense": info["defense"], "column": label,
                    "reported": f"{float(c['reported']):.3f}", "verified": f"{verified:.3f}",
                    "difference": f"{float(c['reported']) - verified:+.3f}", "flagged": bool(c["flag"])})
    return out


# --------------------------------------------------------------------------- index


def _suite_blocks(tables: list[lb.Table], collected, suite) -> list[dict]:
    """Protocol facts per suite, from the tables (what the records say) and, where the suite
    file of the same protocol is at hand, its description."""
    from benchmark.suite import SuiteError, load_suite

    blocks = []
    for name, block in sorted(collected.suites.items()):
        mine = [t for t in tables if t.suite["name"] == name]
        description = ""
        try:
            s = load_suite(suite if suite is not None else name, check_names=False)
            if s.name == name and s.protocol_hash() == block.get("protocol_hash"):
                description = " ".join(str(getattr(s, "description", "") or "").split())
        except SuiteError:
            pass
        attacks: dict[str, dict[str, str]] = {}
        for t in mine:
            for a in t.attacks:
                attacks.setdefault(t.threat_models.get(a, "other"), {}).setdefault(a, t.protocol["attacks"].get(a, ""))
        for p in poisoning_board.poisoning_tables(collected):
            if p.suite == name:
                for a in p.attacks:
                    budget = p.budgets.get(a)
                    attacks.setdefault("poisoning", {}).setdefault(
                        a, f"fake users {budget:.0%} of real users" if isinstance(budget, float) else "")
        seeds = sorted({s for t in mine for s in t.protocol["seeds"]})
        values: dict[str, dict[str, set]] = {}  # task -> size -> values over the training cells
        for e in collected.entries:
            if e.record["kind"] == "train" and e.record["suite"]["name"] == name:
                for k, val in (e.cell.get("sizes") or {}).items():
                    values.setdefault(e.cell["task"], {}).setdefault(k, set()).add("all" if val is None else str(val))
        sizes = {task: [(k, " / ".join(sorted(vals, key=lambda x: (x == "all", len(x), x)))
                         + (" (by model)" if len(vals) > 1 else "")) for k, vals in sorted(per.items())]
                 for task, per in values.items()}
        blocks.append({"name": name, "version": block.get("version", ""), "hash": block.get("protocol_hash", ""),
                       "description": description,
                       "datasets": sorted({t.dataset for t in mine}), "tasks": sorted({t.task for t in mine}),
                       "seeds": seeds, "sizes": sorted(sizes.items()),
                       "attacks": [(THREAT_TITLES[th], sorted(attacks[th].items())) for th in THREAT_ORDER
                                   if th in attacks]})
    return blocks


# --------------------------------------------------------------------------- writing


def write_site(site_dir: str | Path, tables: list[lb.Table], collected, figures: list[Plot], results_dir,
               downloads: list[Path] = (), suite=None, metric: dict | None = None) -> Path:
    """Write the site into site_dir (replaced as a whole: no stale pages); returns index.html.

    `figures`: the plots already written (benchmark.plots.draw_plots and the poisoning
    board's), linked relatively; `downloads`: the other formats, linked from the index."""
    site_dir = Path(site_dir)
    metric = {**lb.DEFAULT_METRIC, **(metric or {})}
    results_dir = Path(results_dir)
    cards = _cards(collected, results_dir)
    poison = poisoning_board.poisoning_tables(collected)
    pages: dict[str, bytes] = {}

    table_pages = []
    placed: set[tuple[str, str, str]] = set()
    for t in tables:
        mine = [p for p in poison if p.suite == t.suite["name"] and p.dataset == t.dataset and p.task == t.task]
        placed |= {(p.suite, p.dataset, p.task) for p in mine}
        page = _table_page(t, collected, cards, figures, mine, site_dir, site_dir)
        table_pages.append(page)
    for p in poison:  # poisoning of a dataset without a ranking table: a page of its own
        if (p.suite, p.dataset, p.task) not in placed:
            name = f"{p.suite}-{p.dataset}-poisoning" + ("" if p.task == "ranking" else f"-{p.task}")
            table_pages.append({"page": f"{slug(name)}.html", "view": None,
                                "rows": [], "sections": [{"id": "poisoning", "title": "Poisoning", "details": [],
                                                          "settings": [], "poisoning": [_poison_view(p)],
                                                          "plots": [_figure(f, site_dir) for f in figures
                                                                    if f.kind == "poisoning" and f.suite == p.suite
                                                                    and f.dataset == p.dataset
                                                                    and p.task == "ranking"]}],
                                "plots": [], "dataset": p.dataset, "task": p.task, "suite": {"name": p.suite},
                                "protocol": None, "n_rows": 0, "submitted_rows": 0, "degenerate_cols": [],
                                "threats": {}})
    for page in table_pages:
        pages[page["page"]] = _render("site-table.html.j2", site_dir, site_dir, t=page, detail_note=lb.DETAIL_NOTE,
                                      title=f"{page['dataset']} — {page['task']}")

    card_list = sorted(cards.values(), key=lambda c: (c.submitted, c.name.lower(), c.key))
    for card in card_list:
        page_dir = site_dir / Path(card.href).parent
        records = sorted((_record_line(e, page_dir, results_dir, metric) for e in card.entries),
                         key=lambda r: (r["suite"], r["dataset"], r["task"], r["defense"], r["kind"] != "train",
                                        THREAT_ORDER.index(r["threat"]) if r["threat"] in THREAT_ORDER else 9,
                                        r["attack"], r["seed"], r["cell_id"]))
        info = {k: card.info.get(k) for k in ("authors", "license", "description", "contact", "implementation",
                                              "method", "registry_name", "options")}
        links = [(label, card.info.get(k), safe_url(card.info.get(k))) for k, label in
                 (("paper_url", "Paper"), ("code_url", "Code")) if card.info.get(k)]
        tables_in = sorted({(r["suite"], r["dataset"], r["task"]) for r in records})
        pages[card.href] = _render("site-model.html.j2", page_dir, site_dir, card=card, info=info, links=links,
                                   records=records, title=card.name,
                                   tables=[(f"{d} — {task}", _rel(site_dir / p["page"], page_dir))
                                           for (s, d, task) in tables_in for p in table_pages
                                           if p["suite"]["name"] == s and p["dataset"] == d and p["task"] == task])
    pages["index.html"] = _render(
        "site-index.html.j2", site_dir, site_dir, title="RecRobust leaderboard", pages=table_pages,
        suites=_suite_blocks(tables, collected, suite), cards=card_list, problems=collected.problems,
        downloads=[(Path(d).name, _rel(Path(d), site_dir)) for d in downloads],
        ci=lb.DETAIL_NOTE)
    _replace_dir(site_dir, pages)
    return site_dir / "index.html"


def _replace_dir(site_dir: Path, pages: dict[str, bytes]) -> None:
    """Write every page into a fresh folder beside site_dir, then swap it in."""
    site_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{site_dir.name}-", dir=site_dir.parent))
    old = None
    try:
        for rel, data in sorted(pages.items()):
            atomic_write_bytes(tmp / rel, data)
        if site_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{site_dir.name}-old-", dir=site_dir.parent))
            os.replace(site_dir, old / site_dir.name)
        os.replace(tmp, site_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


__all__ = ["write_site", "safe_url"]
