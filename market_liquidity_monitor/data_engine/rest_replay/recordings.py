"""The recordings a REST stand-in serves, indexed at start and read lazily.

Sources (the ``../shared/data`` layout, see its README):

* ``cryptofeed/*.0.gz`` and ``cryptofeed/*.http.*.gz``: HTTP responses, one line each,
  ``<request url> -> <ts>: <body>`` (market metadata and REST depth snapshots). Small (~8 MB raw in
  all), so read at start; bodies are kept as the recorded bytes.
* ``hftbacktest/{spot,usdm,cm}/<symbol>_<yyyymmdd>.gz``: Binance spot / USD-M / COIN-M streams, one
  ``<ns> <json>`` line per message. The ``*_20240808`` files hold one REST depth snapshot line (1000
  levels per side); every file holds ``@trade`` messages. ~65 MB raw: only the file names are read
  at start; a file is read on the first request that needs it.
* ``tooyipjee_freqtrade/binance/<BASE>_<QUOTE>-1m.json.gz`` (1m) and
  ``genetrader/binance/<BASE>_<QUOTE>-<tf>.feather`` (5m, 1h): Binance spot candles
  ``[open_time_ms, open, high, low, close, volume]``. Read on first request and kept as numpy arrays.

Every loaded object names the files it came from (``sources``) so a served answer can say where its
numbers come from.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from market_liquidity_monitor.ingest.replay import read_cryptofeed

log = logging.getLogger(__name__)

BINANCE_SPOT = "api.binance.com"
BINANCE_USDM = "fapi.binance.com"
BINANCE_COINM = "dapi.binance.com"
# hftbacktest folder -> the Binance REST host whose data it records.
HFT_FOLDER_HOST = {"spot": BINANCE_SPOT, "usdm": BINANCE_USDM, "cm": BINANCE_COINM}

# Binance kline intervals (spot REST docs, "Kline/Candlestick chart intervals") and their length in
# ms; "1M" (calendar month) has no fixed length and is listed without one.
KLINE_INTERVAL_MS: dict[str, int | None] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": None,
}

_HFT_NAME = re.compile(r"^(?P<symbol>[a-z0-9_]+)_(?P<day>\d{8})\.gz$")
_CANDLE_NAME = re.compile(
    r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<tf>\d+[smhdwM])\.(?:json\.gz|json|feather)$"
)


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """One recorded HTTP response: request host, path, query params, receive time (Unix s), body."""

    host: str
    path: str
    params: tuple[tuple[str, str], ...]
    ts: float
    body: str
    source: str = ""


def read_capture(path: Path) -> list[RecordedResponse]:
    """The HTTP responses of one cryptofeed capture file (gzip or plain text), read by the replay
    reader (``ingest.replay.read_cryptofeed``: its ``rest`` records carry the request URL)."""
    out = []
    for rec in read_cryptofeed(path, venue=""):
        if rec.kind != "rest" or "://" not in rec.source:
            continue
        parts = urlsplit(rec.source)
        out.append(
            RecordedResponse(
                host=parts.netloc,
                path=parts.path,
                params=tuple(parse_qsl(parts.query)),
                ts=rec.ts_recv_ns / 1e9,
                body=rec.payload.decode(),
                source=f"{path.parent.name}/{path.name}",
            )
        )
    return out


def norm_path(path: str) -> str:
    """Path compared without a trailing slash (Bitstamp is recorded as ``/order_book/ethusd`` and
    requested by ccxt as ``/order_book/ethusd/``)."""
    return path.rstrip("/") or "/"


class CaptureStore:
    """Recorded responses by host. ``lookup`` matches host, path (trailing slash ignored) and the
    query params except those in ``ignore`` (e.g. ``limit``); of several matching recordings the
    newest is returned."""

    def __init__(self, responses: Iterable[RecordedResponse] = ()):
        self._by_host: dict[str, list[RecordedResponse]] = {}
        for rec in responses:
            self.add(rec)

    def add(self, rec: RecordedResponse) -> None:
        self._by_host.setdefault(rec.host, []).append(rec)

    def hosts(self) -> list[str]:
        return sorted(self._by_host)

    def responses(self, host: str | None = None) -> list[RecordedResponse]:
        if host is not None:
            return list(self._by_host.get(host, ()))
        return [r for recs in self._by_host.values() for r in recs]

    def lookup(
        self, host: str, path: str, params: dict[str, str], ignore: frozenset[str] = frozenset()
    ) -> RecordedResponse | None:
        want_path = norm_path(path)
        want = {(k, v) for k, v in params.items() if k not in ignore}
        best: RecordedResponse | None = None
        for rec in self._by_host.get(host, ()):
            if norm_path(rec.path) != want_path:
                continue
            if {(k, v) for k, v in rec.params if k not in ignore} != want:
                continue
            if best is None or rec.ts > best.ts:
                best = rec
        return best


# -- candles --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandleSeries:
    """Candles of one symbol and interval, oldest first, open times unique.

    ``open_ms`` int64 open times (Unix ms); ``ohlcv`` float64 ``(n, 5)`` open, high, low, close,
    volume (base units) exactly as stored in the files; ``sources`` the files read.
    """

    venue_symbol: str
    interval: str
    interval_ms: int
    open_ms: np.ndarray
    ohlcv: np.ndarray
    sources: tuple[str, ...]

    @property
    def end_ms(self) -> int:
        """End of the newest candle (its open time + the interval), Unix ms."""
        return int(self.open_ms[-1]) + self.interval_ms

    def window(self, start_ms: int | None, end_ms: int | None, limit: int) -> slice:
        """Rows served by Binance ``GET /api/v3/klines`` semantics (spot REST docs): with
        ``startTime``, the first ``limit`` candles opening at or after it (and at or before
        ``endTime`` when given); with only ``endTime``, the last ``limit`` candles opening at or
        before it; with neither, the most recent ``limit`` candles."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_ms, start_ms, side="left"))
        hi = len(self.open_ms) if end_ms is None else int(np.searchsorted(self.open_ms, end_ms, side="right"))
        if hi <= lo:
            return slice(lo, lo)
        if start_ms is None:
            return slice(max(lo, hi - limit), hi)
        return slice(lo, min(hi, lo + limit))


def _read_candle_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(open_ms int64, ohlcv float64 (n,5)) of one freqtrade candle file (JSON array or Feather)."""
    if path.suffix == ".feather":
        import pandas as pd

        df = pd.read_feather(path)
        open_ms = df["date"].astype("int64").to_numpy() // 1_000_000  # datetime64[ns, UTC] -> ms
        ohlcv = df[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
        return open_ms.astype(np.int64), ohlcv
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        rows = json.load(fh)
    open_ms = np.array([int(r[0]) for r in rows], dtype=np.int64)
    ohlcv = np.array([r[1:6] for r in rows], dtype=np.float64).reshape(-1, 5)
    return open_ms, ohlcv


def _last_open_ms(path: Path) -> int:
    """Open time of the newest candle of one file, reading as little as the format allows (the
    Feather ``date`` column only)."""
    if path.suffix == ".feather":
        import pyarrow.feather as feather

        col = feather.read_table(path, columns=["date"]).column("date")
        return int(col.cast("int64").to_numpy().max()) // 1_000_000
    return int(_read_candle_file(path)[0].max())


# -- trades ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecordedTrade:
    """One trade of a Binance ``@trade`` stream message: ``t`` id, ``p``/``q`` decimal strings,
    ``T`` trade time (ms), ``m`` buyer is maker, ``M`` best match (spot only, else None)."""

    trade_id: int
    price: str
    qty: str
    time_ms: int
    buyer_maker: bool
    best_match: bool | None

    @property
    def quote_qty(self) -> Decimal:
        """price * qty, exact (Decimal)."""
        return Decimal(self.price) * Decimal(self.qty)


@dataclass(frozen=True)
class TradeTape:
    """Recorded trades of one symbol on one host, ordered by trade id (oldest first)."""

    host: str
    venue_symbol: str
    trades: tuple[RecordedTrade, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class DepthSnapshot:
    """A recorded REST depth snapshot (the venue's JSON body, parsed) and where it came from."""

    host: str
    venue_symbol: str
    body: dict[str, Any]
    ts: float
    source: str


def _hft_lines(path: Path):
    with gzip.open(path, "rb") as fh:
        for raw in fh:
            sp = raw.find(b" ")
            if sp > 0:
                yield raw[:sp], raw[sp + 1 :]


def _read_hft_trades(path: Path) -> list[RecordedTrade]:
    out = []
    for _ts, payload in _hft_lines(path):
        if b'@trade"' not in payload[:60]:
            continue
        d = json.loads(payload)["data"]
        out.append(
            RecordedTrade(
                trade_id=int(d["t"]),
                price=d["p"],
                qty=d["q"],
                time_ms=int(d["T"]),
                buyer_maker=bool(d["m"]),
                best_match=bool(d["M"]) if "M" in d else None,
            )
        )
    return out


def _read_hft_snapshot(path: Path) -> tuple[dict[str, Any], float] | None:
    """The REST depth snapshot line of an hftbacktest file (the one line that is not a stream
    message, a few lines after the start); None when the file has none (``*_20240809``)."""
    for n, (ts, payload) in enumerate(_hft_lines(path)):
        if payload.startswith(b'{"lastUpdateId"'):
            return json.loads(payload), int(ts) / 1e9
        if n > 2000:  # the snapshot is at line 8/37/55 in the recorded files
            return None
    return None


# -- the index ------------------------------------------------------------------------------------
@dataclass
class Recordings:
    """What one data directory offers, with lazy, thread-safe loaders.

    Build with ``Recordings.scan(data_dir)`` (lists files, reads the small cryptofeed captures) or
    ``Recordings.from_captures(paths)``. ``candles``, ``trades``, ``hft_depth`` and ``clock_ms``
    read files on first use (call them from a worker thread: they may take ~0.1-1 s) and keep the
    result.
    """

    store: CaptureStore
    candle_files: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    hft_files: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    _locks: dict[Any, threading.Lock] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_captures(cls, items: Iterable[Path | RecordedResponse]) -> Recordings:
        store = CaptureStore()
        for item in items:
            if isinstance(item, RecordedResponse):
                store.add(item)
            else:
                for rec in read_capture(Path(item)):
                    store.add(rec)
        return cls(store=store)

    @classmethod
    def scan(cls, data_dir: Path) -> Recordings:
        """Index ``data_dir`` (the ../shared/data layout). Raises ``FileNotFoundError`` when it is
        not a directory or holds none of the known sub-folders."""
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise FileNotFoundError(f"{data_dir} is not a directory")
        known = ("cryptofeed", "hftbacktest", "tooyipjee_freqtrade", "genetrader")
        if not any((data_dir / k).is_dir() for k in known):
            raise FileNotFoundError(
                f"{data_dir} holds none of the recording folders {', '.join(known)} (../shared/data layout)"
            )
        captures = sorted((data_dir / "cryptofeed").glob("*.0.gz")) + sorted(
            (data_dir / "cryptofeed").glob("*.http.*.gz")
        )
        rec = cls.from_captures(captures)
        for folder, host in HFT_FOLDER_HOST.items():
            for path in sorted((data_dir / "hftbacktest" / folder).glob("*.gz")):
                m = _HFT_NAME.match(path.name)
                if m:
                    rec.hft_files.setdefault((host, m["symbol"].upper()), []).append(path)
        for folder in ("tooyipjee_freqtrade/binance", "genetrader/binance"):
            for path in sorted((data_dir / folder).glob("*")):
                m = _CANDLE_NAME.match(path.name)
                if m and m["tf"] in KLINE_INTERVAL_MS:
                    key = (m["base"] + m["quote"], m["tf"])
                    rec.candle_files.setdefault(key, []).append(path)
        return rec

    # -- lazy loading --------------------------------------------------------------------------
    def _once(self, key: Any, load):
        with self._guard:
            if key in self._cache:
                return self._cache[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                self._cache[key] = load()
            return self._cache[key]

    def candles(self, venue_symbol: str, interval: str) -> CandleSeries | None:
        """Candles of ``venue_symbol`` (``BTCUSDT``) at ``interval`` (``1m``), or None if none are
        recorded. Several files of one key are merged; a repeated open time keeps the first file's."""
        paths = self.candle_files.get((venue_symbol, interval))
        step = KLINE_INTERVAL_MS.get(interval)
        if not paths or step is None:
            return None

        def load() -> CandleSeries:
            parts = [_read_candle_file(p) for p in paths]
            open_ms = np.concatenate([p[0] for p in parts])
            ohlcv = np.concatenate([p[1] for p in parts])
            order = np.argsort(open_ms, kind="stable")
            open_ms, ohlcv = open_ms[order], ohlcv[order]
            keep = np.ones(len(open_ms), dtype=bool)
            keep[1:] = open_ms[1:] != open_ms[:-1]
            return CandleSeries(
                venue_symbol,
                interval,
                step,
                open_ms[keep],
                ohlcv[keep],
                tuple(f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p in paths),
            )

        return self._once(("candles", venue_symbol, interval), load)

    def candle_intervals(self, venue_symbol: str) -> list[str]:
        return sorted({tf for sym, tf in self.candle_files if sym == venue_symbol}, key=_interval_order)

    def trades(self, host: str, venue_symbol: str) -> TradeTape | None:
        """Recorded ``@trade`` messages of ``venue_symbol`` on ``host`` (all its hftbacktest files),
        or None if none are recorded."""
        paths = self.hft_files.get((host, venue_symbol))
        if not paths:
            return None

        def load() -> TradeTape:
            by_id: dict[int, RecordedTrade] = {}
            for p in paths:
                for t in _read_hft_trades(p):
                    by_id.setdefault(t.trade_id, t)
            ordered = tuple(by_id[k] for k in sorted(by_id))
            return TradeTape(
                host, venue_symbol, ordered, tuple(f"hftbacktest/{p.parent.name}/{p.name}" for p in paths)
            )

        return self._once(("trades", host, venue_symbol), load)

    def hft_depth(self, host: str, venue_symbol: str) -> DepthSnapshot | None:
        """The REST depth snapshot recorded in the hftbacktest file(s) of ``venue_symbol``."""
        paths = self.hft_files.get((host, venue_symbol))
        if not paths:
            return None

        def load() -> DepthSnapshot | None:
            for p in paths:
                found = _read_hft_snapshot(p)
                if found is not None:
                    body, ts = found
                    return DepthSnapshot(
                        host, venue_symbol, body, ts, f"hftbacktest/{p.parent.name}/{p.name}"
                    )
            return None

        return self._once(("hft_depth", host, venue_symbol), load)

    def clock_ms(self, host: str) -> int | None:
        """The stand-in's clock for ``host``, Unix ms: the end (open time + interval) of the newest
        candle served for the host; for a host that serves no candles, the newest exchange time
        (trade ``T``, depth snapshot ``E``/``T``) among its recorded trades and snapshots. None when
        the host has neither."""

        def load() -> int | None:
            if host == BINANCE_SPOT and self.candle_files:  # every candle file is Binance spot
                return max(
                    _last_open_ms(p) + (KLINE_INTERVAL_MS[tf] or 0)
                    for (_sym, tf), paths in self.candle_files.items()
                    for p in paths
                )
            times = []
            for h, sym in list(self.hft_files):
                if h != host:
                    continue
                tape = self.trades(h, sym)
                if tape and tape.trades:
                    times.append(max(t.time_ms for t in tape.trades))
                snap = self.hft_depth(h, sym)
                if snap is not None:
                    times += [int(snap.body[k]) for k in ("E", "T") if k in snap.body]
            return max(times) if times else None

        return self._once(("clock", host), load)


def _interval_order(tf: str) -> int:
    ms = KLINE_INTERVAL_MS.get(tf)
    return ms if ms is not None else 1 << 62
