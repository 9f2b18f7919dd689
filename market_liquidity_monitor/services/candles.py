"""CandleService: a window of candles for backtests, pairs, price history and alerts, with where
each part came from.

- **Storage first.** Candles live in SQLite/PostgreSQL (``storage``), migrated on first use. On
  recorded data (``settings.data_dir``) the candle files of the data directory are imported once
  when nothing is stored, and a window ends at the last stored candle (the data's own end).
- **Live: the missing span is fetched through ccxt.** The window ends at the venue's clock (ccxt
  ``fetch_time``, else the wall clock), at the open of the current, unfinished candle (only closed
  candles are used). Spans of the window not fetched before (table ``candle_fetches``) are fetched
  with ``DataEngine.ohlcv`` (ccxt ``fetch_ohlcv``: paginated by ``since``, rate-limited by ccxt's
  throttle, behind the venue's circuit breaker, cached), written to storage (idempotent), and
  remembered as fetched, so a second question over the same window reads storage only. A span the
  venue has no candles for is remembered too and not asked again.
- Every load returns a ``CandleSource`` saying what came from storage and what from the venue.

Limits: at most ``data_engine.max_fetch_candles`` candles are fetched for one question (a coarser
timeframe or a shorter lookback is suggested beyond that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from market_liquidity_monitor.analytics.liquidity import Result
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.lazy import lazy_module
from market_liquidity_monitor.storage.history import History, NoHistoryError
from market_liquidity_monitor.storage.timeframes import timeframe_ms

if TYPE_CHECKING:
    from market_liquidity_monitor.storage.db import Database

pd = lazy_module("pandas")  # imported on first use: a book question never needs it
# SQLAlchemy (the engine, the queries) loads when the database is first used: a book question
# answered from restored checkpoints never opens it.
_repo = lazy_module("market_liquidity_monitor.storage.repositories")

log = logging.getLogger(__name__)

__all__ = ["CandleService", "CandleSource", "CandleWindow", "Candles", "default_pair"]

# Timeframes tried for a lookback, finest first: enough points without reading months of 1m bars.
_TIMEFRAMES_BY_DAYS = ((2, ("1m", "5m", "1h")), (14, ("5m", "1m", "1h")), (10**9, ("1h", "5m", "1m")))
# A stored series whose last candle is this much older than the newest one is an older capture.
_SAME_CAPTURE_MS = 86_400_000
# Candles asked per fetch_ohlcv page (Binance's maximum; ccxt caps it per venue where lower).
_PAGE = 1000


def default_pair(symbol: str, settings: Settings) -> str:
    """``symbol`` in upper case; a bare base asset ("btc") gets the default quote ("BTC/USDT")."""
    s = symbol.strip().upper()
    return s if "/" in s else f"{s}/{settings.agent.default_quote}"


@dataclass(frozen=True)
class CandleWindow:
    """The ``[start_ms, end_ms)`` epoch-ms window of ``timeframe`` candles of ``symbol`` on ``venue``.
    ``series``: the stored coverage row the window ends at (recorded mode; its timeframe is the
    stored one, which ``timeframe`` is resampled from when they differ), None live."""

    venue: str
    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int
    series: dict | None = None

    @property
    def last_ts_ms(self) -> int:
        """Open time of the last candle the window may hold (the ``timeframe`` bucket of ``end_ms - 1``)."""
        step = timeframe_ms(self.timeframe)
        return (self.end_ms - 1) // step * step

    def ending_at(self, last_ts_ms: int) -> CandleWindow:
        """The same length of window, its last candle opening at ``last_ts_ms`` instead."""
        shift = self.last_ts_ms - int(last_ts_ms)
        return replace(self, start_ms=self.start_ms - shift, end_ms=self.end_ms - shift)


class CandleSource(Result):
    """Where a window of candles came from.

    ``source``: ``storage`` (read from the database only), ``ccxt fetch_ohlcv`` (all fetched now)
    or ``storage + ccxt fetch_ohlcv``; ``fetched_candles``/``fetch_requests``: what this call
    fetched from the venue; ``stored_candles``: window candles already stored before it;
    ``clock``: what "now" was for the window's end.
    """

    venue: str
    symbol: str
    timeframe: str
    source_timeframe: str
    start: str
    end: str
    candles: int
    source: str
    stored_candles: int
    fetched_candles: int
    fetch_requests: int
    clock: str


@dataclass
class Candles:
    """``frame``: the window's candles indexed by UTC open time (columns ts_ms, open, high, low,
    close, volume in base units), oldest first; ``window``; ``source``."""

    frame: pd.DataFrame
    window: CandleWindow
    source: CandleSource


class CandleService:
    """Candle windows from storage and, live, from the venues (module docstring). One database per
    event loop; ``close()`` at shutdown."""

    def __init__(self, settings: Settings, engine: Any = None, wall_clock=time.time):
        self.settings = settings
        self.engine = engine
        self._wall_clock = wall_clock
        self._db: Database | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._imported = False
        self._lock: asyncio.Lock | None = None
        self._init_lock: asyncio.Lock | None = None
        self._init_loop: asyncio.AbstractEventLoop | None = None

    @property
    def is_recorded(self) -> bool:
        return self.settings.data_dir is not None

    async def history(self) -> History:
        """The migrated history database (``History``) of this event loop."""
        loop = asyncio.get_running_loop()
        if self._db is None or self._loop is not loop:
            if self._init_loop is not loop:  # concurrent first uses must not migrate twice
                self._init_lock, self._init_loop = asyncio.Lock(), loop
            async with self._init_lock:
                if self._db is None or self._loop is not loop:
                    url = self.settings.effective_database_url
                    from market_liquidity_monitor.storage import migrations  # Alembic: on first use
                    from market_liquidity_monitor.storage.db import Database
                    from market_liquidity_monitor.storage.outage import db_engine_options

                    await migrations.upgrade_async(url)
                    db = Database(url, **db_engine_options(self.settings, url))  # short timeouts: 503
                    self._db, self._loop, self._lock = db, loop, asyncio.Lock()
        return History(self._db)

    async def coverage(self, venue: str, symbol: str | None) -> list[dict]:
        """Stored series of ``symbol`` (None: every symbol) on ``venue``; on recorded data the
        candle files of ``data_dir`` are imported once when nothing is stored."""
        h = await self.history()
        cov = await h.coverage(venue, symbol)
        if not cov and self.is_recorded and not self._imported:
            async with self._lock:
                if not self._imported:
                    log.info("importing candle files from %s", self.settings.data_dir)
                    from market_liquidity_monitor.storage.importers import import_path

                    await import_path(h.db, self.settings.data_dir, include_recordings=False)
                    self._imported = True
            cov = await h.coverage(venue, symbol)
        return cov

    # ------------------------------------------------------------------ windows

    async def window(
        self,
        venue: str,
        symbol: str,
        lookback_days: float,
        timeframe: str | None = None,
        *,
        extra_candles: int = 0,
        latest_capture: bool = False,
    ) -> CandleWindow:
        """The last ``lookback_days`` (plus ``extra_candles`` earlier candles, e.g. a warm-up).

        Recorded: ending at the last stored candle (``latest_capture``: only series ending within a
        day of the newest are considered). Live: ending at the venue's clock. The timeframe is
        ``timeframe`` or the one ``pick_timeframe`` chooses for the lookback. Raises
        ``NoHistoryError`` (recorded, nothing stored; lists what is) and ``InvalidInputError``
        (a timeframe the venue does not offer, a window larger than ``max_fetch_candles``)."""
        if self.is_recorded or self.engine is None:
            return await self._stored_window(
                venue, symbol, lookback_days, timeframe, extra_candles, latest_capture
            )
        tf = timeframe or self._live_timeframe(venue, lookback_days)
        step = timeframe_ms(tf)
        now_ms = await self.engine.venue_time_ms(venue)
        end_ms = now_ms // step * step  # open of the current candle: excluded (not closed yet)
        start_ms = end_ms - int(lookback_days * 86_400_000) - extra_candles * step
        n = (end_ms - start_ms) // step
        cap = self.settings.data_engine.max_fetch_candles
        if n > cap:
            raise InvalidInputError(
                f"{lookback_days:g} days of {tf} candles is {n:,} candles; at most {cap:,} are fetched for "
                "one question: choose a coarser timeframe (e.g. 1h or 1d) or a shorter lookback"
            )
        return CandleWindow(venue, symbol, tf, start_ms, end_ms, None)

    def _live_timeframe(self, venue: str, lookback_days: float) -> str:
        offered = set((self.engine.exchange(venue).timeframes or {}).keys())
        for max_days, order in _TIMEFRAMES_BY_DAYS:
            if lookback_days <= max_days:
                for tf in order:
                    if not offered or tf in offered:
                        return tf
        return "1h"

    async def _stored_window(self, venue, symbol, lookback_days, timeframe, extra_candles, latest_capture):
        cov = await self.coverage(venue, symbol)
        if not cov:
            h = await self.history()
            raise NoHistoryError(f"No candles stored for {symbol} on {venue}.", await h.coverage(venue, None))
        if latest_capture:
            newest = max(int(c["last_ts_ms"]) for c in cov)
            cov = [c for c in cov if newest - int(c["last_ts_ms"]) <= _SAME_CAPTURE_MS]
        series = next((c for c in cov if c["timeframe"] == timeframe), None) if timeframe else None
        series = series or self.pick_timeframe(cov, lookback_days)
        tf = timeframe or series["timeframe"]
        end_ms = int(series["last_ts_ms"]) + 1
        start_ms = end_ms - int(lookback_days * 86_400_000) - extra_candles * timeframe_ms(tf)
        return CandleWindow(venue, symbol, tf, start_ms, end_ms, series)

    @staticmethod
    def pick_timeframe(coverage: list[dict], lookback_days: float) -> dict | None:
        by_tf = {c["timeframe"]: c for c in coverage}
        for max_days, order in _TIMEFRAMES_BY_DAYS:
            if lookback_days <= max_days:
                for tf in order:
                    if tf in by_tf:
                        return by_tf[tf]
        return next(iter(coverage), None)

    # ------------------------------------------------------------------ loading

    async def candles(self, window: CandleWindow) -> Candles:
        """The candles of ``window``: fetched first where missing (live), then read from storage
        (resampled from a finer stored timeframe when needed). Raises ``NoHistoryError`` when there
        are none, ``VenueUnreachableError`` when a needed fetch fails."""
        h = await self.history()
        stored_before, fetched, requests = 0, 0, 0
        if not self.is_recorded and self.engine is not None:
            stored_before, fetched, requests = await self._fetch_missing(h, window)
        df = await h.candles(window.symbol, window.venue, window.timeframe, window.start_ms, window.end_ms)
        if self.is_recorded or self.engine is None:
            stored_before = len(df)
            clock = "the end of the stored candles (recorded data)"
        else:
            clock = (
                "venue time (ccxt fetch_time)" if self.engine.has_venue_clock(window.venue) else "wall clock"
            )
        source = (
            "storage"
            if not fetched
            else ("ccxt fetch_ohlcv" if not stored_before else "storage + ccxt fetch_ohlcv")
        )
        frame = df.set_index("ts")
        cs = CandleSource(
            venue=window.venue,
            symbol=window.symbol,
            timeframe=window.timeframe,
            source_timeframe=str(df.attrs.get("source_timeframe", window.timeframe)),
            start=iso_ns(window.start_ms * 1_000_000),
            end=iso_ns(window.end_ms * 1_000_000),
            candles=len(frame),
            source=source,
            stored_candles=stored_before,
            fetched_candles=fetched,
            fetch_requests=requests,
            clock=clock,
        )
        return Candles(frame, window, cs)

    async def load(
        self,
        venue: str,
        symbol: str,
        lookback_days: float,
        timeframe: str | None = None,
        *,
        extra_candles: int = 0,
        latest_capture: bool = False,
    ) -> Candles:
        """``window`` then ``candles``."""
        w = await self.window(
            venue,
            symbol,
            lookback_days,
            timeframe,
            extra_candles=extra_candles,
            latest_capture=latest_capture,
        )
        return await self.candles(w)

    async def _fetch_missing(self, h: History, w: CandleWindow) -> tuple[int, int, int]:
        """Fetch the spans of ``w`` never fetched before; returns (stored before, fetched, requests)."""
        step = timeframe_ms(w.timeframe)
        async with h.db.engine.connect() as conn:
            spans = await _repo.candle_fetch_spans(conn, w.venue, w.symbol, w.timeframe, w.start_ms, w.end_ms)
            stored = await _repo.count_candles(conn, w.venue, w.symbol, w.timeframe, w.start_ms, w.end_ms)
        missing = _gaps(w.start_ms, w.end_ms, spans)
        fetched = requests = 0
        for lo, hi in missing:
            n, r = await self._fetch_span(h, w, lo, hi, step)
            fetched += n
            requests += r
        if fetched:
            log.info(
                "%s %s %s: fetched %d candles in %d requests",
                w.venue,
                w.symbol,
                w.timeframe,
                fetched,
                requests,
            )
        return stored, fetched, requests

    async def _fetch_span(self, h: History, w: CandleWindow, lo: int, hi: int, step: int) -> tuple[int, int]:
        cursor, total, requests = lo, 0, 0
        while cursor < hi:
            limit = min(_PAGE, max(1, (hi - cursor) // step))
            rows = await self.engine.ohlcv(w.venue, w.symbol, w.timeframe, since_ms=cursor, limit=limit)
            requests += 1
            rows = [r for r in rows if cursor <= int(r[0]) < hi and None not in r[:6]]
            if rows:
                async with h.db.engine.begin() as conn:
                    cols = list(zip(*rows, strict=False))
                    await _repo.insert_candles(
                        conn, w.venue, w.symbol, w.timeframe, [int(x) for x in cols[0]], *cols[1:6]
                    )
                total += len(rows)
            if not rows:
                break  # the venue has nothing from cursor on (before its listing, or a gap to hi)
            nxt = int(rows[-1][0]) + step
            if nxt <= cursor:
                break
            cursor = nxt
        async with h.db.engine.begin() as conn:
            await _repo.record_candle_fetch(conn, w.venue, w.symbol, w.timeframe, lo, hi, total)
        return total, requests

    async def close(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None


def _gaps(start: int, end: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Parts of ``[start, end)`` not covered by ``spans`` (sorted by start)."""
    out, cursor = [], start
    for a, b in spans:
        if a > cursor:
            out.append((cursor, min(a, end)))
        cursor = max(cursor, b)
        if cursor >= end:
            break
    if cursor < end:
        out.append((cursor, end))
    return [(a, b) for a, b in out if b > a]
