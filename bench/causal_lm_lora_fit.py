"""Can LoRA fit causal-lm's few-shot training set at all? A check behind the few-shot
figures (bench/causal_lm_figures.py), where SmolLM2-135M's test AUC stays at its zero-shot
level (~0.44) after LoRA on 16-256 examples: if the adapters could not even fit the
examples they train on, that would be a bug, not a finding.

    python bench/causal_lm_lora_fit.py --k 16 --epochs 10

Prints one JSON line: training-subset AUC zero-shot and after LoRA, the training loss per
epoch, and the mean |lora_B| (adapters start at B = 0). ML-100K preference, seed 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=16, help="training examples (a seeded subset)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from benchmark.data.load import load_dataset
    from benchmark.evaluation import evaluate
    from benchmark.experiment import prepare_task
    from recommenders.llm.causal_lm import CausalLM

    train = prepare_task(load_dataset("movielens-100k"), "preference", seed=0)["train"]
    pick = np.random.default_rng(0).choice(len(train.examples), args.k, replace=False)
    subset = dataclasses.replace(train, examples=[train.examples[i] for i in pick])

    def auc(model) -> float:
        return evaluate(model, subset)["auc"]

    zero_shot = auc(CausalLM(max_train_examples=0, progress=False).fit(subset, seed=0))
    start = time.perf_counter()
    tuned = CausalLM(lora=True, epochs=args.epochs, max_train_examples=args.k, batch_size=8, lr=args.lr,
                     progress=False).fit(subset, seed=0)
    seconds = time.perf_counter() - start
    lora_b = [p.detach().abs().mean().item() for n, p in tuned.model.named_parameters() if "lora_B" in n]
    print(json.dumps({"k": args.k, "epochs": args.epochs, "lr": args.lr, "train_seconds": round(seconds, 1),
                      "train_auc_zero_shot": zero_shot, "train_auc_after_lora": auc(tuned),
                      "train_loss_per_epoch": [round(h["train_loss"], 4) for h in tuned.history],
                      "lora_b_mean_abs": float(np.mean(lora_b)), "lora_b_tensors": len(lora_b)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
