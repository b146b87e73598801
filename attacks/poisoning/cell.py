"""One poisoning cell end to end: generate fake users, retrain the victim from scratch on
train + fakes, measure the target before and after, score the detectors.

`run_poisoning` is given the clean model (trained by the harness with the suite's options,
defense and seed) and a `retrain(splits) -> (model, info)` callable that repeats exactly
that training on other splits; so the victim is retrained the same way whatever its kind,
and a defense such as `detect-and-drop` runs on the poisoned data too.

Summary (the record's metric blocks): ``clean`` = before (the clean model), ``robust`` =
after (the poisoned model); both hold ``target_hr@10``, ``target_hr@50``,
``target_ndcg@10``, ``target_mean_rank`` (ranking) or ``target_like_prob`` (preference), and
the task's clean metric on the test split (``ndcg@10`` / ``auc``: the cost the attack
leaves visible). The rest (``metrics.attack``) holds the prediction shift, the bootstrap
intervals over users, the fake-user counts, the detectors' precision/recall/F1 and the
timings of the three stages. Per-(user, target) rows go to the per-example file.
"""

from __future__ import annotations

import json

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from attacks.poisoning import FAKE_PREFIX
from attacks.poisoning.base import FakeUsers, PoisoningAttack
from attacks.poisoning.detectors import DETECTORS, create_detector, detection_scores
from attacks.poisoning.protocol import (eligible_pairs, poisoned_splits, rank_block, target_full_ranks, target_probs,
                                        target_ranks, user_bootstrap)

DEFAULT_FLAG_FRACTION = 0.05


@dataclass
class PoisoningResult:
    attack: str
    config: dict
    summary: dict
    rows: list[dict]
    fake: FakeUsers
    info: dict = field(default_factory=dict)


# A cell has a row per (real user, target) pair: ~10k rows on ML-100K, most of a committed
# record's bytes. Rows keep what re-analysis needs and nothing derivable: the rank among
# the sampled candidates (exact, 1..100), and the full-catalogue rank only where it is in
# the top FULL_RANK_CAP (null beyond it: HR@K on the whole catalogue stays computable for
# every K <= FULL_RANK_CAP). The cell's summary (CIs, mean ranks) is computed from the exact
# ranks before they are cut.
FULL_RANK_CAP = 100
ROW_FIELDS = ("example_id", "user_id", "target_item", "rank_before", "rank_after",
              "full_rank_before", "full_rank_after", "like_prob_before", "like_prob_after")


def slim_row(row: dict) -> dict:
    """The form a poisoning row is kept in (also applied to rows written before it: hit@10
    flags dropped, full ranks beyond FULL_RANK_CAP set to null)."""
    out = {k: row[k] for k in ROW_FIELDS if k in row}
    for key in ("full_rank_before", "full_rank_after"):
        if out.get(key) is not None and out[key] > FULL_RANK_CAP:
            out[key] = None
    return out


def _clean_metric(model, test) -> dict:
    from benchmark.evaluation import evaluate

    m = evaluate(model, test)
    key = "ndcg@10" if test.task == "ranking" else "auc"
    return {key: m[key]}


def measure(model, test, pairs, full_catalog: bool = True) -> tuple[dict, np.ndarray]:
    """(target block, per-pair values: ranks or like-probabilities; with full_catalog the
    ranking values are (sampled rank, full-catalog rank) pairs)."""
    if test.task == "ranking":
        ranks = target_ranks(model, test, pairs)
        block = rank_block(ranks)
        if full_catalog:
            full = target_full_ranks(model, test, pairs)
            block.update(rank_block(full, full=True))
            return block, np.stack([ranks, full], axis=1)
        return block, ranks[:, None]
    probs = target_probs(model, test, pairs)
    return ({"target_like_prob": float(probs.mean())} if len(probs) else {}), probs


def detect(train_interactions, fake_ids: set[str], flag_fraction: float = DEFAULT_FLAG_FRACTION,
           detectors: Sequence[str] = tuple(DETECTORS)) -> dict:
    """Each detector's precision / recall / F1 at flagging the top `flag_fraction` of users."""
    out = {}
    for name in detectors:
        flagged = create_detector(name).flag(train_interactions, flag_fraction)
        out[name] = detection_scores(flagged, fake_ids)
    return out


_FAKE_CACHE: dict[tuple, FakeUsers] = {}
_BEFORE: dict[tuple, tuple] = {}
_DETECTION: dict[tuple, tuple] = {}


def generate_cached(attack: PoisoningAttack, train_interactions, targets, catalog) -> FakeUsers:
    """Fake users depend on the training data, the targets and the attack's config, not on
    the victim: one generation serves every model of a suite (kept for the last few keys)."""
    key = (json.dumps(attack.config(), sort_keys=True, default=str), tuple(targets), len(train_interactions),
           int(train_interactions["timestamp"].sum()), tuple(catalog[:3]), len(catalog))
    if key not in _FAKE_CACHE:
        if len(_FAKE_CACHE) > 32:
            _FAKE_CACHE.clear()
        _FAKE_CACHE[key] = attack.generate(train_interactions, targets, catalog=catalog)
    return _FAKE_CACHE[key]


def run_poisoning(clean_model, splits: dict, attack: PoisoningAttack, targets: Sequence[str],
                  retrain: Callable[[dict], tuple], max_train_examples: int | None = None,
                  flag_fraction: float = DEFAULT_FLAG_FRACTION, n_boot: int = 1000, progress: bool = True,
                  ) -> PoisoningResult:
    test = splits["test"]
    train = splits["train"]
    steps = tqdm(total=4, desc=f"poisoning {attack.name}", disable=not progress, leave=False)
    timings = {}

    t0 = time.perf_counter()
    pairs = eligible_pairs(test, targets)
    key = (id(clean_model), id(test), tuple(targets))
    if key not in _BEFORE:  # every attack on one clean model shares its "before"
        if len(_BEFORE) > 32:
            _BEFORE.clear()
        block, vals = measure(clean_model, test, pairs)
        block.update(_clean_metric(clean_model, test))
        _BEFORE[key] = (clean_model, block, vals)  # the model is kept so that its id stays unique
    _, before, before_vals = _BEFORE[key]
    before = dict(before)
    timings["evaluate_before_seconds"] = time.perf_counter() - t0
    steps.set_postfix_str("generate"); steps.update(1)

    t0 = time.perf_counter()
    catalog = train.item_ids
    fake = generate_cached(attack, train.train_interactions, targets, catalog)
    timings["generate_seconds"] = time.perf_counter() - t0
    steps.set_postfix_str("retrain"); steps.update(1)

    t0 = time.perf_counter()
    poisoned = poisoned_splits(splits, fake.rows, max_train_examples=max_train_examples)
    victim, info = retrain(poisoned)
    timings["retrain_seconds"] = time.perf_counter() - t0
    steps.set_postfix_str("evaluate"); steps.update(1)

    t0 = time.perf_counter()
    after, after_vals = measure(victim, test, pairs)
    after.update(_clean_metric(victim, test))
    timings["evaluate_seconds"] = time.perf_counter() - t0 + timings.pop("evaluate_before_seconds")
    fake_ids = set(fake.user_ids)
    t1 = time.perf_counter()
    dkey = (id(fake), flag_fraction)
    if dkey not in _DETECTION:  # detectors see only the data: one run per set of fake users
        if len(_DETECTION) > 16:
            _DETECTION.clear()
        _DETECTION[dkey] = (fake, detect(poisoned["train"].train_interactions, fake_ids, flag_fraction))
    detection = _DETECTION[dkey][1]
    timings["detect_seconds"] = time.perf_counter() - t1
    steps.update(1); steps.close()

    users = [test.examples[i].profile.user_id for i, _ in pairs]
    rest: dict = {"targets": list(targets), "fake_users": fake.n_users, "filler": fake.filler,
                  "fake_interactions": int(len(fake.rows)), "pairs": len(pairs),
                  "users": len(set(users)), "detection": detection, "flag_fraction": flag_fraction,
                  "dropped_fake_users": info.get("dropped_fake_users") if isinstance(info, dict) else None,
                  "stage_seconds": timings, "generator": fake.info}
    if test.task == "ranking":
        columns = ["sampled", "full"][: before_vals.shape[1]]
        for j, name in enumerate(columns):
            tag = "target_hr@10" if name == "sampled" else "target_full_hr@10"
            hb, ha = (before_vals[:, j] <= 10).astype(float), (after_vals[:, j] <= 10).astype(float)
            rest[f"{tag}_before_ci"] = list(user_bootstrap(hb, users, n_boot, attack.seed))
            rest[f"{tag}_after_ci"] = list(user_bootstrap(ha, users, n_boot, attack.seed))
            rest[f"{tag}_shift_ci"] = list(user_bootstrap(ha - hb, users, n_boot, attack.seed))
    else:
        shift = after_vals - before_vals
        rest["prediction_shift"] = float(shift.mean()) if len(shift) else None
        rest["prediction_shift_ci"] = list(user_bootstrap(shift, users, n_boot, attack.seed))
    rows = []
    for k, ((i, t), b, a) in enumerate(zip(pairs, before_vals, after_vals)):
        e = test.examples[i]
        row = {"example_id": f"{e.example_id}:{t}", "user_id": e.profile.user_id, "target_item": t}
        if test.task == "ranking":
            row.update(rank_before=int(b[0]), rank_after=int(a[0]))
            if len(b) > 1:
                row.update(full_rank_before=int(b[1]), full_rank_after=int(a[1]))
        else:
            row.update(like_prob_before=float(b), like_prob_after=float(a))
        rows.append(slim_row(row))
    summary = {"clean": before, "robust": after, **rest, "seconds": sum(timings.values())}
    config = {**attack.config(), "targets": list(targets), "flag_fraction": flag_fraction}
    return PoisoningResult(attack.name, config, summary, rows, fake, info if isinstance(info, dict) else {})


__all__ = ["FAKE_PREFIX", "FULL_RANK_CAP", "PoisoningResult", "detect", "measure", "run_poisoning", "slim_row"]
