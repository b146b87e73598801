"""Suites: YAML grids of experiments, validated before any work starts, expanded into cells.

A suite lists datasets x tasks x models (with options) x defenses x attacks (with budgets,
scope, goal) x seeds, plus sizes (training, evaluated and attacked examples). Sizes may be
one number or a per-task mapping (``{preference: 500, ranking: 100}``); a model may override
the example counts (LLMs train on fewer examples than classic models).

Expansion yields one training cell per (dataset, task, model, defense, seed) and, under it,
one attack cell per applicable attack: text attacks need a text-input model, embedding
attacks a differentiable one; ``models:``/``tasks:`` lists on a defense or attack restrict it
further, and an attack's ``defenses:`` list (defense labels) runs it only on the models
trained with those defenses (poisoning against ``none`` and ``detect-and-drop``, say, and no
evasion attack on the detector's copy), its ``datasets:`` list (dataset labels) only on
those datasets (the whole text battery on one dataset, two attacks on the others), its
``seeds:`` list only at those seeds (a retraining attack too costly for every seed). A
dataset's ``tasks:`` list runs only those tasks on it (a preference task says nothing where
nearly every rating is a like). Models and defenses take ``datasets:`` and ``seeds:`` lists
too (a model too slow for every dataset on a CPU runs on one, a model at chance at one
seed; a defended copy too costly to train everywhere is compared on one dataset and seed).
A defense or an attack listed again under its label, with the same settings, scopes it per
model (an embedding attack on both tasks for one model, on one task for another); no cell
may fall under two entries, and the cells keep the one label (one column, unchanged
records). An attack's ``sweep`` (e.g. ``{param: budget, values: [1, 2, 5]}``) adds cells for
robustness-vs-budget plots; the leaderboard column uses the attack's own setting. A sweep's
own ``models:`` and ``datasets:`` lists run it on fewer models or datasets than the attack
(sweeps multiply the cost of an attack, which matters for LLMs on a CPU).

Validation is two passes with one error listing every problem, each naming the file and
field: the JSON Schema (structure, types, ranges), then semantic checks against the
registries (unknown dataset/model/attack/defense names, budgets that make no sense for the
threat model, duplicate labels).
"""

from __future__ import annotations

import copy
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from benchmark.options import Options
from benchmark.records import canonical_json, content_hash, schema_errors

SUITES_DIR = Path(__file__).resolve().parent / "suites"
TASKS = ("preference", "ranking")
# Cost tiers of a suite (`recrobust run --tier`, the dry run's report): models that score
# rendered text (a transformer per query) and the ID-based classic ones.
TIERS = ("classic", "text")


def model_tier(catalog: "Catalog", model_name: str) -> str:
    return "text" if getattr(catalog.model_capabilities(model_name), "text_input", False) else "classic"
SIZE_DEFAULTS = {
    "history_len": 10,
    "num_negatives": 99,
    "max_train_examples": None,
    "max_eval_examples": None,
    "max_attack_examples": 100,
}
MODEL_SIZE_KEYS = ("max_train_examples", "max_eval_examples", "max_attack_examples")
LEADERBOARD_METRICS = {"preference": ("accuracy", "auc", "log_loss"), "ranking": ("ndcg@10", "hr@10", "mrr")}
DEFAULT_LEADERBOARD = {"metric": {"preference": "accuracy", "ranking": "ndcg@10"}, "bootstrap": 1000, "alpha": 0.05}
# Threat models whose attacks need a capability of the model.
NEEDS = {"text": "text_input", "embedding": "differentiable"}


class SuiteError(ValueError):
    """An invalid suite; the message lists every problem with file and field."""


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    name: str
    label: str
    format: str | None = None
    meta: str | None = None
    tasks: tuple[str, ...] | None = None  # tasks it is used for (None: the suite's); not part of cell configs


@dataclass(frozen=True, eq=False)
class ModelSpec:
    name: str  # registry name, plug-in name or module:Class
    label: str
    options: dict = field(default_factory=dict)
    tasks: tuple[str, ...] | None = None
    sizes: dict = field(default_factory=dict)
    datasets: tuple[str, ...] | None = None  # dataset labels it runs on (None: every one)
    seeds: tuple[int, ...] | None = None  # seeds it runs at (None: the suite's)

    def public(self) -> dict:
        return {"name": self.name, "label": self.label, "options": self.options}


@dataclass(frozen=True, eq=False)
class DefenseSpec:
    name: str
    label: str
    options: dict = field(default_factory=dict)
    models: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None  # dataset labels it runs on (None: every one)
    seeds: tuple[int, ...] | None = None  # seeds it runs on (None: the suite's)

    def public(self) -> dict:
        return {"name": self.name, "label": self.label, "options": self.options}


@dataclass(frozen=True, eq=False)
class AttackSpec:
    name: str
    label: str
    budget: int | None = None
    query_budget: int | None = None
    scope: str = "history"
    goal: str | None = None
    options: dict = field(default_factory=dict)
    models: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None
    threat_model: str | None = None
    sweep: dict | None = None  # {"of": main label, "param": ..., "value": ...} on sweep cells
    defenses: tuple[str, ...] | None = None  # defense labels whose models this attack runs on
    datasets: tuple[str, ...] | None = None  # dataset labels it runs on
    seeds: tuple[int, ...] | None = None  # seeds it runs on (None: the suite's)

    def public(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "threat_model": self.threat_model,
            "budget": self.budget,
            "query_budget": self.query_budget,
            "scope": self.scope,
            "goal": self.goal,
            "options": self.options,
            "sweep": self.sweep,
        }


@dataclass(frozen=True, eq=False)
class TrainCell:
    dataset: DatasetSpec
    task: str
    model: ModelSpec
    defense: DefenseSpec
    seed: int
    sizes: dict

    def config(self, fingerprint: str) -> dict:
        return {
            "dataset": {"name": self.dataset.name, "label": self.dataset.label, "format": self.dataset.format,
                        "fingerprint": fingerprint},
            "task": self.task,
            "model": self.model.public(),
            "defense": self.defense.public(),
            "seed": self.seed,
            "sizes": dict(self.sizes),
        }

    def describe(self) -> str:
        return f"{self.dataset.label}/{self.task}/{self.model.label}/{self.defense.label}/seed{self.seed}"


@dataclass(frozen=True, eq=False)
class AttackCell:
    train: TrainCell
    attack: AttackSpec

    def config(self, fingerprint: str) -> dict:
        cfg = self.train.config(fingerprint)
        cfg["attack"] = self.attack.public()
        return cfg

    def describe(self) -> str:
        return f"{self.train.describe()}/{self.attack.label}"


@dataclass
class CellGroup:
    """A training cell and the attack cells on its model: one unit of work for an executor."""

    train: TrainCell
    attacks: list[AttackCell]


# --------------------------------------------------------------------------- catalog


@dataclass
class Catalog:
    """What names exist and what they are: the registries by default, a fake in tests.

    model_capabilities(name) -> object with text_input, differentiable, tasks (raises
    ValueError for an unknown or unimportable model); attack_threat_model(name) -> str
    (raises ValueError when unknown); defense_known/dataset_known(name) -> bool;
    model_options(name) -> set of accepted option names, or None when any is accepted.
    """

    model_capabilities: Callable[[str], Any]
    attack_threat_model: Callable[[str], str]
    defense_known: Callable[[str], bool]
    dataset_known: Callable[[str], bool]
    model_options: Callable[[str], set | None] = lambda name: None
    defense_names: Callable[[], list[str]] = lambda: []
    # build_attack(spec) / build_defense(spec): construct the object with its options
    # (raising on an unknown option or a bad value); None skips that check (fakes).
    build_attack: Callable[["AttackSpec"], Any] | None = None
    build_defense: Callable[["DefenseSpec"], Any] | None = None

    @classmethod
    def from_registries(cls) -> "Catalog":
        return cls(
            model_capabilities=_registry_capabilities,
            attack_threat_model=_registry_threat_model,
            defense_known=_registry_defense_known,
            dataset_known=_registry_dataset_known,
            model_options=_registry_model_options,
            defense_names=_registry_defense_names,
            build_attack=_registry_build_attack,
            build_defense=_registry_build_defense,
        )


def _registry_capabilities(name: str):
    from recommenders.registry import resolve_class

    return resolve_class(name).capabilities


def _registry_model_options(name: str) -> set | None:
    from recommenders.registry import resolve_class

    cls = resolve_class(name)
    declared = getattr(cls, "OPTIONS", None)
    if isinstance(declared, type) and issubclass(declared, Options):  # the project's models declare them so
        return set(declared.names())
    defaults = getattr(cls, "DEFAULTS", None)
    if isinstance(defaults, dict):  # a plug-in's defaults dict
        return set(defaults)
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n in params if n != "self"}


def _registry_threat_model(name: str) -> str:
    from attacks import registry

    return registry.threat_model(name)


def _registry_build_attack(spec: "AttackSpec"):
    from attacks.registry import create

    kwargs = dict(spec.options)
    if spec.budget is not None:
        kwargs["budget"] = spec.budget
    # As benchmark.experiment.run_attack constructs it for a cell.
    return create(spec.name, query_budget=spec.query_budget, scope=spec.scope, goal=spec.goal, seed=0, **kwargs)


def _registry_build_defense(spec: "DefenseSpec"):
    from attacks.defenses.registry import create

    return create(spec.name, **spec.options)


def _registry_defense_names() -> list[str]:
    from attacks.defenses import registry

    return [d["name"] for d in registry.listing()]


def _registry_defense_known(name: str) -> bool:
    return name in _registry_defense_names()


def _registry_dataset_known(name: str) -> bool:
    from benchmark.data import plugins, sources

    return sources.is_known(name) or plugins.is_plugin(name)


# --------------------------------------------------------------------------- suite


@dataclass
class Suite:
    name: str
    version: str
    description: str
    path: str  # where it was read from ("<builtin>/quick.yaml" style for built-ins)
    raw: dict  # the validated YAML content (protocol hash and copies come from it)
    datasets: list[DatasetSpec]
    tasks: list[str]
    seeds: list[int]
    sizes: dict
    models: list[ModelSpec]
    defenses: list[DefenseSpec]
    attacks: list[AttackSpec]  # leaderboard attacks followed by sweep attacks
    leaderboard: dict
    notes: list[str] = field(default_factory=list)
    checked: bool = False  # registry checks done (threat models filled in)
    # A submission suite is run from a rewritten copy of the protocol (see for_submission);
    # its identity stays that of the protocol it came from, the one the board uses.
    protocol_source: dict | None = None

    @property
    def builtin(self) -> bool:
        return self.path.startswith("<builtin>")

    def protocol(self) -> dict:
        """Everything a submitter may not change: all but the models (and prose)."""
        raw = self.protocol_source if self.protocol_source is not None else self.raw
        return {k: v for k, v in raw.items() if k not in ("models", "description")}

    def protocol_hash(self) -> str:
        return content_hash(self.protocol())

    def cell_keys(self, catalog: "Catalog | None" = None) -> set[str]:
        """One key per cell of this grid (its config without the dataset fingerprint, which
        the dataset's name and format pin): a record made under an earlier revision of the
        same suite version (a column added since, say) still belongs to it when its cell is
        one of these, with the same options, sizes and seed."""
        catalog = catalog or Catalog.from_registries()
        grid = self
        if not self.checked:  # records carry each attack's threat model: fill it as check_suite does
            grid = copy.copy(self)
            grid.attacks = [a if a.threat_model else _with_threat(a, catalog.attack_threat_model(a.name))
                            for a in self.attacks]
        groups = grid.expand(catalog)
        keys = set()
        for group in groups:
            for cell in (group.train, *group.attacks):
                keys.add(cell_key(cell.config(fingerprint="")))
        return keys

    def check_model_labels(self, labels: list[str] | None) -> None:
        """SuiteError naming the labels (of a --models filter) that are no model of this suite."""
        unknown = sorted(set(labels or ()) - {m.label for m in self.models})
        if unknown:
            raise SuiteError(f"--models: no model labelled {', '.join(map(repr, unknown))} in suite {self.name}; "
                             f"its models are {', '.join(m.label for m in self.models)}")

    def identity(self) -> dict:
        """The suite block every record carries."""
        return {"name": self.name, "version": self.version, "protocol_hash": self.protocol_hash()}

    def with_models(self, models: list[dict]) -> "Suite":
        """The same protocol with other models (a submission): re-parsed and re-validated."""
        raw = copy.deepcopy(self.raw)
        raw["models"] = models
        return parse_suite(raw, where=self.path)

    def for_submission(self, model: dict, capabilities, capabilities_of: Callable[[str], Any]) -> "Suite":
        """This protocol with `model` (a models entry) as its only model; identity unchanged.

        Defenses, attacks and sweeps restricted to some of our models (``models: [...]``)
        apply to the submitted model when its declared capabilities (text input,
        differentiable) are those of one of the models they name: the protocol gives
        adversarial training and budget sweeps to kinds of model, and a submission is
        treated as the kind it declares. Entries that apply to none of its kinds are
        dropped, and so are poisoning attacks (their verification would need a retrain).
        `capabilities_of(name)` gives the capabilities of our models.
        """
        kind = _kind(capabilities)
        ours = {}
        for m in map(_entry, self.raw["models"]):
            caps = capabilities_of(m["name"])
            ours[m["name"]] = ours[m.get("label") or _label(m["name"])] = _kind(caps)

        def keep(names) -> bool:
            return not names or any(ours.get(n) == kind for n in names)

        raw = copy.deepcopy(self.raw)
        raw["models"] = [model]
        label = model.get("label") or _label(model["name"])
        defenses: dict[str, dict] = {}
        for d in map(_entry, raw.get("defenses") or ["none"]):
            if not keep(d.get("models")):
                continue
            d = {**d, "models": [label]} if d.get("models") else d
            key = d.get("label") or _label(d["name"])
            # A defense scoped per model: the submission gets the union of its scopes.
            defenses[key] = _union_scope(defenses[key], d) if key in defenses else d
        raw["defenses"] = list(defenses.values())
        kept_defenses = set(defenses)
        attacks: dict[str, dict] = {}
        for a in map(_entry, raw["attacks"]):
            # Poisoning cells are left out of submissions for now: verifying one means
            # retraining the submitted model on the poisoned data (not built yet).
            if not keep(a.get("models")) or _registry_threat_model(a["name"]) == "poisoning":
                continue
            a = {**a, "models": [label]} if a.get("models") else a
            if a.get("defenses"):  # only the defenses the submission keeps
                kept = [d for d in a["defenses"] if d in kept_defenses]
                if not kept:
                    continue
                a = {**a, "defenses": kept}
            sweep = a.get("sweep")
            if sweep and sweep.get("models"):
                if keep(sweep["models"]):
                    a["sweep"] = {**sweep, "models": [label]}
                else:
                    a = {k: v for k, v in a.items() if k != "sweep"}
            key = a.get("label") or _label(a["name"])
            attacks[key] = _union_scope(attacks[key], a) if key in attacks else a
        raw["attacks"] = list(attacks.values())
        sub = parse_suite(raw, where=self.path)
        sub.protocol_source = copy.deepcopy(self.protocol_source if self.protocol_source is not None else self.raw)
        return sub

    def leaderboard_attacks(self) -> list[AttackSpec]:
        """One spec per column (an attack scoped per model is listed once per entry)."""
        first: dict[str, AttackSpec] = {}
        for a in self.attacks:
            if a.sweep is None:
                first.setdefault(a.label, a)
        return list(first.values())

    def expand(self, catalog: Catalog | None = None) -> list[CellGroup]:
        """Cells of the grid, grouped by training cell, in a stable order."""
        catalog = catalog or Catalog.from_registries()
        caps = {m.name: catalog.model_capabilities(m.name) for m in self.models}
        groups = []
        for dataset in self.datasets:
            for task in self.tasks:
                if dataset.tasks is not None and task not in dataset.tasks:
                    continue
                for model in self.models:
                    if not _model_runs_task(model, caps[model.name], task) or not _on(model.datasets, dataset):
                        continue
                    for defense in self.defenses:
                        if not _applies(defense.models, defense.tasks, model, task) or not _on(defense.datasets, dataset):
                            continue
                        attacks = [a for a in self.attacks if _attack_applies(a, model, caps[model.name], task)
                                   and (a.defenses is None or defense.label in a.defenses)
                                   and _on(a.datasets, dataset)]
                        for seed in self.seeds:
                            if any(s is not None and seed not in s for s in (model.seeds, defense.seeds)):
                                continue
                            sizes = resolve_sizes(self.sizes, model.sizes, task)
                            train = TrainCell(dataset, task, model, defense, seed, sizes)
                            groups.append(CellGroup(train, [AttackCell(train, a) for a in attacks
                                                            if a.seeds is None or seed in a.seeds]))
        return groups

    def summary(self, catalog: Catalog | None = None) -> str:
        groups = self.expand(catalog)
        n_attacks = sum(len(g.attacks) for g in groups)
        return (f"suite {self.name} v{self.version}: {len(groups)} training cells, {n_attacks} attack cells "
                f"({len(self.datasets)} datasets x {len(self.tasks)} tasks x {len(self.models)} models x "
                f"{len({d.label for d in self.defenses})} defenses x {len(self.leaderboard_attacks())} attacks x {len(self.seeds)} seeds)")


def cell_key(config: dict) -> str:
    """A cell's config as a key, the dataset fingerprint left out (see Suite.cell_keys)."""
    cfg = copy.deepcopy(config)
    cfg.get("dataset", {}).pop("fingerprint", None)
    return canonical_json(cfg)


def _kind(caps) -> tuple[bool, bool]:
    """What the protocol tells models apart by: (text input, differentiable)."""
    return bool(getattr(caps, "text_input", False)), bool(getattr(caps, "differentiable", False))


def _on(datasets: tuple[str, ...] | None, dataset: DatasetSpec) -> bool:
    """Whether a model, defense or attack restricted to `datasets` (labels) runs on `dataset`."""
    return datasets is None or dataset.label in datasets


def _model_runs_task(model: ModelSpec, caps, task: str) -> bool:
    if model.tasks is not None and task not in model.tasks:
        return False
    return task in tuple(getattr(caps, "tasks", TASKS))


def _applies(names, tasks, model: ModelSpec, task: str) -> bool:
    if tasks is not None and task not in tasks:
        return False
    return names is None or model.label in names or model.name in names


def _attack_applies(attack: AttackSpec, model: ModelSpec, caps, task: str) -> bool:
    if not _applies(attack.models, attack.tasks, model, task):
        return False
    needed = NEEDS.get(attack.threat_model or "")
    return needed is None or bool(getattr(caps, needed, False))


def resolve_sizes(global_sizes: dict, model_sizes: dict, task: str) -> dict:
    """The sizes of one cell: defaults < suite sizes < model sizes, per-task values picked."""
    out = {}
    for key, default in SIZE_DEFAULTS.items():
        value = default
        for layer in (global_sizes or {}, model_sizes or {}):
            if key in layer:
                v = layer[key]
                if isinstance(v, dict):
                    if task in v:
                        value = v[task]
                else:
                    value = v
        out[key] = value
    return out


# --------------------------------------------------------------------------- loading


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def suite_file(name_or_path: str | Path) -> tuple[Path, str]:
    """(file, display path) for a built-in suite name or a YAML path."""
    text = str(name_or_path)
    builtin = SUITES_DIR / f"{text}.yaml"
    if re.fullmatch(r"[A-Za-z0-9_-]+", text) and builtin.is_file():
        return builtin, f"<builtin>/{builtin.name}"
    path = Path(text).expanduser()
    if path.is_file():
        return path, str(path)
    raise SuiteError(f"{text}: no such suite: not a built-in ({', '.join(available_suites())}) and not a file")


def load_suite(name_or_path: str | Path, catalog: Catalog | None = None, check_names: bool = True) -> Suite:
    """Read, validate and parse a suite (built-in name or YAML path). Raises SuiteError
    listing every problem before any work starts. `check_names=False` skips the
    registry checks (structure only)."""
    if isinstance(name_or_path, Suite):
        suite = name_or_path
    else:
        path, where = suite_file(name_or_path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            loc = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err)
            raise SuiteError(f"{where}{loc}: malformed YAML: {problem}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise SuiteError(f"{where}: cannot read suite ({err})") from None
        suite = parse_suite(raw, where=where, base_dir=path.parent)
    if check_names:
        check_suite(suite, catalog or Catalog.from_registries())
    return suite


def _label(text: str) -> str:
    """A default label from a name ('pkg.mod:MyModel' -> 'MyModel')."""
    base = text.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.@=+-]+", "-", base).strip("-") or "model"


def _entry(item) -> dict:
    return {"name": item} if isinstance(item, str) else dict(item)


def parse_suite(raw: Any, where: str = "suite", base_dir: Path | None = None) -> Suite:
    """Structure checks (JSON Schema + labels) and parsing; no registry look-ups."""
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: a suite must be a YAML mapping, got {type(raw).__name__}")
    problems = schema_errors(raw, "suite", where)
    if problems:
        raise SuiteError("invalid suite:\n  " + "\n  ".join(problems))

    datasets = []
    for d in map(_entry, raw["datasets"]):
        name = d["name"]
        if base_dir is not None and not Path(name).is_absolute() and (base_dir / name).exists() and not Path(name).exists():
            name = str((base_dir / name).resolve())  # a path relative to the suite file
        default_label = _label(Path(d["name"]).name) if ("/" in d["name"] or "\\" in d["name"]) else _label(d["name"])
        datasets.append(DatasetSpec(name=name, label=d.get("label") or default_label, format=d.get("format"),
                                    meta=d.get("meta"), tasks=tuple(d["tasks"]) if d.get("tasks") else None))
    models = [ModelSpec(name=m["name"], label=m.get("label") or _label(m["name"]), options=m.get("options") or {},
                        tasks=tuple(m["tasks"]) if m.get("tasks") else None, sizes=m.get("sizes") or {},
                        datasets=tuple(m["datasets"]) if m.get("datasets") else None,
                        seeds=tuple(m["seeds"]) if m.get("seeds") else None)
              for m in map(_entry, raw["models"])]
    defenses = [DefenseSpec(name=d["name"], label=d.get("label") or _label(d["name"]), options=d.get("options") or {},
                            models=tuple(d["models"]) if d.get("models") else None,
                            tasks=tuple(d["tasks"]) if d.get("tasks") else None,
                            datasets=tuple(d["datasets"]) if d.get("datasets") else None,
                            seeds=tuple(d["seeds"]) if d.get("seeds") else None)
                for d in map(_entry, raw.get("defenses") or ["none"])]
    attacks: list[AttackSpec] = []
    sweeps: list[AttackSpec] = []
    for a in map(_entry, raw["attacks"]):
        spec = AttackSpec(name=a["name"], label=a.get("label") or _label(a["name"]), budget=a.get("budget"),
                          query_budget=a.get("query_budget"), scope=a.get("scope", "history"), goal=a.get("goal"),
                          options=a.get("options") or {}, models=tuple(a["models"]) if a.get("models") else None,
                          tasks=tuple(a["tasks"]) if a.get("tasks") else None,
                          defenses=tuple(a["defenses"]) if a.get("defenses") else None,
                          datasets=tuple(a["datasets"]) if a.get("datasets") else None,
                          seeds=tuple(a["seeds"]) if a.get("seeds") else None)
        attacks.append(spec)
        if a.get("sweep"):
            sweeps += _sweep_specs(spec, a["sweep"])

    problems = []
    for kind, specs in (("datasets", datasets), ("models", models), ("defenses", defenses), ("attacks", attacks + sweeps)):
        seen: dict[str, int] = {}
        for i, s in enumerate(specs):
            if s.label in seen and not _same_entry(specs[seen[s.label]], s):
                problems.append(f"{where}: at {kind}/{i}: duplicate label {s.label!r} (give each entry a distinct 'label')")
            seen.setdefault(s.label, i)
    if problems:
        raise SuiteError("invalid suite:\n  " + "\n  ".join(problems))

    leaderboard = copy.deepcopy(DEFAULT_LEADERBOARD)
    lb = raw.get("leaderboard") or {}
    leaderboard["metric"].update(lb.get("metric") or {})
    for k in ("bootstrap", "alpha"):
        if k in lb:
            leaderboard[k] = lb[k]
    for task, metric in leaderboard["metric"].items():
        if metric not in LEADERBOARD_METRICS[task]:
            raise SuiteError(f"{where}: at leaderboard/metric/{task}: unknown metric {metric!r}; "
                             f"use one of {', '.join(LEADERBOARD_METRICS[task])}")

    return Suite(name=raw["name"], version=str(raw["version"]), description=raw.get("description", ""), path=where,
                 raw=copy.deepcopy(raw), datasets=datasets, tasks=list(raw["tasks"]), seeds=list(raw["seeds"]),
                 sizes=raw.get("sizes") or {}, models=models, defenses=defenses, attacks=attacks + sweeps,
                 leaderboard=leaderboard)


def _same_entry(a, b) -> bool:
    """Two entries of one defense or attack: either may be listed again under its label with
    the same settings (everything its cells' configs carry) to scope it per model: adv-augment
    on BPR-MF everywhere and on the cross-encoder on one dataset; an embedding attack on both
    tasks for the classic models and on preference only for a text model. The cells keep one
    label, so records and columns do not change; _overlap_problems rejects two entries
    claiming one cell. Labels of datasets and models stay unique."""
    return (isinstance(a, (DefenseSpec, AttackSpec)) and type(a) is type(b)
            and canonical_json(a.public()) == canonical_json(b.public()))


def _union_scope(first: dict, second: dict) -> dict:
    """Two entries of one defense or attack (raw, already narrowed to a submission's model)
    merged into one whose tasks, datasets, seeds and defenses are the union of theirs (a
    missing list: everywhere); the first entry's sweep, else the second's."""
    merged = {**second, **first}
    for key in ("tasks", "datasets", "seeds", "defenses"):
        both = (first.get(key), second.get(key))
        merged[key] = None if None in both else sorted(set(both[0]) | set(both[1]))
    merged["sweep"] = first.get("sweep") or second.get("sweep")
    return {k: v for k, v in merged.items() if v is not None}


def _overlap_problems(where: str, groups: list[CellGroup]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for g in groups:
        name = g.train.describe()
        if name in seen:
            problems.append(f"{where}: at defenses: two entries labelled {g.train.defense.label!r} both apply to "
                            f"{g.train.model.label} on {g.train.dataset.label} ({g.train.task}); narrow their "
                            f"models:, tasks:, datasets: or seeds:")
        seen.add(name)
        labels: set[str] = set()
        for c in g.attacks:
            if c.attack.label in labels:
                problems.append(f"{where}: at attacks: two entries labelled {c.attack.label!r} both apply to "
                                f"{g.train.model.label} on {g.train.dataset.label} ({g.train.task}); narrow their "
                                f"models:, tasks:, defenses:, datasets: or seeds:")
            labels.add(c.attack.label)
    return sorted(set(problems))


def _sweep_specs(spec: AttackSpec, sweep: dict) -> list[AttackSpec]:
    param = sweep["param"]
    out = []
    main = getattr(spec, param) if param in ("budget", "query_budget") else spec.options.get(param)
    for value in sweep["values"]:
        if value == main:
            continue  # the leaderboard cell itself is the point at this value
        if isinstance(value, float) and value.is_integer() and param in ("budget", "query_budget"):
            value = int(value)
        kwargs = dict(budget=spec.budget, query_budget=spec.query_budget, options=dict(spec.options))
        if param in ("budget", "query_budget"):
            kwargs[param] = value
        else:
            kwargs["options"][param] = value
        models = tuple(sweep["models"]) if sweep.get("models") else spec.models
        datasets = tuple(sweep["datasets"]) if sweep.get("datasets") else spec.datasets
        out.append(AttackSpec(name=spec.name, label=f"{spec.label}@{param}={value}", scope=spec.scope, goal=spec.goal,
                              models=models, tasks=spec.tasks, defenses=spec.defenses, datasets=datasets,
                              seeds=spec.seeds, sweep={"of": spec.label, "param": param, "value": value}, **kwargs))
    return out


# --------------------------------------------------------------------------- semantic checks


def check_suite(suite: Suite, catalog: Catalog) -> Suite:
    """Registry and budget checks; fills each attack's threat model. Raises SuiteError."""
    where = suite.path
    problems: list[str] = []
    for i, d in enumerate(suite.datasets):
        if not (Path(d.name).expanduser().exists() or catalog.dataset_known(d.name)):
            problems.append(f"{where}: at datasets/{i}: unknown dataset {d.name!r}: neither a registered name "
                            f"(see `recrobust data list`) nor an existing path")
        problems += _task_refs(where, f"datasets/{i}/tasks", d.tasks, suite.tasks)
    model_caps = {}
    for i, m in enumerate(suite.models):
        try:
            model_caps[m.label] = catalog.model_capabilities(m.name)
        except Exception as err:  # unknown name, or a plug-in that fails to import
            problems.append(f"{where}: at models/{i}: model {m.name!r}: {err}")
            continue
        try:
            accepted = catalog.model_options(m.name)
        except Exception:
            accepted = None
        unknown = sorted(set(m.options) - accepted) if accepted is not None else []
        if unknown:
            problems.append(f"{where}: at models/{i}/options: {m.name!r} does not take {', '.join(unknown)} "
                            f"(accepted: {', '.join(sorted(accepted)) or 'none'})")
    model_names = {m.label for m in suite.models} | {m.name for m in suite.models}
    dataset_labels = {d.label for d in suite.datasets}
    for i, d in enumerate(suite.defenses):
        if not catalog.defense_known(d.name):
            known = ", ".join(catalog.defense_names()) if catalog.defense_names() else ""
            problems.append(f"{where}: at defenses/{i}: unknown defense {d.name!r}" + (f"; known: {known}" if known else ""))
        problems += _unknown_refs(where, f"defenses/{i}/models", d.models, model_names)
        problems += _unknown_refs(where, f"defenses/{i}/datasets", d.datasets, dataset_labels, what="dataset")
        problems += _task_refs(where, f"defenses/{i}/tasks", d.tasks, suite.tasks)
        problems += _seed_refs(where, f"defenses/{i}/seeds", d.seeds, suite.seeds)
    main = [a for a in suite.attacks if a.sweep is None]
    threat: dict[str, str] = {}
    for i, a in enumerate(main):
        try:
            threat[a.name] = catalog.attack_threat_model(a.name)
        except Exception as err:
            problems.append(f"{where}: at attacks/{i}: {err}")
            continue
        problems += _attack_problems(where, f"attacks/{i}", a, threat[a.name], suite.tasks)
        problems += _unknown_refs(where, f"attacks/{i}/models", a.models, model_names)
        problems += _unknown_refs(where, f"attacks/{i}/defenses", a.defenses, {d.label for d in suite.defenses},
                                  what="defense")
        problems += _unknown_refs(where, f"attacks/{i}/datasets", a.datasets, dataset_labels, what="dataset")
        problems += _seed_refs(where, f"attacks/{i}/seeds", a.seeds, suite.seeds)
        problems += _task_refs(where, f"attacks/{i}/tasks", a.tasks, suite.tasks)
        raw = _entry(suite.raw["attacks"][i])
        if raw.get("sweep"):
            problems += _sweep_problems(where, f"attacks/{i}/sweep", raw["sweep"])
            problems += _unknown_refs(where, f"attacks/{i}/sweep/models", raw["sweep"].get("models"), model_names)
            problems += _unknown_refs(where, f"attacks/{i}/sweep/datasets", raw["sweep"].get("datasets"), dataset_labels,
                                      what="dataset")
    for i, m in enumerate(suite.models):
        problems += _task_refs(where, f"models/{i}/tasks", m.tasks, suite.tasks)
        problems += _unknown_refs(where, f"models/{i}/datasets", m.datasets, dataset_labels, what="dataset")
        problems += _seed_refs(where, f"models/{i}/seeds", m.seeds, suite.seeds)
    if problems:
        raise SuiteError("invalid suite:\n  " + "\n  ".join(problems))

    # Fill threat models (frozen specs: replace them).
    suite.attacks = [_with_threat(a, threat.get(a.name)) for a in suite.attacks]
    suite.checked = True
    groups = suite.expand(catalog)
    if not groups:
        raise SuiteError(f"{where}: the grid is empty: no model runs any of the tasks {suite.tasks}")
    if problems := _overlap_problems(where, groups):
        raise SuiteError("invalid suite:\n  " + "\n  ".join(problems))
    used = {c.attack.label for g in groups for c in g.attacks}
    for a in suite.leaderboard_attacks():
        if a.label not in used:
            suite.notes.append(f"attack {a.label!r} ({a.threat_model}) applies to no model in this suite")
    problems = _construction_problems(suite, catalog, groups, used)
    if problems:
        raise SuiteError("invalid suite:\n  " + "\n  ".join(problems))
    return suite


def _construction_problems(suite: Suite, catalog: Catalog, groups: list[CellGroup], used: set[str]) -> list[str]:
    """Build every defense and attack the grid uses once, with its options, so that an unknown
    option or a bad value fails validation (naming the field) rather than a cell hours later.
    Attacks that apply to no model are not built (nothing would run them)."""
    problems: list[str] = []
    where = suite.path
    if catalog.build_defense is not None:
        in_grid = {g.train.defense.label for g in groups}
        for i, d in enumerate(suite.defenses):
            if d.label in in_grid:
                problems += _construct(where, f"defenses/{i}", "defense", d, catalog.build_defense)
    if catalog.build_attack is not None:
        index: dict[str, int] = {}
        for i, a in enumerate(a for a in suite.attacks if a.sweep is None):
            index.setdefault(a.label, i)
        built: set[str] = set()
        for a in suite.attacks:
            # Poisoning attacks are fake-user generators, not per-example attacks: their
            # options are checked by attacks.poisoning.suite_checks (_attack_problems).
            if a.label not in used or a.threat_model == "poisoning" or a.label in built:
                continue
            built.add(a.label)
            at = f"attacks/{index[a.label]}" if a.sweep is None else \
                f"attacks/{index[a.sweep['of']]}/sweep ({a.sweep['param']}={a.sweep['value']!r})"
            problems += _construct(where, at, "attack", a, catalog.build_attack)
    return problems


def _construct(where: str, at: str, kind: str, spec, build) -> list[str]:
    try:
        build(spec)
        return []
    except Exception as err:
        error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
    # Name the option at fault: the first one that fails on its own.
    for key, value in spec.options.items():
        try:
            build(_with_options(spec, {key: value}))
        except Exception:
            return [f"{where}: at {at}/options/{key}: {kind} {spec.name!r} rejects {key}={value!r}: {error}"]
    return [f"{where}: at {at}: {kind} {spec.name!r}: {error}"]


def _with_options(spec, options: dict):
    return type(spec)(**{**spec.__dict__, "options": options})


def _with_threat(spec: AttackSpec, threat_model: str | None) -> AttackSpec:
    return AttackSpec(**{**spec.__dict__, "threat_model": threat_model})


def _unknown_refs(where, at, names, known, what: str = "model") -> list[str]:
    if not names:
        return []
    bad = [n for n in names if n not in known]
    return [f"{where}: at {at}: {', '.join(map(repr, bad))} not among the suite's {what}s"] if bad else []


def _seed_refs(where, at, seeds, suite_seeds) -> list[str]:
    return [f"{where}: at {at}: {s} not among the suite's seeds {suite_seeds}" for s in seeds or ()
            if s not in suite_seeds]


def _task_refs(where, at, tasks, suite_tasks) -> list[str]:
    if not tasks:
        return []
    bad = [t for t in tasks if t not in suite_tasks]
    return [f"{where}: at {at}: task(s) {', '.join(bad)} not in the suite's tasks {suite_tasks}"] if bad else []


def _attack_problems(where: str, at: str, a: AttackSpec, threat: str, suite_tasks) -> list[str]:
    out = []
    if threat == "profile" and a.budget is not None and a.budget < 1:
        out.append(f"{where}: at {at}/budget: a profile attack needs a budget of at least 1 edit, got {a.budget}")
    if threat == "embedding" and a.budget is not None:
        out.append(f"{where}: at {at}/budget: embedding attacks are bounded by epsilon (options: {{epsilon: ...}}), not by an edit budget")
    if threat == "poisoning":
        out += _poisoning_problems(where, at, a)
    for key in ("epsilon", "eps"):
        if key in a.options:
            eps = a.options[key]
            values = eps if isinstance(eps, list) else [eps]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
                out.append(f"{where}: at {at}/options/{key}: epsilon must be a positive number, got {eps!r}")
    if a.goal in ("demote", "promote"):
        tasks = a.tasks or tuple(suite_tasks)
        if "preference" in tasks:
            out.append(f"{where}: at {at}/goal: goal {a.goal!r} applies to the ranking task only (add tasks: [ranking])")
    return out


def _poisoning_problems(where: str, at: str, a: AttackSpec) -> list[str]:
    from attacks.poisoning.suite_checks import option_problems  # one module owns the poisoning options

    out = [f"{where}: at {at}/budget: a poisoning attack's budget is options: {{fake_users: FRACTION}}, not 'budget'"
           ] if a.budget is not None else []
    return out + [f"{where}: at {at}/{p}" for p in option_problems(a.options, a.name)]


def _sweep_problems(where: str, at: str, sweep: dict) -> list[str]:
    param, values = sweep["param"], sweep["values"]
    if param in ("budget", "query_budget"):
        low = 0 if param == "budget" else 1
        bad = [v for v in values if not float(v).is_integer() or v < low]
        if bad:
            return [f"{where}: at {at}/values: {param} values must be integers >= {low}, got {bad}"]
    elif param == "fake_users":
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1]
        if bad:
            return [f"{where}: at {at}/values: fake_users values must be fractions in (0, 1), got {bad}"]
    elif param in ("epsilon", "eps"):
        bad = [v for v in values if v <= 0]
        if bad:
            return [f"{where}: at {at}/values: epsilon values must be > 0, got {bad}"]
    return []


def dump_suite(suite: Suite) -> str:
    """The suite's validated content as YAML (copied into each run folder)."""
    return yaml.safe_dump(suite.raw, sort_keys=False, allow_unicode=True)


def suite_digest(suite: Suite) -> str:
    return content_hash(suite.raw)


__all__ = [
    "AttackCell", "AttackSpec", "Catalog", "CellGroup", "DatasetSpec", "DefenseSpec", "ModelSpec", "Suite",
    "SuiteError", "TrainCell", "available_suites", "canonical_json", "check_suite", "load_suite", "parse_suite",
    "resolve_sizes",
]
