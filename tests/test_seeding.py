"""benchmark.seeding: the one rule for random streams."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from benchmark.seeding import rng, seeded_subset


def test_rng_is_numpys_stream_for_seed_and_key_with_strings_as_crc32():
    a = rng(3, "u12", 7).random(5)
    b = np.random.default_rng([3, zlib.crc32(b"u12"), 7]).random(5)
    assert np.array_equal(a, b)
    assert not np.array_equal(rng(3, "u12", 7).random(5), rng(3, "u13", 7).random(5))
    assert not np.array_equal(rng(3, 7).random(5), rng(4, 7).random(5))


def test_seeded_subset_is_sorted_fixed_by_key_and_all_when_k_covers_n():
    a = seeded_subset(100, 10, 0, 7919)
    assert len(a) == 10 and np.all(np.diff(a) > 0) and np.array_equal(a, seeded_subset(100, 10, 0, 7919))
    assert not np.array_equal(a, seeded_subset(100, 10, 0, 7920))
    assert np.array_equal(seeded_subset(5, None, 0), np.arange(5))
    assert np.array_equal(seeded_subset(5, 9, 0), np.arange(5))


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_bad_key_parts_are_refused(bad):
    with pytest.raises(ValueError, match="seed key parts"):
        rng(0, bad)
