"""Readers on the real shared files and on small generated files in every supported format."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

from benchmark.data.dataset import ITEM_TEXT_COLUMNS, Dataset
from benchmark.data.errors import DataError
from benchmark.data.readers import FORMATS, detect, read_path
from benchmark.data.readers.amazon import _read_reviews_arrow, _read_reviews_lines
from benchmark.rendering import clean_title


def assert_contract(ds: Dataset) -> None:
    """The column contract of benchmark/data/dataset.py."""
    inter = ds.interactions
    assert list(inter.columns[:4]) == ["user_id", "item_id", "rating", "timestamp"]
    assert set(inter.columns) <= {"user_id", "item_id", "rating", "timestamp", "review"}
    for col in ("user_id", "item_id"):
        assert pd.api.types.is_string_dtype(inter[col].dtype) and inter[col].notna().all()
        assert all(isinstance(v, str) for v in inter[col].head(50))
    assert inter["rating"].dtype == np.float64
    assert inter["timestamp"].dtype == np.int64
    if "review" in inter.columns:
        assert pd.api.types.is_string_dtype(inter["review"].dtype)
    items = ds.items
    assert items.index.name == "item_id" and pd.api.types.is_string_dtype(items.index.dtype)
    assert items.index.is_unique
    assert "title" in items.columns
    assert set(items.columns) <= {"title", *ITEM_TEXT_COLUMNS}
    for col in items.columns:
        assert all(isinstance(v, str) for v in items[col].dropna().head(200))
    # every interacted item has a catalog row
    assert set(inter["item_id"].unique()) <= set(items.index)
    assert ds.format in FORMATS


# -- real files --------------------------------------------------------------------------------


def test_ml_latest_small(shared_data):
    ds = read_path(shared_data / "ml-latest-small")
    assert_contract(ds)
    assert ds.format == "movielens-latest" and ds.name == "ml-latest-small"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (610, 9724, 100_836)
    assert len(ds.items) == 9742  # movies.csv, rated or not
    assert ds.items.loc["1", "title"] == "Toy Story (1995)"
    assert ds.items.loc["1", "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    no_genres = ds.items["genres"].isna()
    assert no_genres.any() and not ds.items["genres"].dropna().str.contains("no genres listed").any()
    first = ds.interactions.iloc[0]
    assert (first.user_id, first.item_id, first.rating, first.timestamp) == ("1", "1", 4.0, 964982703)
    assert ds.notes == []


def test_ml_latest_single_file_path_uses_its_folder(shared_data):
    ds = read_path(shared_data / "ml-latest-small" / "ratings.csv")
    assert ds.n_interactions == 100_836 and ds.items.loc["1", "title"] == "Toy Story (1995)"


def test_ml1m_folder_with_only_a_subset_is_refused_clearly(shared_data):
    with pytest.raises(DataError) as err:
        read_path(shared_data / "ml-1m")
    msg = str(err.value)
    assert "ratings_subset_users_1-2999.dat.gz" in msg and "not" in msg and "full" in msg
    assert "\n" not in msg


def test_ml1m_subset_loads_when_given_explicitly_and_says_partial(shared_data):
    ds = read_path(shared_data / "ml-1m" / "ratings_subset_users_1-2999.dat.gz")
    assert_contract(ds)
    assert ds.format == "movielens-1m"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2999, 3615, 487_650)
    assert any(n.startswith("PARTIAL") for n in ds.notes)
    # movies.dat is latin-1: "Misérables" has an é, not a replacement character
    titles = ds.items["title"].dropna()
    assert titles.str.contains("Misérables").any() and not titles.str.contains("\ufffd").any()
    assert ds.items.loc["1", "genres"] == "Animation|Children's|Comedy"
    user1 = ds.interactions[ds.interactions.user_id == "1"]
    assert len(user1) == 53  # as in the full ML-1M


def test_gift_cards_with_metadata(shared_data):
    ds = read_path(shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz")
    assert_contract(ds)
    assert ds.format == "amazon2018"
    assert (ds.n_users, ds.n_items) == (458, 148)
    assert ds.n_interactions == 2972 - 3  # three exact repeats dropped, and said so
    assert any(n.startswith("dropped 3 duplicate lines") for n in ds.notes)
    titles = ds.items.loc[ds.interactions["item_id"].unique(), "title"]
    assert titles.map(clean_title).notna().all()  # all 148 items have a usable title
    assert ds.items["categories"].dropna().str.contains("Gift Cards").any()
    assert "review" in ds.interactions and (ds.interactions["review"].str.len() > 0).mean() > 0.99
    key = ["user_id", "item_id", "rating", "timestamp"]
    assert not ds.interactions.duplicated(subset=key).any()


def test_gift_cards_folder_and_explicit_meta_agree(shared_data):
    folder = read_path(shared_data / "amazon2018_gift_cards")
    explicit = read_path(
        shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz",
        format="amazon2018",
        meta=shared_data / "amazon2018_gift_cards" / "meta_Gift_Cards.json.gz",
    )
    pd.testing.assert_frame_equal(folder.interactions, explicit.interactions)
    pd.testing.assert_frame_equal(folder.items, explicit.items)


def test_arrow_fast_path_and_line_reader_agree(shared_data):
    path = shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz"
    fast = _read_reviews_arrow(path, "amazon2018")
    assert fast is not None
    pd.testing.assert_frame_equal(fast, _read_reviews_lines(path, "amazon2018"))


def test_magazine_subscriptions_junk_titles_kept_raw(shared_data):
    ds = read_path(shared_data / "amazon2018_magazine_subscriptions" / "Magazine_Subscriptions_5.json.gz")
    assert_contract(ds)
    assert (ds.n_users, ds.n_items) == (348, 157)
    raw = ds.items["title"].dropna()
    assert raw.str.startswith("<span").sum() > 100  # raw HTML, not cleaned by the reader
    usable = ds.items.loc[ds.interactions["item_id"].unique(), "title"].map(clean_title).notna().sum()
    assert usable == 3
    assert any("151 of 157" in n for n in ds.notes)  # 6 items have no metadata record


def test_fashion_plain_json_without_metadata(shared_data):
    ds = read_path(shared_data / "amazon2018_fashion" / "AMAZON_FASHION_5.json")
    assert_contract(ds)
    assert (ds.n_users, ds.n_items) == (406, 31)
    assert ds.items["title"].isna().all() and len(ds.items) == 31
    assert any(n.startswith("no metadata found") for n in ds.notes)
    assert ds.interactions["rating"].between(1, 5).all()


def test_all_beauty(shared_data):
    ds = read_path(shared_data / "amazon2018_all_beauty")
    assert_contract(ds)
    assert (ds.n_users, ds.n_items) == (991, 85)
    assert any(n.startswith("dropped 1103 duplicate lines") for n in ds.notes)
    assert ds.n_interactions == 5269 - 1103


# -- generated files in the other formats ----------------------------------------------------

GENRE_FLAGS_TOY = "0|0|0|1|1|1" + "|0" * 13  # Animation, Children's, Comedy
GENRE_FLAGS_NONE = "1" + "|0" * 18  # only "unknown"


def write_ml100k(folder, u_data: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(u_data)
    lines = [
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{GENRE_FLAGS_TOY}",
        "2|Misérables, Les (1995)|01-Jan-1995||http://x|" + "0|" * 8 + "1" + "|0" * 10,
        f"267|unknown||||{GENRE_FLAGS_NONE}",
    ]
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|technician|85711\n")


def test_ml100k_format(tmp_path):
    folder = tmp_path / "ml-100k"
    write_ml100k(folder, "196\t1\t3\t881250949\n186\t2\t3\t891717742\n196\t267\t1\t878887116\n22\t5\t2\t881250000\n")
    ds = read_path(folder)
    assert_contract(ds)
    assert ds.format == "movielens-100k"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 4, 4)
    assert ds.items.loc["1", "title"] == "Toy Story (1995)"
    assert ds.items.loc["1", "genres"] == "Animation|Children's|Comedy"
    assert ds.items.loc["2", "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert ds.items.loc["2", "genres"] == "Drama"
    assert pd.isna(ds.items.loc["267", "title"]) and pd.isna(ds.items.loc["267", "genres"])
    assert pd.isna(ds.items.loc["5", "title"])  # rated but not in u.item: empty row
    # a single file of the release means its folder
    assert read_path(folder / "u.data").n_interactions == 4


def test_duplicate_lines_are_dropped_and_noted(tmp_path):
    folder = tmp_path / "ml-100k"
    write_ml100k(folder, "1\t1\t3\t100\n1\t1\t3\t100\n1\t1\t4\t200\n")
    ds = read_path(folder)
    assert ds.n_interactions == 2  # same user and item at another time/rating is kept
    assert ds.notes == ["dropped 1 duplicate lines from u.data (same user, item, rating and timestamp; first kept)"]


def test_gz_copies_read_the_same(tmp_path):
    folder = tmp_path / "ml-100k"
    write_ml100k(folder, "1\t1\t3\t100\n2\t2\t5\t200\n")
    plain = read_path(folder)
    data = (folder / "u.data").read_bytes()
    (folder / "u.data").unlink()
    (folder / "u.data.gz").write_bytes(gzip.compress(data))
    zipped = read_path(folder)
    pd.testing.assert_frame_equal(plain.interactions, zipped.interactions)


RECBOLE_INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t267\t4\t881251000\n"
)
RECBOLE_ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
    '377\t"Heavyweights"\t1994\tChildren\'s Comedy\n267\tunkonwn\tunkonwn\tunknown\n'
)


def test_recbole_atomic_files(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "ml-100k.inter").write_text(RECBOLE_INTER)
    (folder / "ml-100k.item").write_text(RECBOLE_ITEM)
    (folder / "ml-100k.user").write_text("user_id:token\tage:token\n196\t49\n")
    ds = read_path(folder)
    assert_contract(ds)
    assert ds.format == "recbole" and ds.name == "ml-100k"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 4, 4)
    assert ds.interactions["timestamp"].tolist() == [881250949, 891717742, 878887116, 881251000]
    assert ds.items.loc["242", "title"] == "Kolya (1996)"
    assert ds.items.loc["302", "genres"] == "Crime|Film-Noir|Mystery|Thriller"
    assert ds.items.loc["377", "title"] == '"Heavyweights" (1994)'  # quotes are literal in atomic files
    assert pd.isna(ds.items.loc["267", "title"]) and pd.isna(ds.items.loc["267", "genres"])
    assert read_path(folder / "ml-100k.inter").n_interactions == 4


def test_recbole_implicit_and_other_field_names(tmp_path):
    folder = tmp_path / "yelp"
    folder.mkdir()
    (folder / "yelp.inter").write_text(
        "review_id:token\tuser_id:token\tbusiness_id:token\tdate:float\nr1\tu1\tb1\t1500000000\nr2\tu2\tb1\t1500000100\n"
    )
    (folder / "yelp.item").write_text("business_id:token\tbusiness_name:token_seq\nb1\tAlpha Cafe\n")
    ds = read_path(folder)
    assert_contract(ds)
    assert ds.interactions["rating"].isna().all()
    assert ds.items.loc["b1", "title"] == "Alpha Cafe"
    assert any("implicit" in n for n in ds.notes)


def _jsonl(path, records, python_literals=False):
    text = "".join((repr(r) if python_literals else json.dumps(r)) + "\n" for r in records)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def test_amazon2014_with_python_literal_metadata(tmp_path):
    reviews = [
        {"reviewerID": "A1", "asin": "X1", "helpful": [0, 0], "reviewText": "Great strings.", "overall": 5.0,
         "summary": "Nice", "unixReviewTime": 1393545600, "reviewTime": "02 28, 2014"},
        {"reviewerID": "A2", "asin": "X2", "helpful": [1, 2], "reviewText": "Meh.", "overall": 2.0,
         "summary": "", "unixReviewTime": 1363392000, "reviewTime": "03 16, 2013"},
    ]  # fmt: skip
    _jsonl(tmp_path / "reviews_Musical_Instruments_5.json.gz", reviews)
    meta = [
        {"asin": "X1", "title": "Guitar Strings", "categories": [["Musical Instruments", "Strings"], ["Musical Instruments"]],
         "brand": "D'Addario", "description": "Light gauge"},
        {"asin": "Z9", "title": "Not reviewed"},
    ]  # fmt: skip
    _jsonl(tmp_path / "meta_Musical_Instruments.json.gz", meta, python_literals=True)
    assert "'asin'" in gzip.decompress((tmp_path / "meta_Musical_Instruments.json.gz").read_bytes()).decode()
    ds = read_path(tmp_path / "reviews_Musical_Instruments_5.json.gz")
    assert_contract(ds)
    assert ds.format == "amazon2014"
    assert ds.items.loc["X1", "title"] == "Guitar Strings"
    assert ds.items.loc["X1", "categories"] == "Musical Instruments|Strings"
    assert ds.items.loc["X1", "brand"] == "D'Addario"
    assert pd.isna(ds.items.loc["X2", "title"]) and "Z9" not in ds.items.index
    assert ds.interactions["review"].tolist() == ["Nice\nGreat strings.", "Meh."]


def test_amazon2023_jsonl_milliseconds_and_parent_asin(tmp_path):
    reviews = [
        {"rating": 5.0, "title": "Love it", "text": "Works.", "images": [], "asin": "B01", "parent_asin": "P01",
         "user_id": "U1", "timestamp": 1588687728923, "helpful_vote": 0, "verified_purchase": True},
        {"rating": 3.0, "title": "Ok", "text": "Fine.", "images": [], "asin": "B02", "parent_asin": "P01",
         "user_id": "U2", "timestamp": 1588615855070, "helpful_vote": 1, "verified_purchase": False},
    ]  # fmt: skip
    _jsonl(tmp_path / "Gift_Cards.jsonl", reviews)
    _jsonl(
        tmp_path / "meta_Gift_Cards.jsonl",
        [{"main_category": "Gift Cards", "title": "Visa Gift Card", "categories": ["Gift Cards", "Visa"],
          "description": ["Use anywhere."], "store": "Visa", "details": {}, "parent_asin": "P01"}],
    )  # fmt: skip
    ds = read_path(tmp_path / "Gift_Cards.jsonl")
    assert_contract(ds)
    assert ds.format == "amazon2023"
    assert ds.interactions["item_id"].tolist() == ["P01", "P01"]
    assert ds.interactions["timestamp"].tolist() == [1588687728, 1588615855]  # ms -> s
    assert ds.items.loc["P01", "title"] == "Visa Gift Card"
    assert ds.items.loc["P01", "categories"] == "Gift Cards|Visa"
    assert ds.items.loc["P01", "brand"] == "Visa"
    assert ds.interactions["review"].iloc[0] == "Love it\nWorks."


def test_format_override_and_detection(tmp_path, shared_data):
    assert detect(shared_data / "ml-latest-small").format == "movielens-latest"
    assert detect(shared_data / "amazon2018_fashion").format == "amazon2018"
    ds = read_path(shared_data / "amazon2018_fashion" / "AMAZON_FASHION_5.json", format="amazon2018", name="fashion")
    assert ds.name == "fashion"
    # a forced format is obeyed: reading 2018 reviews as 2023 names the missing key
    with pytest.raises(DataError, match=r"AMAZON_FASHION_5\.json:1: missing key 'user_id'"):
        read_path(shared_data / "amazon2018_fashion" / "AMAZON_FASHION_5.json", format="amazon2023")


def test_ratings_are_nan_only_when_implicit(tmp_path):
    folder = tmp_path / "ml-100k"
    write_ml100k(folder, "1\t1\t3\t100\n")
    ds = read_path(folder)
    assert not math.isnan(ds.interactions["rating"].iloc[0])


def test_unzipped_release_one_folder_down(tmp_path):
    """ml-100k.zip unzips to ml-100k/...; the outer folder works, with or without a format."""
    write_ml100k(tmp_path / "download" / "ml-100k", "1\t1\t3\t100\n2\t2\t5\t200\n")
    (tmp_path / "download" / "__MACOSX").mkdir()
    for fmt in (None, "movielens-100k"):
        ds = read_path(tmp_path / "download", format=fmt)
        assert ds.format == "movielens-100k" and ds.name == "ml-100k" and ds.n_interactions == 2
