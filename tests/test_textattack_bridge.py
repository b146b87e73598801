"""The README's TextAttack-bridge example, run as written on a tiny model over a slice of real data."""

from __future__ import annotations

import re

import pytest
import torch

from attacks.text import offline
from tests.conftest import REPO

TINY = ('dict(backbone="tiny-bert", backbone_config={"initializer_range": 0.3, "vocab_size": 600}, epochs=1, '
        'lr=1e-9, batch_size=16, max_length=160, max_train_examples=16, progress=False)')


def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Hugging Face datasets", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture()
def offline_one_thread(monkeypatch):
    monkeypatch.setattr(offline, "hub_reachable", lambda: False)
    monkeypatch.setattr(offline, "host_reachable", lambda host, *a, **k: False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_readme_textattack_example_runs_on_a_tiny_model(shared_data, offline_one_thread, capsys):
    code = _readme_example()
    assert 'load_dataset("movielens-100k")' in code and "model_options = dict(" in code
    # Same code, a tiny model and a small real slice (ML-1M users 1-2999) instead of MiniLM on ML-100K.
    code = re.sub(r"model_options = dict\(.*\)\n", f"model_options = {TINY}\n", code)
    partial = shared_data / "ml-1m" / "ratings_subset_users_1-2999.dat.gz"
    code = code.replace('load_dataset("movielens-100k")', f'load_dataset({str(partial)!r})')
    code = code.replace('"preference", seed=0)', '"preference", seed=0, max_examples=40)')
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    results = namespace["results"]
    assert len(results) == 2
    names = {type(r).__name__ for r in results}
    assert names <= {"SuccessfulAttackResult", "FailedAttackResult", "SkippedAttackResult", "MaximizedAttackResult"}
    for r in results:  # the attacked input is the (profile, candidate) pair of a real example
        assert list(r.original_result.attacked_text.column_labels) == ["profile", "candidate"]
        assert r.original_result.attacked_text.text.startswith("Rated, oldest first:")
    assert "Result" in capsys.readouterr().out


def test_bridge_refuses_ranking_rows(shared_data):
    from attacks.text.hf_bridge import to_textattack_dataset
    from benchmark.data.hf import to_hf_dataset
    from benchmark.data.load import load_dataset
    from benchmark.tasks import build_task

    data = build_task(load_dataset(shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz"), "ranking",
                      "test", max_examples=3)
    with pytest.raises(ValueError, match="preference examples, not ranking"):
        to_textattack_dataset(to_hf_dataset(data))
