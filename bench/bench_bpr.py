"""Speed benchmark: our BPR-MF training vs the `implicit` package's BPR, same run, same data.

Both learn from the same training interactions of ML-100K (the train part of the
leave-last-out timeline) for the same number of epochs with the same factors, learning
rate and L2 regularisation, and are scored on the same test ranking examples (the
held-out positive + 99 seeded negatives) with the benchmark's own metrics:

- ours: recommenders.classic.bpr_mf.BPRMF (profile fold-in, Adam, minibatches of whole
  user timelines), through score(); no validation split, so no early stopping: exactly
  --epochs epochs. Twice: with the CPU fast path (the default on CPU: the fused loss
  kernel recommenders.classic._bpr_kernel stepped by recommenders.classic._cpu_adam) and
  with autograd on the torch loss and torch's Adam (fused_kernel=False) — the same model
  and optimizer update, so the two rows show what the fast path buys;
- implicit: implicit.cpu.bpr.BayesianPersonalizedRanking (Cython, Hogwild SGD, one
  update per sampled triple), scored with its user/item factors (its item-bias column
  included); candidates it never saw in training score 0, as ours do.

The models differ by design (fold-in user vectors vs a per-user table; Adam vs SGD), so
the same "learning rate" is not the same step: the table reports quality at this
setting, not tuned peaks. Timings: median over --repeats fits, run alternately so that
machine load affects all alike; "per epoch" is the fit time divided by the epochs
(ours: the training loop, data preparation reported separately). Before timing, one
untimed 1-epoch fit of ours loads the compiled kernel (numba; compiled on first use
after installation, then cached on disk): that one-time cost per process is printed.
--threads sets both libraries' threads (torch's for ours, which only the autograd row
uses: the CPU fast path, kernel and CpuAdam, always runs on one thread).

Per-epoch cost is not the whole story: the two need very different numbers of epochs.
So the benchmark also trains both for --curve-epochs epochs, logging test NDCG@10 after
every epoch against cumulative training time, and reports when each first reaches the
best quality the other one reached (time to quality).

    python bench/bench_bpr.py [--epochs 30] [--factors 64] [--lr 0.01] [--reg 1e-5] [--repeats 3]
                              [--threads N] [--curve-epochs 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from tabulate import tabulate

from benchmark import metrics
from benchmark.data.load import load_dataset
from benchmark.tasks import build_splits
from recommenders.classic.bpr_mf import BPRMF


def ranking_quality(scores: np.ndarray, examples) -> dict[str, float]:
    ranks = metrics.positive_ranks(list(scores), [e.label for e in examples])
    return metrics.ranking_metrics(ranks, k=10)


def batch_option(args) -> dict:
    return {"batch_size": args.batch_size} if args.batch_size else {}  # none: the model's default


def fit_ours(train, args, seed: int, fused="auto", epochs: int | None = None) -> tuple[BPRMF, float, float]:
    model = BPRMF(factors=args.factors, epochs=epochs or args.epochs, lr=args.lr, weight_decay=args.reg,
                  progress=False, device=args.device, fused_kernel=fused, **batch_option(args))
    start = time.perf_counter()
    model.fit(train, valid=None, seed=seed)
    total = time.perf_counter() - start
    return model, total, float(model.training_log["seconds"])


def fit_implicit(user_items: sp.csr_matrix, args, seed: int, epochs: int | None = None, callback=None):
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=args.factors, learning_rate=args.lr, regularization=args.reg,
                                        iterations=epochs or args.epochs, random_state=seed, num_threads=args.threads)
    start = time.perf_counter()
    model.fit(user_items, show_progress=False, callback=callback)
    return model, time.perf_counter() - start


def implicit_scores(model, examples, user_index: dict, item_index: dict) -> np.ndarray:
    users = np.array([user_index[e.profile.user_id] for e in examples])
    cand = np.array([[item_index.get(c, -1) for c in e.candidates] for e in examples])
    item_f = np.vstack([model.item_factors, np.zeros((1, model.item_factors.shape[1]), model.item_factors.dtype)])
    cand = np.where(cand < 0, len(item_f) - 1, cand)  # unseen items -> a zero row
    return np.einsum("nd,ncd->nc", model.user_factors[users], item_f[cand]).astype(np.float64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--reg", type=float, default=1e-5, help="L2 regularisation (ours: weight_decay)")
    parser.add_argument("--batch-size", type=int, default=None, help="ours only (default: the model's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for both (0 = each library's default: all cores)")
    parser.add_argument("--device", default="auto", help="ours: auto / cpu / cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--curve-epochs", type=int, default=100,
                        help="also train both for this many epochs, logging test NDCG@10 per epoch (0 = skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # offline fallback notices of the dataset source
        dataset = load_dataset(args.dataset)
    splits = build_splits(dataset, "ranking", seed=args.seed)
    train, test = splits["train"], splits["test"]
    inter = train.train_interactions
    users = sorted(inter["user_id"].unique())
    items = sorted(inter["item_id"].astype(str).unique())
    user_index = {u: k for k, u in enumerate(users)}
    item_index = {i: k for k, i in enumerate(items)}
    rows = inter["user_id"].map(user_index).to_numpy()
    cols = inter["item_id"].astype(str).map(item_index).to_numpy()
    user_items = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    user_items.data[:] = 1.0

    start = time.perf_counter()
    fit_ours(train, args, args.seed, epochs=1)
    print(f"one-time: first fit in this process (1 epoch, loads the compiled kernel): "
          f"{time.perf_counter() - start:.2f}s", flush=True)
    ours_total, ours_loop, auto_total, auto_loop, theirs = [], [], [], [], []
    for r in range(args.repeats):
        ours, total, loop = fit_ours(train, args, args.seed)
        ours_total.append(total)
        ours_loop.append(loop)
        autograd, a_total, a_loop = fit_ours(train, args, args.seed, fused=False)
        auto_total.append(a_total)
        auto_loop.append(a_loop)
        model, seconds = fit_implicit(user_items, args, args.seed)
        theirs.append(seconds)
        print(f"repeat {r + 1}/{args.repeats}: ours {loop:.3f}s loop ({total:.3f}s fit), "
              f"ours autograd {a_loop:.3f}s loop, implicit {seconds:.3f}s", flush=True)

    q_ours = ranking_quality(ours.score_examples(test.examples), test.examples)
    q_auto = ranking_quality(autograd.score_examples(test.examples), test.examples)
    q_theirs = ranking_quality(implicit_scores(model, test.examples, user_index, item_index), test.examples)
    loop, total, other = statistics.median(ours_loop), statistics.median(ours_total), statistics.median(theirs)
    a_loop, a_total = statistics.median(auto_loop), statistics.median(auto_total)
    table = [
        ["ours (recrobust bpr-mf, fold-in; fused kernel)", f"{total:.3f}", f"{loop / args.epochs * 1000:.1f}",
         f"{q_ours['ndcg@10']:.4f}", f"{q_ours['hr@10']:.4f}"],
        ["ours, autograd (fused_kernel=False)", f"{a_total:.3f}", f"{a_loop / args.epochs * 1000:.1f}",
         f"{q_auto['ndcg@10']:.4f}", f"{q_auto['hr@10']:.4f}"],
        ["implicit.cpu.bpr", f"{other:.3f}", f"{other / args.epochs * 1000:.1f}",
         f"{q_theirs['ndcg@10']:.4f}", f"{q_theirs['hr@10']:.4f}"],
    ]
    print()
    print(f"{args.dataset}: {len(inter):,} training interactions, {len(users)} users, {len(items)} items; "
          f"{len(test.examples)} test examples (1 positive + 99 negatives)")
    print(f"epochs={args.epochs} factors={args.factors} lr={args.lr} reg={args.reg}; ours: batch {ours.setting('batch_size')}, "
          f"device {ours.device}, torch threads {torch.get_num_threads()}; implicit threads {args.threads or 'all'}")
    print(tabulate(table, headers=["model", "fit s", "ms/epoch", "NDCG@10", "HR@10"], tablefmt="github"))
    print(f"time ratio ours/implicit per epoch (training loop): {loop / other:.2f}x; whole fit: {total / other:.2f}x")
    # Each repeat fits both back to back, so its ratio is less exposed to the machine's
    # drift than the ratio of medians; their spread shows how noisy the run was.
    paired = sorted(o / t for o, t in zip(ours_loop, theirs))
    print(f"per-repeat ratios ours/implicit: median {statistics.median(paired):.2f}x, "
          f"range {paired[0]:.2f}-{paired[-1]:.2f}x over {len(paired)} repeats")
    print(f"time ratio ours autograd/fused per epoch: {a_loop / loop:.2f}x")
    if args.curve_epochs:
        time_to_quality(args, train, splits["test"], user_items, user_index, item_index)
    return 0


def time_to_quality(args, train, test, user_items, user_index, item_index) -> None:
    """Test NDCG@10 after each epoch against cumulative training time (evaluation not
    timed), both trained for --curve-epochs; reports when each first reaches the best
    NDCG@10 the other one reached."""
    examples = test.examples
    ours = BPRMF(factors=args.factors, epochs=args.curve_epochs, lr=args.lr, weight_decay=args.reg,
                 progress=False, device=args.device, patience=0, **batch_option(args))
    ours.fit(train, valid=test, seed=args.seed)  # "valid" = test here only to log the curve; no early stop
    ours_curve = [(e["epoch"], e["seconds"], e["ndcg@10"]) for e in ours.training_log["epochs"]]

    theirs_curve: list[tuple[int, float, float]] = []
    clock = {"train": 0.0, "mark": time.perf_counter()}
    holder: dict = {}

    def callback(iteration, _elapsed, _correct, _skipped):
        clock["train"] += time.perf_counter() - clock["mark"]
        scores = implicit_scores(holder["model"], examples, user_index, item_index)
        theirs_curve.append((iteration + 1, clock["train"], ranking_quality(scores, examples)["ndcg@10"]))
        clock["mark"] = time.perf_counter()

    from implicit.cpu.bpr import BayesianPersonalizedRanking

    holder["model"] = BayesianPersonalizedRanking(factors=args.factors, learning_rate=args.lr, regularization=args.reg,
                                                  iterations=args.curve_epochs, random_state=args.seed,
                                                  num_threads=args.threads)
    clock["mark"] = time.perf_counter()
    holder["model"].fit(user_items, show_progress=False, callback=callback)

    def first_reaching(curve, target):
        return next(((e, t) for e, t, q in curve if q >= target), None)

    rows = []
    for name, curve, other in (("ours", ours_curve, theirs_curve), ("implicit", theirs_curve, ours_curve)):
        best_e, best_t, best_q = max(curve, key=lambda c: c[2])
        target = max(q for _, _, q in other)
        hit = first_reaching(curve, target)
        rows.append([name, f"{best_q:.4f}", best_e, f"{best_t:.2f}", f"{target:.4f}",
                     "not reached" if hit is None else f"epoch {hit[0]}, {hit[1]:.2f} s"])
    print()
    print(f"time to quality ({args.curve_epochs} epochs each; test NDCG@10 after every epoch, training time only):")
    print(tabulate(rows, headers=["model", "best NDCG@10", "at epoch", "at s", "other's best", "reaches it at"],
                   tablefmt="github"))


if __name__ == "__main__":
    raise SystemExit(main())
