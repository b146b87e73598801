"""Speed benchmark: what one poisoning cell costs, stage by stage, and what the figure grid
(models x 5 attacks x 3 budgets x 3 seeds, issue 13) costs, on this machine, in one run.

One cell = generate the fake users (the attack; shared by every model in the grid, so
counted once per attack x budget x seed), retrain the victim from scratch on train + fakes,
evaluate (target ranks on sampled and full-catalog protocols, clean NDCG@10), detect
(three detectors; also shared). The "before" evaluation of the clean model is shared by
every attack on it and is counted once per model x seed.

    python bench/bench_poisoning.py [--models bpr-mf itemknn popularity] [--eval-users 200]

Grid estimate = measured stage costs x the number of times each stage runs in the grid
(fits per model, generations per attack); `bench/poisoning_figures.py` runs the real grid
and its log gives the measured total.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ATTACKS = ["random", "average", "bandwagon", "segment", "pga"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["bpr-mf", "itemknn", "popularity"])
    p.add_argument("--eval-users", type=int, default=200)
    p.add_argument("--budget", type=float, default=0.03)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from attacks.poisoning import cell as cell_module
    from attacks.registry import create
    from attacks.poisoning.protocol import select_targets
    from benchmark.data.load import load_dataset
    from benchmark.experiment import prepare_task, run_poisoning, train_model

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from poisoning_figures import MODEL_OPTIONS

    splits = prepare_task(load_dataset("movielens-100k"), "ranking", seed=0, max_eval_examples=args.eval_users)
    train = splits["train"]
    targets = select_targets(train.train_interactions, 10, 0)
    gen = {}
    for attack in ATTACKS:
        t0 = time.perf_counter()
        create(attack, fake_users=args.budget, seed=0).generate(train.train_interactions, targets,
                                                                catalog=train.item_ids)
        gen[attack] = time.perf_counter() - t0
    print("generate (s, one budget):", {a: round(v, 2) for a, v in gen.items()})
    n_seeds, n_budgets = 3, 3
    grid_total = sum(gen.values()) * n_budgets * n_seeds
    for model in args.models:
        opts = MODEL_OPTIONS.get(model, {})
        t0 = time.perf_counter()
        clean, _ = train_model(model, splits, seed=0, options=opts)
        fit = time.perf_counter() - t0
        cell_module._FAKE_CACHE.clear()
        r = run_poisoning(clean, splits, "bandwagon", seed=0, options={"fake_users": args.budget},
                          model_name=model, model_options=opts, progress=False)
        st = r.summary["stage_seconds"]
        # the second cell on the same clean model: "before" is cached, as in the grid
        r2 = run_poisoning(clean, splits, "random", seed=0, options={"fake_users": args.budget},
                           model_name=model, model_options=opts, progress=False)
        st2 = r2.summary["stage_seconds"]
        per_cell = st2["retrain_seconds"] + st2["evaluate_seconds"]
        print(f"{model}: clean fit {fit:.2f}s; bandwagon cell: generate {st['generate_seconds']:.2f}s, "
              f"retrain {st['retrain_seconds']:.2f}s, evaluate {st['evaluate_seconds']:.2f}s (before + after), "
              f"detect {st['detect_seconds']:.2f}s; a further cell on the same model: retrain + evaluate "
              f"{per_cell:.2f}s")
        grid_total += n_seeds * (fit + 5 * n_budgets * per_cell)
    detect = st["detect_seconds"]
    grid_total += detect * 5 * n_budgets * n_seeds
    print(f"grid estimate ({', '.join(args.models)} x 5 attacks x {n_budgets} budgets x {n_seeds} seeds, "
          f"no defense): {grid_total / 60:.1f} min")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
