"""Declared options (benchmark.options): defaults, one-line errors for unknown names, listing."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from benchmark.options import Options, option


@dataclass
class _Demo(Options):
    window: int = option(16, "examples in flight")
    scale: list = option([1.0, 5.0], "rating scale")


def test_parse_fills_defaults_and_copies_mutable_ones():
    a, b = _Demo.parse("demo"), _Demo.parse("demo", {"window": 4})
    assert (a.window, b.window, a["scale"], b.get("scale")) == (16, 4, [1.0, 5.0], [1.0, 5.0])
    a.scale.append(9.0)
    assert b.scale == [1.0, 5.0] and _Demo.defaults() == {"window": 16, "scale": [1.0, 5.0]}
    assert [d["name"] for d in _Demo.describe()] == ["window", "scale"] and _Demo.describe()[0]["doc"]


def test_unknown_option_is_one_line_with_the_component_a_close_match_and_the_valid_names():
    with pytest.raises(ValueError) as err:
        _Demo.parse("attack 'demo'", {"windw": 3})
    message = str(err.value)
    assert "\n" not in message
    assert message == "attack 'demo': unknown option 'windw' (did you mean 'window'?); valid options: scale, window"


@pytest.mark.parametrize("make, message", [
    (lambda: __import__("recommenders.registry", fromlist=["create"]).create("itemknn", neighbours=5),
     "model 'itemknn': unknown option 'neighbours' (did you mean 'neighbors'?)"),
    (lambda: __import__("attacks.registry", fromlist=["create"]).create("profile-swap", pool_sise=5),
     "attack 'profile-swap': unknown option 'pool_sise' (did you mean 'pool_size'?)"),
    (lambda: __import__("attacks.defenses.registry", fromlist=["create"]).create("profile-augment", ration=1),
     "defense 'profile-augment': unknown option 'ration' (did you mean 'ratio'?)"),
])
def test_components_reject_unknown_options_by_name(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        make()


def test_list_shows_declared_options(capsys):
    from benchmark.cli import main

    assert main(["list", "defenses", "--options", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ratio = next(r for r in rows if r["defense"] == "profile-augment" and r["option"] == "ratio")
    assert ratio["default"] == 0.5 and ratio["type"] == "float" and ratio["doc"]
