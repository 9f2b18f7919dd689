"""One cache interface, two implementations.

* ``MemoryCache``: an in-process TTL cache (LRU-bounded). The default, and the fallback.
* ``RedisCache``: redis-py asyncio, used when ``REDIS_URL`` is set, so several API replicas and
  workers share markets and candles. Every Redis call has a short timeout and no retries; when Redis
  fails (down, restarting, unreachable) the cache switches to its in-process fallback, logs once,
  and probes Redis again after ``retry_after_s``. Requests never fail because Redis went away.

Values are JSON-serialisable (dicts, lists, numbers, strings); Redis stores them as JSON under
``mlm:cache:<key>``. The in-process cache stores the objects themselves: treat cached values as
read-only. Build the cache once with ``build_cache(settings)`` and pass it in; ``close()`` it at
shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

from market_liquidity_monitor.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CacheStatus:
    """What health reports show: ``backend`` in use right now ("memory" or "redis"), whether a
    Redis cache is degraded to memory, and the last Redis error."""

    backend: str
    configured: str
    degraded: bool
    entries_in_memory: int
    last_error: str | None = None
    redis_failures: int = 0


@runtime_checkable
class Cache(Protocol):
    """The cache interface the data engine uses. ``ttl_s=None`` means the cache's default TTL."""

    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...

    def status(self) -> CacheStatus: ...


class MemoryCache:
    """In-process TTL cache with at most ``max_entries`` entries (least recently used evicted)."""

    def __init__(
        self,
        default_ttl_s: float = 300.0,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.default_ttl_s = default_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get_nowait(self, key: str) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires_at, value = item
        if expires_at <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def set_nowait(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            self._data.pop(key, None)
            return
        self._data[key] = (self._clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def get(self, key: str) -> Any | None:
        return self.get_nowait(key)

    async def set(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        self.set_nowait(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def close(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def status(self) -> CacheStatus:
        return CacheStatus(backend="memory", configured="memory", degraded=False, entries_in_memory=len(self))


class RedisCache:
    """Redis-backed cache that degrades to an in-process ``MemoryCache`` when Redis fails.

    Writes go to both (so the fallback is warm when Redis dies); reads go to Redis while it is
    healthy (falling back to memory on a miss), to memory while degraded. ``op_timeout_s`` bounds
    every Redis call, including connecting.
    """

    def __init__(
        self,
        url: str,
        default_ttl_s: float = 300.0,
        *,
        prefix: str = "mlm:cache:",
        op_timeout_s: float = 0.5,
        retry_after_s: float = 5.0,
        fallback: MemoryCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.default_ttl_s = default_ttl_s
        self.prefix = prefix
        self.op_timeout_s = op_timeout_s
        self.retry_after_s = retry_after_s
        self._clock = clock
        self.fallback = fallback or MemoryCache(default_ttl_s, clock=clock)
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=op_timeout_s,
            socket_timeout=op_timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._degraded_until: float | None = None
        self.last_error: str | None = None
        self.failures = 0

    @property
    def degraded(self) -> bool:
        return self._degraded_until is not None

    def _redis_usable(self) -> bool:
        return self._degraded_until is None or self._clock() >= self._degraded_until

    def _mark_failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self._degraded_until is None:
            log.warning(
                "Redis cache at %s failed (%s); serving from the in-process cache, probing Redis every %.0f s",
                _redact(self.url),
                self.last_error,
                self.retry_after_s,
            )
        self._degraded_until = self._clock() + self.retry_after_s

    def _mark_ok(self) -> None:
        if self._degraded_until is not None:
            log.info("Redis cache at %s is back; using it again", _redact(self.url))
        self._degraded_until = None

    async def _run(self, coro_fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(ok, result) of one Redis call; any error or timeout marks Redis as failed."""
        if not self._redis_usable():
            return False, None
        try:
            result = await asyncio.wait_for(coro_fn(), timeout=self.op_timeout_s * 2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # redis errors, OSError, TimeoutError: all mean "not usable now"
            self._mark_failed(exc)
            return False, None
        self._mark_ok()
        return True, result

    async def get(self, key: str) -> Any | None:
        ok, raw = await self._run(lambda: self._redis.get(self.prefix + key))
        if ok and raw is not None:
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                return None
        return self.fallback.get_nowait(key)

    async def set(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        self.fallback.set_nowait(key, value, ttl)
        if ttl <= 0:
            await self._run(lambda: self._redis.delete(self.prefix + key))
            return
        payload = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        await self._run(lambda: self._redis.set(self.prefix + key, payload, px=max(1, int(ttl * 1000))))

    async def delete(self, key: str) -> None:
        await self.fallback.delete(key)
        await self._run(lambda: self._redis.delete(self.prefix + key))

    async def ping(self) -> bool:
        """True when Redis answers now (ignores the degraded back-off)."""
        self._degraded_until = None if self._degraded_until is None else self._clock()
        ok, _ = await self._run(self._redis.ping)
        return ok

    async def close(self) -> None:
        await self.fallback.close()
        try:
            await asyncio.wait_for(self._redis.aclose(), timeout=self.op_timeout_s * 2)
        except Exception as exc:  # closing a dead connection must not fail shutdown
            log.debug("closing Redis client: %s", exc)

    def status(self) -> CacheStatus:
        return CacheStatus(
            backend="memory" if self.degraded else "redis",
            configured="redis",
            degraded=self.degraded,
            entries_in_memory=len(self.fallback),
            last_error=self.last_error,
            redis_failures=self.failures,
        )


def build_cache(settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> Cache:
    """``RedisCache`` when ``settings.redis_url`` is set, else ``MemoryCache``; TTL from
    ``settings.data_engine.cache_ttl_s``."""
    ttl = settings.data_engine.cache_ttl_s
    if settings.redis_url:
        return RedisCache(settings.redis_url, ttl, clock=clock)
    return MemoryCache(ttl, clock=clock)


def _redact(url: str) -> str:
    """Hide a password in a URL for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
