"""causal-lm: a decoder language model asked whether the user will like the candidate
(TALLRec-style), over any Hugging Face causal LM; offline default SmolLM2-135M-Instruct.

- Prompt: recommenders.llm.prompts (named, versioned; the chat template where the tokenizer
  has one) around the rendered profile and candidate texts (benchmark.rendering).
- Raw score = logit(Yes) - logit(No) at the answer position (the next token after the
  prompt), so sigmoid(raw) = P(Yes) / (P(Yes) + P(No)): the preference score. Ranking uses
  the same raw score per candidate. Both answer words must be single tokens (checked when
  the backbone is loaded).
- Batches are left-padded with explicit position ids (positions count real tokens only),
  so a padded row scores as it does alone, and the answer position is the last column.
- Ranking: the prompt is prefix (head + profile, long and shared) + suffix (candidate +
  question, short). The prefix is encoded once per profile and every candidate is scored
  from its KV cache, in batches (option prefix_cache; same scores to ~1e-5 in float32).
- Training (TextRecommender's loop): preference = binary cross-entropy of
  P(Yes)/(P(Yes)+P(No)) against the like label (TALLRec's answer-token loss restricted to the
  two answers); ranking = listwise softmax over a profile's candidates. lora=True trains
  LoRA adapters (peft), otherwise every weight (full fine-tuning). No training examples,
  max_train_examples=0 or epochs=0: zero-shot, the pretrained model as it is.
- Saving: LoRA adapters as safetensors (adapter/) over a backbone loaded again by name, or
  the full weights (backbone/) when fully fine-tuned or when the backbone is the tiny test
  model; a zero-shot model saves only its config (the backbone is loaded by name).

TextRecommender hooks this class overrides: fit (zero-shot), _build, _prepare_data,
_batches, _loss, _wrap_lora, score_text_logits, embedding_forward_text, token_gradients,
_save_model, _load_model, config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.options import option
from benchmark.rendering import Renderer
from recommenders.llm import text_training as tt
from recommenders.llm.backbones import BackboneError, is_peft_model
from recommenders.llm.causal_backbones import CARD_FILE, SMOLLM2, TINY_LLAMA, load_causal_lm, load_directory
from recommenders.llm.cross_encoder import gradient_objective
from recommenders.llm.prompts import DEFAULT_PROMPT, get_prompt
from recommenders.llm.text_base import (BACKBONE_DIR, GroupData, PairData, TextOptions, TextRecommender,
                                        TokenGradients)

ADAPTER_DIR = "adapter"
STATE_FILE = "causal_lm.json"

@dataclass
class CausalLMOptions(TextOptions):
    backbone: str = option(SMOLLM2, "'smollm2-135m', 'tiny-llama', a .gguf file, a hub id or a local path")
    prompt: str = option(DEFAULT_PROMPT, "the question asked (recommenders.llm.prompts)")
    lr: float | None = option(None, "learning rate; None: 3e-4 with LoRA, 3e-5 for full fine-tuning")
    batch_size: int = option(8, "training prompts per step")
    eval_batch_size: int = option(16, "prompts per scoring batch")
    max_length: int = option(384, "tokens of the whole prompt; the profile loses its oldest tokens first")
    max_candidate_tokens: int = option(48, "the candidate text is cut to this, so the profile's share is fixed")
    prefix_cache: bool = option(True, "score many candidates of one profile from the profile prefix's KV cache")
    warmup: float = option(0.0, "learning-rate warm-up: a share of the steps (< 1) or a number of steps")
    weight_decay: float = option(0.0, "AdamW weight decay")


def _legacy_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer of a transformers cache (DynamicCache or legacy tuples)."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    if hasattr(cache, "to_legacy_cache"):
        cache = cache.to_legacy_cache()
    return [(k, v) for k, v in cache]


class CausalLM(TextRecommender):
    name: ClassVar[str] = "causal-lm"
    backbone_kind: ClassVar[str] = "causal"
    OPTIONS: ClassVar[type[TextOptions]] = CausalLMOptions

    def __init__(self, **options):
        super().__init__(**options)
        if self.opts.lr is None:
            self.opts.lr = 3e-4 if self.opts.lora else 3e-5
        self.prompt = get_prompt(self.opts.prompt)
        self.card: dict | None = None
        self.trained = False
        self.logit_offset = 0.0  # the preference threshold set on validation (fit), in logit units
        self._tokens = tt.LRUCache(20_000)  # text -> token ids (profiles repeat across candidates)
        self._base_state: dict | None = None  # tiny backbone under LoRA: the weights adapters sit on

    # -- building ----------------------------------------------------------------------
    def _build(self, texts: list[str], seed: int) -> None:
        extra = [self.prompt.instruction, self.prompt.candidate_intro, self.prompt.question, self.prompt.system]
        tokenizer, model, card = load_causal_lm(self.opts.backbone, [*texts, *extra], self.opts.backbone_config, seed)
        self._set_backbone(tokenizer, model, card)

    def _set_backbone(self, tokenizer, model, card: dict) -> None:
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        self.tokenizer, self.model, self.card = tokenizer, model, card
        self._tokens.clear()
        pieces = self.prompt.pieces(tokenizer)
        self._head_ids = self._encode(pieces.head)
        if not getattr(tokenizer, "chat_template", None) and tokenizer.bos_token_id is not None:
            self._head_ids = [tokenizer.bos_token_id, *self._head_ids]
        self._middle_ids = self._encode(pieces.middle)
        self._tail_ids = self._encode(pieces.tail)
        self.answer_ids = []
        for word in (self.prompt.answer_yes, self.prompt.answer_no):
            ids = self._encode(word)
            if len(ids) != 1:
                raise BackboneError(
                    f"backbone {self.opts.backbone!r}: prompt {self.prompt.name!r} needs the answer "
                    f"{word!r} to be one token, the tokenizer gives {len(ids)} ({ids})"
                )
            self.answer_ids.append(ids[0])
        budget = int(self.opts.max_length) - len(self._head_ids) - len(self._middle_ids) - len(self._tail_ids)
        self._profile_budget = budget - int(self.opts.max_candidate_tokens)
        if self._profile_budget < 8:
            raise ValueError(f"max_length={self.opts.max_length} leaves no room for the profile in prompt {self.prompt.name!r}")

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _wrap_lora(self) -> None:
        if self.opts.backbone == TINY_LLAMA:
            self._base_state = tt.snapshot(self.model)  # a random base cannot be loaded again by name
        self.model = self._lora(self.model, "causal")

    def fit(self, train, valid=None, seed: int = 0) -> "CausalLM":
        """Fine-tune (see TextRecommender.fit), or zero-shot when there is nothing to train on."""
        zero_shot = not train.examples or self.opts.max_train_examples == 0 or int(self.opts.epochs) == 0
        self.logit_offset = 0.0
        if not zero_shot:
            super().fit(train, valid, seed)
            self.trained = True
            return self
        if train.task not in self.capabilities.tasks:
            raise ValueError(f"{type(self).__name__} does not support task {train.task!r}")
        self.task = train.task
        self.items = self._catalog(train)
        self.renderer = Renderer(self.items, self.opts.template)
        self._build([self.renderer.candidate_text(i) for i in self.items.index], seed)
        self.model.to(self.device)
        self.model.eval()
        self.history, self.trained = [], False
        self.invalidate_cache()
        return self

    # -- token sequences -------------------------------------------------------------------
    def _profile_ids(self, text: str) -> list[int]:
        key = ("p", text)
        ids = self._tokens.get(key)
        if ids is None:
            ids = self._encode(text)[-self._profile_budget :]  # keep the most recent entries
            self._tokens.put(key, ids)
        return ids

    def _candidate_ids(self, text: str) -> list[int]:
        key = ("c", text)
        ids = self._tokens.get(key)
        if ids is None:
            ids = self._encode(text)[: int(self.opts.max_candidate_tokens)]
            self._tokens.put(key, ids)
        return ids

    def prefix_ids(self, profile_text: str) -> list[int]:
        """head + profile: the part of the prompt every candidate of a profile shares."""
        return self._head_ids + self._profile_ids(profile_text)

    def suffix_ids(self, candidate_text: str) -> list[int]:
        """middle + candidate + tail: ends at the answer position."""
        return self._middle_ids + self._candidate_ids(candidate_text) + self._tail_ids

    def prompt_ids(self, profile_text: str, candidate_text: str) -> list[int]:
        return self.prefix_ids(profile_text) + self.suffix_ids(candidate_text)

    def prompt_text(self, profile_text: str, candidate_text: str):
        """The prompt as one string with the profile's and candidate's spans in it."""
        return self.prompt.render(self.tokenizer, profile_text, candidate_text)

    @staticmethod
    def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device, offset: int = 0):
        """(input_ids, attention_mask, position_ids), left-padded; positions count real tokens from offset."""
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            if len(s):
                ids[row, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
                mask[row, width - len(s) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0) + offset
        return ids.to(device), mask.to(device), pos.to(device)

    def _answer_logit(self, logits: torch.Tensor) -> torch.Tensor:
        """logit(Yes) - logit(No) from (n, vocab) next-token logits, less the decision
        threshold set on validation (`logit_offset`; 0 zero-shot)."""
        logits = logits.float()
        return logits[:, self.answer_ids[0]] - logits[:, self.answer_ids[1]] - self.logit_offset

    def _shift_preference_logits(self, delta: float) -> bool:
        # The LM head has no bias to fold the threshold into: keep it beside the weights.
        self.logit_offset = self.logit_offset + float(delta)
        return True

    def _forward(self, ids, mask, pos=None, inputs_embeds=None) -> torch.Tensor:
        kwargs = dict(attention_mask=mask, position_ids=pos, use_cache=False, logits_to_keep=1)
        if inputs_embeds is not None:
            out = self.model(inputs_embeds=inputs_embeds, **kwargs)
        else:
            out = self.model(input_ids=ids, **kwargs)
        return self._answer_logit(out.logits[:, -1])

    # -- training ------------------------------------------------------------------------------
    def _prepare_data(self, data: PairData | GroupData) -> dict:
        if isinstance(data, PairData):
            seqs = [self.prompt_ids(p, c) for p, c in zip(data.profile_texts, data.candidate_texts)]
            return {"kind": "pairs", "seqs": seqs, "lengths": [len(s) for s in seqs],
                    "labels": torch.as_tensor(data.labels, dtype=torch.float32)}  # fmt: skip
        seqs, starts = [], []
        for profile, group in zip(data.profile_texts, data.candidate_groups):
            starts.append(len(seqs))
            seqs.extend(self.prompt_ids(profile, c) for c in group)
        sizes = np.asarray([len(g) for g in data.candidate_groups])
        return {"kind": "groups", "seqs": seqs, "starts": np.asarray(starts), "sizes": sizes,
                "lengths": [len(seqs[s]) for s in starts]}  # fmt: skip

    def _batches(self, prepared: dict, rng: np.random.Generator) -> list[np.ndarray]:
        return tt.unit_batches(prepared, int(self.opts.batch_size), rng)

    def _loss(self, prepared: dict, idx: np.ndarray) -> torch.Tensor:
        pad_id = self.tokenizer.pad_token_id
        if prepared["kind"] == "pairs":
            scores = self._forward(*self._left_pad([prepared["seqs"][i] for i in idx], pad_id, self.device))
            return F.binary_cross_entropy_with_logits(scores, prepared["labels"][idx].to(self.device))
        rows = tt.group_rows(prepared, idx)
        flat = np.concatenate(rows)
        scores = self._forward(*self._left_pad([prepared["seqs"][i] for i in flat], pad_id, self.device))
        return tt.listwise_loss(scores, rows)  # the positive is each group's first candidate

    # -- scoring ---------------------------------------------------------------------------------
    def score_text_logits(self, profile_texts: Sequence[str], candidate_texts: Sequence[str]) -> np.ndarray:
        out, missing = self._cached_logits(profile_texts, candidate_texts)
        if not missing:
            return out
        by_profile: dict[str, list[str]] = {}
        for p, c in missing:
            by_profile.setdefault(p, []).append(c)
        singles: list[tuple[str, str]] = []
        for p, cands in by_profile.items():
            if self.opts.prefix_cache and len(cands) > 1:
                for c, value in zip(cands, self.score_from_prefix(p, cands)):
                    self._store(missing, (p, c), value, out)
            else:
                singles.extend((p, c) for c in cands)
        if singles:
            values = self.score_full([k[0] for k in singles], [k[1] for k in singles])
            for key, value in zip(singles, values):
                self._store(missing, key, value, out)
        return out

    def _store(self, missing, key, value, out) -> None:
        self._cache.put(key, float(value))
        out[missing[key]] = value

    def score_full(self, profile_texts: Sequence[str], candidate_texts: Sequence[str]) -> np.ndarray:
        """Raw scores from whole prompts, batched by length (no prefix cache)."""
        seqs = [self.prompt_ids(p, c) for p, c in zip(profile_texts, candidate_texts)]
        out = np.empty(len(seqs), dtype=np.float64)
        with self._inference():
            for idx in tt.sorted_batches([len(s) for s in seqs], int(self.opts.eval_batch_size)):
                batch = self._left_pad([seqs[i] for i in idx], self.tokenizer.pad_token_id, self.device)
                out[idx] = self._forward(*batch).cpu().numpy()
        return out

    def score_from_prefix(self, profile_text: str, candidate_texts: Sequence[str]) -> np.ndarray:
        """Raw scores of many candidates of one profile: the prefix is encoded once, and each
        batch of candidate suffixes attends to its KV cache."""
        from transformers import DynamicCache

        prefix = self.prefix_ids(profile_text)
        suffixes = [self.suffix_ids(c) for c in candidate_texts]
        out = np.empty(len(suffixes), dtype=np.float64)
        n_prefix = len(prefix)
        with self._inference():
            ids = torch.as_tensor([prefix], dtype=torch.long, device=self.device)
            layers = _legacy_layers(self.model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values)
            for idx in tt.sorted_batches([len(s) for s in suffixes], int(self.opts.eval_batch_size)):
                ids, mask, pos = self._left_pad([suffixes[i] for i in idx], self.tokenizer.pad_token_id, self.device, n_prefix)
                b = len(idx)
                mask = torch.cat([torch.ones((b, n_prefix), dtype=mask.dtype, device=mask.device), mask], dim=1)
                # expand() makes views; the cache concatenates new keys onto them (no copy of the prefix is changed).
                cache = DynamicCache.from_legacy_cache(
                    tuple((k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in layers)
                )
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                                    use_cache=True, logits_to_keep=1).logits  # fmt: skip
                out[idx] = self._answer_logit(logits[:, -1]).cpu().numpy()
        return out

    # -- gradient hooks -----------------------------------------------------------------------------
    def embedding_forward_text(self, profile_texts, candidate_texts):
        """base = {"tokens": (n, L, H) input embeddings of the left-padded prompts};
        forward(perturbed) -> raw scores (n,)."""
        self._check_pairs(profile_texts, candidate_texts)
        seqs = [self.prompt_ids(p, c) for p, c in zip(profile_texts, candidate_texts)]
        ids, mask, pos = self._left_pad(seqs, self.tokenizer.pad_token_id, self.device)
        self.model.eval()
        with torch.no_grad():
            tokens = self.model.get_input_embeddings()(ids).detach().clone()

        def forward(perturbed: dict[str, torch.Tensor]) -> torch.Tensor:
            return self._forward(None, mask, pos, inputs_embeds=perturbed["tokens"])

        return {"tokens": tokens}, forward

    def _pieces_with_offsets(self, profile_text: str, candidate_text: str):
        """(ids, segment, offsets) of one prompt; segment 0 = profile, 1 = candidate, -1 = prompt."""
        ids, seg, offs = [], [], []

        def add(text, segment, keep_last=None, keep_first=None):
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            tok, off = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
            if keep_last is not None:
                tok, off = tok[-keep_last:], off[-keep_last:]
            if keep_first is not None:
                tok, off = tok[:keep_first], off[:keep_first]
            ids.extend(tok)
            seg.extend([segment] * len(tok))
            offs.extend(off if segment >= 0 else [(0, 0)] * len(tok))

        ids.extend(self._head_ids)
        seg.extend([-1] * len(self._head_ids))
        offs.extend([(0, 0)] * len(self._head_ids))
        add(profile_text, 0, keep_last=self._profile_budget)
        add(self.prompt.pieces(self.tokenizer).middle, -1)
        add(candidate_text, 1, keep_first=int(self.opts.max_candidate_tokens))
        add(self.prompt.pieces(self.tokenizer).tail, -1)
        return ids, seg, offs

    def token_gradients(self, profile_texts, candidate_texts, targets=None) -> TokenGradients:
        """Gradients w.r.t. the input embeddings of each prompt (see TokenGradients); tokens of
        the prompt's own text have segment -1. targets: like labels for the cross-entropy objective."""
        self._check_pairs(profile_texts, candidate_texts)
        rows = [self._pieces_with_offsets(p, c) for p, c in zip(profile_texts, candidate_texts)]
        ids, mask, pos = self._left_pad([r[0] for r in rows], self.tokenizer.pad_token_id, self.device)
        width = ids.shape[1]
        segment = torch.full((len(rows), width), -1, dtype=torch.long)
        offsets = torch.zeros((len(rows), width, 2), dtype=torch.long)
        for i, (tok, seg, off) in enumerate(rows):
            segment[i, width - len(tok) :] = torch.as_tensor(seg, dtype=torch.long)
            offsets[i, width - len(tok) :] = torch.as_tensor(off, dtype=torch.long).view(-1, 2)
        self.model.eval()
        with torch.enable_grad():
            embeds = self.model.get_input_embeddings()(ids).detach().requires_grad_(True)
            scores = self._forward(None, mask, pos, inputs_embeds=embeds)
            (grads,) = torch.autograd.grad(gradient_objective(scores, targets), embeds)
        return TokenGradients(
            input_ids=ids.cpu(), attention_mask=mask.cpu(), segment=segment, offsets=offsets,
            grads=grads.detach().cpu(), scores=scores.detach().cpu(),
        )  # fmt: skip

    # -- persistence -------------------------------------------------------------------------------------
    def config(self) -> dict:
        return {**super().config(), "backbone_card": self.card, "trained": self.trained,
                "logit_offset": self.logit_offset}

    @classmethod
    def from_config(cls, config: dict) -> "CausalLM":
        model = super().from_config(config)
        model.trained = bool(config.get("trained", False))
        model.logit_offset = float(config.get("logit_offset", 0.0))
        return model

    def _save_model(self, directory: Path) -> None:
        lora = is_peft_model(self.model)
        by_name = self.opts.backbone != TINY_LLAMA and (lora or not self.trained)
        state = {"base": "by-name" if by_name else "saved", "adapter": lora, "card": self.card}
        if not by_name:
            out = directory / BACKBONE_DIR
            base = self.model.get_base_model() if lora else self.model
            if lora:  # the weights under the adapters, as they were before LoRA wrapped them
                from transformers import AutoModelForCausalLM

                plain = AutoModelForCausalLM.from_config(base.config)
                plain.load_state_dict(self._base_state)
                base = plain
            base.save_pretrained(out, safe_serialization=True)
            self.tokenizer.save_pretrained(out)
            (out / CARD_FILE).write_text(json.dumps(self.card, indent=2), encoding="utf-8")
        if lora:
            self.model.save_pretrained(directory / ADAPTER_DIR, safe_serialization=True)
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    def _load_model(self, directory: Path) -> None:
        path = directory / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (how the causal LM was saved)")
        state = json.loads(path.read_text(encoding="utf-8"))
        if state["base"] == "saved":
            tokenizer, model, card = load_directory(directory / BACKBONE_DIR)
        else:
            tokenizer, model, card = load_causal_lm(self.opts.backbone)
        if state.get("adapter"):
            from recommenders.llm.backbones import _peft

            base_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if state["base"] == "saved" else None
            model = _peft().PeftModel.from_pretrained(model, str(directory / ADAPTER_DIR), is_trainable=True)
            self._base_state = base_state
        self._set_backbone(tokenizer, model, state.get("card") or card)
