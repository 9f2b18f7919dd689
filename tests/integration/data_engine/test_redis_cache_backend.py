"""RedisCache against a real Redis (MLM_TEST_REDIS_URL; skipped when unset or unreachable)."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.cache import RedisCache
from market_liquidity_monitor.data_engine.engine import DataEngine
from market_liquidity_monitor.data_engine.replay_server import RestReplayServer


def unique_prefix() -> str:
    return f"mlm:test:{uuid.uuid4().hex[:12]}:"


async def drop_prefix(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_round_trip_ttl_and_delete(redis_url: str) -> None:
    prefix = unique_prefix()
    cache = RedisCache(redis_url, 300.0, prefix=prefix)
    try:
        value = {"BTC/USDT": {"taker": 0.001, "precision": {"price": 0.01}, "active": True, "info": None}}
        await cache.set("markets:binance", value)
        assert await cache.get("markets:binance") == value
        # Stored in Redis itself (not only in the in-process fallback), with a TTL.
        client = Redis.from_url(redis_url)
        try:
            assert await client.exists(prefix + "markets:binance") == 1
            assert 0 < await client.pttl(prefix + "markets:binance") <= 300_000
        finally:
            await client.aclose()
        await cache.set("short", [1, 2, 3], ttl_s=0.2)
        assert await cache.get("short") == [1, 2, 3]
        await asyncio.sleep(0.3)
        await cache.fallback.delete("short")  # only Redis decides now
        assert await cache.get("short") is None
        await cache.delete("markets:binance")
        assert await cache.get("markets:binance") is None
        status = cache.status()
        assert status.backend == "redis" and not status.degraded and status.redis_failures == 0
    finally:
        await drop_prefix(redis_url, prefix)
        await cache.close()


async def test_two_engines_share_markets_through_redis(
    redis_url: str, replay_server: RestReplayServer
) -> None:
    prefix = unique_prefix()
    settings = Settings(
        venues=("binance",), data_engine=DataEngineSettings(rest_base_url=replay_server.base_url)
    )
    cache_a = RedisCache(redis_url, 300.0, prefix=prefix)
    cache_b = RedisCache(redis_url, 300.0, prefix=prefix)
    engine_a = DataEngine(settings, cache_a)
    engine_b = DataEngine(settings, cache_b)
    try:
        await engine_a.markets("binance")
        fetched = len(replay_server.requests)
        markets_b = await engine_b.markets("binance")  # another process: reads Redis, no venue call
        assert "BTC/USDT" in markets_b
        assert len(replay_server.requests) == fetched
        fees = await engine_b.fee_schedule("binance", "LRC/BTC")
        assert fees["taker_bps"] == 10.0
    finally:
        await engine_a.close()
        await engine_b.close()
        await drop_prefix(redis_url, prefix)
        await cache_a.close()
        await cache_b.close()
