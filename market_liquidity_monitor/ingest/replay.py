"""Replay of recorded venue traffic through the same path a live feed takes.

Readers turn capture files into ``RawRecord`` streams; ``Replayer`` decodes each record, hands it
to the venue adapter and feeds the resulting events to a ``BookStore``, advancing a
``ReplayClock``. A corrupt or truncated line is skipped and counted, never raised.

Supported layouts (../shared/data/README.md §4):

- hftbacktest: ``<ns> <json>`` per line, gzip; one REST snapshot line (top-level ``lastUpdateId``)
  inside each ``*_20240808.gz``; the ``*_20240809.gz`` files continue the same stream.
- cryptofeed: ``<ts>: <payload>`` received frames, ``<url> -> <ts>: <body>`` HTTP responses,
  ``<url> <-> <ts>`` connects and ``<url> <- <ts>: <payload>`` sent frames; seconds as floats.
"""

from __future__ import annotations

import gzip
import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.store import BookStore


@dataclass(slots=True, order=True)
class RawRecord:
    """One recorded frame. ``kind``: ``ws`` (a received frame), ``rest`` (an HTTP response body)."""

    ts_recv_ns: int
    seq: int  # file order, tie-breaker for equal timestamps
    kind: str = field(compare=False)
    payload: bytes = field(compare=False)
    venue: str = field(compare=False)
    # For REST bodies and hftbacktest snapshot lines: the wire symbol the body belongs to.
    venue_symbol: str | None = field(compare=False, default=None)
    source: str = field(compare=False, default="")


@dataclass(slots=True)
class ReadStats:
    lines: int = 0
    records: int = 0
    corrupt: int = 0
    corrupt_examples: list[str] = field(default_factory=list)

    def bad(self, path: Path, lineno: int, line: bytes) -> None:
        self.corrupt += 1
        if len(self.corrupt_examples) < 5:
            self.corrupt_examples.append(f"{path.name}:{lineno}: {line[:80]!r}")


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_hftbacktest(
    path: Path, venue: str, venue_symbol: str, stats: ReadStats | None = None, seq_base: int = 0
) -> Iterator[RawRecord]:
    """Yield records of an hftbacktest Binance file. Truncated gzip tails are counted as corrupt."""
    stats = stats if stats is not None else ReadStats()
    src = str(path)
    lineno = 0
    try:
        with _open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                stats.lines += 1
                sp = line.find(b" ")
                if sp <= 0:
                    if line.strip():
                        stats.bad(path, lineno, line)
                    continue
                try:
                    ts = int(line[:sp])
                except ValueError:
                    stats.bad(path, lineno, line)
                    continue
                body = line[sp + 1 :].rstrip(b"\r\n")
                kind = "rest" if body.startswith(b'{"lastUpdateId"') else "ws"
                stats.records += 1
                yield RawRecord(ts, seq_base + lineno, kind, body, venue, venue_symbol, src)
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        stats.bad(path, lineno + 1, f"truncated file: {exc}".encode())


_CF_RECV = re.compile(rb"^(\d+(?:\.\d+)?): (.*)$", re.S)
_CF_HTTP = re.compile(rb"^(\S+) -> (\d+(?:\.\d+)?): (.*)$", re.S)


def read_cryptofeed(path: Path, venue: str, stats: ReadStats | None = None, seq_base: int = 0) -> Iterator[RawRecord]:
    """Yield received WS frames and HTTP responses of a cryptofeed capture (sent frames skipped)."""
    stats = stats if stats is not None else ReadStats()
    src = str(path)
    lineno = 0
    try:
        with _open(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                stats.lines += 1
                line = raw.rstrip(b"\r\n")
                if not line:
                    continue
                if line.startswith(b"configuration: "):
                    continue
                m = _CF_RECV.match(line)
                if m:
                    stats.records += 1
                    yield RawRecord(int(float(m.group(1)) * 1e9), seq_base + lineno, "ws", m.group(2), venue, None, src)
                    continue
                m = _CF_HTTP.match(line)
                if m:
                    url = m.group(1).decode()
                    q = parse_qs(urlsplit(url).query)
                    sym = (q.get("symbol") or q.get("instId") or [None])[0]
                    stats.records += 1
                    yield RawRecord(
                        int(float(m.group(2)) * 1e9), seq_base + lineno, "rest", m.group(3), venue, sym, url
                    )
                    continue
                if b" <-> " in line or b" <- " in line:
                    continue  # connect / sent frame
                stats.bad(path, lineno, line)
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        stats.bad(path, lineno + 1, f"truncated file: {exc}".encode())


@dataclass(slots=True)
class ReplayStats:
    records: int = 0
    events: int = 0
    undecodable: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    read: ReadStats = field(default_factory=ReadStats)


class Replayer:
    """Drives recorded records through adapters into a ``BookStore``.

    ``adapter_for(venue)`` returns the adapter. ``on_record`` (optional) is called after each
    record with the record and its events: the bookTicker correctness check and the benchmark use it.
    """

    def __init__(self, store: BookStore, adapter_for: Callable, clock: ReplayClock | None = None):
        self.store = store
        self.adapter_for = adapter_for
        self.clock = clock or (store.clock if isinstance(store.clock, ReplayClock) else ReplayClock())
        self.stats = ReplayStats()

    def run(self, records: Iterable[RawRecord], on_record: Callable | None = None,
            progress: Callable[[int], None] | None = None) -> ReplayStats:
        st = self.stats
        store = self.store
        clock = self.clock
        loads = orjson.loads
        adapters: dict[str, object] = {}
        for rec in records:
            st.records += 1
            if st.first_ts_ns is None:
                st.first_ts_ns = rec.ts_recv_ns
            st.last_ts_ns = rec.ts_recv_ns
            clock.advance(rec.ts_recv_ns)
            adapter = adapters.get(rec.venue)
            if adapter is None:
                adapter = adapters[rec.venue] = self.adapter_for(rec.venue)
            try:
                msg = loads(rec.payload)
            except orjson.JSONDecodeError:
                st.undecodable += 1
                continue
            try:
                if rec.kind == "rest":
                    if rec.venue_symbol is None:
                        continue  # metadata response (exchangeInfo...), not a book
                    events = [adapter.parse_snapshot(msg, rec.venue_symbol, rec.ts_recv_ns)]
                else:
                    events = adapter.parse_message(msg, rec.ts_recv_ns)
            except (KeyError, TypeError, ValueError):
                st.undecodable += 1
                continue
            for ev in events:
                store.on_event(ev)
            st.events += len(events)
            if on_record is not None:
                on_record(rec, events)
            if progress is not None and st.records % 20_000 == 0:
                progress(st.records)
        return st


def merge(*streams: Iterable[RawRecord]) -> Iterator[RawRecord]:
    """Merge record streams by receive time (file order breaks ties)."""
    return heapq.merge(*streams)


# ------------------------------------------------------------------ datasets

_HFT_MARKETS = {"spot": "binance", "usdm": "binanceusdm", "cm": "binancecoinm"}
_CF_VENUES = {"BINANCE": "binance", "BINANCE_FUTURES": "binanceusdm", "BINANCE_DELIVERY": "binancecoinm"}


@dataclass(slots=True)
class RecordingGroup:
    """Files that replay together (one instrument's day files, or one venue's WS + REST captures)."""

    name: str
    venue: str
    files: list[Path]
    fmt: str  # "hftbacktest" | "cryptofeed"
    venue_symbols: list[str] = field(default_factory=list)

    def records(self, stats: ReadStats | None = None) -> Iterator[RawRecord]:
        if self.fmt == "hftbacktest":
            streams = [
                read_hftbacktest(f, self.venue, self.venue_symbols[0], stats, seq_base=i * 10**9)
                for i, f in enumerate(self.files)
            ]
            # Day files of one stream are consecutive: chain, don't merge.
            for s in streams:
                yield from s
        else:
            yield from merge(
                *(read_cryptofeed(f, self.venue, stats, seq_base=i * 10**9) for i, f in enumerate(self.files))
            )


def discover(data_dir: Path, venues: Iterable[str] | None = None) -> list[RecordingGroup]:
    """Find replayable order-book recordings under a ../shared/data-style directory.

    Returns one group per hftbacktest instrument (``hftbacktest/<market>/<symbol>_<date>.gz``, days
    in order) and one per cryptofeed Binance capture (``cryptofeed/<VENUE>.ws.*`` with the matching
    ``<VENUE>.http.*`` snapshots). Missing folders are simply absent from the result.
    """
    data_dir = Path(data_dir)
    want = set(venues) if venues else None
    groups: list[RecordingGroup] = []
    hft = data_dir / "hftbacktest"
    for market, venue in _HFT_MARKETS.items():
        d = hft / market
        if not d.is_dir() or (want and venue not in want):
            continue
        by_symbol: dict[str, list[Path]] = {}
        for f in sorted(d.glob("*_????????.gz")):
            sym = f.name.rsplit("_", 1)[0]
            by_symbol.setdefault(sym, []).append(f)
        for sym, files in sorted(by_symbol.items()):
            groups.append(RecordingGroup(f"hftbacktest/{market}/{sym}", venue, files, "hftbacktest", [sym.upper()]))
    cf = data_dir / "cryptofeed"
    for prefix, venue in _CF_VENUES.items():
        if want and venue not in want:
            continue
        files = sorted(cf.glob(f"{prefix}.ws.*.gz")) + sorted(cf.glob(f"{prefix}.http.*.gz"))
        if files:
            groups.append(RecordingGroup(f"cryptofeed/{prefix}", venue, files, "cryptofeed"))
    return groups


def instrument_of_group(group: RecordingGroup, adapter) -> list[InstrumentId]:
    """Instruments a group's books belong to, without reading the files where possible."""
    if group.venue_symbols:
        return [adapter.instrument(s) for s in group.venue_symbols]
    return []
