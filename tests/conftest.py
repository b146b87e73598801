"""Shared fixtures: the real dataset files in ../shared/data and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECROBUST_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real dataset files not found at {SHARED_DATA} (set RECROBUST_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one intra-op thread for a module of tiny models (modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``): they gain nothing from threads,
    and on a shared 2-core machine OpenMP threads spinning against other processes make
    each step many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
