"""Shared fixtures: where the recorded data lives (``<repo>/../shared/data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
SHARED_EVAL = (REPO / ".." / "shared" / "eval").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED_DATA / "hftbacktest").is_dir():
        pytest.skip(f"recorded data not found at {SHARED_DATA} (expected ../shared/data beside the repo)")
    return SHARED_DATA
