"""Classic recommenders (popularity, itemknn, bpr-mf, sasrec): fit, score, profile
sensitivity, persistence, gradient hooks and determinism on small data (seconds)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.data.dataset import Dataset
from benchmark.evaluation import evaluate
from benchmark.profiles import Interaction, Profile
from benchmark.tasks import build_splits
from recommenders.base import Recommender
from recommenders.registry import create
from tests.helpers import make_dataset

FAST = {
    "popularity": {},
    "itemknn": {"neighbors": 20},
    "bpr-mf": {"factors": 8, "epochs": 3, "batch_size": 64, "progress": False},
    "sasrec": {"hidden": 16, "layers": 1, "heads": 2, "epochs": 2, "batch_size": 64, "progress": False},
}
PERSONALISED = ("itemknn", "bpr-mf", "sasrec")
TRAINED = ("bpr-mf", "sasrec")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def splits():
    ds = make_dataset(n_users=40, n_items=50, per_user=14, seed=3)
    return {task: build_splits(ds, task, seed=0, history_len=5, num_negatives=20) for task in ("preference", "ranking")}


@pytest.fixture(scope="module")
def fitted(splits):
    cache: dict = {}

    def get(name: str, task: str):
        if (name, task) not in cache:
            s = splits[task]
            cache[name, task] = create(name, **FAST[name]).fit(s["train"], s["valid"], seed=0)
        return cache[name, task]

    return get


def _examples(splits, task, n=8):
    return splits[task]["test"].examples[:n]


@pytest.mark.parametrize("task", ["preference", "ranking"])
@pytest.mark.parametrize("name", list(FAST))
def test_fits_scores_and_evaluates(name, task, fitted, splits):
    model = fitted(name, task)
    assert model.task == task
    examples = _examples(splits, task)
    scores = model.score([e.profile for e in examples], [e.candidates for e in examples])
    assert scores.shape == (len(examples), len(examples[0].candidates))
    assert np.isfinite(scores).all()
    if task == "preference":
        assert ((scores >= 0) & (scores <= 1)).all()
    result = evaluate(model, splits[task]["test"])  # raises on non-finite / out-of-range scores
    assert result["examples"] == len(splits[task]["test"].examples)


def _edited(profile: Profile, items: list[str]) -> Profile:
    """The same profile with every history item replaced by `items` (ratings flipped too)."""
    history = [Interaction(i, 6.0 - h.rating if not math.isnan(h.rating) else h.rating, h.timestamp)
               for h, i in zip(profile.history, items)]
    return profile.replace_history(history)


@pytest.mark.parametrize("task", ["preference", "ranking"])
@pytest.mark.parametrize("name", PERSONALISED)
def test_profile_drives_the_score(name, task, fitted, splits):
    model = fitted(name, task)
    examples = _examples(splits, task)
    profiles = [e.profile for e in examples]
    candidates = [e.candidates for e in examples]
    before = model.score(profiles, candidates)
    # Replace each history by items of the opposite taste cluster (parity), ratings flipped.
    items = model.vocab.ids
    edited = []
    for p in profiles:
        parity = int(p.history[-1].item_id[1:]) % 2
        other = [i for i in items if int(i[1:]) % 2 != parity and i not in p.item_ids()]
        edited.append(_edited(p, other[: len(p.history)]))
    after = model.score(edited, candidates)
    assert not np.allclose(before, after)
    # Ratings alone matter too (rating-aware models): flip only the ratings.
    flipped = [_edited(p, p.item_ids()) for p in profiles]
    assert not np.allclose(before, model.score(flipped, candidates))


def test_popularity_ignores_the_profile(fitted, splits):
    model = fitted("popularity", "ranking")
    examples = _examples(splits, "ranking")
    candidates = [e.candidates for e in examples]
    empty = [e.profile.replace_history([]) for e in examples]
    assert np.array_equal(model.score([e.profile for e in examples], candidates), model.score(empty, candidates))


@pytest.mark.parametrize("task", ["preference", "ranking"])
@pytest.mark.parametrize("name", list(FAST))
def test_save_load_identical_scores(name, task, fitted, splits, tmp_path):
    model = fitted(name, task)
    examples = _examples(splits, task)
    profiles, candidates = [e.profile for e in examples], [e.candidates for e in examples]
    model.save(tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pkl")) and not list((tmp_path / "m").glob("*.pt"))
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.task == task
    np.testing.assert_array_equal(model.score(profiles, candidates), loaded.score(profiles, candidates))


@pytest.mark.parametrize("task", ["preference", "ranking"])
@pytest.mark.parametrize("name", list(FAST))
def test_unknown_items_do_not_crash(name, task, fitted, splits):
    model = fitted(name, task)
    ex = _examples(splits, task, 2)
    ghost = Interaction("never-seen-item", 5.0, 0)
    profiles = [e.profile.replace_history(e.profile.history + (ghost,)) for e in ex]
    candidates = [("never-seen-item",) + tuple(e.candidates[1:]) for e in ex]
    scores = model.score(profiles, candidates)
    assert np.isfinite(scores).all()
    # An unknown history entry is dropped: same scores as without it.
    np.testing.assert_allclose(scores, model.score([e.profile for e in ex], candidates), rtol=1e-6, atol=1e-6)
    # A profile with nothing known still scores.
    empty = model.score([e.profile.replace_history([ghost]) for e in ex], candidates)
    assert np.isfinite(empty).all()


@pytest.mark.parametrize("task", ["preference", "ranking"])
@pytest.mark.parametrize("name", TRAINED)
def test_embedding_forward_matches_score_and_gradients_flow(name, task, fitted, splits):
    model = fitted(name, task)
    assert model.capabilities.differentiable
    examples = _examples(splits, task, 4)
    profiles, candidates = [e.profile for e in examples], [e.candidates for e in examples]
    base, forward = model.embedding_forward(profiles, candidates)
    assert "item" in base and all(t.dim() == 2 and not t.requires_grad for t in base.values())
    clean = forward(base)
    expected = model.score(profiles, candidates)
    got = torch.sigmoid(clean) if task == "preference" else clean
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-5)

    leaves = {k: v.clone().requires_grad_(True) for k, v in base.items()}
    out = forward(leaves)
    grads = torch.autograd.grad(out[:, 0].sum(), list(leaves.values()))
    for key, g in zip(leaves, grads):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, key
    # A perturbation of the item table changes the scores; parameters got no .grad.
    moved = forward({"item": base["item"] + 0.5 * torch.randn_like(base["item"])})
    assert not torch.allclose(moved, clean)
    assert all(p.grad is None for p in model.net.parameters())


@pytest.mark.parametrize("task", ["preference", "ranking"])
@pytest.mark.parametrize("name", TRAINED)
def test_deterministic_for_a_seed(name, task, splits):
    s = splits[task]
    examples = s["test"].examples[:8]
    args = ([e.profile for e in examples], [e.candidates for e in examples])
    one = create(name, **FAST[name]).fit(s["train"], s["valid"], seed=1).score(*args)
    two = create(name, **FAST[name]).fit(s["train"], s["valid"], seed=1).score(*args)
    other = create(name, **FAST[name]).fit(s["train"], s["valid"], seed=2).score(*args)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, other)


def test_training_loss_hook_takes_perturbed_tables(fitted, splits):
    """The seam an APR defense plugs into: _loss(batch, tables) with perturbed tables."""
    model = fitted("bpr-mf", "ranking")
    data = model._prepare(splits["ranking"]["train"])
    gen = torch.Generator().manual_seed(0)
    batch = next(model._batches(data, np.random.default_rng(0), gen))
    params = model._embedding_params()
    assert set(params) == {"item", "history"}
    clean = model._loss(batch)
    noisy = model._loss(batch, {k: p + 0.3 * torch.randn_like(p) for k, p in params.items()})
    assert torch.isfinite(clean) and torch.isfinite(noisy) and not torch.isclose(clean, noisy)


def test_bad_options_and_tasks_are_refused(splits):
    with pytest.raises(ValueError, match="factorz"):
        create("bpr-mf", factorz=8)
    with pytest.raises(RuntimeError, match="not fitted"):
        create("sasrec").score([], [])


def test_learns_taste_on_generated_data():
    """Users like items of their own parity: personalised models must rank by taste,
    far above popularity (which cannot)."""
    ds = make_dataset(n_users=60, n_items=40, per_user=16, seed=5)
    s = build_splits(ds, "preference", seed=0, history_len=6)
    results = {}
    for name, opts in [("popularity", {}), ("itemknn", {}),
                       ("bpr-mf", {"factors": 8, "epochs": 25, "batch_size": 128, "lr": 0.02, "progress": False})]:
        model = create(name, **opts).fit(s["train"], s["valid"], seed=0)
        results[name] = evaluate(model, s["test"])["auc"]
    assert results["popularity"] < 0.7
    assert results["itemknn"] > 0.8 and results["bpr-mf"] > 0.8, results


def test_real_ml_latest_small_slice(shared_data):
    """A slice of the real ml-latest-small file (half-star ratings, real ids): every model
    fits and scores both tasks."""
    ratings = pd.read_csv(shared_data / "ml-latest-small" / "ratings.csv", nrows=3000)
    users = sorted(ratings["userId"].unique())[:20]
    ratings = ratings[ratings["userId"].isin(users)]
    inter = pd.DataFrame({"user_id": ratings["userId"].astype(str), "item_id": ratings["movieId"].astype(str),
                          "rating": ratings["rating"].astype("float64"), "timestamp": ratings["timestamp"].astype("int64")})
    movies = pd.read_csv(shared_data / "ml-latest-small" / "movies.csv")
    movies["movieId"] = movies["movieId"].astype(str)
    items = movies[movies["movieId"].isin(set(inter["item_id"]))].set_index("movieId")[["title", "genres"]]
    items.index.name = "item_id"
    ds = Dataset("ml-latest-small-slice", inter.reset_index(drop=True), items)
    for task in ("preference", "ranking"):
        s = build_splits(ds, task, seed=0, num_negatives=49)
        for name, opts in FAST.items():
            model = create(name, **opts).fit(s["train"], s["valid"], seed=0)
            result = evaluate(model, s["test"])
            assert result["examples"] == len(s["test"].examples) > 0
