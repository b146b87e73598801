"""A fast, deterministic stand-in for the experiment steps, for runner/leaderboard tests.

Models are tiny seeded "skill" vectors; attacks flip a budget-dependent share of correct
predictions, less so under a defense. Everything is a pure function of (names, options,
seed), so two runs give identical metrics. Side effects that tests count (trainings,
attacks) are appended to files named by environment variables, so they survive process
boundaries (process pool, Ray, a SIGKILLed subprocess).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attacks.records import AttackRecord, Perturbation, summarize
from benchmark import metrics
from benchmark.runner import CellUnavailable, Pipeline
from benchmark.suite import Catalog

CAPS = {
    "popularity": dict(text_input=False, differentiable=False),
    "bpr-mf": dict(text_input=False, differentiable=True),
    "sasrec": dict(text_input=False, differentiable=True),
    "cross-encoder": dict(text_input=True, differentiable=True),
    "broken": dict(text_input=False, differentiable=False),
}
THREAT = {"profile-swap": "profile", "rating-flip": "profile", "embedding-pgd": "embedding", "deepwordbug": "text",
          "pwws": "text"}
DEFENSES = ("none", "adv-augment", "embedding-at", "profile-augment")


@dataclass(frozen=True)
class Caps:
    text_input: bool = False
    differentiable: bool = False
    tasks: tuple = ("preference", "ranking")


def fake_catalog() -> Catalog:
    def caps(name):
        if ":" in name and name.startswith("tests."):  # a "submitted" module:Class
            return Caps(text_input=False, differentiable=True)
        if name not in CAPS:
            raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(CAPS))}")
        return Caps(**CAPS[name])

    def threat(name):
        if name not in THREAT:
            raise ValueError(f"unknown attack {name!r}; known: {', '.join(sorted(THREAT))}")
        return THREAT[name]

    return Catalog(model_capabilities=caps, attack_threat_model=threat, defense_known=lambda n: n in DEFENSES,
                   dataset_known=lambda n: n.startswith("toy"), defense_names=lambda: list(DEFENSES))


def _h(*parts) -> int:
    return zlib.crc32(json.dumps(parts, sort_keys=True, default=str).encode())


def _log(var: str, line: str) -> None:
    path = os.environ.get(var)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@dataclass
class FakeExample:
    example_id: str
    label: int
    task: str


@dataclass
class FakeData:
    task: str
    examples: list


class FakeModel:
    def __init__(self, name, options, defense, seed, task):
        self.name, self.options, self.defense, self.seed, self.task = name, dict(options), defense, seed, task
        self.skill = 0.55 + (_h(name, seed) % 30) / 100  # 0.55 .. 0.84
        self.hardness = {"none": 1.0}.get(defense, 0.5)  # a defense halves the attack's effect

    def to_dict(self):
        return {"name": self.name, "options": self.options, "defense": self.defense, "seed": self.seed, "task": self.task}


class FakePipeline(Pipeline):
    def __init__(self, examples: int = 40, delay: float = 0.0):
        self.n_examples = examples
        self.delay = delay

    def catalog(self) -> Catalog:
        return fake_catalog()

    def check_model(self, spec, options):
        """Fake models pass the conformance check unless FAKE_CONFORMANCE_FAIL names a check."""
        from recommenders.conformance import ConformanceReport

        report = ConformanceReport(spec)
        failing = os.environ.get("FAKE_CONFORMANCE_FAIL")
        report.add(failing or "fake", None, not failing, "the fake model fails this check")
        return report

    def load_dataset(self, spec):
        if not spec.name.startswith("toy"):
            raise FileNotFoundError(spec.name)
        return {"name": spec.name}

    def fingerprint(self, dataset) -> str:
        return f"{_h(dataset['name']):08x}" * 8

    def prepare(self, dataset, task, seed, sizes):
        n = min(self.n_examples, sizes.get("max_eval_examples") or self.n_examples)
        rng = np.random.default_rng([seed, _h(dataset["name"], task)])
        labels = rng.integers(0, 2, n) if task == "preference" else np.zeros(n, dtype=int)
        test = FakeData(task, [FakeExample(f"u{i}:5", int(labels[i]), task) for i in range(n)])
        return {"train": test, "valid": test, "test": test}

    def prepare_test(self, dataset, task, seed, sizes):
        return self.prepare(dataset, task, seed, sizes)["test"]

    def train(self, model, defense, splits, seed):
        if self.delay:
            time.sleep(self.delay)
        _log("FAKE_TRAIN_LOG", f"{model.label}/{defense.label}/{splits['test'].task}/{seed}")
        if model.options.get("raise_on_train"):
            raise RuntimeError("model exploded while training")
        if defense.name == "embedding-at" and model.name == "popularity":
            raise CellUnavailable("embedding-at needs a differentiable model")
        info = {}
        if defense.name != "none":
            rounds = int(defense.options.get("rounds", 2))
            info = {"rounds": [{"round": r, "clean": {"accuracy": 0.7 - 0.01 * r}, "robust": {"accuracy": 0.4 + 0.05 * r},
                                "added_examples": 10 * r} for r in range(rounds + 1)], "train_seconds": 0.01}
        return FakeModel(model.name, model.options, defense.name, seed, splits["test"].task), info

    def _outcomes(self, model: FakeModel, data: FakeData):
        rng = np.random.default_rng([model.seed, _h(model.name, model.options, model.defense)])
        if data.task == "preference":
            correct = rng.random(len(data.examples)) < model.skill
            probs = np.where(correct, 0.5 + rng.random(len(correct)) / 2 * 0.99,
                             0.5 - rng.random(len(correct)) / 2 * 0.99)
            labels = np.array([e.label for e in data.examples])
            probs = np.where(labels == 1, probs, 1 - probs)
            return probs, labels
        ranks = np.maximum(1, (rng.geometric(model.skill / 4, len(data.examples))).astype(int))
        return np.minimum(ranks, 100), None

    def evaluate(self, model, data):
        if model.options.get("nan_scores"):
            return {"auc": float("nan"), "accuracy": float("nan"), "log_loss": float("nan")}, []
        if data.task == "preference":
            probs, labels = self._outcomes(model, data)
            m = metrics.preference_metrics(labels, probs)
            rows = [{"example_id": e.example_id, "prob": float(p), "label": int(l), "correct": bool((p >= 0.5) == l)}
                    for e, p, l in zip(data.examples, probs, labels)]
        else:
            ranks, _ = self._outcomes(model, data)
            m = metrics.ranking_metrics(ranks)
            nd = metrics.ndcg_at_k(ranks)
            rows = [{"example_id": e.example_id, "rank": int(r), "ndcg@10": float(n)}
                    for e, r, n in zip(data.examples, ranks, nd)]
        m["examples"] = len(data.examples)
        return m, rows

    def attack(self, model, data, attack, seed, sizes, progress=False):
        if self.delay:
            time.sleep(self.delay)
        _log("FAKE_ATTACK_LOG", f"{model.name}/{model.defense}/{data.task}/{attack.label}/{seed}")
        if attack.options.get("raise"):
            raise RuntimeError("attack crashed")
        n = min(len(data.examples), sizes.get("max_attack_examples") or len(data.examples))
        examples = data.examples[:n]
        strength = {"profile": 0.3, "text": 0.5, "embedding": 0.4}.get(attack.threat_model, 0.3)
        budget = attack.budget or attack.query_budget or 3
        strength = min(0.95, strength * (1 + np.log1p(budget) / 3) * model.hardness)
        rng = np.random.default_rng([seed, _h(model.name, model.defense, attack.label, model.options)])
        flips = rng.random(n) < strength
        records = []
        if data.task == "preference":
            probs, labels = self._outcomes(model, data)
            for i, e in enumerate(examples):
                correct = bool((probs[i] >= 0.5) == labels[i])
                if not correct:
                    records.append(AttackRecord(e.example_id, attack.name, e.task, "skipped", None, None, float(probs[i]),
                                                None, label=int(labels[i]), correct_before=False, correct_after=False,
                                                goal="untargeted-classification"))
                    continue
                after = 1 - probs[i] if flips[i] else probs[i]
                records.append(AttackRecord(e.example_id, attack.name, e.task, "succeeded" if flips[i] else "failed",
                                            "x", "y", float(probs[i]), float(after), label=int(labels[i]),
                                            correct_before=True, correct_after=not flips[i],
                                            goal="untargeted-classification", success=bool(flips[i]),
                                            queries=int(10 + i % 7), perturbation=Perturbation(profile_edits=1)))
        else:
            ranks, _ = self._outcomes(model, data)
            for i, e in enumerate(examples):
                after = int(min(100, ranks[i] + (11 if flips[i] else 0)))
                records.append(AttackRecord(e.example_id, attack.name, e.task, "succeeded" if flips[i] else "failed",
                                            "x", "y", 1.0, 0.5, rank_before=int(ranks[i]), rank_after=after,
                                            goal="demote-top10", success=bool(flips[i]), queries=int(5 + i % 3)))
        for r in records:
            r.seconds = 0.001 * (time.perf_counter() % 1)  # a timing that differs between runs
        summary = summarize(records)
        if attack.threat_model == "embedding":
            summary["curve"] = [{"epsilon": e, "robust": {"accuracy": max(0.0, 0.8 - e)}} for e in (0.1, 0.2, 0.5)]
        return summary, [r.to_dict() for r in records], {"attack": attack.name, "budget": attack.budget}

    def save_model(self, model, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "recommender.json").write_text(json.dumps(model.to_dict()), encoding="utf-8")

    def load_model(self, directory, expected=None):
        d = json.loads((Path(directory) / "recommender.json").read_text(encoding="utf-8"))
        return FakeModel(d["name"], d["options"], d["defense"], d["seed"], d["task"])


class NoEffectPipeline(FakePipeline):
    """rating-flip moves nobody (every attacked example fails): a degenerate column."""

    def attack(self, model, data, attack, seed, sizes, progress=False):
        summary, rows, config = super().attack(model, data, attack, seed, sizes, progress)
        if attack.name != "rating-flip":
            return summary, rows, config
        records = []
        for r in rows:
            r = dict(r, perturbation=Perturbation(**r["perturbation"]))
            if r["status"] == "succeeded":
                r.update(status="failed", success=False, correct_after=r["correct_before"], score_after=r["score_before"])
            records.append(AttackRecord(**r))
        return summarize(records), [r.to_dict() for r in records], config


def toy_suite(**overrides) -> dict:
    """A small suite for the fake pipeline: 2 tasks x 2 models x 2 defenses x 3 attacks."""
    suite = {
        "name": "toy",
        "version": "1",
        "datasets": ["toy-a"],
        "tasks": ["preference", "ranking"],
        "seeds": [0],
        "sizes": {"max_eval_examples": 40, "max_attack_examples": {"preference": 30, "ranking": 20}},
        "models": ["popularity", {"name": "bpr-mf", "options": {"factors": 8}}],
        "defenses": ["none", {"name": "profile-augment", "options": {"rounds": 2}}],
        "attacks": [
            {"name": "profile-swap", "budget": 3, "sweep": {"param": "budget", "values": [1, 3, 5]}},
            {"name": "rating-flip", "budget": 2, "tasks": ["preference"]},
            {"name": "embedding-pgd", "options": {"epsilon": 0.5}},
        ],
    }
    suite.update(overrides)
    return suite
