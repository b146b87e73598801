"""adv-augment: attack-augmented training in rounds — the seed article's "dynamic model
update" (sections 3.2.3-3.2.4, 4.2), with the adversarial samples actually fed back.

    fit (plain training)                                     -> round 0: clean + robust metrics
    for round r = 1..R:
        attack a seeded sample of the training examples (`attack`, `attack_examples`)
        keep the successful adversarial examples with their TRUE labels (accumulated)
        fine-tune on them, mixed with clean training examples (`clean_mix`)
        evaluate clean metrics and robust metrics (the same attack) on the validation split
                                                             -> round r
The per-round metrics are the returned info's "rounds" (a robustness-vs-rounds curve).

What an adversarial example is, per threat model:
- text attacks (deepwordbug, a2t, ...; text models): the perturbed (profile text,
  candidate text) pair with the example's label (ranking: the perturbed profile text with
  the positive first and sampled negatives, label 0);
- profile attacks (profile-swap, ...; every model): the example with its perturbed
  history (benchmark Example), same candidates and label. Text models render it to text.
Embedding attacks give no input to train on: that is `embedding-at`.

What "fine-tune" means, per model kind (attacks.defenses.fitting):
- text models: continue from the current weights (``fine_tune_text``) for `epochs` on the
  adversarial units plus `clean_mix` x as many clean training units (or "all" of them);
- torch classic models (bpr-mf, sasrec): continue from the current weights with the
  model's own loss for `epochs` on the same mix; adversarial examples enter both as
  examples and as pseudo-user sequences (attacks.defenses.training_data), so the
  ranking task's interaction-trained models learn from them too;
- models with nothing to continue from (itemknn): fit again on the whole training data
  plus every adversarial example so far (similarities and the logistic layer see them).
Popularity ignores the profile: no attack on it can succeed and no augmentation can
change it, so the defense does not apply.

Options: AdvAugmentOptions (rounds, attack, attack_options, attack_examples, eval_examples,
attack_eval_examples, epochs, lr, clean_mix, negatives, fit), each with its default and doc.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from attacks import registry as attack_registry
from attacks.defenses.base import Defense
from benchmark.options import Options, option
from attacks.defenses import fitting, training_data as td
from benchmark import seeding



@dataclass
class AdvAugmentOptions(Options):
    rounds: int = option(2, "attack -> augment -> fine-tune rounds after the plain fit")
    attack: str | None = option(None, "the attack (default: deepwordbug for text models, profile-swap for the others)")
    attack_options: dict | None = option(None, "options of the attack (attacks.registry.create: budget, query_budget, ...)")
    attack_examples: int | None = option(None, "training examples attacked per round (default 100 text, 500 others)")
    eval_examples: int | None = option(500, "validation examples for the clean metrics per round")
    attack_eval_examples: int | None = option(None, "validation examples attacked for the robust metrics "
                                                    "(default 50 text, 200 others)")
    epochs: int | None = option(None, "fine-tune epochs per round (default 1 text, 3 torch)")
    lr: float | None = option(None, "text models' fine-tune learning rate (default: the model's)")
    clean_mix: float | str = option(1.0, "clean examples per adversarial one in the fine-tune mix; 'all': the "
                                         "whole training set")
    negatives: int = option(99, "ranking: sampled negatives given to attacked training examples")
    fit: bool = option(True, "fit first; false: the model is already fitted (a deployed model being updated)")


def _attack_threat_model(name: str) -> str:
    try:
        return attack_registry.threat_model(name)
    except ValueError as err:
        raise ValueError(f"adv-augment: {err}") from None


class AdvAugment(Defense):
    name = "adv-augment"
    description = "attack-augmented training in rounds (attack train sample -> add adversarial examples -> fine-tune -> re-evaluate)"

    OPTIONS = AdvAugmentOptions

    def __init__(self, **options):
        super().__init__(**options)
        s = self.settings
        if int(s.rounds) < 0:
            raise ValueError(f"adv-augment: rounds must be >= 0, got {int(s.rounds)}")
        if s.clean_mix != "all" and (not isinstance(s.clean_mix, (int, float)) or s.clean_mix < 0):
            raise ValueError(f"adv-augment: clean_mix must be a number >= 0 or 'all', got {s.clean_mix!r}")
        if s.attack_options is not None and not isinstance(s.attack_options, dict):
            raise ValueError("adv-augment: attack_options must be a mapping (e.g. attack_options='{\"query_budget\": 100}')")

    # -- applicability --------------------------------------------------------------
    def _attack_name(self, model) -> str:
        if self.settings.attack:
            return str(self.settings.attack)
        return "deepwordbug" if fitting.model_kind(model) == "text" else "profile-swap"

    def unsupported_reason(self, model) -> str | None:  # instance method: the reason depends on the attack option
        if not getattr(getattr(model, "capabilities", None), "profile_driven", True):
            return (f"{model.name} ignores the profile: no attack on it can succeed, so there are no adversarial "
                    "examples to add")
        attack = self._attack_name(model)
        threat = _attack_threat_model(attack)
        if threat == "embedding":
            return f"{attack} perturbs embeddings, not inputs: there is no adversarial example to train on (use embedding-at)"
        if threat == "text" and fitting.model_kind(model) != "text":
            return f"{attack} is a text attack and {getattr(model, 'name', model)!r} is not a text model with fine_tune_text"
        return None

    # -- options ----------------------------------------------------------------------------
    def _opt(self, key: str, text_default, other_default, kind: str):
        value = self.settings[key]
        if value is not None:
            return value
        return text_default if kind == "text" else other_default

    # -- training ---------------------------------------------------------------------------
    def train(self, model, train, valid=None, seed: int = 0) -> dict:
        reason = self.unsupported_reason(model)
        if reason:
            raise ValueError(f"adv-augment does not apply to {getattr(model, 'name', model)!r}: {reason}")
        started = time.perf_counter()
        kind = fitting.model_kind(model)
        attack_name = self._attack_name(model)
        attack_options = dict(self.settings.attack_options or {})
        rounds = int(self.settings.rounds)
        n_attack = int(self._opt("attack_examples", 100, 500, kind))
        n_eval = self.settings.eval_examples
        n_attack_eval = int(self._opt("attack_eval_examples", 50, 200, kind))
        epochs = int(self._opt("epochs", 1, 3, kind))
        clean_mix = self.settings.clean_mix
        negatives = int(self.settings.negatives)

        if self.settings.fit:
            model.fit(train, valid, seed=seed)
        elif getattr(model, "task", None) != train.task:
            raise ValueError(f"adv-augment: fit=false needs a model fitted for the {train.task!r} task")
        base_examples = td.model_training_examples(model, train, seed)
        if not base_examples:
            raise ValueError("adv-augment: no training examples to attack")

        def make_attack():
            return attack_registry.create(attack_name, seed=seed, **attack_options)

        eval_clean = eval_attack = None
        if valid is not None and valid.examples:
            keep = td.seeded_sample(len(valid.examples), None if n_eval is None else int(n_eval), seed, 7001)
            eval_clean = replace(valid, examples=[valid.examples[i] for i in keep])
            keep = td.seeded_sample(len(valid.examples), n_attack_eval, seed, 7002)
            eval_attack = [valid.examples[i] for i in keep]

        timings = {"fit": round(time.perf_counter() - started, 3)}
        curve = [self._evaluate(model, make_attack(), eval_clean, eval_attack,
                                {"round": 0, "added_examples": 0, "adversarial_total": 0})]
        adv_examples: list = []  # benchmark Examples (profile attacks)
        adv_units: list[tuple] = []  # (profile text, candidate text(s), label) (text attacks)
        for r in range(1, rounds + 1):
            t0 = time.perf_counter()
            pick = td.seeded_sample(len(base_examples), n_attack, seed, 7003, r)
            targets = [base_examples[i] for i in pick]
            if train.task == "ranking":
                targets = td.with_negatives(targets, train, negatives, seed)
            result = make_attack().run(model, targets, progress=False)
            new_examples, new_units = self._adversarial(model, targets, result.records, r, seed)
            adv_examples += new_examples
            adv_units += new_units
            added = len(new_examples) + len(new_units)
            entry = {"round": r, "attacked": len(targets), "added_examples": added,
                     "adversarial_total": len(adv_examples) + len(adv_units),
                     "train_attack_success_rate": result.summary.get("attack_success_rate"),
                     "train_attack_errors": result.summary.get("n_error", 0)}
            t1 = time.perf_counter()
            entry["finetune"] = self._fine_tune(model, kind, train, valid, base_examples, adv_examples, adv_units,
                                                clean_mix, epochs, seed, r)
            entry["finetune"].pop("seconds", None)  # timings live in round_seconds, apart from the metrics
            t2 = time.perf_counter()
            curve.append(self._evaluate(model, make_attack(), eval_clean, eval_attack, entry))
            timings[f"round{r}"] = {"attack": round(t1 - t0, 3), "finetune": round(t2 - t1, 3),
                                    "evaluate": round(time.perf_counter() - t2, 3)}
        # Timings go under keys holding "seconds": the runner keeps them out of the
        # (deterministic) record and apart with the other timings.
        return {
            "defense": self.name,
            "attack": attack_name,
            "attack_options": attack_options,
            "model_kind": kind,
            "adversarial_examples": len(adv_examples) + len(adv_units),
            "rounds": curve,
            "round_seconds": timings,
        }

    # -- pieces -------------------------------------------------------------------------------
    @staticmethod
    def _adversarial(model, targets, records, r: int, seed: int) -> tuple[list, list]:
        """Successful attacks -> adversarial training data with the true labels."""
        by_id = {ex.example_id: ex for ex in targets}
        examples, units = [], []
        for rec in records:
            if rec.status != "succeeded" or rec.perturbed is None:
                continue
            ex = by_id[rec.example_id]
            perturbed = rec.perturbed
            if isinstance(perturbed, dict) and "profile" in perturbed and "candidate" in perturbed:
                units.append(_text_unit(model, ex, perturbed, rec.target_item, seed))
            else:
                history = perturbed.get("history") if isinstance(perturbed, dict) else perturbed
                examples.append(td.with_history(ex, td.history_from_record(ex.profile.history, history), f"~adv{r}"))
        return examples, units

    def _fine_tune(self, model, kind, train, valid, base_examples, adv_examples, adv_units, clean_mix, epochs, seed, r):
        n_adv = len(adv_examples) + len(adv_units)
        if n_adv == 0:
            return {"skipped": "no adversarial example yet"}
        if kind == "refit":
            # Nothing to continue from: fit again on everything seen so far.
            data = td.augmented(train, adv_examples, tag=f"adv{r}")
            model.fit(data, valid, seed=seed)
            return {"refit": True, "training_examples": len(data.examples)}
        if clean_mix == "all":
            clean = list(base_examples)
        else:
            keep = td.seeded_sample(len(base_examples), int(round(float(clean_mix) * n_adv)), seed, 7004, r)
            clean = [base_examples[i] for i in keep]
        if kind == "text":
            if train.task == "ranking":
                clean = td.with_negatives(clean, train, int(model.opts.get("negatives", 4)), seed)
            p, c, y = model.training_units([*clean, *adv_examples], seed + r)
            for unit in adv_units:
                p.append(unit[0])
                c.append(unit[1])
                y.append(unit[2])
            log = fitting.fine_tune_text(model, p, c, y, epochs, seed + r, self.settings.lr)
            log.update(clean_examples=len(clean), adversarial_examples=n_adv)
            return log
        if clean_mix == "all":
            data = td.augmented(train, adv_examples, tag=f"adv{r}", base_examples=clean)
        else:
            data = td.only(train, [*clean, *adv_examples], tag=f"adv{r}")
        log = model.train_further(data, None, epochs=epochs, seed=seed + r)
        log.update(clean_examples=len(clean), adversarial_examples=n_adv)
        return log

    @staticmethod
    def _evaluate(model, attack, eval_clean, eval_attack, entry: dict) -> dict:
        from benchmark.evaluation import evaluate

        entry = dict(entry)
        if eval_clean is None:
            entry.update(clean={}, robust={}, attack_success_rate=None)
            return entry
        entry["clean"] = evaluate(model, eval_clean)
        result = attack.run(model, eval_attack, progress=False)
        s = result.summary
        entry["robust"] = s.get("robust", {})
        entry["clean_on_attacked"] = s.get("clean", {})
        entry["attack_success_rate"] = s.get("attack_success_rate")
        entry["attacked_examples"] = s.get("examples")
        entry["attack_errors"] = s.get("n_error", 0)
        return entry


def _text_unit(model, ex, perturbed: dict, target_item, seed: int) -> tuple:
    """A text attack's perturbed pair -> (profile text, candidate text(s), true label)."""
    if model.task == "preference":
        return perturbed["profile"], perturbed["candidate"], int(ex.label)

    renderer = model.renderer
    positive = ex.candidates[ex.label]
    others = [c for i, c in enumerate(ex.candidates) if i != ex.label]
    n_neg = int(model.opts.get("negatives", 4))
    rng = seeding.rng(seed, 31337, ex.example_id)
    chosen = [others[i] for i in rng.choice(len(others), size=min(n_neg, len(others)), replace=False)] if others else []
    if target_item is not None and target_item != positive and target_item not in chosen:
        chosen = [target_item, *chosen[: max(n_neg - 1, 0)]]  # a promoted target is a negative to learn
    texts = []
    for c in [positive, *chosen]:
        texts.append(perturbed["candidate"] if c == target_item else renderer.candidate_text(c))
    return perturbed["profile"], texts, 0
