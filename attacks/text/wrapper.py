"""Our text recommenders as TextAttack model wrappers.

The attacked input is a two-column AttackedText: OrderedDict(profile=..., candidate=...),
the rendered (profile text, candidate text) pair the model scores.

- `PairScorer` scores pairs through the recommender's own `score_text` (its truncation,
  dynamic padding and length-sorted batches), with a query cache shared by every example
  of a run. Inside the engine (attacks.text.engine) a cache miss is handed to the
  scheduler, which merges the misses of all examples in flight into one call.
- `RecommenderWrapper` is the textattack ModelWrapper: preference models return class
  probabilities [[1 - p, p]] (UntargetedClassification's input); ranking models return
  the raw score [[s]] (our ranking goals score the other candidates themselves through
  the same PairScorer). `get_grad` and `tokenize` serve TextAttack's gradient-based
  components (word importance by gradient, as in a2t), from the model's
  `token_gradients`, never padded beyond the pair itself.
"""

from __future__ import annotations

import time
from typing import Sequence

import lru
import numpy as np
import torch

from attacks.text import engine
from attacks.text.offline import import_textattack

textattack = import_textattack()
from textattack.models.wrappers import ModelWrapper  # noqa: E402

GRAD_OBJECTIVES = ("classification", "demote", "promote")


class PairScorer:
    """Scores (profile_text, candidate_text) pairs with a cache and forward-time accounting."""

    def __init__(self, model, cache_size: int = 500_000, record_pairs: bool = False):
        self.model = model
        self.cache = lru.LRU(cache_size)
        self.forward_calls = 0
        self.forward_pairs = 0
        self.forward_seconds = 0.0
        self.cache_hits = 0
        self.forwarded: list[tuple[str, str]] | None = [] if record_pairs else None

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One score per pair (the model's score_text semantics)."""
        missing = list(dict.fromkeys(p for p in pairs if p not in self.cache))
        self.cache_hits += len(pairs) - len(missing)
        if missing:
            scheduler = engine.current_scheduler()
            values = scheduler.request(self, missing) if scheduler is not None else self.forward(missing)
            for pair, value in zip(missing, values):
                self.cache[pair] = float(value)
        return np.array([self.cache[p] for p in pairs], dtype=np.float64)

    def forward(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Uncached scores, timed (the engine calls this with the merged misses)."""
        started = time.perf_counter()
        with torch.inference_mode():
            values = np.asarray(self.model.score_text([p for p, _ in pairs], [c for _, c in pairs]), dtype=np.float64)
        self.forward_seconds += time.perf_counter() - started
        self.forward_calls += 1
        self.forward_pairs += len(pairs)
        if self.forwarded is not None:
            self.forwarded.extend(pairs)
        return values.reshape(-1)

    def stats(self) -> dict:
        return {
            "forward_calls": self.forward_calls,
            "forward_pairs": self.forward_pairs,
            "forward_seconds": self.forward_seconds,
            "cache_hits": self.cache_hits,
        }


def _pair(text_input) -> tuple[str, str]:
    if isinstance(text_input, (tuple, list)) and len(text_input) == 2:
        return str(text_input[0]), str(text_input[1])
    raise ValueError(f"expected a (profile_text, candidate_text) pair, got {type(text_input).__name__}")


class RecommenderWrapper(ModelWrapper):
    """A text recommender (score_text, token_gradients, tokenizer, model) for TextAttack."""

    def __init__(self, recommender, scorer: PairScorer | None = None, grad_objective: str = "classification"):
        if grad_objective not in GRAD_OBJECTIVES:
            raise ValueError(f"grad_objective must be one of {GRAD_OBJECTIVES}, got {grad_objective!r}")
        self.recommender = recommender
        self.scorer = scorer or PairScorer(recommender)
        self.model = recommender.model  # the torch module (TextAttack reads .model)
        self.tokenizer = recommender.tokenizer
        self.task = recommender.task
        self.grad_objective = grad_objective
        self._grad_cache = lru.LRU(64)
        self.grad_calls = 0
        self.grad_seconds = 0.0

    # -- queries ---------------------------------------------------------------------
    def __call__(self, text_input_list, **kwargs):
        scores = self.scorer.score([_pair(t) for t in text_input_list])
        if self.task == "preference":
            return np.stack([1.0 - scores, scores], axis=1)
        return scores.reshape(-1, 1)

    # -- gradients ---------------------------------------------------------------------
    def token_gradients(self, text_input):
        """The model's TokenGradients for one pair, with this wrapper's objective:
        classification: ascend the cross-entropy against the model's own decision (as
        TextAttack's HuggingFaceModelWrapper does); demote: descend the raw score;
        promote: ascend it. Returns (TokenGradients, sign) with the gradient of the
        objective to ascend = sign * tg.grads."""
        pair = _pair(text_input)
        key = (pair, self.grad_objective)
        hit = self._grad_cache.get(key)
        if hit is not None:
            return hit
        if not hasattr(self.recommender, "token_gradients"):
            raise TypeError(f"{type(self.recommender).__name__} has no token_gradients(): gradient attacks need it")
        started = time.perf_counter()
        if self.grad_objective == "classification":
            p = float(self.scorer.score([pair])[0])
            tg = self.recommender.token_gradients([pair[0]], [pair[1]], targets=[float(p > 0.5)])
            sign = 1.0
        else:
            tg = self.recommender.token_gradients([pair[0]], [pair[1]], targets=None)
            sign = -1.0 if self.grad_objective == "demote" else 1.0
        self.grad_seconds += time.perf_counter() - started
        self.grad_calls += 1
        self._grad_cache[key] = (tg, sign)
        return tg, sign

    def _tokens_in_row(self, tg):
        keep = tg.attention_mask[0].bool()
        return tg.input_ids[0][keep], keep

    def get_grad(self, text_input):
        """{"ids": token ids, "gradient": (tokens, hidden) array}: d objective / d embedding."""
        tg, sign = self.token_gradients(text_input)
        ids, keep = self._tokens_in_row(tg)
        grad = (sign * tg.grads[0][keep]).numpy()
        return {"ids": ids.tolist(), "gradient": grad}

    def _tokenize(self, inputs):
        """Tokens in the order the gradient rows come (for TextAttack's word alignment)."""
        out = []
        for text_input in inputs:
            tg, _ = self.token_gradients(text_input)
            ids, _ = self._tokens_in_row(tg)
            out.append(self.tokenizer.convert_ids_to_tokens(ids.tolist()))
        return out
