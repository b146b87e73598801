"""Closing-note figures for causal-lm (issue 14): TALLRec's few-shot protocol on ML-100K
preference, and robust accuracy under deepwordbug and profile-swap, next to the MiniLM
cross-encoder and the classic models, all on one fixed seeded test subset.

    python bench/causal_lm_figures.py --out results/causal_lm/figures.jsonl --test-examples 100

Writes one JSON line per finished cell as it goes (an interrupted run keeps what it has;
rerunning skips the cells already in --out), and prints a table at the end.
Protocol: the test subset is drawn once (seed 0) for every model and seed; few-shot runs
train on a seeded subset of k training examples (the fit seed picks it) for --epochs
epochs, with no validation (no early stopping); causal-lm trains LoRA adapters. Classic
models (BPR-MF, SASRec) have no few-shot mode: they train on the whole training split.
--plan gives the cells in run order (see DEFAULT_PLAN); attack cells attack a model fitted
earlier in the plan, over a seeded subset of --attack-examples test examples.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# Run order = priority (CPU is scarce: what matters most finishes first).
DEFAULT_PLAN = [
    "bpr-mf:-:0,1,2", "cross-encoder:16:0,1,2", "cross-encoder:64:0,1,2", "cross-encoder:256:0,1,2",
    "causal-lm:0:0", "causal-lm:16:0,1,2", "causal-lm:64:0",
    "attack:deepwordbug:causal-lm:64:0", "attack:profile-swap:causal-lm:64:0",
    "attack:deepwordbug:cross-encoder:64:0", "attack:profile-swap:cross-encoder:64:0",
    "sasrec:-:0", "causal-lm:64:1,2", "causal-lm:256:0,1,2",
]


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/causal_lm/figures.jsonl")
    ap.add_argument("--dataset", default="movielens-100k")
    ap.add_argument("--test-examples", type=int, default=200)
    ap.add_argument("--plan", nargs="*", default=DEFAULT_PLAN,
                    help="cells in run order: MODEL:K:SEEDS (K '-' = whole training split, 0 = zero-shot) "
                         "or attack:NAME:MODEL:K:SEED (attacks that trained model)")
    ap.add_argument("--epochs", type=int, default=1, help="few-shot fine-tuning epochs (CPU budget)")
    ap.add_argument("--attack-examples", type=int, default=10)
    ap.add_argument("--query-budget", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from benchmark.data.load import load_dataset
    from benchmark.evaluation import evaluate
    from benchmark.experiment import prepare_task, run_attack
    from recommenders.registry import create

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                done.add(json.loads(line)["cell"])

    def emit(row: dict) -> None:
        row["peak_rss_gib"] = round(_rss_gib(), 2)
        with out.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        print(json.dumps(row, default=str), flush=True)

    dataset = load_dataset(args.dataset)
    splits = prepare_task(dataset, "preference", seed=0, max_eval_examples=args.test_examples)
    test = splits["test"]
    print(f"test subset: {len(test.examples)} examples, like-rate {np.mean([e.label for e in test.examples]):.3f}", flush=True)

    def options(model: str, k: int | None) -> dict:
        if model == "causal-lm":
            base = dict(lora=True, progress=False, batch_size=8)
        elif model == "cross-encoder":
            base = dict(progress=False, batch_size=16)
        else:
            return {}
        if k is not None:
            base.update(max_train_examples=k, epochs=args.epochs if k else 0)
        return base

    steps = []
    for spec in args.plan:
        parts = spec.split(":")
        if parts[0] == "attack":
            steps.append(("attack", parts[1], parts[2], parts[3], int(parts[4])))
        else:
            steps += [("fit", None, parts[0], parts[1], int(s)) for s in parts[2].split(",")]
    wanted = {(m, k, seed) for kind, _, m, k, seed in steps if kind == "attack"}
    fitted: dict = {}
    for kind, attack, model, k_text, seed in steps:
        k = None if k_text == "-" else int(k_text)
        key = (model, k_text, seed)
        cell = f"{model}/k={k_text}/seed={seed}" if kind == "fit" else f"attack/{attack}/{model}/k={k_text}/seed={seed}"
        if kind == "fit":
            if cell in done and key not in wanted:
                continue
            started = time.perf_counter()
            try:
                rec = create(model, **options(model, k)).fit(splits["train"], None, seed=seed)
                train_s = time.perf_counter() - started
                t0 = time.perf_counter()
                metrics = evaluate(rec, test)
                row = {"cell": cell, "model": model, "k": k_text, "seed": seed, "train_seconds": round(train_s, 1),
                       "eval_seconds": round(time.perf_counter() - t0, 1), **metrics,
                       "card": getattr(rec, "card", None), "options": options(model, k)}
            except Exception as err:  # a failing cell is recorded and the rest go on
                row = {"cell": cell, "model": model, "k": k_text, "seed": seed, "error": f"{type(err).__name__}: {err}"}
                rec = None
            if cell not in done:
                emit(row)
            if key in wanted and rec is not None:
                fitted[key] = rec
            continue
        if cell in done:
            continue
        rec = fitted.get(key)
        if rec is None:
            emit({"cell": cell, "error": f"model {key} was not fitted earlier in the plan"})
            continue
        started = time.perf_counter()
        try:
            result = run_attack(rec, test, attack, seed=0, query_budget=args.query_budget,
                                max_examples=args.attack_examples, progress=False)
            row = {"cell": cell, "model": model, "attack": attack, "k": k_text, "seed": seed,
                   "seconds": round(time.perf_counter() - started, 1), **result.summary}
        except Exception as err:
            row = {"cell": cell, "model": model, "attack": attack, "error": f"{type(err).__name__}: {err}"}
        emit(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
