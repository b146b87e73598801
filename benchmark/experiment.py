"""The steps every command and the runner share: prepare a task, train (under a defense),
evaluate, attack. One place, so `recrobust train/attack` and suite cells do the same thing."""

from __future__ import annotations

from benchmark.tasks import DEFAULT_HISTORY, DEFAULT_NEGATIVES, build_task
from benchmark import seeding
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
    only: tuple[str, ...] | None = None,
) -> dict:
    """train/valid/test TaskData on one timeline. Subsets are seeded, so deterministic.

    Ranking train examples carry `train_negatives` sampled negatives (default none: the
    positive only). Models sample their own training negatives from
    `train.train_interactions`; 99 fixed negatives for ~100k training interactions would
    cost time and memory that no model uses. `only` builds just those splits (each split is
    a pure function of the arguments, so the same examples either way).
    """
    timeline = split_dataset(dataset)
    common = dict(seed=seed, history_len=history_len, timeline=timeline)
    wanted = only or ("train", "valid", "test")
    build = {
        "train": lambda: build_task(dataset, task, "train", max_examples=max_train_examples,
                                    num_negatives=train_negatives, **common),
        "valid": lambda: build_task(dataset, task, "valid", max_examples=max_eval_examples,
                                    num_negatives=num_negatives, **common),
        "test": lambda: build_task(dataset, task, "test", max_examples=max_eval_examples,
                                   num_negatives=num_negatives, **common),
    }
    return {name: make() for name, make in build.items() if name in wanted}


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


def attack_sample(examples, max_examples: int | None, seed: int) -> list:
    """The test examples an attack cell attacks: a seeded subset, in split order."""
    examples = list(examples)
    if max_examples is not None and len(examples) > max_examples:
        keep = seeding.seeded_subset(len(examples), max_examples, seed, 104729)
        examples = [examples[i] for i in keep]
    return examples


def run_attack(model, test_data, attack: str, seed: int = 0, budget: int | None = None,
               query_budget: int | None = None, scope: str = "history", goal: str | None = None,
               max_examples: int | None = None, options: dict | None = None, progress: bool = True):
    """Attack `model` on (a seeded subset of) the test examples. Returns an AttackResult."""
    from attacks.registry import create

    examples = attack_sample(test_data.examples, max_examples, seed)
    kwargs = dict(options or {})
    if budget is not None:
        kwargs["budget"] = budget
    attack_obj = create(attack, query_budget=query_budget, scope=scope, goal=goal, seed=seed, **kwargs)
    return attack_obj.run(model, examples, progress=progress)


POISONING_CELL_OPTIONS = ("targets", "target_items", "unpopular_share", "flag_fraction")


def run_poisoning(model, splits: dict, attack: str, seed: int = 0, options: dict | None = None,
                  model_name: str | None = None, model_options: dict | None = None, defense: str | None = None,
                  defense_options: dict | None = None, max_train_examples: int | None = None,
                  progress: bool = True):
    """One poisoning cell: fake users from `attack` (a poisoning attack's name) against
    `model` (fitted on the clean splits), the victim retrained from scratch on train + fakes
    with the same model options, defense and seed. Options: the attack's (fake_users,
    filler, ...) plus targets (a count, default 10, drawn by seed), target_items (a list
    instead), unpopular_share, flag_fraction (detectors). Returns a PoisoningResult."""
    from attacks.poisoning.cell import DEFAULT_FLAG_FRACTION, run_poisoning as run_cell
    from attacks.poisoning.protocol import select_targets
    from attacks.registry import create

    options = dict(options or {})
    cell = {k: options.pop(k) for k in POISONING_CELL_OPTIONS if k in options}
    attack_obj = create(attack, seed=seed, **options)
    if cell.get("target_items"):
        targets = [str(t) for t in cell["target_items"]]
    else:
        targets = select_targets(splits["train"].train_interactions, cell.get("targets", 10), seed=seed,
                                 unpopular_share=cell.get("unpopular_share", 0.5))
    name = model_name or f"{type(model).__module__}:{type(model).__qualname__}"
    opts = dict(model.options if model_options is None else model_options)

    def retrain(poisoned: dict):
        return train_model(name, poisoned, seed=seed, options=opts, defense=defense, defense_options=defense_options)

    return run_cell(model, splits, attack_obj, targets, retrain, max_train_examples=max_train_examples,
                    flag_fraction=cell.get("flag_fraction", DEFAULT_FLAG_FRACTION), progress=progress)


def is_promotion(attack: str) -> bool:
    """Whether `attack` names a cross-user promotion attack (an item-text rewrite, no retraining)."""
    from attacks.promotion.base import PromotionAttack
    from attacks.registry import resolve

    cls = resolve(attack)
    return isinstance(cls, type) and issubclass(cls, PromotionAttack)


def run_promotion(model, splits: dict, attack: str, seed: int = 0, options: dict | None = None,
                  query_budget: int | None = None, progress: bool = True):
    """One cross-user promotion cell: targets drawn as the poisoning cells draw them
    (options targets / target_items / unpopular_share), then `attack` (e.g. item-promotion,
    with its own options: users, eval_users, word_budget, ...) rewrites each target's text
    against the fitted `model`, which is not retrained. Returns a PromotionResult; raises
    attacks.base.AttackUnavailable where the model has no text input."""
    from attacks.poisoning.protocol import select_targets
    from attacks.registry import create

    options = dict(options or {})
    cell = {k: options.pop(k) for k in POISONING_CELL_OPTIONS if k in options}
    cell.pop("flag_fraction", None)  # no fake users, nothing to detect
    attack_obj = create(attack, seed=seed, query_budget=query_budget, **options)
    if cell.get("target_items"):
        targets = [str(t) for t in cell["target_items"]]
    else:
        targets = select_targets(splits["train"].train_interactions, cell.get("targets", 10), seed=seed,
                                 unpopular_share=cell.get("unpopular_share", 0.5))
    return attack_obj.run(model, splits["test"], targets, progress=progress)
