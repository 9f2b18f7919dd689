"""Fault injection of the REST stand-in, seen through the real ccxt client and DataEngine: one venue
failing while another answers, 429 with Retry-After, garbage bodies, slow hosts."""

from __future__ import annotations

import time

import ccxt.async_support as ccxt_async
import httpx
import pytest
from ccxt.base import errors as ccxt_errors

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.breaker import BreakerState
from market_liquidity_monitor.data_engine.cache import MemoryCache
from market_liquidity_monitor.data_engine.engine import (
    DataEngine,
    default_exchange_factory,
    point_exchange_at,
)
from market_liquidity_monitor.data_engine.errors import CircuitOpenError, VenueUnreachableError
from market_liquidity_monitor.data_engine.replay_server import Fault, RestReplayServer

BITSTAMP = "www.bitstamp.net"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make_engine(base_url: str, clock: FakeClock | None = None, **cfg) -> DataEngine:
    settings = Settings(
        venues=("binance", "bitstamp", "gate"),
        data_engine=DataEngineSettings(rest_base_url=base_url, **{"request_timeout_s": 5.0, **cfg}),
    )
    return DataEngine(settings, MemoryCache(300.0), clock or FakeClock())


def health(engine: DataEngine) -> dict[str, object]:
    return {h.venue: h for h in engine.health()}


async def test_5xx_on_one_host_opens_that_venues_breaker_while_another_venue_answers(
    server: RestReplayServer,
) -> None:
    clock = FakeClock()
    engine = make_engine(server.base_url, clock, breaker_failure_threshold=3, breaker_reset_s=30.0)
    try:
        await engine.markets("bitstamp")
        await engine.markets("binance")
        server.host_faults[BITSTAMP] = Fault(status=503)
        for i in range(3):
            with pytest.raises(VenueUnreachableError) as info:
                await engine.order_book("bitstamp", "ETH/USD", limit=10)
            assert not isinstance(info.value, CircuitOpenError), i
            # Binance keeps answering from its recording while Bitstamp fails.
            snap = await engine.order_book("binance", "BTC/USDT", limit=5)
            assert snap.bids and snap.asks
        h = health(engine)
        assert h["bitstamp"].state is BreakerState.OPEN and h["bitstamp"].consecutive_failures == 3
        assert "Internal server error" in (h["bitstamp"].last_error or "")
        assert h["binance"].state is BreakerState.CLOSED and h["binance"].consecutive_failures == 0
        asked = len(server.requests)
        with pytest.raises(CircuitOpenError):
            await engine.order_book("bitstamp", "ETH/USD", limit=10)
        assert len(server.requests) == asked  # rejected by the open breaker, no request sent
        assert (await engine.order_book("gate", "BTC/USDC", limit=5)).bids

        # Bitstamp recovers: after the reset timeout the half-open trial closes the breaker.
        del server.host_faults[BITSTAMP]
        clock.t += 30.0
        assert (await engine.order_book("bitstamp", "ETH/USD", limit=10)).bids
        assert health(engine)["bitstamp"].state is BreakerState.CLOSED
    finally:
        await engine.close()


async def test_injected_errors_have_each_venues_own_shape(server: RestReplayServer) -> None:
    server.fail_status = 503
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        r = await client.get("/api.binance.com/api/v3/depth", params={"symbol": "BTCUSDT"})
        assert r.status_code == 503 and r.json()["code"] == -1001
        r = await client.get("/api.gateio.ws/api/v4/spot/order_book", params={"currency_pair": "BTC_USDC"})
        assert r.status_code == 503 and r.json()["label"] == "SERVER_ERROR"
        r = await client.get(
            "/api.kucoin.com/api/v1/market/orderbook/level2_20", params={"symbol": "SNX-BTC"}
        )
        assert r.status_code == 503 and r.json()["code"] == "500000"
        r = await client.get("/www.bitstamp.net/api/v2/order_book/ethusd/")
        assert r.status_code == 503 and r.json()["status"] == "error"


async def test_429_with_retry_after(server: RestReplayServer) -> None:
    make = default_exchange_factory(
        Settings(data_engine=DataEngineSettings(rest_base_url=server.base_url, request_timeout_s=5.0))
    )
    binance, gate = make("binance"), make("gate")
    engine = make_engine(server.base_url)
    try:
        await binance.load_markets()
        await gate.load_markets()
        await engine.markets("binance")
        server.host_faults["api.binance.com"] = Fault(retry_after_s=7)
        with pytest.raises(ccxt_errors.DDoSProtection, match="429"):
            await binance.fetch_order_book("BTC/USDT", 5)
        assert binance.last_response_headers["Retry-After"] == "7"
        with pytest.raises(VenueUnreachableError, match="DDoSProtection"):
            await engine.order_book("binance", "BTC/USDT", limit=5)
        assert engine.breaker("binance").consecutive_failures == 1  # rate limited counts as unhealthy
        # Only Binance's host is limited.
        assert (await gate.fetch_order_book("BTC/USDC", 5))["bids"]
        server.host_faults["api.gateio.ws"] = Fault(retry_after_s=2.5)
        with pytest.raises(ccxt_errors.RateLimitExceeded, match="TOO_MANY_REQUESTS"):
            await gate.fetch_order_book("BTC/USDC", 5)
        assert gate.last_response_headers["Retry-After"] == "3"  # whole seconds, rounded up
    finally:
        await binance.close()
        await gate.close()
        await engine.close()


async def test_garbage_body_is_a_venue_failure_not_an_empty_book(server: RestReplayServer) -> None:
    engine = make_engine(server.base_url)
    plain = ccxt_async.binance()  # ccxt without the product's factory
    point_exchange_at(plain, server.base_url)
    try:
        await engine.markets("binance")
        await plain.load_markets()
        server.host_faults["api.binance.com"] = Fault(garbage=b"<html><body>maintenance</body></html>")
        # What ccxt 4.5.90 does on its own with a non-JSON 200: an empty book, no error.
        book = await plain.fetch_order_book("BTC/USDT", 5)
        assert book["bids"] == [] and book["asks"] == []
        with pytest.raises(VenueUnreachableError, match="non-JSON"):
            await engine.order_book("binance", "BTC/USDT", limit=5)
        assert engine.breaker("binance").consecutive_failures == 1
        server.host_faults.clear()
        assert (await engine.order_book("binance", "BTC/USDT", limit=5)).bids
        assert engine.breaker("binance").consecutive_failures == 0
        # Error statuses with non-JSON bodies keep ccxt's own mapping (here Binance's nginx 404).
        with pytest.raises(ccxt_errors.ExchangeNotAvailable, match="404"):
            await engine.exchange("binance").fetch_trades("BTC/USDT", None, 5)  # ccxt default: /aggTrades
    finally:
        await plain.close()
        await engine.close()


async def test_slow_host_times_out_alone(server: RestReplayServer) -> None:
    engine = make_engine(server.base_url, request_timeout_s=1.0)
    try:
        await engine.markets("gate")
        await engine.markets("bitstamp")
        server.host_faults["api.gateio.ws"] = Fault(delay_s=30.0)
        t0 = time.perf_counter()
        with pytest.raises(VenueUnreachableError, match=r"RequestTimeout|no answer within"):
            await engine.order_book("gate", "BTC/USDC", limit=5)
        assert time.perf_counter() - t0 < 3.0
        assert (await engine.order_book("bitstamp", "ETH/USD", limit=5)).bids
    finally:
        await engine.close()
