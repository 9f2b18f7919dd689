"""No recording is replayed on the API's event loop.

A cross-venue question with no venue list asked ``MarketData.venues()``, which loaded every
recording whose instruments are not known from its file names, synchronously, on the event loop:
2.9 s during which every REST and WebSocket client waited (bench_api: a 2.5-4.9 s stall on the
first ``POST /api/compare``). Listing venues needs no replay (each recording group names its venue);
loading happens in a worker thread.
"""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData


def test_venues_are_listed_without_loading_a_recording(data_dir, tmp_path):
    settings = Settings(data_dir=data_dir, home_dir=tmp_path)
    market = MarketData.from_recordings(settings, data_dir)
    venues = market.venues()
    assert venues == sorted({g.venue for g in market.groups})
    assert len(venues) >= 5
    assert market._loaded == set()


@pytest.mark.timeout(600)
def test_first_cross_venue_compare_replays_off_the_event_loop(data_dir, tmp_path):
    settings = Settings(data_dir=data_dir, home_dir=tmp_path, venues=("binance",))
    market = MarketData.from_recordings(settings, data_dir)
    loads: list[tuple[str, bool]] = []
    load_group = market.load_group

    def spy(group):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:  # a worker thread: no running loop
            on_loop = False
        loads.append((group.name, on_loop))
        return load_group(group)

    market.load_group = spy
    app = create_app(settings, market=market)
    with TestClient(app) as client:
        assert app.state.readiness.wait(600)
        r = client.post("/api/compare", json={"symbol": "BTC/USDT", "side": "buy", "size": 5})
    assert r.status_code == 200, r.text
    answered = {v["venue"] for v in r.json()["venues"]}
    assert len(answered) >= 3, answered  # books of several venues were loaded for it
    assert loads, "the compare loaded recordings"
    on_loop = [name for name, flag in loads if flag]
    assert not on_loop, f"replayed on the event loop: {on_loop}"


def test_single_venue_resolve_needs_no_thread_when_that_venue_is_known(data_dir, tmp_path):
    """A question about one venue whose recordings name their instruments resolves on the event
    loop, even while another venue's capture (instruments unknown until read) is unread: it used
    to take a worker-thread hop per request (~0.1 ms of each /api/orderbook and /api/impact)."""
    import threading

    from market_liquidity_monitor.services import Services

    settings = Settings(data_dir=data_dir, home_dir=tmp_path)
    services = Services.build(settings, persist_alerts=False)
    market = services.market
    asyncio.run(services.books.resolve("BTC/USDT", "binance"))  # binance's captures read (in a thread)
    assert market.discovered("binance") and not market.discovered(), "needs an unread capture elsewhere"
    threads: list[str] = []
    resolve = market.resolve

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return resolve(*args, **kwargs)

    market.resolve = spy
    inst = asyncio.run(services.books.resolve("BTC/USDT", "binance"))
    assert (inst.venue, inst.symbol) == ("binance", "BTC/USDT")
    assert threads == [threading.main_thread().name]
    assert not market.discovered()  # nothing else was read for it
