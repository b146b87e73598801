"""The nine TextAttack recipes, as parts (transformation, constraints, search) that our
attacks combine with a goal function (classification, or our ranking goals), the scope
constraint and an optional edit budget.

deepwordbug, pruthi and pwws come from TextAttack's own recipe builders unchanged (their
goal function is replaced). The others are composed here from TextAttack's components with
the recipes' published parameters, because their builders load downloads we may have to
substitute (see attacks.text.resources) — and hotflip, because TextAttack's
WordSwapGradientBased only supports word-level models: ours (components.TokenGradientSwap)
works on subword models through the model's token gradients.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from attacks.text import offline, resources
from attacks.text.offline import ResourceMissing

textattack = offline.import_textattack()
from textattack import Attack  # noqa: E402
from textattack.attack_recipes import (  # noqa: E402
    DeepWordBugGao2018,
    Pruthi2019,
    PWWSRen2019,
)
from textattack.constraints.overlap import MaxWordsPerturbed  # noqa: E402
from textattack.constraints.pre_transformation import (  # noqa: E402
    InputColumnModification,
    MaxModificationRate,
    RepeatModification,
    StopwordModification,
)
from textattack.constraints.semantics import WordEmbeddingDistance  # noqa: E402
from textattack.search_methods import BeamSearch, GreedyWordSwapWIR  # noqa: E402
from textattack.transformations import (  # noqa: E402
    CompositeTransformation,
    WordSwapEmbedding,
    WordSwapMaskedLM,
    WordSwapNeighboringCharacterSwap,
    WordSwapRandomCharacterDeletion,
    WordSwapRandomCharacterInsertion,
)

from attacks.text.components import HomoglyphSwap, TokenGradientSwap  # noqa: E402


@dataclass
class RecipeParts:
    name: str
    transformation: object
    constraints: list
    search_method: object
    goal_kwargs: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def attack(self, goal_function, extra_constraints=()) -> Attack:
        """A fresh textattack.Attack around these parts. Transformation and constraints are
        shared between attacks (the engine runs one example at a time); the search method
        is copied, because Attack binds it to its goal function."""
        return Attack(goal_function, list(self.constraints) + list(extra_constraints), self.transformation,
                      copy.copy(self.search_method))


def _from_textattack_recipe(name: str, recipe, wrapper) -> RecipeParts:
    built = recipe.build(wrapper)
    constraints = list(built.pre_transformation_constraints) + list(built.constraints)
    return RecipeParts(name, built.transformation, constraints, built.search_method)


def _deepwordbug(wrapper, opts) -> RecipeParts:
    return _from_textattack_recipe("deepwordbug", DeepWordBugGao2018, wrapper)


def _pruthi(wrapper, opts) -> RecipeParts:
    return _from_textattack_recipe("pruthi", Pruthi2019, wrapper)


def _pwws(wrapper, opts) -> RecipeParts:
    source = offline.ensure_wordnet()
    with offline.local_first_nltk_downloads():  # WordSwapWordNet asks for omw-1.4, unneeded in English
        parts = _from_textattack_recipe("pwws", PWWSRen2019, wrapper)
    if source != "NLTK data":
        parts.notes.append(f"WordNet: {source.split(' copied to ')[0]}")
    return parts


def _textbugger(wrapper, opts) -> RecipeParts:
    embedding, e_note = resources.word_embedding(opts["word_embedding"])
    use, u_note = resources.universal_sentence_encoder(threshold=0.8)
    transformation = CompositeTransformation([
        WordSwapRandomCharacterInsertion(random_one=True, letters_to_insert=" ", skip_first_char=True, skip_last_char=True),
        WordSwapRandomCharacterDeletion(random_one=True, skip_first_char=True, skip_last_char=True),
        WordSwapNeighboringCharacterSwap(random_one=True, skip_first_char=True, skip_last_char=True),
        HomoglyphSwap(),
        WordSwapEmbedding(max_candidates=5, embedding=embedding),
    ])
    constraints = [RepeatModification(), StopwordModification(), use]
    return RecipeParts("textbugger", transformation, constraints, GreedyWordSwapWIR(wir_method="delete"),
                       notes=[n for n in (e_note, u_note) if n])


# TextFooler's own stopword list (Jin et al.), as in TextAttack's recipe.
TEXTFOOLER_STOPWORDS = frozenset("""a about above across after afterwards again against ain all almost alone along
already also although am among amongst an and another any anyhow anyone anything anyway anywhere are aren aren't
around as at back been before beforehand behind being below beside besides between beyond both but by can cannot
could couldn couldn't d didn didn't doesn doesn't don don't down due during either else elsewhere empty enough even
ever everyone everything everywhere except first for former formerly from hadn hadn't hasn hasn't haven haven't he
hence her here hereafter hereby herein hereupon hers herself him himself his how however hundred i if in indeed
into is isn isn't it it's its itself just latter latterly least ll may me meanwhile mightn mightn't mine more
moreover most mostly must mustn mustn't my myself namely needn needn't neither never nevertheless next no nobody
none noone nor not nothing now nowhere o of off on once one only onto or other others otherwise our ours ourselves
out over per please s same shan shan't she she's should've shouldn shouldn't somehow something sometime somewhere
such t than that that'll the their theirs them themselves then thence there thereafter thereby therefore therein
thereupon these they this those through throughout thru thus to too toward towards under unless until up upon used
ve was wasn wasn't we were weren weren't what whatever when whence whenever where whereafter whereas whereby
wherein whereupon wherever whether which while whither who whoever whole whom whose why with within without won
won't would wouldn wouldn't y yet you you'd you'll you're you've your yours yourself yourselves""".split())


def _textfooler(wrapper, opts) -> RecipeParts:
    embedding, e_note = resources.word_embedding(opts["word_embedding"])
    pos, p_note = resources.part_of_speech(allow_verb_noun_swap=True)
    use, u_note = resources.universal_sentence_encoder(
        threshold=0.840845057, metric="angular", compare_against_original=False, window_size=15,
        skip_text_shorter_than_window=True,
    )
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=TEXTFOOLER_STOPWORDS),
        InputColumnModification(["premise", "hypothesis"], {"premise"}),  # as in the recipe (no-op here)
        WordEmbeddingDistance(embedding=embedding, min_cos_sim=0.5),
        pos,
        use,
    ]
    return RecipeParts("textfooler", WordSwapEmbedding(max_candidates=50, embedding=embedding), constraints,
                       GreedyWordSwapWIR(wir_method="delete"), notes=[n for n in (e_note, p_note, u_note) if n])


def _masked_lm(opts, method: str, **kwargs):
    model, tokenizer, _ = resources.masked_lm(opts["masked_lm"])
    return WordSwapMaskedLM(method=method, masked_language_model=model, tokenizer=tokenizer, **kwargs)


def _mlm_note(opts) -> list[str]:
    name = opts["masked_lm"]
    return [] if name == "bert-base-uncased" else [f"masked LM: {name} instead of bert-base-uncased"]


def _bae(wrapper, opts) -> RecipeParts:
    transformation = _masked_lm(opts, "bae", max_candidates=50, min_confidence=0.0)
    pos, p_note = resources.part_of_speech(allow_verb_noun_swap=True)
    use, u_note = resources.universal_sentence_encoder(
        threshold=0.936338023, metric="cosine", compare_against_original=True, window_size=15,
        skip_text_shorter_than_window=True,
    )
    constraints = [RepeatModification(), StopwordModification(), pos, use]
    return RecipeParts("bae", transformation, constraints, GreedyWordSwapWIR(wir_method="delete"),
                       notes=_mlm_note(opts) + [n for n in (p_note, u_note) if n])


def _bert_attack(wrapper, opts) -> RecipeParts:
    transformation = _masked_lm(opts, "bert-attack", max_candidates=8)
    use, u_note = resources.universal_sentence_encoder(
        threshold=0.2, metric="cosine", compare_against_original=True, window_size=None,
    )
    constraints = [RepeatModification(), StopwordModification(), MaxWordsPerturbed(max_percent=0.4), use]
    return RecipeParts("bert-attack", transformation, constraints, GreedyWordSwapWIR(wir_method="unk"),
                       notes=_mlm_note(opts) + [n for n in (u_note,) if n])


def _a2t(wrapper, opts) -> RecipeParts:
    pos, p_note = resources.part_of_speech(allow_verb_noun_swap=False)
    sbert, s_note = resources.sbert("stsb-distilbert-base", threshold=0.9, metric="cosine")
    notes = [n for n in (p_note, s_note) if n]
    constraints = [
        RepeatModification(),
        StopwordModification(),
        InputColumnModification(["premise", "hypothesis"], {"premise"}),
        MaxModificationRate(max_rate=0.1, min_threshold=4),
    ]
    if opts["mlm"]:
        transformation = _masked_lm(opts, "bae", max_candidates=20, min_confidence=0.0, batch_size=16)
        notes = _mlm_note(opts) + notes
    else:
        embedding, e_note = resources.word_embedding(opts["word_embedding"])
        transformation = WordSwapEmbedding(max_candidates=20, embedding=embedding)
        # The recipe lists this last; constraints are filters, so running the cheap one
        # before the sentence encoder accepts the same texts and encodes far fewer.
        constraints.append(WordEmbeddingDistance(embedding=embedding, min_cos_sim=0.8))
        notes = [n for n in (e_note,) if n] + notes
    constraints += [pos, sbert]
    max_words = int(getattr(wrapper.recommender, "opts", {}).get("max_length") or 512)
    search = GreedyWordSwapWIR(wir_method="gradient", truncate_words_to=max_words)
    return RecipeParts("a2t", transformation, constraints, search, goal_kwargs={"model_batch_size": 32}, notes=notes)


def _hotflip(wrapper, opts) -> RecipeParts:
    embedding, e_note = resources.word_embedding(opts["word_embedding"])
    pos, p_note = resources.part_of_speech()
    constraints = [
        RepeatModification(),
        StopwordModification(),
        MaxWordsPerturbed(max_num_words=2),
        WordEmbeddingDistance(embedding=embedding, min_cos_sim=0.8),
        pos,
    ]
    notes = ["HotFlip swap on subword tokens from the model's token gradients (TextAttack's "
             "WordSwapGradientBased supports word-level models only)"]
    return RecipeParts("hotflip", TokenGradientSwap(wrapper, top_n=opts["top_n"]), constraints,
                       BeamSearch(beam_width=10), notes=notes + [n for n in (e_note, p_note) if n])


BUILDERS: dict[str, Callable] = {
    "deepwordbug": _deepwordbug,
    "pruthi": _pruthi,
    "textbugger": _textbugger,
    "pwws": _pwws,
    "textfooler": _textfooler,
    "bae": _bae,
    "bert-attack": _bert_attack,
    "a2t": _a2t,
    "hotflip": _hotflip,
}
WHITE_BOX = frozenset({"a2t", "hotflip"})  # need the model's gradients
DEFAULT_OPTIONS = {"word_embedding": "minilm", "masked_lm": "bert-base-uncased", "mlm": False, "top_n": 1}


def build_parts(name: str, wrapper, **options) -> RecipeParts:
    """The recipe's parts for `wrapper` (raises ResourceMissing when something it needs
    cannot be had here)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown text attack recipe {name!r}; known: {', '.join(BUILDERS)}")
    opts = {**DEFAULT_OPTIONS, **{k: v for k, v in options.items() if v is not None}}
    with offline.quiet_textattack():
        return BUILDERS[name](wrapper, opts)


def unavailable_reason(name: str, **options) -> str | None:
    """A cheap check (nothing is loaded) of what `build_parts` would fail to find."""
    opts = {**DEFAULT_OPTIONS, **{k: v for k, v in options.items() if v is not None}}
    needs_wordnet = name == "pwws" or (name in ("textfooler", "bae", "a2t", "hotflip") and not offline.pos_tagger_available())
    if needs_wordnet and offline.wordnet_status() is None:
        return offline.WORDNET_HINT
    if name in ("bae", "bert-attack") or (name == "a2t" and opts["mlm"]):
        reason = resources.masked_lm_status(opts["masked_lm"])
        if reason:
            return reason
    if name in ("textbugger", "textfooler", "bae", "bert-attack", "a2t", "hotflip"):
        try:
            resources.minilm_path()
        except ResourceMissing as err:
            return str(err)
    return None
