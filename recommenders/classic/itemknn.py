"""ItemKNN: item-based collaborative filtering, history-based by design.

Similarity: cosine between item columns of the training user x item matrix, shrunk by
``shrink`` (s_ij = x_i . x_j / (|x_i| |x_j| + shrink)), keeping each item's ``neighbors``
strongest neighbours (Sarwar et al. 2001; shrinkage as in Koren 2010). For ranking the
matrix is binary (who interacted); for preference it holds ratings centred on each user's
mean (adjusted cosine), so items rated alike are similar and items rated oppositely get
a negative similarity.

The profile drives every score — the user is nothing but their history:

- ranking: s(c) = sum_j w_j * sim(c, j) over the history entries j, with w_j = rating/5
  where a rating exists (``rating_weight``) and 1 otherwise; a tiny popularity term
  (1e-6 * log(1 + count)) only breaks ties among candidates with no similar history item.
- preference: a KNNBaseline-style rating model read in like-space. With item mean ratings
  mu_i (shrunk to the global mean), the profile's bias b_u = mean_j (r_j - mu_j) and the
  neighbourhood deviation d(c) = sum_j sim(c,j) (r_j - mu_j - b_u) / (sum_j |sim(c,j)| + deviation_shrink),
  the like-probability is a logistic regression, fitted on the training examples, over
  [logit of the item's smoothed like-rate, mu_c, b_u, d(c)]. So the profile's ratings
  move the probability through b_u and d(c). For the training examples the item
  statistics leave the example's own rating out, as they are at test time.

Profiles are read at half-star resolution (the rating buckets of ``_vocab``). Unknown items
(not in the training interactions) are dropped from histories and get the item prior
(global like-rate / mean rating) and no neighbours as candidates. Only the ``max_len``
most recent history entries count (default: the task's history length), as for the
trained models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import LogisticRegression

from benchmark.profiles import Profile
from benchmark.tasks import LIKE_THRESHOLD
from recommenders.base import Recommender
from benchmark.options import Options, option
from recommenders.classic._options import check_task, parse_options
from recommenders.classic._vocab import PAD, ItemVocab, VocabIndexed

STATE_FILE = "itemknn.safetensors"
TIE_BREAK = 1e-6
FEATURES = ("item_like_logit", "item_mean_rating", "profile_bias", "neighbour_deviation")


@dataclass
class ItemKNNOptions(Options):
    neighbors: int = option(100, "neighbours kept per item (the strongest |similarity|)")
    shrink: float = option(10.0, "similarity shrinkage (pseudo co-occurrences in the cosine's denominator)")
    rating_weight: bool = option(True, "ranking: weight history entries by rating/5")
    prior: float = option(10.0, "pseudo-ratings pulling item statistics to the global ones")
    deviation_shrink: float = option(1.0, "preference: pseudo-similarity in d(c)'s denominator")
    max_len: int | None = option(None, "history entries used; None = the task's history length")


class ItemKNN(VocabIndexed, Recommender):
    name = "itemknn"
    OPTIONS: ClassVar[type[Options]] = ItemKNNOptions

    def __init__(self, **options):
        super().__init__(**parse_options(self, options))
        self.vocab: ItemVocab | None = None
        self.max_len: int | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self._keys: np.ndarray | None = None

    # -- fitting --------------------------------------------------------------------------
    def fit(self, train, valid=None, seed: int = 0) -> "ItemKNN":
        check_task(type(self).__name__, train.task, self.capabilities.tasks)
        self.task = train.task
        self.max_len = int(self.options.get("max_len") or train.history_len)
        tl = train.train_interactions.drop_duplicates(["user_id", "item_id"], keep="last")
        if tl.empty:
            raise ValueError("ItemKNN: the training split has no interactions")
        self.vocab = ItemVocab(tl["item_id"].astype(str))
        items = self.vocab.encode(tl["item_id"].astype(str))
        users = np.unique(tl["user_id"].to_numpy(), return_inverse=True)[1]
        ratings = tl["rating"].to_numpy(dtype=np.float64)
        if self.task == "ranking":
            values = np.ones(len(items))
        else:
            # Adjusted cosine (Sarwar et al.): ratings centred on each user's mean, so items
            # rated alike get positive, items rated oppositely negative similarity.
            rated = ~np.isnan(ratings)
            users, items, ratings = users[rated], items[rated], ratings[rated]
            user_mean = np.bincount(users, weights=ratings) / np.maximum(np.bincount(users), 1)
            values = ratings - user_mean[users]
        sim = self._similarity(users, items, values)
        counts = np.bincount(items, minlength=self.vocab.size).astype(np.float64)
        self.arrays = {"indptr": sim.indptr.astype(np.int64), "indices": sim.indices.astype(np.int64),
                       "data": sim.data.astype(np.float32), "log_count": np.log1p(counts)}
        if self.task == "preference":
            self._fit_preference(train, items, ratings)
        self._keys = None
        return self

    def _similarity(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
        """Shrunk cosine between item columns of the (users x items) matrix of `values`."""
        n_items = self.vocab.size
        x = sp.csr_matrix((values, (users, items)), shape=(users.max() + 1, n_items))
        co = (x.T @ x).tocsr()
        co.setdiag(0.0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        co = co.tocoo()
        values = co.data / (norms[co.row] * norms[co.col] + float(self.options["shrink"]))
        sim = sp.csr_matrix((values, (co.row, co.col)), shape=(n_items, n_items))
        return self._keep_top(sim, int(self.options["neighbors"]))

    @staticmethod
    def _keep_top(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
        """Each row (a candidate item) keeps its k strongest neighbours (largest |similarity|)."""
        rows, cols, vals = [], [], []
        for r in range(sim.shape[0]):
            lo, hi = sim.indptr[r], sim.indptr[r + 1]
            data, idx = sim.data[lo:hi], sim.indices[lo:hi]
            if hi - lo > k:
                # stable tie-break by column index: sort by (-|value|, column)
                keep = np.lexsort((idx, -np.abs(data)))[:k]
                data, idx = data[keep], idx[keep]
            rows.append(np.full(len(idx), r))
            cols.append(idx)
            vals.append(data)
        out = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape)
        out.sort_indices()
        return out

    def _fit_preference(self, train, items: np.ndarray, ratings: np.ndarray) -> None:
        prior = float(self.options["prior"])
        liked = ratings >= LIKE_THRESHOLD
        stats = {
            "n": np.bincount(items, minlength=self.vocab.size).astype(np.float64),
            "total": np.bincount(items, weights=ratings, minlength=self.vocab.size),
            "liked": np.bincount(items, weights=liked.astype(float), minlength=self.vocab.size),
        }
        global_mean, global_like = float(ratings.mean()), float(liked.mean())

        def item_stats(drop_rating: np.ndarray | float = np.nan, cand: np.ndarray | None = None):
            n, total, like = stats["n"], stats["total"], stats["liked"]
            if cand is not None:  # leave the example's own rating out of its item's statistics
                own = ~np.isnan(drop_rating) & (cand != PAD) & (n[cand] > 0)
                r = np.where(own, drop_rating, 0.0)
                n, total, like = n[cand] - own, total[cand] - r, like[cand] - (own & (r >= LIKE_THRESHOLD))
            mean = (total + prior * global_mean) / (n + prior)
            rate = (like + prior * global_like) / (n + prior)
            return mean, np.log(rate / (1.0 - rate))

        self.arrays["item_mean"], self.arrays["item_like_logit"] = item_stats()
        examples = train.examples
        if not examples or len({e.label for e in examples}) < 2:
            raise ValueError("ItemKNN: preference training needs labelled examples of both classes")
        cand = self.vocab.encode(e.candidates[0] for e in examples)[:, None]
        features = self._features([e.profile for e in examples], cand)
        # Honest training features: a training example's item statistics must not contain
        # its own label (they do not at test time), else the item prior gets over-trusted.
        mean, logit = item_stats(np.array([e.rating for e in examples])[:, None], cand)
        features[..., 0], features[..., 1] = logit, mean
        labels = np.array([e.label for e in examples])
        clf = LogisticRegression(max_iter=1000).fit(features.reshape(-1, len(FEATURES)), labels)
        self.arrays["coef"] = clf.coef_.ravel().astype(np.float64)
        self.arrays["intercept"] = clf.intercept_.astype(np.float64)

    # -- scoring --------------------------------------------------------------------------
    def _similarities(self, cand: np.ndarray, hist: np.ndarray) -> np.ndarray:
        """sim(c, j) for (n, c) candidates x (n, L) history -> (n, c, L); 0 where absent."""
        if self._keys is None:
            a, size = self.arrays, self.vocab.size
            rows = np.repeat(np.arange(size, dtype=np.int64), np.diff(a["indptr"]))
            self._keys = rows * size + a["indices"]  # sorted: CSR rows in order, columns sorted
        if len(self._keys) == 0:
            return np.zeros(cand.shape + hist.shape[1:])
        query = cand[:, :, None] * self.vocab.size + hist[:, None, :]
        pos = np.searchsorted(self._keys, query)
        pos = np.minimum(pos, len(self._keys) - 1)
        found = (self._keys[pos] == query) & (hist[:, None, :] != PAD) & (cand[:, :, None] != PAD)
        return np.where(found, self.arrays["data"][pos], 0.0)

    def _histories(self, profiles: Sequence[Profile]) -> tuple[np.ndarray, np.ndarray]:
        items, buckets = self.vocab.encode_histories(profiles, self.max_len)
        ratings = np.where(buckets > 0, buckets / 2.0, np.nan)
        return items, ratings

    def _features(self, profiles: Sequence[Profile], cand: np.ndarray) -> np.ndarray:
        """(n, c, 4) preference features (see FEATURES)."""
        hist, ratings = self._histories(profiles)
        a = self.arrays
        resid = ratings - a["item_mean"][hist]
        has = (hist != PAD) & ~np.isnan(resid)
        resid = np.where(has, resid, 0.0)
        n_rated = has.sum(1)
        bias = np.where(n_rated > 0, resid.sum(1) / np.maximum(n_rated, 1), 0.0)  # (n,)
        sims = self._similarities(cand, hist) * has[:, None, :]
        dev = (sims * (resid - bias[:, None])[:, None, :]).sum(-1) / (np.abs(sims).sum(-1) + float(self.options["deviation_shrink"]))
        return np.stack(
            [a["item_like_logit"][cand], a["item_mean"][cand], np.broadcast_to(bias[:, None], cand.shape), dev], axis=-1
        )

    def score(self, profiles: Sequence[Profile], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        if self.vocab is None:
            raise RuntimeError("ItemKNN is not fitted (call fit or load first)")
        if len(profiles) != len(candidates):
            raise ValueError(f"{len(profiles)} profiles but {len(candidates)} candidate lists")
        cand = self.vocab.encode_candidates(candidates)
        if self.task == "preference":
            logits = self._features(profiles, cand) @ self.arrays["coef"] + self.arrays["intercept"][0]
            return 1.0 / (1.0 + np.exp(-logits))
        hist, ratings = self._histories(profiles)
        weights = np.where(hist == PAD, 0.0, 1.0)
        if self.options["rating_weight"]:
            weights = np.where(np.isnan(ratings), weights, ratings / 5.0)
        knn = (self._similarities(cand, hist) * weights[:, None, :]).sum(-1)
        return knn + TIE_BREAK * self.arrays["log_count"][cand]

    # -- persistence ----------------------------------------------------------------------
    def config(self) -> dict:
        cfg = super().config()
        cfg.update(vocab=None if self.vocab is None else self.vocab.to_json(), max_len=self.max_len)
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> "ItemKNN":
        model = super().from_config(config)
        model.vocab = ItemVocab.from_json(config["vocab"]) if config.get("vocab") is not None else None
        model.max_len = config.get("max_len")
        return model

    def save_state(self, directory) -> None:
        if self.vocab is None:
            raise RuntimeError("ItemKNN is not fitted: nothing to save")
        save_file({k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, str(directory / STATE_FILE))

    def load_state(self, directory) -> None:
        self.arrays = dict(load_file(str(directory / STATE_FILE)))
        self._keys = None
