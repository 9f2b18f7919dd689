"""Storage consumers of the metrics stream: Redis consumer groups, at-least-once delivery, and
idempotent rows, so that nothing is lost and nothing is written twice.

``MetricsConsumer`` (``mlm consume --group storage --consumer NAME``) is one member of a consumer
group on ``{prefix}:metrics`` (https://redis.io/docs/latest/develop/data-types/streams/, "Consumer
groups"):

1. ``XREADGROUP GROUP g NAME > COUNT n BLOCK ms``: new entries, each delivered to one member;
2. each frame becomes ``metrics`` rows through the ``StorageWriter`` (one row per metric, keyed by
   ``(venue, symbol, name, ts_ns)``; the writer inserts or ignores, so a frame written twice is one
   row), flushed to the database;
3. only then ``XACK``: an entry read but not written stays in the group's pending list;
4. every ``claim_idle_ms / 2``, ``XAUTOCLAIM`` takes over entries pending for longer than
   ``claim_idle_ms`` (a member that died or hangs, or this one after a database error) and
   processes them like new ones.

A member killed between 2 and 3 leaves entries whose rows may be written already: they are
written again by the member that claims them, and ignored by the primary key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from market_liquidity_monitor.bus import codec

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ConsumerCounters:
    entries: int = 0
    claimed: int = 0
    rows_submitted: int = 0
    acked: int = 0
    write_failures: int = 0
    undecodable: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class MetricsConsumer:
    """One consumer-group member writing metrics frames through ``writer`` (a ``StorageWriter``;
    its background task is not needed: each batch is flushed before it is acknowledged)."""

    def __init__(
        self,
        url: str,
        writer,
        *,
        prefix: str = "mlm:bus",
        group: str = "storage",
        consumer: str = "storage-1",
        claim_idle_ms: int = 10_000,
        count: int = 200,
        block_ms: int = 500,
    ):
        import redis.asyncio as aioredis

        self.r = aioredis.Redis.from_url(url)
        self.writer = writer
        self.stream = f"{prefix}:metrics"
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.count = count
        self.block_ms = block_ms
        self.counters = ConsumerCounters()

    async def ensure_group(self) -> None:
        """Create the group at the start of the stream (``MKSTREAM``) unless it exists."""
        import redis

        try:
            await self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def claim_idle(self) -> int:
        """``XAUTOCLAIM`` every entry idle for ``claim_idle_ms`` and process it; returns how many."""
        cursor, total = "0-0", 0
        while True:
            res = await self.r.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.count
            )
            cursor, entries = res[0], res[1]
            if entries:
                total += len(entries)
                self.counters.claimed += len(entries)
                await self.handle(entries)
            if cursor in (b"0-0", "0-0"):
                return total

    async def read_new(self) -> int:
        res = await self.r.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=self.count, block=self.block_ms
        )
        n = 0
        for _name, entries in res or ():
            n += len(entries)
            await self.handle(entries)
        return n

    async def handle(self, entries) -> None:
        """Rows of ``entries`` through the writer, flushed, then ``XACK``. A database error leaves
        them pending (claimed again after ``claim_idle_ms``)."""
        ids = []
        for entry_id, fields in entries:
            ids.append(entry_id)
            self.counters.entries += 1
            if not fields:
                continue  # trimmed away before it was claimed
            try:
                kind, key, _epoch, ts_ns, frame = codec.loads(fields[b"m"])
                if kind != codec.METRICS:
                    raise ValueError(kind)
            except Exception:
                self.counters.undecodable += 1
                continue
            inst = codec.key_inst(key)
            for name, value in frame.items():
                self.writer.submit_metric(inst.venue, inst.symbol, name, value, ts_ns)
                self.counters.rows_submitted += 1
        try:
            await self.writer.flush()
        except Exception as exc:
            self.counters.write_failures += 1
            log.warning("storage consumer %s: write failed (%s); %d entries stay pending", self.consumer, exc,
                        len(ids))  # fmt: skip
            return
        if ids:
            self.counters.acked += await self.r.xack(self.stream, self.group, *ids)

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        next_claim = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_claim:
                    await self.claim_idle()
                    next_claim = time.monotonic() + self.claim_idle_ms / 2000
                await self.read_new()
            except (OSError, ConnectionError) as exc:
                log.warning("storage consumer %s: bus unreachable (%s); retrying", self.consumer, exc)
                await asyncio.sleep(0.5)
            except Exception as exc:
                if type(exc).__module__.startswith("redis"):
                    log.warning("storage consumer %s: %s; retrying", self.consumer, exc)
                    await asyncio.sleep(0.5)
                else:
                    raise

    async def close(self) -> None:
        await self.r.aclose()
