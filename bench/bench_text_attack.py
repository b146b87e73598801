"""Speed benchmark: stock TextAttack vs our text-attack engine, same model, recipe and examples.

Model: the MiniLM cross-encoder (recommenders.llm.cross_encoder, backbone all-MiniLM-L6-v2
from the PyPI package, so it runs offline), briefly fine-tuned on ML-100K preference
examples (or loaded with --model-dir). Examples: a seeded subset of ML-100K preference test
examples whose (profile, candidate) pair fits the model's max_length (so that no
configuration truncates). Scope: history (the profile text's entries).

Configurations, run in one process on the same examples:
- stock:  textattack.Attacker with the stock HuggingFaceModelWrapper and the recipe from
          TextAttack's own builder (plus our scope constraint). The cross-encoder has one
          logit; the stock wrapper needs class logits, so it gets an exact two-logit copy
          (logits [0, z]: softmax gives [1 - sigmoid(z), sigmoid(z)]).
- mid:    the same stock Attacker with our wrapper (dynamic padding, the model's own
          length-sorted batches, query cache), one example at a time (--no-mid skips it).
- ours:   attacks.registry.create(recipe).run(...): the engine (examples interleaved, their
          queries merged into shared batches).
Each example is attacked with the same per-example seed everywhere (stock: one Attacker per
example with AttackArgs(random_seed=...)), so the adversarial outputs must be identical; the
benchmark checks it.

Printed: wall time and its ratio to stock, queries per example, and ours / pure forward time,
where the pure forward time is one length-sorted pass of the model over exactly the pairs our
engine sent to it (the floor for any attack that issues those queries).

    python bench/bench_text_attack.py [--examples 12] [--recipes deepwordbug,pwws] [--history 5]
        [--train 256] [--model-dir DIR | --save-model DIR] [--query-budget Q] [--window 16] [--no-mid]
        [--threads N] [--repeats 2] [--epochs 1] [--lr 1e-4]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time

import numpy as np
import torch
from tabulate import tabulate

from attacks.registry import create
from attacks.text import offline
from attacks.text.attack import example_seed
from benchmark.data.load import load_dataset
from benchmark.tasks import build_splits

textattack = offline.import_textattack()
from textattack.attack_results import SkippedAttackResult, SuccessfulAttackResult  # noqa: E402
from textattack.models.wrappers import HuggingFaceModelWrapper  # noqa: E402

from attacks.text.components import ScopeModification, header_word_count  # noqa: E402
from attacks.text.wrapper import RecommenderWrapper  # noqa: E402

STOCK_RECIPES = {
    "deepwordbug": textattack.attack_recipes.DeepWordBugGao2018,
    "pwws": textattack.attack_recipes.PWWSRen2019,
    "pruthi": textattack.attack_recipes.Pruthi2019,
}


def two_logit_copy(model):
    """An HF classifier with logits [0, z] where the cross-encoder has the single logit z."""
    clf = copy.deepcopy(model.model)
    old = clf.classifier
    new = torch.nn.Linear(old.in_features, 2)
    with torch.no_grad():
        new.weight.zero_()
        new.bias.zero_()
        new.weight[1] = old.weight[0]
        new.bias[1] = old.bias[0]
    clf.classifier = new
    clf.config.num_labels = 2
    clf.num_labels = 2
    return clf.eval()


def train_model(train, args):
    from recommenders.llm.cross_encoder import CrossEncoder

    model = CrossEncoder(backbone="minilm", epochs=args.epochs, lr=args.lr, batch_size=16, max_length=args.max_length,
                         max_train_examples=args.train, progress=True)
    started = time.perf_counter()
    model.fit(train, seed=args.seed)
    print(f"trained the MiniLM cross-encoder on {args.train} examples in {time.perf_counter() - started:.0f} s")
    return model


def pick_examples(model, examples, n, seed, max_length):
    order = np.random.default_rng([seed, 2024]).permutation(len(examples))
    chosen = []
    for i in order:
        ex = examples[i]
        r = model.renderer.render(ex.profile, ex.candidates[0])
        if len(model.tokenizer(r.profile_text, r.candidate_text)["input_ids"]) <= max_length:
            chosen.append(ex)
        if len(chosen) == n:
            break
    return chosen


def run_stock(recipe, wrapper, model, examples, seed, query_budget):
    """One stock Attacker per example (per-example seed); returns (results, queries, seconds)."""
    if recipe == "pwws":
        offline.ensure_wordnet()
    with offline.local_first_nltk_downloads(), offline.quiet_textattack():
        built = STOCK_RECIPES[recipe].build(wrapper)
    results, queries = [], []
    started = time.perf_counter()
    for ex in examples:
        r = model.renderer.render(ex.profile, ex.candidates[0])
        history = [s for s in r.spans if s.kind == "history"]
        scope = ScopeModification("history", header_word_count(r.profile_text, history[0].start if history else None))
        attack = textattack.Attack(built.goal_function, built.pre_transformation_constraints + built.constraints + [scope],
                                   built.transformation, built.search_method)
        dataset = textattack.datasets.Dataset([((r.profile_text, r.candidate_text), int(ex.label))],
                                              input_columns=["profile", "candidate"])
        attack_args = textattack.AttackArgs(num_examples=1, random_seed=example_seed(seed, ex.example_id),
                                            query_budget=query_budget, silent=True, disable_stdout=True)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            (result,) = textattack.Attacker(attack, dataset, attack_args).attack_dataset()
        results.append(result)
        queries.append(attack.goal_function.num_queries)
    return results, queries, time.perf_counter() - started


def same_outputs(records, stock_results) -> tuple[int, list[str]]:
    same, diffs = 0, []
    for rec, res in zip(records, stock_results):
        if isinstance(res, SkippedAttackResult):
            ok = rec.status == "skipped"
        else:
            ok = (rec.status != "skipped" and rec.success == isinstance(res, SuccessfulAttackResult)
                  and rec.perturbed["profile"] == res.perturbed_result.attacked_text.tokenizer_input[0])
        same += ok
        if not ok:
            diffs.append(rec.example_id)
    return same, diffs


def pure_forward_seconds(model, pairs, repeats=1) -> float:
    best = float("inf")
    for _ in range(repeats):
        model.invalidate_cache()
        started = time.perf_counter()
        model.score_text([p for p, _ in pairs], [c for _, c in pairs])
        best = min(best, time.perf_counter() - started)
    model.invalidate_cache()
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--examples", type=int, default=12)
    parser.add_argument("--recipes", default="deepwordbug,pwws")
    parser.add_argument("--history", type=int, default=5)
    parser.add_argument("--train", type=int, default=256, help="training examples for the quick fine-tune")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="runs of the fast configurations (best is kept)")
    parser.add_argument("--model-dir", help="a saved cross-encoder (preference) instead of the quick fine-tune")
    parser.add_argument("--query-budget", type=int)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mid", action="store_true", help="skip stock Attacker + our wrapper")
    parser.add_argument("--save-model", help="save the quick fine-tune here (reuse it with --model-dir)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset = load_dataset(args.dataset)
    splits = build_splits(dataset, "preference", seed=args.seed, history_len=args.history)
    if args.model_dir:
        from recommenders.base import Recommender

        model = Recommender.load(args.model_dir)
    else:
        model = train_model(splits["train"], args)
        if args.save_model:
            model.save(args.save_model)
    max_length = int(model.opts["max_length"])
    examples = pick_examples(model, splits["test"].examples, args.examples, args.seed, max_length)
    stock_model = two_logit_copy(model)
    stock_wrapper = HuggingFaceModelWrapper(stock_model, model.tokenizer)
    r0 = [model.renderer.render(e.profile, e.candidates[0]) for e in examples[:8]]
    p_ours = model.score_text([r.profile_text for r in r0], [r.candidate_text for r in r0])
    p_stock = torch.softmax(torch.as_tensor(stock_wrapper([(r.profile_text, r.candidate_text) for r in r0])), 1)[:, 1]
    print(f"{args.dataset}: {len(examples)} preference test examples, history {args.history}; "
          f"torch threads {torch.get_num_threads()}; stock pads to {model.tokenizer.model_max_length} tokens; "
          f"|p_stock - p_ours| <= {float(np.max(np.abs(p_stock.numpy() - p_ours))):.1e}")

    rows = []
    for recipe in args.recipes.split(","):
        # Timings alternate (mid, ours, mid, ours...) and keep the best, so that the load of a
        # shared machine affects both alike; stock (slow) runs once.
        stock_results, stock_q, stock_wall = run_stock(recipe, stock_wrapper, model, examples, args.seed, args.query_budget)
        ours_wall = mid_wall = pure = float("inf")
        for _ in range(max(args.repeats, 1)):
            if not args.no_mid:
                model.invalidate_cache()
                mid_results, mid_q, wall = run_stock(recipe, RecommenderWrapper(model), model, examples, args.seed,
                                                     args.query_budget)
                mid_wall = min(mid_wall, wall)
            attack = create(recipe, scope="history", seed=args.seed, window=args.window,
                            query_budget=args.query_budget, record_queries=True)
            model.invalidate_cache()
            started = time.perf_counter()
            ours = attack.run(model, examples, progress=False)
            ours_wall = min(ours_wall, time.perf_counter() - started)
            forwarded = attack.last_forwarded
            pure = min(pure, pure_forward_seconds(model, forwarded))
        ours_q = np.mean([r.queries for r in ours.records])
        same, diffs = same_outputs(ours.records, stock_results)
        rows.append([recipe, "stock Attacker + HuggingFaceModelWrapper", f"{stock_wall:.1f}", "1.00",
                     f"{np.mean(stock_q):.1f}", "", f"{same}/{len(examples)} same"])
        if not args.no_mid:
            mid_same, _ = same_outputs(ours.records, mid_results)
            rows.append([recipe, "stock Attacker + our wrapper", f"{mid_wall:.1f}", f"{stock_wall / mid_wall:.2f}",
                         f"{np.mean(mid_q):.1f}", "", f"{mid_same}/{len(examples)} same"])
        stats = attack.last_run_stats
        rows.append([recipe, f"ours (engine, window {args.window})", f"{ours_wall:.1f}", f"{stock_wall / ours_wall:.2f}",
                     f"{ours_q:.1f}", f"{ours_wall / pure:.2f} ({pure:.1f} s for {len(forwarded)} pairs)",
                     f"{ours.summary['n_succeeded']} succeeded, {ours.summary['n_failed']} failed, "
                     f"{ours.summary['n_skipped']} skipped"])
        print(f"{recipe}: our engine forwarded {stats['forward_pairs']} pairs in {stats['forward_calls']} calls "
              f"({stats['forward_seconds']:.1f} s), {stats['cache_hits']} cache hits"
              + (f"; differing from stock: {', '.join(diffs)}" if diffs else ""), flush=True)
    print(tabulate(rows, headers=["recipe", "configuration", "wall s", "speed-up vs stock", "queries/example",
                                  "wall / pure forward", "outputs"]))


if __name__ == "__main__":
    main()
