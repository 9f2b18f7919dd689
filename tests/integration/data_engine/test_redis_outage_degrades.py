"""Redis killed mid-run: requests keep being answered from the in-process cache; when Redis comes
back the cache uses it again. Uses a throwaway redis-server started and killed by the test."""

from __future__ import annotations

import asyncio
import time

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.cache import RedisCache
from market_liquidity_monitor.data_engine.engine import DataEngine
from market_liquidity_monitor.data_engine.replay_server import RestReplayServer


async def test_requests_keep_being_answered_when_redis_dies(
    redis_server, replay_server: RestReplayServer
) -> None:
    settings = Settings(
        venues=("binance",),
        data_engine=DataEngineSettings(rest_base_url=replay_server.base_url, request_timeout_s=2.0),
    )
    cache = RedisCache(redis_server.url, 300.0, op_timeout_s=0.5, retry_after_s=0.3)
    engine = DataEngine(settings, cache)
    answered = 0
    latencies = []
    try:
        symbols = ["NKN/USDT", "BLZ/ETH", "LRC/BTC", "RUNE/EUR"]
        for i in range(24):
            if i == 8:
                redis_server.kill()  # Redis dies mid-run
            if i == 16:
                assert cache.status().degraded
                assert cache.status().backend == "memory"
            t0 = time.perf_counter()
            symbol = symbols[i % 4]
            fees = await engine.fee_schedule("binance", symbol)
            book = await engine.order_book("binance", symbol, limit=5)
            await cache.set(f"probe:{i}", {"i": i})
            assert await cache.get(f"probe:{i}") == {"i": i}
            latencies.append(time.perf_counter() - t0)
            assert fees["taker_bps"] == 10.0 and book.bids
            answered += 1
        assert answered == 24
        assert max(latencies) < 2.5  # a dead Redis costs at most one short timeout, never a hang
        assert cache.status().redis_failures >= 1

        # Redis comes back (empty, no persistence): after the probe interval it is used again.
        redis_server.start()
        deadline = time.monotonic() + 10
        while True:
            await asyncio.sleep(0.35)
            await cache.set("after", {"ok": True})
            if not cache.status().degraded or time.monotonic() > deadline:
                break
        assert cache.status().backend == "redis" and not cache.status().degraded
        other = RedisCache(redis_server.url, 300.0)
        try:
            assert await other.get("after") == {"ok": True}
        finally:
            await other.close()
    finally:
        await engine.close()
        await cache.close()


async def test_markets_survive_redis_outage_for_a_fresh_engine(
    redis_server, replay_server: RestReplayServer
) -> None:
    settings = Settings(
        venues=("binance",), data_engine=DataEngineSettings(rest_base_url=replay_server.base_url)
    )
    cache = RedisCache(redis_server.url, 300.0, op_timeout_s=0.2, retry_after_s=30.0)
    first = DataEngine(settings, cache)
    second = DataEngine(settings, cache)
    try:
        await first.markets("binance")
        calls = len(replay_server.requests)
        redis_server.kill()
        # The write-through in-process copy answers while Redis is down: no venue round trip.
        assert "ETH/BTC" in await second.markets("binance")
        assert len(replay_server.requests) == calls
        assert cache.status().degraded
    finally:
        await first.close()
        await second.close()
        await cache.close()
