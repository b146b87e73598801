"""The public conformance check for recommenders (in the spirit of scikit-learn's
``check_estimator``): does a model keep the contract of ``recommenders.base``?

    report = check_model("my_package.model:MyModel", options={"epochs": 1})
    report.raise_for_failures()          # ConformanceError listing every failed check

CLI: ``recrobust check-model module:Class [--option K=V ...] [--task preference|ranking]``;
``recrobust evaluate`` runs it before spending compute on a submission. Tests
parametrize over every registered model (tests/test_conformance.py).

Checks, per task the model declares (``capabilities.tasks``), on a small generated
dataset (users with taste clusters, so a personalised model has something to learn):

- ``fit``: returns the model and sets ``model.task``;
- ``score-shape``: ``score`` gives a finite float array of shape (profiles, candidates);
  on the preference task every value is a probability in [0, 1];
- ``profile-drives-score``: editing the profiles (other items, flipped ratings) changes
  some score; a model declaring ``profile_driven=False`` must instead give the same scores;
- ``save-load``: ``save`` then ``Recommender.load`` gives identical scores;
- ``deterministic``: two fits with the same seed give identical scores;
- ``capability-protocols``: each declared capability comes with its protocol
  (text_input -> TextScorer, differentiable -> EmbeddingDifferentiable);
- ``text-scorer``: ``score_text`` on ``render_pairs`` gives the same scores as ``score``;
- ``gradients``: ``embedding_forward`` returns tensors whose gradients exist, are finite
  and not all zero;
- ``item-index`` (ItemIndexed models): ``item_rows(item_ids())`` are distinct rows, -1 for
  an unknown item.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from benchmark.data.dataset import Dataset
from benchmark.profiles import Interaction, split_dataset
from benchmark.tasks import build_task
from recommenders.base import MODELS, Capabilities, EmbeddingDifferentiable, ItemIndexed, Recommender, TextScorer

TASKS = ("preference", "ranking")
N_PROFILES = 6  # examples scored by each check
N_CANDIDATES = 5  # candidates per ranking example (the first is the positive)
ATOL = 1e-6  # "identical" scores, up to float rounding
# Two fits: CPU kernels may sum in another order from one run to the next (seen: 1.5e-6 on
# a tiny cross-encoder's probabilities); anything above this is a seeding bug.
ATOL_REFIT = 1e-5


class ConformanceError(ValueError):
    """A model failed the conformance check; the message lists every failed check."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    task: str | None
    ok: bool
    message: str = ""


@dataclass
class ConformanceReport:
    model: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def add(self, name: str, task: str | None, ok: bool, message: str = "") -> bool:
        self.results.append(CheckResult(name, task, bool(ok), "" if ok else message))
        return bool(ok)

    def format(self) -> str:
        lines = [f"{self.model}: {'conforms' if self.ok else f'{len(self.failures)} check(s) failed'}"]
        for r in self.results:
            where = f"[{r.task}] " if r.task else ""
            lines.append(f"  {'ok  ' if r.ok else 'FAIL'} {where}{r.name}{': ' + r.message if r.message else ''}")
        return "\n".join(lines)

    def raise_for_failures(self) -> "ConformanceReport":
        if not self.ok:
            raise ConformanceError(self.format())
        return self


def check_dataset(n_users: int = 24, n_items: int = 30, per_user: int = 12, seed: int = 0) -> Dataset:
    """A small generated dataset: users with even/odd taste clusters, titled items."""
    rng = np.random.default_rng([seed, 20261201])
    rows = []
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, size=per_user, replace=False)):
            liked = (i % 2) == (u % 2)
            rating = float(rng.choice([4, 5]) if liked else rng.choice([1, 2]))
            rows.append((f"u{u}", f"i{i}", rating, 1_000_000 + 1000 * t + u))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    inter = inter.astype({"user_id": str, "item_id": str, "rating": "float64", "timestamp": "int64"})
    items = pd.DataFrame(
        {"title": [f"Film {i} ({1980 + i})" for i in range(n_items)],
         "genres": ["Comedy|Romance" if i % 2 else "Action|War" for i in range(n_items)]},
        index=pd.Index([f"i{i}" for i in range(n_items)], name="item_id"),
    )
    return Dataset("conformance", inter, items, source="generated", format="generated")


def _factory(model) -> tuple[str, Callable[[], Recommender]]:
    """(label, zero-argument constructor) for a class, a registered name / 'module:Class', or a factory."""
    if isinstance(model, str):
        cls = MODELS.resolve(model)
        return model, cls
    if isinstance(model, type):
        return f"{model.__module__}:{model.__qualname__}", model
    if callable(model):
        return getattr(model, "__name__", repr(model)), model
    raise TypeError(f"check_model expects a class, a name or a factory, got {type(model).__name__}")


def _edited(profiles, items: Sequence[str]):
    """Each profile with other items (shifted through the catalog) and flipped ratings."""
    out = []
    for k, p in enumerate(profiles):
        own = set(p.item_ids())
        pool = [i for i in items if i not in own]
        history = []
        for j, h in enumerate(p.history):
            rating = h.rating if np.isnan(h.rating) else 6.0 - h.rating
            history.append(Interaction(pool[(k + j) % len(pool)] if pool else h.item_id, rating, h.timestamp))
        out.append(p.replace_history(tuple(history)))
    return out


def _scores(model, profiles, candidates) -> np.ndarray:
    return np.asarray(model.score(profiles, candidates), dtype=np.float64)


def check_model(model, options: dict | None = None, tasks: Sequence[str] | None = None, seed: int = 0,
                dataset: Dataset | None = None) -> ConformanceReport:
    """Run every check (see the module docstring) and return the report; never raises for a
    failing model (call ``raise_for_failures``), only for a bad ``model`` argument."""
    label, make = _factory(model)
    options = dict(options or {})
    report = ConformanceReport(label)

    def build() -> Recommender:
        return make(**options)

    try:
        first = build()
    except Exception as err:  # the model cannot even be built with these options
        report.add("construct", None, False, f"{type(err).__name__}: {err}")
        return report
    if not report.add("is-recommender", None, isinstance(first, Recommender),
                      f"{type(first).__name__} does not subclass recommenders.base.Recommender"):
        return report
    caps = type(first).capabilities
    if not report.add("capabilities", None, isinstance(caps, Capabilities) and set(caps.tasks) <= set(TASKS)
                      and bool(caps.tasks), f"capabilities must be a Capabilities with tasks in {TASKS}"):
        return report
    report.add("capability-protocols", None, *_protocols(first, caps))

    dataset = dataset or check_dataset(seed=seed)
    timeline = split_dataset(dataset)
    run = [t for t in (tasks or caps.tasks) if t in caps.tasks]
    if tasks and not run:
        report.add("tasks", None, False, f"the model declares tasks {caps.tasks}, none of {tuple(tasks)}")
    for k, task in enumerate(run):
        common = dict(seed=seed, timeline=timeline, history_len=6)
        train = build_task(dataset, task, "train", **common, num_negatives=0)
        valid = build_task(dataset, task, "valid", **common, num_negatives=N_CANDIDATES - 1)
        test = build_task(dataset, task, "test", **common, num_negatives=N_CANDIDATES - 1)
        try:
            model = first if k == 0 else build()
        except Exception as err:
            report.add("construct", task, False, f"{type(err).__name__}: {err}")
            continue
        _check_task(report, build, model, task, caps, train, valid, test.examples[:N_PROFILES], dataset, seed)
    return report


def _protocols(model, caps: Capabilities) -> tuple[bool, str]:
    missing = []
    if caps.text_input and not isinstance(model, TextScorer):
        missing.append("text_input is declared but TextScorer (renderer, render_pairs, score_text) is missing")
    if caps.differentiable and not isinstance(model, EmbeddingDifferentiable):
        missing.append("differentiable is declared but embedding_forward is missing")
    return not missing, "; ".join(missing)


def _check_task(report, build, model, task, caps, train, valid, examples, dataset, seed) -> None:
    try:
        fitted = model.fit(train, valid, seed=seed)
    except Exception as err:
        report.add("fit", task, False, f"{type(err).__name__}: {err}")
        return
    if not report.add("fit", task, fitted is model and model.task == task,
                      "fit must return the model itself and set model.task"):
        return
    profiles = [e.profile for e in examples]
    candidates = [list(e.candidates) for e in examples]
    try:
        scores = _scores(model, profiles, candidates)
    except Exception as err:
        report.add("score-shape", task, False, f"score raised {type(err).__name__}: {err}")
        return
    width = len(candidates[0])
    problem = ""
    if scores.shape != (len(profiles), width):
        problem = f"expected shape {(len(profiles), width)}, got {scores.shape}"
    elif not np.isfinite(scores).all():
        problem = "scores must be finite"
    elif task == "preference" and not ((scores >= 0) & (scores <= 1)).all():
        problem = f"preference scores must be probabilities in [0, 1]; got range [{scores.min():.4g}, {scores.max():.4g}]"
    if not report.add("score-shape", task, not problem, problem):
        return

    edited = _scores(model, _edited(profiles, list(dataset.items.index)), candidates)
    moved = float(np.abs(edited - scores).max())
    if caps.profile_driven:
        report.add("profile-drives-score", task, moved > 0,
                   "editing every profile changed no score: the profile must drive the score "
                   "(fold it in), or declare Capabilities(profile_driven=False)")
    else:
        report.add("profile-drives-score", task, moved <= ATOL,
                   f"declared profile_driven=False but editing the profiles moved a score by {moved:.3g}")

    with tempfile.TemporaryDirectory(prefix="recrobust-check-") as tmp:
        try:
            model.save(tmp)
            loaded = Recommender.load(tmp)
            again = _scores(loaded, profiles, candidates)
            report.add("save-load", task, again.shape == scores.shape and np.allclose(again, scores, rtol=0, atol=ATOL),
                       f"scores after save -> load differ by up to {np.abs(again - scores).max():.3g}"
                       if again.shape == scores.shape else f"loaded model scores have shape {again.shape}")
        except Exception as err:
            report.add("save-load", task, False, f"{type(err).__name__}: {err}")

    try:
        twin = build().fit(train, valid, seed=seed)
        other = _scores(twin, profiles, candidates)
        report.add("deterministic", task, np.allclose(other, scores, rtol=0, atol=ATOL_REFIT),
                   f"two fits with seed {seed} give scores differing by up to {np.abs(other - scores).max():.3g}")
    except Exception as err:
        report.add("deterministic", task, False, f"{type(err).__name__}: {err}")

    if caps.text_input and isinstance(model, TextScorer):
        try:
            p_texts, c_texts = model.render_pairs(profiles, candidates)
            flat = np.asarray(model.score_text(p_texts, c_texts), dtype=np.float64)
            report.add("text-scorer", task, flat.shape == (scores.size,) and np.allclose(flat, scores.ravel(), atol=1e-5),
                       "score_text on render_pairs must give score's values, row-major")
        except Exception as err:
            report.add("text-scorer", task, False, f"{type(err).__name__}: {err}")

    if caps.differentiable and isinstance(model, EmbeddingDifferentiable):
        report.add("gradients", task, *_gradients(model, profiles, candidates))

    if isinstance(model, ItemIndexed):
        try:
            ids = list(model.item_ids())
            rows = np.asarray(model.item_rows([*ids, "\x00no-such-item"]))
            report.add("item-index", task, bool(ids) and (rows[:-1] >= 0).all() and len(set(rows[:-1])) == len(ids)
                       and rows[-1] == -1, "item_rows(item_ids()) must give distinct rows >= 0, and -1 for an unknown item")
        except Exception as err:
            report.add("item-index", task, False, f"{type(err).__name__}: {err}")


def _gradients(model, profiles, candidates) -> tuple[bool, str]:
    try:
        base, forward = model.embedding_forward(profiles, candidates)
        leaves = {k: v.detach().clone().requires_grad_(True) for k, v in base.items()}
        out = forward(leaves)
        if tuple(out.shape) != (len(profiles), len(candidates[0])):
            return False, f"embedding_forward's forward gives shape {tuple(out.shape)}"
        out.sum().backward()
    except Exception as err:
        return False, f"{type(err).__name__}: {err}"
    grads = [t.grad for t in leaves.values()]
    if not grads or all(g is None for g in grads):
        return False, "no gradient reaches the embedding tensors"
    if not all(torch.isfinite(g).all() for g in grads if g is not None):
        return False, "gradients are not finite"
    if all(float(g.abs().sum()) == 0 for g in grads if g is not None):
        return False, "gradients are all zero"
    return True, ""
