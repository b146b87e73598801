"""The one seeding rule: every random stream is ``rng(seed, *key)``.

A key is what makes a stream independent of every other one: a fixed salt naming the use
(an int), and per-example parts (a user or example id: strings enter as their CRC-32), so
that results do not depend on iteration order or on which other examples run. The
streams are numpy's ``default_rng([seed, *key])``; existing salts are kept so that every
published figure stays reproducible.
"""

from __future__ import annotations

import zlib

import numpy as np

Key = int | str


def _part(value: Key) -> int:
    if isinstance(value, str):
        return zlib.crc32(value.encode("utf-8"))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"seed key parts are non-negative ints or strings, got {value!r}")
    return int(value)


def rng(seed: int, *key: Key) -> np.random.Generator:
    """The generator for (seed, *key): ``rng(0, 7919)``, ``rng(seed, "u12", 5)``."""
    return np.random.default_rng([_part(seed), *(_part(k) for k in key)])


def seeded_subset(n: int, k: int | None, seed: int, *key: Key) -> np.ndarray:
    """Sorted indices of a random subset of size k of range(n), drawn from rng(seed, *key);
    all of them, in order, when k is None or k >= n."""
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(rng(seed, *key).choice(n, size=int(k), replace=False))
