"""`recrobust attack --attack <poisoning attack>`: one poisoning cell from the command line.

    recrobust attack --dataset movielens-100k --task ranking --model bpr-mf \\
        --attack bandwagon --fake-users 0.03 --targets 10 [--filler 36] [--show]

Trains the model (or loads --model-dir), injects the fake users, retrains the same model
from scratch on train + fakes (same options and seed), and prints the target's HR@10/@50
before and after with 95% bootstrap intervals over users, the clean metric after, and
the detectors' precision/recall; `--show` prints a few fake profiles first.
"""

from __future__ import annotations

import json
import math


def is_poisoning_attack(name: str) -> bool:
    from attacks.registry import listing

    return any(a["name"] == name and a["threat_model"] == "poisoning" for a in listing())


def check_args(args) -> None:
    """One-line errors naming the option, before anything is trained."""
    poisoning = is_poisoning_attack(args.attack)
    given = [flag for flag, v in (("--fake-users", args.fake_users), ("--targets", args.targets),
                                  ("--filler", args.filler), ("--target-items", args.target_items)) if v is not None]
    if not poisoning:
        if given:
            raise ValueError(f"{given[0]}: only for poisoning attacks (random, average, bandwagon, segment, pga), "
                             f"not {args.attack!r}")
        return
    if args.fake_users is not None and not 0 < args.fake_users < 1:
        raise ValueError(f"--fake-users: must be a fraction of the real users in (0, 1), got {args.fake_users}")
    if args.targets is not None and args.targets < 1:
        raise ValueError(f"--targets: must be >= 1, got {args.targets}")
    if args.filler is not None and args.filler < 1:
        raise ValueError(f"--filler: must be >= 1, got {args.filler}")


def run(args, model, splits) -> int:
    from attacks.poisoning.base import PoisoningOptionError
    from benchmark.experiment import run_poisoning

    options = {"fake_users": args.fake_users if args.fake_users is not None else 0.01,
               "targets": args.targets if args.targets is not None else 10}
    if args.filler is not None:
        options["filler"] = args.filler
    if args.target_items:
        options["target_items"] = [t.strip() for t in args.target_items.split(",") if t.strip()]
    from benchmark.options import parse_pairs

    options.update(parse_pairs(args.attack_option, "--attack-option"))
    catalog = set(splits["train"].item_ids)
    if args.filler is not None and args.filler > len(catalog) - len(options.get("target_items") or [1] * options["targets"]):
        raise ValueError(f"--filler: {args.filler} filler items per fake user, but the catalog has only "
                         f"{len(catalog)} items")
    bad = [t for t in options.get("target_items") or [] if t not in catalog]
    if bad:
        raise ValueError(f"--target-items: unknown item(s) {', '.join(bad[:5])} (not in the catalog)")
    try:
        result = run_poisoning(model, splits, args.attack, seed=args.seed, options=options,
                               model_name=getattr(args, "model", None), progress=True)
    except PoisoningOptionError as err:
        raise ValueError(str(err).replace("option fake_users", "--fake-users").replace("option filler", "--filler")
                         .replace("option targets", "--targets")) from None
    if args.records:
        with open(args.records, "w", encoding="utf-8") as fh:
            for row in result.rows:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps({"attack": result.attack, "config": result.config, "summary": result.summary,
                          "fake_profiles": result.fake.profiles(5) if args.show else None}, indent=2, sort_keys=True,
                         default=float))
        return 0
    if args.show:
        titles = splits["train"].dataset.items["title"].astype(str).to_dict() if "title" in splits["train"].dataset.items else {}
        for line in result.fake.profiles(3, titles):
            print(line)
        print()
    s = result.summary
    fmt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"
    before, after = s["clean"], s["robust"]
    print(f"{args.attack} on {model.name} ({args.task}): {s['fake_users']} fake users x ({s['filler']} fillers + "
          f"{len(s['targets'])} targets), {s['users']} real test users, {s['pairs']} (user, target) pairs")
    for key in [k for k in after if k.startswith("target_")]:
        ci = s.get(f"{key}_after_ci")
        print(f"  {key}: {fmt(before.get(key))} -> {fmt(after.get(key))}"
              + (f"  (after, 95% CI over users [{ci[0]:.4f}, {ci[1]:.4f}])" if ci else ""))
    if "prediction_shift" in s:
        print(f"  prediction shift: {fmt(s['prediction_shift'])}")
    clean_key = "ndcg@10" if args.task == "ranking" else "auc"
    print(f"  clean {clean_key}: {fmt(before.get(clean_key))} -> {fmt(after.get(clean_key))}")
    det = "; ".join(f"{n} P {d['precision']:.2f} R {d['recall']:.2f}" for n, d in s["detection"].items())
    print(f"  detectors (top {s['flag_fraction']:.0%} flagged): {det}")
    print("  seconds: " + ", ".join(f"{k.replace('_seconds', '')} {v:.1f}" for k, v in s["stage_seconds"].items()))
    return 0
