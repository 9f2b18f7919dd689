"""The real ccxt binance client, pointed at a loopback server replaying recorded REST responses
(cryptofeed captures: exchangeInfo and /api/v3/depth snapshots), through the DataEngine."""

from __future__ import annotations

import gzip
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.breaker import BreakerState
from market_liquidity_monitor.data_engine.cache import MemoryCache
from market_liquidity_monitor.data_engine.engine import DataEngine
from market_liquidity_monitor.data_engine.errors import CircuitOpenError, VenueUnreachableError
from market_liquidity_monitor.data_engine.replay_server import RestReplayServer


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def engine_for(base_url: str, clock: FakeClock | None = None, timeout_s: float = 2.0) -> DataEngine:
    settings = Settings(
        venues=("binance",),
        data_engine=DataEngineSettings(rest_base_url=base_url, request_timeout_s=timeout_s),
    )
    return DataEngine(settings, MemoryCache(300.0), clock or FakeClock())


def recorded_depth(data_dir: Path, venue_symbol: str) -> dict:
    with gzip.open(data_dir / "cryptofeed" / "BINANCE.http.0.0.gz", "rt") as fh:
        for line in fh:
            if f"symbol={venue_symbol}&" in line:
                return json.loads(line.split(": ", 1)[1])
    raise AssertionError(venue_symbol)


async def test_load_markets_fees_and_order_book_from_recorded_responses(
    replay_server: RestReplayServer, data_dir: Path
) -> None:
    engine = engine_for(replay_server.base_url)
    try:
        markets = await engine.markets("binance")
        # exchangeInfo of spot (1,695 symbols, some not trading) plus USD-M and COIN-M contracts.
        assert "BTC/USDT" in markets and "NKN/USDT" in markets
        assert "BTC/USDT:USDT" in markets
        nkn = markets["NKN/USDT"]
        assert nkn["precision"]["price"] == pytest.approx(0.0001)
        fees = await engine.fee_schedule("binance", "NKN/USDT")
        assert fees["taker_bps"] == pytest.approx(10.0) and fees["maker_bps"] == pytest.approx(10.0)

        snap = await engine.order_book("binance", "NKN/USDT", limit=20)
        raw = recorded_depth(data_dir, "NKNUSDT")
        assert snap.sequence == raw["lastUpdateId"] == 499869752
        assert len(snap.bids) == len(snap.asks) == 20
        for got, want in zip(snap.bids + snap.asks, raw["bids"][:20] + raw["asks"][:20], strict=True):
            assert Decimal(got[0]) == Decimal(want[0]) and Decimal(got[1]) == Decimal(want[1])

        lrc = await engine.order_book("binance", "LRC/BTC", limit=5)
        assert lrc.bids[0] == ("0.00000637", "6500")
        # exchangeInfo was fetched once per market type; depth once per book.
        assert sum("exchangeInfo" in r for r in replay_server.requests) == 3
        assert engine.health()[0].state is BreakerState.CLOSED
        assert engine.health()[0].last_success_ms is not None
    finally:
        await engine.close()


async def test_server_stopped_opens_breaker_after_five_failures_then_fails_fast(
    binance_captures: list[Path],
) -> None:
    server = RestReplayServer(binance_captures)
    await server.start()
    clock = FakeClock()
    engine = engine_for(server.base_url, clock)
    try:
        await engine.order_book("binance", "BLZ/ETH", limit=5)
        await server.stop()
        for i in range(5):
            t0 = time.perf_counter()
            with pytest.raises(VenueUnreachableError) as info:
                await engine.order_book("binance", "BLZ/ETH", limit=5)
            assert time.perf_counter() - t0 < 2.0
            assert not isinstance(info.value, CircuitOpenError), i
        health = engine.health()[0]
        assert health.state is BreakerState.OPEN and health.consecutive_failures == 5
        assert health.last_error

        t0 = time.perf_counter()
        for _ in range(20):
            with pytest.raises(CircuitOpenError) as info:
                await engine.order_book("binance", "BLZ/ETH", limit=5)
        assert time.perf_counter() - t0 < 0.5  # no network: rejected by the open breaker
        assert "unreachable" in str(info.value) and "Retry in 30.0 s" in str(info.value)
        # Markets are still served from the cache while the venue is down.
        assert (await engine.fee_schedule("binance", "BLZ/ETH"))["taker_bps"] == pytest.approx(10.0)

        # Venue back, 30 s later: the half-open trial succeeds and closes the breaker.
        await server.start()
        clock.t += 30.0
        assert engine.health()[0].state is BreakerState.HALF_OPEN
        snap = await engine.order_book("binance", "BLZ/ETH", limit=5)
        assert snap.bids
        assert engine.health()[0].state is BreakerState.CLOSED
    finally:
        await engine.close()
        await server.stop()


async def test_no_network_fails_fast_with_venue_unreachable() -> None:
    # Nothing listens on port 9 of the loopback: connection refused, like a machine with no network.
    engine = engine_for("http://127.0.0.1:9", timeout_s=1.0)
    try:
        t0 = time.perf_counter()
        with pytest.raises(VenueUnreachableError) as info:
            await engine.markets("binance")
        assert time.perf_counter() - t0 < 1.5
        assert "Venue 'binance' unreachable" in str(info.value)
    finally:
        await engine.close()


async def test_slow_venue_times_out(binance_captures: list[Path]) -> None:
    async with RestReplayServer(binance_captures) as server:
        engine = engine_for(server.base_url, timeout_s=1.5)
        try:
            await engine.markets("binance")
            server.delay_s = 30.0
            t0 = time.perf_counter()
            with pytest.raises(VenueUnreachableError) as info:
                await engine.order_book("binance", "RUNE/EUR", limit=5)
            assert time.perf_counter() - t0 < 4.0
            assert "RequestTimeout" in str(info.value) or "no answer within" in str(info.value)
        finally:
            await engine.close()


async def test_http_503_counts_as_failure(binance_captures: list[Path]) -> None:
    async with RestReplayServer(binance_captures) as server:
        engine = engine_for(server.base_url)
        try:
            await engine.markets("binance")
            server.fail_status = 503
            with pytest.raises(VenueUnreachableError):
                await engine.order_book("binance", "RUNE/EUR", limit=5)
            assert engine.breaker("binance").consecutive_failures == 1
        finally:
            await engine.close()
