"""In-process TTL cache and the cache factory."""

from __future__ import annotations

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.cache import Cache, MemoryCache, RedisCache, build_cache


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_ttl_expiry_on_injected_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(300.0, clock=clock)
    await cache.set("markets:binance", {"BTC/USDT": {"taker": 0.001}})
    await cache.set("short", [1, 2], ttl_s=5)
    clock.t = 4.9
    assert await cache.get("short") == [1, 2]
    clock.t = 5.0
    assert await cache.get("short") is None
    clock.t = 299.0
    assert await cache.get("markets:binance") == {"BTC/USDT": {"taker": 0.001}}
    clock.t = 300.0
    assert await cache.get("markets:binance") is None
    assert len(cache) == 0


async def test_lru_bound_delete_and_zero_ttl() -> None:
    cache = MemoryCache(60.0, max_entries=3, clock=FakeClock())
    for i in range(3):
        await cache.set(f"k{i}", i)
    assert await cache.get("k0") == 0  # k0 becomes most recently used
    await cache.set("k3", 3)
    assert await cache.get("k1") is None  # least recently used was evicted
    assert await cache.get("k0") == 0
    await cache.delete("k0")
    assert await cache.get("k0") is None
    await cache.set("k2", 22, ttl_s=0)
    assert await cache.get("k2") is None
    status = cache.status()
    assert status.backend == "memory" and not status.degraded


async def test_build_cache_picks_backend_from_settings() -> None:
    memory = build_cache(Settings(redis_url=None, data_engine=DataEngineSettings(cache_ttl_s=12)))
    assert isinstance(memory, MemoryCache) and memory.default_ttl_s == 12
    assert isinstance(memory, Cache)
    redis = build_cache(Settings(redis_url="redis://127.0.0.1:1/0"))
    try:
        assert isinstance(redis, RedisCache)
        assert redis.default_ttl_s == 300.0
    finally:
        await redis.close()


async def test_redis_cache_with_nothing_listening_serves_from_memory_fast() -> None:
    import time

    cache = RedisCache("redis://127.0.0.1:1/0", 60.0, op_timeout_s=0.2, retry_after_s=60.0)
    try:
        t0 = time.perf_counter()
        await cache.set("k", {"v": 1})
        assert await cache.get("k") == {"v": 1}
        assert await cache.get("missing") is None
        assert time.perf_counter() - t0 < 2.0
        status = cache.status()
        assert status.configured == "redis" and status.backend == "memory" and status.degraded
        assert status.last_error
    finally:
        await cache.close()
