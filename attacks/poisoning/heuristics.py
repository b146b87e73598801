"""The classic shilling attacks (Lam & Riedl 2004; Gunes et al. 2014 survey), as in RecAD
and ARLib: each fake profile is the targets (top rating) plus `filler` items.

- random:    fillers uniform over the catalog, ratings ~ N(global mean, global std);
- average:   fillers uniform, each rated ~ N(that item's mean, its std) (needs more
             knowledge: per-item statistics);
- bandwagon: a share of the fillers ("selected") drawn from the most popular items and
             rated at the top, the rest random with random ratings;
- segment:   a share of the fillers drawn from the items most similar to the targets
             (cosine over the users who interacted with them) and rated at the top, the
             rest random and rated at the bottom (the segment attack's "dislike the rest").

On implicit data (no ratings) only the choice of fillers differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attacks.poisoning.base import PoisoningAttack, PoisoningOptionError, TrainView, random_fillers
from benchmark.options import Options, option



def _selected_share():
    return option(0.5, "share of the fillers drawn from the pool and rated at the top")


@dataclass
class BandwagonOptions(Options):
    selected_share: float = _selected_share()
    popular_pool: int = option(50, "the most popular items the selected fillers are drawn from")


@dataclass
class SegmentOptions(Options):
    selected_share: float = _selected_share()
    segment_pool: int = option(50, "the items most similar to the targets the selected fillers are drawn from")


def _share(value, option: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise PoisoningOptionError(f"option {option}: must be a share in [0, 1], got {value!r}")
    return float(value)


def _pool_size(value, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise PoisoningOptionError(f"option {option}: must be a whole number >= 1, got {value!r}")
    return int(value)


def _normal(rng, mean, std, shape):
    return rng.normal(mean, np.maximum(std, 1e-6), size=shape)


class RandomAttack(PoisoningAttack):
    name = "random"
    description = "fillers uniformly at random, ratings ~ N(global mean, std)"

    def fillers(self, view: TrainView, targets, n_fake, rng):
        fill = random_fillers(rng, len(view.items), targets, n_fake, self.filler)
        ratings = _normal(rng, view.global_mean, view.global_std, fill.shape) if view.has_ratings else None
        return fill, ratings


class AverageAttack(PoisoningAttack):
    name = "average"
    description = "fillers uniformly at random, each rated ~ N(item mean, item std)"

    def fillers(self, view: TrainView, targets, n_fake, rng):
        fill = random_fillers(rng, len(view.items), targets, n_fake, self.filler)
        ratings = _normal(rng, view.item_mean[fill], view.item_std[fill], fill.shape) if view.has_ratings else None
        return fill, ratings


class _SelectedPlusRandom(PoisoningAttack):
    """Fillers = `selected_share` from a pool (rated top) + the rest at random."""

    pool_option = "pool"  # the name of the pool-size option in the subclass's OPTIONS

    def pool(self, view: TrainView, targets: np.ndarray, size: int) -> np.ndarray:
        raise NotImplementedError

    def rest_ratings(self, view, rng, shape):
        return _normal(rng, view.global_mean, view.global_std, shape)

    def fillers(self, view: TrainView, targets, n_fake, rng):
        share = _share(self.settings["selected_share"], "selected_share")
        size = _pool_size(self.settings[self.pool_option], self.pool_option)
        n_sel = int(round(share * self.filler))
        pool = self.pool(view, targets, size)
        pool = pool[~np.isin(pool, targets)]
        n_sel = min(n_sel, len(pool))
        selected = random_fillers(rng, len(view.items), targets, n_fake, n_sel, pool=pool)
        rest = np.stack([rng.choice(np.setdiff1d(np.arange(len(view.items)), np.concatenate([targets, s])),
                                    size=self.filler - n_sel, replace=False) for s in selected])
        fill = np.concatenate([selected, rest], axis=1)
        if not view.has_ratings:
            return fill, None
        hi = view.scale[1]
        ratings = np.concatenate([np.full(selected.shape, hi), self.rest_ratings(view, rng, rest.shape)], axis=1)
        return fill, ratings


class BandwagonAttack(_SelectedPlusRandom):
    name = "bandwagon"
    description = "half the fillers from the 50 most popular items (top rating), the rest random"
    pool_option = "popular_pool"
    OPTIONS = BandwagonOptions

    def pool(self, view, targets, size):
        order = np.argsort(-view.popularity, kind="stable")
        return order[~np.isin(order, targets)][:size]


class SegmentAttack(_SelectedPlusRandom):
    name = "segment"
    description = "half the fillers from the 50 items most similar to the targets (top rating), the rest rated lowest"
    pool_option = "segment_pool"
    OPTIONS = SegmentOptions

    def pool(self, view, targets, size):
        m = view.matrix.tocsc().astype(float)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel()) + 1e-9
        t = m[:, targets]
        sims = np.asarray((m.T @ t).todense()) / norms[:, None] / norms[targets][None, :]
        score = sims.sum(axis=1)
        score[targets] = -np.inf
        return np.argsort(-score, kind="stable")[:size]

    def rest_ratings(self, view, rng, shape):
        return np.full(shape, view.scale[0])
