"""The defense figures of issue 5 on ML-100K, sized for a 2-core CPU.

    python bench/defense_figures.py apr          # BPR-MF vs BPR-MF + APR (embedding-at), ranking
    python bench/defense_figures.py adv-augment  # cross-encoder (MiniLM) vs + adv-augment, preference

apr: BPR-MF (default options) is trained once; APR then continues from those weights
(embedding-at fit=false: exactly the APR paper's protocol, BPR pre-training then the
adversarial objective), so "without" is the starting point of "with". Both get clean
test NDCG@10 (all test users) and embedding-pgd / embedding-fgsm (default epsilon 0.5,
plus the grid for the curve) on a seeded subset of test users.

adv-augment: the cross-encoder is fine-tuned on a seeded subset of the training examples
(1 epoch); adv-augment then runs its rounds from those weights (fit=false) — the seed
article's dynamic update of a trained model. Both get clean test AUC (all test users) and
robust accuracy under deepwordbug and profile-swap on the same seeded test examples.
With --control, a third model fine-tunes the baseline on as many CLEAN examples as the
defense fine-tuned on per round: it separates the effect of the adversarial examples
from the effect of more training.

Equivalent CLI runs (the CLI trains the plain model again instead of reusing it):
    recrobust train --dataset movielens-100k --task ranking --model bpr-mf --out /tmp/bpr
    recrobust attack --dataset movielens-100k --task ranking --model-dir /tmp/bpr --attack embedding-pgd --examples 200
    recrobust train --dataset movielens-100k --task ranking --model bpr-mf --defense embedding-at --out /tmp/apr
    recrobust attack --dataset movielens-100k --task ranking --model-dir /tmp/apr --attack embedding-pgd --examples 200

Threads: on a shared 2-core machine torch's default of 2 intra-op threads made BPR-MF
training ~8x slower (wall) than 1 thread; --threads 1 is the default here.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _attack(model, data, name, seed, n, **kwargs):
    from benchmark.experiment import run_attack

    t0 = time.perf_counter()
    result = run_attack(model, data, name, seed=seed, max_examples=n, progress=False, **kwargs)
    s = result.summary
    out = {"attack": name, "examples": s["examples"], "clean": s.get("clean"), "robust": s.get("robust"),
           "attack_success_rate": s.get("attack_success_rate"), "n_succeeded": s["n_succeeded"],
           "n_failed": s["n_failed"], "n_skipped": s["n_skipped"], "n_error": s["n_error"],
           "mean_queries": s.get("mean_queries"), "seconds": round(time.perf_counter() - t0, 1)}
    if "curve" in s:
        out["curve"] = [{"epsilon": c["epsilon"], "robust": c["robust"], "attack_success_rate": c["attack_success_rate"]}
                        for c in s["curve"]]
    return out


def run_apr(args) -> dict:
    from benchmark.data.load import load_dataset
    from benchmark.evaluation import evaluate
    from benchmark.experiment import prepare_task, train_model

    splits = prepare_task(load_dataset("movielens-100k"), "ranking", seed=args.seed)
    options = {"device": "cpu", "progress": False}
    t0 = time.perf_counter()
    plain, _ = train_model("bpr-mf", splits, seed=args.seed, options=options)
    _log(f"BPR-MF trained in {time.perf_counter() - t0:.0f}s ({plain.training_log['epochs_run']} epochs)")
    attack_options = {"options": {"epsilons": args.epsilons}}
    results = {"bpr-mf": {"train_seconds": round(time.perf_counter() - t0, 1)}}
    defended = copy.deepcopy(plain)
    t0 = time.perf_counter()
    apr_options = {"fit": False, "epsilon": args.apr_epsilon}
    if args.apr_epochs:
        apr_options["epochs"] = args.apr_epochs
    _, info = train_model(defended, splits, seed=args.seed, defense="embedding-at", defense_options=apr_options)
    _log(f"APR trained in {time.perf_counter() - t0:.0f}s ({info['adversarial']['epochs_run']} epochs)")
    results["bpr-mf+apr"] = {"train_seconds": round(time.perf_counter() - t0, 1), "training": info}
    for label, model in (("bpr-mf", plain), ("bpr-mf+apr", defended)):
        results[label]["clean_test"] = evaluate(model, splits["test"])
        for attack in ("embedding-pgd", "embedding-fgsm"):
            results[label][attack] = _attack(model, splits["test"], attack, args.seed, args.attack_examples,
                                             **attack_options)
        curve = lambda a: ", ".join(f"{c['epsilon']:g}: {c['robust']['ndcg@10']:.3f}"  # noqa: E731
                                    for c in results[label][a]["curve"])
        _log(f"{label}: clean NDCG@10 {results[label]['clean_test']['ndcg@10']:.4f}; robust NDCG@10 by epsilon "
             f"PGD [{curve('embedding-pgd')}] FGSM [{curve('embedding-fgsm')}]")
    return results


def _clean_units(model, examples, n, seed, salt):
    from attacks.defenses import training_data as td

    keep = td.seeded_sample(len(examples), n, seed, salt)
    return model.training_units([examples[i] for i in keep], seed)


def run_adv_augment(args) -> dict:
    from attacks.defenses import fitting
    from benchmark.data.load import load_dataset
    from benchmark.evaluation import evaluate
    from benchmark.experiment import prepare_task, train_model

    splits = prepare_task(load_dataset("movielens-100k"), "preference", seed=args.seed,
                          max_train_examples=args.train_examples)
    options = {"device": "cpu", "progress": False, "epochs": 1}
    t0 = time.perf_counter()
    plain, _ = train_model("cross-encoder", splits, seed=args.seed, options=options)
    _log(f"cross-encoder trained on {len(splits['train'].examples)} examples in {time.perf_counter() - t0:.0f}s")
    results = {"cross-encoder": {"train_seconds": round(time.perf_counter() - t0, 1)}}
    profile_swap = {"options": {"pool_size": args.pool_size}}

    def evaluate_all(label, model):
        r = results.setdefault(label, {})
        r["clean_test"] = evaluate(model, splits["test"])
        r["deepwordbug"] = _attack(model, splits["test"], "deepwordbug", args.seed, args.attack_examples)
        r["profile-swap"] = _attack(model, splits["test"], "profile-swap", args.seed, args.attack_examples, **profile_swap)
        _log(f"{label}: clean AUC {r['clean_test']['auc']:.4f}; robust accuracy deepwordbug "
             f"{r['deepwordbug']['robust']['accuracy']:.3f} (clean {r['deepwordbug']['clean']['accuracy']:.3f}), "
             f"profile-swap {r['profile-swap']['robust']['accuracy']:.3f} (clean {r['profile-swap']['clean']['accuracy']:.3f})")

    evaluate_all("cross-encoder", plain)
    defended = copy.deepcopy(plain)
    t0 = time.perf_counter()
    defense_options = {"fit": False, "rounds": args.rounds, "attack": args.attack, "attack_examples": args.round_attack,
                       "eval_examples": args.round_eval, "attack_eval_examples": args.round_attack_eval,
                       "clean_mix": args.clean_mix}
    _, info = train_model(defended, splits, seed=args.seed, defense="adv-augment", defense_options=defense_options)
    _log(f"adv-augment ({args.rounds} rounds) in {time.perf_counter() - t0:.0f}s; added per round "
         f"{[r['added_examples'] for r in info['rounds']]}")
    results["cross-encoder+adv-augment"] = {"train_seconds": round(time.perf_counter() - t0, 1), "training": info}
    evaluate_all("cross-encoder+adv-augment", defended)
    if args.control:
        control = copy.deepcopy(plain)
        logs = []
        for r in info["rounds"][1:]:
            n = r.get("finetune", {}).get("training_examples", 0)
            if n:
                p, c, y = _clean_units(control, splits["train"].examples, n, args.seed, 9000 + r["round"])
                logs.append(fitting.fine_tune_text(control, p, c, y, 1, args.seed + r["round"]))
        results["cross-encoder+clean-finetune"] = {"training": logs}
        evaluate_all("cross-encoder+clean-finetune", control)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=["apr", "adv-augment"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--attack-examples", type=int, default=None,
                        help="attacked test examples (apr: 200, adv-augment: 50)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.05, 0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--apr-epsilon", type=float, default=0.5)
    parser.add_argument("--apr-epochs", type=int, default=None, help="default: the model's epochs (30)")
    parser.add_argument("--train-examples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--attack", default="deepwordbug", help="the attack adv-augment trains against")
    parser.add_argument("--round-attack", type=int, default=100, help="training examples attacked per round")
    parser.add_argument("--round-eval", type=int, default=200, help="valid examples for clean metrics per round")
    parser.add_argument("--round-attack-eval", type=int, default=30, help="valid examples attacked per round")
    parser.add_argument("--clean-mix", default=1.0, type=lambda v: v if v == "all" else float(v))
    parser.add_argument("--pool-size", type=int, default=10, help="profile-swap replacement pool per example")
    parser.add_argument("--control", action="store_true", help="also a clean fine-tuning control (adv-augment)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.attack_examples is None:
        args.attack_examples = 200 if args.experiment == "apr" else 50
    wall, cpu = time.perf_counter(), time.process_time()
    results = run_apr(args) if args.experiment == "apr" else run_adv_augment(args)
    results["_run"] = {"args": vars(args), "wall_seconds": round(time.perf_counter() - wall, 1),
                       "cpu_seconds": round(time.process_time() - cpu, 1)}
    text = json.dumps(results, indent=2, sort_keys=True, default=str)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
