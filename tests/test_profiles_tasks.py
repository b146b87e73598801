import math

import numpy as np
import pandas as pd
import pytest

from benchmark.profiles import leave_last_out
from benchmark.rendering import Renderer, clean_title
from benchmark.tasks import build_splits, build_task, write_examples_jsonl
from tests.helpers import make_dataset


def test_leave_last_out_is_chronological_with_deterministic_ties():
    inter = pd.DataFrame({
        "user_id": ["a"] * 4 + ["b"] * 2,
        "item_id": ["x", "w", "y", "z", "x", "y"],
        "rating": [5.0, 4, 3, 2, 1, 1],
        "timestamp": [10, 10, 5, 20, 1, 2],  # x and w tie at t=10 -> item id order
    })
    tl = leave_last_out(inter)
    a = tl[tl.user_id == "a"]
    assert a.item_id.tolist() == ["y", "w", "x", "z"]
    assert a.split.tolist() == ["train", "train", "valid", "test"]
    assert "b" not in set(tl.user_id)  # too short to give train, valid and test
    shuffled = leave_last_out(inter.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(tl, shuffled)


def test_preference_examples_use_only_earlier_history():
    ds = make_dataset()
    data = build_task(ds, "preference", "test", history_len=5)
    tl = data.timeline
    for ex in data.examples:
        user = tl[tl.user_id == ex.profile.user_id]
        target = user[user.split == "test"].iloc[0]
        assert ex.candidates == (target.item_id,)
        assert ex.label == int(target.rating >= 4)
        assert len(ex.profile.history) == 5
        assert all(h.timestamp <= target.timestamp for h in ex.profile.history)
        assert ex.profile.history[-1].item_id == user[user.split == "valid"].iloc[0].item_id


def test_ranking_negatives_never_touched_and_seeded():
    ds = make_dataset()
    a = build_task(ds, "ranking", "test", seed=1, num_negatives=20)
    b = build_task(ds, "ranking", "test", seed=1, num_negatives=20)
    c = build_task(ds, "ranking", "test", seed=2, num_negatives=20)
    assert [e.candidates for e in a.examples] == [e.candidates for e in b.examples]
    assert [e.candidates for e in a.examples] != [e.candidates for e in c.examples]
    for ex in a.examples:
        touched = set(ds.interactions[ds.interactions.user_id == ex.profile.user_id].item_id)
        assert ex.label == 0 and ex.candidates[0] in touched
        assert len(set(ex.candidates)) == 21
        assert not touched & set(ex.candidates[1:])


def test_small_catalog_caps_negatives():
    ds = make_dataset(n_items=15, per_user=10)
    data = build_task(ds, "ranking", "test", num_negatives=99)
    assert all(len(e.candidates) == 1 + 5 for e in data.examples)


def test_preference_needs_ratings():
    with pytest.raises(ValueError, match="no ratings"):
        build_task(make_dataset(implicit=True), "preference", "test")


def test_train_subset_is_seeded_and_splits_share_timeline():
    ds = make_dataset()
    s1 = build_splits(ds, "preference", seed=0, max_examples=None)
    assert len(s1["train"].examples) == sum(len(g) - 3 for _, g in ds.interactions.groupby("user_id"))
    x = build_task(ds, "preference", "train", seed=5, max_examples=17)
    y = build_task(ds, "preference", "train", seed=5, max_examples=17)
    assert len(x.examples) == 17 and [e.example_id for e in x.examples] == [e.example_id for e in y.examples]


def test_rendering_span_map_points_at_the_right_text():
    ds = make_dataset()
    renderer = Renderer(ds.items)
    ex = build_task(ds, "preference", "test", history_len=4).examples[0]
    r = renderer.render(ex.profile, ex.candidates[0])
    spans = r.span_map()
    assert len(spans["history"]) == 4
    for span, h in zip(spans["history"], ex.profile.history):
        piece = r.text[span["start"]:span["end"]]
        assert piece.startswith(renderer.catalog.text(h.item_id).title)
        assert piece.endswith(f"{h.rating:g}/5")
    cand = spans["candidate"]
    assert r.text[cand["start"]:cand["end"]] == r.candidate_text
    assert r.text.startswith(r.profile_text)
    # spans partition nothing outside the profile: all history spans lie inside it
    assert all(s["end"] <= len(r.profile_text) for s in spans["history"])


def test_untitled_and_html_items_get_stated_fallback():
    assert clean_title('<span class="a-size-medium a-color-secondary"') is None
    assert clean_title("Fish &amp; Chips <b>Weekly</b>") == "Fish & Chips Weekly"
    ds = make_dataset(with_titles=False)
    ds.items["brand"] = "Acme"
    text = Renderer(ds.items).candidate_text("i3")
    assert text.startswith("untitled item i3 (brand: Acme)")
    assert Renderer(ds.items).candidate_text("unknown-id").startswith("untitled item unknown-id")


def test_examples_jsonl_is_byte_identical_for_a_seed(tmp_path):
    ds = make_dataset()
    renderer = Renderer(ds.items)
    paths = []
    for i in range(2):
        data = build_task(make_dataset(), "ranking", "test", seed=3, num_negatives=10)
        paths.append(tmp_path / f"ex{i}.jsonl")
        write_examples_jsonl(data.examples, renderer, paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_text().count("\n") == len(data.examples)


def test_task_specs_name_the_metrics_evaluation_reports():
    from benchmark import metrics
    from benchmark.tasks import TASK_SPECS, task_spec

    assert tuple(metrics.preference_metrics([0, 1, 1], [0.2, 0.7, 0.9])) == TASK_SPECS["preference"].metrics
    assert set(metrics.ranking_metrics([1, 3, 12])) == set(TASK_SPECS["ranking"].metrics)
    assert all(t.primary_metric in t.metrics for t in TASK_SPECS.values())
    assert task_spec("preference").like_threshold == 4.0
    with pytest.raises(ValueError, match="unknown task 'rating'"):
        task_spec("rating")
