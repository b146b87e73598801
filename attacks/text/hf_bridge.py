"""RecRobust examples as a TextAttack dataset, so TextAttack's own Attacker (or CLI) runs on a task.

    from attacks.text.hf_bridge import to_textattack_dataset
    dataset = to_textattack_dataset(to_hf_dataset(task_data))   # or cached_examples(...)
    wrapper = RecommenderWrapper(model)                          # attacks.text.wrapper
    textattack.Attacker(recipe.build(wrapper), dataset, textattack.AttackArgs(num_examples=10)).attack_dataset()

Each example becomes TextAttack's two-column input OrderedDict(profile=..., candidate=...): the
profile text and the candidate text cut from the rendered text by the example's span map
(the pair every RecRobust text model scores), with the like/dislike label as the output.
Preference task only: TextAttack's classification goals need a label per input; ranking
attacks use the goal functions in attacks.text.goals.
"""

from __future__ import annotations

import datasets

from attacks.text.offline import import_textattack

textattack = import_textattack()
from textattack.datasets import HuggingFaceDataset  # noqa: E402

INPUT_COLUMNS = ("profile", "candidate")
LABEL_NAMES = ("dislike", "like")


def _pair(row: dict) -> dict:
    text, spans = row["text"], row["span_map"]
    start, end = spans["profile_chars"]
    cand = spans["candidate"]
    return {"profile": text[start:end], "candidate": text[cand["start"]:cand["end"]]}


def to_textattack_dataset(examples: datasets.Dataset, shuffle: bool = False) -> HuggingFaceDataset:
    """A `textattack.datasets.HuggingFaceDataset` over preference example rows
    (`benchmark.data.hf.to_hf_dataset` or `benchmark.data.cache.cached_examples`)."""
    missing = [c for c in ("text", "span_map", "label", "task") if c not in examples.column_names]
    if missing:
        raise ValueError(f"not RecRobust example rows: missing column(s) {', '.join(missing)}")
    tasks = set(examples.unique("task"))
    if tasks - {"preference"}:
        raise ValueError(f"TextAttack's classification goals need preference examples, not {', '.join(sorted(tasks))}; "
                         "ranking attacks: attacks.text (demote/promote goals)")
    # In memory: a cached split is read-only Arrow, and attacks take tens of examples.
    pairs = examples.map(_pair, desc="profile/candidate pairs", keep_in_memory=True, load_from_cache_file=False)
    return HuggingFaceDataset(pairs, dataset_columns=(list(INPUT_COLUMNS), "label"),
                              label_names=list(LABEL_NAMES), shuffle=shuffle)
