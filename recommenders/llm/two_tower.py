"""Two-tower bi-encoder: the profile text and the item text go through one shared encoder
(mean pooling over tokens, L2-normalised), and a pair is scored from the cosine similarity.

- Ranking task: score = cos / temperature + item bias; trained with in-batch softmax (every
  other profile's positive, plus `negatives` sampled negatives per profile, are the
  negatives; duplicates of a row's own positive are masked out).
- Preference task: logit = a * z(cos) + b + profile bias + item bias (a, b and the two linear
  bias heads learned; z = standardised), binary cross-entropy on the like label;
  score = sigmoid(logit).

Item vectors are cached by candidate text, so ranking many candidates costs one profile
encoding plus cached lookups, and an item-scope text attack that changes an item's text
gets that text encoded, never a stale vector. Training and loading clear the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from benchmark.options import option
from recommenders.llm import text_training as tt
from recommenders.llm.backbones import build_backbone, load_pretrained, plain_model
from recommenders.llm.cross_encoder import ensure_pad_token, gradient_objective
from recommenders.llm.text_base import (
    BACKBONE_DIR,
    GroupData,
    PairData,
    TextOptions,
    TextRecommender,
    TokenGradients,
)

HEAD_FILE = "head.safetensors"
PROBE_L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
MIN_PROBE = 32  # fewer labelled pairs than this: no probe (fine_tune_text on a handful of texts)


class Standardizer(torch.nn.Module):
    """(x - mean) / std per feature, with statistics set once (`calibrate`) and then fixed, so
    that training and scoring compute the same function whatever the batch holds."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.float().mean(0))
        self.var.copy_(x.float().var(0, unbiased=False) if len(x) > 1 else torch.ones_like(self.var))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / torch.sqrt(self.var + self.eps)


class TwoTowerModule(torch.nn.Module):
    """The shared encoder plus the small scoring heads.

    The heads read standardised features (statistics from the freshly built encoder over a
    sample of the training texts): L2-normalised vectors of one encoder differ little between
    texts, and their cosines sit around a common offset, so a new linear head on the raw
    values needs large weights before its output matters, which a short fine-tuning run
    never reaches (measured on ML-100K: the profile-bias head ranked users well, AUC 0.74,
    but its output stayed ~0.03 wide and was drowned by the cosine term)."""

    def __init__(self, encoder: torch.nn.Module, temperature: float):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.temperature = float(temperature)
        self.pref_scale = torch.nn.Parameter(torch.tensor(1.0))  # a in a*z(cos) + b
        self.pref_bias = torch.nn.Parameter(torch.zeros(()))
        self.cos_norm = Standardizer(1)
        self.profile_norm = Standardizer(hidden)
        self.item_norm = Standardizer(hidden)
        self.profile_bias = torch.nn.Linear(hidden, 1, bias=False)
        self.item_bias = torch.nn.Linear(hidden, 1, bias=False)
        torch.nn.init.zeros_(self.profile_bias.weight)
        torch.nn.init.zeros_(self.item_bias.weight)

    def get_input_embeddings(self) -> torch.nn.Module:
        """The shared word-embedding table (the E of TokenGradients), as on Hugging Face models."""
        return self.encoder.get_input_embeddings()

    def embed(self, attention_mask: torch.Tensor, **inputs) -> torch.Tensor:
        """Mean-pooled, L2-normalised text vectors (inputs: input_ids or inputs_embeds, ...)."""
        hidden = self.encoder(attention_mask=attention_mask, **inputs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return F.normalize(pooled.float(), dim=-1)

    def item_term(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_bias(self.item_norm(items)).squeeze(-1)

    def ranking_logits(self, profiles: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(P, H) x (I, H) -> (P, I): every profile against every item: cos / temperature + item bias."""
        return profiles @ items.T / self.temperature + self.item_term(items)

    def ranking_pair_logits(self, profiles: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(N, H) x (N, H) -> (N,): the ranking score of row-wise pairs."""
        return (profiles * items).sum(-1) / self.temperature + self.item_term(items)

    def preference_logits(self, profiles: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(N, H) x (N, H) -> (N,): a * z(cos) + b + profile bias + item bias, row-wise pairs."""
        cos = self.cos_norm((profiles * items).sum(-1, keepdim=True)).squeeze(-1)
        return (
            self.pref_scale * cos
            + self.pref_bias
            + self.profile_bias(self.profile_norm(profiles)).squeeze(-1)
            + self.item_term(items)
        )

    def head_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}


@dataclass
class TwoTowerOptions(TextOptions):
    head_lr: float | None = option(1e-3, "learning rate of the scale/bias heads, which start from scratch")
    temperature: float = option(0.05, "softmax temperature of the ranking loss over cosine scores")
    item_max_length: int = option(64, "tokens of an item text")
    # Linear probing then fine-tuning (LP-FT, Kumar et al. 2022): with the few hundred steps
    # a CPU budget allows, Adam at head_lr cannot grow the head to the size it needs
    # (ML-100K preference, 2,000 examples, one epoch: test AUC 0.705 by Adam alone, 0.753 with the probes).
    linear_probe: bool = option(True, "preference: fit the logistic head by L2-regularised logistic regression "
                                      "before fine-tuning and again on the final features")
    probe_examples: int = option(1024, "training pairs that set the heads' feature statistics and fit the probe")
    probe_l2: float | None = option(None, "L2 penalty of the probe's bias heads; None: chosen by 2-fold cross-validation")


class TwoTower(TextRecommender):
    name: ClassVar[str] = "two-tower"
    backbone_kind: ClassVar[str] = "encoder"
    OPTIONS: ClassVar[type[TextOptions]] = TwoTowerOptions

    def __init__(self, **options):
        super().__init__(**options)
        # Vectors by text; cleared with the score cache whenever the weights change.
        self._item_vectors = tt.LRUCache(self.opts.cache_size)
        self._profile_vectors = tt.LRUCache(min(self.opts.cache_size, 20_000))

    def invalidate_cache(self) -> None:
        super().invalidate_cache()
        self._item_vectors.clear()
        self._profile_vectors.clear()

    # -- building ----------------------------------------------------------------------
    def _build(self, texts: list[str], seed: int) -> None:
        self.tokenizer, encoder = build_backbone(
            self.opts.backbone, "encoder", texts, self.opts.backbone_config, seed
        )
        tt.prepare_tokenizer(self.tokenizer)
        ensure_pad_token(self.tokenizer, encoder)
        self.model = TwoTowerModule(encoder, self.opts.temperature)

    def _is_head_parameter(self, name: str) -> bool:
        return not name.startswith("encoder.")

    def _probe_sample(self, data: PairData | GroupData, seed: int):
        """(indices, profile vectors, positive-candidate vectors, all-candidate vectors) of a
        seeded sample of training units, from the current encoder."""
        keep = tt.seeded_subset(len(data), max(int(self.opts.probe_examples), 2), seed, salt=15485863)
        if isinstance(data, PairData):
            items = all_items = [data.candidate_texts[i] for i in keep]
        else:  # the positives pair with the profiles; negatives count among the items too
            items = [data.candidate_groups[i][0] for i in keep]
            all_items = [c for i in keep for c in data.candidate_groups[i]]
        # Clones: _vectors computes under inference_mode, and the probe needs autograd.
        p_vec = self._vectors([data.profile_texts[i] for i in keep], item=False).to(self.device).clone()
        i_vec = self._vectors(items, item=True).to(self.device).clone()
        everything = i_vec if all_items is items else self._vectors(all_items, item=True).to(self.device)
        return keep, p_vec, i_vec, everything

    def _initialize_heads(self, data: PairData | GroupData, seed: int) -> None:
        """Standardisation statistics from the fresh encoder over a seeded sample of the
        training pairs (profiles, their candidates, and the pairs' cosines); then, for the
        preference task, the linear probe."""
        keep, p_vec, i_vec, all_items = self._probe_sample(data, seed)
        self.model.profile_norm.calibrate(p_vec)
        self.model.item_norm.calibrate(all_items)
        self.model.cos_norm.calibrate((p_vec * i_vec).sum(-1, keepdim=True))
        if isinstance(data, PairData) and self.opts.linear_probe:
            self._fit_preference_head(p_vec, i_vec, data.labels[keep], seed)
        self.invalidate_cache()

    def _shift_preference_logits(self, delta: float) -> bool:
        with torch.no_grad():
            self.model.pref_bias.sub_(float(delta))
        return True

    def _finish_training(self, data: PairData | GroupData, seed: int) -> None:
        """Refit the preference head on the fine-tuned features (the encoder stays as trained)."""
        if isinstance(data, PairData) and self.opts.linear_probe and len(self.history):
            keep, p_vec, i_vec, _ = self._probe_sample(data, seed)
            result = self._fit_preference_head(p_vec, i_vec, data.labels[keep], seed)
            if result:
                self.history[-1].update(result)

    def _fit_preference_head(self, p_vec, i_vec, labels: np.ndarray, seed: int) -> dict:
        """L2-regularised logistic regression of the labels on the head's inputs (a, b and the
        two bias heads; the encoder fixed), full batch, L-BFGS. The penalty comes from
        probe_l2, or 2-fold cross-validation over PROBE_L2_GRID. Needs both labels among at
        least MIN_PROBE pairs (else the head is left as it is); returns a log entry."""
        labels = np.asarray(labels, dtype=np.float32)
        if len(labels) < MIN_PROBE or labels.min() == labels.max():
            return {}
        y = torch.as_tensor(labels, device=self.device)
        head = self.model
        params = [head.pref_scale, head.pref_bias, head.profile_bias.weight, head.item_bias.weight]
        start = [p.detach().clone() for p in params]

        def fit(rows, l2: float) -> None:
            with torch.no_grad():
                for p, v in zip(params, start):
                    p.copy_(v)
            optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

            def closure():
                optimizer.zero_grad()
                loss = F.binary_cross_entropy_with_logits(head.preference_logits(p_vec[rows], i_vec[rows]), y[rows])
                penalty = head.profile_bias.weight.square().sum() + head.item_bias.weight.square().sum()
                loss = loss + 0.5 * l2 * penalty
                loss.backward()
                return loss

            with torch.enable_grad():
                optimizer.step(closure)

        def held_out_loss(rows) -> float:
            with torch.no_grad():
                return float(F.binary_cross_entropy_with_logits(head.preference_logits(p_vec[rows], i_vec[rows]), y[rows]))

        l2 = self.opts.probe_l2
        cv = {}
        if l2 is None:
            folds = np.array_split(np.random.default_rng([seed, 92821]).permutation(len(labels)), 2)
            for value in PROBE_L2_GRID:
                losses = []
                for k in range(2):
                    fit(torch.as_tensor(folds[k]), value)
                    losses.append(held_out_loss(torch.as_tensor(folds[1 - k])))
                cv[value] = float(np.mean(losses))
            l2 = min(cv, key=cv.get)
        everything = torch.arange(len(labels))
        fit(everything, float(l2))
        for p in params:
            p.grad = None
        self.invalidate_cache()
        return {"probe_l2": float(l2), "probe_pairs": len(labels), "probe_train_loss": held_out_loss(everything)}

    def _wrap_lora(self) -> None:
        self.model.encoder = self._lora(self.model.encoder, "encoder")

    # -- tokenising ------------------------------------------------------------------------
    def _encode_texts(self, texts: Sequence[str], item: bool) -> dict[str, list]:
        limit = self.opts.item_max_length if item else self.opts.max_length
        return tt.encode(self.tokenizer, texts, None, int(limit))

    def _pad(self, enc: dict, idx) -> dict[str, torch.Tensor]:
        return tt.pad_batch(enc, idx, self.tokenizer.pad_token_id, self.device)

    # -- training ----------------------------------------------------------------------------
    def _prepare_data(self, data: PairData | GroupData) -> dict:
        profiles = list(dict.fromkeys(data.profile_texts))
        p_index = {t: i for i, t in enumerate(profiles)}
        groups = [[c] for c in data.candidate_texts] if isinstance(data, PairData) else data.candidate_groups
        items = list(dict.fromkeys(c for g in groups for c in g))
        i_index = {t: i for i, t in enumerate(items)}
        p_enc = self._encode_texts(profiles, item=False)
        unit_profile = np.array([p_index[t] for t in data.profile_texts])
        return {
            "kind": "pairs" if isinstance(data, PairData) else "groups",
            "p_enc": p_enc,
            "i_enc": self._encode_texts(items, item=True),
            "unit_profile": unit_profile,
            "unit_items": [np.array([i_index[c] for c in g]) for g in groups],
            "labels": torch.as_tensor(data.labels, dtype=torch.float32) if isinstance(data, PairData) else None,
            "lengths": [len(p_enc["input_ids"][j]) for j in unit_profile],
        }

    def _batches(self, prepared: dict, rng: np.random.Generator) -> list[np.ndarray]:
        return tt.length_grouped_batches(prepared["lengths"], int(self.opts.batch_size), rng)

    def _loss(self, prepared: dict, idx: np.ndarray) -> torch.Tensor:
        p_vec = self.model.embed(**self._pad(prepared["p_enc"], prepared["unit_profile"][idx]))
        if prepared["kind"] == "pairs":
            items = np.array([prepared["unit_items"][u][0] for u in idx])
            i_vec = self.model.embed(**self._pad(prepared["i_enc"], items))
            logits = self.model.preference_logits(p_vec, i_vec)
            return F.binary_cross_entropy_with_logits(logits, prepared["labels"][idx].to(self.device))
        # In-batch softmax over the batch's positives and sampled negatives.
        pool = np.unique(np.concatenate([prepared["unit_items"][u] for u in idx]))
        column = {item: j for j, item in enumerate(pool)}
        i_vec = self.model.embed(**self._pad(prepared["i_enc"], pool))
        logits = self.model.ranking_logits(p_vec, i_vec)
        positives = torch.tensor([column[prepared["unit_items"][u][0]] for u in idx], device=self.device)
        # The pool is deduplicated, so a row's positive is one column even when it is also
        # another row's positive or negative: it is never counted against itself.
        return F.cross_entropy(logits, positives)

    # -- scoring ---------------------------------------------------------------------------------
    def _vectors(self, texts: Sequence[str], item: bool) -> torch.Tensor:
        """Vectors for unique texts, from the cache or encoded in length-sorted batches."""
        cache = self._item_vectors if item else self._profile_vectors
        out: list[torch.Tensor | None] = [cache.get(t) for t in texts]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            enc = self._encode_texts([texts[i] for i in missing], item)
            with self._inference():
                for idx in tt.sorted_batches([len(x) for x in enc["input_ids"]], int(self.opts.eval_batch_size)):
                    vectors = self.model.embed(**self._pad(enc, idx)).float().cpu()
                    for j, vec in zip(idx, vectors):
                        out[missing[j]] = vec
                        cache.put(texts[missing[j]], vec)
        return torch.stack(out) if out else torch.zeros((0, self.model.encoder.config.hidden_size))

    def precompute_item_vectors(self, item_ids: Sequence[str] | None = None) -> int:
        """Encode the candidate texts of these items (default: the whole catalog) ahead of ranking."""
        self._require_fitted()
        ids = list(self.items.index if item_ids is None else item_ids)
        texts = list(dict.fromkeys(self.renderer.candidate_text(i) for i in ids))
        self._vectors(texts, item=True)
        return len(texts)

    def score_text_logits(self, profile_texts: Sequence[str], candidate_texts: Sequence[str]) -> np.ndarray:
        self._check_pairs(profile_texts, candidate_texts)
        if not len(profile_texts):
            return np.zeros(0, dtype=np.float64)
        profiles = list(dict.fromkeys(profile_texts))
        items = list(dict.fromkeys(candidate_texts))
        p_pos = {t: i for i, t in enumerate(profiles)}
        i_pos = {t: i for i, t in enumerate(items)}
        p_vec = self._vectors(profiles, item=False).to(self.device)[[p_pos[t] for t in profile_texts]]
        i_vec = self._vectors(items, item=True).to(self.device)[[i_pos[t] for t in candidate_texts]]
        with self._inference():
            logits = self._pair_logits(p_vec, i_vec)
        return logits.float().cpu().numpy().astype(np.float64)

    def _pair_logits(self, p_vec: torch.Tensor, i_vec: torch.Tensor) -> torch.Tensor:
        """Row-wise pair scores in the trained task's form."""
        if self.task == "preference":
            return self.model.preference_logits(p_vec, i_vec)
        return self.model.ranking_pair_logits(p_vec, i_vec)

    # -- gradient hooks ----------------------------------------------------------------------------
    def embedding_forward_text(self, profile_texts, candidate_texts):
        """base = {"profile_tokens": (n_pairs, Lp, H), "item_tokens": (n_pairs, Lc, H)}: the input
        token embeddings of each pair's profile text and candidate text (the towers encode them
        separately); forward(perturbed) -> raw scores (n_pairs,)."""
        self._check_pairs(profile_texts, candidate_texts)
        n = len(profile_texts)
        p_batch = self._pad(self._encode_texts(profile_texts, item=False), range(n))
        i_batch = self._pad(self._encode_texts(candidate_texts, item=True), range(n))
        self.model.eval()
        embed = self.model.get_input_embeddings()
        with torch.no_grad():
            base = {
                "profile_tokens": embed(p_batch.pop("input_ids")).detach().clone(),
                "item_tokens": embed(i_batch.pop("input_ids")).detach().clone(),
            }

        def forward(perturbed: dict[str, torch.Tensor]) -> torch.Tensor:
            p_vec = self.model.embed(inputs_embeds=perturbed["profile_tokens"], **p_batch)
            i_vec = self.model.embed(inputs_embeds=perturbed["item_tokens"], **i_batch)
            return self._pair_logits(p_vec, i_vec)

        return base, forward

    def token_gradients(self, profile_texts, candidate_texts, targets=None) -> TokenGradients:
        """Gradients w.r.t. the input token embeddings; each row is the profile encoding
        followed by the candidate encoding (segment 0 / 1; see TokenGradients)."""
        self._check_pairs(profile_texts, candidate_texts)
        parts = []
        for texts, limit, seg in (
            (profile_texts, self.opts.max_length, 0),
            (candidate_texts, self.opts.item_max_length, 1),
        ):
            enc = self.tokenizer(
                list(texts), truncation=True, max_length=int(limit), padding=True,
                return_offsets_mapping=True, return_tensors="pt",
            )  # fmt: skip
            segment = torch.tensor(
                [[-1 if s is None else seg for s in enc.sequence_ids(i)] for i in range(len(texts))], dtype=torch.long
            )
            segment[enc["attention_mask"] == 0] = -1
            offsets = enc.pop("offset_mapping")
            parts.append((enc, segment, offsets))
        self.model.eval()
        embed = self.model.get_input_embeddings()
        with torch.enable_grad():
            tensors, vectors = [], []
            for enc, _, _ in parts:
                batch = {k: v.to(self.device) for k, v in enc.items()}
                ids = batch.pop("input_ids")
                embeds = embed(ids).detach().requires_grad_(True)
                tensors.append((ids, batch["attention_mask"], embeds))
                vectors.append(self.model.embed(inputs_embeds=embeds, **batch))
            logits = self._pair_logits(*vectors).float()
            grads = torch.autograd.grad(gradient_objective(logits, targets), [t[2] for t in tensors])
        return TokenGradients(
            input_ids=torch.cat([t[0].cpu() for t in tensors], dim=1),
            attention_mask=torch.cat([t[1].cpu() for t in tensors], dim=1),
            segment=torch.cat([p[1] for p in parts], dim=1),
            offsets=torch.cat([p[2] for p in parts], dim=1),
            grads=torch.cat([g.detach().cpu() for g in grads], dim=1),
            scores=logits.detach().cpu(),
        )

    # -- persistence ---------------------------------------------------------------------------------
    def _save_model(self, directory: Path) -> None:
        out = directory / BACKBONE_DIR
        plain_model(self.model.encoder).save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.model.head_state().items()}, str(directory / HEAD_FILE))

    def _load_model(self, directory: Path) -> None:
        self.tokenizer, encoder = load_pretrained(str(directory / BACKBONE_DIR), "encoder", directory_only=True)
        tt.prepare_tokenizer(self.tokenizer)
        ensure_pad_token(self.tokenizer, encoder)
        self.model = TwoTowerModule(encoder, self.opts.temperature)
        path = directory / HEAD_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing (the two-tower scoring head)")
        missing, unexpected = self.model.load_state_dict(load_file(str(path)), strict=False)
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise ValueError(f"{path}: head tensors do not match (missing {missing}, unexpected {unexpected})")
