"""TextAttack components for cross-user promotion: the goal function over many users and a
beam search that returns the best text it has seen.

The attacked text is the target's catalog text alone (a one-column AttackedText: what the
seller controls). One query is one candidate text of the target scored in every attacker
user's context: `len(users)` new (profile, item text) pairs through the model, the
competitors' scores coming from the shared PairScorer cache after the first query.

Objectives (the score the search maximises): ``rank`` = minus the target's mean rank over
the attacker users (RecTextAttack's goal); ``score`` = the target's mean model score over
them (smoother: every edit moves it, where a rank may not move). The goal is maximisable
(TextAttack's MAXIMIZING status): the search spends its word and query budgets and returns
its best text; it is "complete" only if every attacker user has the target in the top k.
"""

from __future__ import annotations

import numpy as np

from attacks.promotion import protocol
from attacks.text.offline import import_textattack

import_textattack()
from textattack.goal_function_results import GoalFunctionResult  # noqa: E402
from textattack.goal_function_results.goal_function_result import GoalFunctionResultStatus  # noqa: E402
from textattack.goal_functions import GoalFunction  # noqa: E402
from textattack.search_methods import BeamSearch  # noqa: E402

OBJECTIVES = ("rank", "score")


class PromotionGoalResult(GoalFunctionResult):
    """raw_output: (2, users) array (target scores, ranks); output: exposure@k among the attacker users."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs, goal_function_result_type="Promotion")

    def get_text_color_input(self):
        return "red"

    def get_text_color_perturbed(self):
        return "blue"

    def get_colored_output(self, color_method=None):
        return f"exposure {self.output:.2f}"


class CrossUserPromotion(GoalFunction):
    """Promote one item text over a sample of users (`contexts`, scored through `scorer`)."""

    def __init__(self, model_wrapper, scorer, contexts, k: int = protocol.TOP_K, objective: str = "rank", **kwargs):
        if objective not in OBJECTIVES:
            raise ValueError(f"option objective: must be one of {OBJECTIVES}, got {objective!r}")
        kwargs.setdefault("model_batch_size", 1 << 20)  # one scorer call per search step
        super().__init__(model_wrapper, maximizable=True, allow_skip=False, **kwargs)
        self.scorer = scorer
        self.contexts = list(contexts)
        self.k = int(k)
        self.objective = objective

    def _call_model_uncached(self, attacked_text_list):
        if not attacked_text_list:
            return []
        own, ranks = protocol.score_rows(self.scorer, self.contexts, [at.text for at in attacked_text_list])
        return self._process_model_outputs(attacked_text_list, [np.stack([o, r.astype(float)]) for o, r in zip(own, ranks)])

    def _process_model_outputs(self, inputs, outputs):
        if len(outputs) != len(inputs):
            raise ValueError(f"{len(outputs)} promotion outputs for {len(inputs)} inputs")
        return outputs

    def _is_goal_complete(self, model_output, _):
        return bool(np.all(np.asarray(model_output)[1] <= self.k))

    def _get_score(self, model_output, _):
        out = np.asarray(model_output)
        return float(-out[1].mean()) if self.objective == "rank" else float(out[0].mean())

    def _get_displayed_output(self, raw_output):
        return protocol.exposure(np.asarray(raw_output)[1], self.k)

    def _goal_function_result_type(self):
        return PromotionGoalResult

    def extra_repr_keys(self):
        return ["k", "objective"] + super().extra_repr_keys()


class BestBeamSearch(BeamSearch):
    """TextAttack's beam search, returning the best result of any step (the stock one
    returns the last step's best, which can be worse than an earlier step's, and for a
    maximisable goal runs until no transformation is left: here, until the word budget
    or the query budget is spent)."""

    def perform_search(self, initial_result):
        beam = [initial_result.attacked_text]
        best = initial_result
        while best.goal_status != GoalFunctionResultStatus.SUCCEEDED:
            candidates = []
            for text in beam:
                candidates += self.get_transformations(text, original_text=initial_result.attacked_text)
            if not candidates:
                return best
            results, search_over = self.get_goal_results(candidates)
            if not results:
                return best
            scores = np.array([r.score for r in results])
            top = results[int(scores.argmax())]
            if top.score > best.score:
                best = top
            if search_over:
                return best
            beam = [candidates[i] for i in (-scores).argsort()[: self.beam_width]]
        return best
