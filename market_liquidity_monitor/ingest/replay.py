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
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
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
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        stats.bad(path, lineno + 1, f"truncated file: {exc}".encode())


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
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        stats.bad(path, lineno + 1, f"unreadable zip: {exc}".encode())


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
    "gate-io": "gateio",
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

    def run(
        self,
        records: Iterable[RawRecord],
        on_record: Callable | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ReplayStats:
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
    "GATEIO": "gateio",
    "BITFINEX": "bitfinex",
}
_BYBIT_ZIP_GLOB = "nautilus_trader/bybit/*.data.zip"


@dataclass(slots=True)
class RecordingGroup:
    """Files that replay together (one instrument's day files, or one venue's WS + REST captures)."""

    name: str
    venue: str
    files: list[Path]
    fmt: str  # "hftbacktest" | "cryptofeed" | "bybit_zip"
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
        else:
            yield from merge(
                *(read_cryptofeed(f, self.venue, stats, seq_base=i * 10**9) for i, f in enumerate(self.files))
            )


def discover(data_dir: Path, venues: Iterable[str] | None = None) -> list[RecordingGroup]:
    """Find replayable order-book recordings under a ../shared/data-style directory.

    Returns one group per hftbacktest instrument (``hftbacktest/<market>/<symbol>_<date>.gz``, days
    in order), one per cryptofeed venue (every ``cryptofeed/<VENUE>.ws.*`` connection of the venue
    with the matching ``<VENUE>.http.*`` REST snapshots; ``<VENUE>.0`` metadata is not replayed),
    and one per Bybit v5 historical file (``nautilus_trader/bybit/*.data.zip``). Missing folders
    are simply absent from the result. Tardis CSVs are read with ``read_tardis_*`` instead.
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
    return groups
