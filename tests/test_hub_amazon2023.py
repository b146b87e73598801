"""Amazon 2023 through `datasets.load_dataset` (Hub code path) and from local files in the Hub
layout, tested offline: a small category written in the release's record format, and a local
copy of the repository (README configs + Parquet, as the Hub serves it) in place of the Hub."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.data import hub
from benchmark.data.errors import DataError, UnknownDatasetError
from benchmark.data.load import load_dataset

CATEGORY = "All_Beauty"


def _reviews(n_users: int = 6, per_user: int = 4) -> list[dict]:
    rows = []
    for u in range(n_users):
        for k in range(per_user):
            item = f"B0{(u + k) % 7:08d}"
            rows.append({"rating": float(1 + (u + k) % 5), "title": f"Title {u}-{k}", "text": f"Review text {u}-{k} " * 5,
                         "images": [], "asin": item + "X", "parent_asin": item, "user_id": f"AE{u:05d}",
                         "timestamp": 1_600_000_000_000 + 86_400_000 * k + u, "helpful_vote": k,
                         "verified_purchase": True})
    return rows


def _meta() -> list[dict]:
    return [{"main_category": "All Beauty", "title": f"Product {i}", "average_rating": 4.1, "rating_number": 10,
             "features": [], "description": [f"About product {i}."], "price": None, "images": [], "videos": [],
             "store": f"Store {i}", "categories": [], "details": {"Brand": f"Brand {i}"} if i % 2 else {},
             "parent_asin": f"B0{i:08d}", "bought_together": None} for i in range(7)]


def _write_jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture()
def layout(tmp_path, monkeypatch):
    """Local files in the Hub repository's raw layout, found through RECROBUST_AMAZON2023_ROOT."""
    root = tmp_path / "amazon2023"
    _write_jsonl(root / "raw" / "review_categories" / f"{CATEGORY}.jsonl", _reviews())
    _write_jsonl(root / "raw" / "meta_categories" / f"meta_{CATEGORY}.jsonl", _meta())
    monkeypatch.setenv("RECROBUST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(hub.ROOT_ENV, str(root))
    return root


@pytest.fixture()
def hub_copy(tmp_path):
    """A folder laid out as the Hub repository serves the configs: README YAML + Parquet per config
    (details as a JSON string, as in the Hub's Parquet conversion)."""
    repo = tmp_path / "hub-repo"
    (repo / f"raw_review_{CATEGORY}").mkdir(parents=True)
    (repo / f"raw_meta_{CATEGORY}").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(_reviews()), repo / f"raw_review_{CATEGORY}" / "full-00000-of-00001.parquet")
    meta = [{**m, "details": json.dumps(m["details"])} for m in _meta()]
    pq.write_table(pa.Table.from_pylist(meta), repo / f"raw_meta_{CATEGORY}" / "full-00000-of-00001.parquet")
    configs = "".join(f"- config_name: {c}_{CATEGORY}\n  data_files:\n  - split: full\n    path: {c}_{CATEGORY}/full-*\n"
                      for c in ("raw_review", "raw_meta"))
    (repo / "README.md").write_text(f"---\nconfigs:\n{configs}---\n# copy for tests\n", encoding="utf-8")
    return repo


def test_named_category_loads_from_local_hub_layout_without_text(layout):
    ds = load_dataset(f"amazon2023:{CATEGORY}")
    assert ds.name == "amazon2023:All_Beauty" and ds.format == "amazon2023"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (6, 7, 24)
    assert "review" not in ds.interactions.columns  # text is not kept when nothing renders it
    assert ds.interactions["timestamp"].min() == 1_600_000_000  # milliseconds -> seconds
    assert ds.items.loc["B000000001", "brand"] == "Brand 1" and ds.items.loc["B000000002", "brand"] == "Store 2"
    assert any("layout" in n for n in ds.notes)
    with_text = hub.load_amazon2023(CATEGORY, text=True)
    assert with_text.interactions["review"].str.startswith("Title").all()


def test_hub_code_path_reads_the_same_dataset(layout, hub_copy):
    local = load_dataset(f"amazon2023:{CATEGORY}")
    remote = hub.load_from_hub(CATEGORY, repo=str(hub_copy), cache_dir=str(hub_copy.parent / "hf-cache"))
    cols = ["user_id", "item_id", "rating", "timestamp"]
    key = ["user_id", "timestamp"]
    a = local.interactions[cols].sort_values(key).reset_index(drop=True)
    b = remote.interactions[cols].sort_values(key).reset_index(drop=True)
    assert a.equals(b)
    assert local.items.sort_index().equals(remote.items.sort_index())
    assert "review" not in remote.interactions.columns
    assert any("configs raw_review_All_Beauty and raw_meta_All_Beauty" in n for n in remote.notes)


def test_missing_config_and_unknown_category_are_named(hub_copy):
    (hub_copy / "README.md").write_text(
        (hub_copy / "README.md").read_text().replace("raw_meta_All_Beauty", "raw_meta_Other"), encoding="utf-8")
    with pytest.raises(DataError) as err:
        hub.load_from_hub(CATEGORY, repo=str(hub_copy), cache_dir=str(hub_copy.parent / "hf-cache"))
    assert "config 'raw_meta_All_Beauty'" in str(err.value) and len(str(err.value).splitlines()) == 1
    with pytest.raises(UnknownDatasetError, match="amazon2023:All_beauty: no such category.*did you mean All_Beauty"):
        load_dataset("amazon2023:All_beauty")


def test_missing_repository_is_named(tmp_path):
    with pytest.raises(DataError, match="Hugging Face dataset .*no-such-repo"):
        hub.load_from_hub(CATEGORY, repo=str(tmp_path / "no-such-repo"), cache_dir=str(tmp_path / "hf-cache"))


def test_bad_line_in_local_layout_names_file_and_line(layout):
    path = layout / "raw" / "review_categories" / f"{CATEGORY}.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = '{"rating": 5.0, "user_id": "AE1", "parent_asin": "B0", "timestamp": }\n'
    path.write_text("".join(lines))
    with pytest.raises(DataError) as err:
        load_dataset(f"amazon2023:{CATEGORY}")
    assert str(err.value).startswith(f"{path}:5: ")
