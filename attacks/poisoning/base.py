"""The poisoning-attack interface: a generator of fake users within a budget.

`PoisoningAttack.generate(train, targets, seed)` takes the training interactions
(user_id, item_id, rating, timestamp), the target items and a seed, and returns a
`FakeUsers`: the fake interaction rows (ordinary rows, user ids starting with
`FAKE_PREFIX`) plus what was asked for. Budget, as in RecAD and ARLib:

- ``fake_users``: fake users as a fraction of the real users, 0 < f < 1
  (``round(f * n_users)``, at least 1);
- ``filler``: filler items per fake user (distinct, never a target); every fake profile
  also holds every target (ARLib's convention: one fake user promotes the whole target set);
- ratings where the data has them: targets get the top of the rating scale, fillers
  what the strategy says (rounded, clipped to the observed scale); NaN for implicit data;
- timestamps drawn uniformly inside the training period, so the rows look like any others.

A strategy (subclass) only says which fillers each fake user gets and how it rates them
(`fillers`). Everything else (budget checks, rows, time stamps) lives here, so that every
attack obeys the budget in the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from attacks.poisoning import FAKE_PREFIX
from benchmark.options import Options, unknown_options_message

THREAT_MODEL = "poisoning"
DEFAULT_FAKE_USERS = 0.01  # ARLib's default budget: 1% of the users
DEFAULT_FILLER = 36  # RecAD's default filler size


class PoisoningOptionError(ValueError):
    """A bad poisoning option; the message names the option."""


@dataclass
class TrainView:
    """What an attacker sees of the training data, indexed once for every strategy."""

    interactions: pd.DataFrame
    items: np.ndarray  # catalog item ids (sorted, str)
    users: np.ndarray  # real user ids (sorted, str)
    matrix: sp.csr_matrix  # users x items, 1 where the user interacted
    ratings: sp.csr_matrix | None  # users x items ratings (None for implicit data)
    popularity: np.ndarray  # interactions per item
    item_mean: np.ndarray  # mean rating per item (global mean where unrated); NaN array if implicit
    item_std: np.ndarray
    global_mean: float
    global_std: float
    scale: tuple[float, float]  # (lowest, highest) rating seen
    time_range: tuple[int, int]

    @property
    def has_ratings(self) -> bool:
        return self.ratings is not None

    @classmethod
    def build(cls, train: pd.DataFrame, catalog: Sequence[str] | None = None) -> "TrainView":
        df = train[["user_id", "item_id", "rating", "timestamp"]].copy()
        df["user_id"] = df["user_id"].astype(str)
        df["item_id"] = df["item_id"].astype(str)
        items = np.array(sorted(set(catalog) if catalog is not None else set(df["item_id"])), dtype=object)
        users = np.array(sorted(df["user_id"].unique()), dtype=object)
        ii = pd.Index(items).get_indexer(df["item_id"])
        if (ii < 0).any():
            raise PoisoningOptionError("training interactions name items outside the catalog")
        ui = pd.Index(users).get_indexer(df["user_id"])
        shape = (len(users), len(items))
        matrix = sp.csr_matrix((np.ones(len(df)), (ui, ii)), shape=shape)
        matrix.data[:] = 1.0  # duplicates count once
        popularity = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(float)
        r = df["rating"].to_numpy(dtype=float)
        if np.isnan(r).all():
            ratings, nan = None, np.full(len(items), np.nan)
            return cls(df, items, users, matrix, None, popularity, nan, nan, float("nan"), float("nan"),
                       (float("nan"), float("nan")), (int(df["timestamp"].min()), int(df["timestamp"].max())))
        ok = ~np.isnan(r)
        gm, gs = float(r[ok].mean()), float(r[ok].std() or 1.0)
        sums = np.bincount(ii[ok], weights=r[ok], minlength=len(items))
        sq = np.bincount(ii[ok], weights=r[ok] ** 2, minlength=len(items))
        cnt = np.bincount(ii[ok], minlength=len(items)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(cnt > 0, sums / np.maximum(cnt, 1), gm)
            std = np.where(cnt > 1, np.sqrt(np.maximum(sq / np.maximum(cnt, 1) - mean ** 2, 0)), gs)
        ratings = sp.csr_matrix((np.where(ok, r, 0.0), (ui, ii)), shape=shape)
        return cls(df, items, users, matrix, ratings, popularity, mean, std, gm, gs,
                   (float(r[ok].min()), float(r[ok].max())),
                   (int(df["timestamp"].min()), int(df["timestamp"].max())))


@dataclass
class FakeUsers:
    """The injected users: rows to append to the train split, and what produced them."""

    attack: str
    rows: pd.DataFrame  # user_id, item_id, rating, timestamp
    targets: list[str]
    fraction: float
    filler: int
    seconds: float = 0.0
    info: dict = field(default_factory=dict)  # strategy details (e.g. PGA's surrogate objective)

    @property
    def user_ids(self) -> list[str]:
        return sorted(self.rows["user_id"].unique())

    @property
    def n_users(self) -> int:
        return int(self.rows["user_id"].nunique())

    def profiles(self, n: int = 3, titles: dict | None = None) -> list[str]:
        """A few fake profiles as text (for `recrobust attack --show`)."""
        out = []
        for uid in self.user_ids[:n]:
            g = self.rows[self.rows["user_id"] == uid].sort_values("timestamp")
            parts = []
            for item, rating in zip(g["item_id"], g["rating"]):
                name = (titles or {}).get(item) or item
                mark = "*" if item in self.targets else ""
                parts.append(f"{mark}{name}" + ("" if np.isnan(rating) else f" {rating:g}"))
            out.append(f"{uid} ({len(g)} items; * = target): " + "; ".join(parts))
        return out


def check_fraction(value, option: str = "fake_users") -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise PoisoningOptionError(f"option {option}: must be a number in (0, 1), got {value!r}") from None
    if not 0 < f < 1:
        raise PoisoningOptionError(f"option {option}: must be a fraction of the real users in (0, 1), got {value!r}")
    return f


def n_fake_users(fraction: float, n_real: int) -> int:
    """The budget in users: round(fraction * real users), at least one."""
    return max(1, int(round(fraction * n_real)))


class PoisoningAttack:
    """Base class: budget checks, fake-row assembly. Subclasses implement `fillers`."""

    name: ClassVar[str] = ""
    threat_model: ClassVar[str] = THREAT_MODEL
    description: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()
    # The strategy's own options (benchmark.options), besides fake_users, filler and seed.
    OPTIONS: ClassVar[type[Options]] = Options

    def __init__(self, fake_users: float = DEFAULT_FAKE_USERS, filler: int = DEFAULT_FILLER, seed: int = 0,
                 **options):
        self.fraction = check_fraction(fake_users)
        if isinstance(filler, bool) or not isinstance(filler, (int, np.integer)) or filler < 1:
            raise PoisoningOptionError(f"option filler: must be a whole number of items >= 1, got {filler!r}")
        self.filler = int(filler)
        self.seed = int(seed)
        self.options = options
        unknown = sorted(set(options) - set(self.option_defaults()))
        if unknown:
            message = unknown_options_message(f"attack {self.name!r}", unknown,
                                              ["fake_users", "filler", *self.option_defaults()])
            raise PoisoningOptionError(f"option {unknown[0]}: {message}")
        self.settings = {**self.option_defaults(), **options}

    # -- metadata (shaped like attacks.base.Attack, so listings and suites treat it alike) --
    @classmethod
    def option_defaults(cls) -> dict:
        """The strategy's options with their defaults (its OPTIONS declaration)."""
        return cls.OPTIONS.defaults()

    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        return None  # fake users are ordinary interactions: every model can be poisoned

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None

    def config(self) -> dict:
        return {"attack": self.name, "threat_model": self.threat_model, "fake_users": self.fraction,
                "filler": self.filler, "seed": self.seed, **self.settings}

    # -- the strategy -------------------------------------------------------------------
    def fillers(self, view: TrainView, targets: np.ndarray, n_fake: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """(filler item indices, n_fake x filler; their ratings, same shape, or None for the
        strategy's default of the global mean). Indices index `view.items`, never a target."""
        raise NotImplementedError

    # -- assembling fake users ----------------------------------------------------------------
    def generate(self, train: pd.DataFrame, targets: Sequence[str], catalog: Sequence[str] | None = None,
                 n_real_users: int | None = None) -> FakeUsers:
        started = time.perf_counter()
        view = TrainView.build(train, catalog)
        index = pd.Index(view.items)
        bad = [t for t in targets if str(t) not in index]
        if bad:
            raise PoisoningOptionError(f"option targets: unknown target item(s) {', '.join(map(repr, bad[:5]))} "
                                       f"(not in the catalog of {len(view.items)} items)")
        if not len(targets):
            raise PoisoningOptionError("option targets: at least one target item is needed")
        t_idx = index.get_indexer([str(t) for t in targets])
        if self.filler > len(view.items) - len(set(t_idx)):
            raise PoisoningOptionError(f"option filler: {self.filler} filler items per fake user, but the catalog "
                                       f"has only {len(view.items) - len(set(t_idx))} non-target items")
        if any(str(u).startswith(FAKE_PREFIX) for u in view.users):
            raise PoisoningOptionError(f"training data already holds users named {FAKE_PREFIX}*")
        n_real = n_real_users if n_real_users is not None else len(view.users)
        n_fake = n_fake_users(self.fraction, n_real)
        rng = np.random.default_rng([self.seed, 2027, n_fake, self.filler])
        fill, fill_ratings = self.fillers(view, np.asarray(t_idx), n_fake, rng)
        fill = np.asarray(fill, dtype=np.int64)
        assert fill.shape == (n_fake, self.filler), (self.name, fill.shape)
        rows = self._rows(view, fill, fill_ratings, np.asarray(t_idx), rng)
        return FakeUsers(self.name, rows, [str(t) for t in targets], self.fraction, self.filler,
                         time.perf_counter() - started, dict(getattr(self, "info", {}) or {}))

    def _rows(self, view: TrainView, fill, fill_ratings, t_idx, rng) -> pd.DataFrame:
        n_fake = len(fill)
        width = len(str(n_fake))
        user_ids, items, ratings = [], [], []
        lo, hi = view.scale
        for u in range(n_fake):
            uid = f"{FAKE_PREFIX}{self.name}-{u:0{width}d}"
            user_items = np.concatenate([t_idx, fill[u]])
            if view.has_ratings:
                fr = (np.full(self.filler, view.global_mean) if fill_ratings is None else fill_ratings[u])
                r = np.concatenate([np.full(len(t_idx), hi), np.clip(np.rint(fr), lo, hi)])
            else:
                r = np.full(len(user_items), np.nan)
            user_ids += [uid] * len(user_items)
            items += list(view.items[user_items])
            ratings += list(r)
        t0, t1 = view.time_range
        stamps = rng.integers(t0, t1 + 1, size=len(items))
        df = pd.DataFrame({"user_id": user_ids, "item_id": items, "rating": np.asarray(ratings, dtype=float),
                           "timestamp": stamps.astype("int64")})
        return df.sort_values(["user_id", "timestamp", "item_id"], kind="mergesort").reset_index(drop=True)


def random_fillers(rng, n_items: int, exclude: np.ndarray, n_fake: int, size: int,
                   pool: np.ndarray | None = None) -> np.ndarray:
    """`size` distinct items per fake user, uniformly from `pool` (default all) minus `exclude`."""
    pool = np.arange(n_items) if pool is None else np.asarray(pool)
    pool = pool[~np.isin(pool, exclude)]
    if size > len(pool):
        raise PoisoningOptionError(f"option filler: {size} items asked from a pool of {len(pool)}")
    return np.stack([rng.choice(pool, size=size, replace=False) for _ in range(n_fake)]) if size else \
        np.zeros((n_fake, 0), dtype=np.int64)
