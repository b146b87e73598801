"""Dataset statistics and the check against published figures, on the real shared files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.data.dataset import Dataset
from benchmark.data.published import PUBLISHED, published_for, published_for_path
from benchmark.data.readers import read_path
from benchmark.data.stats import check_published, dataset_stats, format_check
from tests.helpers import make_dataset


@pytest.fixture(scope="module")
def ml_small(shared_data):
    return read_path(shared_data / "ml-latest-small")


@pytest.fixture(scope="module")
def gift_cards(shared_data):
    return read_path(shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz")


def test_ml_latest_small_stats(ml_small):
    stats = dataset_stats(ml_small)
    json.dumps(stats)  # JSON-ready
    assert (stats["users"], stats["items"], stats["interactions"]) == (610, 9724, 100_836)
    assert stats["catalog_items"] == 9742
    # rating distribution as counted in shared/data/ml-latest-small/PROVENANCE.md
    assert stats["rating_histogram"] == {
        "0.5": 1370, "1": 2811, "1.5": 1791, "2": 7551, "2.5": 5550,
        "3": 20047, "3.5": 13136, "4": 26818, "4.5": 8551, "5": 13211,
    }  # fmt: skip
    assert stats["time_span"]["first"] == "1996-03-29T18:36:55Z"
    assert stats["time_span"]["last"] == "2018-09-24T14:27:30Z"
    assert stats["min_interactions_per_user"] == 20
    assert stats["mean_interactions_per_user"] == pytest.approx(100_836 / 610, abs=1e-3)
    assert stats["density"] == pytest.approx(100_836 / (610 * 9724), abs=1e-6)
    assert stats["title_share"] == 1.0 and stats["implicit"] is False


@pytest.mark.parametrize("name", ["movielens-latest-small", "ml-latest-small", "movielens-latest"])
def test_ml_latest_small_matches_published(ml_small, name):
    """By registry name, by alias, and by format (the dataset recognised from its folder)."""
    result = check_published(name, dataset_stats(ml_small))
    assert result["dataset"] == "movielens-latest-small"
    assert result["status"] == "match", result["differences"]
    assert result["observed"] == {"users": 610, "items": 9724, "interactions": 100_836}


def test_gift_cards_published_count_is_of_lines_before_dedup(gift_cards):
    stats = dataset_stats(gift_cards)
    assert stats["interactions"] == 2969 and stats["duplicates_dropped"] == 3 and stats["rows_in_file"] == 2972
    assert stats["items_with_title"] == 148 and stats["title_share"] == 1.0
    result = check_published("amazon2018:Gift_Cards", stats)
    assert result["status"] == "match", result["differences"]
    assert result["expected"] == {"users": 458, "items": 148, "rows_in_file": 2972}
    assert "2,972" in result["note"]
    # the same check from the path alone
    assert check_published(stats["source"], stats)["dataset"] == "amazon2018:Gift_Cards"


def test_mismatch_names_the_differences(gift_cards):
    stats = dataset_stats(gift_cards)
    keep = gift_cards.interactions["user_id"] != gift_cards.interactions["user_id"].iloc[0]
    smaller = Dataset("gift", gift_cards.interactions[keep], gift_cards.items, format="amazon2018")
    result = check_published("amazon2018:Gift_Cards", dataset_stats(smaller))
    assert result["status"] == "mismatch"
    assert any(d.startswith("users: expected 458, observed 457") for d in result["differences"])
    assert any(d.startswith("rows_in_file: expected 2,972") for d in result["differences"])
    assert "mismatch" in format_check(result) and stats["users"] == 458


def test_magazine_subscriptions_title_share_is_low(shared_data):
    ds = read_path(shared_data / "amazon2018_magazine_subscriptions")
    stats = dataset_stats(ds)
    assert stats["items_with_title"] == 3 and stats["title_share"] < 0.05
    assert stats["rows_in_file"] == 2375 and stats["duplicates_dropped"] == 47
    assert check_published("amazon2018", stats)["status"] == "match"
    assert stats["rating_histogram"] is not None and stats["has_reviews"]


def test_ml1m_subset_is_a_mismatch_and_says_partial(shared_data):
    ds = read_path(shared_data / "ml-1m" / "ratings_subset_users_1-2999.dat.gz")
    stats = dataset_stats(ds)
    assert stats["rating_histogram"] == {"1": 27472, "2": 53838, "3": 127216, "4": 170579, "5": 108545}
    result = check_published("movielens-1m", stats)
    assert result["status"] == "mismatch"
    assert any(d.startswith("interactions: expected 1,000,209, observed 487,650") for d in result["differences"])
    assert any(d.startswith("PARTIAL") for d in result["differences"])


def test_implicit_dataset_has_no_histogram():
    stats = dataset_stats(make_dataset(implicit=True))
    assert stats["implicit"] is True and stats["rating_histogram"] is None
    assert stats["ratings_missing"] is None
    json.dumps(stats)


def test_title_share_uses_clean_titles():
    ds = make_dataset(n_items=10, per_user=10, n_users=3)
    ds.items.loc[ds.items.index[:4], "title"] = ['<span class="a"', "", "   ", np.nan]
    stats = dataset_stats(ds)
    assert stats["items_with_title"] == 6 and stats["title_share"] == 0.6


def test_published_registry():
    assert published_for("MovieLens-100K").figures == {"users": 943, "items": 1682, "interactions": 100_000}
    assert published_for("ml-1m").figures == {"users": 6040, "items": 3706, "interactions": 1_000_209}
    mi = published_for("amazon2014:Musical_Instruments")
    assert mi.figures == {"users": 1429, "items": 900, "rows_in_file": 10_261}
    assert published_for("no-such-dataset") is None
    assert check_published("no-such-dataset", {"users": 1}) is None
    assert published_for_path("/x/reviews_Musical_Instruments_5.json.gz").key == "amazon2014:Musical_Instruments"
    assert published_for_path("/x/ml-100k/ml-100k.inter").key == "movielens-100k"
    assert published_for_path("/x/Gift_Cards.jsonl", "amazon2023") is None  # not the 5-core
    assert all(set(p.sources) == set(p.figures) for p in PUBLISHED)
