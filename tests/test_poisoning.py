"""Poisoning: budgets, untouched valid/test, determinism, an effect that must appear,
detectors on planted fakes, one-line errors naming the option, and a real suite cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attacks.poisoning import FAKE_PREFIX, is_fake
from attacks.poisoning.base import PoisoningOptionError, n_fake_users
from attacks.poisoning.detectors import DETECTORS, create_detector, detection_scores
from attacks.poisoning.protocol import eligible_pairs, poisoned_splits, select_targets
from attacks.registry import create
from benchmark.experiment import prepare_task, run_poisoning, train_model
from tests.helpers import make_dataset

pytestmark = pytest.mark.usefixtures("one_thread")
ATTACKS = ["random", "average", "bandwagon", "segment", "pga"]
FAST_PGA = {"surrogate_steps": 20, "rounds": 2, "unroll": 2, "factors": 8}


def _attack(name, **kw):
    return create(name, **({**FAST_PGA, **kw} if name == "pga" else kw))


@pytest.fixture(scope="module")
def splits():
    return prepare_task(make_dataset(n_users=40, n_items=60, per_user=12), "ranking", seed=0, num_negatives=30)


@pytest.mark.parametrize("name", ATTACKS)
def test_budget_is_obeyed_exactly(splits, name):
    train = splits["train"].train_interactions
    targets = select_targets(train, 3, seed=0)
    fake = _attack(name, fake_users=0.1, filler=7, seed=0).generate(train, targets, catalog=splits["train"].item_ids)
    assert fake.n_users == n_fake_users(0.1, train["user_id"].nunique()) == 4
    lo, hi = train["rating"].min(), train["rating"].max()
    t0, t1 = train["timestamp"].min(), train["timestamp"].max()
    for uid, g in fake.rows.groupby("user_id"):
        assert uid.startswith(FAKE_PREFIX)
        assert len(g) == 10 and g["item_id"].nunique() == 10  # 7 distinct fillers + the 3 targets
        assert set(targets) <= set(g["item_id"])
        assert (g.loc[g["item_id"].isin(targets), "rating"] == hi).all()
        assert g["rating"].between(lo, hi).all() and (g["rating"] == g["rating"].round()).all()
        assert g["timestamp"].between(t0, t1).all()


def test_valid_and_test_are_untouched(splits):
    train = splits["train"].train_interactions
    targets = select_targets(train, 2, seed=0)
    fake = _attack("bandwagon", fake_users=0.2, filler=5).generate(train, targets, catalog=splits["train"].item_ids)
    poisoned = poisoned_splits(splits, fake.rows)
    assert poisoned["valid"] is splits["valid"] and poisoned["test"] is splits["test"]
    tl = poisoned["train"].timeline
    fake_rows = tl[tl["user_id"].map(is_fake)]
    assert len(fake_rows) == len(fake.rows) and (fake_rows["split"] == "train").all()
    assert not any(is_fake(e.profile.user_id) for e in poisoned["test"].examples + poisoned["valid"].examples)
    assert len(poisoned["train"].train_interactions) == len(train) + len(fake.rows)
    # the fake users' own training examples are there (text models learn from examples)
    assert sum(is_fake(e.profile.user_id) for e in poisoned["train"].examples) == len(fake.rows) - fake.n_users


@pytest.mark.parametrize("name", ATTACKS)
def test_deterministic_for_a_seed(splits, name):
    train = splits["train"].train_interactions
    targets = select_targets(train, 2, seed=1)
    assert targets == select_targets(train, 2, seed=1)
    make = lambda seed: _attack(name, fake_users=0.1, filler=6, seed=seed).generate(
        train, targets, catalog=splits["train"].item_ids).rows
    pd.testing.assert_frame_equal(make(3), make(3))
    assert not make(3).equals(make(4))


@pytest.mark.parametrize("model", ["popularity", "itemknn"])
def test_target_hit_rate_rises_where_the_effect_is_certain(splits, model):
    """An item nobody trained on, pushed by fake users holding it with popular fillers: a
    popularity model must now rank it first, ItemKNN near the users' histories."""
    clean, _ = train_model(model, splits, seed=0)
    counts = splits["train"].train_interactions["item_id"].value_counts()
    target = counts.index[-1]
    result = run_poisoning(clean, splits, "bandwagon", seed=0, model_name=model,
                           options={"fake_users": 0.3, "filler": 10, "target_items": [target],
                                    "selected_share": 1.0}, progress=False)
    before, after = result.summary["clean"], result.summary["robust"]
    assert after["target_hr@10"] > before["target_hr@10"]
    assert after["target_mean_rank"] < before["target_mean_rank"]
    if model == "popularity":
        assert after["target_hr@10"] == 1.0
    lo, hi = result.summary["target_hr@10_after_ci"]
    assert lo <= after["target_hr@10"] <= hi
    rows = result.rows
    assert len(rows) == result.summary["pairs"] == len(eligible_pairs(splits["test"], [target]))
    assert {"rank_before", "rank_after", "full_rank_before", "full_rank_after"} <= set(rows[0])
    # Rows are kept slim (the committed results' bulk) yet reproduce the cell's figures.
    from attacks.poisoning.cell import FULL_RANK_CAP
    assert not {"hit10_before", "hit10_after"} & set(rows[0])
    assert all(r[k] is None or 1 <= r[k] <= FULL_RANK_CAP for r in rows for k in ("full_rank_before", "full_rank_after"))
    assert np.mean([r["rank_after"] <= 10 for r in rows]) == pytest.approx(after["target_hr@10"])
    assert np.mean([r["rank_before"] <= 10 for r in rows]) == pytest.approx(before["target_hr@10"])


def test_preference_task_reports_a_prediction_shift():
    splits = prepare_task(make_dataset(n_users=40, n_items=60, per_user=12), "preference", seed=0)
    clean, _ = train_model("itemknn", splits, seed=0)
    r = run_poisoning(clean, splits, "average", seed=0, model_name="itemknn",
                      options={"fake_users": 0.2, "filler": 8, "targets": 2}, progress=False)
    assert "target_like_prob" in r.summary["robust"] and "auc" in r.summary["robust"]
    assert np.isfinite(r.summary["prediction_shift"])


def _planted(n_real=100, n_fake=6, seed=0):
    """Real users with varied tastes who find items i0-i14 mediocre (1-3 stars); fakes all
    holding those 15 items rated 5, plus a target: obvious to every detector."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_real):
        for i in rng.choice(80, size=20, replace=False):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 4) if i < 15 else rng.integers(1, 6)), 1000 + i))
    shared = [f"i{i}" for i in range(15)] + ["i99"]
    for f in range(n_fake):
        rows += [(f"{FAKE_PREFIX}x{f}", i, 5.0, 2000) for i in shared]
    rows.append(("u0", "i99", 1.0, 1500))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detectors_flag_planted_obvious_fakes(name):
    df = _planted()
    fake = {u for u in df["user_id"].unique() if is_fake(u)}
    flagged = create_detector(name).flag(df, fraction=6 / 106)
    scores = detection_scores(flagged, fake)
    assert scores["recall"] >= 5 / 6 and scores["precision"] >= 5 / 6, (name, scores)


def test_detect_and_drop_removes_flagged_users_before_training(splits):
    from attacks.defenses.registry import create as create_defense

    train = splits["train"].train_interactions
    fake = _attack("segment", fake_users=0.2, filler=5).generate(train, select_targets(train, 2, 0),
                                                                 catalog=splits["train"].item_ids)
    poisoned = poisoned_splits(splits, fake.rows)
    model, info = train_model("popularity", poisoned, seed=0, defense="detect-and-drop",
                              defense_options={"detector": "degsim", "flag_fraction": 0.2})
    assert info["dropped_users"] == round(0.2 * poisoned["train"].train_interactions["user_id"].nunique())
    assert 0 <= info["dropped_fake_users"] <= fake.n_users and info["dropped_rows"] > 0
    with pytest.raises(ValueError, match="flag_fraction"):
        create_defense("detect-and-drop", flag_fraction=1.0)
    with pytest.raises(ValueError, match="detector"):
        create_defense("detect-and-drop", detector="nope")


@pytest.mark.parametrize("kwargs, option", [
    ({"fake_users": 0}, "fake_users"), ({"fake_users": 1}, "fake_users"), ({"fake_users": -0.2}, "fake_users"),
    ({"fake_users": 1.5}, "fake_users"), ({"filler": 0}, "filler"), ({"selected_sharex": 1}, "selected_sharex"),
])
def test_bad_options_name_the_option(kwargs, option):
    with pytest.raises(PoisoningOptionError, match=f"option {option}"):
        create("bandwagon", **kwargs).generate(pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "rating": [1.0],
                                                             "timestamp": [1]}), ["x"])


def test_unknown_target_and_oversized_filler_name_the_option(splits):
    train = splits["train"].train_interactions
    with pytest.raises(PoisoningOptionError, match="option targets: unknown target item.*'nope'"):
        create("random").generate(train, ["nope"], catalog=splits["train"].item_ids)
    with pytest.raises(PoisoningOptionError, match="option filler: 59 filler items.*only 58"):
        create("random", filler=59).generate(train, select_targets(train, 2, 0), catalog=splits["train"].item_ids)
    with pytest.raises(ValueError, match="option targets"):
        select_targets(train, 0)


def test_cli_errors_are_one_line_and_name_the_flag(capsys):
    from benchmark.cli import main

    for argv, flag in ((["--fake-users", "1.0"], "--fake-users"), (["--fake-users", "0"], "--fake-users"),
                       (["--targets", "0"], "--targets"), (["--filler", "0"], "--filler")):
        code = main(["attack", "--dataset", "unused", "--task", "ranking", "--model", "popularity",
                     "--attack", "bandwagon", *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith(f"recrobust: error: {flag}") and "\n" not in err
    code = main(["attack", "--dataset", "unused", "--task", "ranking", "--model", "popularity", "--attack", "rating-flip",
                 "--fake-users", "0.1"])
    assert code == 2 and "only for poisoning attacks" in capsys.readouterr().err


def test_suite_checks_poisoning_options():
    from benchmark.suite import SuiteError, load_suite, parse_suite, check_suite, Catalog

    raw = {"name": "p", "version": "1", "datasets": ["movielens-100k"], "tasks": ["ranking"], "seeds": [0],
           "models": ["popularity"],
           "attacks": [{"name": "bandwagon", "options": {"fake_users": 1.5, "filler": 0},
                        "sweep": {"param": "fake_users", "values": [0.01, 2]}}]}
    with pytest.raises(SuiteError) as err:
        check_suite(parse_suite(raw, "p.yaml"), Catalog.from_registries())
    text = str(err.value)
    assert "attacks/0/options/fake_users" in text and "attacks/0/options/filler" in text
    assert "fake_users values must be fractions" in text
    quick = load_suite("quick")
    poisoning = [a for a in quick.attacks if a.threat_model == "poisoning"]
    assert {a.name for a in poisoning} == {"bandwagon"} and all(a.tasks == ("ranking",) for a in poisoning)


@pytest.mark.slow  # ~25 s: a real suite run with poisoning cells, then the leaderboard
def test_suite_poisoning_cells_are_schema_valid_and_reach_the_board(shared_data, tmp_path):
    import yaml

    from benchmark import records as rec
    from benchmark.leaderboard import build_leaderboard
    from benchmark.runner import run_suite
    from tests.test_runner import _ml_slice

    data = _ml_slice(shared_data, tmp_path / "ml-slice")
    suite_file = tmp_path / "p.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "p", "version": "1", "datasets": [str(data)], "tasks": ["ranking"], "seeds": [0],
        "sizes": {"max_eval_examples": 40, "num_negatives": 49}, "models": ["popularity", "itemknn"],
        "defenses": ["none", {"name": "detect-and-drop", "options": {"detector": "rdma"}}],
        "attacks": [{"name": "bandwagon", "options": {"fake_users": 0.05, "targets": 4},
                     "sweep": {"param": "fake_users", "values": [0.02, 0.05]}}]}))
    summary = run_suite(str(suite_file), tmp_path / "r", progress=False)
    assert summary.ok and summary.completed == summary.total == 12, summary.format()
    records = [rec.read_record(p) for p in (tmp_path / "r" / "p" / "records").glob("*.json")]
    attacks = [r for r in records if r["kind"] == "attack"]
    assert len(attacks) == 8 and all(not rec.validate_record(r) for r in records)
    for r in attacks:
        m = r["metrics"]
        assert {"target_hr@10", "target_hr@50", "target_ndcg@10", "ndcg@10"} <= set(m["robust"]) <= set(m["clean"]) | set(m["robust"])
        assert m["attack"]["fake_users"] == max(1, round(r["cell"]["attack"]["options"]["fake_users"] * 60))
        assert set(m["attack"]["detection"]) == set(DETECTORS)
    md = build_leaderboard(tmp_path / "r", fmt="md", out_dir=tmp_path / "board")
    assert "## Poisoning: ml-slice" in md and "bandwagon (5%)" in md and "detect-and-drop" in md
    assert "\\toprule" in (tmp_path / "board" / "leaderboard.tex").read_text()
    assert list((tmp_path / "board" / "plots").glob("*poisoning-bandwagon-vs-fake-users.png"))
