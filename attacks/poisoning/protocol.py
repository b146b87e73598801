"""The poisoning protocol: targets, the poisoned training split, and the target metrics.

- Targets (`select_targets`): drawn by seed from the items seen in training, half from
  the unpopular quarter (popularity at most the 25th percentile) and half uniformly from
  the rest, as in the promotion-attack literature (ARLib samples targets of low popularity;
  RecAD random ones). A suite may name them instead.
- Poisoned split (`poisoned_splits`): the fake rows are appended to the timeline as
  "train" rows only, then the train TaskData is rebuilt from it (text models thus see the
  fake histories rendered into their training examples); valid and test are the clean
  ones, untouched, so fake users never reach them.
- Target metrics (`target_ranks`, `target_probs`): over real test users who never
  interacted with a target (anywhere in their timeline). Ranking: the target is ranked
  against that user's sampled test negatives (the same fixed-by-seed negatives as the
  ranking task; the target plus the first `len(negatives) - 1` others, so every row has
  the same number of candidates); HR@10, HR@50, NDCG@10. Preference: the target's
  like-probability for that user's test profile (prediction shift = after - before).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from attacks.poisoning import FAKE_PREFIX
from benchmark import metrics
from benchmark.tasks import TaskData, build_task


def select_targets(train: pd.DataFrame, n: int = 10, seed: int = 0, unpopular_share: float = 0.5) -> list[str]:
    """`n` target items by seed: round(n * unpopular_share) unpopular, the rest random."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"option targets: must be a whole number of items >= 1, got {n!r}")
    counts = train["item_id"].astype(str).value_counts().sort_index()
    if n > len(counts):
        raise ValueError(f"option targets: {n} targets asked, but only {len(counts)} items occur in training")
    rng = np.random.default_rng([seed, 1013])
    cut = np.percentile(counts.to_numpy(), 25)
    unpopular = np.array(counts.index[counts.to_numpy() <= cut])
    n_unpop = min(int(round(n * unpopular_share)), len(unpopular))
    chosen = list(rng.choice(unpopular, size=n_unpop, replace=False)) if n_unpop else []
    rest = np.array([i for i in counts.index if i not in set(chosen)])
    chosen += list(rng.choice(rest, size=n - n_unpop, replace=False))
    return [str(i) for i in chosen]


def poisoned_timeline(timeline: pd.DataFrame, fake_rows: pd.DataFrame) -> pd.DataFrame:
    """The clean timeline plus the fake rows, every one of them in the train split."""
    if timeline["user_id"].astype(str).str.startswith(FAKE_PREFIX).any():
        raise ValueError(f"the timeline already holds users named {FAKE_PREFIX}*")
    fake = fake_rows.sort_values(["user_id", "timestamp", "item_id"], kind="mergesort").reset_index(drop=True)
    fake = fake.assign(position=fake.groupby("user_id", sort=False).cumcount().astype("int64"), split="train")
    cols = list(timeline.columns)
    for c in cols:
        if c not in fake.columns:
            fake[c] = pd.NA
    return pd.concat([timeline, fake[cols]], ignore_index=True)


def poisoned_splits(splits: dict, fake_rows: pd.DataFrame, max_train_examples: int | None = None) -> dict:
    """train = the clean train examples + the fake users' examples, on the poisoned
    timeline; valid and test are the clean objects. The fake users' examples are built by
    the same `build_task` as everyone's; under a `max_train_examples` cap they are kept at
    the rate the clean examples were (seeded), so the fake share of training stays the
    fake share of the data."""
    train: TaskData = splits["train"]
    timeline = poisoned_timeline(train.timeline, fake_rows)
    fake_tl = timeline[timeline["user_id"].astype(str).str.startswith(FAKE_PREFIX)]
    fake = build_task(train.dataset, train.task, "train", seed=train.seed, history_len=train.history_len,
                      num_negatives=0, timeline=fake_tl).examples
    if max_train_examples is not None:
        clean_rows = train.timeline[(train.timeline["split"] == "train") & (train.timeline["position"] > 0)]
        if train.task == "preference":
            clean_rows = clean_rows[clean_rows["rating"].notna()]
        rate = min(1.0, len(train.examples) / max(len(clean_rows), 1))
        keep = int(round(rate * len(fake)))
        if keep < len(fake):
            idx = np.sort(np.random.default_rng([train.seed, 7927]).choice(len(fake), size=keep, replace=False))
            fake = [fake[i] for i in idx]
    poisoned = TaskData(train.dataset, train.task, "train", list(train.examples) + list(fake), timeline,
                        seed=train.seed, history_len=train.history_len)
    return {**splits, "train": poisoned}


def _touched(test: TaskData) -> dict[str, set[str]]:
    tl = test.timeline
    tl = tl[~tl["user_id"].astype(str).str.startswith(FAKE_PREFIX)]
    return {str(u): set(g.astype(str)) for u, g in tl.groupby("user_id", sort=False)["item_id"]}


def eligible_pairs(test: TaskData, targets: Sequence[str]) -> list[tuple[int, str]]:
    """(test example index, target) for every real test user who never touched the target."""
    touched = _touched(test)
    return [(i, t) for i, e in enumerate(test.examples) for t in targets
            if t not in touched.get(e.profile.user_id, set())]


def target_ranks(model, test: TaskData, pairs: list[tuple[int, str]], batch_size: int = 256) -> np.ndarray:
    """1-based rank of the target among the target + the user's test negatives (ranking
    task); ties pessimistic, as `benchmark.metrics.positive_ranks` counts them."""
    ranks = np.empty(len(pairs), dtype=np.int64)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        profiles, cands = [], []
        for i, t in chunk:
            e = test.examples[i]
            negs = [c for c in e.candidates[1:] if c != t][: len(e.candidates) - 2]
            profiles.append(e.profile)
            cands.append([t] + negs)
        scores = np.asarray(model.score(profiles, cands), dtype=float)
        if np.isnan(scores).any():
            raise ValueError("NaN score among candidates")
        ranks[start:start + len(chunk)] = 1 + (scores[:, 1:] >= scores[:, :1]).sum(axis=1)
    return ranks


_SEEN: dict[int, tuple] = {}


def _seen_columns(test: TaskData, col: dict) -> dict:
    """user -> catalog columns of the items they trained on (once per test split)."""
    if id(test) not in _SEEN:
        _SEEN.clear()
        tl = test.train_interactions
        cols = tl["item_id"].astype(str).map(col)
        ok = cols.notna()
        grouped = pd.Series(cols[ok].astype(int).to_numpy()).groupby(tl["user_id"].astype(str)[ok].to_numpy())
        _SEEN[id(test)] = (test, {u: g.to_numpy() for u, g in grouped})
    return _SEEN[id(test)][1]


def target_full_ranks(model, test: TaskData, pairs: list[tuple[int, str]], batch_size: int = 64) -> np.ndarray:
    """1-based rank of the target among every catalog item the user has not trained on
    (the full-ranking protocol of ARLib and RecAD; the target itself is never a train item
    of an eligible user). One scoring of the whole catalog per user; ties pessimistic."""
    catalog = test.item_ids
    col = {item: j for j, item in enumerate(catalog)}
    seen = _seen_columns(test, col)
    by_example: dict[int, list[int]] = {}
    for k, (i, _) in enumerate(pairs):
        by_example.setdefault(i, []).append(k)
    ranks = np.empty(len(pairs), dtype=np.int64)
    order = list(by_example)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        scores = np.asarray(model.score([test.examples[i].profile for i in chunk], [catalog] * len(chunk)),
                            dtype=float)
        for r, i in enumerate(chunk):
            scores[r, seen.get(test.examples[i].profile.user_id, np.array([], dtype=int))] = -np.inf
        rows = np.array([r for r, i in enumerate(chunk) for _ in by_example[i]])
        ks = np.array([k for i in chunk for k in by_example[i]])
        tcols = np.array([col[pairs[k][1]] for k in ks])
        target = scores[rows, tcols]
        ranks[ks] = (scores[rows] >= target[:, None]).sum(axis=1)  # the target counts itself: rank >= 1
    return ranks


def target_probs(model, test: TaskData, pairs: list[tuple[int, str]], batch_size: int = 256) -> np.ndarray:
    """The target's like-probability for each (user, target) pair (preference task)."""
    out = np.empty(len(pairs))
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        scores = model.score([test.examples[i].profile for i, _ in chunk], [[t] for _, t in chunk])
        out[start:start + len(chunk)] = np.asarray(scores, dtype=float)[:, 0]
    return out


def rank_block(ranks: np.ndarray, prefix: str = "target_", full: bool = False) -> dict:
    if not len(ranks):
        return {}
    if full:
        return {f"{prefix}full_hr@10": float(metrics.hit_rate_at_k(ranks, 10).mean()),
                f"{prefix}full_hr@50": float(metrics.hit_rate_at_k(ranks, 50).mean())}
    return {f"{prefix}hr@10": float(metrics.hit_rate_at_k(ranks, 10).mean()),
            f"{prefix}hr@50": float(metrics.hit_rate_at_k(ranks, 50).mean()),
            f"{prefix}ndcg@10": float(metrics.ndcg_at_k(ranks, 10).mean()),
            f"{prefix}mean_rank": float(np.mean(ranks))}


def user_bootstrap(values: np.ndarray, users: Sequence[str], n_boot: int = 1000, seed: int = 0,
                   alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval of the mean of `values`, resampling users (a user's targets move together)."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return (float("nan"), float("nan"))
    codes, uniq = pd.factorize(pd.Series(list(users)))
    sums = np.bincount(codes, weights=values, minlength=len(uniq))
    counts = np.bincount(codes, minlength=len(uniq)).astype(float)
    rng = np.random.default_rng([seed, 4099])
    draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    stats = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return (float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2)))
