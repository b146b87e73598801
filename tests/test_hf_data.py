"""Examples as Hugging Face datasets: same rows in every format, and the Arrow cache."""

from __future__ import annotations

import json
import shutil

import pytest

from benchmark.cli import main
from benchmark.data import hf
from benchmark.data.cache import cached_examples, cached_task_examples
from benchmark.data.load import load_dataset
from benchmark.rendering import Renderer
from benchmark.tasks import build_task


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECROBUST_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def gift_cards(shared_data):
    return shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz"


@pytest.mark.parametrize("task", ["preference", "ranking"])
def test_cli_formats_hold_identical_rows_for_one_seed(capsys, tmp_path, gift_cards, task):
    rows = {}
    for fmt, name in (("jsonl", "x.jsonl"), ("parquet", "x.parquet"), ("hf", "x_hf")):
        code = main(["data", "examples", str(gift_cards), "--task", task, "--split", "test", "--seed", "7",
                     "--format", fmt, "--out", str(tmp_path / name)])
        assert code == 0, capsys.readouterr().err
        rows[fmt] = hf.read_examples(tmp_path / name)
    assert len(rows["jsonl"]) == 458
    assert rows["jsonl"] == rows["parquet"] == rows["hf"]
    first = rows["hf"][0]
    span = first["span_map"]["candidate"]
    assert first["text"][span["start"]:span["end"]] and first["candidates"][0] == span["item_id"]
    # The in-memory dataset is the same rows, and another seed changes them (ranking negatives).
    dataset = load_dataset(gift_cards)
    assert hf.to_hf_dataset(build_task(dataset, task, "test", seed=7)).to_list() == rows["hf"]
    if task == "ranking":
        other = hf.to_hf_dataset(build_task(dataset, task, "test", seed=8)).to_list()
        assert other != rows["hf"]


def test_bad_examples_format_is_one_line(capsys, tmp_path, gift_cards):
    with pytest.raises(SystemExit):
        main(["data", "examples", str(gift_cards), "--split", "test", "--format", "csv", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'csv'" in capsys.readouterr().err


def test_reader_format_override_still_works_for_examples(capsys, tmp_path, gift_cards):
    out = tmp_path / "x.jsonl"
    code = main(["data", "examples", str(gift_cards), "--input-format", "amazon2018", "--split", "valid",
                 "--max-examples", "5", "--out", str(out)])
    assert code == 0 and len(out.read_text().splitlines()) == 5


def test_cache_second_load_maps_the_same_rows_without_recomputing(home, shared_data):
    src = shared_data / "ml-latest-small"
    first = cached_task_examples(src, "preference", ("valid", "test"), max_examples={"valid": 40, "test": None})
    files = {s: ds.cache_files[0]["filename"] for s, ds in first.items()}
    assert all(f.startswith(str(home / "examples")) for f in files.values())
    stamps = {s: (home / "examples").joinpath(f).stat().st_mtime_ns for s, f in files.items()}
    again = cached_task_examples(src, "preference", ("valid", "test"), max_examples={"valid": 40, "test": None})
    assert {s: ds.cache_files[0]["filename"] for s, ds in again.items()} == files
    assert {s: (home / "examples").joinpath(f).stat().st_mtime_ns for s, f in files.items()} == stamps
    dataset = load_dataset(src)
    for split, limit in (("valid", 40), ("test", None)):
        expected = hf.to_hf_dataset(build_task(dataset, "preference", split, max_examples=limit)).to_list()
        assert again[split].to_list() == expected
    # Another template is another entry, rendered with that template.
    titles = cached_examples(src, "preference", "test", template="titles-only-v1")
    assert titles.cache_files[0]["filename"] != files["test"]
    assert titles[0]["template"] == "titles-only-v1" and titles[0]["text"].startswith("Watched or bought")


def test_cache_notices_a_changed_source(home, tmp_path, gift_cards):
    copy = tmp_path / "Gift_Cards_5.json.gz"
    shutil.copyfile(gift_cards, copy)
    a = cached_examples(copy, "preference", "test")
    # Same content under another path: same fingerprint, so the same cached rows.
    other = tmp_path / "again" / "Gift_Cards_5.json.gz"
    other.parent.mkdir()
    shutil.copyfile(gift_cards, other)
    b = cached_examples(other, "preference", "test")
    assert b.cache_files[0]["filename"] == a.cache_files[0]["filename"]
    # Different content: a new fingerprint and new rows.
    import gzip

    lines = gzip.decompress(gift_cards.read_bytes()).splitlines(keepends=True)
    with gzip.open(copy, "wb") as fh:
        fh.writelines(lines[: len(lines) // 2])
    c = cached_examples(copy, "preference", "test")
    assert c.cache_files[0]["filename"] != a.cache_files[0]["filename"] and len(c) < len(a)
    index = sorted((home / "examples" / "sources").glob("*.json"))
    assert len(index) == 3 and all("fingerprint" in json.loads(p.read_text()) for p in index)


def test_streamed_arrow_file_matches_in_memory_rows(tmp_path, gift_cards):
    dataset = load_dataset(gift_cards)
    data = build_task(dataset, "ranking", "valid", seed=3, num_negatives=9)
    renderer = Renderer(dataset.items)
    n = hf.write_arrow_file(data.examples, renderer, tmp_path / "x.arrow", "ranking")
    import datasets

    mapped = datasets.Dataset.from_file(str(tmp_path / "x.arrow"))
    assert n == len(mapped) == len(data.examples)
    assert mapped.to_list() == hf.to_hf_dataset(data, renderer).to_list()
    assert len(mapped[0]["candidates"]) == 10


def test_review_text_is_left_out_unless_asked_for(gift_cards):
    lean = load_dataset(gift_cards)
    full = load_dataset(gift_cards, text=True)
    assert "review" not in lean.interactions.columns and "review" in full.interactions.columns
    cols = ["user_id", "item_id", "rating", "timestamp"]
    assert lean.interactions[cols].equals(full.interactions[cols])
    assert full.interactions.memory_usage(deep=True).sum() > 2 * lean.interactions.memory_usage(deep=True).sum()
