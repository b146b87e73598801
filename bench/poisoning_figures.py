"""The poisoning figures (issue 13's closing note): ML-100K, ranking task, models x attacks
x fake-user budgets x seeds, with and without detect-and-drop. One JSON line per cell,
written as each finishes (so an interrupted run keeps what it did); `--summary` turns the
lines into the tables.

Each cell is the library's own poisoning cell (`benchmark.experiment.run_poisoning`): the
clean model trained once per (seed, model, defense); fake users generated once per
(seed, attack, budget) and shared by every model; the victim retrained from scratch on
train + fakes with the same options, defense and seed; target HR@10/@50 over the
evaluated real test users who never touched a target, on the sampled protocol (target +
98 of the user's test negatives) and on the full catalog; 95% bootstrap intervals over users.

    python bench/poisoning_figures.py --out results/poisoning/figures.jsonl
    python bench/poisoning_figures.py --summary results/poisoning/figures*.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

MODEL_OPTIONS = {"bpr-mf": {"epochs": 30}, "sasrec": {}, "itemknn": {}, "popularity": {}}


def run(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from benchmark.data.load import load_dataset
    from benchmark.experiment import prepare_task, run_poisoning, train_model

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["seed"], r["model"], r["defense"], r["attack"], r["fake_users"]))
    ds = load_dataset("movielens-100k")
    for seed in args.seeds:
        splits = prepare_task(ds, "ranking", seed=seed, max_eval_examples=args.eval_users)
        clean = {}
        for model in args.models:
            for defense in args.defenses:
                t0 = time.perf_counter()
                clean[model, defense] = train_model(model, splits, seed=seed, options=MODEL_OPTIONS.get(model, {}),
                                                    defense=defense, defense_options=_defense_options(args, defense))[0]
                print(f"seed {seed} {model}/{defense}: clean fit {time.perf_counter() - t0:.1f}s", flush=True)
        for attack in args.attacks:
            for budget in args.budgets:
                for model in args.models:
                    for defense in args.defenses:
                        key = (seed, model, _label(args, defense), attack, budget)
                        if key in done:
                            continue
                        t0 = time.perf_counter()
                        try:
                            r = run_poisoning(clean[model, defense], splits, attack, seed=seed,
                                              options={"fake_users": budget, "targets": args.targets},
                                              model_name=model, model_options=MODEL_OPTIONS.get(model, {}),
                                              defense=defense, defense_options=_defense_options(args, defense),
                                              progress=False)
                            row = {"seed": seed, "model": model, "defense": _label(args, defense), "attack": attack,
                                   "fake_users": budget, "summary": r.summary, "info": r.info,
                                   "wall_seconds": time.perf_counter() - t0}
                        except Exception as err:  # a failing cell is recorded; the grid goes on
                            row = {"seed": seed, "model": model, "defense": _label(args, defense), "attack": attack,
                                   "fake_users": budget, "error": f"{type(err).__name__}: {err}"}
                        with open(out, "a", encoding="utf-8") as fh:
                            fh.write(json.dumps(row, sort_keys=True, default=float) + "\n")
                        s = row.get("summary", {})
                        print(f"seed {seed} {model}/{defense} {attack}@{budget}: "
                              f"HR@10 {s.get('clean', {}).get('target_hr@10', float('nan')):.4f} -> "
                              f"{s.get('robust', {}).get('target_hr@10', float('nan')):.4f} "
                              f"({time.perf_counter() - t0:.1f}s){' ' + row['error'] if 'error' in row else ''}",
                              flush=True)


def _defense_options(args, defense: str) -> dict:
    return {"detector": args.detector} if defense == "detect-and-drop" and args.detector else {}


def _label(args, defense: str) -> str:
    return f"{defense}[{args.detector}]" if defense == "detect-and-drop" and args.detector else defense


def summary(path: str) -> None:
    import numpy as np
    from tabulate import tabulate

    rows = [json.loads(line) for p in path for line in Path(p).read_text().splitlines()]
    ok = [r for r in rows if "summary" in r]
    print(f"{len(ok)} cells ok, {len(rows) - len(ok)} failed\n")
    groups: dict = {}
    for r in ok:
        groups.setdefault((r["model"], r["defense"], r["attack"], r["fake_users"]), []).append(r)
    table = []
    for (model, defense, attack, budget), rs in sorted(groups.items()):
        def mean(block, key):
            return float(np.mean([x["summary"][block][key] for x in rs]))

        def ci(key):
            lo = np.mean([x["summary"][key][0] for x in rs]); hi = np.mean([x["summary"][key][1] for x in rs])
            return f"[{lo:.3f}, {hi:.3f}]"

        table.append([model, defense, attack, budget, len(rs),
                      f"{mean('clean', 'target_hr@10'):.4f}", f"{mean('robust', 'target_hr@10'):.4f}",
                      ci("target_hr@10_after_ci"),
                      f"{mean('clean', 'target_full_hr@50'):.4f}", f"{mean('robust', 'target_full_hr@50'):.4f}",
                      f"{mean('clean', 'ndcg@10'):.4f}", f"{mean('robust', 'ndcg@10'):.4f}"])
    print(tabulate(table, headers=["model", "defense", "attack", "fake", "seeds", "HR@10 before", "HR@10 after",
                                   "after 95% CI (users)", "full HR@50 before", "full HR@50 after",
                                   "NDCG@10 clean", "NDCG@10 poisoned"]))
    # Detection depends on the poisoned data only, not on the model or defense; take it from
    # the detect-and-drop rows where there are any (one row per attack, budget and seed).
    det: dict = {}
    det_defense = "detect-and-drop" if any(r["defense"] == "detect-and-drop" for r in ok) else "none"
    for r in ok:
        if r["defense"] != det_defense:
            continue
        for name, d in r["summary"]["detection"].items():
            det.setdefault((r["attack"], r["fake_users"], name), {}).setdefault(r["seed"], d)
    print("\nDetectors (top 5% of users flagged; mean over seeds):")
    print(tabulate([[a, b, n, f"{np.mean([d['precision'] for d in v.values()]):.3f}",
                     f"{np.mean([d['recall'] for d in v.values()]):.3f}", f"{np.mean([d['f1'] for d in v.values()]):.3f}",
                     len(v)] for (a, b, n), v in sorted(det.items())],
                   headers=["attack", "fake", "detector", "precision", "recall", "F1", "seeds"]))
    stages = [r["summary"]["stage_seconds"] for r in ok]
    print("\nmean stage seconds per cell by model:")
    for model in sorted({r["model"] for r in ok}):
        st = [r["summary"]["stage_seconds"] for r in ok if r["model"] == model]
        print(model, {k: round(float(np.mean([s.get(k, 0) for s in st])), 2) for k in st[0]},
              "wall", round(float(np.mean([r["wall_seconds"] for r in ok if r["model"] == model])), 2))
    del stages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/poisoning/figures.jsonl")
    p.add_argument("--summary", metavar="JSONL", nargs="+")
    p.add_argument("--models", nargs="+", default=["popularity", "itemknn", "bpr-mf", "sasrec"])
    p.add_argument("--attacks", nargs="+", default=["random", "average", "bandwagon", "segment", "pga"])
    p.add_argument("--budgets", nargs="+", type=float, default=[0.01, 0.03, 0.05])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--defenses", nargs="+", default=["none", "detect-and-drop"])
    p.add_argument("--targets", type=int, default=10)
    p.add_argument("--detector", help="detect-and-drop's detector (default: the defense's, pca)")
    p.add_argument("--eval-users", type=int, default=200, help="real test users evaluated (seeded subset)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if args.summary:
        summary(args.summary)
    else:
        run(args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
