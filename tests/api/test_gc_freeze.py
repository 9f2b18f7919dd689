"""After the warm-up the API freezes the heap of its start-up out of full collections.

bench_api measured full (generation 2) collections of 185-330 ms in the API process (~290k
objects: modules, the loaded books), each a pause of every client; after ``gc.freeze()`` a full
collection walks only what was allocated since. Off in the test process itself (tests/conftest.py);
this test turns it on for its own app and undoes the freeze.
"""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings


def test_heap_frozen_after_warmup_shortens_full_collections(data_dir, tmp_path, api_market):
    gc.unfreeze()
    settings = Settings(data_dir=data_dir, home_dir=tmp_path, api={"gc_freeze_after_warmup": True})
    app = create_app(settings, market=api_market)
    try:
        with TestClient(app) as client:
            assert app.state.readiness.wait(600)
            assert client.get("/api/status").status_code == 200
            frozen = gc.get_freeze_count()
            assert frozen > 50_000, frozen  # the process's start-up heap, not a handful
            # what a full collection walks: the oldest generation, without the frozen objects
            walked = len(gc.get_objects(generation=2))
            assert walked < frozen / 5, (walked, frozen)
            gc.unfreeze()
            # back in the oldest generation (less what was freed since the freeze)
            assert len(gc.get_objects(generation=2)) >= 0.9 * frozen
    finally:
        gc.unfreeze()


def test_heap_not_frozen_when_off(data_dir, tmp_path, api_market):
    gc.unfreeze()
    settings = Settings(data_dir=data_dir, home_dir=tmp_path, api={"gc_freeze_after_warmup": False})
    app = create_app(settings, market=api_market)
    with TestClient(app):
        assert app.state.readiness.wait(600)
        assert gc.get_freeze_count() == 0
