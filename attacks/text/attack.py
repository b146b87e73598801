"""Text attacks on text-input recommenders: one attacks.base.Attack per TextAttack recipe.

`create("deepwordbug", query_budget=..., scope="history", goal=None, seed=0).run(model, examples)`
renders each example to the pair (profile text, candidate text), attacks it with the
recipe (through the engine: examples run concurrently, their model queries merged) and
returns one AttackRecord per example plus the summary.

Goals: preference -> TextAttack's UntargetedClassification (flip the like/dislike
decision); ranking -> `demote` (default: push the true item out of the top-10 of the
example's candidates) or `promote` (lift a target into it: a seeded choice among the
negatives ranked outside the top-10). Scope: "history" edits only the profile text's
history entries, "item" only the attacked candidate's text (the seller's attack).
Options: budget (most words changed), and TextAttackOptions (window, word_embedding,
masked_lm, mlm, top_n, record_queries).
"""

from __future__ import annotations

import math
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
from tqdm.auto import tqdm

from attacks.base import Attack, AttackResult, AttackUnavailable
from attacks.records import TOP_K, AttackRecord, Perturbation, summarize
from attacks.text import recipes
from attacks.text.offline import ResourceMissing, quiet_textattack
from benchmark import seeding
from benchmark.options import Options, option

DEFAULT_WINDOW = 16


@dataclass
class TextAttackOptions(Options):
    """Recipe resources left at None take the recipe's default (attacks.text.recipes.DEFAULT_OPTIONS)."""

    window: int = option(DEFAULT_WINDOW, "examples in flight (their model queries merged)")
    word_embedding: str | None = option(None, "word embedding of the swap recipes: 'minilm' (default) or 'counter-fitted'")
    masked_lm: str | None = option(None, "masked LM of bae / bert-attack / a2t-mlm: a folder or a hub id "
                                         "(default bert-base-uncased)")
    mlm: bool | None = option(None, "a2t: swap words with the masked LM instead of the word embedding (default False)")
    top_n: int | None = option(None, "hotflip: token substitutions kept per position (default 1)")
    record_queries: bool = option(False, "keep the scored (profile, candidate) pairs (benchmarks)")


def _levenshtein(a: str, b: str) -> int:
    try:
        import Levenshtein

        return int(Levenshtein.distance(a, b))
    except ImportError:  # a plain two-row DP
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]


def words_changed_pct(before: str, after: str) -> float:
    """Share (%) of the words of `before` that the attack changed, over TextAttack's word
    split; insertions and splits count as changes (alignment by difflib)."""
    import difflib

    from textattack.shared.utils import words_from_text

    a, b = words_from_text(before), words_from_text(after)
    if not a:
        return 0.0
    kept = sum(block.size for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks())
    return 100.0 * max(len(a) - kept, len(b) - kept) / len(a)


def _columns(attacked_text) -> dict:
    return dict(zip(attacked_text.column_labels, attacked_text.tokenizer_input))


def example_seed(seed: int, example_id: str) -> int:
    """Each example's random stream depends only on (seed, example id)."""
    return zlib.crc32(f"{seed}:{example_id}".encode("utf-8")) & 0x7FFFFFFF


class _Slot:
    """One textattack.Attack (own goal function and search state) for one example at a time."""

    def __init__(self, attack, goal_function, scope_constraint):
        self.attack = attack
        self.goal_function = goal_function
        self.scope = scope_constraint


class TextRecipeAttack(Attack):
    threat_model: ClassVar[str] = "text"
    recipe: ClassVar[str] = ""

    OPTIONS: ClassVar[type[Options]] = TextAttackOptions

    def __init__(self, budget=None, query_budget=None, scope="history", goal=None, seed=0, **options):
        settings = self.OPTIONS.parse(f"attack {self.name!r}", options)
        super().__init__(budget=budget, query_budget=query_budget, scope=scope, goal=goal, seed=seed)
        if int(settings.window) < 1:
            raise ValueError(f"window must be >= 1, got {settings.window}")
        self.window = int(settings.window)
        self.recipe_options = {k: settings[k] for k in ("word_embedding", "masked_lm", "mlm", "top_n")
                               if settings[k] is not None}
        self.record_queries = bool(settings.record_queries)  # keep the scored pairs (benchmarks)
        self.last_run_stats: dict = {}
        self.last_forwarded: list[tuple[str, str]] | None = None

    def config(self) -> dict:
        return {**super().config(), **self.recipe_options}

    # -- applicability ---------------------------------------------------------------
    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        if not getattr(getattr(model, "capabilities", None), "text_input", False) or not hasattr(model, "score_text"):
            return "text attacks need a text-input model (score_text over rendered profile/candidate text)"
        if getattr(model, "task", None) not in ("preference", "ranking"):
            return "the model has no task (fit or load it first)"
        if cls.recipe in recipes.WHITE_BOX and not hasattr(model, "token_gradients"):
            return f"{cls.recipe} needs the model's gradients (token_gradients)"
        return None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return recipes.unavailable_reason(cls.recipe)

    def _goal_name(self, task: str) -> str:
        goal = self.goal or ("untargeted" if task == "preference" else "demote")
        if task == "preference" and goal != "untargeted":
            raise ValueError(f"goal {goal!r} applies to the ranking task; the preference task's goal is 'untargeted'")
        if task == "ranking" and goal == "untargeted":
            raise ValueError("the ranking task's goals are 'demote' and 'promote'")
        return goal

    # -- running -----------------------------------------------------------------------
    def attack_example(self, model, example) -> AttackRecord:
        return self.run(model, [example], progress=False).records[0]

    def run(self, model, examples: Sequence, progress: bool = True) -> AttackResult:
        reason = self.unsupported_reason(model) or recipes.unavailable_reason(self.recipe, **self.recipe_options)
        if reason:
            raise AttackUnavailable(f"{self.name}: {reason}")
        for ex in examples:
            if ex.task != model.task:
                raise ValueError(f"example {ex.example_id} is a {ex.task!r} example but the model was trained for {model.task!r}")
        started = time.perf_counter()
        from attacks.text.engine import Scheduler
        from attacks.text.wrapper import PairScorer, RecommenderWrapper

        task = model.task
        goal = self._goal_name(task)
        scorer = PairScorer(model, record_pairs=self.record_queries)
        wrapper = RecommenderWrapper(model, scorer, grad_objective="classification" if task == "preference" else goal)
        try:
            parts = recipes.build_parts(self.recipe, wrapper, **self.recipe_options)
        except ResourceMissing as err:
            raise AttackUnavailable(f"{self.name}: {err}") from err
        prepared = self._prepare(model, examples, scorer, goal)
        slots = [self._slot(parts, wrapper, task, goal) for _ in range(min(self.window, max(len(examples), 1)))]
        free = list(range(len(slots)))

        def job_for(item):
            def job():
                index = free.pop()
                slot = slots[index]
                try:
                    slot.scope.frozen_prefix_words = item["frozen"] if self.scope == "history" else 0
                    if task == "ranking":
                        slot.goal_function.set_context(item["others"])
                    result = slot.attack.attack(item["text"], item["ground_truth"])
                    return result, slot.goal_function.num_queries
                finally:
                    free.append(index)
            return job

        todo = [i for i, item in enumerate(prepared) if item.get("record") is None]
        bar = tqdm(total=len(todo), desc=self.name, disable=not progress, leave=False)
        scheduler = Scheduler(window=len(slots))
        outcomes = scheduler.run(
            [job_for(prepared[i]) for i in todo],
            [example_seed(self.seed, examples[i].example_id) for i in todo],
            on_done=lambda *_: bar.update(1),
        )
        bar.close()
        records: list[AttackRecord] = [item.get("record") for item in prepared]
        for i, outcome in zip(todo, outcomes):
            records[i] = self._record(examples[i], prepared[i], outcome, task, goal, parts.notes)
            records[i].seconds = scheduler.seconds_of(todo.index(i))
        wall = time.perf_counter() - started
        self.last_forwarded = scorer.forwarded
        self.last_run_stats = {"wall_seconds": wall, "flushes": scheduler.flushes, **scorer.stats(),
                               "grad_calls": wrapper.grad_calls, "grad_seconds": wrapper.grad_seconds}
        return AttackResult(self.name, self.config(), records, summarize(records))

    def _slot(self, parts, wrapper, task, goal) -> _Slot:
        from textattack.constraints.overlap import MaxWordsPerturbed
        from textattack.goal_functions import UntargetedClassification

        from attacks.text.components import ScopeModification
        from attacks.text.goals import DemoteTopK, PromoteTopK

        kwargs = dict(parts.goal_kwargs)
        # One request per search step: the engine and the model batch across examples.
        kwargs["model_batch_size"] = 1 << 20
        if self.query_budget is not None:
            kwargs["query_budget"] = self.query_budget
        with quiet_textattack():
            if task == "preference":
                goal_function = UntargetedClassification(wrapper, **kwargs)
            else:
                goal_function = (DemoteTopK if goal == "demote" else PromoteTopK)(wrapper, k=TOP_K, **kwargs)
        scope = ScopeModification(self.scope)
        extra = [scope] + ([MaxWordsPerturbed(max_num_words=self.budget)] if self.budget is not None else [])
        return _Slot(parts.attack(goal_function, extra), goal_function, scope)

    # -- inputs ---------------------------------------------------------------------
    def _prepare(self, model, examples, scorer, goal) -> list[dict]:
        """Per example: the AttackedText, ground truth, frozen header words, ranking context
        (others' texts, target) — or a finished record (examples that cannot be attacked)."""
        from textattack.shared import AttackedText

        from attacks.text.components import header_word_count

        renderer = model.renderer
        prepared: list[dict] = []
        if model.task == "ranking":
            pairs = []
            for ex in examples:
                r = renderer.render(ex.profile, ex.candidates[0])
                pairs.extend((r.profile_text, renderer.candidate_text(c)) for c in ex.candidates)
            all_scores = scorer.score(pairs)  # one batched pass; the goal functions then hit the cache
        offset = 0
        for ex in examples:
            target_index = 0 if model.task == "preference" else ex.label
            item: dict = {}
            if model.task == "ranking":
                scores = all_scores[offset : offset + len(ex.candidates)]
                offset += len(ex.candidates)
                if len(ex.candidates) <= TOP_K:
                    item["record"] = self._error_record(ex, goal, f"a top-{TOP_K} goal needs more than {TOP_K} candidates")
                    prepared.append(item)
                    continue
                if goal == "promote":
                    ranks = np.array([1 + int(np.sum(np.delete(scores, j) >= scores[j])) for j in range(len(scores))])
                    pool = [j for j in range(len(scores)) if j != ex.label and ranks[j] > TOP_K]
                    if not pool:
                        item["record"] = self._error_record(ex, goal, f"no negative ranked outside the top-{TOP_K}")
                        prepared.append(item)
                        continue
                    rng = seeding.rng(self.seed, ex.example_id)
                    target_index = int(pool[rng.integers(len(pool))])
                item["target_index"] = target_index
                item["others"] = [renderer.candidate_text(c) for j, c in enumerate(ex.candidates) if j != target_index]
            rendering = renderer.render(ex.profile, ex.candidates[target_index])
            history = [s for s in rendering.spans if s.kind == "history"]
            item["frozen"] = header_word_count(rendering.profile_text, history[0].start if history else None)
            item["text"] = AttackedText(OrderedDict(profile=rendering.profile_text, candidate=rendering.candidate_text))
            item["ground_truth"] = int(ex.label) if model.task == "preference" else int(target_index)
            item["target_item"] = ex.candidates[target_index]
            prepared.append(item)
        return prepared

    # -- records ---------------------------------------------------------------------------
    def _goal_label(self, task: str, goal: str) -> str:
        return "untargeted-classification" if task == "preference" else f"{goal}-top{TOP_K}"

    def _error_record(self, ex, goal, message) -> AttackRecord:
        return AttackRecord(example_id=ex.example_id, attack=self.name, task=ex.task, status="error", original=None,
                            perturbed=None, score_before=math.nan, score_after=None,
                            goal=self._goal_label(ex.task, goal), error=message)

    def _record(self, ex, item, outcome, task, goal, notes) -> AttackRecord:
        from textattack.attack_results import SkippedAttackResult, SuccessfulAttackResult

        if isinstance(outcome, BaseException):
            record = self._error_record(ex, goal, f"{type(outcome).__name__}: {outcome}")
            record.original = _columns(item["text"])
            record.notes = list(notes)
            return record
        result, queries = outcome
        column = "profile" if self.scope == "history" else "candidate"
        original = _columns(result.original_result.attacked_text)
        skipped = isinstance(result, SkippedAttackResult)
        success = isinstance(result, SuccessfulAttackResult)
        status = "skipped" if skipped else ("succeeded" if success else "failed")
        before = np.asarray(result.original_result.raw_output, dtype=np.float64)
        record = AttackRecord(
            example_id=ex.example_id, attack=self.name, task=task, status=status, original=original, perturbed=None,
            score_before=float(before[1] if task == "preference" else before[0]), score_after=None,
            goal=self._goal_label(task, goal), success=success, queries=int(queries), notes=list(notes),
        )
        if task == "preference":
            record.label = int(ex.label)
            record.correct_before = int(result.original_result.output) == int(ex.label)
        else:
            record.target_item = item["target_item"]
            record.rank_before = int(result.original_result.output)
        if skipped:
            return record
        after = np.asarray(result.perturbed_result.raw_output, dtype=np.float64)
        perturbed = _columns(result.perturbed_result.attacked_text)
        record.perturbed = perturbed
        if task == "preference":
            record.score_after = float(after[1])
            record.correct_after = int(result.perturbed_result.output) == int(ex.label)
        else:
            record.score_after = float(after[0])
            record.rank_after = int(result.perturbed_result.output)
        record.perturbation = Perturbation(
            words_changed_pct=words_changed_pct(original[column], perturbed[column]),
            char_edits=_levenshtein(original[column], perturbed[column]),
        )
        return record


def _recipe_class(class_name: str, recipe: str, description: str, needs: tuple[str, ...]) -> type:
    return type(class_name, (TextRecipeAttack,), {
        "name": recipe, "recipe": recipe, "description": description, "needs": needs, "__module__": __name__,
        "__qualname__": class_name,
    })


DeepWordBug = _recipe_class("DeepWordBug", "deepwordbug", "character edits (swap/substitute/delete/insert), greedy by word importance (Gao et al., 2018)", ())
Pruthi = _recipe_class("Pruthi", "pruthi", "one-word keyboard typos, greedy search (Pruthi et al., 2019)", ())
TextBugger = _recipe_class("TextBugger", "textbugger", "character bugs and embedding neighbours, sentence similarity (Li et al., 2018)", ("sentence encoder", "word embeddings"))
PWWS = _recipe_class("PWWS", "pwws", "WordNet synonyms by probability-weighted word saliency (Ren et al., 2019)", ("WordNet data",))
TextFooler = _recipe_class("TextFooler", "textfooler", "embedding-neighbour swaps with POS and sentence similarity (Jin et al., 2019)", ("word embeddings", "sentence encoder", "POS tagger or WordNet"))
BAE = _recipe_class("BAE", "bae", "BERT masked-LM replacements (Garg & Ramakrishnan, 2019)", ("masked LM (hub model)", "sentence encoder", "POS tagger or WordNet"))
BERTAttack = _recipe_class("BERTAttack", "bert-attack", "BERT masked-LM replacements, unk importance (Li et al., 2020)", ("masked LM (hub model)", "sentence encoder"))
A2T = _recipe_class("A2T", "a2t", "embedding swaps by gradient word importance, SBERT similarity (Yoo & Qi, 2021)", ("model gradients", "word embeddings", "sentence encoder", "POS tagger or WordNet"))
HotFlip = _recipe_class("HotFlip", "hotflip", "gradient-guided token flips with beam search (Ebrahimi et al., 2018)", ("model gradients", "word embeddings", "POS tagger or WordNet"))
