"""Replay of recorded venue traffic through the same path a live feed takes.

Readers turn capture files into ``RawRecord`` streams; ``Replayer`` decodes each record, hands it
to the venue adapter and feeds the resulting events to a ``BookStore``, advancing a
``ReplayClock``. A corrupt or truncated line is skipped and counted, never raised.

Supported layouts (../shared/data/README.md §4):

- hftbacktest: ``<ns> <json>`` per line, gzip; one REST snapshot line (top-level ``lastUpdateId``)
  inside each ``*_20240808.gz``; the ``*_20240809.gz`` files continue the same stream.
- cryptofeed: ``<ts>: <payload>`` received frames, ``<url> -> <ts>: <body>`` HTTP responses,
  ``<url> <-> <ts>`` connects and ``<url> <- <ts>: <payload>`` sent frames; seconds as floats.
  REST bodies get their wire symbol from the URL (``symbol=``, ``instId=``, ``currency_pair=``,
  ``pair=`` or a Bitstamp-style ``/order_book/{pair}`` path).
- Bybit v5 historical order book (``*.data.zip``): one member, JSON lines of ``orderbook.{depth}``
  frames; the frame's ``ts`` (ms) stands in for the receive time.
- Tardis.dev CSVs (``incremental_book_L2``, ``book_snapshot_{25,5}``): already normalized, so the
  readers yield ``L2Snapshot``/``L2Delta`` events for a ``BookStore`` directly, not raw records.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import math
import re
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from market_liquidity_monitor.book.sync import NoSequenceRule
from market_liquidity_monitor.domain.errors import BadUpdateError, UnknownVenueError
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock, iso_ns
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.base import AdapterBase, KeepAlive


@dataclass(slots=True, order=True)
class RawRecord:
    """One recorded frame, ordered by ``(ts_recv_ns, seq)`` so streams merge in time order.

    ``kind``: ``ws`` (a received frame), ``rest`` (an HTTP response body), ``event`` (an already
    normalized ``L2Snapshot``/``L2Delta`` in ``event``, from a Tardis CSV), or the connection
    markers of our own recordings, ``open`` (payload = URL) and ``close`` (payload = reason).
    """

    ts_recv_ns: int
    seq: int  # file order, tie-breaker for equal timestamps
    kind: str = field(compare=False)
    payload: bytes = field(compare=False)
    venue: str = field(compare=False)
    # For REST bodies and hftbacktest snapshot lines: the wire symbol the body belongs to.
    venue_symbol: str | None = field(compare=False, default=None)
    source: str = field(compare=False, default="")
    event: object = field(compare=False, default=None)  # kind "event": the normalized event


@dataclass(slots=True)
class FileProblems:
    """What went wrong reading one recording file (``ReadStats.files``)."""

    corrupt_lines: int = 0  # lines that do not parse as the layout's line format
    unreadable: str | None = None  # why the file stopped being readable (truncated, bad gzip...)
    rejected_updates: int = 0  # frames whose levels a book refused (NaN, negative size, malformed)
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "corrupt_lines": self.corrupt_lines,
            "unreadable": self.unreadable,
            "rejected_updates": self.rejected_updates,
            "examples": list(self.examples),
        }


@dataclass(slots=True)
class ReadStats:
    """Counts of one or more reads; ``files`` keeps, per file name, only the files with a problem
    (``FileProblems``), so a corrupt recording is reported by name (``/api/status``
    ``recordings``) while every other file keeps answering."""

    lines: int = 0
    records: int = 0
    corrupt: int = 0
    rejected: int = 0
    corrupt_examples: list[str] = field(default_factory=list)
    files: dict[str, FileProblems] = field(default_factory=dict)

    def _file(self, path: Path | str) -> FileProblems:
        name = Path(path).name
        fp = self.files.get(name)
        if fp is None:
            fp = self.files[name] = FileProblems()
        return fp

    def bad(self, path: Path, lineno: int, line: bytes) -> None:
        self.corrupt += 1
        fp = self._file(path)
        fp.corrupt_lines += 1
        example = f"{Path(path).name}:{lineno}: {line[:80]!r}"
        if len(self.corrupt_examples) < 5:
            self.corrupt_examples.append(example)
        if len(fp.examples) < 3:
            fp.examples.append(example)

    def unreadable(self, path: Path, lineno: int, exc: BaseException) -> None:
        """The file cannot be read past line ``lineno``: counted as one corrupt line, and why."""
        self.bad(path, lineno, f"unreadable from here: {type(exc).__name__}: {exc}".encode())
        self._file(path).unreadable = f"line {lineno}: {type(exc).__name__}: {exc}"[:200]

    def rejected_update(self, source: str, reason: str) -> None:
        """A decoded frame of ``source`` that a book refused (its book was resynced)."""
        self.rejected += 1
        fp = self._file(source)
        fp.rejected_updates += 1
        if len(fp.examples) < 3:
            fp.examples.append(reason[:160])

    def report(self) -> list[dict]:
        """``[{"file", "corrupt_lines", "unreadable", "rejected_updates", "examples"}]``, by name."""
        return [{"file": name, **fp.as_dict()} for name, fp in sorted(self.files.items())]


# What a damaged file raises while it is read: a truncated or bit-flipped gzip stream (zlib.error,
# BadGzipFile, EOFError), a damaged zip (BadZipFile), an unreadable file (OSError), bytes that are
# not UTF-8 or a malformed CSV row (Tardis files).
READ_ERRORS = (
    EOFError,
    OSError,
    zlib.error,
    gzip.BadGzipFile,
    zipfile.BadZipFile,
    UnicodeDecodeError,
    csv.Error,
)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _numbered_lines(path: Path, stats: ReadStats) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line)`` of a plain or gzip file, each counted in ``stats.lines``. A
    truncated or unreadable file ends the stream and is counted as one corrupt line."""
    lineno = 0
    try:
        with _open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                stats.lines += 1
                yield lineno, line
    except READ_ERRORS as exc:
        stats.unreadable(path, lineno + 1, exc)


def read_hftbacktest(
    path: Path, venue: str, venue_symbol: str, stats: ReadStats | None = None, seq_base: int = 0
) -> Iterator[RawRecord]:
    """Yield records of an hftbacktest Binance file. Truncated gzip tails are counted as corrupt."""
    stats = stats if stats is not None else ReadStats()
    src = str(path)
    for lineno, line in _numbered_lines(path, stats):
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


_CF_RECV = re.compile(rb"^(\d+(?:\.\d+)?): (.*)$", re.S)
_CF_HTTP = re.compile(rb"^(\S+) -> (\d+(?:\.\d+)?): (.*)$", re.S)
_URL_SYMBOL_PARAMS = ("symbol", "instId", "currency_pair", "pair")
_URL_SYMBOL_PATH = re.compile(r"/order_book/([A-Za-z0-9_.:-]+)/?$")  # Bitstamp /api/v2/order_book/{pair}


def url_venue_symbol(url: str) -> str | None:
    """The wire symbol a REST book request was for, from its query or path; None if none.

    ``…/depth?symbol=NKNUSDT`` -> ``NKNUSDT``; ``…?instId=BTC-USDT``; ``…?currency_pair=BTC_USDC``;
    ``…/api/v2/order_book/ethusd`` -> ``ethusd``.
    """
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    for key in _URL_SYMBOL_PARAMS:
        if q.get(key):
            return q[key][0]
    m = _URL_SYMBOL_PATH.search(parts.path)
    return m.group(1) if m else None


def read_cryptofeed(
    path: Path, venue: str, stats: ReadStats | None = None, seq_base: int = 0
) -> Iterator[RawRecord]:
    """Yield received WS frames and HTTP responses of a cryptofeed capture (sent frames skipped)."""
    stats = stats if stats is not None else ReadStats()
    src = str(path)
    for lineno, raw in _numbered_lines(path, stats):
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        if line.startswith(b"configuration: "):
            continue
        m = _CF_RECV.match(line)
        if m:
            stats.records += 1
            yield RawRecord(
                int(float(m.group(1)) * 1e9), seq_base + lineno, "ws", m.group(2), venue, None, src
            )
            continue
        m = _CF_HTTP.match(line)
        if m:
            url = m.group(1).decode()
            sym = url_venue_symbol(url)
            stats.records += 1
            yield RawRecord(
                int(float(m.group(2)) * 1e9), seq_base + lineno, "rest", m.group(3), venue, sym, url
            )
            continue
        if b" <-> " in line or b" <- " in line:
            continue  # connect / sent frame
        stats.bad(path, lineno, line)


_BYBIT_TS = re.compile(rb'"ts":(\d+)')


def read_bybit_zip(
    path: Path, venue: str = "bybit", stats: ReadStats | None = None, seq_base: int = 0
) -> Iterator[RawRecord]:
    """Yield the frames of a Bybit historical order-book file (zip with one JSON-lines member).

    The file has no receive times; each frame's ``ts`` (ms, Bybit system time) is used instead.
    Lines without a ``ts`` or a truncated archive are counted as corrupt.
    """
    stats = stats if stats is not None else ReadStats()
    src = str(path)
    lineno = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                with zf.open(member) as fh:
                    for raw in fh:
                        lineno += 1
                        stats.lines += 1
                        line = raw.rstrip(b"\r\n")
                        if not line:
                            continue
                        m = _BYBIT_TS.search(line)
                        if m is None:
                            stats.bad(path, lineno, line)
                            continue
                        stats.records += 1
                        yield RawRecord(
                            int(m.group(1)) * 1_000_000, seq_base + lineno, "ws", line, venue, None, src
                        )
    except READ_ERRORS as exc:
        stats.unreadable(path, lineno + 1, exc)


# Tardis exchange ids -> ccxt ids (https://docs.tardis.dev/historical-data-details).
_TARDIS_VENUES = {
    "binance": "binance",
    "binance-futures": "binanceusdm",
    "binance-delivery": "binancecoinm",
    "bybit": "bybit",
    "okex": "okx",
    "okex-swap": "okx",
    "okex-futures": "okx",
    "coinbase": "coinbase",
    "kraken": "kraken",
    "bitstamp": "bitstamp",
    "gemini": "gemini",
    "kucoin": "kucoin",
    "gate-io": "gate",
    "bitfinex": "bitfinex",
    "deribit": "deribit",
    "bitmex": "bitmex",
    "huobi-dm-swap": "huobi",
}


def _tardis_instrument(exchange: str, symbol: str, instrument_for: Callable | None) -> InstrumentId:
    venue = _TARDIS_VENUES.get(exchange, exchange)
    if instrument_for is not None:
        return instrument_for(venue, symbol)
    if exchange == "deribit" and symbol.endswith("-PERPETUAL"):  # inverse perp, e.g. BTC-PERPETUAL
        base = symbol.split("-")[0]
        return InstrumentId(venue, f"{base}/USD:{base}")
    from market_liquidity_monitor.venues.registry import AdapterRegistry

    try:
        return InstrumentId(venue, AdapterRegistry()(venue).unified_symbol(symbol))
    except KeyError:  # no adapter for this venue: keep the wire symbol
        return InstrumentId(venue, symbol)


def _us_text_ns(text: str) -> int:
    return int(text) * 1000


def read_tardis_incremental_l2(
    path: Path, instrument_for: Callable[[str, str], InstrumentId] | None = None
) -> Iterator[L2Snapshot | L2Delta]:
    """Events of a Tardis ``incremental_book_L2`` CSV (https://docs.tardis.dev/downloadable-csv-files).

    Columns ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``; times in
    µs; ``amount`` is the new absolute size (0 deletes). Consecutive ``is_snapshot=true`` rows form
    one ``L2Snapshot`` (a new run after updates means the book was reset, e.g. on reconnect);
    update rows sharing a ``local_timestamp`` form one ``L2Delta``. Tardis carries no update ids,
    so ``sequence`` is None. ``instrument_for(venue, wire_symbol)`` overrides the symbol mapping.
    """
    pending: tuple | None = None  # (kind, inst, ts_event, ts_recv, bids, asks)

    def flush():
        kind, inst, ts_event, ts_recv, bids, asks = pending
        if kind == "snapshot":
            return L2Snapshot(inst, bids, asks, None, ts_event, ts_recv)
        return L2Delta(inst, bids, asks, None, None, None, ts_event, ts_recv)

    with _open(Path(path)) as fh:
        for row in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")):
            kind = "snapshot" if row["is_snapshot"] == "true" else "update"
            inst = _tardis_instrument(row["exchange"], row["symbol"], instrument_for)
            ts_recv = _us_text_ns(row["local_timestamp"])
            same = (
                pending is not None
                and pending[0] == kind
                and pending[1] == inst
                and (kind == "snapshot" or pending[3] == ts_recv)
            )
            if not same:
                if pending is not None:
                    yield flush()
                pending = (kind, inst, _us_text_ns(row["timestamp"]), ts_recv, [], [])
            (pending[4] if row["side"] == "bid" else pending[5]).append((row["price"], row["amount"]))
    if pending is not None:
        yield flush()


def read_tardis_book_snapshots(
    path: Path, instrument_for: Callable[[str, str], InstrumentId] | None = None
) -> Iterator[L2Snapshot]:
    """One ``L2Snapshot`` per row of a Tardis ``book_snapshot_{N}`` CSV (``asks[i].price``,
    ``asks[i].amount``, ``bids[i].price``, ``bids[i].amount``, best first; empty cells = no level)."""
    with _open(Path(path)) as fh:
        reader = csv.reader(io.TextIOWrapper(fh, encoding="utf-8"))
        header = next(reader)
        idx = {name: i for i, name in enumerate(header)}
        depth = sum(1 for name in header if name.startswith("asks[") and name.endswith("].price"))
        for row in reader:
            inst = _tardis_instrument(row[idx["exchange"]], row[idx["symbol"]], instrument_for)
            sides = []
            for side in ("bids", "asks"):
                levels = []
                for i in range(depth):
                    p, a = row[idx[f"{side}[{i}].price"]], row[idx[f"{side}[{i}].amount"]]
                    if p and a:
                        levels.append((p, a))
                sides.append(levels)
            yield L2Snapshot(inst, sides[0], sides[1], None, _us_text_ns(row[idx["timestamp"]]),
                             _us_text_ns(row[idx["local_timestamp"]]))  # fmt: skip


@dataclass(slots=True)
class ReplayStats:
    """What a ``Replayer.run`` did. Times are receive times, ns since the epoch.

    ``connection_breaks``: ``close`` markers of our recordings (an unplanned disconnect of the
    recorded session; every book of that recording was marked as a gap and waits for a snapshot).
    ``stopped``: the run ended early because ``stop_event`` was set.
    """

    records: int = 0
    events: int = 0
    undecodable: int = 0
    rejected_updates: int = 0  # decoded updates a book refused (bad levels): book resynced
    connection_breaks: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    wall_s: float = 0.0
    stopped: bool = False
    read: ReadStats = field(default_factory=ReadStats)


# Reasons of ``close`` markers that are not a break in the data (the recorder stopped on purpose).
_CLEAN_CLOSE = (b"stop",)


class Replayer:
    """Drives recorded records through adapters into a ``BookStore``.

    ``adapter_for(venue)`` returns the adapter. ``on_record`` (optional) is called after each
    record with the record and its events: the bookTicker correctness check and the benchmark use it.

    Paced playback for a live-like store (``mlm up --data``)::

        stop = threading.Event()
        thread = Replayer(store, registry).run_in_thread(records, speed=1.0, stop_event=stop)
        ...
        stop.set(); thread.join()

    Gaps in the data are marked as gaps: a sequence break is found by the venue's rule
    (``BookSync``); a ``close`` marker of our recording format (the recorded socket broke) marks
    every book of that recording as a gap (``quality.gaps`` + 1, ``last_gap_ts_ns``) and discards
    it until the next snapshot, exactly as the live client did when it reconnected.
    """

    def __init__(
        self,
        store: BookStore,
        adapter_for: Callable,
        clock: ReplayClock | None = None,
        read_stats: ReadStats | None = None,
    ):
        self.store = store
        self.adapter_for = adapter_for
        self.clock = clock or (store.clock if isinstance(store.clock, ReplayClock) else ReplayClock())
        self.stats = ReplayStats()
        # Where frames a book refused are reported per file (default: this run's own stats.read).
        self.read_stats = read_stats if read_stats is not None else self.stats.read
        # Per instrument: [first ts_recv, last ts_recv] of its events.
        self.spans: dict[InstrumentId, list[int]] = {}
        self._by_source: dict[str, set[InstrumentId]] = {}
        self._source_last: dict[str, int] = {}  # last receive time per source file
        # Pacing hooks (tests inject fakes): monotonic seconds, and a sleep used without stop_event.
        self.monotonic: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], object] = time.sleep

    def run(
        self,
        records: Iterable[RawRecord],
        on_record: Callable | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        speed: float = 0.0,
        stop_event: threading.Event | None = None,
    ) -> ReplayStats:
        """Replay ``records`` (in the order given; ``merge`` them first for several files).

        ``speed``: 0 = as fast as possible; 1 = recorded time (a record is applied when as much
        wall time has passed since the first record as receive time did); N = N times faster.
        A run that falls behind does not sleep until it has caught up. ``stop_event`` (a
        ``threading.Event``) ends the run early, also during a wait; ``stats.stopped`` says so.
        Returns the cumulative ``ReplayStats`` (also in ``self.stats``). Raises ``ValueError``
        for a negative or non-finite ``speed``. Bad lines and frames are counted, never raised.
        """
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed >= 0):
            raise ValueError(
                f"speed must be >= 0 (0 = as fast as possible, 1 = recorded time, N = N x faster), got {speed!r}"
            )
        st = self.stats
        store = self.store
        clock = self.clock
        spans = self.spans
        source_last = self._source_last
        loads = orjson.loads
        adapters: dict[str, object] = {}
        paced = speed > 0
        rec_t0: int | None = None
        wall_t0 = 0.0
        started = time.perf_counter()
        try:
            for rec in records:
                if stop_event is not None and stop_event.is_set():
                    st.stopped = True
                    break
                if paced:
                    if rec_t0 is None:
                        rec_t0, wall_t0 = rec.ts_recv_ns, self.monotonic()
                    delay = wall_t0 + (rec.ts_recv_ns - rec_t0) / 1e9 / speed - self.monotonic()
                    if delay > 0.001:
                        if stop_event is not None:
                            if stop_event.wait(delay):
                                st.stopped = True
                                break
                        else:
                            self.sleep(delay)
                st.records += 1
                ts = rec.ts_recv_ns
                if st.first_ts_ns is None:
                    st.first_ts_ns = ts
                st.last_ts_ns = ts
                clock.advance(ts)
                source_last[rec.source] = ts
                kind = rec.kind
                if kind == "event":
                    events = [rec.event]
                elif kind == "close":
                    if not rec.payload.startswith(_CLEAN_CLOSE):
                        self._connection_break(rec)
                    continue
                elif kind == "open":
                    continue
                else:
                    adapter = adapters.get(rec.venue)
                    if adapter is None:
                        adapter = adapters[rec.venue] = self.adapter_for(rec.venue)
                    try:
                        msg = loads(rec.payload)
                    except orjson.JSONDecodeError:
                        st.undecodable += 1
                        continue
                    try:
                        if kind == "rest":
                            if rec.venue_symbol is None:
                                continue  # metadata response (exchangeInfo...), not a book
                            events = [adapter.parse_snapshot(msg, rec.venue_symbol, ts)]
                        else:
                            events = adapter.parse_message(msg, ts)
                    except (
                        KeyError,
                        TypeError,
                        ValueError,
                        IndexError,
                        AttributeError,
                        ArithmeticError,
                    ) as exc:
                        st.undecodable += 1
                        self.read_stats.rejected_update(
                            rec.source, f"frame not understood: {type(exc).__name__}"
                        )
                        continue
                if events:
                    seen = self._by_source.get(rec.source)
                    if seen is None:
                        seen = self._by_source[rec.source] = set()
                    for ev in events:
                        try:
                            store.on_event(ev)
                        except BadUpdateError as exc:  # the store resynced the book; counted per file
                            st.rejected_updates += 1
                            self.read_stats.rejected_update(rec.source, str(exc))
                        inst = ev.instrument
                        seen.add(inst)
                        span = spans.get(inst)
                        if span is None:
                            spans[inst] = [ev.ts_recv, ev.ts_recv]
                        else:
                            span[1] = ev.ts_recv
                    st.events += len(events)
                if on_record is not None:
                    on_record(rec, events)
                if progress is not None and st.records % 20_000 == 0:
                    progress(st.records)
        finally:
            st.wall_s += time.perf_counter() - started
        return st

    def run_in_thread(
        self,
        records: Iterable[RawRecord],
        speed: float = 1.0,
        stop_event: threading.Event | None = None,
        name: str = "mlm-replay",
    ) -> threading.Thread:
        """Start ``run(records, speed=speed, stop_event=stop_event)`` in a daemon thread and
        return it (already started). Set ``stop_event`` and ``join()`` to stop; the result is in
        ``self.stats``. ``BookStore`` has no lock: a reader in another thread may see a book between
        two level changes of one event, so readers should copy (``store.view()``) and re-check
        ``quality.synced`` rather than hold references across calls."""
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed >= 0):
            raise ValueError(f"speed must be >= 0, got {speed!r}")
        t = threading.Thread(
            target=self.run, args=(records,), kwargs={"speed": speed, "stop_event": stop_event}, name=name,
            daemon=True,
        )  # fmt: skip
        t.start()
        return t

    def _connection_break(self, rec: RawRecord) -> None:
        """The recorded socket broke: every book the recording fed is a gap until its next snapshot."""
        self.stats.connection_breaks += 1
        for inst in self._by_source.get(rec.source, ()):
            e = self.store.entry(inst)
            q = e.book.quality
            if q.synced or e.sync.buffer:
                q.gaps += 1
                q.last_gap_ts_ns = rec.ts_recv_ns
            e.sync.invalidate()

    def instrument_stats(self) -> list[dict]:
        """Per instrument replayed, sorted by venue and symbol: ``venue``, ``symbol``,
        ``messages`` (events), ``updates_applied`` (deltas applied), ``snapshots`` (applied),
        ``gaps``, ``resyncs``, ``checksums_verified``, ``checksum_failures``, ``crossed_episodes``,
        ``stale_episodes``, the flags ``synced``/``crossed``/``stale`` at the end, ``last_gap``
        and ``first_ts``/``last_ts`` (ISO 8601 UTC, receive times). Staleness is judged at the
        end of the instrument's own recording (the last receive time of the files that fed it),
        so unrelated captures merged into one replay do not make each other's books stale."""
        ends: dict[InstrumentId, int] = {}
        for src, insts in self._by_source.items():
            last = self._source_last.get(src, 0)
            for inst in insts:
                ends[inst] = max(ends.get(inst, 0), last)
        out = []
        for inst in sorted(self.spans):
            e = self.store.entry(inst)
            self.store.refresh_stale(e, ends.get(inst))
            q = e.book.quality
            first, last = self.spans[inst]
            out.append(
                {
                    "venue": inst.venue,
                    "symbol": inst.symbol,
                    "messages": e.messages,
                    "updates_applied": e.sync.counters.deltas_applied,
                    "snapshots": e.sync.counters.snapshots_applied,
                    "gaps": q.gaps,
                    "resyncs": q.resyncs,
                    "checksums_verified": q.checksums_verified,
                    "checksum_failures": q.checksum_failures,
                    "crossed_episodes": q.crossed_episodes,
                    "stale_episodes": q.stale_episodes,
                    "synced": q.synced,
                    "crossed": q.crossed,
                    "stale": q.stale,
                    "last_gap": iso_ns(q.last_gap_ts_ns),
                    "first_ts": iso_ns(first),
                    "last_ts": iso_ns(last),
                }
            )
        return out


class NormalizedEventsAdapter(AdapterBase):
    """Stand-in adapter for a venue we only replay as normalized events (a Tardis CSV of a venue
    without an adapter, e.g. ``deribit``): no sequence rule (Tardis rows carry no update ids), no
    checksum, no contract size, wire symbol = unified symbol; raw frames yield no events."""

    sequence_rule = NoSequenceRule()
    keepalive = KeepAlive()

    def __init__(self, venue: str):
        self.venue = venue
        self.ws_url = ""
        super().__init__()

    def unified_symbol(self, venue_symbol: str) -> str:
        return venue_symbol

    def venue_symbol(self, symbol: str) -> str:
        return symbol

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        return []

    def snapshot_request(self, symbol: str, limit: int = 1000) -> None:
        return None

    def parse_snapshot(self, body, symbol: str, ts_recv_ns: int):
        raise ValueError(f"{self.venue}: no adapter, REST bodies cannot be parsed")

    def parse_message(self, msg, ts_recv_ns: int) -> list:
        return []


def with_fallback(adapter_for: Callable) -> Callable:
    """``adapter_for`` that answers an unknown venue (``UnknownVenueError``) with a cached
    ``NormalizedEventsAdapter`` instead of raising: for replaying normalized event files."""
    fallbacks: dict[str, NormalizedEventsAdapter] = {}

    def get(venue: str):
        try:
            return adapter_for(venue)
        except UnknownVenueError:
            a = fallbacks.get(venue)
            if a is None:
                a = fallbacks[venue] = NormalizedEventsAdapter(venue)
            return a

    return get


def merge(*streams: Iterable[RawRecord]) -> Iterator[RawRecord]:
    """Merge record streams by receive time (file order breaks ties)."""
    return heapq.merge(*streams)


# ------------------------------------------------------------------ datasets

_HFT_MARKETS = {"spot": "binance", "usdm": "binanceusdm", "cm": "binancecoinm"}
# cryptofeed capture prefix -> ccxt id. KRAKEN .48/.49/.50 (trades, ticker, book) and BYBIT .25/.26
# (USDT linear, inverse) are separate connections of one venue: they replay together.
_CF_VENUES = {
    "BINANCE": "binance",
    "BINANCE_FUTURES": "binanceusdm",
    "BINANCE_DELIVERY": "binancecoinm",
    "COINBASE": "coinbase",
    "KRAKEN": "kraken",
    "BYBIT": "bybit",
    "OKX": "okx",
    "BITSTAMP": "bitstamp",
    "GEMINI": "gemini",
    "KUCOIN": "kucoin",
    "GATEIO": "gate",
    "BITFINEX": "bitfinex",
}
_BYBIT_ZIP_GLOB = "nautilus_trader/bybit/*.data.zip"
_TARDIS_L2_GLOB = "nautilus_trader/tardis/*incremental_book_L2*.csv*"


@dataclass(slots=True)
class RecordingGroup:
    """Files that replay together (one instrument's day files, or one venue's WS + REST captures)."""

    name: str
    venue: str
    files: list[Path]
    fmt: str  # "hftbacktest" | "cryptofeed" | "bybit_zip" | "tardis_l2"
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
        elif self.fmt == "bybit_zip":
            for i, f in enumerate(self.files):
                yield from read_bybit_zip(f, self.venue, stats, seq_base=i * 10**9)
        elif self.fmt == "tardis_l2":
            for i, f in enumerate(self.files):
                yield from _event_records(read_tardis_incremental_l2(f), f, i * 10**9, stats)
        else:
            yield from merge(
                *(read_cryptofeed(f, self.venue, stats, seq_base=i * 10**9) for i, f in enumerate(self.files))
            )


def discover(data_dir: Path, venues: Iterable[str] | None = None) -> list[RecordingGroup]:
    """Find replayable order-book recordings under a ../shared/data-style directory.

    Returns one group per hftbacktest instrument (``hftbacktest/<market>/<symbol>_<date>.gz``, days
    in order), one per cryptofeed venue (every ``cryptofeed/<VENUE>.ws.*`` connection of the venue
    with the matching ``<VENUE>.http.*`` REST snapshots; ``<VENUE>.0`` metadata is not replayed),
    one per Bybit v5 historical file (``nautilus_trader/bybit/*.data.zip``) and one per Tardis
    ``incremental_book_L2`` CSV (``nautilus_trader/tardis/*incremental_book_L2*.csv``; its venue is
    the Tardis exchange id mapped to ccxt, e.g. ``deribit``, which may have no adapter: filter on
    ``AdapterRegistry.venues`` if you need one). Missing folders are simply absent from the result.
    Tardis ``book_snapshot_N`` CSVs are read with ``read_tardis_book_snapshots`` instead.
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
            groups.append(
                RecordingGroup(f"hftbacktest/{market}/{sym}", venue, files, "hftbacktest", [sym.upper()])
            )
    cf = data_dir / "cryptofeed"
    for prefix, venue in _CF_VENUES.items():
        if want and venue not in want:
            continue
        files = sorted(cf.glob(f"{prefix}.ws.*.gz")) + sorted(cf.glob(f"{prefix}.http.*.gz"))
        if files:
            groups.append(RecordingGroup(f"cryptofeed/{prefix}", venue, files, "cryptofeed"))
    if not want or "bybit" in want:
        for f in sorted(data_dir.glob(_BYBIT_ZIP_GLOB)):
            name = f.name.removesuffix(".data.zip")
            groups.append(RecordingGroup(f"nautilus_trader/bybit/{name}", "bybit", [f], "bybit_zip"))
    for f in sorted(data_dir.glob(_TARDIS_L2_GLOB)):
        exchange = f.name.split("_incremental_book_L2")[0]
        venue = _TARDIS_VENUES.get(exchange, exchange)
        if want and venue not in want:
            continue
        name = f.name.split(".csv")[0]
        groups.append(RecordingGroup(f"nautilus_trader/tardis/{name}", venue, [f], "tardis_l2"))
    return groups


# ------------------------------------------------------------------ any file

FORMATS = ("mlm", "hftbacktest", "cryptofeed", "bybit_zip", "tardis_l2", "tardis_snapshot")
_HFT_LINE = re.compile(rb"^\d{16,20} [\[{]")
_CF_LINE = re.compile(rb"^(\S+ <-> \d|\S+ <- \d|\S+ -> \d|\d+(?:\.\d+)?: )")


def _first_line(path: Path) -> bytes:
    try:
        with _open(path) as fh:
            for line in fh:
                if line.strip():
                    return line
    except READ_ERRORS:
        pass
    return b""


def detect_format(path: str | Path) -> str:
    """The layout of one recording file, one of ``FORMATS``, from its name and first line.

    ``mlm`` (our ``#mlm-record`` header), ``hftbacktest`` (``<ns> <json>``), ``cryptofeed``
    (``<ts>: <payload>``, ``<url> -> <ts>: <body>``, ``<url> <-> <ts>``), ``bybit_zip``
    (``*.zip``), ``tardis_l2`` (CSV header ``exchange,symbol,timestamp,local_timestamp,is_snapshot,
    side,price,amount``), ``tardis_snapshot`` (``asks[0].price`` columns). Raises
    ``FileNotFoundError`` for a missing path and ``ValueError`` naming the valid layouts otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.name.endswith(".zip"):
        return "bybit_zip"
    first = _first_line(path)
    if ".csv" in path.suffixes:
        header = first.decode("utf-8", "replace").strip().split(",")
        if {"is_snapshot", "side", "price", "amount"} <= set(header):
            return "tardis_l2"
        if "asks[0].price" in header:
            return "tardis_snapshot"
        raise ValueError(
            f"{path}: a CSV that is neither a Tardis incremental_book_L2 nor a book_snapshot_N file "
            f"(header {first[:80]!r}); trades/quotes CSVs carry no book"
        )
    if first.startswith(b"#mlm-record "):
        return "mlm"
    if _HFT_LINE.match(first):
        return "hftbacktest"
    if _CF_LINE.match(first):
        return "cryptofeed"
    raise ValueError(
        f"{path}: unknown recording layout (first line {first[:60]!r}); valid: {', '.join(FORMATS)}"
    )


def _hft_venue_symbol(path: Path, venue: str | None) -> tuple[str, str]:
    venue = venue or _HFT_MARKETS.get(path.parent.name)
    if venue is None:
        raise ValueError(
            f"{path}: cannot tell the venue of an hftbacktest file outside spot/, usdm/ or cm/; "
            f"pass it (valid: {', '.join(_HFT_MARKETS.values())})"
        )
    return venue, path.name.split(".")[0].rsplit("_", 1)[0].upper()


def _cf_venue(path: Path, venue: str | None) -> str:
    prefix = path.name.split(".")[0]
    v = venue or _CF_VENUES.get(prefix)
    if v is None:
        raise ValueError(
            f"{path}: unknown cryptofeed capture prefix {prefix!r}; valid: {', '.join(_CF_VENUES)}"
        )
    return v


def _event_records(
    events: Iterable[L2Snapshot | L2Delta], path: Path, seq_base: int, stats: ReadStats | None = None
) -> Iterator[RawRecord]:
    """Tardis events as records. A damaged file or a malformed row ends the file, counted in
    ``stats`` with the reason (its rows so far stay replayed), never raised."""
    src = str(path)
    i = -1
    try:
        for i, ev in enumerate(events):
            yield RawRecord(ev.ts_recv, seq_base + i, "event", b"", ev.instrument.venue, None, src, ev)
    except (*READ_ERRORS, KeyError, ValueError, IndexError, TypeError) as exc:
        (stats if stats is not None else ReadStats()).unreadable(path, i + 2, exc)


def read_any(
    path: str | Path,
    stats: ReadStats | None = None,
    *,
    venue: str | None = None,
    seq_base: int = 0,
    include_markers: bool = True,
) -> Iterator[RawRecord]:
    """Records of one file in any supported layout (``detect_format``), in file order.

    ``venue`` overrides the venue read from the path (hftbacktest ``spot``/``usdm``/``cm``
    folders, cryptofeed ``<VENUE>.`` prefixes). Tardis rows become ``event`` records. Our own
    recordings keep their ``open``/``close`` markers (``include_markers``) so ``Replayer`` can
    mark a broken connection as a gap. Raises ``ValueError``/``FileNotFoundError`` like
    ``detect_format``; bad lines inside a file are counted in ``stats``.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "mlm":
        from market_liquidity_monitor.ingest.recorder import read_recording  # recorder imports us

        for rec in read_recording(path, stats, include_markers=include_markers):
            rec.seq += seq_base
            yield rec
    elif fmt == "hftbacktest":
        v, vs = _hft_venue_symbol(path, venue)
        yield from read_hftbacktest(path, v, vs, stats, seq_base)
    elif fmt == "cryptofeed":
        yield from read_cryptofeed(path, _cf_venue(path, venue), stats, seq_base)
    elif fmt == "bybit_zip":
        yield from read_bybit_zip(path, venue or "bybit", stats, seq_base)
    elif fmt == "tardis_l2":
        yield from _event_records(read_tardis_incremental_l2(path), path, seq_base, stats)
    else:
        yield from _event_records(read_tardis_book_snapshots(path), path, seq_base, stats)


def read_paths(
    paths: Iterable[str | Path], stats: ReadStats | None = None, *, venue: str | None = None
) -> Iterator[RawRecord]:
    """Every record of ``paths`` (files in any layout, or ../shared/data-style directories, which
    go through ``discover``) merged in receive-time order; file order breaks ties. Every path is
    checked before reading starts (``FileNotFoundError``/``ValueError``)."""
    streams: list[Iterable[RawRecord]] = []
    for i, p in enumerate(paths):
        p = Path(p)
        if p.is_dir():
            groups = discover(p)
            if not groups:
                raise ValueError(f"{p}: no recordings found (expected the ../shared/data layout)")
            for j, g in enumerate(groups):
                streams.append(_reseq(g.records(stats), (i * 1000 + j) * 10**10))
            continue
        detect_format(p)  # fail early, naming the file
        streams.append(read_any(p, stats, venue=venue, seq_base=i * 1000 * 10**10))
    return merge(*streams)


def _reseq(records: Iterable[RawRecord], base: int) -> Iterator[RawRecord]:
    for rec in records:
        rec.seq += base
        yield rec
