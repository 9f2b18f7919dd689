"""DataEngine over a fake ccxt exchange: caching, error translation, breaker wiring, health."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from ccxt.base import errors as ccxt_errors

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.breaker import BreakerState, Outcome
from market_liquidity_monitor.data_engine.cache import MemoryCache
from market_liquidity_monitor.data_engine.engine import DataEngine, classify_error, point_exchange_at
from market_liquidity_monitor.data_engine.errors import (
    CircuitOpenError,
    VenueRequestError,
    VenueUnreachableError,
)
from market_liquidity_monitor.domain.errors import InvalidInputError, UnknownSymbolError, UnknownVenueError


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeExchange:
    """Enough of a ccxt async exchange for the engine."""

    timeframes = {"1m": "1m", "5m": "5m", "1h": "1h"}  # noqa: RUF012
    fees = {"trading": {"taker": 0.002, "maker": 0.001}}  # noqa: RUF012

    def __init__(self) -> None:
        self.markets: dict[str, Any] | None = None
        self.calls: list[str] = []
        self.error: BaseException | None = None
        self.hang = False
        self.closed = False

    async def _io(self, name: str) -> None:
        self.calls.append(name)
        if self.hang:
            await asyncio.sleep(3600)
        if self.error is not None:
            raise self.error

    def set_markets(self, markets: Any, currencies: Any = None) -> dict[str, Any]:
        items = markets.values() if isinstance(markets, dict) else markets
        self.markets = {m["symbol"]: m for m in items}
        return self.markets

    async def load_markets(self, reload: bool = False) -> dict[str, Any]:
        await self._io("load_markets")
        return self.set_markets(
            [
                {
                    "symbol": "BTC/USDT",
                    "taker": 0.001,
                    "maker": 0.001,
                    "tierBased": False,
                    "percentage": True,
                },
                {"symbol": "ETH/USDT", "taker": 0.001, "maker": 0.0008},
                {"symbol": "NOFEE/USDT"},
            ]
        )

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        await self._io("fetch_order_book")
        return {
            "bids": [[61837.63, 3.78826], [61837.62, 0.00001], [61800.0, 1.0]],
            "asks": [[61837.64, 1.54698], [61840.1, 2.5]],
            "timestamp": 1723161256313,
            "nonce": 50093239212,
        }

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: Any, limit: Any) -> list[list[float]]:
        await self._io("fetch_ohlcv")
        return [[1_700_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0], [1_700_000_060_000, 1.5, 1.6, 1.4, 1.45, 3.0]]

    async def fetch_trades(self, symbol: str, since: Any, limit: Any) -> list[dict[str, Any]]:
        await self._io("fetch_trades")
        return [
            {
                "id": "42",
                "timestamp": 1_700_000_000_123,
                "price": 0.00000637,
                "amount": 6500.0,
                "side": "sell",
            }
        ]

    async def close(self) -> None:
        self.closed = True


def make_engine(**cfg: Any) -> tuple[DataEngine, FakeExchange, FakeClock, MemoryCache]:
    clock = FakeClock()
    fake = FakeExchange()
    settings = Settings(venues=("binance",), data_engine=DataEngineSettings(**cfg))
    cache = MemoryCache(300.0, clock=clock)
    engine = DataEngine(
        settings, cache, clock, wall_clock=lambda: 1_700_000_000.0, exchange_factory=lambda v: fake
    )
    return engine, fake, clock, cache


async def test_markets_loaded_once_and_cached_for_ttl() -> None:
    engine, fake, clock, cache = make_engine()
    markets = await engine.markets("binance")
    assert set(markets) == {"BTC/USDT", "ETH/USDT", "NOFEE/USDT"}
    await asyncio.gather(*(engine.markets("binance") for _ in range(10)))
    assert fake.calls == ["load_markets"]
    assert await cache.get("markets:binance")
    clock.t += 301
    await engine.markets("binance")
    assert fake.calls == ["load_markets", "load_markets"]


async def test_markets_restored_from_shared_cache_without_network() -> None:
    engine, fake, _clock, cache = make_engine()
    await cache.set("markets:binance", [{"symbol": "SOL/USDT", "taker": 0.001, "maker": 0.001}])
    assert set(await engine.markets("binance")) == {"SOL/USDT"}
    assert fake.calls == []


async def test_fee_schedule_in_bps_with_source() -> None:
    engine, *_ = make_engine()
    fees = await engine.fee_schedule("binance", "ETH/USDT")
    assert fees["taker_bps"] == pytest.approx(10.0)
    assert fees["maker_bps"] == pytest.approx(8.0)
    assert "market metadata" in fees["source"]
    fallback = await engine.fee_schedule("binance", "NOFEE/USDT")
    assert fallback["taker_bps"] == pytest.approx(20.0)
    assert "exchange-wide" in fallback["source"]


async def test_order_book_is_an_l2_snapshot_with_exact_decimal_strings() -> None:
    engine, *_ = make_engine()
    snap = await engine.order_book("binance", "BTC/USDT", limit=2)
    assert snap.instrument.venue == "binance" and snap.instrument.symbol == "BTC/USDT"
    assert snap.bids == [("61837.63", "3.78826"), ("61837.62", "0.00001")]
    assert snap.asks == [("61837.64", "1.54698"), ("61840.1", "2.5")]
    assert snap.sequence == 50093239212
    assert snap.ts_event == 1723161256313 * 1_000_000
    assert snap.ts_recv == 1_700_000_000 * 10**9


async def test_unknown_symbol_suggests_and_does_not_touch_the_breaker() -> None:
    engine, fake, *_ = make_engine()
    with pytest.raises(UnknownSymbolError) as info:
        await engine.order_book("binance", "BTC/USDTT")
    assert "BTC/USDT" in info.value.suggestions
    assert fake.calls == ["load_markets"]
    assert engine.breaker("binance").consecutive_failures == 0


async def test_unknown_venue() -> None:
    settings = Settings()
    engine = DataEngine(settings, MemoryCache())
    with pytest.raises(UnknownVenueError) as info:
        await engine.markets("binanse")
    assert "binance" in info.value.suggestions


async def test_ohlcv_cached_and_timeframe_validated() -> None:
    engine, fake, *_ = make_engine()
    rows = await engine.ohlcv("binance", "BTC/USDT", "1m", since_ms=None, limit=2)
    assert rows[0] == [1_700_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0]
    await engine.ohlcv("binance", "BTC/USDT", "1m", since_ms=None, limit=2)
    assert fake.calls.count("fetch_ohlcv") == 1
    with pytest.raises(InvalidInputError) as info:
        await engine.ohlcv("binance", "BTC/USDT", "7m")
    assert "1m, 5m, 1h" in str(info.value)


async def test_trades_are_domain_trades() -> None:
    engine, *_ = make_engine()
    (trade,) = await engine.trades("binance", "BTC/USDT")
    assert trade.price == "0.00000637" and trade.size == "6500"
    assert trade.side == "sell" and trade.trade_id == "42"
    assert trade.ts_event == 1_700_000_000_123 * 1_000_000


async def test_failures_open_the_breaker_and_calls_then_fail_fast() -> None:
    engine, fake, clock, _ = make_engine()
    await engine.markets("binance")
    fake.error = ccxt_errors.ExchangeNotAvailable("binance GET https://api.binance.com/api/v3/depth 503")
    for _ in range(5):
        with pytest.raises(VenueUnreachableError) as info:
            await engine.order_book("binance", "BTC/USDT")
        assert "unreachable" in str(info.value)
    health = {h.venue: h for h in engine.health()}["binance"]
    assert health.state is BreakerState.OPEN
    assert health.consecutive_failures == 5
    assert "503" in (health.last_error or "")
    assert health.retry_in_s == pytest.approx(30.0)
    assert health.markets_loaded
    calls_before = len(fake.calls)
    t0 = time.perf_counter()
    with pytest.raises(CircuitOpenError):
        await engine.order_book("binance", "BTC/USDT")
    assert time.perf_counter() - t0 < 0.5
    assert len(fake.calls) == calls_before  # no network attempt while open

    clock.t += 30
    fake.error = None
    await engine.order_book("binance", "BTC/USDT")  # the half-open trial
    assert engine.health()[0].state is BreakerState.CLOSED
    assert engine.health()[0].to_dict()["state"] == "closed"


async def test_request_refusals_are_neutral() -> None:
    engine, fake, *_ = make_engine()
    await engine.markets("binance")
    fake.error = ccxt_errors.BadRequest("binance {'code': -1100, 'msg': 'Illegal characters'}")
    for _ in range(10):
        with pytest.raises(VenueRequestError):
            await engine.order_book("binance", "BTC/USDT")
    assert engine.breaker("binance").state is BreakerState.CLOSED
    assert engine.breaker("binance").consecutive_failures == 0


async def test_a_hanging_venue_times_out_instead_of_hanging() -> None:
    engine, fake, *_ = make_engine(request_timeout_s=0.05)
    await engine.markets("binance")
    fake.hang = True
    t0 = time.perf_counter()
    with pytest.raises(VenueUnreachableError) as info:
        await engine.order_book("binance", "BTC/USDT")
    assert time.perf_counter() - t0 < 1.0
    assert "no answer within 0.05 s" in str(info.value)
    assert engine.breaker("binance").consecutive_failures == 1


async def test_stale_markets_served_when_refresh_fails() -> None:
    engine, fake, clock, _ = make_engine()
    await engine.markets("binance")
    clock.t += 400
    fake.error = ccxt_errors.RequestTimeout("timeout")
    assert "BTC/USDT" in await engine.markets("binance")


async def test_close_closes_exchanges() -> None:
    engine, fake, *_ = make_engine()
    await engine.markets("binance")
    await engine.close()
    await engine.close()
    assert fake.closed


def test_classify_error() -> None:
    assert classify_error(ccxt_errors.NetworkError("x")) is Outcome.FAILURE
    assert classify_error(ccxt_errors.RateLimitExceeded("x")) is Outcome.FAILURE
    assert classify_error(ccxt_errors.ExchangeError("x")) is Outcome.FAILURE
    assert classify_error(TimeoutError()) is Outcome.FAILURE
    assert classify_error(ConnectionRefusedError()) is Outcome.FAILURE
    assert classify_error(ccxt_errors.BadSymbol("x")) is Outcome.NEUTRAL
    assert classify_error(ccxt_errors.AuthenticationError("x")) is Outcome.NEUTRAL
    assert classify_error(InvalidInputError("x")) is Outcome.NEUTRAL


def test_point_exchange_at_rewrites_every_rest_url() -> None:
    class E:
        def __init__(self) -> None:
            self.urls = {
                "api": {
                    "public": "https://api.binance.com/api/v3",
                    "nested": {"x": "https://fapi.binance.com/fapi/v1"},
                }
            }

    e = E()
    point_exchange_at(e, "http://127.0.0.1:9/")
    assert e.urls["api"]["public"] == "http://127.0.0.1:9/api.binance.com/api/v3"
    assert e.urls["api"]["nested"]["x"] == "http://127.0.0.1:9/fapi.binance.com/fapi/v1"
