"""Bus transports: where ingest workers append messages and API replicas read them.

Both implement the same small interface (``Bus``), used from plain threads (the publisher's
flusher, the replica's follower), never from the event loop:

- ``InProcessBus``: bounded in-memory streams (one per shard), for one process (benchmarks,
  tests, embedded consumers). Single-process mode does not need a bus at all: ingest writes the
  one ``BookStore`` the API reads.
- ``RedisStreamsBus``: Redis Streams through redis-py. One stream per shard
  (``{prefix}:shard:{i}``, ``XADD ... MAXLEN ~ n``: approximate trimming, O(1) amortised,
  https://redis.io/docs/latest/commands/xadd/), the latest image of every book in a hash
  (``{prefix}:images:{i}``, value ``"<entry id> <message>"``), and the shards in a hash
  (``{prefix}:shards``: ``i -> {"count", "epoch", "started_ns"}``). Replicas read with ``XREAD
  BLOCK`` from their last id per stream. Metrics frames go to ``{prefix}:metrics``, read by
  consumer groups (``bus.consumer``).

Stream entry ids are strings (``"1712345678901-0"`` in Redis, ``"7"`` in-process) compared only
by the transport.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

from market_liquidity_monitor.bus import codec


class Bus(Protocol):
    def register_shard(self, shard: int, count: int, epoch: int) -> None:
        """Announce shard ``shard`` of ``count`` (run by a worker of ``epoch``)."""

    def shards(self) -> dict[int, dict]:
        """Registered shards: ``{shard: {"count", "epoch", "started_ns"}}``."""

    def publish(self, shard: int, messages: list[bytes], images: dict[str, bytes] | None = None) -> list[str]:
        """Append ``messages`` to the shard's stream (in order) and return their entry ids;
        ``images`` (``{book key: message}``, each also among ``messages``) replace the stored
        latest image of those books."""

    def latest_images(self, shard: int) -> dict[str, tuple[str, bytes]]:
        """``{book key: (entry id, image message)}`` of a shard."""

    def append_metrics(self, messages: list[bytes]) -> None:
        """Append metrics frames to the metrics stream (read by consumer groups)."""

    def read(self, positions: dict[int, str], block_ms: int, count: int) -> list[tuple[int, str, bytes]]:
        """Entries after ``positions[shard]`` (``"0"`` = from the oldest kept), in stream order per
        shard: ``[(shard, entry id, message), ...]``; waits up to ``block_ms`` for the first."""

    def close(self) -> None: ...


class InProcessBus:
    """Bounded in-memory streams with the ``Bus`` interface (thread-safe). Entry ids are
    consecutive integers per shard; a stream longer than ``maxlen`` drops its oldest entries in
    chunks (approximate trimming, like ``MAXLEN ~``)."""

    def __init__(self, maxlen: int = 100_000):
        self.maxlen = maxlen
        self._streams: dict[int, list[bytes]] = {}
        self._first: dict[int, int] = {}  # id of each stream's first kept entry
        self._images: dict[int, dict[str, tuple[str, bytes]]] = {}
        self._shards: dict[int, dict] = {}
        self.metrics: deque[bytes] = deque(maxlen=maxlen)
        self._cond = threading.Condition()

    def append_metrics(self, messages: list[bytes]) -> None:
        with self._cond:
            self.metrics.extend(messages)

    def register_shard(self, shard: int, count: int, epoch: int) -> None:
        with self._cond:
            self._shards[shard] = {"count": count, "epoch": epoch, "started_ns": epoch}

    def shards(self) -> dict[int, dict]:
        with self._cond:
            return dict(self._shards)

    def publish(self, shard: int, messages: list[bytes], images: dict[str, bytes] | None = None) -> list[str]:
        with self._cond:
            stream = self._streams.setdefault(shard, [])
            first = self._first.setdefault(shard, 1)
            n = first + len(stream)
            ids = [str(n + i) for i in range(len(messages))]
            stream.extend(messages)
            excess = len(stream) - self.maxlen
            if excess > self.maxlen // 10:
                del stream[:excess]
                self._first[shard] = first + excess
            if images:
                by_msg = {id(m): i for m, i in zip(messages, ids, strict=True)}
                store = self._images.setdefault(shard, {})
                for key, m in images.items():
                    store[key] = (by_msg.get(id(m), ids[-1] if ids else "0"), m)
            self._cond.notify_all()
            return ids

    def latest_images(self, shard: int) -> dict[str, tuple[str, bytes]]:
        with self._cond:
            return dict(self._images.get(shard, {}))

    def read(self, positions: dict[int, str], block_ms: int, count: int) -> list[tuple[int, str, bytes]]:
        def collect() -> list[tuple[int, str, bytes]]:
            out = []
            for shard, pos in positions.items():
                after = int(pos.split("-")[0]) if pos not in ("0", "") else 0
                stream = self._streams.get(shard)
                if not stream:
                    continue
                first = self._first[shard]
                start = max(0, after + 1 - first)
                for i, m in enumerate(stream[start : start + count], start):
                    out.append((shard, str(first + i), m))
            return out

        with self._cond:
            got = collect()
            if not got and block_ms > 0:
                self._cond.wait(block_ms / 1000)
                got = collect()
            return got

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()


class RedisStreamsBus:
    """The ``Bus`` on Redis Streams (redis-py, synchronous client: used from worker threads).

    ``maxlen``: entries kept per shard stream (approximate ``MAXLEN ~`` trimming). Raises
    ``redis.ConnectionError`` when the server is unreachable (the caller retries or reports).
    """

    def __init__(
        self, url: str, prefix: str = "mlm:bus", maxlen: int = 100_000, socket_timeout_s: float = 5.0
    ):
        import redis

        self.url = url
        self.prefix = prefix
        self.maxlen = maxlen
        self._socket_timeout_s = socket_timeout_s
        self._r = redis.Redis.from_url(url, socket_timeout=socket_timeout_s)

    def stream(self, shard: int) -> str:
        return f"{self.prefix}:shard:{shard}"

    @property
    def metrics_stream(self) -> str:
        return f"{self.prefix}:metrics"

    def append_metrics(self, messages: list[bytes]) -> None:
        pipe = self._r.pipeline(transaction=False)
        for m in messages:
            pipe.xadd(self.metrics_stream, {"m": m}, maxlen=self.maxlen, approximate=True)
        pipe.execute()

    def _images_key(self, shard: int) -> str:
        return f"{self.prefix}:images:{shard}"

    def register_shard(self, shard: int, count: int, epoch: int) -> None:
        info = codec.dumps({"count": count, "epoch": epoch, "started_ns": epoch})
        self._r.hset(f"{self.prefix}:shards", str(shard), info)

    def shards(self) -> dict[int, dict]:
        raw = self._r.hgetall(f"{self.prefix}:shards")
        return {int(k): codec.loads(v) for k, v in raw.items()}

    def publish(self, shard: int, messages: list[bytes], images: dict[str, bytes] | None = None) -> list[str]:
        if not messages:
            return []
        stream = self.stream(shard)
        pipe = self._r.pipeline(transaction=False)
        for m in messages:
            pipe.xadd(stream, {"m": m}, maxlen=self.maxlen, approximate=True)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]
        if images:
            by_msg = {id(m): i for m, i in zip(messages, ids, strict=True)}
            mapping = {k: by_msg.get(id(m), ids[-1]).encode() + b" " + m for k, m in images.items()}
            self._r.hset(self._images_key(shard), mapping=mapping)
        return ids

    def latest_images(self, shard: int) -> dict[str, tuple[str, bytes]]:
        out = {}
        for k, v in self._r.hgetall(self._images_key(shard)).items():
            entry_id, _, msg = v.partition(b" ")
            out[k.decode()] = (entry_id.decode(), msg)
        return out

    def read(self, positions: dict[int, str], block_ms: int, count: int) -> list[tuple[int, str, bytes]]:
        if not positions:
            return []
        by_stream = {self.stream(s): s for s in positions}
        streams = {self.stream(s): (p or "0") for s, p in positions.items()}
        res = self._r.xread(streams, count=count, block=block_ms or None)
        out = []
        for name, entries in res or ():
            shard = by_stream[name.decode() if isinstance(name, bytes) else name]
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                out.append((shard, eid, fields[b"m"]))
        return out

    def close(self) -> None:
        self._r.close()


def open_bus(url: str | None, *, prefix: str = "mlm:bus", maxlen: int = 100_000) -> Bus:
    """``redis://...``/``rediss://...`` -> ``RedisStreamsBus``; None or ``memory://`` ->
    ``InProcessBus``. Raises ``ValueError`` naming the valid schemes for anything else."""
    if url is None or url.startswith("memory:"):
        return InProcessBus(maxlen)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStreamsBus(url, prefix=prefix, maxlen=maxlen)
    raise ValueError(
        f"bus URL {url!r}: valid forms are redis://host:port/db, rediss://..., unix://... or memory://"
    )
