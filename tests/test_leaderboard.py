"""Leaderboards: statistics (Holm, McNemar, Wilcoxon, bootstrap), tables in four formats, plots."""

from __future__ import annotations

import io
import math
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, wilcoxon

from benchmark.leaderboard import (bootstrap_ci, build_leaderboard, build_tables, collect, escape_html, escape_latex,
                                   escape_md, holm, mcnemar_exact, wilcoxon_paired, _paired)
from benchmark.metrics import auc
from benchmark.runner import run_suite
from benchmark.suite import check_suite, parse_suite
from tests.fake_pipeline import FakePipeline, toy_suite


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A two-seed fake run with enough examples for the defense effect to be significant."""
    root = tmp_path_factory.mktemp("results")
    pipeline = FakePipeline(examples=300)
    suite = check_suite(parse_suite(toy_suite(seeds=[0, 1], sizes={"max_eval_examples": 300, "max_attack_examples": 300}),
                                    "toy.yaml"), pipeline.catalog())
    assert run_suite(suite, root, pipeline=pipeline, progress=False, code_version="t").ok
    return root


def test_holm_matches_hand_computation():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.2, 0.9, 0.6]) == pytest.approx([0.6, 1.0, 1.0])  # 0.6*2 capped at 1; monotone after


def test_mcnemar_exact_is_a_binomial_test_on_discordant_pairs():
    a = np.array([1] * 10 + [0] * 2 + [1] * 20 + [0] * 5)
    b = np.array([0] * 10 + [1] * 2 + [1] * 20 + [0] * 5)
    assert mcnemar_exact(a, b) == pytest.approx(binomtest(10, 12, 0.5).pvalue)
    assert mcnemar_exact(a, a) == 1.0


def test_wilcoxon_paired_matches_scipy_and_handles_all_ties():
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50)
    assert wilcoxon_paired(a, b) == pytest.approx(wilcoxon(a - b).pvalue)
    assert wilcoxon_paired(a, a) == 1.0


def test_pairing_matches_examples_by_seed_and_id_not_position():
    a = [(0, 0.5, {"ids": ["u1", "u2", "u3"], "values": [1.0, 0.0, 1.0]})]
    b = [(0, 0.5, {"ids": ["u3", "u1", "u9"], "values": [0.0, 1.0, 1.0]})]
    x, y = _paired(a, b)
    assert x.tolist() == [1.0, 1.0] and y.tolist() == [1.0, 0.0]  # u1, u3


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    values = (rng.random(400) < 0.7).astype(float)
    lo, hi = bootstrap_ci([{"values": values}], "mean", 1000, seed=0)
    assert lo < values.mean() < hi and hi - lo < 0.15
    assert (lo, hi) == bootstrap_ci([{"values": values}], "mean", 1000, seed=0)
    y, p = rng.integers(0, 2, 300), rng.random(300)
    lo, hi = bootstrap_ci([{"labels": y, "scores": p}], "auc", 500, seed=0)
    assert lo < auc(y, p) < hi


def test_escaping_neutralises_markup():
    assert "<script" not in escape_md("<script>alert(1)</script>") and "&lt;script" in escape_md("<script>")
    assert escape_md("a|b") == "a\\|b" and escape_md("[x](javascript:1)").startswith("\\[x\\]")
    latex = escape_latex(r"\input{/etc/passwd} $x$ 100% #1 a_b ^~")
    assert "\\input" not in latex.replace(r"\textbackslash{}", "") and r"\{" in latex and r"\%" in latex
    assert escape_html('<img src=x onerror="1">') == "&lt;img src=x onerror=&quot;1&quot;&gt;"


def test_tables_have_model_defense_rows_attack_columns_and_significance(results):
    tables = build_tables(collect(results), n_boot=200)
    assert [(t.dataset, t.task) for t in tables] == [("toy-a", "preference"), ("toy-a", "ranking")]
    pref = tables[0]
    assert {(r["model"], r["defense"]) for r in pref.rows} == {
        (m, d) for m in ("popularity", "bpr-mf") for d in ("none", "profile-augment")}
    assert pref.attacks == ["profile-swap", "rating-flip", "embedding-pgd"]  # sweep cells are not columns
    assert pref.common == ["profile-swap", "rating-flip"]  # embedding-pgd: differentiable models only
    s = pref.stats
    # Two seeds: mean and std over seeds.
    swap = s[(s.column == "attack:profile-swap")]
    assert (swap.n_seeds == 2).all() and swap["std"].notna().all()
    # The fake defense halves the attack's effect: significant for profile-swap, with an exact McNemar test.
    defended = swap[swap.row.str.endswith("profile-augment")]
    assert (defended.test == "mcnemar-exact").all() and (defended.p_holm < 0.05).any()
    assert (defended.p_holm >= defended.p_value).all()
    # Ranks follow mean robust.
    mr = s[s.column == "mean_robust"].sort_values("mean", ascending=False)
    assert mr["rank"].tolist() == [1, 2, 3, 4]
    ranking = tables[1]
    assert ranking.stats[ranking.stats.test.notna()].test.eq("wilcoxon").all()


def test_markdown_latex_html_csv(results, tmp_path):
    md = build_leaderboard(results, fmt="md", out_dir=tmp_path / "lb", n_boot=200)
    assert "### toy-a — preference" in md and "| Model" in md and "**" in md and "†" in md
    assert "seeds 0, 1" in md and "95% bootstrap" in md
    written = {p.name for p in (tmp_path / "lb").iterdir()}
    assert {"leaderboard.md", "leaderboard.tex", "leaderboard.csv", "leaderboard.html", "plots"} <= written
    tex = (tmp_path / "lb" / "leaderboard.tex").read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\textbf{", r"$^\dagger$", r"\caption{toy-a, preference task"):
        assert token in tex
    # Per table: the leaderboard and its per-attack table (same-example clean, robust, ASR, drop).
    assert tex.count(r"\begin{table}") == 4 and tex.count(r"\end{tabular}") == 4
    assert tex.count(r"\label{tab:toy-v1-toy-a-preference") == 2
    df = pd.read_csv(io.StringIO((tmp_path / "lb" / "leaderboard.csv").read_text()))
    assert {"mean", "std", "ci_low", "ci_high", "p_value", "p_holm", "significant", "rank"} <= set(df.columns)
    row = df[(df.model == "bpr-mf") & (df.defense == "none") & (df.column == "clean:auc") & (df.task == "preference")]
    assert len(row) == 1 and row.ci_low.iloc[0] < row["mean"].iloc[0] < row.ci_high.iloc[0]

    class Check(HTMLParser):
        tags: list = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

    parser = Check()
    parser.feed((tmp_path / "lb" / "leaderboard.html").read_text())
    assert parser.tags.count("table") == 4 and "script" not in parser.tags
    # The same records give the same text (seeded bootstrap).
    assert build_leaderboard(results, fmt="md", n_boot=200) == md


def test_plots_budget_epsilon_and_rounds(results, tmp_path):
    # A figure of a table no longer on the board (left by an earlier build) is removed.
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "toy-gone-preference-clean-vs-robust.png").write_bytes(b"old")
    build_leaderboard(results, fmt="md", out_dir=tmp_path, n_boot=100)
    plots = {p.name for p in (tmp_path / "plots").iterdir()}
    assert "toy-gone-preference-clean-vs-robust.png" not in plots
    for stem in ("toy-toy-a-preference-profile-swap-vs-budget", "toy-toy-a-ranking-embedding-pgd-vs-epsilon",
                 "toy-toy-a-preference-defense-rounds"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= plots
    assert all((tmp_path / "plots" / p).stat().st_size > 1000 for p in plots)


def test_empty_results_and_unknown_format(tmp_path):
    assert "No result records" in build_leaderboard(tmp_path, fmt="md")
    with pytest.raises(ValueError, match="format"):
        build_leaderboard(tmp_path, fmt="docx")


def test_suite_filter_ignores_other_protocol_versions(results, tmp_path):
    import yaml

    suite_file = tmp_path / "toy.yaml"
    suite_file.write_text(yaml.safe_dump(toy_suite(seeds=[0, 1], version="2")))
    md = build_leaderboard(results, suite=str(suite_file), fmt="md")
    assert "No result records" in md and "other versions" in md
    assert "toy-a" in build_leaderboard(results, suite=None, fmt="csv")


def test_compressed_per_example_files_give_the_same_leaderboard(results, tmp_path):
    import shutil

    from benchmark import records as rec
    from benchmark.cli import main

    packed = tmp_path / "packed"
    shutil.copytree(results, packed)
    assert main(["compress-records", str(packed), "--min-bytes", "0"]) == 0
    files = list(packed.rglob("*.examples.jsonl*"))
    assert files and all(f.name.endswith(".xz") for f in files)
    for path, record in rec.load_records(packed, strict=True)[0]:  # sha256 of the xz checked
        original = rec.read_record(results / path.relative_to(packed))
        assert rec.read_examples(path, record) == rec.read_examples(results / path.relative_to(packed), original)
    assert build_leaderboard(packed, fmt="md") == build_leaderboard(results, fmt="md")
    again = tmp_path / "again"  # deterministic bytes: packing the same rows twice gives the same files
    shutil.copytree(results, again)
    main(["compress-records", str(again), "--min-bytes", "0"])
    assert sorted((f.name, f.read_bytes()) for f in again.rglob("*.xz")) == \
        sorted((f.name, f.read_bytes()) for f in packed.rglob("*.xz"))


def test_gzip_per_example_files_of_earlier_results_are_read_and_repacked(results, tmp_path):
    # Results committed before xz hold gzip rows: they are read as they are, and
    # compress-records repacks them as xz with the same rows.
    import gzip
    import hashlib
    import shutil

    from benchmark import records as rec
    from benchmark.cli import main

    old = tmp_path / "old"
    shutil.copytree(results, old)
    for path, record in rec.load_records(old, strict=True)[0]:
        pe = record.get("per_example")
        if not pe:
            continue
        plain = path.with_name(pe["file"])
        packed = gzip.compress(plain.read_bytes(), mtime=0)
        plain.with_name(plain.name + ".gz").write_bytes(packed)
        plain.unlink()
        record["per_example"] = {**pe, "file": plain.name + ".gz", "sha256": hashlib.sha256(packed).hexdigest()}
        rec.write_json_atomic(path, record)
    assert build_leaderboard(old, fmt="md") == build_leaderboard(results, fmt="md")
    assert main(["compress-records", str(old)]) == 0
    assert not list(old.rglob("*.gz")) and list(old.rglob("*.examples.jsonl.xz"))
    assert build_leaderboard(old, fmt="md") == build_leaderboard(results, fmt="md")


def test_a_column_added_to_the_same_suite_version_keeps_the_finished_cells(results, tmp_path):
    # Records of an earlier revision of the suite (same name and version) still count when
    # their cell is in the current grid unchanged; a cell whose options changed does not.
    import yaml

    board = collect(results, None)
    n_before = len(board.entries)
    grown = toy_suite(seeds=[0, 1], sizes={"max_eval_examples": 300, "max_attack_examples": 300})
    grown["attacks"].append({"name": "profile-delete", "budget": 2})
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(grown))
    assert len(collect(results, str(path)).entries) == n_before
    changed = dict(grown, attacks=[dict(grown["attacks"][0], budget=4), *grown["attacks"][1:]])
    path.write_text(yaml.safe_dump(changed))
    kept = collect(results, str(path))
    assert 0 < len(kept.entries) < n_before
    assert not any(e.record["cell"].get("attack", {}).get("label") == "profile-swap" for e in kept.entries)
    assert any("ignored" in p for p in kept.problems)


def test_a_model_dropped_from_a_task_leaves_the_board_though_the_protocol_hash_is_unchanged(results, tmp_path):
    # The protocol hash leaves the model rows out (submissions replace them), so a model's
    # `tasks:` narrowed in the suite keeps the hash; its finished cells of the dropped task
    # are no longer in the grid and must not stay on the board.
    import yaml

    suite = toy_suite(seeds=[0, 1], sizes={"max_eval_examples": 300, "max_attack_examples": 300})
    suite["models"] = [suite["models"][0], {**suite["models"][1], "tasks": ["preference"]}]
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(suite))
    kept = collect(results, str(path))
    dropped = suite["models"][1]["name"]
    assert kept.entries and not any(e.record["cell"]["task"] == "ranking" and e.record["cell"]["model"]["name"] == dropped
                                    for e in kept.entries)
    assert any(e.record["cell"]["task"] == "preference" and e.record["cell"]["model"]["name"] == dropped
               for e in kept.entries)
    assert any("no longer in its grid ignored" in p for p in kept.problems)
