"""`item-promotion`: rewrite one target item's text (title and attributes) within a word
budget so that it ranks higher for many users at once (a seller's attack on text models).

TextAttack's composition, per target:
- goal function: `goal.CrossUserPromotion` over a seeded sample of attacker users (test
  users who never interacted with the target, disjoint from the held-out users it is
  measured on; `protocol.user_pools`); objective ``rank`` (the target's mean rank) or
  ``score`` (its mean score);
- transformation and constraints: a black-box TextAttack recipe's (default deepwordbug:
  character swaps, deletions, insertions, substitutions; pwws / textfooler / textbugger /
  pruthi as `attacks.text.recipes` builds them), plus MaxWordsPerturbed(word_budget); the
  attacked text is the target's catalog text alone, so no other text can change;
- search: the recipe's (deepwordbug: greedy by word importance, which only accepts
  improvements) or ``beam`` (`goal.BestBeamSearch`, keeping the best it has seen);
- query budget: most queries per target; one query = one candidate text scored for every
  attacker user (`goal` module docstring).

The edited text then replaces the target's text for every user: exposure@10 (share of
held-out users with the target in their top 10 of target + sampled negatives), target
HR@10/@50, NDCG@10 and mean rank before and after. The model is not retrained.
"""

from __future__ import annotations

import time
from typing import ClassVar, Sequence

import numpy as np
from tqdm.auto import tqdm

from attacks.base import AttackUnavailable
from attacks.poisoning.protocol import rank_block, user_bootstrap
from attacks.promotion import protocol
from attacks.promotion.base import PromotionAttack, PromotionOptionError, PromotionResult

RECIPES = ("deepwordbug", "pruthi", "pwws", "textbugger", "textfooler")  # black-box: no gradient needed
SEARCHES = ("greedy", "beam")
OBJECTIVES = ("rank", "score")
DEFAULTS = {"users": 50, "eval_users": None, "word_budget": 3, "recipe": "deepwordbug", "objective": "rank",
            "search": "greedy", "beam_width": 4, "word_embedding": None}


def _whole(value, option: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise PromotionOptionError(f"option {option}: must be a whole number >= {low}, got {value!r}")
    return int(value)


def _choice(value, option: str, known: Sequence[str]) -> str:
    if value not in known:
        raise PromotionOptionError(f"option {option}: must be one of {', '.join(known)}, got {value!r}")
    return value


class ItemTextPromotion(PromotionAttack):
    name: ClassVar[str] = "item-promotion"
    description: ClassVar[str] = "cross-user rewrite of one target item's text within a word budget (text models)"

    def __init__(self, users: int = DEFAULTS["users"], eval_users: int | None = None,
                 word_budget: int = DEFAULTS["word_budget"], recipe: str = DEFAULTS["recipe"],
                 objective: str = DEFAULTS["objective"], search: str = DEFAULTS["search"],
                 beam_width: int = DEFAULTS["beam_width"], word_embedding: str | None = None,
                 query_budget: int | None = None, seed: int = 0, **unknown):
        if unknown:
            raise PromotionOptionError(f"option {sorted(unknown)[0]}: unknown for attack {self.name!r} (known: targets, "
                                       f"target_items, unpopular_share, {', '.join(DEFAULTS)})")
        self.users = _whole(users, "users", 1)
        self.eval_users = None if eval_users is None else _whole(eval_users, "eval_users", 1)
        self.word_budget = _whole(word_budget, "word_budget", 1)
        self.recipe = _choice(recipe, "recipe", RECIPES)
        self.objective = _choice(objective, "objective", OBJECTIVES)
        self.search = _choice(search, "search", SEARCHES)
        self.beam_width = _whole(beam_width, "beam_width", 1)
        self.query_budget = None if query_budget is None else _whole(query_budget, "query_budget", 1)
        self.recipe_options = {} if word_embedding is None else {"word_embedding": word_embedding}
        self.seed = int(seed)

    @classmethod
    def option_problems(cls, options: dict) -> list[str]:
        out = []
        for key, value in options.items():
            try:
                cls(**{key: value})
            except PromotionOptionError as err:
                out.append(f"options/{key}: {err}")
        return out

    # -- applicability --------------------------------------------------------------
    @classmethod
    def unsupported_reason(cls, model) -> str | None:
        if not getattr(getattr(model, "capabilities", None), "text_input", False) or not hasattr(model, "score_text") \
                or not hasattr(model, "renderer"):
            return "item-text promotion needs a text-input model (score_text over rendered item text)"
        if getattr(model, "task", None) != "ranking":
            return "item-text promotion ranks the target among each user's candidates: ranking task only"
        return None

    def config(self) -> dict:
        return {"attack": self.name, "threat_model": self.threat_model, "users": self.users,
                "eval_users": self.eval_users, "word_budget": self.word_budget, "recipe": self.recipe,
                "objective": self.objective, "search": self.search,
                "beam_width": self.beam_width if self.search == "beam" else None,
                "query_budget": self.query_budget, "seed": self.seed, **self.recipe_options}

    # -- running ----------------------------------------------------------------------
    def run(self, model, test, targets, progress: bool = True) -> PromotionResult:
        from attacks.text import recipes
        from attacks.text.offline import ResourceMissing

        reason = self.unsupported_reason(model) or recipes.unavailable_reason(self.recipe, **self.recipe_options)
        if reason:
            raise AttackUnavailable(f"{self.name}: {reason}")
        if not len(targets):
            raise PromotionOptionError("option targets: at least one target item is needed")
        from attacks.text.wrapper import PairScorer, RecommenderWrapper

        scorer = PairScorer(model)
        wrapper = RecommenderWrapper(model, scorer, grad_objective="promote")
        try:
            parts = recipes.build_parts(self.recipe, wrapper, **self.recipe_options)
        except ResourceMissing as err:
            raise AttackUnavailable(f"{self.name}: {err}") from err
        started = time.perf_counter()
        per_target, rows, before_all, after_all, users_all = [], [], [], [], []
        stage = {"search_seconds": 0.0, "evaluate_seconds": 0.0}
        for target in tqdm(list(targets), desc=self.name, disable=not progress, leave=False):
            info, before, after, held = self._promote(model, test, str(target), scorer, wrapper, parts, stage)
            per_target.append(info)
            for c, b, a in zip(held, before, after):
                e = test.examples[c.example_index]
                rows.append({"example_id": f"{e.example_id}:{target}", "user_id": c.user_id,
                             "target_item": str(target), "rank_before": int(b), "rank_after": int(a),
                             "hit10_before": bool(b <= protocol.TOP_K), "hit10_after": bool(a <= protocol.TOP_K)})
            before_all.append(before)
            after_all.append(after)
            users_all += [c.user_id for c in held]
        rb, ra = np.concatenate(before_all), np.concatenate(after_all)
        clean = {**rank_block(rb), "exposure@10": float(np.mean([t["exposure@10_before"] for t in per_target]))}
        robust = {**rank_block(ra), "exposure@10": float(np.mean([t["exposure@10_after"] for t in per_target]))}
        hb, ha = (rb <= protocol.TOP_K).astype(float), (ra <= protocol.TOP_K).astype(float)
        summary = {
            "clean": clean, "robust": robust,
            "targets": [str(t) for t in targets], "users": self.users, "pairs": len(rb),
            "eval_users": [t["eval_users"] for t in per_target],
            "exposure@10_shift": robust["exposure@10"] - clean["exposure@10"],
            "mean_rank_shift": float(np.mean(ra - rb)),
            "target_hr@10_after_ci": list(user_bootstrap(ha, users_all, seed=self.seed)),
            "target_hr@10_shift_ci": list(user_bootstrap(ha - hb, users_all, seed=self.seed)),
            "promoted_targets": int(sum(t["exposure@10_after"] > t["exposure@10_before"] for t in per_target)),
            "mean_words_changed": float(np.mean([t["words_changed"] for t in per_target])),
            "mean_queries": float(np.mean([t["queries"] for t in per_target])),
            "max_queries": int(max(t["queries"] for t in per_target)),
            "query_budget": self.query_budget, "word_budget": self.word_budget,
            "model_pairs": scorer.forward_pairs, "per_target": per_target,
            "notes": list(parts.notes), "stage_seconds": stage,
            "seconds": time.perf_counter() - started,
        }
        return PromotionResult(self.name, {**self.config(), "targets": [str(t) for t in targets]}, summary, rows,
                               per_target)

    def _promote(self, model, test, target, scorer, wrapper, parts, stage):
        """Search one target's text; (per-target info, held-out ranks before, after, held-out contexts)."""
        from textattack import Attack
        from textattack.constraints.overlap import MaxWordsPerturbed
        from textattack.shared import AttackedText

        from attacks.promotion.goal import BestBeamSearch, CrossUserPromotion
        from attacks.text.attack import example_seed
        from attacks.text.engine import set_seed
        from attacks.text.offline import quiet_textattack

        t0 = time.perf_counter()
        attackers, held_idx = protocol.user_pools(test, target, self.users, self.eval_users, self.seed)
        a_ctx = protocol.contexts(model, test, attackers, target)
        original = model.renderer.candidate_text(target)
        kwargs = {} if self.query_budget is None else {"query_budget": self.query_budget}
        with quiet_textattack():
            goal = CrossUserPromotion(wrapper, scorer, a_ctx, objective=self.objective, **kwargs)
            budget = MaxWordsPerturbed(max_num_words=self.word_budget)
            if self.search == "beam":
                attack = Attack(goal, list(parts.constraints) + [budget], parts.transformation,
                                BestBeamSearch(beam_width=self.beam_width))
            else:  # the recipe's own search (a fresh copy, bound to this goal)
                attack = parts.attack(goal, [budget])
        pairs0 = scorer.forward_pairs
        set_seed(example_seed(self.seed, target))
        result = attack.attack(AttackedText(original), 0)
        start_at, end_at = result.original_result, result.perturbed_result
        # A search returns its best: never below the original (greedy accepts improvements only).
        if end_at.score < start_at.score:
            end_at = start_at
        edited = end_at.attacked_text
        source = AttackedText(original)
        changed = sorted(source.all_words_diff(edited))
        stage["search_seconds"] += time.perf_counter() - t0

        t1 = time.perf_counter()
        h_ctx = protocol.contexts(model, test, held_idx, target)
        own, ranks = protocol.score_rows(scorer, h_ctx, [original, edited.text])
        stage["evaluate_seconds"] += time.perf_counter() - t1
        a_before, a_after = np.asarray(start_at.raw_output)[1], np.asarray(end_at.raw_output)[1]
        info = {
            "target_item": target, "original_text": original, "edited_text": edited.text,
            "words_changed": len(changed),
            "changed_words": [[source.words[i] if i < len(source.words) else "",
                               edited.words[i] if i < len(edited.words) else ""] for i in changed],
            "queries": int(goal.num_queries), "model_pairs": int(scorer.forward_pairs - pairs0),
            "attackers": len(a_ctx), "eval_users": len(h_ctx),
            "goal_score_before": float(start_at.score), "goal_score_after": float(end_at.score),
            "attacker_exposure@10_before": protocol.exposure(a_before), "attacker_exposure@10_after": protocol.exposure(a_after),
            "attacker_mean_rank_before": float(a_before.mean()), "attacker_mean_rank_after": float(a_after.mean()),
            "exposure@10_before": protocol.exposure(ranks[0]), "exposure@10_after": protocol.exposure(ranks[1]),
            "mean_rank_before": float(ranks[0].mean()), "mean_rank_after": float(ranks[1].mean()),
            "mean_score_before": float(own[0].mean()), "mean_score_after": float(own[1].mean()),
        }
        return info, ranks[0], ranks[1], h_ctx

