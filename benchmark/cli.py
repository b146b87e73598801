"""`recrobust` command line. Sub-commands are thin: the work lives in the modules they call."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from benchmark.data.errors import DataError
from benchmark.options import parse_pairs as _parse_options  # --option k=v flags (the poisoning CLI's too)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


# -- data ---------------------------------------------------------------------
def cmd_data_list(args) -> int:
    from tabulate import tabulate

    from benchmark.data import plugins, sources

    rows = sources.list_datasets() + plugins.listing()
    if args.json:
        _print_json(rows)
    else:
        print(tabulate([[r["name"], "yes" if r.get("cached") else "no", r.get("description", "")] for r in rows],
                       headers=["dataset", "cached", "description"]))
    return 0


def cmd_data_fetch(args) -> int:
    from benchmark.data import sources

    path = sources.fetch(args.name, force=args.force)
    print(f"{args.name}: {path}")
    return 0


def _load(args, text: bool = False):
    from benchmark.data.load import load_dataset

    return load_dataset(args.dataset, format=getattr(args, "format", None), meta=getattr(args, "meta", None),
                        text=text)


def cmd_data_info(args) -> int:
    from tabulate import tabulate

    from benchmark.data.stats import check_published, dataset_stats

    dataset = _load(args, text=True)  # statistics describe the whole file, review text included
    stats = dataset_stats(dataset)
    check = check_published(args.dataset, stats)
    if check is None and dataset.name != args.dataset:
        check = check_published(dataset.name, stats)
    stats["published_check"] = check
    stats["dataset"] = args.dataset
    stats["format"] = dataset.format
    if args.json:
        _print_json(stats)
        return 0
    rows = [[k, v] for k, v in stats.items() if k not in ("rating_histogram", "published_check", "notes")]
    print(tabulate(rows, tablefmt="plain"))
    if stats.get("rating_histogram"):
        print("ratings: " + ", ".join(f"{k}: {v:,}" for k, v in stats["rating_histogram"].items()))
    for note in stats.get("notes") or []:
        print(f"note: {note}")
    if check:
        line = f"published statistics ({check['dataset']}): {check['status']}"
        if check.get("differences"):
            line += " — " + "; ".join(map(str, check["differences"]))
        print(line)
    return 0


def _examples_for(args):
    from benchmark.rendering import Renderer
    from benchmark.tasks import build_task

    dataset = _load(args)
    data = build_task(dataset, args.task, args.split, seed=args.seed, history_len=args.history)
    return dataset, data, Renderer(dataset.items, template=args.template)


def cmd_data_show(args) -> int:
    from benchmark.tasks import example_record

    args.split = args.split or "test"
    dataset, data, renderer = _examples_for(args)
    mine = [e for e in data.examples if e.profile.user_id == str(args.user)]
    if not mine:
        raise ValueError(f"user {args.user!r} has no {args.task} example in the {args.split} split of {args.dataset}")
    for example in mine[: args.limit]:
        rec = example_record(example, renderer)
        print(f"# {rec['example_id']} ({args.task}, {args.split}, template {rec['template']})")
        if args.task == "preference":
            print(rec["text"])
            print(f"label: {'like' if rec['label'] else 'dislike'} (rating {example.rating:g})")
        else:
            print(rec["profile_text"])
            print(f"candidates: {len(rec['candidates'])} (held-out positive first):")
            for text in rec["candidate_texts"][: args.show_candidates]:
                print(f"  - {text}")
        print()
    return 0


def cmd_data_examples(args) -> int:
    from benchmark.data.hf import export_examples

    n = export_examples(_load(args), args.task, args.split, args.out, format=args.out_format, seed=args.seed,
                        history_len=args.history, template=args.template, max_examples=args.max_examples)
    print(f"wrote {n} {args.task} examples ({args.split}, seed {args.seed}) to {args.out} ({args.out_format})")
    return 0


# -- listings ---------------------------------------------------------------------
def _declared_options(what: str) -> list[list]:
    """One row per declared option (benchmark.options) of every registered model, attack or
    defense: [component, option, type, default, doc]; a component without a declaration says so."""
    from benchmark.options import Options

    if what == "models":
        from recommenders.registry import available, resolve_class as resolve

        names = sorted(available())
    elif what == "attacks":
        from attacks.registry import REGISTRY, resolve

        names = REGISTRY.names()
    else:
        from attacks.defenses.registry import REGISTRY, resolve

        names = REGISTRY.names()
    rows = []
    for name in names:
        try:
            declared = getattr(resolve(name), "OPTIONS", None)
        except Exception as err:  # a broken plug-in is listed with its error, not fatal
            rows.append([name, "?", "", "", f"error: {err}"])
            continue
        if not (isinstance(declared, type) and issubclass(declared, Options)):
            rows.append([name, "-", "", "", "options not declared (benchmark.options.Options)"])
        for d in declared.describe() if isinstance(declared, type) and issubclass(declared, Options) else ():
            rows.append([name, d["name"], d["type"], d["default"], d["doc"]])
    return rows


def cmd_list(args) -> int:
    from tabulate import tabulate

    if args.options:
        rows = _declared_options(args.what)
        headers = [args.what[:-1], "option", "type", "default", "doc"]
    elif args.what == "models":
        from recommenders.registry import available, resolve_class

        rows = []
        for name, path in sorted(available().items()):
            try:
                caps = resolve_class(name).capabilities
                rows.append([name, path, "yes" if caps.text_input else "no", "yes" if caps.differentiable else "no",
                             ",".join(caps.tasks)])
            except Exception as err:  # a broken plug-in is listed with its error, not fatal
                rows.append([name, path, "?", "?", f"error: {err}"])
        headers = ["model", "class", "text input", "differentiable", "tasks"]
    elif args.what == "attacks":
        from attacks.registry import listing

        rows = [[r["name"], r["threat_model"], r["applies_to"], r["needs"]] for r in listing()]
        headers = ["attack", "threat model", "applies to", "needs"]
    else:
        from attacks.defenses.registry import listing

        rows = [[r["name"], r["applies_to"], r["description"]] for r in listing()]
        headers = ["defense", "applies to", "description"]
    if args.json:
        _print_json([dict(zip(headers, r)) for r in rows])
    else:
        print(tabulate(rows, headers=headers))
    return 0


# -- train / attack ------------------------------------------------------------------
def _model_options(args) -> dict:
    options = _parse_options(getattr(args, "option", None), "--option")
    if getattr(args, "backbone", None):
        options["backbone"] = args.backbone
    if getattr(args, "lora", False):
        options["lora"] = True
    return options


def _splits(args, dataset):
    from benchmark.experiment import prepare_task

    return prepare_task(dataset, args.task, seed=args.seed, history_len=args.history,
                        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples)


def cmd_train(args) -> int:
    import time

    from benchmark.evaluation import evaluate
    from benchmark.experiment import train_model

    dataset = _load(args)
    splits = _splits(args, dataset)
    started = time.perf_counter()
    model, info = train_model(args.model, splits, seed=args.seed, options=_model_options(args),
                              defense=args.defense,
                              defense_options=_parse_options(args.defense_options, "--defense-options"))
    seconds = time.perf_counter() - started
    result = {
        "dataset": args.dataset, "task": args.task, "model": args.model, "defense": args.defense or "none",
        "seed": args.seed, "train_examples": len(splits["train"].examples),
        "test": evaluate(model, splits["test"]), "train_seconds": round(seconds, 2), "training": info,
    }
    out = Path(args.out) if args.out else Path("results") / "models" / f"{args.dataset.replace(':', '_').replace('/', '_')}-{args.task}-{args.model.replace(':', '_')}-{args.defense or 'none'}-seed{args.seed}"
    model.save(out)
    (out / "train_result.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    result["model_dir"] = str(out)
    if args.json:
        _print_json(result)
    else:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in result["test"].items() if isinstance(v, float))
        print(f"{args.model} on {args.dataset} ({args.task}), test: {metrics}; trained in {seconds:.1f}s; saved to {out}")
    return 0


def cmd_attack(args) -> int:
    from benchmark.experiment import run_attack, train_model
    from recommenders.base import Recommender

    from benchmark import poisoning_cli, promotion_cli

    promotion = promotion_cli.is_promotion_attack(args.attack)
    # bad options fail before any training
    (promotion_cli if promotion else poisoning_cli).check_args(args)
    dataset = _load(args)
    splits = _splits(args, dataset)
    if args.model_dir:
        model = Recommender.load(args.model_dir)
        if model.task and model.task != args.task:
            raise ValueError(f"{args.model_dir}: model was trained for the {model.task} task, not {args.task}")
    elif args.model:
        model, _ = train_model(args.model, splits, seed=args.seed, options=_model_options(args))
    else:
        raise ValueError("give --model NAME (trains it first) or --model-dir DIR (a saved model)")
    if promotion:
        return promotion_cli.run(args, model, splits)
    if poisoning_cli.is_poisoning_attack(args.attack):
        return poisoning_cli.run(args, model, splits)
    result = run_attack(model, splits["test"], args.attack, seed=args.seed, budget=args.budget,
                        query_budget=args.query_budget, scope=args.scope, goal=args.goal,
                        max_examples=args.examples, options=_parse_options(args.attack_option, "--attack-option"))
    if args.records:
        with open(args.records, "w", encoding="utf-8") as fh:
            for rec in result.records:
                fh.write(json.dumps(rec.to_dict(), sort_keys=True) + "\n")
    if args.json:
        _print_json({**result.to_dict(), "records": [r.to_dict() for r in result.records] if args.show else None})
        return 0
    if args.show:
        from attacks.show import format_record

        for rec in result.records:
            print(format_record(rec))
    s = result.summary
    fmt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else (f"{v:.4f}" if isinstance(v, float) else str(v))
    print(f"{args.attack} on {model.name} ({args.task}): "
          + "; ".join(f"clean {k} {fmt(v)}" for k, v in s.get("clean", {}).items()) + "; "
          + "; ".join(f"robust {k} {fmt(v)}" for k, v in s.get("robust", {}).items()))
    print(f"attack success rate {fmt(s.get('attack_success_rate'))}, succeeded {s['n_succeeded']}, failed {s['n_failed']}, "
          f"skipped {s['n_skipped']}, errors {s['n_error']}, mean queries {fmt(s.get('mean_queries'))}")
    return 0


# -- suites, leaderboards, submissions ------------------------------------------------
def _labels(text: str | None) -> list[str] | None:
    """A comma-separated list of model labels (--models of run and prune-records); None when not given."""
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def cmd_run(args) -> int:
    from benchmark.runner import run_suite

    if args.dry_run:  # cell count and cost per tier from measured records; runs nothing
        from benchmark.estimate import estimate_suite, format_estimate
        from benchmark.runner import RunnerError, finished_cells
        from benchmark.suite import load_suite

        suite = load_suite(args.suite)
        try:  # what is done needs the datasets' fingerprints; without them the estimate still stands
            finished, why = finished_cells(suite, results_dir=args.results), ""
        except RunnerError as err:
            finished, why = None, str(err)
        print(format_estimate(estimate_suite(suite, results_dir=args.results, finished=finished,
                                             unfinished_because=why)))
        return 0
    summary = run_suite(args.suite, results_dir=args.results, jobs=args.jobs, executor=args.executor,
                        address=args.address, tier=args.tier, train_only=args.train_only,
                        models=_labels(args.models))
    failed = getattr(summary, "failed", None) or []
    return 1 if failed else 0


def cmd_leaderboard(args) -> int:
    from benchmark.leaderboard import SITE_DIR, build_leaderboard, collect

    if not collect(args.results, args.suite).entries:  # nothing to rank is an error, not an empty board
        where = f"{args.results}" + (f" for suite {args.suite}" if args.suite else "")
        print(f"recrobust: error: no result records under {where} (run `recrobust run` or file a submission)",
              file=sys.stderr)
        return 1
    text = build_leaderboard(args.results, suite=args.suite, fmt=args.format, out_dir=args.out)
    print(text)
    if args.out:
        print(f"recrobust: site written to {Path(args.out) / SITE_DIR / 'index.html'} (open it in a browser)",
              file=sys.stderr)
    elif args.format == "html":
        print("recrobust: note: this is the single-page table; --out DIR also writes the site (DIR/site/index.html)",
              file=sys.stderr)
    return 0


def cmd_check_model(args) -> int:
    from recommenders.conformance import check_model

    report = check_model(args.model, _parse_options(args.option, "--option"), tasks=args.task and [args.task],
                         seed=args.seed)
    if args.json:
        _print_json({"model": report.model, "ok": report.ok, "checks": [vars(r) for r in report.results]})
    else:
        print(report.format())
    return 0 if report.ok else 1


def cmd_evaluate(args) -> int:
    from benchmark.submissions import evaluate_submission

    bundle = evaluate_submission(args.model, args.card, suite=args.suite, results_dir=args.results,
                                 sizes=_parse_options(args.size, "--size"))
    print(f"bundle written to {bundle}")
    return 0


def cmd_compress_records(args) -> int:
    from benchmark import records as rec

    if not Path(args.results).is_dir():
        raise FileNotFoundError(f"no results folder {args.results}")
    rewrite = None
    if args.slim_poisoning:
        from attacks.poisoning.cell import slim_row
        rewrite = slim_row
    changed = 0
    for path in rec.iter_record_files(args.results):
        record = rec.read_record(path)
        poisoning = record["kind"] == "attack" and (record["cell"].get("attack") or {}).get("threat_model") == "poisoning"
        changed += rec.compress_examples(path, min_bytes=args.min_bytes, rewrite=rewrite if poisoning else None)
    print(f"compressed the per-example files of {changed} record(s) under {args.results}")
    return 0


def cmd_prune_records(args) -> int:
    from tabulate import tabulate

    from benchmark.pruning import remove_stale, stale_records, summarize

    if not Path(args.results).is_dir():
        raise FileNotFoundError(f"no results folder {args.results}")
    stale = stale_records(args.results, args.suite, models=_labels(args.models))
    if not stale:
        print(f"no record under {args.results} is outside suite {args.suite!r}'s grid")
        return 0
    print(tabulate(summarize(stale), headers=["model", "dataset", "records"]))
    if args.dry_run:
        print(f"{len(stale)} record(s) outside the grid (dry run: nothing removed)")
    else:
        print(f"removed {remove_stale(args.results, stale)} record(s) outside the grid "
              f"(with their per-example files and saved models)")
    return 0


def cmd_submit(args) -> int:
    from benchmark.submissions import submit_bundle

    where = submit_bundle(args.bundle, results_dir=args.results)
    print(f"submission filed under {where}")
    return 0


# -- parser ---------------------------------------------------------------------
def _add_dataset_args(p, format_flag: str = "--format") -> None:
    p.add_argument("dataset", metavar="NAME_OR_PATH", help="registered dataset name or a local path")
    p.add_argument(format_flag, dest="format", help="override format detection (movielens-100k, movielens-1m, movielens-latest, recbole, amazon2014, amazon2018, amazon2023)")
    p.add_argument("--meta", help="Amazon metadata file, when it is not beside the reviews file")


def _add_task_args(p, dataset_flag: bool = True) -> None:
    if dataset_flag:
        p.add_argument("--dataset", required=True, help="registered dataset name or a local path")
        p.add_argument("--format", help="override format detection")
        p.add_argument("--meta", help="Amazon metadata file")
    p.add_argument("--task", choices=["preference", "ranking"], required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--history", type=int, default=10, help="profile length H (most recent interactions)")
    p.add_argument("--max-train-examples", type=int, help="seeded subset of training examples")
    p.add_argument("--max-eval-examples", type=int, help="seeded subset of valid/test examples")


def _add_model_args(p) -> None:
    p.add_argument("--backbone", help="LLM models: HF model id or local path (default minilm)")
    p.add_argument("--lora", action="store_true", help="LLM models: LoRA adapters through peft")
    p.add_argument("--option", action="append", metavar="K=V", help="model option, repeatable (e.g. epochs=5)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recrobust", description="Robustness benchmark for recommender systems.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="datasets: list, fetch, info, show, examples").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("list", help="named datasets and whether each is cached")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_list)
    p = data.add_parser("fetch", help="download a named dataset into the cache")
    p.add_argument("name")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_data_fetch)
    p = data.add_parser("info", help="statistics, with a check against published figures")
    _add_dataset_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_info)
    for name, func, help_ in (("show", cmd_data_show, "print a user's rendered examples"),
                              ("examples", cmd_data_examples, "write examples as JSON lines, Parquet or a HF dataset")):
        p = data.add_parser(name, help=help_)
        # examples: --format is the output format, so the reader override is --input-format there.
        _add_dataset_args(p, "--format" if name == "show" else "--input-format")
        p.add_argument("--task", choices=["preference", "ranking"], default="preference")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--history", type=int, default=10)
        p.add_argument("--template", default="rated-history-v1")
        if name == "show":
            p.add_argument("--user", required=True)
            p.add_argument("--split", choices=["train", "valid", "test"])
            p.add_argument("--limit", type=int, default=3, help="at most this many examples")
            p.add_argument("--show-candidates", type=int, default=5)
        else:
            p.add_argument("--split", choices=["train", "valid", "test"], required=True)
            p.add_argument("--out", required=True)
            p.add_argument("--format", dest="out_format", choices=["jsonl", "parquet", "hf"], default="jsonl",
                           help="jsonl (default), parquet, or hf (a datasets.save_to_disk folder)")
            p.add_argument("--max-examples", type=int, help="seeded subset of the split")
        p.set_defaults(func=func)

    p = sub.add_parser("list", help="registered models, attacks or defenses")
    p.add_argument("what", choices=["models", "attacks", "defenses"])
    p.add_argument("--options", action="store_true",
                   help="each one's declared options: type, default and what it does (imports every class)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("train", help="train a recommender, evaluate it on the test split, save it")
    _add_task_args(p)
    p.add_argument("--model", required=True, help="registered name, plug-in, or module.path:ClassName")
    _add_model_args(p)
    p.add_argument("--defense", help="adversarial training mode (recrobust list defenses)")
    p.add_argument("--defense-options", nargs="*", metavar="K=V")
    p.add_argument("--out", help="model directory (default results/models/...)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("attack", help="attack a recommender on test examples")
    _add_task_args(p)
    p.add_argument("--model", help="train this model first (name or module:Class)")
    p.add_argument("--model-dir", help="a saved model (recrobust train --out)")
    _add_model_args(p)
    p.add_argument("--attack", required=True)
    p.add_argument("--examples", type=int, default=50, help="attacked test examples (seeded subset)")
    p.add_argument("--budget", type=int, help="edit budget (profile attacks: history edits, default 3; "
                   "item-promotion: words of the item text)")
    p.add_argument("--query-budget", type=int, help="model queries per example at most")
    p.add_argument("--scope", choices=["history", "item"], default="history")
    p.add_argument("--goal", choices=["untargeted", "demote", "promote"], help="ranking: demote (default) or promote")
    p.add_argument("--attack-option", action="append", metavar="K=V")
    p.add_argument("--records", help="write per-example records as JSON lines here")
    p.add_argument("--json", action="store_true")
    p.add_argument("--show", action="store_true", help="print original vs perturbed, changes highlighted")
    p.add_argument("--fake-users", type=float, help="poisoning: fake users as a fraction of real users (default 0.01)")
    p.add_argument("--targets", type=int, help="poisoning, item-promotion: target items drawn by seed (default 10)")
    p.add_argument("--target-items", help="poisoning: comma-separated target item ids instead")
    p.add_argument("--filler", type=int, help="poisoning: filler items per fake user (default 36)")
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("run", help="run a suite (grid of cells); resumes an interrupted run")
    p.add_argument("--suite", default="quick", help="quick, standard, or a YAML file")
    p.add_argument("--results", default="results")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--executor", choices=["local", "process", "ray"], default="local")
    p.add_argument("--address", help="Ray cluster address (ray.init(address=...))")
    p.add_argument("--tier", choices=["classic", "text"],
                   help="run only the cells of the ID-based (classic) or the text models; the rest stay pending")
    p.add_argument("--models", metavar="LABEL[,LABEL...]",
                   help="run only the cells of these model rows (the suite's labels, e.g. minilm-2t); the rest stay pending")
    p.add_argument("--train-only", action="store_true",
                   help="run only the training cells (clean figures, saved models); the attack cells stay pending")
    p.add_argument("--dry-run", action="store_true",
                   help="print the cell count and estimated cost per tier (from records under --results); run nothing")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", help="build leaderboards from result records")
    p.add_argument("--results", default="results")
    p.add_argument("--suite")
    p.add_argument("--format", choices=["md", "latex", "csv", "html"], default="md")
    p.add_argument("--out", help="directory to write every format, plots/ and the static HTML site (site/) into")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("check-model", help="conformance check of a recommender (fit/score/save/load contract)")
    p.add_argument("model", help="module:Class, a registered model or an installed plug-in name")
    p.add_argument("--option", action="append", metavar="K=V", help="constructor option (repeatable)")
    p.add_argument("--task", choices=["preference", "ranking"], help="check one task only (default: all declared)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check_model)

    p = sub.add_parser("evaluate", help="run the fixed protocol on a submitted recommender")
    p.add_argument("--model", required=True, help="module:Class or an installed plug-in name")
    p.add_argument("--card", required=True, help="model card (YAML)")
    p.add_argument("--suite", default="standard", choices=["quick", "standard"])
    p.add_argument("--results", default="results")
    p.add_argument("--size", action="append", metavar="K=V",
                   help="lower an example count of the protocol for this model (max_train_examples, "
                        "max_eval_examples, max_attack_examples; never above the suite's), repeatable")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("submit", help="validate a submission bundle and file it under results/submissions/")
    p.add_argument("bundle")
    p.add_argument("--results", default="results")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("compress-records",
                       help="xz the per-example files of finished records (for results committed to git)")
    p.add_argument("results", help="a results folder (e.g. results/standard)")
    p.add_argument("--min-bytes", type=int, default=20_000, help="leave smaller plain per-example files as they are")
    p.add_argument("--slim-poisoning", action="store_true",
                   help="also rewrite poisoning rows written before 0.1.1 into the current form "
                        "(no hit@10 flags; full-catalogue ranks beyond the top 100 kept as null)")
    p.set_defaults(func=cmd_compress_records)

    p = sub.add_parser("prune-records",
                       help="remove the records of cells a suite's grid no longer holds (after a protocol change)")
    p.add_argument("results", help="a run folder (e.g. results/standard)")
    p.add_argument("--suite", required=True, help="the suite whose grid decides (name or YAML path)")
    p.add_argument("--models", metavar="LABEL[,LABEL...]", help="only these models' records (labels, as run --models)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    p.set_defaults(func=cmd_prune_records)
    return parser


def _version() -> str:
    from benchmark.records import code_version

    return code_version()


def main(argv: list[str] | None = None) -> int:
    from benchmark.runner import RunnerError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, ValueError, FileNotFoundError, KeyError, RunnerError) as err:
        # A user's mistake (bad input, options, data): one line, no traceback.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"recrobust: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
