"""Ranking goals as TextAttack goal functions.

The attacked text is the pair (profile text, text of the attacked candidate): the true
item (candidates[0]) for `demote`, the chosen target for `promote`. The example's other
candidates are context set per example (`set_context`); every query scores the attacked
candidate and all the others under the query's profile text, through the wrapper's
PairScorer. With scope "item" the profile text never changes, so the others' scores come
from the cache after the first query; with scope "history" every new profile text
re-scores all candidates (as it must: the profile drives every score).

Ranks are 1-based with ties counted against the attacked item (benchmark.metrics):
rank = 1 + #(others with score >= own score).
- demote: success when rank > k. Score (maximised by the search) = s_k - s_own, where s_k
  is the k-th highest score among the others; success exactly when score >= 0.
- promote: success when rank <= k. Score = s_own - s_k; success exactly when score > 0.
"""

from __future__ import annotations

import numpy as np
import torch

from attacks.text.offline import import_textattack

import_textattack()
from textattack.goal_function_results import GoalFunctionResult  # noqa: E402
from textattack.goal_functions import GoalFunction  # noqa: E402

TOP_K = 10


def rank_of_first(row: np.ndarray) -> int:
    """1-based rank of row[0] among row (ties pessimistic)."""
    return 1 + int(np.sum(row[1:] >= row[0]))


class RankingGoalFunctionResult(GoalFunctionResult):
    """raw_output: scores of [attacked candidate, *others]; output: the attacked candidate's rank."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs, goal_function_result_type="Ranking")

    def get_text_color_input(self):
        return "red"

    def get_text_color_perturbed(self):
        return "blue"

    def get_colored_output(self, color_method=None):
        return f"rank {self.output}"


class RankingGoal(GoalFunction):
    """Base of the ranking goals. `model_wrapper` must be an attacks.text.wrapper.RecommenderWrapper."""

    name = "ranking"

    def __init__(self, model_wrapper, k: int = TOP_K, **kwargs):
        super().__init__(model_wrapper, **kwargs)
        self.k = int(k)
        self.other_texts: list[str] = []

    def set_context(self, other_texts) -> None:
        """The texts of the example's other candidates (fixed during the attack)."""
        if len(other_texts) < self.k:
            raise ValueError(f"{self.name}: a top-{self.k} goal needs at least {self.k + 1} candidates, got {len(other_texts) + 1}")
        self.other_texts = list(other_texts)

    def _call_model_uncached(self, attacked_text_list):
        if not attacked_text_list:
            return []
        pairs = []
        for at in attacked_text_list:
            profile, candidate = at.tokenizer_input
            pairs.append((profile, candidate))
            pairs.extend((profile, other) for other in self.other_texts)
        width = 1 + len(self.other_texts)
        scores = self.model.scorer.score(pairs).reshape(len(attacked_text_list), width)
        return self._process_model_outputs(attacked_text_list, torch.from_numpy(scores))

    def _process_model_outputs(self, inputs, outputs):
        if outputs.ndim != 2 or outputs.shape[0] != len(inputs):
            raise ValueError(f"ranking scores of shape {tuple(outputs.shape)} for {len(inputs)} inputs")
        return outputs

    def _kth_other(self, row: np.ndarray) -> float:
        others = np.asarray(row[1:], dtype=np.float64)
        return float(np.partition(others, len(others) - self.k)[len(others) - self.k])

    def _goal_function_result_type(self):
        return RankingGoalFunctionResult

    def _get_displayed_output(self, raw_output):
        return rank_of_first(np.asarray(raw_output))

    def extra_repr_keys(self):
        return ["k"] + super().extra_repr_keys()


class DemoteTopK(RankingGoal):
    """Push the true item (candidates[0]) out of the top-k."""

    name = "demote"

    def _is_goal_complete(self, model_output, _):
        return rank_of_first(np.asarray(model_output)) > self.k

    def _get_score(self, model_output, _):
        row = np.asarray(model_output)
        return self._kth_other(row) - float(row[0])


class PromoteTopK(RankingGoal):
    """Lift a target item (a negative ranked outside the top-k) into the top-k."""

    name = "promote"

    def _is_goal_complete(self, model_output, _):
        return rank_of_first(np.asarray(model_output)) <= self.k

    def _get_score(self, model_output, _):
        row = np.asarray(model_output)
        return float(row[0]) - self._kth_other(row)
