"""Speed and memory of causal-lm (SmolLM2-135M-Instruct, zero-shot weights), measured side
by side in one run on ML-100K:

1. ranking 100 candidates per user from the profile prefix's KV cache vs as 100 whole
   prompts: seconds, the ratio, the largest score difference and whether the ranks agree;
2. preference scoring throughput (sequences/s) of causal-lm and of the MiniLM cross-encoder
   on the same rendered (profile, candidate) texts;
3. peak RSS of a LoRA fine-tune (a fresh subprocess: ru_maxrss of that process alone).

    python bench/bench_causal_lm.py --users 50 --pref-texts 64 --lora-examples 32

Threads: --threads (default 2) for every part. Prints one JSON object per part. On a
shared machine wall-clock ratios are noise; the ranking part also reports CPU seconds of
this process (fair with --threads 1, where no OpenMP thread spins waiting).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LORA_CHILD = """
import resource, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from benchmark.data.load import load_dataset
from benchmark.experiment import prepare_task
from recommenders.llm.causal_lm import CausalLM
splits = prepare_task(load_dataset("movielens-100k"), "preference", seed=0)
t = time.perf_counter()
m = CausalLM(lora=True, max_train_examples={n}, epochs=1, batch_size={batch}, progress=False).fit(splits["train"], seed=0)
print({{"seconds": round(time.perf_counter() - t, 1), "examples": {n}, "batch_size": {batch},
       "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
       "train_loss": m.history[-1]["train_loss"]}})
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--pref-texts", type=int, default=64)
    ap.add_argument("--lora-examples", type=int, default=32)
    ap.add_argument("--lora-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[], choices=["ranking", "preference", "lora"])
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from benchmark.data.load import load_dataset
    from benchmark.experiment import prepare_task
    from recommenders.llm.causal_lm import CausalLM
    from recommenders.llm.cross_encoder import CrossEncoder

    dataset = load_dataset("movielens-100k")
    if "ranking" not in args.skip:
        rank = prepare_task(dataset, "ranking", seed=0, max_eval_examples=args.users)
        model = CausalLM(max_train_examples=0, progress=False).fit(rank["train"], seed=0)
        cached_s = full_s = cached_cpu = full_cpu = 0.0
        max_diff, same_ranks, tokens = 0.0, 0, []
        for e in rank["test"].examples:
            p, c = model.render_pairs([e.profile], [e.candidates])
            t, u = time.perf_counter(), time.process_time()
            cached = model.score_from_prefix(p[0], c)
            cached_s, cached_cpu = cached_s + time.perf_counter() - t, cached_cpu + time.process_time() - u
            t, u = time.perf_counter(), time.process_time()
            full = model.score_full(p, c)
            full_s, full_cpu = full_s + time.perf_counter() - t, full_cpu + time.process_time() - u
            max_diff = max(max_diff, float(np.max(np.abs(cached - full))))
            same_ranks += int((np.argsort(-cached, kind="stable") == np.argsort(-full, kind="stable")).all())
            tokens.append((len(model.prefix_ids(p[0])), float(np.mean([len(model.suffix_ids(x)) for x in c]))))
        n = len(rank["test"].examples)
        print(json.dumps({"part": "ranking", "users": n, "candidates": len(rank["test"].examples[0].candidates),
                          "prefix_tokens_mean": round(float(np.mean([t[0] for t in tokens])), 1),
                          "suffix_tokens_mean": round(float(np.mean([t[1] for t in tokens])), 1),
                          "cached_seconds": round(cached_s, 1), "full_seconds": round(full_s, 1),
                          "speedup": round(full_s / cached_s, 2), "max_abs_score_diff": max_diff,
                          # CPU seconds of this process: on a shared machine the fairer ratio (use --threads 1)
                          "cached_cpu_seconds": round(cached_cpu, 1), "full_cpu_seconds": round(full_cpu, 1),
                          "cpu_speedup": round(full_cpu / cached_cpu, 2),
                          "users_with_identical_ranks": same_ranks}), flush=True)
    if "preference" not in args.skip:
        pref = prepare_task(dataset, "preference", seed=0, max_eval_examples=args.pref_texts)
        causal = CausalLM(max_train_examples=0, progress=False).fit(pref["train"], seed=0)
        # Weights do not change the cost of a forward pass: a 16-example fit gives a scoring cross-encoder.
        cross = CrossEncoder(max_train_examples=16, progress=False).fit(pref["train"], seed=0)
        ex = pref["test"].examples
        p = [causal.renderer.render(e.profile, e.candidates[0]).profile_text for e in ex]
        c = [causal.renderer.render(e.profile, e.candidates[0]).candidate_text for e in ex]
        row = {"part": "preference", "texts": len(p),
               "causal_lm_prompt_tokens_mean": round(float(np.mean([len(causal.prompt_ids(a, b)) for a, b in zip(p, c)])), 1)}
        for name, m in (("causal_lm", causal), ("cross_encoder", cross)):
            m.invalidate_cache()
            t = time.perf_counter()
            m.score_text(p, c)
            row[f"{name}_seq_per_s"] = round(len(p) / (time.perf_counter() - t), 2)
        row["ratio_cross_encoder_over_causal_lm"] = round(row["cross_encoder_seq_per_s"] / row["causal_lm_seq_per_s"], 2)
        print(json.dumps(row), flush=True)
    if "lora" not in args.skip:
        code = LORA_CHILD.format(root=str(ROOT), threads=args.threads, n=args.lora_examples, batch=args.lora_batch)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        last = (done.stdout.strip().splitlines() or ["{}"])[-1]
        print(json.dumps({"part": "lora_fine_tune", "returncode": done.returncode, "result": last,
                          "children_peak_rss_gib": round(child, 2),
                          "stderr_tail": done.stderr.strip().splitlines()[-1:] if done.returncode else []}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
