"""`recrobust attack --attack item-promotion`: one cross-user promotion cell from the command line.

    recrobust attack --dataset movielens-100k --task ranking --model-dir DIR \\
        --attack item-promotion --targets 5 --budget 3 --query-budget 500 \\
        --attack-option users=30 --attack-option eval_users=100 [--show]

Trains the model (or loads --model-dir), rewrites each target's text (within --budget
words; default 3) against it over the attacker users, and prints exposure@10 over the
held-out users before and after (with target HR@10/@50, NDCG@10, mean rank); --show
prints each target's original and edited text. The model is not retrained.
"""

from __future__ import annotations

import json
import math


def is_promotion_attack(name: str) -> bool:
    from attacks.registry import REGISTRY
    from benchmark.experiment import is_promotion

    return name in REGISTRY.names() and is_promotion(name)


def check_args(args) -> None:
    """One-line errors naming the flag, before anything is trained."""
    for flag, value in (("--fake-users", args.fake_users), ("--filler", args.filler)):
        if value is not None:
            raise ValueError(f"{flag}: only for fake-user attacks; {args.attack} rewrites the target's text "
                             "(--budget: words changed at most)")
    if args.task != "ranking":
        raise ValueError(f"--task: {args.attack} ranks the target among each user's candidates: ranking only")
    if args.targets is not None and args.targets < 1:
        raise ValueError(f"--targets: must be >= 1, got {args.targets}")
    if args.budget is not None and args.budget < 1:
        raise ValueError(f"--budget: must be at least 1 word, got {args.budget}")


def run(args, model, splits) -> int:
    from attacks.promotion.base import PromotionOptionError
    from benchmark.cli import _parse_options
    from benchmark.experiment import run_promotion

    options = {"targets": args.targets if args.targets is not None else 10}
    if args.target_items:
        options["target_items"] = [t.strip() for t in args.target_items.split(",") if t.strip()]
        bad = [t for t in options["target_items"] if t not in set(splits["train"].item_ids)]
        if bad:
            raise ValueError(f"--target-items: unknown item(s) {', '.join(bad[:5])} (not in the catalog)")
    if args.budget is not None:
        options["word_budget"] = args.budget
    options.update(_parse_options(args.attack_option, "--attack-option"))
    try:
        result = run_promotion(model, splits, args.attack, seed=args.seed, options=options,
                               query_budget=args.query_budget, progress=True)
    except PromotionOptionError as err:
        raise ValueError(f"--attack-option: {err}") from None
    if args.records:
        with open(args.records, "w", encoding="utf-8") as fh:
            for row in result.rows:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
    s = result.summary
    if args.json:
        print(json.dumps({"attack": result.attack, "config": result.config, "summary": s}, indent=2,
                         sort_keys=True, default=float))
        return 0
    fmt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"
    if args.show:
        for t in result.per_target:
            print(f"{t['target_item']}: {t['original_text']!r} -> {t['edited_text']!r} ({t['words_changed']} words, "
                  f"{t['queries']} queries); exposure@10 {t['exposure@10_before']:.3f} -> {t['exposure@10_after']:.3f}")
        print()
    before, after = s["clean"], s["robust"]
    print(f"{args.attack} on {model.name} ({args.task}): {len(s['targets'])} targets, {s['users']} attacker users "
          f"per target, {s['pairs']} (held-out user, target) pairs, word budget {s['word_budget']}, "
          f"query budget {s['query_budget'] or 'none'}")
    for key in after:
        print(f"  {key}: {fmt(before.get(key))} -> {fmt(after.get(key))}")
    ci = s["target_hr@10_shift_ci"]
    print(f"  target_hr@10 shift, 95% CI over users: [{ci[0]:.4f}, {ci[1]:.4f}]; targets promoted "
          f"{s['promoted_targets']} of {len(s['targets'])}")
    print(f"  mean words changed {s['mean_words_changed']:.2f}, mean queries {s['mean_queries']:.1f} "
          f"(max {s['max_queries']}), model pairs scored {s['model_pairs']}")
    print("  seconds: " + ", ".join(f"{k.replace('_seconds', '')} {v:.1f}" for k, v in s["stage_seconds"].items()))
    return 0
