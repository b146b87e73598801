"""Shared fixtures: the real dataset files in ../shared/data and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECROBUST_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real dataset files not found at {SHARED_DATA} (set RECROBUST_SHARED_DATA)")
    return SHARED_DATA
