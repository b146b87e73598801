"""Cross-encoder: a Hugging Face sequence classifier (one logit) over the sentence pair
(profile text, candidate text) — the seed article's BERT like/dislike model, generalised.

- Preference task: binary cross-entropy on the like label; score = sigmoid(logit).
- Ranking task: each training profile with its positive and `negatives` sampled negatives
  (from the example's candidates: items the user never touched), softmax cross-entropy over
  the group (listwise); score = the logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from recommenders.llm import text_training as tt
from recommenders.llm.backbones import build_backbone, load_pretrained, plain_model
from benchmark.options import option
from recommenders.llm.text_base import (BACKBONE_DIR, GroupData, PairData, TextOptions, TextRecommender,
                                        TokenGradients)


def gradient_objective(logits: torch.Tensor, targets) -> torch.Tensor:
    """The summed raw scores, or the summed binary cross-entropy against `targets`."""
    if targets is None:
        return logits.sum()
    targets = torch.as_tensor(np.asarray(targets, dtype=np.float32), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")


def ensure_pad_token(tokenizer, model) -> None:
    """Decoder-only backbones (GPT-style) ship without a pad token; batching needs one."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id


def _output_bias(model) -> torch.Tensor | None:
    """The bias of the classifier's last linear layer (BERT-style "classifier", RoBERTa's
    "classifier.out_proj", decoder-only "score"), or None where it has none."""
    head = getattr(model, "classifier", None) or getattr(model, "score", None)
    head = getattr(head, "out_proj", head)
    if isinstance(head, torch.nn.Sequential):
        head = next((m for m in reversed(head) if isinstance(m, torch.nn.Linear)), None)
    bias = getattr(head, "bias", None)
    return bias if isinstance(bias, torch.Tensor) and bias.numel() == 1 else None


@dataclass
class CrossEncoderOptions(TextOptions):
    # A BERT sequence classifier scores [CLS] through the pooler (dense + tanh) and then the
    # classifier. Sentence-transformers checkpoints (all-MiniLM-L6-v2) are trained with mean
    # pooling and ship that pooler untrained (zero bias, weights of std 0.009): at the
    # backbone's lr it stays a small random projection and the run may not learn at all
    # (ML-latest-small preference, seed 2, 2,000 examples: training loss 0.692 after two
    # epochs, test AUC 0.515; with the pooler at head_lr: 0.693).
    pooler_at_head_lr: bool = option(False, "train the pooler (dense + tanh over [CLS]) at head_lr with the classifier "
                                            "(for checkpoints that ship it untrained; without LoRA)")

    def __post_init__(self):
        if self.pooler_at_head_lr and self.lora:  # LoRA freezes every backbone weight, the pooler too
            raise ValueError("model 'cross-encoder': option pooler_at_head_lr needs lora: false "
                             "(LoRA keeps the pooler frozen)")


class CrossEncoder(TextRecommender):
    name: ClassVar[str] = "cross-encoder"
    backbone_kind: ClassVar[str] = "classifier"
    OPTIONS: ClassVar[type[TextOptions]] = CrossEncoderOptions

    # -- building ------------------------------------------------------------------
    def _build(self, texts: list[str], seed: int) -> None:
        self.tokenizer, self.model = build_backbone(
            self.opts.backbone, "classifier", texts, self.opts.backbone_config, seed
        )
        tt.prepare_tokenizer(self.tokenizer)
        ensure_pad_token(self.tokenizer, self.model)

    def _is_head_parameter(self, name: str) -> bool:
        # The new classification head ("classifier" on BERT-style models, "score" on decoder-only),
        # and BERT's pooler where it is untrained too.
        head = ("classifier", "score", "pooler") if self.opts.pooler_at_head_lr else ("classifier", "score")
        return any(part in head for part in name.split("."))

    def _initialize_heads(self, data: PairData | GroupData, seed: int) -> None:
        """Preference: start the head's output bias at the training like-rate's logit (the
        usual prior initialisation), so that sigmoid(logit) starts at the base rate and a
        short CPU-budget run does not end with every probability on one side of 0.5 (an
        AUC well above chance with an accuracy below the majority class)."""
        if not isinstance(data, PairData) or not len(data.labels):
            return
        rate = float(np.clip(np.mean(data.labels), 1e-3, 1 - 1e-3))
        bias = _output_bias(self.model)
        if bias is not None:
            with torch.no_grad():
                bias.fill_(float(np.log(rate / (1.0 - rate))))

    def _wrap_lora(self) -> None:
        self.model = self._lora(self.model, "classifier")

    def _shift_preference_logits(self, delta: float) -> bool:
        bias = _output_bias(self.model)
        if bias is None:
            return False
        with torch.no_grad():
            bias.sub_(float(delta))
        return True

    # -- training --------------------------------------------------------------------
    def _prepare_data(self, data: PairData | GroupData) -> dict:
        max_length = int(self.opts.max_length)
        if isinstance(data, PairData):
            enc = tt.encode(self.tokenizer, data.profile_texts, data.candidate_texts, max_length)
            return {
                "kind": "pairs",
                "enc": enc,
                "lengths": [len(x) for x in enc["input_ids"]],
                "labels": torch.as_tensor(data.labels, dtype=torch.float32),
            }
        flat_p, flat_c, starts = [], [], []
        for profile, group in zip(data.profile_texts, data.candidate_groups):
            starts.append(len(flat_p))
            flat_p.extend([profile] * len(group))
            flat_c.extend(group)
        enc = tt.encode(self.tokenizer, flat_p, flat_c, max_length)
        sizes = [len(g) for g in data.candidate_groups]
        return {
            "kind": "groups",
            "enc": enc,
            "starts": np.asarray(starts),
            "sizes": np.asarray(sizes),
            "lengths": [len(enc["input_ids"][s]) for s in starts],
        }

    def _batches(self, prepared: dict, rng: np.random.Generator) -> list[np.ndarray]:
        return tt.unit_batches(prepared, int(self.opts.batch_size), rng)

    def _loss(self, prepared: dict, idx: np.ndarray) -> torch.Tensor:
        pad_id = self.tokenizer.pad_token_id
        if prepared["kind"] == "pairs":
            logits = self._logits(tt.pad_batch(prepared["enc"], idx, pad_id, self.device))
            return F.binary_cross_entropy_with_logits(logits, prepared["labels"][idx].to(self.device))
        rows = tt.group_rows(prepared, idx)
        logits = self._logits(tt.pad_batch(prepared["enc"], np.concatenate(rows), pad_id, self.device))
        return tt.listwise_loss(logits, rows)  # the positive is each group's first candidate

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).logits.squeeze(-1).float()

    # -- scoring -----------------------------------------------------------------------
    def score_text_logits(self, profile_texts: Sequence[str], candidate_texts: Sequence[str]) -> np.ndarray:
        out, missing = self._cached_logits(profile_texts, candidate_texts)
        if missing:
            keys = list(missing)
            values = self._forward_pairs([k[0] for k in keys], [k[1] for k in keys])
            for key, value in zip(keys, values):
                self._cache.put(key, float(value))
                out[missing[key]] = value
        return out

    def _forward_pairs(self, profile_texts: list[str], candidate_texts: list[str]) -> np.ndarray:
        enc = tt.encode(self.tokenizer, profile_texts, candidate_texts, int(self.opts.max_length))
        out = np.empty(len(profile_texts), dtype=np.float32)
        with self._inference():
            for idx in tt.sorted_batches([len(x) for x in enc["input_ids"]], int(self.opts.eval_batch_size)):
                batch = tt.pad_batch(enc, idx, self.tokenizer.pad_token_id, self.device)
                out[idx] = self._logits(batch).cpu().numpy()
        return out

    # -- gradient hooks --------------------------------------------------------------------
    def embedding_forward_text(self, profile_texts, candidate_texts):
        """base = {"tokens": (n_pairs, L, H) input token embeddings of the tokenised pairs};
        forward(perturbed) -> raw scores (n_pairs,). The attention mask and token types are
        kept in the closure."""
        self._check_pairs(profile_texts, candidate_texts)
        enc = tt.encode(self.tokenizer, profile_texts, candidate_texts, int(self.opts.max_length))
        batch = tt.pad_batch(enc, range(len(profile_texts)), self.tokenizer.pad_token_id, self.device)
        self.model.eval()
        with torch.no_grad():
            tokens = self.model.get_input_embeddings()(batch.pop("input_ids")).detach().clone()

        def forward(perturbed: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.model(inputs_embeds=perturbed["tokens"], **batch).logits.squeeze(-1).float()

        return {"tokens": tokens}, forward

    def token_gradients(self, profile_texts, candidate_texts, targets=None) -> TokenGradients:
        """Gradients w.r.t. the input token embeddings of each pair (see TokenGradients).
        targets: like labels (0/1) for the cross-entropy objective; None: the raw score."""
        self._check_pairs(profile_texts, candidate_texts)
        enc = self.tokenizer(
            list(profile_texts),
            list(candidate_texts),
            truncation=True,
            max_length=int(self.opts.max_length),
            padding=True,  # to the longest pair, never to model_max_length
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        segment = torch.tensor(
            [[-1 if s is None else s for s in enc.sequence_ids(i)] for i in range(len(profile_texts))], dtype=torch.long
        )
        offsets = enc.pop("offset_mapping")
        batch = {k: v.to(self.device) for k, v in enc.items()}
        input_ids = batch.pop("input_ids")
        self.model.eval()
        with torch.enable_grad():
            embeds = self.model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
            logits = self.model(inputs_embeds=embeds, **batch).logits.squeeze(-1).float()
            (grads,) = torch.autograd.grad(gradient_objective(logits, targets), embeds)
        return TokenGradients(
            input_ids=input_ids.cpu(),
            attention_mask=batch["attention_mask"].cpu(),
            segment=segment,
            offsets=offsets,
            grads=grads.detach().cpu(),
            scores=logits.detach().cpu(),
        )

    # -- persistence --------------------------------------------------------------------------
    def _save_model(self, directory: Path) -> None:
        out = directory / BACKBONE_DIR
        plain_model(self.model).save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)

    def _load_model(self, directory: Path) -> None:
        self.tokenizer, self.model = load_pretrained(str(directory / BACKBONE_DIR), "classifier", directory_only=True)
        tt.prepare_tokenizer(self.tokenizer)
        ensure_pad_token(self.tokenizer, self.model)
