"""Recording live venue traffic, and reading it back for ``Replayer``.

Format (version 1), UTF-8 text lines, one record per line, gzip-compressed when the file name ends
in ``.gz``::

    #mlm-record {"version":1,"venue":"binance","symbols":["BTC/USDT"],"venue_symbols":["BTCUSDT"],...}
    1723161253937085768 open ws://127.0.0.1:9000/stream?streams=btcusdt@depth@100ms/...
    1723161253937185768 ws {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate",...}}
    1723161254206652067 rest BTCUSDT {"lastUpdateId":50093239218,"bids":[...],"asks":[...]}
    1723161259000000000 close silence ...

- ``<ns>`` is the local receive time (``ts_recv``, ns since the Unix epoch, from the injected clock);
- ``ws`` lines carry a received frame byte for byte; ``rest`` lines a REST snapshot body with the
  wire symbol it belongs to. A payload that contains a line break is written
  as ``wsb``/``restb`` with base64, so every record stays one line and nothing is altered;
- ``open``/``close`` mark connection boundaries (diagnostics; ``read_recording`` skips them unless
  asked);
- a header line starts every recording session; appending to an existing file adds a new header,
  and later records take their venue from the latest header.

Records are written in the order the live connection *processed* them (REST bodies when they were
applied, frames held during a make-before-break handover when they were applied), so replaying
the file drives the books through the same sequence of states.

Crash safety: the writer keeps lines in memory and, at least every ``flush_interval_s`` (1 s by
default, also when the feed is quiet), appends them as one complete gzip member and flushes the
file. gzip readers read concatenated members as one stream; ``read_recording`` reads member by
member and stops cleanly at a truncated or corrupt final member, so a crash loses at most the last
interval.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from market_liquidity_monitor.config import IngestSettings, Settings
from market_liquidity_monitor.ingest.clock import Clock, WallClock
from market_liquidity_monitor.ingest.live import VenueConnection
from market_liquidity_monitor.ingest.replay import RawRecord, ReadStats
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.base import VenueAdapter

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
HEADER_PREFIX = b"#mlm-record "
_GZIP_MAGIC = b"\x1f\x8b"
_NEEDS_B64 = (b"\n", b"\r")


@dataclass(slots=True)
class RecordingHeader:
    """What a recording session holds. ``symbols`` unified, ``venue_symbols`` wire form."""

    venue: str
    symbols: list[str]
    venue_symbols: list[str]
    version: int = FORMAT_VERSION
    started_ns: int = 0
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_line(self) -> bytes:
        d = {
            "version": self.version,
            "venue": self.venue,
            "symbols": self.symbols,
            "venue_symbols": self.venue_symbols,
            "started_ns": self.started_ns,
            "url": self.url,
            **({"extra": self.extra} if self.extra else {}),
        }
        return HEADER_PREFIX + orjson.dumps(d) + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> RecordingHeader:
        """Parse a header line; raises ``ValueError`` if it is not one this reader understands."""
        if not line.startswith(HEADER_PREFIX):
            raise ValueError(f"not a recording header: {line[:40]!r}")
        d = orjson.loads(line[len(HEADER_PREFIX) :])
        version = int(d.get("version", 0))
        if version != FORMAT_VERSION:
            raise ValueError(
                f"recording format version {version} is not supported (this reader: {FORMAT_VERSION})"
            )
        return cls(
            venue=d["venue"],
            symbols=list(d.get("symbols") or []),
            venue_symbols=list(d.get("venue_symbols") or []),
            version=version,
            started_ns=int(d.get("started_ns") or 0),
            url=d.get("url"),
            extra=dict(d.get("extra") or {}),
        )


@dataclass(slots=True)
class WriterStats:
    records: int = 0
    ws_frames: int = 0
    rest_bodies: int = 0
    members: int = 0  # flushes (gzip members, for .gz files)
    bytes_written: int = 0  # on disk (compressed)
    bytes_raw: int = 0  # before compression

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class RecordWriter:
    """Append-safe writer of the recording format (a ``FrameSink`` for ``VenueConnection``).

    Lines are buffered; ``maybe_flush()`` (called on every write) appends them once
    ``flush_interval_s`` has passed since the last flush, as one gzip member for ``.gz`` paths or
    as plain lines otherwise, then flushes the file (``fsync=True`` also syncs it to disk).
    ``run_flusher()`` flushes quiet periods; ``close()`` flushes the rest. ``time_fn`` (monotonic
    seconds) is injectable for tests.
    """

    def __init__(
        self,
        path: str | Path,
        header: RecordingHeader,
        *,
        flush_interval_s: float = 1.0,
        compresslevel: int = 6,
        fsync: bool = False,
        time_fn: Callable[[], float] = time.monotonic,
    ):
        self.path = Path(path)
        self.header = header
        self.flush_interval_s = flush_interval_s
        self.compress = self.path.suffix == ".gz"
        self.compresslevel = compresslevel
        self.fsync = fsync
        self._time = time_fn
        self._buf: list[bytes] = [header.to_line()]
        self._fh = self.path.open("ab")
        self._last_flush = time_fn()
        self.stats = WriterStats()
        self.closed = False

    # -------------------------------------------------------------------- FrameSink

    def on_open(self, ts_ns: int, url: str) -> None:
        self._add(b"%d open %s\n" % (ts_ns, url.encode()))

    def on_close(self, ts_ns: int, reason: str) -> None:
        self._add(b"%d close %s\n" % (ts_ns, reason.replace("\n", " ").replace("\r", " ").encode()))

    def on_frame(self, ts_ns: int, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        if any(c in payload for c in _NEEDS_B64):
            self._add(b"%d wsb %s\n" % (ts_ns, base64.b64encode(payload)))
        else:
            self._add(b"%d ws %s\n" % (ts_ns, payload))
        self.stats.ws_frames += 1

    def on_rest(self, ts_ns: int, venue_symbol: str, body: bytes | str) -> None:
        if isinstance(body, str):
            body = body.encode()
        sym = venue_symbol.encode()
        if any(c in body for c in _NEEDS_B64):
            self._add(b"%d restb %s %s\n" % (ts_ns, sym, base64.b64encode(body)))
        else:
            self._add(b"%d rest %s %s\n" % (ts_ns, sym, body))
        self.stats.rest_bodies += 1

    # ----------------------------------------------------------------------- writing

    def _add(self, line: bytes) -> None:
        if self.closed:
            raise ValueError(f"recording {self.path} is closed")
        self._buf.append(line)
        self.stats.records += 1
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if self._time() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Append buffered lines as one complete gzip member (or plain lines) and flush the file."""
        self._last_flush = self._time()
        if not self._buf:
            return
        data = b"".join(self._buf)
        self._buf.clear()
        out = gzip.compress(data, self.compresslevel, mtime=0) if self.compress else data
        self._fh.write(out)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.stats.members += 1
        self.stats.bytes_written += len(out)
        self.stats.bytes_raw += len(data)

    async def run_flusher(self) -> None:
        """Flush quiet periods too (a member at least every ``flush_interval_s``); runs until cancelled."""
        while not self.closed:
            await asyncio.sleep(max(0.05, self.flush_interval_s / 2))
            if not self.closed:
                self.maybe_flush()

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------- reading


def _members(path: Path, stats: ReadStats) -> Iterator[bytes]:
    """Decompressed gzip members of ``path``, each yielded only once complete (zlib checks the CRC).

    A truncated or corrupt member is counted in ``stats`` and dropped, with everything after it.
    """
    with path.open("rb") as fh:
        d = zlib.decompressobj(wbits=31)
        parts: list[bytes] = []
        fed = False  # bytes of the current member seen
        buf = b""
        while True:
            if not buf:
                buf = fh.read(1 << 20)
                if not buf:
                    break
            try:
                parts.append(d.decompress(buf))
            except zlib.error as exc:
                stats.bad(path, 0, f"corrupt gzip data (rest of file dropped): {exc}".encode())
                return
            fed = True
            buf = b""
            if d.eof:
                yield b"".join(parts)
                parts, fed = [], False
                buf = d.unused_data
                d = zlib.decompressobj(wbits=31)
        if fed:
            stats.bad(path, 0, b"truncated final gzip member (dropped)")


def _lines(path: Path, stats: ReadStats) -> Iterator[bytes]:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == _GZIP_MAGIC:
        for member in _members(path, stats):
            yield from member.splitlines(keepends=True)
    else:
        with path.open("rb") as fh:
            yield from fh


def read_recording(
    path: str | Path, stats: ReadStats | None = None, *, include_markers: bool = False
) -> Iterator[RawRecord]:
    """Yield the records of a recording as ``RawRecord`` (``ws`` frames, ``rest`` bodies), in file
    order, for ``Replayer``.

    ``venue`` comes from the latest header; ``venue_symbol`` is set on ``rest`` records;
    ``include_markers`` also yields ``open``/``close`` records (payload = URL / reason). Lines
    before any header, unknown kinds and an unterminated last line (a crash mid-write) are counted
    in ``stats`` (``ReadStats``) and skipped, never raised.
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    src = str(path)
    venue: str | None = None
    for lineno, line in enumerate(_lines(path, stats), 1):
        stats.lines += 1
        if not line.endswith(b"\n"):
            stats.bad(path, lineno, line)  # unterminated: the write was cut
            continue
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if line.startswith(b"#"):
            if line.startswith(HEADER_PREFIX):
                try:
                    venue = RecordingHeader.from_line(line).venue
                except (ValueError, KeyError, orjson.JSONDecodeError):
                    stats.bad(path, lineno, line)
            continue
        parts = line.split(b" ", 2)
        if len(parts) < 3 or venue is None:
            stats.bad(path, lineno, line)
            continue
        ts_text, kind, rest = parts
        try:
            ts = int(ts_text)
            if kind == b"ws":
                rec = RawRecord(ts, lineno, "ws", rest, venue, None, src)
            elif kind == b"wsb":
                rec = RawRecord(ts, lineno, "ws", base64.b64decode(rest, validate=True), venue, None, src)
            elif kind in (b"rest", b"restb"):
                sym, _, body = rest.partition(b" ")
                if kind == b"restb":
                    body = base64.b64decode(body, validate=True)
                rec = RawRecord(ts, lineno, "rest", body, venue, sym.decode(), src)
            elif kind in (b"open", b"close"):
                if not include_markers:
                    continue
                rec = RawRecord(ts, lineno, kind.decode(), rest, venue, None, src)
            else:
                stats.bad(path, lineno, line)
                continue
        except (ValueError, UnicodeDecodeError):
            stats.bad(path, lineno, line)
            continue
        stats.records += 1
        yield rec


def read_headers(path: str | Path) -> list[RecordingHeader]:
    """The header of every session appended to a recording, in order."""
    out = []
    for line in _lines(Path(path), ReadStats()):
        if line.startswith(HEADER_PREFIX):
            with contextlib.suppress(ValueError, KeyError, orjson.JSONDecodeError):
                out.append(RecordingHeader.from_line(line.rstrip(b"\r\n")))
    return out


# ----------------------------------------------------------------------------------- record()


@dataclass(slots=True)
class RecordResult:
    """What ``record()`` did: the file, the writer's and the connection's counters, and the store
    the live session built (so callers can compare it with a replay of the file)."""

    path: Path
    writer: dict
    connection: dict
    store: BookStore


async def record(
    source: VenueAdapter | str,
    symbols: Iterable[str],
    out: str | Path,
    duration_s: float | None = None,
    *,
    settings: Settings | IngestSettings | None = None,
    adapter_for: Callable[[str], VenueAdapter] | None = None,
    store: BookStore | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    fsync: bool = False,
    **connection_kwargs,
) -> RecordResult:
    """Record a live venue feed to ``out`` until ``duration_s`` passes, ``stop`` is set, or the task
    is cancelled (the file is closed cleanly in every case; cancellation is re-raised).

    ``source`` is a ``VenueAdapter`` or a venue id (resolved with ``adapter_for``, default an
    ``AdapterRegistry``). ``symbols`` are unified (``BTC/USDT``) or wire symbols. The connection keeps
    real books (``store``, created if not given) because it must fetch REST snapshots to resync
    them, and those snapshot bodies are recorded too. ``connection_kwargs`` go to
    ``VenueConnection`` (``ws_url``, ``rest_base_url``, ``silence_timeout_s``, ``http``...).
    """
    ingest = settings.ingest if isinstance(settings, Settings) else (settings or IngestSettings())
    if isinstance(source, str):
        if adapter_for is None:
            from market_liquidity_monitor.venues.registry import AdapterRegistry

            adapter_for = AdapterRegistry()
        adapter = adapter_for(source)
    else:
        adapter = source
    clock = clock or WallClock()
    if store is None:
        store = BookStore(lambda venue: adapter, clock=clock, max_buffer=ingest.max_buffered_deltas)
    conn = VenueConnection(adapter, symbols, store, settings=ingest, clock=clock, **connection_kwargs)
    header = RecordingHeader(
        venue=adapter.venue,
        symbols=list(conn.symbols),
        venue_symbols=[adapter.venue_symbol(s) for s in conn.symbols],
        started_ns=clock.now_ns(),
        url=conn.ws_url,
    )
    writer = RecordWriter(out, header, flush_interval_s=ingest.record_flush_interval_s, fsync=fsync)
    conn.sink = writer
    log.info(
        "recording %s %s to %s%s",
        adapter.venue,
        ", ".join(conn.symbols),
        out,
        f" for {duration_s:g} s" if duration_s else "",
    )
    run_task = asyncio.create_task(conn.run(), name=f"record:{conn.name}")
    flusher = asyncio.create_task(writer.run_flusher(), name=f"record:{conn.name}:flush")
    stop_wait = asyncio.create_task(stop.wait()) if stop is not None else None
    try:
        waiters = {run_task} | ({stop_wait} if stop_wait else set())
        await asyncio.wait(waiters, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
        if run_task.done():
            run_task.result()  # surface an unexpected error
    finally:
        conn.stop()
        for t in (stop_wait, flusher):
            if t is not None:
                t.cancel()
        try:
            async with asyncio.timeout(5.0):
                await asyncio.gather(run_task, return_exceptions=True)
        except TimeoutError:
            run_task.cancel()
            await asyncio.gather(run_task, return_exceptions=True)
        await asyncio.gather(*(t for t in (stop_wait, flusher) if t is not None), return_exceptions=True)
        writer.close()
    log.info(
        "recorded %d frames and %d snapshots to %s (%d bytes)",
        writer.stats.ws_frames,
        writer.stats.rest_bodies,
        out,
        writer.stats.bytes_written,
    )
    return RecordResult(Path(out), writer.stats.as_dict(), conn.status(), store)
