"""Shared fixtures: where the recorded data lives (``<repo>/../shared/data``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
SHARED_EVAL = (REPO / ".." / "shared" / "eval").resolve()

# Replay checkpoints of this test run go to a directory of its own (inherited by the processes the
# tests start), never to the user's ~/.cache: a run neither depends on nor leaves a cache.
os.environ.setdefault("MLM_INGEST__CHECKPOINT_DIR", tempfile.mkdtemp(prefix="mlm-test-checkpoints-"))
# The test process builds hundreds of apps: freezing the heap after each warm-up would keep every
# earlier app's garbage for good (tests/api/test_gc_freeze.py turns it on for its own app).
os.environ.setdefault("MLM_API__GC_FREEZE_AFTER_WARMUP", "false")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED_DATA / "hftbacktest").is_dir():
        pytest.skip(f"recorded data not found at {SHARED_DATA} (expected ../shared/data beside the repo)")
    return SHARED_DATA
