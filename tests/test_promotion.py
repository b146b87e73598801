"""Cross-user item-text promotion (item-promotion): only the target's text changes, the word
and query budgets hold, one seed gives one result, exposure is counted right, the search
never ends below where it started, and the runner records it (unavailable for classic models)."""

from __future__ import annotations

import numpy as np
import pytest

from attacks.base import AttackUnavailable
from attacks.poisoning.protocol import eligible_pairs, target_ranks
from attacks.promotion import protocol
from attacks.promotion.base import PromotionOptionError
from attacks.registry import create
from benchmark.experiment import prepare_task, run_promotion, train_model
from recommenders.llm.cross_encoder import CrossEncoder
from tests.helpers import make_dataset

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = dict(backbone="tiny-bert", backbone_config={"initializer_range": 0.3, "vocab_size": 600}, epochs=1,
            lr=1e-9, batch_size=16, max_length=160, max_train_examples=16, progress=False)
OPTIONS = {"targets": 3, "users": 8, "word_budget": 2}


class RecordingCrossEncoder(CrossEncoder):
    """The tiny cross-encoder, keeping every (profile text, candidate text) pair it scores."""

    name = "test-recording-cross-encoder"

    def __init__(self, **options):
        super().__init__(**options)
        self.scored: list[tuple[str, str]] = []

    def score_text(self, profile_texts, candidate_texts):
        self.scored.extend(zip(profile_texts, candidate_texts))
        return super().score_text(profile_texts, candidate_texts)


@pytest.fixture(scope="module")
def splits():
    return prepare_task(make_dataset(n_users=40, n_items=60, per_user=12), "ranking", seed=0, num_negatives=20,
                        history_len=3)


@pytest.fixture(scope="module")
def model(splits):
    return RecordingCrossEncoder(**TINY).fit(splits["train"], seed=0)


@pytest.fixture(scope="module")
def result(model, splits):
    model.invalidate_cache()
    model.scored.clear()
    return run_promotion(model, splits, "item-promotion", seed=0, options=OPTIONS, query_budget=40, progress=False)


def _strip(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("seconds", "stage_seconds")}


def test_only_the_target_text_changes(model, splits, result):
    from textattack.shared import AttackedText

    renderer = model.renderer
    targets = set(result.summary["targets"])
    catalog_texts = {renderer.candidate_text(i) for i in splits["train"].item_ids if i not in targets}
    originals = {t["target_item"]: t["original_text"] for t in result.per_target}
    profiles = {renderer.render(e.profile, e.candidates[0]).profile_text for e in splits["test"].examples}
    for profile, candidate in model.scored:
        assert profile in profiles  # histories are never edited
        if candidate in catalog_texts:
            continue  # another item, its catalog text as it is
        # otherwise a variant of a target's text, within one word of budget per query
        near = [o for o in originals.values() if len(AttackedText(o).all_words_diff(AttackedText(candidate)))
                <= OPTIONS["word_budget"]]
        assert near, candidate
    for t in result.per_target:
        assert renderer.candidate_text(t["target_item"]) == t["original_text"]  # the model is not changed
        diff = AttackedText(t["original_text"]).all_words_diff(AttackedText(t["edited_text"]))
        assert len(diff) == t["words_changed"] == len(t["changed_words"])
    assert {r["target_item"] for r in result.rows} == targets


def test_word_and_query_budgets(model, splits, result):
    assert all(t["words_changed"] <= OPTIONS["word_budget"] for t in result.per_target)
    assert all(1 <= t["queries"] <= 40 for t in result.per_target) and result.summary["max_queries"] <= 40
    tight = run_promotion(model, splits, "item-promotion", seed=0, options={**OPTIONS, "word_budget": 1},
                          query_budget=4, progress=False)
    assert all(t["queries"] <= 4 and t["words_changed"] <= 1 for t in tight.per_target)


def test_deterministic_for_a_seed(model, splits, result):
    model.invalidate_cache()
    again = run_promotion(model, splits, "item-promotion", seed=0, options=OPTIONS, query_budget=40, progress=False)
    assert _strip(again.summary) == _strip(result.summary) and again.rows == result.rows


def test_search_never_ends_below_its_start(result, model, splits):
    for t in result.per_target:
        assert t["goal_score_after"] >= t["goal_score_before"]
        assert t["attacker_mean_rank_after"] <= t["attacker_mean_rank_before"]
    assert any(t["goal_score_after"] > t["goal_score_before"] for t in result.per_target)
    beam = run_promotion(model, splits, "item-promotion", seed=0, query_budget=60, progress=False,
                         options={**OPTIONS, "search": "beam", "beam_width": 2, "objective": "score"})
    assert all(t["goal_score_after"] >= t["goal_score_before"] for t in beam.per_target)
    assert all(t["words_changed"] <= OPTIONS["word_budget"] for t in beam.per_target)


def test_users_are_disjoint_and_never_touched_the_target(result, splits):
    test = splits["test"]
    for t in result.per_target:
        attackers, held = protocol.user_pools(test, t["target_item"], OPTIONS["users"], None, 0)
        assert not set(attackers) & set(held) and len(held) == t["eval_users"]
        assert set(attackers) | set(held) == {i for i, _ in eligible_pairs(test, [t["target_item"]])}


def test_before_ranks_are_the_poisoning_protocols(result, model, splits):
    test = splits["test"]
    target = result.per_target[0]["target_item"]
    _, held = protocol.user_pools(test, target, OPTIONS["users"], None, 0)
    rows = [r for r in result.rows if r["target_item"] == target]
    expected = target_ranks(model, test, [(i, target) for i in held])
    assert [r["rank_before"] for r in rows] == list(expected)
    assert result.per_target[0]["exposure@10_before"] == pytest.approx(np.mean(expected <= 10))


class TableScorer:
    def __init__(self, table):
        self.table = table

    def score(self, pairs):
        return np.array([self.table[p] for p in pairs], dtype=float)


def test_exposure_on_a_hand_made_case():
    assert protocol.exposure(np.array([1, 10, 11, 50])) == 0.5
    assert protocol.exposure(np.array([3]), k=2) == 0.0
    ctxs = [protocol.Context(0, "a", "pa", ("x", "y", "z")), protocol.Context(1, "b", "pb", ("x", "y", "z"))]
    table = {("pa", "x"): 0.5, ("pa", "y"): 0.2, ("pa", "z"): 0.9, ("pb", "x"): 0.1, ("pb", "y"): 0.1, ("pb", "z"): 0.3,
             ("pa", "T"): 0.5, ("pb", "T"): 0.4, ("pa", "T2"): 1.0, ("pb", "T2"): 0.0}
    own, ranks = protocol.score_rows(TableScorer(table), ctxs, ["T", "T2"])
    assert ranks.tolist() == [[3, 1], [1, 4]]  # a tie counts against the target (0.5 vs x's 0.5)
    assert own.tolist() == [[0.5, 0.4], [1.0, 0.0]]
    assert protocol.exposure(ranks[0], k=1) == 0.5 and protocol.exposure(ranks[1], k=3) == 0.5


def test_classic_models_and_bad_options(splits):
    from benchmark.runner import CellUnavailable, Pipeline
    from benchmark.suite import AttackSpec

    pop, _ = train_model("popularity", splits, seed=0)
    with pytest.raises(AttackUnavailable, match="text-input model"):
        run_promotion(pop, splits, "item-promotion", options=OPTIONS)

    class Cell:
        seed = 0

    with pytest.raises(CellUnavailable, match="text-input model"):
        Pipeline().poison(pop, splits, Cell(), AttackSpec("item-promotion", "item-promotion", options=OPTIONS))
    for kwargs, option in (({"users": 0}, "users"), ({"word_budget": 0}, "word_budget"), ({"recipe": "hotflip"}, "recipe"),
                           ({"objective": "x"}, "objective"), ({"wrod_budget": 2}, "wrod_budget")):
        with pytest.raises(PromotionOptionError, match=f"option {option}"):
            create("item-promotion", **kwargs)


def test_too_few_users_names_the_option(model, splits):
    with pytest.raises(ValueError, match="option users"):
        run_promotion(model, splits, "item-promotion", options={**OPTIONS, "users": 40}, progress=False)


def test_suite_checks_promotion_options():
    from benchmark.suite import Catalog, SuiteError, check_suite, parse_suite

    raw = {"name": "p", "version": "1", "datasets": ["movielens-100k"], "tasks": ["ranking"], "seeds": [0],
           "models": ["popularity"],
           "attacks": [{"name": "item-promotion", "query_budget": 500,
                        "options": {"targets": 0, "users": 0, "word_budget": 3, "serach": "beam"}}]}
    with pytest.raises(SuiteError) as err:
        check_suite(parse_suite(raw, "p.yaml"), Catalog.from_registries())
    text = str(err.value)
    assert "attacks/0/options/users" in text and "attacks/0/options/targets" in text and "options/serach" in text
    assert "options/word_budget" not in text
    raw["attacks"][0]["options"] = {"targets": 10, "users": 50, "word_budget": 3}
    suite = check_suite(parse_suite(raw, "p.yaml"), Catalog.from_registries())
    assert [a.threat_model for a in suite.attacks] == ["poisoning"]


def test_cli_errors_name_the_flag(capsys):
    from benchmark.cli import main

    for argv, flag in ((["--fake-users", "0.1"], "--fake-users"), (["--budget", "0"], "--budget"),
                       (["--targets", "0"], "--targets")):
        code = main(["attack", "--dataset", "unused", "--task", "ranking", "--model", "cross-encoder",
                     "--attack", "item-promotion", *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith(f"recrobust: error: {flag}") and "\n" not in err


@pytest.mark.slow  # ~20 s: a real suite run (tiny cross-encoder + popularity), then the leaderboard
def test_suite_cells_are_schema_valid_unavailable_for_classic_models_and_reach_the_board(shared_data, tmp_path):
    import yaml

    from benchmark import records as rec
    from benchmark.leaderboard import build_leaderboard
    from benchmark.runner import run_suite
    from tests.test_runner import _ml_slice

    data = _ml_slice(shared_data, tmp_path / "ml-slice", users=30)
    suite_file = tmp_path / "p.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "p", "version": "1", "datasets": [str(data)], "tasks": ["ranking"], "seeds": [0],
        "sizes": {"num_negatives": 19, "history_len": 3},
        "models": ["popularity", {"name": "cross-encoder", "label": "tiny-ce", "options": TINY}],
        "defenses": ["none"],
        "attacks": [{"name": "item-promotion", "query_budget": 30,
                     "options": {"targets": 2, "users": 5, "word_budget": 2}}]}))
    summary = run_suite(str(suite_file), tmp_path / "r", progress=False)
    assert summary.ok and summary.total == 4 and len(summary.unavailable) == 1, summary.format()
    records = [rec.read_record(p) for p in (tmp_path / "r" / "p" / "records").glob("*.json")]
    assert all(not rec.validate_record(r) for r in records)
    attacks = {r["cell"]["model"]["label"]: r for r in records if r["kind"] == "attack"}
    assert attacks["popularity"]["status"] == "unavailable" and "text-input" in attacks["popularity"]["error"]["message"]
    m = attacks["tiny-ce"]["metrics"]
    assert {"exposure@10", "target_hr@10", "target_hr@50", "target_ndcg@10"} <= set(m["clean"]) & set(m["robust"])
    assert len(m["attack"]["per_target"]) == 2 and m["attack"]["max_queries"] <= 30
    md = build_leaderboard(tmp_path / "r", fmt="md", out_dir=tmp_path / "board")
    assert "item-promotion: exposure@10 before" in md and "item-promotion: exposure@10 after" in md


def test_board_shows_exposure_columns_apart_from_the_fake_user_attacks():
    from benchmark.poisoning_board import PoisonTable, render_latex, render_markdown

    row = {"before": [0.05], "bandwagon": [0.08], ("item-promotion", "before"): [0.02, 0.04],
           ("item-promotion", "after"): [0.1, 0.2]}
    t = PoisonTable("s", "ml", ["bandwagon"], {"bandwagon": 0.03}, {"ce / none": row}, ["item-promotion"])
    md = render_markdown([t])
    assert "| model / defense | HR@10 before | bandwagon (3%) | NDCG@10 after | item-promotion: exposure@10 before " \
           "| item-promotion: exposure@10 after |" in md
    assert "| ce / none | 0.050 | 0.080 | - | 0.030 ± 0.010 | 0.150 ± 0.050 |" in md
    assert "0.030 $\\pm$ 0.010" in render_latex([t])
    assert "Exposure@10" not in render_markdown([PoisonTable("s", "ml", ["bandwagon"], {"bandwagon": 0.03},
                                                             {"ce / none": {"before": [0.05]}})])


def test_poisoning_columns_come_in_one_order_whatever_order_the_records_are_read_in():
    from types import SimpleNamespace

    from benchmark.leaderboard import Entry
    from benchmark.poisoning_board import poisoning_tables

    def entry(label, fake_users, hr):
        cell = {"task": "ranking", "dataset": {"label": "ml"}, "model": {"label": "bpr-mf"}, "defense": {"label": "none"},
                "attack": {"label": label, "threat_model": "poisoning", "options": {"fake_users": fake_users}}}
        record = {"kind": "attack", "cell": cell, "suite": {"name": "s"},
                  "metrics": {"clean": {"hr@10": 0.05}, "robust": {"hr@10": hr, "ndcg@10": 0.4}}}
        return Entry(path=None, record=record, source="")

    entries = [entry("pga", 0.01, 0.2), entry("random", 0.01, 0.1), entry("bandwagon-5", 0.05, 0.3),
               entry("average", 0.01, 0.1)]
    for order in (entries, entries[::-1]):
        [table] = poisoning_tables(SimpleNamespace(entries=order))
        assert table.attacks == ["average", "pga", "random", "bandwagon-5"]  # by budget, then label


def test_a_poisoning_column_that_shows_another_columns_figures_in_every_row_is_flagged():
    from benchmark.poisoning_board import PoisonTable, render_latex, render_markdown, same_columns

    rows = {"bpr-mf / none": {"before": [0.05], "random": [0.1, 0.2], "average": [0.1, 0.2], "pga": [0.3, 0.3]},
            "itemknn / none": {"before": [0.05], "random": [0.4, 0.5], "average": [0.4, 0.5], "pga": [0.4, 0.5]}}
    t = PoisonTable("s", "ml", ["average", "pga", "random"], {"average": 0.01, "pga": 0.01, "random": 0.01}, rows)
    assert same_columns(t) == [["average", "random"]]  # pga agrees on one row only
    rows["bpr-mf / none"]["random"] = [0.2, 0.10001]  # seeds in another order, a difference not shown
    assert same_columns(t) == [["average", "random"]]
    md = render_markdown([t])
    assert "| average (1%) ≡ | pga (1%) | random (1%) ≡ |" in md and "average and random show the same figures" in md
    assert "average = random: the same figures in every row" in render_latex([t])
    rows["itemknn / none"]["average"] = [0.4, 0.6]
    assert same_columns(t) == [] and "≡" not in render_markdown([t])


def test_preference_poisoning_gets_its_own_table_with_the_shift_and_its_interval():
    from types import SimpleNamespace

    from benchmark.leaderboard import Entry
    from benchmark.poisoning_board import poisoning_tables, render_latex, render_markdown

    def entry(model, seed, before, after, shift, ci, task="preference"):
        cell = {"task": task, "dataset": {"label": "ml"}, "model": {"label": model}, "defense": {"label": "none"},
                "seed": seed, "attack": {"label": "bandwagon-pref", "threat_model": "poisoning",
                                         "options": {"fake_users": 0.03}}}
        metrics = {"clean": {"target_like_prob": before, "auc": 0.76},
                   "robust": {"target_like_prob": after, "auc": 0.78},
                   "attack": {"prediction_shift": shift, "prediction_shift_ci": ci}}
        return Entry(path=None, record={"kind": "attack", "cell": cell, "suite": {"name": "s"}, "metrics": metrics},
                     source="")

    entries = [entry("ce", 0, 0.517, 0.556, 0.039, [0.032, 0.046]),
               entry("2t", 0, 0.5, 0.49, -0.01, [-0.02, 0.001]), entry("2t", 1, 0.5, 0.52, 0.03, [0.01, 0.05])]
    [table] = poisoning_tables(SimpleNamespace(entries=entries))
    assert table.task == "preference" and table.attacks == ["bandwagon-pref"]
    md = render_markdown([table])
    assert "## Poisoning: ml (s, preference), target like-probability after fake-user injection" in md
    assert "| model / defense | like-prob before | bandwagon-pref (3%) | bandwagon-pref: shift | AUC after |" in md
    assert "| ce / none | 0.517 | 0.556 | +0.039 [+0.032, +0.046] | 0.780 |" in md  # one seed: its interval
    assert "| 2t / none | 0.500 ± 0.000 | 0.505 ± 0.015 | +0.010 ± 0.020 | 0.780 ± 0.000 |" in md  # two: ± std
    assert "HR@10" not in md and "+0.039 [+0.032, +0.046]" in render_latex([table])
    # Ranking and preference poisoning of one dataset: two tables, not one mixed.
    ranking = entry("bpr-mf", 0, 0.0, 0.0, None, None, task="ranking")
    ranking.record["metrics"] = {"clean": {"target_hr@10": 0.05}, "robust": {"target_hr@10": 0.1, "ndcg@10": 0.4}}
    tables = poisoning_tables(SimpleNamespace(entries=entries + [ranking]))
    assert [(t.task, sorted(t.rows)) for t in tables] == [("preference", ["2t / none", "ce / none"]),
                                                          ("ranking", ["bpr-mf / none"])]
