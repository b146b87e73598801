"""Submissions: run the fixed protocol on someone's recommender, then validate and file it.

``evaluate_submission`` takes only the model from the submitter (``module:Class`` or an
installed plug-in name, options from the card): datasets, splits, seeds, sizes, defenses
and attacks are the built-in suite's. It writes a bundle::

    card.yaml        the model card (name, authors, paper/code URL, license, reported figures)
    manifest.json    suite identity, model spec + declared capabilities, sha256 of every file
    records/         the result records and per-example JSON lines
    models/<id>/     the trained model of every training cell (safetensors + JSON only)

``submit_bundle`` checks a bundle without unpickling anything in it: the card and manifest
against their JSON Schemas, every record against the result schema (finite numbers,
per-example checksums), the suite name/version/protocol hash against ours, completeness
(exactly the cells our suite expands to for that model). Then it recomputes
(``benchmark.verification``): every summary metric from the per-example rows with our
metric code, and a seeded sample of clean and attacked examples re-run with the submitted
model (its class is the submitter's code, imported by its ``module:Class``; its weights load
only through safetensors + JSON). Only then is it filed under ``<results>/submissions/<slug>/``
(card, manifest, records and the verification report; no weights), atomically. The slug
comes from the card name and can never point outside that folder.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from benchmark import records as rec
from benchmark.suite import MODEL_SIZE_KEYS, Catalog, Suite, SuiteError, check_suite, load_suite, resolve_sizes

MAX_FILE_BYTES = 200 * 1024 * 1024
SUBMISSIONS = "submissions"
MODEL_FILE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}\.(json|safetensors|txt)"  # what a bundled model may hold
VERIFICATION_FILE = "verification.json"


class SubmissionError(ValueError):
    """A rejected card, bundle or evaluation; the message lists every problem."""


def slugify(name: str, max_len: int = 64) -> str:
    """A safe folder name from free text: ASCII letters/digits and single dashes."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:max_len].strip("-")
    if not slug:
        raise SubmissionError(f"model name {name!r} has no letters or digits to make a folder name from")
    return slug


def submission_dir(results_dir: str | Path, slug: str) -> Path:
    """results/submissions/<slug>, refusing anything that would resolve outside it."""
    base = (Path(results_dir) / SUBMISSIONS).resolve()
    target = (base / slug).resolve()
    if target.parent != base or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", slug):
        raise SubmissionError(f"submission name {slug!r} would leave {base}")
    return target


# --------------------------------------------------------------------------- cards


def load_card(path: str | Path) -> dict:
    """Read and validate a model card (YAML, safe loader). Raises SubmissionError."""
    path = Path(path)
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise SubmissionError(f"{path}: cannot read model card ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SubmissionError(f"{path}{f':{mark.line + 1}' if mark else ''}: malformed YAML in model card") from None
    return validate_card(card, str(path))


def validate_card(card, where: str = "card") -> dict:
    if not isinstance(card, dict):
        raise SubmissionError(f"{where}: a model card must be a YAML mapping")
    problems = rec.schema_errors(card, "card", where)
    if not (card.get("paper_url") or card.get("code_url")):
        problems.append(f"{where}: at paper_url/code_url: a card needs a paper_url or a code_url")
    problems += [f"{where}: at {p}: non-finite number" for p in rec.nonfinite_fields(card)]
    if problems:
        raise SubmissionError("invalid model card:\n  " + "\n  ".join(problems))
    slugify(card["name"])
    return card


# --------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class _DeclaredCaps:
    text_input: bool
    differentiable: bool
    tasks: tuple


def _builtin_suite(name: str, catalog: Catalog | None = None, check: bool = True) -> Suite:
    from benchmark.suite import available_suites

    if name not in available_suites():
        raise SubmissionError(f"suite {name!r}: submissions use a built-in protocol ({', '.join(available_suites())})")
    return load_suite(name, catalog=catalog, check_names=check)


def submission_suite(suite: Suite, spec: str, slug: str, options: dict, catalog: Catalog,
                     sizes: dict | None = None, capabilities_of=None) -> Suite:
    """Our protocol with the submitted model as its only model (same protocol hash).

    Defenses, attacks and sweeps our suite gives to some of its models apply to the
    submitted one by its declared capabilities (see Suite.for_submission);
    `capabilities_of` gives our models' capabilities (default: the catalog's)."""
    entry = {"name": spec, "label": slug, "options": options}
    if sizes:
        entry["sizes"] = dict(sizes)
    caps = catalog.model_capabilities(spec)
    sub = suite.for_submission(entry, caps, capabilities_of or catalog.model_capabilities)
    return check_suite(sub, catalog)


def check_size_override(suite: Suite, sizes: dict | None) -> dict:
    """A submission may only lower the suite's example counts (a smaller evaluation of the
    same protocol, as the suite itself does for its LLMs); never splits, history or negatives."""
    sizes = dict(sizes or {})
    problems = []
    for key, value in sizes.items():
        if key not in MODEL_SIZE_KEYS:
            problems.append(f"size {key!r}: a submission may set only {', '.join(MODEL_SIZE_KEYS)}")
            continue
        values = value.values() if isinstance(value, dict) else [value]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            problems.append(f"size {key}: expected a whole number >= 1 (or one per task), got {value!r}")
            continue
        for task in suite.tasks:
            ours = resolve_sizes(suite.sizes, {}, task)[key]
            mine = value.get(task, ours) if isinstance(value, dict) else value
            if ours is not None and mine is not None and mine > ours:
                problems.append(f"size {key} ({task}): {mine} is above the protocol's {ours}")
    if problems:
        raise SubmissionError("invalid size override:\n  " + "\n  ".join(problems))
    return sizes


def preflight_check(model_spec: str, options: dict, catalog: Catalog, pipeline=None):
    """The one place where a submitted model is checked before any training; returns its
    declared capabilities: it must resolve and take its options (the suite check), and pass
    the public conformance check (`recrobust check-model`, through the pipeline)."""
    try:
        caps = catalog.model_capabilities(model_spec)
    except Exception as err:
        raise SubmissionError(f"model {model_spec!r}: {err}") from None
    if pipeline is not None:
        report = pipeline.check_model(model_spec, options)
        if not report.ok:  # before any compute is spent on the protocol
            raise SubmissionError(f"model {model_spec!r} fails the conformance check (recrobust check-model):\n"
                                  + report.format())
    return caps


def evaluate_submission(model_spec: str, card_path: str | Path, suite: str = "standard",
                        results_dir: str | Path = "results", out_dir: str | Path | None = None, jobs: int = 1,
                        executor: str = "local", progress: bool = True, pipeline=None,
                        code_version: str | None = None, sizes: dict | None = None) -> Path:
    """Run the built-in `suite` (quick|standard) on the submitted recommender and write a
    bundle; returns its folder (default ``<results>/.bundles/<slug>-<suite>``).

    CLI: ``recrobust evaluate --model MOD:CLS|PLUGIN --card card.yaml --suite quick|standard
    [--results DIR]``. The submitter controls only the model (and its options, from the card's
    ``model_options``) and may lower the example counts (`sizes`: max_train_examples,
    max_eval_examples, max_attack_examples; never above the suite's). Work (trained models,
    records) goes to ``<results>/.evaluations/<slug>`` and resumes like any run. Raises
    SubmissionError if a cell failed (the bundle would be incomplete).
    """
    from benchmark.runner import Pipeline, run_suite

    card = load_card(card_path)
    slug = slugify(card["name"])
    pipeline = pipeline or Pipeline()
    catalog = pipeline.catalog()
    ours = _builtin_suite(suite, catalog, check=False)  # the submission suite is checked below
    options = card.get("model_options") or {}
    sizes = check_size_override(ours, sizes)
    caps = preflight_check(model_spec, options, catalog, pipeline)
    try:
        sub = submission_suite(ours, model_spec, slug, options, catalog, sizes)
    except SuiteError as err:
        raise SubmissionError(f"model {model_spec!r} cannot run the {suite} protocol:\n{err}") from None
    work = Path(results_dir) / ".evaluations" / slug
    summary = run_suite(sub, work, jobs=jobs, executor=executor, progress=progress, pipeline=pipeline,
                        code_version=code_version, catalog=catalog)
    if summary.failed:
        raise SubmissionError(f"{len(summary.failed)} cell(s) failed; fix the model and rerun `recrobust evaluate` "
                              f"(finished cells are kept):\n" + summary.format())

    bundle = Path(out_dir) if out_dir else Path(results_dir) / ".bundles" / f"{slug}-{ours.name}"
    if bundle.exists():
        shutil.rmtree(bundle)
    (bundle / "records").mkdir(parents=True)
    files: dict[str, str] = {}
    run_records = work / sub.name / "records"
    expected = {_cell_key(c.config("")) for g in sub.expand(catalog) for c in (g.train, *g.attacks)}
    wanted = _current_ids(run_records, expected)
    for cid in sorted(wanted):
        for src in (rec.record_path(run_records, cid), rec.examples_path(run_records, cid)):
            if src.is_file():
                dst = bundle / "records" / src.name
                shutil.copyfile(src, dst)
                files[f"records/{src.name}"] = rec.sha256_file(dst)
        record = rec.read_record(rec.record_path(run_records, cid))
        if record["kind"] == "train" and record["status"] == "ok":
            files.update(_bundle_model(work / sub.name / "models" / cid, bundle / "models" / cid))
    shutil.copyfile(card_path, bundle / "card.yaml")
    files["card.yaml"] = rec.sha256_file(bundle / "card.yaml")
    manifest = {
        "schema_version": rec.SCHEMA_VERSION,
        "suite": ours.identity(),
        "model": {"spec": model_spec, "label": slug, "options": options, **({"sizes": sizes} if sizes else {}),
                  "capabilities": {"text_input": bool(getattr(caps, "text_input", False)),
                                   "differentiable": bool(getattr(caps, "differentiable", False)),
                                   "tasks": list(getattr(caps, "tasks", ("preference", "ranking")))}},
        "slug": slug,
        "code_version": code_version or rec.code_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    rec.write_json_atomic(bundle / "manifest.json", manifest)
    return bundle


def _bundle_model(src: Path, dst: Path) -> dict[str, str]:
    """Copy a trained model into the bundle; only safetensors/JSON/text files travel."""
    files = {}
    dst.mkdir(parents=True)
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src).as_posix()
        if p.is_dir() or not re.fullmatch(MODEL_FILE, rel):
            raise SubmissionError(f"{p}: a bundled model may hold only top-level .json, .safetensors and .txt files "
                                  "(save tensors with safetensors, never pickle)")
        shutil.copyfile(p, dst / rel)
        files[f"models/{dst.name}/{rel}"] = rec.sha256_file(dst / rel)
    return files


def _current_ids(records_dir: Path, expected: set[str]) -> set[str]:
    """Ids of the records of the protocol's cells in the work folder (latest per cell)."""
    latest: dict[str, tuple[str, str]] = {}
    for path in sorted(records_dir.glob(f"*{rec.RECORD_SUFFIX}")):
        r = rec.read_record(path)
        if r["status"] == "failed":
            continue
        key = _cell_key(r)
        if key not in expected:
            continue
        stamp = r["timings"].get("finished_at", "")
        if key not in latest or stamp >= latest[key][1]:
            latest[key] = (r["cell_id"], stamp)
    return {cid for cid, _ in latest.values()}


# --------------------------------------------------------------------------- submit


def _cell_key(record_or_cell: dict) -> str:
    """A cell's identity without data fingerprint or code version (what completeness counts)."""
    cell = record_or_cell.get("cell", record_or_cell)
    attack = cell.get("attack")
    return rec.canonical_json({
        "dataset": cell["dataset"]["label"], "task": cell["task"], "model": cell["model"],
        "defense": cell["defense"], "seed": cell["seed"], "sizes": cell["sizes"],
        "attack": None if attack is None else {k: v for k, v in attack.items()},
    })


def _check_tree(bundle: Path) -> list[str]:
    problems = []
    for p in sorted(bundle.rglob("*")):
        rel = p.relative_to(bundle).as_posix()
        if p.is_symlink():
            problems.append(f"{rel}: symbolic links are not accepted")
        elif p.is_dir():
            if not re.fullmatch(r"records|models|models/[0-9a-f]{16}", rel):
                problems.append(f"{rel}/: unexpected folder")
        elif not re.fullmatch(r"card\.yaml|manifest\.json|records/[0-9a-f]{16}(\.json|\.examples\.jsonl)|"
                              rf"models/[0-9a-f]{{16}}/{MODEL_FILE}", rel):
            problems.append(f"{rel}: unexpected file (a bundle holds card.yaml, manifest.json, records/ and "
                            "models/<id>/ with .json/.safetensors/.txt files only)")
        elif p.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{rel}: larger than {MAX_FILE_BYTES} bytes")
    return problems


def validate_bundle(bundle_dir: str | Path, pipeline=None, check_data: bool = True, rerun: bool = True,
                    verify_seed: int | None = None, report: dict | None = None) -> dict:
    """Every check of submit_bundle except filing; returns the manifest. Raises SubmissionError.

    rerun=False skips re-running samples with the model (only for pipelines that cannot
    load a model, such as the tests' fake one; `recrobust submit` always re-runs).
    `verify_seed` seeds the re-run samples (default: drawn fresh); `report` receives what
    was recomputed."""
    from benchmark.runner import Pipeline
    from benchmark.verification import recompute_problems, rerun_problems

    bundle = Path(bundle_dir)
    if not bundle.is_dir() or bundle.is_symlink():
        raise SubmissionError(f"{bundle}: not a bundle folder")
    problems = _check_tree(bundle)
    if problems:
        raise SubmissionError("rejected bundle:\n  " + "\n  ".join(problems))
    for required in ("card.yaml", "manifest.json"):
        if not (bundle / required).is_file():
            raise SubmissionError(f"{bundle}: missing {required}")
    card = load_card(bundle / "card.yaml")
    try:
        manifest = rec.loads_strict((bundle / "manifest.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise SubmissionError(f"{bundle / 'manifest.json'}: unreadable ({err})") from None
    problems = rec.schema_errors(manifest, "submission", str(bundle / "manifest.json"))
    if problems:
        raise SubmissionError("invalid manifest:\n  " + "\n  ".join(problems))
    if manifest["slug"] != slugify(card["name"]) or manifest["model"]["label"] != manifest["slug"]:
        problems.append(f"manifest slug {manifest['slug']!r} does not match the card name {card['name']!r}")

    # Files: exactly those listed, with their checksums.
    present = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {"manifest.json"}
    listed = set(manifest["files"])
    for rel in sorted(present - listed):
        problems.append(f"{rel}: not listed in manifest.json")
    for rel in sorted(listed - present):
        problems.append(f"{rel}: listed in manifest.json but missing")
    for rel in sorted(listed & present):
        if rec.sha256_file(bundle / rel) != manifest["files"][rel]:
            problems.append(f"{rel}: sha256 does not match manifest.json")

    # The protocol is ours: name, version and hash must match the built-in suite.
    pipeline = pipeline or Pipeline()
    ours = _builtin_suite(manifest["suite"]["name"], check=False)
    if manifest["suite"] != ours.identity():
        problems.append(f"suite {manifest['suite']} does not match our {ours.identity()} (a changed or outdated protocol)")
        raise SubmissionError("rejected bundle:\n  " + "\n  ".join(problems))
    model = manifest["model"]
    sizes = model.get("sizes") or {}
    try:
        check_size_override(ours, sizes)
    except SubmissionError as err:
        problems.append(f"manifest.json: model/sizes: {err}")

    # Records: schema, finite numbers, per-example checksums, one per expected cell.
    records: dict[str, tuple[dict, list]] = {}
    for path in sorted((bundle / "records").glob(f"*{rec.RECORD_SUFFIX}")):
        try:
            r = rec.read_record(path)
            rows = rec.read_examples(path, r)
        except (rec.RecordError, ValueError) as err:
            problems.append(str(err))
            continue
        if r["suite"] != ours.identity():
            problems.append(f"{path.name}: suite block {r['suite']} is not {ours.identity()}")
        if r["status"] == "failed":
            problems.append(f"{path.name}: a failed cell ({r['error']['message']})")
        if r["cell"]["model"] != {"name": model["spec"], "label": manifest["slug"], "options": model["options"]}:
            problems.append(f"{path.name}: model {r['cell']['model']} is not the submitted model")
        records[path.name] = (r, rows)
    declared = model["capabilities"]
    caps = _DeclaredCaps(declared["text_input"], declared["differentiable"], tuple(declared["tasks"]))
    ours_catalog = pipeline.catalog()
    catalog = Catalog(model_capabilities=lambda name: caps, attack_threat_model=ours_catalog.attack_threat_model,
                      defense_known=ours_catalog.defense_known, dataset_known=ours_catalog.dataset_known)
    try:
        sub = submission_suite(ours, model["spec"], manifest["slug"], model["options"], catalog, sizes,
                               capabilities_of=ours_catalog.model_capabilities)
    except SuiteError as err:
        raise SubmissionError(f"rejected bundle: {err}") from None
    expected: dict[str, object] = {}
    for g in sub.expand(catalog):
        expected[_cell_key(g.train.config(""))] = g.train
        for a in g.attacks:
            expected[_cell_key(a.config(""))] = a
    seen: dict[str, str] = {}
    for name, (r, _) in records.items():
        key = _cell_key(r)
        if key not in expected:
            problems.append(f"{name}: a cell that is not in the {ours.name} protocol")
        elif key in seen:
            problems.append(f"{name}: duplicate of {seen[key]}")
        seen[key] = name
    missing = [expected[k].describe() for k in expected if k not in seen]
    if missing:
        problems.append(f"incomplete: {len(missing)} of {len(expected)} cells missing, e.g. {', '.join(missing[:3])}")
    trained = {r["cell_id"] for r, _ in records.values() if r["kind"] == "train" and r["status"] == "ok"}
    for folder in sorted(p.name for p in (bundle / "models").glob("*")) if (bundle / "models").is_dir() else []:
        if folder not in trained:
            problems.append(f"models/{folder}/: not the model of a training record in this bundle")
    for name, (r, rows) in sorted(records.items()):
        problems += recompute_problems(name, r, rows)
    if check_data and not problems:
        fingerprints = {}
        for spec in ours.datasets:
            fingerprints[spec.label] = pipeline.fingerprint(pipeline.load_dataset(spec))
        for name, (r, _) in records.items():
            d = r["cell"]["dataset"]
            if fingerprints.get(d["label"]) != d["fingerprint"]:
                problems.append(f"{name}: dataset {d['label']} fingerprint differs from ours (different data)")
    if rerun and not problems:
        try:
            actual = ours_catalog.model_capabilities(model["spec"])
        except Exception as err:
            raise SubmissionError(f"rejected bundle: model {model['spec']!r} cannot be imported here: {err}") from None
        got = {"text_input": bool(getattr(actual, "text_input", False)),
               "differentiable": bool(getattr(actual, "differentiable", False)),
               "tasks": list(getattr(actual, "tasks", ("preference", "ranking")))}
        if got != {**declared, "tasks": list(declared["tasks"])}:
            problems.append(f"manifest.json: declared capabilities {declared} are not the model class's {got}")
        else:
            seed = verify_seed if verify_seed is not None else secrets.randbits(31)
            problems += rerun_problems(bundle, records, model["spec"], pipeline,
                                       {d.label: d for d in ours.datasets}, seed, report)
    if problems:
        raise SubmissionError("rejected bundle:\n  " + "\n  ".join(problems))
    return manifest


def submit_bundle(bundle_dir: str | Path, results_dir: str | Path = "results", overwrite: bool = False,
                  pipeline=None, check_data: bool = True, rerun: bool = True, verify_seed: int | None = None) -> Path:
    """Validate and verify a bundle (see validate_bundle) and file it under
    ``<results>/submissions/<slug>/``; returns that folder. The leaderboard then shows it.

    CLI: ``recrobust submit BUNDLE [--results DIR]``. Nothing in the bundle is unpickled:
    records are JSON, the card is read with yaml.safe_load, models load from safetensors +
    JSON as the manifest's class. The filed copy keeps card, manifest and records (not the
    weights) and adds verification.json: the sample seed and what was re-run.
    """
    report: dict = {}
    manifest = validate_bundle(bundle_dir, pipeline=pipeline, check_data=check_data, rerun=rerun,
                               verify_seed=verify_seed, report=report)
    target = submission_dir(results_dir, manifest["slug"])
    if target.exists() and not overwrite:
        raise SubmissionError(f"{target} exists: a submission named {manifest['slug']!r} was filed already")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{manifest['slug']}-", dir=target.parent))
    try:
        shutil.copytree(bundle_dir, tmp / "bundle", symlinks=True, ignore=shutil.ignore_patterns("models"))
        rec.write_json_atomic(tmp / "bundle" / VERIFICATION_FILE, {
            "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "recomputed": "summary metrics of every record from its per-example rows",
            "rerun": report if rerun else None,
        })
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / "bundle", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = ["SubmissionError", "check_size_override", "evaluate_submission", "preflight_check", "load_card", "slugify", "submission_dir", "submit_bundle",
           "validate_bundle", "validate_card"]
