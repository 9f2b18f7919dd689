"""Reconnect backoff: capped, full jitter, injected random and sleep, reset after a stable period;
and the small helpers of the live runtime."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest
from websockets.asyncio.server import serve

from market_liquidity_monitor.config import IngestSettings
from market_liquidity_monitor.ingest.live import (
    Backoff,
    VenueConnection,
    _default_shutdown_notice,
    _rebase,
    _retry_after_s,
)
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry


def test_backoff_doubles_up_to_the_cap():
    b = Backoff(0.5, 30.0, rand=lambda: 1.0)
    assert [b.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    b.reset()
    assert b.next_delay() == 0.5


def test_backoff_full_jitter_scales_the_cap():
    draws = iter([0.0, 0.25, 0.5, 0.999])
    b = Backoff(1.0, 4.0, rand=lambda: next(draws))
    assert [b.next_delay() for _ in range(4)] == pytest.approx([0.0, 0.5, 2.0, 3.996])


def test_backoff_stays_within_bounds_with_real_random():
    b = Backoff(0.5, 30.0)
    for n in range(200):
        cap = b.cap()
        d = b.next_delay()
        assert 0.0 <= d <= cap <= 30.0
        assert cap == min(30.0, 0.5 * 2 ** min(n, 64))


def test_backoff_rejects_bad_parameters():
    for args in [(0, 1), (2, 1), (-1, 5)]:
        with pytest.raises(ValueError):
            Backoff(*args)


def _conn(url: str, settings: IngestSettings, sleeps: list[float], stop_after: int, **kw) -> VenueConnection:
    reg = AdapterRegistry()
    conn: VenueConnection | None = None

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)
        if len(sleeps) >= stop_after:
            conn.stop()
        await asyncio.sleep(0)

    conn = VenueConnection(
        reg("binance"),
        ["BTC/USDT"],
        BookStore(reg),
        settings=settings,
        ws_url=url,
        rest_base_url="http://127.0.0.1:9",
        sleep=fake_sleep,
        rand=lambda: 1.0,
        **kw,
    )
    return conn


async def _closed_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


async def test_connection_refused_backs_off_capped_through_injected_sleep():
    port = await _closed_port()
    sleeps: list[float] = []
    conn = _conn(
        f"ws://127.0.0.1:{port}", IngestSettings(backoff_initial_s=0.5, backoff_max_s=4.0), sleeps, 7
    )
    async with asyncio.timeout(10):
        await conn.run()
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert conn.counters.connect_failures == 7 and conn.counters.connects == 0
    st = conn.status()
    assert not st["connected"] and "connect" in st["last_error"]


async def test_backoff_resets_after_a_stable_connection():
    """Sockets 1-3 are closed at once (delays grow), socket 4 stays up longer than
    ``backoff_reset_after_s`` before closing, so the next delay starts from the initial value."""
    opened = itertools.count(1)

    async def handler(ws):
        if next(opened) == 4:
            await asyncio.sleep(0.3)
        await ws.close()

    sleeps: list[float] = []
    settings = IngestSettings(backoff_initial_s=0.1, backoff_max_s=10.0, backoff_reset_after_s=0.2)
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = _conn(f"ws://127.0.0.1:{port}", settings, sleeps, 5)
        async with asyncio.timeout(10):
            await conn.run()
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.1, 0.2])
    assert conn.counters.connects == 5 and conn.counters.reconnects == 4


async def test_cancellation_is_reraised_and_cleans_up():
    port = await _closed_port()
    conn = VenueConnection(
        AdapterRegistry()("binance"),
        ["BTC/USDT"],
        BookStore(AdapterRegistry()),
        ws_url=f"ws://127.0.0.1:{port}",
        settings=IngestSettings(backoff_initial_s=5, backoff_max_s=5),
        rand=lambda: 1.0,
    )
    task = asyncio.create_task(conn.run())
    await asyncio.sleep(0.2)  # in the backoff sleep now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not conn.running and conn._http is None


def test_rebase_keeps_path_and_query():
    url = "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms"
    assert _rebase(url, "ws://127.0.0.1:9000") == "ws://127.0.0.1:9000/stream?streams=btcusdt@depth@100ms"
    assert (
        _rebase("https://api.binance.com/api/v3/depth", "http://127.0.0.1:9000/")
        == "http://127.0.0.1:9000/api/v3/depth"
    )
    assert _rebase(url, "ws://h:1/ws/btcusdt@depth") == "ws://h:1/ws/btcusdt@depth"  # a full URL wins
    assert _rebase(url, None) == url


def test_retry_after_parsing():
    assert _retry_after_s("120", 1.0) == 120.0
    assert _retry_after_s("0.5", 1.0) == 0.5
    assert _retry_after_s(None, 7.0) == 7.0
    assert _retry_after_s("soon", 7.0) == 7.0
    assert _retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 7.0) == 0.0  # a date in the past


def test_shutdown_notice_detection():
    assert _default_shutdown_notice({"e": "serverShutdown", "E": 1})
    assert _default_shutdown_notice({"stream": "x", "data": {"e": "serverShutdown"}})
    assert not _default_shutdown_notice({"e": "depthUpdate"})
    assert not _default_shutdown_notice([1, 2])
    with contextlib.suppress(Exception):
        assert not _default_shutdown_notice("pong")


async def test_stop_interrupts_a_backoff_wait():
    port = await _closed_port()
    reg = AdapterRegistry()
    conn = VenueConnection(
        reg("binance"),
        ["BTC/USDT"],
        BookStore(reg),
        ws_url=f"ws://127.0.0.1:{port}",
        settings=IngestSettings(backoff_initial_s=30, backoff_max_s=30),
        rand=lambda: 1.0,
    )
    task = asyncio.create_task(conn.run())
    await asyncio.sleep(0.2)  # waiting 30 s before the next attempt
    conn.stop()
    async with asyncio.timeout(2):
        await task
    assert conn.counters.connect_failures == 1 and not conn.running
