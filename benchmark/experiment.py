"""The steps every command and the runner share: prepare a task, train (under a defense),
evaluate, attack. One place, so `recrobust train/attack` and suite cells do the same thing."""

from __future__ import annotations

from benchmark.tasks import DEFAULT_HISTORY, DEFAULT_NEGATIVES, build_task
from benchmark.profiles import split_dataset


def prepare_task(
    dataset,
    task: str,
    seed: int = 0,
    history_len: int = DEFAULT_HISTORY,
    num_negatives: int = DEFAULT_NEGATIVES,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    train_negatives: int = 0,
) -> dict:
    """train/valid/test TaskData on one timeline. Subsets are seeded, so deterministic.

    Ranking train examples carry `train_negatives` sampled negatives (default none: the
    positive only). Models sample their own training negatives from
    `train.train_interactions`; 99 fixed negatives for ~100k training interactions would
    cost time and memory that no model uses.
    """
    timeline = split_dataset(dataset)
    common = dict(seed=seed, history_len=history_len, timeline=timeline)
    return {
        "train": build_task(dataset, task, "train", max_examples=max_train_examples,
                            num_negatives=train_negatives, **common),
        "valid": build_task(dataset, task, "valid", max_examples=max_eval_examples, num_negatives=num_negatives, **common),
        "test": build_task(dataset, task, "test", max_examples=max_eval_examples, num_negatives=num_negatives, **common),
    }


def build_model(model: str, options: dict | None = None):
    from recommenders.registry import create

    return create(model, **(options or {}))


def train_model(model, splits: dict, seed: int = 0, options: dict | None = None,
                defense: str | None = None, defense_options: dict | None = None):
    """Fit `model` (a name, 'module:Class', or an unfitted Recommender) on splits["train"]
    with early stopping on splits["valid"], under `defense`. Returns (model, training_info)."""
    from attacks.defenses.registry import create as create_defense

    if isinstance(model, str):
        model = build_model(model, options)
    guard = create_defense(defense or "none", **(defense_options or {}))
    reason = guard.unsupported_reason(model)
    if reason:
        raise ValueError(f"defense {guard.name!r} does not apply to model {model.name!r}: {reason}")
    info = guard.train(model, splits["train"], splits.get("valid"), seed=seed)
    info = dict(info or {})
    card = getattr(model, "card", None)  # what a pretrained-LLM model loaded (causal-lm), into every record
    if isinstance(card, dict):
        info.setdefault("backbone_card", card)
    return model, info


def run_attack(model, test_data, attack: str, seed: int = 0, budget: int | None = None,
               query_budget: int | None = None, scope: str = "history", goal: str | None = None,
               max_examples: int | None = None, options: dict | None = None, progress: bool = True):
    """Attack `model` on (a seeded subset of) the test examples. Returns an AttackResult."""
    import numpy as np

    from attacks.registry import create

    examples = list(test_data.examples)
    if max_examples is not None and len(examples) > max_examples:
        keep = np.sort(np.random.default_rng([seed, 104729]).choice(len(examples), max_examples, replace=False))
        examples = [examples[i] for i in keep]
    kwargs = dict(options or {})
    if budget is not None:
        kwargs["budget"] = budget
    attack_obj = create(attack, query_budget=query_budget, scope=scope, goal=goal, seed=seed, **kwargs)
    return attack_obj.run(model, examples, progress=progress)
