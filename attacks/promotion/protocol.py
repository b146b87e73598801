"""Users and ranks for cross-user promotion.

- Users (`user_pools`): for each target, the real test users who never interacted with it
  (`attacks.poisoning.protocol.eligible_pairs`), in one seeded order shared by every
  target: the first `n_attackers` are the attacker's sample (whose rankings the search
  optimises), the next `n_eval` (default: all the rest) the held-out users the result is
  measured on. The two never overlap, so the measure is not the search's own objective.
- Contexts (`contexts`): a user's rendered profile text and the texts of the target's
  competitors, the user's sampled test negatives (the target plus the first
  `len(candidates) - 2` others, as the poisoning protocol's `target_ranks`).
- Ranks (`ranks_with_text`): the target's 1-based rank (ties pessimistic) in each context
  when the target's catalog text is `text`. The target never occurs in an eligible user's
  history, so its catalog row reaches the model only as the candidate text: replacing that
  text is replacing the row. The model is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from attacks.poisoning.protocol import eligible_pairs

TOP_K = 10


@dataclass(frozen=True)
class Context:
    example_index: int
    user_id: str
    profile_text: str
    other_texts: tuple[str, ...]


def user_order(n_examples: int, seed: int) -> np.ndarray:
    """One seeded order of the test examples (one per user), shared by every target."""
    return np.random.default_rng([seed, 3119]).permutation(n_examples)


def user_pools(test, target: str, n_attackers: int, n_eval: int | None, seed: int) -> tuple[list[int], list[int]]:
    """(attacker example indices, held-out example indices) for one target."""
    eligible = {i for i, _ in eligible_pairs(test, [target])}
    order = [int(i) for i in user_order(len(test.examples), seed) if int(i) in eligible]
    attackers = order[:n_attackers]
    held = order[n_attackers:] if n_eval is None else order[n_attackers:n_attackers + n_eval]
    if len(attackers) < n_attackers or not held:
        raise ValueError(f"option users: {n_attackers} attacker users asked for target {target!r}, but only "
                         f"{len(order)} test users never interacted with it (at least one must stay held out)")
    return attackers, held


def contexts(model, test, indices: Sequence[int], target: str) -> list[Context]:
    renderer = model.renderer
    out = []
    for i in indices:
        e = test.examples[i]
        negs = [c for c in e.candidates[1:] if c != target][: len(e.candidates) - 2]
        if len(negs) < TOP_K:
            raise ValueError(f"a top-{TOP_K} promotion needs more than {TOP_K} candidates per user, "
                             f"got {len(negs) + 1} (num_negatives)")
        out.append(Context(int(i), e.profile.user_id, renderer.render(e.profile, target).profile_text,
                           tuple(renderer.candidate_text(c) for c in negs)))
    return out


def score_rows(scorer, ctxs: Sequence[Context], texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(target scores, ranks), each (len(texts), len(ctxs)): the target with each text in
    each user's context. One scorer call (its cache serves the competitors after the first)."""
    pairs = []
    for text in texts:
        for c in ctxs:
            pairs.append((c.profile_text, text))
            pairs.extend((c.profile_text, o) for o in c.other_texts)
    values = scorer.score(pairs)
    own = np.empty((len(texts), len(ctxs)))
    ranks = np.empty((len(texts), len(ctxs)), dtype=np.int64)
    pos = 0
    for t in range(len(texts)):
        for u, c in enumerate(ctxs):
            row = values[pos:pos + 1 + len(c.other_texts)]
            pos += len(row)
            if np.isnan(row).any():
                raise ValueError("NaN score among candidates")
            own[t, u] = row[0]
            ranks[t, u] = 1 + int(np.sum(row[1:] >= row[0]))
    return own, ranks


def ranks_with_text(scorer, ctxs: Sequence[Context], text: str) -> np.ndarray:
    return score_rows(scorer, ctxs, [text])[1][0]


def exposure(ranks: np.ndarray, k: int = TOP_K) -> float:
    """Share of users with the target in their top k (RecTextAttack's exposure@k)."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks <= k)) if len(ranks) else float("nan")

