"""The foundation's acceptance checks, through the real console entry point."""

import json

import pytest

from benchmark.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_movielens_100k_info_matches_published_offline(capsys):
    # No internet here: this goes through the RecBole-wheel fallback (from PyPI) when the
    # GroupLens zip cannot be fetched, and is cached after the first run.
    code, out, _ = run(capsys, "data", "info", "movielens-100k", "--json")
    assert code == 0
    info = json.loads(out)
    assert (info["users"], info["items"], info["interactions"]) == (943, 1682, 100000)
    assert info["published_check"]["status"] == "match"


def test_latest_small_and_gift_cards_match_published(capsys, shared_data):
    code, out, _ = run(capsys, "data", "info", str(shared_data / "ml-latest-small"), "--json")
    info = json.loads(out)
    assert code == 0 and (info["users"], info["items"], info["interactions"]) == (610, 9724, 100836)
    assert info["published_check"]["status"] == "match"
    code, out, _ = run(capsys, "data", "info", str(shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz"), "--json")
    info = json.loads(out)
    assert code == 0 and info["published_check"]["status"] == "match"
    assert info["title_share"] == 1.0


def test_examples_are_byte_identical_for_one_seed(capsys, shared_data, tmp_path):
    src = str(shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz")
    outs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for out in outs:
        code, _, _ = run(capsys, "data", "examples", src, "--task", "ranking", "--split", "test", "--seed", "7", "--out", str(out))
        assert code == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    first = json.loads(outs[0].read_text().splitlines()[0])
    assert first["candidates"][0] in first["text"] or first["candidate_texts"][0] in first["text"]
    code, _, _ = run(capsys, "data", "examples", src, "--task", "ranking", "--split", "test", "--seed", "8", "--out", str(tmp_path / "c.jsonl"))
    assert (tmp_path / "c.jsonl").read_bytes() != outs[0].read_bytes()


def test_show_prints_a_rendered_profile(capsys, shared_data):
    src = str(shared_data / "ml-latest-small")
    code, out, _ = run(capsys, "data", "show", src, "--user", "1", "--task", "preference")
    assert code == 0 and "Rated, oldest first:" in out and "Candidate:" in out


@pytest.mark.parametrize("argv, needle", [
    (("data", "info", "/no/such/path.json.gz"), "/no/such/path.json.gz"),
    (("data", "info", "no-such-dataset"), "unknown dataset 'no-such-dataset'"),
])
def test_bad_input_is_one_clear_line(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code != 0 and needle in err
    assert len(err.strip().splitlines()) == 1
