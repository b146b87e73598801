"""Plug-ins through entry points: the README's worked example, installed as a package
(a dist-info folder on sys.path, as pip would leave it), shows up in `recrobust list` and
runs in a suite with the real pipeline."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from benchmark import records as rec
from benchmark.cli import main
from benchmark.runner import run_suite

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Extending RecRobust"


def readme_files() -> dict[str, str]:
    """{path: content} of the code blocks marked ``<!-- file: PATH -->`` in the README section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + 1)
    section = text[start: end if end != -1 else None]
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", section, flags=re.S))


@pytest.fixture
def example_plugin(tmp_path, monkeypatch):
    """The README's package, "installed": its files plus a dist-info with its entry points,
    and one more entry point for a recommender (a test model)."""
    files = readme_files()
    assert {"recrobust_example/attack.py", "recrobust_example/defense.py", "recrobust_example/data.py",
            "pyproject.toml"} <= set(files)
    site = tmp_path / "site"
    for rel, content in files.items():
        if rel != "pyproject.toml":
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / rel).write_text(content, encoding="utf-8")
    (site / "recrobust_example" / "__init__.py").write_text("")
    project = tomllib.loads(files["pyproject.toml"])["project"]
    groups = dict(project["entry-points"])
    groups["recrobust.recommenders"] = {"plug-rec": "tests.test_conformance:Conforming"}
    dist = site / f"recrobust_example-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) + "\n"
        for group, eps in groups.items()))
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m == "recrobust_example" or m.startswith("recrobust_example.")]:
        del sys.modules[name]


def _ml_slice(shared_data: Path, folder: Path, users: int = 40) -> Path:
    import pandas as pd

    src = shared_data / "ml-latest-small"
    folder.mkdir(parents=True)
    ratings = pd.read_csv(src / "ratings.csv")
    ratings = ratings[ratings.userId.isin(sorted(ratings.userId.unique())[:users])]
    ratings.to_csv(folder / "ratings.csv", index=False)
    movies = pd.read_csv(src / "movies.csv")
    movies[movies.movieId.isin(ratings.movieId)].to_csv(folder / "movies.csv", index=False)
    return folder


def _listed(capsys, *argv) -> dict[str, dict]:
    assert main(list(argv) + ["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    return {r.get("name") or r.get("attack") or r.get("defense") or r.get("model"): r for r in rows}


def test_plugins_appear_in_the_listings(example_plugin, capsys):
    attacks = _listed(capsys, "list", "attacks")
    assert attacks["profile-hide"]["threat model"] == "profile"
    assert "delete history entries" in attacks["profile-hide"]["applies to"]
    defenses = _listed(capsys, "list", "defenses")
    assert defenses["train-subsample"]["applies to"] == "all models"
    models = _listed(capsys, "list", "models")
    assert models["plug-rec"]["class"] == "tests.test_conformance:Conforming"
    assert main(["data", "list", "--json"]) == 0
    assert "my-ratings" in {r["name"] for r in json.loads(capsys.readouterr().out)}


def test_a_plugin_cannot_shadow_a_builtin(example_plugin):
    from attacks import registry

    dist = next(example_plugin.glob("*.dist-info"))
    (dist / "entry_points.txt").write_text("[recrobust.attacks]\nprofile-swap = recrobust_example.attack:ProfileHide\n")
    assert registry.resolve("profile-swap").__name__ == "ProfileSwap"


def test_plugin_attack_defense_and_dataset_run_in_a_suite(example_plugin, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_RATINGS_DIR", str(_ml_slice(shared_data, tmp_path / "ratings")))
    suite_file = tmp_path / "plugins.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "plugins", "version": "1", "datasets": ["my-ratings"], "tasks": ["preference"], "seeds": [0],
        "sizes": {"max_eval_examples": 30, "max_attack_examples": 6},
        "models": ["itemknn"], "defenses": ["none", {"name": "train-subsample", "options": {"fraction": 0.5}}],
        "attacks": [{"name": "profile-hide", "budget": 2}]}))
    summary = run_suite(str(suite_file), tmp_path / "results", progress=False)
    assert summary.ok and summary.total == 4, summary.format()
    records = [rec.read_record(p) for p in (tmp_path / "results" / "plugins" / "records").glob("*.json")]
    trains = [r for r in records if r["kind"] == "train"]
    assert {r["cell"]["defense"]["name"] for r in trains} == {"none", "train-subsample"}
    sub = next(r for r in trains if r["cell"]["defense"]["name"] == "train-subsample")
    full = next(r for r in trains if r["cell"]["defense"]["name"] == "none")
    assert sub["training"]["info"]["training_examples"] > 0  # the plug-in defense's log, in the record
    assert full["training"]["info"] == {}
    attacked = [r for r in records if r["kind"] == "attack"]
    assert len(attacked) == 2 and all(r["cell"]["attack"]["name"] == "profile-hide" for r in attacked)
    assert all(r["metrics"]["attack"]["examples"] == 6 for r in attacked)
