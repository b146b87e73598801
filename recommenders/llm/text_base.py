"""What the text recommenders share: options, rendering, the text interface, the training
loop skeleton and persistence. CrossEncoder and TwoTower fill in the model-specific parts.

Text interface (Capabilities(text_input=True, differentiable=True)):
- ``renderer``: a benchmark.rendering.Renderer over the training catalog (the catalog rows
  are saved with the model, so a loaded model renders without the dataset);
  ``tokenizer``, ``model`` (the torch module), ``device``.
- ``score_text(profile_texts, candidate_texts) -> np.ndarray``: one score per pair; a
  like-probability for the preference task, the raw score for ranking.
  ``score_text_logits`` gives raw scores for both tasks. ``score(profiles, candidates)``
  renders, then calls ``score_text``. Repeated queries are served from an LRU cache that
  training and loading clear.
- ``embedding_forward(profiles, candidates) -> (base, forward)``: differentiable scoring from
  input token embeddings, for FGSM/PGD and embedding-space adversarial training.
- ``token_gradients(profile_texts, candidate_texts, targets=None) -> TokenGradients``: the
  gradient w.r.t. every input token's embedding, with token ids, the text each token came
  from and its character offsets, for HotFlip-style token substitution.
- ``fine_tune_text(profile_texts, candidate_texts, labels)``: continue training on (possibly
  adversarial) texts, for attack-augmented training; ``training_units(examples, seed)``
  renders examples into those texts exactly as fit renders its training data.
- ``training_objective(factory)``: a context under which every training run uses the loss
  ``factory(batch_loss)`` builds (the public loss hook, e.g. embedding-space adversarial
  training); ``batch_loss(prepared, idx)`` is the model's own. Training runs through
  recommenders.training's loop; subclasses give ``_prepare_data``, ``_batches``, ``_loss``.
"""

from __future__ import annotations

import contextlib
import json
import math
from abc import abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmark.metrics import PRIMARY_METRIC, validation_metric
from benchmark.rendering import DEFAULT_TEMPLATE, Renderer
from recommenders.base import Capabilities, Recommender
from benchmark.options import Options, option
from recommenders.llm import text_training as tt
from recommenders.llm.backbones import MINILM, apply_lora, is_peft_model
from recommenders.training import EpochLoop

ITEMS_FILE = "items.json"
BACKBONE_DIR = "backbone"

@dataclass
class TextOptions(Options):
    """The options every text recommender takes (subclasses add theirs and change defaults)."""

    backbone: str = option(MINILM, "'minilm', 'tiny-bert', a hub id or a local path")
    backbone_config: dict | None = option(None, "tiny-bert only: BertConfig overrides (+ 'vocab_size' of its tokenizer)")
    template: str = option(DEFAULT_TEMPLATE, "rendering template (benchmark.rendering)")
    epochs: int = option(1, "fine-tuning epochs; 0: no fine-tuning (the two-tower's linear probe alone)")
    lr: float | None = option(5e-5, "learning rate (short CPU-budget runs: the top of the usual 2e-5..5e-5 range)")
    batch_size: int = option(16, "per step: preference pairs; ranking: whole groups (cross-encoder) or profiles (two-tower)")
    eval_batch_size: int = option(64, "pairs per scoring batch")
    max_length: int = option(256, "tokens; profiles longer than this lose their oldest entries")
    warmup: float = option(0.1, "learning-rate warm-up: a share of the steps (< 1) or a number of steps")
    weight_decay: float = option(0.01, "AdamW weight decay")
    head_lr: float | None = option(None, "learning rate of the freshly initialised scoring head (None: lr)")
    grad_clip: float | None = option(1.0, "gradient-norm clip (None or 0: none)")
    max_train_examples: int | None = option(None, "a seeded random subset of train.examples (CPU budgets)")
    max_valid_examples: int | None = option(None, "validation subset; None: 500 (preference) / 50 (ranking)")
    patience: int = option(1, "epochs without a better validation metric before stopping")
    calibrate_threshold: bool = option(True, "preference: move the like/dislike cut to the most accurate one on "
                                             "the validation subset (folded into the output bias)")
    negatives: int = option(4, "ranking: sampled negatives per profile in training")
    device: str = option("auto", "torch device ('auto': CUDA when available)")
    mixed_precision: bool = option(True, "bf16 autocast on CUDA")
    lora: bool = option(False, "train LoRA adapters (peft) instead of the whole backbone")
    lora_r: int = option(8, "LoRA rank")
    lora_alpha: int = option(16, "LoRA scaling alpha")
    lora_dropout: float = option(0.1, "LoRA dropout")
    lora_target_modules: list | None = option(None, "modules LoRA adapts (None: peft's per-architecture default)")
    cache_size: int = option(200_000, "cached query scores (and vectors, for the two-tower)")
    progress: bool | None = option(None, "tqdm bars: None = only on a terminal")


@dataclass
class TokenGradients:
    """Gradients w.r.t. input token embeddings, for HotFlip-style attacks.

    Row i holds the tokens the model saw for pair i (for the two-tower: the profile
    encoding followed by the candidate encoding). `segment` says which text a token came
    from (0 = profile text, 1 = candidate text, -1 = special token or padding) and
    `offsets` its character span in that text. `grads` is d objective / d embedding,
    with objective = the summed raw score, or, given targets, the binary cross-entropy of
    the raw scores against them (ascend it to push a prediction away from its label).
    The first-order change of the objective from putting token v at position j is
    (E[v] - E[input_ids[i, j]]) . grads[i, j], with E = model.get_input_embeddings().weight.
    """

    input_ids: torch.Tensor  # (n, L) long
    attention_mask: torch.Tensor  # (n, L)
    segment: torch.Tensor  # (n, L) long
    offsets: torch.Tensor  # (n, L, 2) long
    grads: torch.Tensor  # (n, L, H)
    scores: torch.Tensor  # (n,) raw scores (logits)


@dataclass
class PairData:
    """Preference training data: one labelled (profile text, candidate text) pair per unit."""

    profile_texts: list[str]
    candidate_texts: list[str]
    labels: np.ndarray  # float 0/1

    def __len__(self) -> int:
        return len(self.profile_texts)


@dataclass
class GroupData:
    """Ranking training data: a profile with its positive candidate first, then negatives."""

    profile_texts: list[str]
    candidate_groups: list[list[str]]

    def __len__(self) -> int:
        return len(self.profile_texts)


def items_to_json(items: pd.DataFrame) -> str:
    rows = []
    for item_id, row in items.iterrows():
        rec = {"item_id": str(item_id)}
        for col, value in row.items():
            rec[str(col)] = value if isinstance(value, (str, int, float, bool)) and not (
                isinstance(value, float) and math.isnan(value)
            ) else None
        rows.append(rec)
    return json.dumps({"columns": [str(c) for c in items.columns], "rows": rows}, ensure_ascii=False)


def items_from_json(text: str, source: str) -> pd.DataFrame:
    try:
        data = json.loads(text)
        frame = pd.DataFrame.from_records(data["rows"], columns=["item_id", *data["columns"]])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{source}: not a saved item catalog ({err})") from err
    frame["item_id"] = frame["item_id"].astype(str)
    return frame.set_index("item_id")


class TextRecommender(Recommender):
    capabilities: ClassVar[Capabilities] = Capabilities(text_input=True, differentiable=True)
    OPTIONS: ClassVar[type[TextOptions]] = TextOptions
    backbone_kind: ClassVar[str] = "classifier"

    def __init__(self, **options):
        self.opts = self.OPTIONS.parse(f"model {self.name or type(self).__name__!r}", options)  # typed, with defaults
        super().__init__(**options)  # self.options: as given (what config() saves)
        self.device = tt.resolve_device(self.opts.device)
        self.renderer: Renderer | None = None
        self.tokenizer = None
        self.model: torch.nn.Module | None = None
        self.items: pd.DataFrame | None = None
        self.history: list[dict] = []  # one record per training epoch
        self.calibration: dict = {}  # the preference threshold set on validation (fit)
        self._cache = tt.LRUCache(self.opts.cache_size)
        self._objective: Callable | None = None  # set by training_objective (a defense's loss)

    # -- the model-specific parts ------------------------------------------------
    @abstractmethod
    def _build(self, texts: list[str], seed: int) -> None:
        """Set self.tokenizer and self.model (fresh backbone) for training."""

    @abstractmethod
    def _prepare_data(self, data: PairData | GroupData) -> object:
        """Tokenise training data once; returns what _batches and _loss use."""

    @abstractmethod
    def _batches(self, prepared, rng: np.random.Generator) -> list[np.ndarray]: ...

    @abstractmethod
    def _loss(self, prepared, idx: np.ndarray) -> torch.Tensor: ...

    @abstractmethod
    def score_text_logits(self, profile_texts: Sequence[str], candidate_texts: Sequence[str]) -> np.ndarray:
        """Raw scores (logits), one per pair."""

    @abstractmethod
    def embedding_forward_text(
        self, profile_texts: Sequence[str], candidate_texts: Sequence[str]
    ) -> tuple[dict[str, torch.Tensor], Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
        """embedding_forward on texts: forward returns raw scores shaped (n_pairs,)."""

    @abstractmethod
    def token_gradients(self, profile_texts, candidate_texts, targets=None) -> TokenGradients: ...

    @abstractmethod
    def _save_model(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_model(self, directory: Path) -> None: ...

    def _wrap_lora(self) -> None:
        """Put LoRA adapters on the backbone (subclasses know where the backbone is)."""

    def _initialize_heads(self, data: PairData | GroupData, seed: int) -> None:
        """Data-dependent initialisation after the backbone is built (default: none)."""

    def _finish_training(self, data: PairData | GroupData, seed: int) -> None:
        """After training (fit or fine_tune_text) with the final weights (default: nothing)."""

    def _is_head_parameter(self, name: str) -> bool:
        """Parameters of a small scoring head (trained at head_lr where the model has one)."""
        return False

    def _shift_preference_logits(self, delta: float) -> bool:
        """Subtract `delta` from every preference logit the model produces, in the weights
        (e.g. its output bias), so scores, gradients and saved weights all agree. Returns
        False where the model has no such parameter (the threshold then stays at 0.5)."""
        return False

    def invalidate_cache(self) -> None:
        """Forget cached scores (and vectors); called whenever the weights change."""
        self._cache.clear()

    # -- rendering and the text interface -------------------------------------------
    def _require_fitted(self) -> None:
        if self.model is None or self.renderer is None:
            raise RuntimeError(f"{type(self).__name__}: fit or load the model before scoring")

    def render_pairs(self, profiles, candidates) -> tuple[list[str], list[str]]:
        """Flattened (profile_text, candidate_text) pairs, row-major over profiles x candidates."""
        self._require_fitted()
        p_texts: list[str] = []
        c_texts: list[str] = []
        for profile, cands in zip(profiles, candidates):
            if not len(cands):
                continue
            first = self.renderer.render(profile, cands[0])
            p_texts.extend([first.profile_text] * len(cands))
            c_texts.append(first.candidate_text)
            c_texts.extend(self.renderer.candidate_text(c) for c in cands[1:])
        return p_texts, c_texts

    @staticmethod
    def _width(profiles, candidates) -> int:
        if len(profiles) != len(candidates):
            raise ValueError(f"{len(profiles)} profiles but {len(candidates)} candidate lists")
        widths = {len(c) for c in candidates}
        if len(widths) > 1:
            raise ValueError(f"every profile needs the same number of candidates; got {sorted(widths)}")
        return widths.pop() if widths else 0

    def score(self, profiles, candidates) -> np.ndarray:
        width = self._width(profiles, candidates)
        p_texts, c_texts = self.render_pairs(profiles, candidates)
        return self.score_text(p_texts, c_texts).reshape(len(profiles), width)

    def score_text(self, profile_texts: Sequence[str], candidate_texts: Sequence[str]) -> np.ndarray:
        """One score per pair: a like-probability (preference) or the raw score (ranking)."""
        logits = self.score_text_logits(profile_texts, candidate_texts)
        if self.task == "preference":
            return 1.0 / (1.0 + np.exp(-logits))
        return logits

    def embedding_forward(self, profiles, candidates):
        """(base, forward): base holds detached clones of the input token embeddings of the
        rendered pairs; forward(perturbed) -> raw scores (logits) shaped (n, c), differentiable
        w.r.t. the tensors in `perturbed` (same keys and shapes as base). Puts the model in eval
        mode (no dropout); set model.train() afterwards for adversarial training."""
        n, width = len(profiles), self._width(profiles, candidates)
        base, forward = self.embedding_forward_text(*self.render_pairs(profiles, candidates))
        return base, lambda perturbed: forward(perturbed).view(n, width)

    def _cached_logits(self, profile_texts, candidate_texts) -> tuple[np.ndarray, dict[tuple[str, str], list[int]]]:
        """(out, missing): `out` holds the cached raw score of every pair seen before;
        `missing` maps each uncached (profile, candidate) pair to its positions in `out`."""
        self._check_pairs(profile_texts, candidate_texts)
        out = np.empty(len(profile_texts), dtype=np.float64)
        missing: dict[tuple[str, str], list[int]] = {}
        for i, key in enumerate(zip(profile_texts, candidate_texts)):
            value = self._cache.get(key)
            if value is None:
                missing.setdefault(key, []).append(i)
            else:
                out[i] = value
        return out, missing

    def _check_pairs(self, profile_texts, candidate_texts) -> None:
        self._require_fitted()
        if len(profile_texts) != len(candidate_texts):
            raise ValueError(f"{len(profile_texts)} profile texts but {len(candidate_texts)} candidate texts")

    # -- training ---------------------------------------------------------------------
    def _catalog(self, train) -> pd.DataFrame:
        """The catalog rows any split can ask about: every item in the timeline."""
        items = train.dataset.items
        wanted = pd.Index(sorted(train.timeline["item_id"].unique()))
        return items.loc[items.index.intersection(wanted)].sort_index()

    def training_units(self, examples, seed: int = 0) -> tuple[list[str], list, list[int]]:
        """(profile texts, candidate texts, labels) of `examples`, rendered as fit renders its
        training data, in the form fine_tune_text takes: preference -> one pair per example
        with its 0/1 label; ranking -> the profile with its positive first and ``negatives``
        sampled negatives (from the example's own candidates, seeded by `seed`), label 0."""
        profiles, candidates, labels = [], [], []
        if self.task == "preference":
            for e in examples:
                r = self.renderer.render(e.profile, e.candidates[0])
                profiles.append(r.profile_text)
                candidates.append(r.candidate_text)
                labels.append(int(e.label))
            return profiles, candidates, labels
        rng = np.random.default_rng([seed, 31337])
        n_neg = int(self.opts.negatives)
        for e in examples:
            positive = e.candidates[e.label]
            others = [c for i, c in enumerate(e.candidates) if i != e.label]
            chosen = [others[i] for i in rng.choice(len(others), size=min(n_neg, len(others)), replace=False)] \
                if others else []
            profiles.append(self.renderer.render(e.profile, positive).profile_text)
            candidates.append([self.renderer.candidate_text(c) for c in [positive, *chosen]])
            labels.append(0)
        return profiles, candidates, labels

    def _training_data(self, examples, seed: int) -> PairData | GroupData:
        profiles, candidates, labels = self.training_units(examples, seed)
        if self.task == "preference":
            return PairData(profiles, candidates, np.array(labels, dtype=np.float32))
        return GroupData(profiles, candidates)

    def fit(self, train, valid=None, seed: int = 0) -> "TextRecommender":
        """Train a fresh backbone on train.examples (a seeded subset of max_train_examples).
        With valid and epochs > 1, each epoch is scored on a seeded subset of valid
        (max_valid_examples; AUC or NDCG@10, benchmark.metrics.validation_metric), training stops after `patience` epochs without
        improvement and the best epoch's weights are kept."""
        if train.task not in self.capabilities.tasks:
            raise ValueError(f"{type(self).__name__} does not support task {train.task!r}")
        self.task = train.task
        self.items = self._catalog(train)
        self.renderer = Renderer(self.items, self.opts.template)
        keep = tt.seeded_subset(len(train.examples), self.opts.max_train_examples, seed)
        examples = [train.examples[i] for i in keep]
        if not examples:
            raise ValueError(f"{type(self).__name__}.fit: the {train.split!r} split of task {train.task!r} has no examples")
        data = self._training_data(examples, seed)
        tokenizer_texts = list(dict.fromkeys(data.profile_texts))
        tokenizer_texts += [self.renderer.candidate_text(i) for i in self.items.index]
        self._build(tokenizer_texts, seed)
        self.model.to(self.device)
        self._initialize_heads(data, seed)
        self.history = []
        valid_examples = None
        if valid is not None and valid.examples:
            limit = self.opts.max_valid_examples or (500 if self.task == "preference" else 50)
            valid_examples = [valid.examples[i] for i in tt.seeded_subset(len(valid.examples), limit, seed, salt=7)]
        epochs = int(self.opts.epochs)
        self._train(data, epochs, seed, valid_examples if epochs > 1 else None)
        if self.task == "preference" and self.opts.calibrate_threshold and valid_examples:
            self._calibrate_threshold(valid_examples)
        return self

    def _calibrate_threshold(self, valid_examples) -> None:
        """Set the like/dislike cut to the validation subset's most accurate one (kept in
        `calibration`, saved with the model: the logit threshold and the validation accuracy
        before and after). The ranking of pairs, hence AUC, is unchanged."""
        labels = np.asarray([e.label for e in valid_examples])
        pairs = self.render_pairs([e.profile for e in valid_examples], [e.candidates[:1] for e in valid_examples])
        logits = np.asarray(self.score_text_logits(*pairs), dtype=float)
        at_zero = float(np.mean((logits >= 0).astype(int) == labels))
        threshold, accuracy = tt.accuracy_threshold(labels, logits)
        if threshold != 0.0 and not self._shift_preference_logits(threshold):
            threshold, accuracy = 0.0, at_zero
        self.invalidate_cache()  # the scores cached above are the unshifted ones
        self.calibration = {
            "threshold_logit": threshold,
            "valid_accuracy_at_0.5": at_zero,
            "valid_accuracy_calibrated": accuracy,
            "valid_examples": len(labels),
        }

    def fine_tune_text(self, profile_texts, candidate_texts, labels, epochs: int = 1, seed: int = 0, lr=None):
        """Continue training from the current weights on texts (e.g. adversarial examples with
        their true labels). Preference: candidate_texts is one text per profile and labels are
        0/1. Ranking: candidate_texts holds one list per profile and labels the index of the
        positive in it (the rest are negatives). Returns the per-epoch training log."""
        self._check_pairs(profile_texts, candidate_texts)
        if self.task == "preference":
            data: PairData | GroupData = PairData(
                list(profile_texts), list(candidate_texts), np.asarray(labels, dtype=np.float32)
            )
        else:
            groups = []
            for cands, pos in zip(candidate_texts, labels):
                cands = list(cands)
                groups.append([cands[pos], *cands[:pos], *cands[pos + 1 :]])
            data = GroupData(list(profile_texts), groups)
        start = len(self.history)
        self._train(data, epochs, seed, None, lr=lr)
        return self.history[start:]

    def batch_loss(self, prepared, idx: np.ndarray) -> torch.Tensor:
        """The model's own training loss of one batch (indices `idx` into the prepared data)."""
        return self._loss(prepared, idx)

    @contextlib.contextmanager
    def options_overridden(self, **changes):
        """Run with some options changed (the declared names only), restored afterwards; e.g.
        a defense that already capped the examples it augments lifts max_train_examples."""
        self.OPTIONS.parse(f"model {self.name or type(self).__name__!r}", changes)
        previous, self.opts = self.opts, replace(self.opts, **changes)
        try:
            yield self
        finally:
            self.opts = previous

    @contextlib.contextmanager
    def training_objective(self, factory: Callable):
        """Train under another objective inside this context (the public loss hook defenses
        use): every training run (fit or fine_tune_text) calls ``factory(batch_loss)`` once
        it starts, with the backbone built, and gets ``loss(prepared, idx)`` or ``(loss,
        close)``; that loss replaces the model's for every batch, and ``close()`` runs when
        the run ends."""
        previous, self._objective = self._objective, factory
        try:
            yield self
        finally:
            self._objective = previous

    def _train(self, data, epochs: int, seed: int, valid_examples, lr=None) -> None:
        close = None
        loss_of = self.batch_loss
        if self._objective is not None:
            made = self._objective(self.batch_loss)
            loss_of, close = made if isinstance(made, tuple) else (made, None)
        try:
            self._train_loop(data, epochs, seed, valid_examples, lr, loss_of)
        finally:
            if close is not None:
                close()

    def _train_loop(self, data, epochs: int, seed: int, valid_examples, lr, loss_of) -> None:
        if self.opts.lora and not self._has_lora():
            self._wrap_lora()
            self.model.to(self.device)
        prepared = self._prepare_data(data)
        rng = np.random.default_rng([seed, 2718])
        torch.manual_seed(seed)
        steps = len(self._batches(prepared, np.random.default_rng(0)))
        optimizer = tt.make_optimizer(
            self.model.named_parameters(), lr or self.opts.lr, self.opts.weight_decay,
            head_lr=self.opts.head_lr, is_head=self._is_head_parameter,
        )  # fmt: skip
        scheduler = tt.make_scheduler(optimizer, steps * epochs, self.opts.warmup)

        def run_epoch(epoch: int) -> dict:
            total, count = 0.0, 0
            batches = self._batches(prepared, rng)
            bar = tqdm(batches, desc=f"{self.name} epoch {epoch}/{epochs}", disable=self._no_progress(), leave=False)
            for idx in bar:
                with tt.autocast(self.device, self.opts.mixed_precision):
                    loss = loss_of(prepared, idx)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.opts.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts.grad_clip)
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
                bar.set_postfix(loss=f"{total / count:.4f}")
            self.model.eval()
            self.invalidate_cache()
            return {"epoch": len(self.history) + 1, "train_loss": total / max(count, 1), "units": count}

        # The one training loop (recommenders.training); its per-batch bars are this model's.
        # patience 0 stops at the first epoch without improvement, as 1 does.
        metric = PRIMARY_METRIC[self.task]  # what _validate computes (benchmark.metrics.validation_metric)
        loop = EpochLoop(epochs=epochs, patience=max(1, int(self.opts.patience)), metric=f"valid_{metric}",
                         progress=False, snapshot=tt.snapshot)
        start = len(self.history)
        validate = (lambda: self._validate(valid_examples)[1]) if valid_examples else None
        result = loop.run(self.model, run_epoch, validate, log=self.history)
        if result["valid_metric"] is not None:
            self.history[-1]["best_epoch"] = start + result["best_epoch"]
        self.model.eval()
        # Forget what validation cached, so a fitted model's scores do not depend on it.
        self.invalidate_cache()
        self._finish_training(data, seed)

    def _has_lora(self) -> bool:
        return is_peft_model(self.model) or any(is_peft_model(m) for m in self.model.children())

    def _lora(self, model, kind: str):
        o = self.opts
        return apply_lora(model, kind, o.lora_r, o.lora_alpha, o.lora_dropout, o.lora_target_modules)

    def _no_progress(self):
        p = self.opts.progress
        return None if p is None else not p

    def _validate(self, examples) -> tuple[str, float]:
        rows = self.score_examples(examples, batch_size=64)
        return validation_metric(self.task, rows, [e.label for e in examples])

    # -- inference helpers --------------------------------------------------------------
    @contextlib.contextmanager
    def _inference(self):
        """Context for scoring: no autograd, eval mode, bf16 autocast on CUDA."""
        self.model.eval()
        with torch.inference_mode(), tt.autocast(self.device, self.opts.mixed_precision):
            yield

    # -- persistence ------------------------------------------------------------------
    def config(self) -> dict:
        return {**super().config(), "history": self.history, "calibration": self.calibration}

    @classmethod
    def from_config(cls, config: dict) -> "TextRecommender":
        model = super().from_config(config)
        model.history = list(config.get("history", []))
        model.calibration = dict(config.get("calibration", {}))
        return model

    def save_state(self, directory: Path) -> None:
        self._require_fitted()
        (directory / ITEMS_FILE).write_text(items_to_json(self.items), encoding="utf-8")
        self._save_model(directory)

    def load_state(self, directory: Path) -> None:
        path = directory / ITEMS_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing (the item catalog the model renders with)")
        self.items = items_from_json(path.read_text(encoding="utf-8"), str(path))
        self.renderer = Renderer(self.items, self.opts.template)
        self._load_model(directory)
        self.model.to(self.device)
        self.model.eval()
        self.invalidate_cache()

