"""Bad input from ccxt venues, through the real ccxt client, the DataEngine and the service layer,
against the REST stand-in's fault knobs (``RestReplayServer``): a venue that rate-limits (429 +
Retry-After) is held for that long, per venue; a garbage (non-JSON) body is a per-venue reason,
never a number; a symbol a venue does not list names the closest ones it does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.cache import MemoryCache
from market_liquidity_monitor.data_engine.engine import DataEngine, retry_after_seconds
from market_liquidity_monitor.data_engine.errors import VenueRateLimitedError, VenueUnreachableError
from market_liquidity_monitor.data_engine.replay_server import Fault, RestReplayServer
from market_liquidity_monitor.domain.errors import InvalidInputError, UnknownSymbolError
from market_liquidity_monitor.services import Services

BINANCE = "api.binance.com"
BITSTAMP = "www.bitstamp.net"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def settings(base_url: str, home: Path | None = None, **de) -> Settings:
    cfg = {"rest_base_url": base_url, "request_timeout_s": 5.0, **de}
    kw = {"home_dir": home} if home else {}
    return Settings(venues=("binance", "bitstamp", "gate"), data_engine=DataEngineSettings(**cfg), **kw)


def asked(server: RestReplayServer, host: str) -> int:
    return sum(1 for r in server.requests if host in str(r))


async def test_429_holds_that_venue_for_retry_after_and_only_that_venue(server: RestReplayServer) -> None:
    clock = FakeClock()
    engine = DataEngine(settings(server.base_url), MemoryCache(300.0), clock)
    try:
        await engine.markets("binance")
        await engine.markets("gate")
        server.host_faults[BINANCE] = Fault(retry_after_s=7)
        with pytest.raises(VenueRateLimitedError) as info:
            await engine.order_book("binance", "BTC/USDT", limit=5)
        assert "rate limited" in str(info.value) and "Retry-After 7" in str(info.value)
        assert info.value.retry_after_s == 7
        before = asked(server, BINANCE)
        clock.t += 6.5  # still inside Retry-After: refused here, nothing sent to the venue
        with pytest.raises(VenueRateLimitedError, match=r"held for 0\.5 s more"):
            await engine.order_book("binance", "BTC/USDT", limit=5)
        assert asked(server, BINANCE) == before
        (h,) = [h for h in engine.health() if h.venue == "binance"]
        assert h.rate_limited_for_s == pytest.approx(0.5)
        assert (await engine.order_book("gate", "BTC/USDC", limit=5)).bids  # gate is not held
        del server.host_faults[BINANCE]
        clock.t += 0.6  # Retry-After over: asked again, and it answers
        assert (await engine.order_book("binance", "BTC/USDT", limit=5)).bids
        assert asked(server, BINANCE) == before + 1
        assert engine.rate_limit_hold_s("binance") is None
    finally:
        await engine.close()


async def test_429_without_retry_after_uses_the_configured_hold_and_the_cap(server: RestReplayServer) -> None:
    clock = FakeClock()
    engine = DataEngine(
        settings(server.base_url, rate_limit_hold_s=2.0, rate_limit_max_hold_s=60.0),
        MemoryCache(300.0),
        clock,
    )
    try:
        await engine.markets("binance")
        server.host_faults[BINANCE] = Fault(retry_after_s=3600)  # a venue asking for an hour: capped
        with pytest.raises(VenueRateLimitedError) as info:
            await engine.order_book("binance", "BTC/USDT", limit=5)
        assert info.value.retry_after_s == 60.0
    finally:
        await engine.close()
    # Retry-After values as RFC 9110 writes them
    assert retry_after_seconds("120", 0.0) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == pytest.approx(60.0)
    assert retry_after_seconds(None, 0.0) is None and retry_after_seconds("soon", 0.0) is None


async def test_rate_limited_venue_is_named_in_the_answer_while_others_answer(
    server: RestReplayServer, tmp_path: Path
) -> None:
    services = Services.build(settings(server.base_url, tmp_path), persist_alerts=False)
    try:
        await services.engine.markets("bitstamp")
        server.host_faults[BITSTAMP] = Fault(retry_after_s=30)
        for _ in range(2):  # the second time nothing is sent to bitstamp: the hold answers
            cmp = await services.liquidity.compare("ETH", "buy", size=1, venues=["binance", "bitstamp"])
            assert [r.venue for r in cmp.venues] == ["binance"]
            (gone,) = cmp.unavailable
            assert gone.venue == "bitstamp" and gone.kind == "unreachable"
            assert "rate limited" in gone.reason and "Retry-After 30" in gone.reason
        assert asked(server, BITSTAMP + "/api/v2/order_book") == 1
    finally:
        await services.close()


async def test_garbage_body_is_a_per_venue_reason_not_a_number(
    server: RestReplayServer, tmp_path: Path
) -> None:
    services = Services.build(settings(server.base_url, tmp_path), persist_alerts=False)
    server.host_faults[BITSTAMP] = Fault(garbage=b"<html><body>maintenance</body></html>")
    try:
        # markets never loaded: the markets request gets the page
        cmp = await services.liquidity.compare("ETH", "buy", size=1, venues=["binance", "bitstamp"])
        assert [r.venue for r in cmp.venues] == ["binance"] and cmp.venues[0].vwap > 0
        (gone,) = cmp.unavailable
        assert gone.venue == "bitstamp" and gone.kind == "unreachable"
        assert "non-JSON" in gone.reason and "maintenance" in gone.reason
        assert "Traceback" not in gone.reason
        # markets loaded, then the order book request gets the page
        del server.host_faults[BITSTAMP]
        await services.engine.markets("bitstamp")
        server.host_faults[BITSTAMP] = Fault(garbage=b"<html><body>maintenance</body></html>")
        with pytest.raises(VenueUnreachableError, match="non-JSON") as info:
            await services.liquidity.impact("ETH", "buy", size=1, venue="bitstamp")
        assert "bitstamp" in str(info.value)
    finally:
        await services.close()


async def test_symbol_a_venue_does_not_list_names_the_closest_it_does(
    server: RestReplayServer, tmp_path: Path
) -> None:
    services = Services.build(settings(server.base_url, tmp_path), persist_alerts=False)
    try:
        t0 = time.perf_counter()
        with pytest.raises(UnknownSymbolError) as info:
            await services.liquidity.impact("ETH/USDX", "buy", size=1, venue="bitstamp")
        assert time.perf_counter() - t0 < 10
        err = info.value
        assert err.venue == "bitstamp" and "ETH/USD" in err.suggestions
        # the suggestions are Bitstamp's own listing (the recorded trading-pairs-info)
        assert set(err.valid) <= set((await services.engine.markets("bitstamp")).keys())
        assert "Did you mean" in str(err) and "ETH/USD" in str(err)
        with pytest.raises(InvalidInputError) as many:  # several venues: each names its own
            await services.liquidity.compare("ETH/USDX", "buy", size=1, venues=["binance", "bitstamp"])
        text = str(many.value)
        assert "on binance. Did you mean ETH/USDT" in text and "on bitstamp. Did you mean ETH/USD," in text
    finally:
        await services.close()
