"""Suites: the built-in YAML files, validation errors (before any work), sizes, expansion."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from benchmark.runner import run_suite
from benchmark.suite import (Catalog, SuiteError, check_suite, load_suite, parse_suite, resolve_sizes)
from tests.fake_pipeline import FakePipeline, fake_catalog, toy_suite

DEFENSES = ("none", "adv-augment", "embedding-at", "profile-augment", "detect-and-drop")


def _registry_catalog(full: bool) -> Catalog:
    catalog = Catalog.from_registries()
    if not full:  # the defenses catalog is built in another issue: check against the documented names
        catalog.defense_known = lambda name: name in DEFENSES
    return catalog


def _write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------- built-in suites


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_builtin_suites_name_registered_models_and_attacks(name):
    suite = load_suite(name, catalog=_registry_catalog(full=False))
    assert suite.builtin and suite.version and suite.checked
    assert suite.expand(_registry_catalog(full=False))


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_builtin_suites_pass_the_full_registry_check(name):
    if importlib.util.find_spec("attacks.defenses.catalog") is None:
        pytest.skip("the defenses catalog (attacks/defenses/catalog.py) has not landed yet")
    load_suite(name)


def test_quick_covers_what_the_issue_asks():
    suite = load_suite("quick", catalog=_registry_catalog(full=False))
    assert [d.name for d in suite.datasets] == ["movielens-100k"]
    assert set(suite.tasks) == {"preference", "ranking"} and len(suite.seeds) == 1
    names = {m.name for m in suite.models}
    assert {"popularity", "bpr-mf", "sasrec", "cross-encoder"} <= names
    ce = next(m for m in suite.models if m.name == "cross-encoder")
    assert ce.options["backbone"] == "minilm"
    assert "none" in {d.name for d in suite.defenses} and len(suite.defenses) >= 2
    main = suite.leaderboard_attacks()
    assert len(main) >= 5 and {a.threat_model for a in main} == {"profile", "text", "embedding", "poisoning"}
    groups = suite.expand(_registry_catalog(full=False))
    # Both tasks and every model actually get cells; BPR-MF and ItemKNN are also trained
    # with defenses (popularity ignores the profile: no defense applies to it). The
    # cross-encoder's and SASRec's defended copies are in `standard` only: each retrains the
    # model, and the two were 60 % of quick's time when it took 19 minutes.
    assert {g.train.task for g in groups} == {"preference", "ranking"}
    assert {g.train.model.name for g in groups} == names
    for m in names - {"popularity", "cross-encoder", "sasrec"}:
        assert {g.train.defense.name for g in groups if g.train.model.name == m} - {"none"}


def test_standard_is_the_full_protocol():
    from attacks import registry as attacks
    from recommenders.registry import BUILTIN

    suite = load_suite("standard", catalog=_registry_catalog(full=False))
    assert len(suite.datasets) == 3 and any(d.name.startswith("amazon") for d in suite.datasets)
    assert len(suite.seeds) == 3
    assert {m.name for m in suite.models} == set(BUILTIN)
    # Every attack that can run offline; the two that need a Hub masked LM are in `large`.
    hub_only = {"bae", "bert-attack"}
    assert {a.name for a in suite.attacks} == set(attacks.REGISTRY.names()) - hub_only
    assert {d.name for d in suite.defenses} == set(DEFENSES)
    assert {t.threat_model for t in suite.attacks} == {"text", "profile", "embedding", "poisoning"}


def test_large_validates_and_covers_every_model_attack_and_defense():
    from attacks import registry as attacks
    from recommenders.registry import BUILTIN

    suite = load_suite("large", catalog=_registry_catalog(full=False))
    assert {m.name for m in suite.models} == set(BUILTIN)
    assert {a.name for a in suite.attacks} == set(attacks.REGISTRY.names())
    assert {d.name for d in suite.defenses} == set(DEFENSES)
    assert "movielens-1m" in {d.name for d in suite.datasets}


def test_protocol_hash_ignores_models_but_not_the_protocol():
    suite = load_suite("quick", check_names=False)
    same = suite.with_models([{"name": "popularity"}])
    assert same.protocol_hash() == suite.protocol_hash()
    raw = dict(suite.raw, seeds=[1])
    assert parse_suite(raw).protocol_hash() != suite.protocol_hash()


# --------------------------------------------------------------------------- errors


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = _write(tmp_path, "name: x\nversion: '1'\ndatasets: [toy\nmodels: - a\n")
    with pytest.raises(SuiteError, match=r"s\.yaml:\d+:\d+: malformed YAML"):
        load_suite(str(path), catalog=fake_catalog())


@pytest.mark.parametrize("change, field", [
    (dict(seeds="zero"), "seeds"),
    (dict(tasks=["preference", "clustering"]), "tasks/1"),
    (dict(colour="red"), "colour"),
    (dict(attacks=[{"name": "profile-swap", "budget": -1}]), "attacks/0"),
    (dict(attacks=[{"name": "deepwordbug", "query_budget": 0}]), "attacks/0"),
    (dict(attacks=[{"name": "profile-swap", "scope": "everything"}]), "attacks/0"),
    (dict(sizes={"max_attack_examples": 0}), "sizes"),
    (dict(models=[]), "models"),
])
def test_schema_errors_name_the_field(tmp_path, change, field):
    path = _write(tmp_path, toy_suite(**change))
    with pytest.raises(SuiteError) as err:
        load_suite(str(path), catalog=fake_catalog())
    assert "s.yaml: at " in str(err.value) and field in str(err.value)


def test_unknown_names_are_all_reported_at_once(tmp_path):
    path = _write(tmp_path, toy_suite(datasets=["nosuch-data"], models=["popularity", "nosuch-model"],
                                      defenses=["none", "nosuch-defense"],
                                      attacks=[{"name": "profile-swap"}, {"name": "nosuch-attack"}]))
    with pytest.raises(SuiteError) as err:
        load_suite(str(path), catalog=fake_catalog())
    msg = str(err.value)
    for bit in ("datasets/0: unknown dataset 'nosuch-data'", "models/1: model 'nosuch-model'",
                "defenses/1: unknown defense 'nosuch-defense'", "attacks/1: unknown attack 'nosuch-attack'"):
        assert bit in msg


@pytest.mark.parametrize("attack, message", [
    ({"name": "profile-swap", "budget": 0}, "at least 1 edit"),
    ({"name": "embedding-pgd", "budget": 3}, "bounded by epsilon"),
    ({"name": "embedding-pgd", "options": {"epsilon": -0.1}}, "positive number"),
    ({"name": "profile-swap", "goal": "promote"}, "ranking task only"),
    ({"name": "profile-swap", "sweep": {"param": "budget", "values": [1, 2.5]}}, "integers"),
    ({"name": "profile-swap", "models": ["nosuch"]}, "not among the suite's models"),
])
def test_invalid_budgets_and_settings(tmp_path, attack, message):
    path = _write(tmp_path, toy_suite(attacks=[attack]))
    with pytest.raises(SuiteError, match=message):
        load_suite(str(path), catalog=fake_catalog())


def test_duplicate_labels_are_rejected():
    with pytest.raises(SuiteError, match="duplicate label 'profile-swap'"):
        parse_suite(toy_suite(attacks=["profile-swap", {"name": "profile-swap", "budget": 5}]))


def test_unknown_model_options_are_rejected_with_registry_catalog(tmp_path):
    path = _write(tmp_path, toy_suite(datasets=["movielens-100k"], models=[{"name": "bpr-mf", "options": {"factorz": 8}}],
                                      defenses=["none"], attacks=["profile-swap"]))
    with pytest.raises(SuiteError, match="does not take factorz"):
        load_suite(str(path), catalog=_registry_catalog(full=False))


def test_a_bad_suite_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(tmp_path / "train.log"))
    path = _write(tmp_path, toy_suite(attacks=[{"name": "profile-swap", "budget": 0}]))
    with pytest.raises(SuiteError):
        run_suite(str(path), tmp_path / "results", pipeline=FakePipeline(), progress=False)
    assert not (tmp_path / "results").exists() and not (tmp_path / "train.log").exists()
    with pytest.raises(SuiteError, match="no such suite"):
        run_suite("nosuch", tmp_path / "results", pipeline=FakePipeline())


# --------------------------------------------------------------------------- sizes and expansion


def test_sizes_resolve_defaults_suite_model_and_task():
    suite_sizes = {"max_eval_examples": {"preference": 500, "ranking": 100}, "max_attack_examples": 30}
    model_sizes = {"max_attack_examples": {"ranking": 5}}
    pref = resolve_sizes(suite_sizes, model_sizes, "preference")
    rank = resolve_sizes(suite_sizes, model_sizes, "ranking")
    assert pref == {"history_len": 10, "num_negatives": 99, "max_train_examples": None, "max_eval_examples": 500,
                    "max_attack_examples": 30}
    assert rank["max_eval_examples"] == 100 and rank["max_attack_examples"] == 5


def test_expansion_respects_capabilities_filters_and_sweeps():
    raw = toy_suite(models=["popularity", "bpr-mf", "cross-encoder"],
                    defenses=["none", {"name": "adv-augment", "models": ["cross-encoder"]}],
                    attacks=[{"name": "profile-swap", "budget": 2, "sweep": {"param": "budget", "values": [1, 2, 4]}},
                             {"name": "embedding-pgd"}, {"name": "deepwordbug", "tasks": ["preference"]}],
                    seeds=[0, 1])
    catalog = fake_catalog()
    suite = check_suite(parse_suite(raw), catalog)
    groups = suite.expand(catalog)
    by = {(g.train.task, g.train.model.label, g.train.defense.label, g.train.seed): [a.attack.label for a in g.attacks]
          for g in groups}
    assert len(by) == 2 * 2 * (1 + 1 + 2)  # tasks x seeds x (popularity, bpr-mf, cross-encoder x 2 defenses)
    assert by[("preference", "popularity", "none", 0)] == ["profile-swap", "profile-swap@budget=1", "profile-swap@budget=4"]
    assert "embedding-pgd" in by[("ranking", "bpr-mf", "none", 1)]
    assert "deepwordbug" in by[("preference", "cross-encoder", "adv-augment", 0)]
    assert "deepwordbug" not in by[("ranking", "cross-encoder", "none", 0)]
    sweep = next(a for a in suite.attacks if a.label == "profile-swap@budget=4")
    assert sweep.budget == 4 and sweep.sweep == {"of": "profile-swap", "param": "budget", "value": 4}


def test_sweep_models_restrict_only_the_sweep_cells():
    raw = toy_suite(models=["popularity", "bpr-mf"],
                    attacks=[{"name": "profile-swap", "budget": 2,
                              "sweep": {"param": "budget", "values": [1, 4], "models": ["bpr-mf"]}}])
    catalog = fake_catalog()
    groups = check_suite(parse_suite(raw), catalog).expand(catalog)
    by = {(g.train.task, g.train.model.label): [a.attack.label for a in g.attacks] for g in groups}
    assert by[("preference", "popularity")] == ["profile-swap"]
    assert by[("preference", "bpr-mf")] == ["profile-swap", "profile-swap@budget=1", "profile-swap@budget=4"]
    raw["attacks"][0]["sweep"]["models"] = ["bpr-mff"]
    with pytest.raises(SuiteError, match=r"attacks/0/sweep/models.*bpr-mff"):
        check_suite(parse_suite(raw), catalog)


def test_attack_that_applies_to_no_model_is_noted():
    catalog = fake_catalog()
    suite = check_suite(parse_suite(toy_suite(models=["popularity"], attacks=["profile-swap", "deepwordbug"])), catalog)
    assert any("deepwordbug" in n for n in suite.notes)


def test_an_attacks_defenses_list_restricts_it_to_those_training_cells():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite()
    raw["attacks"][0]["defenses"] = ["profile-augment"]  # profile-swap and its sweep
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    for group in suite.expand(catalog):
        labels = {c.attack.label.split("@")[0] for c in group.attacks}
        assert ("profile-swap" in labels) == (group.train.defense.label == "profile-augment")
    raw["attacks"][0]["defenses"] = ["apr"]
    with pytest.raises(SuiteError, match=r"at attacks/0/defenses: 'apr' not among the suite's defenses"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)


def test_an_attacks_datasets_list_restricts_it_to_those_datasets():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite(datasets=["toy-a", "toy-b"])
    raw["attacks"][1]["datasets"] = ["toy-b"]  # rating-flip
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    groups = suite.expand(catalog)
    assert {g.train.dataset.label for g in groups} == {"toy-a", "toy-b"}
    for group in groups:
        has = any(c.attack.label == "rating-flip" for c in group.attacks)
        assert has == (group.train.dataset.label == "toy-b" and group.train.task == "preference")
    raw["attacks"][1]["datasets"] = ["ml-1m"]
    with pytest.raises(SuiteError, match=r"at attacks/1/datasets: 'ml-1m' not among the suite's datasets"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)


def test_a_models_and_a_defenses_datasets_lists_restrict_their_cells():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite(datasets=["toy-a", "toy-b"])
    first = raw["models"][0]
    raw["models"][0] = {"name": first, "datasets": ["toy-a"]} if isinstance(first, str) else {**first, "datasets": ["toy-a"]}
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    label = suite.models[0].label
    groups = suite.expand(catalog)
    assert {g.train.dataset.label for g in groups if g.train.model.label == label} == {"toy-a"}
    assert {g.train.dataset.label for g in groups if g.train.model.label != label} == {"toy-a", "toy-b"}

    raw["defenses"][1]["datasets"] = ["toy-b"]  # profile-augment
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    pairs = {(g.train.defense.label, g.train.dataset.label) for g in suite.expand(catalog)}
    assert ("profile-augment", "toy-b") in pairs and ("profile-augment", "toy-a") not in pairs
    assert {("none", "toy-a"), ("none", "toy-b")} <= pairs

    raw["defenses"][1]["datasets"] = ["ml-1m"]
    with pytest.raises(SuiteError, match=r"at defenses/1/datasets: 'ml-1m' not among the suite's datasets"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)
    raw["defenses"] = ["none"]
    raw["models"][0]["datasets"] = ["ml-1m"]
    with pytest.raises(SuiteError, match=r"at models/0/datasets: 'ml-1m' not among the suite's datasets"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)


def test_a_defense_listed_again_under_its_label_is_scoped_per_model():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    augment = {"name": "profile-augment", "options": {"rounds": 2}}
    raw = toy_suite(datasets=["toy-a", "toy-b"],
                    defenses=["none", {**augment, "models": ["popularity"]},
                              {**augment, "models": ["bpr-mf"], "datasets": ["toy-b"]}])
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    defended = {(g.train.model.label, g.train.dataset.label, g.train.task) for g in suite.expand(catalog)
                if g.train.defense.label == "profile-augment"}
    assert defended == {("popularity", d, t) for d in ("toy-a", "toy-b") for t in ("preference", "ranking")} | \
        {("bpr-mf", "toy-b", t) for t in ("preference", "ranking")}

    # Both entries claiming BPR-MF on toy-b: one cell under two entries.
    raw["defenses"][1]["models"] = ["popularity", "bpr-mf"]
    with pytest.raises(SuiteError, match=r"two entries labelled 'profile-augment' both apply to bpr-mf on toy-b"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)
    # Same label, other options: two different defenses need two labels.
    raw["defenses"][1] = {**augment, "models": ["popularity"], "options": {"rounds": 3}}
    with pytest.raises(SuiteError, match=r"at defenses/2: duplicate label 'profile-augment'"):
        parse_suite(raw, "toy.yaml")


def test_a_submission_gets_the_union_of_a_per_model_defenses_scopes():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import check_suite, parse_suite

    catalog = FakePipeline().catalog()
    augment = {"name": "profile-augment", "options": {"rounds": 2}}
    raw = toy_suite(datasets=["toy-a", "toy-b", "toy-c"],
                    defenses=["none", {**augment, "models": ["bpr-mf"], "datasets": ["toy-a"]},
                              {**augment, "models": ["bpr-mf"], "datasets": ["toy-b"]}])
    ours = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    sub = ours.for_submission({"name": "bpr-mf", "label": "sub"}, catalog.model_capabilities("bpr-mf"),
                              catalog.model_capabilities)
    sub = check_suite(sub, catalog)
    assert [d.label for d in sub.defenses] == ["none", "profile-augment"]
    assert {g.train.dataset.label for g in sub.expand(catalog) if g.train.defense.label == "profile-augment"} == \
        {"toy-a", "toy-b"}
    assert sub.identity() == ours.identity()


def test_an_attacks_seeds_list_runs_it_at_those_seeds_only():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite(seeds=[0, 1, 2])
    raw["attacks"][0]["seeds"] = [0]  # profile-swap and its budget curve
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    groups = suite.expand(catalog)
    assert {g.train.seed for g in groups} == {0, 1, 2}  # every model still trains at every seed
    for group in groups:
        swaps = {c.attack.label for c in group.attacks if c.attack.label.startswith("profile-swap")}
        assert swaps == ({"profile-swap", "profile-swap@budget=1", "profile-swap@budget=5"}
                         if group.train.seed == 0 else set())
        assert any(c.attack.label == "embedding-pgd" for c in group.attacks) == (group.train.model.label == "bpr-mf")
    raw["attacks"][0]["seeds"] = [0, 7]
    with pytest.raises(SuiteError, match=r"at attacks/0/seeds: 7 not among the suite's seeds \[0, 1, 2\]"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)


def test_an_attack_listed_again_under_its_label_is_scoped_per_model():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    flip = {"name": "rating-flip", "budget": 2}
    raw = toy_suite(attacks=[{**flip, "models": ["popularity"]},
                             {**flip, "models": ["bpr-mf"], "tasks": ["preference"]}])
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    flipped = {(g.train.model.label, g.train.task, g.train.defense.label) for g in suite.expand(catalog)
               for c in g.attacks if c.attack.label == "rating-flip"}
    assert flipped == {("popularity", t, d) for t in ("preference", "ranking") for d in ("none", "profile-augment")} | \
        {("bpr-mf", "preference", d) for d in ("none", "profile-augment")}
    assert [a.label for a in suite.leaderboard_attacks()] == ["rating-flip"]  # one column
    # Both entries claiming BPR-MF's preference cells.
    raw["attacks"][0]["models"] = ["popularity", "bpr-mf"]
    with pytest.raises(SuiteError, match=r"two entries labelled 'rating-flip' both apply to bpr-mf on toy-a"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)
    # Same label, another budget: a different attack needs its own label.
    raw["attacks"][1] = {**flip, "budget": 3, "models": ["bpr-mf"]}
    with pytest.raises(SuiteError, match=r"at attacks/1: duplicate label 'rating-flip'"):
        parse_suite(raw, "toy.yaml")


def test_a_submission_gets_the_union_of_a_per_model_attacks_scopes():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import check_suite, parse_suite

    catalog = FakePipeline().catalog()
    flip = {"name": "rating-flip", "budget": 2}
    raw = toy_suite(datasets=["toy-a", "toy-b"],
                    attacks=[{**flip, "models": ["bpr-mf"], "datasets": ["toy-a"], "tasks": ["preference"]},
                             {**flip, "models": ["bpr-mf"], "datasets": ["toy-b"]}])
    ours = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    sub = check_suite(ours.for_submission({"name": "bpr-mf", "label": "sub"}, catalog.model_capabilities("bpr-mf"),
                                          catalog.model_capabilities), catalog)
    assert [a.label for a in sub.attacks] == ["rating-flip"]
    assert {(g.train.dataset.label, g.train.task) for g in sub.expand(catalog) if g.attacks} == \
        {(d, t) for d in ("toy-a", "toy-b") for t in ("preference", "ranking")}
    assert sub.identity() == ours.identity()


def test_a_defenses_seeds_list_trains_its_copies_at_those_seeds_only():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite(seeds=[0, 1, 2])
    raw["defenses"][1]["seeds"] = [0]
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    cells = {(g.train.defense.label, g.train.seed) for g in suite.expand(catalog)}
    assert cells == {("none", s) for s in (0, 1, 2)} | {("profile-augment", 0)}
    raw["defenses"][1]["seeds"] = [3]
    with pytest.raises(SuiteError, match=r"at defenses/1/seeds: 3 not among the suite's seeds \[0, 1, 2\]"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)


def test_a_models_seeds_list_trains_and_attacks_it_at_those_seeds_only():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite(seeds=[0, 1, 2])
    raw["models"][1]["seeds"] = [0]  # bpr-mf
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    seeds = {(g.train.model.label, g.train.seed) for g in suite.expand(catalog)}
    assert seeds == {("popularity", s) for s in (0, 1, 2)} | {("bpr-mf", 0)}
    raw["models"][1]["seeds"] = [5]
    with pytest.raises(SuiteError, match=r"at models/1/seeds: 5 not among the suite's seeds"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)


def test_a_datasets_tasks_list_runs_only_those_tasks_on_it():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite(datasets=["toy-a", {"name": "toy-b", "tasks": ["ranking"]}])
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    cells = {(g.train.dataset.label, g.train.task) for g in suite.expand(catalog)}
    assert cells == {("toy-a", "preference"), ("toy-a", "ranking"), ("toy-b", "ranking")}
    # The training cell's config (and so its id) does not carry the list.
    toy_b = next(g.train for g in suite.expand(catalog) if g.train.dataset.label == "toy-b")
    assert "tasks" not in toy_b.config("f")["dataset"]
    raw["tasks"] = ["preference"]
    with pytest.raises(SuiteError, match=r"at datasets/1/tasks: task\(s\) ranking not in the suite's tasks"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)


def test_a_sweeps_datasets_list_runs_the_curve_on_those_datasets_only():
    from tests.fake_pipeline import FakePipeline, toy_suite
    from benchmark.suite import SuiteError, check_suite, parse_suite

    catalog = FakePipeline().catalog()
    raw = toy_suite(datasets=["toy-a", "toy-b"])
    raw["attacks"][0]["sweep"]["datasets"] = ["toy-b"]  # profile-swap's budget curve
    suite = check_suite(parse_suite(raw, "toy.yaml"), catalog)
    for group in suite.expand(catalog):
        labels = {c.attack.label for c in group.attacks}
        assert "profile-swap" in labels  # the attack itself runs everywhere
        assert ("profile-swap@budget=1" in labels) == (group.train.dataset.label == "toy-b")
    raw["attacks"][0]["sweep"]["datasets"] = ["ml-1m"]
    with pytest.raises(SuiteError, match=r"at attacks/0/sweep/datasets: 'ml-1m' not among the suite's datasets"):
        check_suite(parse_suite(raw, "toy.yaml"), catalog)
