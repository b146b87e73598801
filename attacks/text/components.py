"""TextAttack components of our own: the scope constraint and a subword HotFlip swap."""

from __future__ import annotations

import numpy as np
import torch

from attacks.text.offline import import_textattack

import_textattack()
from textattack.constraints import PreTransformationConstraint  # noqa: E402
from textattack.shared.utils import has_letter, words_from_text  # noqa: E402
from textattack.transformations import WordSwap, WordSwapHomoglyphSwap  # noqa: E402
from textattack.transformations.word_swaps.word_swap_embedding import recover_word_case  # noqa: E402

PROFILE, CANDIDATE = "profile", "candidate"
COLUMNS = (PROFILE, CANDIDATE)
SCOPE_COLUMNS = {"history": PROFILE, "item": CANDIDATE}


class ScopeModification(PreTransformationConstraint):
    """Only words of one input column may change: "history" -> the profile text, "item" ->
    the candidate text. `frozen_prefix_words` leading words of that column stay as they
    are: for the profile, the template's header ("Rated, oldest first:"), which the user
    does not write (the span map says where the first history entry starts). Edits never
    happen before those words, so their indices are stable during an attack."""

    def __init__(self, scope: str, frozen_prefix_words: int = 0):
        if scope not in SCOPE_COLUMNS:
            raise ValueError(f"scope must be one of {sorted(SCOPE_COLUMNS)}, got {scope!r}")
        self.scope = scope
        self.column = SCOPE_COLUMNS[scope]
        self.frozen_prefix_words = int(frozen_prefix_words)

    def _get_modifiable_indices(self, current_text):
        if current_text.column_labels != list(COLUMNS):
            raise ValueError(f"scoped text attacks need columns {COLUMNS}, got {current_text.column_labels}")
        start = 0
        for label, words in zip(current_text.column_labels, current_text.words_per_input):
            if label == self.column:
                return set(range(start + self.frozen_prefix_words, start + len(words)))
            start += len(words)
        return set()

    def extra_repr_keys(self):
        return ["scope", "frozen_prefix_words"]


def header_word_count(profile_text: str, first_history_start: int | None) -> int:
    """Words of the profile text before its first history entry (all of them when the
    history is empty)."""
    end = len(profile_text) if first_history_start is None else first_history_start
    return len(words_from_text(profile_text[:end]))


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character span of each of TextAttack's words in `text`, in order."""
    spans, cursor = [], 0
    for word in words_from_text(text):
        start = text.find(word, cursor)
        if start < 0:  # cannot happen for words_from_text's output; keep indices aligned anyway
            spans.append((cursor, cursor))
            continue
        spans.append((start, start + len(word)))
        cursor = start + len(word)
    return spans


class HomoglyphSwap(WordSwapHomoglyphSwap):
    """TextAttack's homoglyph word swap. The 0.3.11 wheel lacks shared/intentional_homoglyphs.txt,
    which its constructor reads for the differential-evolution mode only; the word-swap path
    (what textbugger uses) needs just the built-in table, set before that read fails."""

    def __init__(self, random_one=False, **kwargs):
        try:
            super().__init__(random_one=random_one, **kwargs)
        except FileNotFoundError:
            self.homos_intentional = {}


class TokenGradientSwap(WordSwap):
    """HotFlip (Ebrahimi et al., 2018) for subword models: the first-order change of the
    attack objective from replacing a word by a whole-word vocabulary token v is
    (E[v] - E[t]) . g_t summed with the removal of the word's other pieces (-E[t'] . g_t'),
    where t is the word's first token and g the gradient at each token (the wrapper's
    token_gradients; words map to tokens through the model's character offsets). The
    `top_n` best (word, replacement) pairs over all modifiable words are proposed, as
    TextAttack's WordSwapGradientBased does (which only works for word-level models)."""

    def __init__(self, model_wrapper, top_n: int = 1):
        super().__init__()
        self.model_wrapper = model_wrapper
        self.top_n = int(top_n)
        self.is_black_box = False
        tokenizer = model_wrapper.tokenizer
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        special = set(tokenizer.all_special_ids)
        ok = [
            i for i, tok in enumerate(vocab)
            if i not in special and tok and has_letter(tok) and words_from_text(tok) == [tok]
            and not tok.startswith(("##", "Ġ", "▁"))
        ]
        self._candidate_ids = torch.tensor(ok, dtype=torch.long)
        self._candidate_words = [vocab[i] for i in ok]

    def _embeddings(self) -> torch.Tensor:
        module = self.model_wrapper.model
        # a HF model, or a module around one (the two-tower keeps its encoder in .encoder)
        getter = getattr(module, "get_input_embeddings", None) or module.encoder.get_input_embeddings
        return getter().weight.detach().float().cpu()

    def _get_transformations(self, current_text, indices_to_modify):
        indices = sorted(indices_to_modify)
        if not indices or not len(self._candidate_ids):
            return []
        tg, sign = self.model_wrapper.token_gradients(current_text.tokenizer_input)
        grads = sign * tg.grads[0].float()
        ids, segment, offsets = tg.input_ids[0], tg.segment[0], tg.offsets[0]
        table = self._embeddings()
        cand = table[self._candidate_ids]  # (V', H)
        # word index -> (segment, char span) over both columns
        words = []
        for seg, column_text in enumerate(current_text.tokenizer_input):
            for span in word_spans(column_text):
                words.append((seg, span))
        best: list[tuple[float, int, int]] = []  # (gain, word index, candidate position)
        for i in indices:
            if i >= len(words):
                continue
            seg, (lo, hi) = words[i]
            pieces = [j for j in range(len(ids)) if int(segment[j]) == seg and int(offsets[j, 0]) < hi and int(offsets[j, 1]) > lo]
            if not pieces:
                continue
            first = pieces[0]
            g = grads[first]
            rest = -sum(float(table[ids[j]] @ grads[j]) for j in pieces[1:])
            gains = cand @ g - float(table[ids[first]] @ g) + rest
            word = current_text.words[i].lower()
            for pos in torch.topk(gains, min(self.top_n + 1, len(gains))).indices.tolist():
                if self._candidate_words[pos] != word:
                    best.append((float(gains[pos]), i, pos))
        best.sort(key=lambda t: -t[0])
        out = []
        for _, i, pos in best[: self.top_n]:
            new_word = recover_word_case(self._candidate_words[pos], current_text.words[i])
            out.append(current_text.replace_word_at_index(i, new_word))
        return out

    def extra_repr_keys(self):
        return ["top_n"]
