"""HistoryService: the persisted liquidity history, written while ingest runs and read back as answers.

Writing: a ``LiquidityRecorder`` (``ingest/liquidity_recorder.py``) is the observer of the market's
book store from the moment the container is built, so every event of live ingest or of a replay
(``mlm up``, ``mlm up --data``, the lazy replay of ``mlm ask --data``) is seen; its rows go through
one ``StorageWriter`` (batched, bounded, drop counts in ``/api/status``) into the history database
(``book_metrics``, ``book_metric_depths``, ``book_snapshots``, ``trades``; Alembic schema).

Reading: ``liquidity_history`` answers "how has BTC depth within 10 bps on Binance changed over the
last hour?" and "when was ETH's spread widest today?" from the stored rows only: the series on the
book-time axis, its summary (min / max and when, first / last, change) and the source (tables, row
count, book time range). Windows are relative to a reference time: the wall clock live; on
recorded data the end of the stored history of the books asked about (the recording's end), and
the answer says which.

Fast starts: the service is its market's replay witness (``MarketData.witness``). While a
recording replays it counts the rows the recorder submits per book (``RowTally``) and stores that
record in the recording's disk checkpoint; a later process on the same recordings and the same
history database restores the checkpoint instead of replaying only when the database holds exactly
those rows (per book: the ``book_metrics`` grid points - count, first and last -, a
``book_metric_depths`` row per window each, the ``book_snapshots`` and the distinct trades of the
span) under the same recorder settings, and the recorder then resumes each book's sampling state
as the replay left it. The recorder samples on a fixed grid of book time, so the replay would write
those very rows again (insert-or-ignore). Anything else - another or an empty database, rows
dropped or pruned, other settings, the database not started yet - replays, which writes them.

Retention (live only): ``prune(now_ns)`` keeps one row per ``history_downsample_interval_s`` for
rows older than ``history_downsample_after_days`` and deletes rows older than
``history_retention_days`` (``DataEngineSettings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from market_liquidity_monitor.analytics.liquidity import Result
from market_liquidity_monitor.domain.errors import InvalidInputError, UnknownSymbolError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.ingest.liquidity_recorder import LiquidityRecorder, RowTally
from market_liquidity_monitor.storage.history import NoHistoryError, to_ms
from market_liquidity_monitor.storage.writer import StorageWriter

if TYPE_CHECKING:
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.market_data import MarketData
    from market_liquidity_monitor.services.candles import CandleService

log = logging.getLogger(__name__)

__all__ = [
    "HISTORY_METRICS",
    "HistoryService",
    "HistorySource",
    "LiquidityHistoryAnswer",
    "LiquidityPoint",
    "LiquiditySeries",
    "SeriesSummary",
]

#: metric -> (table, what it is, unit when it has none to choose). Depth metrics take ``unit``
#: ``quote`` (notional, quote currency) or ``base`` (base asset) and a ``window_bps``.
HISTORY_METRICS: dict[str, tuple[str, str]] = {
    "depth": ("book_metric_depths", "bid + ask depth within window_bps of mid"),
    "bid_depth": ("book_metric_depths", "bid depth within window_bps of mid"),
    "ask_depth": ("book_metric_depths", "ask depth within window_bps of mid"),
    "imbalance": ("book_metric_depths", "(bid - ask) / (bid + ask) base size within window_bps, in [-1, 1]"),
    "spread_bps": ("book_metrics", "(best ask - best bid) / mid x 1e4, bps"),
    "mid": ("book_metrics", "(best bid + best ask) / 2, quote units"),
    "microprice": ("book_metrics", "size-weighted mid (Stoikov 2018), quote units"),
}
_DEPTH_METRICS = ("depth", "bid_depth", "ask_depth")
_DAY_NS = 86_400 * 1_000_000_000
MAX_LOOKBACK_S = 366 * 86_400
#: Longest wait for the "are this recording's rows stored?" query before replaying instead.
WITNESS_TIMEOUT_S = 10.0
#: A SQLite file changed less than this long before a witness check is not vouched for: a write in
#: the same tick of the file system's clock could leave its size and times unchanged (``_vouch``).
VOUCH_MIN_AGE_NS = 2_000_000_000


class LiquidityPoint(Result):
    ts: str  # ISO 8601 UTC, book time
    ts_ns: int
    value: float | None  # None: the book was not synced (or a side empty) then


class SeriesSummary(Result):
    """Over the non-null points of one series (or of several: ``venue`` of the extreme says which)."""

    points: int  # stored samples in the window
    valid_points: int  # with a value
    min: float | None
    min_ts: str | None  # first time the minimum occurred
    min_venue: str | None = None
    max: float | None
    max_ts: str | None
    max_venue: str | None = None
    first: float | None
    first_ts: str | None
    last: float | None
    last_ts: str | None
    change: float | None  # last - first
    change_pct: float | None  # (last / first - 1) x 100; None when first is 0
    reason: str | None = None  # why a figure is None


class LiquiditySeries(Result):
    venue: str
    symbol: str
    points: list[LiquidityPoint]  # oldest first; thinned to max_points (summary uses every point)
    thinned_from: int | None  # stored points before thinning, None when not thinned
    summary: SeriesSummary
    stale_points: int  # samples flagged stale
    unsynced_points: int  # samples whose book was not synced


class HistorySource(Result):
    kind: str  # "stored rows"
    tables: list[str]
    rows: int  # rows read from the database
    database: str  # dialect: sqlite / postgresql
    first_ts: str | None  # book time range of the rows read
    last_ts: str | None
    interval_s: float  # cadence the rows were written at
    reference: str  # what "now" is: "wall clock" or "end of the stored history (recorded data)"
    reference_ts: str


class LiquidityHistoryAnswer(Result):
    symbol: str
    venue: str | None  # None: every venue that has the asset
    metric: str
    metric_description: str
    unit: str
    window_bps: float | None
    start: str
    end: str
    window: str  # the window in words, e.g. "last 1 h before the end of the recording (...)"
    series: list[LiquiditySeries]
    summary: SeriesSummary  # across every series
    source: HistorySource
    notes: list[str]


def _fmt_lookback(s: float) -> str:
    if s % 86_400 == 0:
        return f"{s / 86_400:g} d"
    if s % 3600 == 0:
        return f"{s / 3600:g} h"
    if s % 60 == 0:
        return f"{s / 60:g} min"
    return f"{s:g} s"


def summarize(points: list[tuple[int, float | None, str]]) -> SeriesSummary:
    """Summary of ``(ts_ns, value, venue)`` points (oldest first); extremes at their first occurrence."""
    valid = [(t, v, ven) for t, v, ven in points if v is not None and math.isfinite(v)]
    if not valid:
        return SeriesSummary(
            points=len(points), valid_points=0, min=None, min_ts=None, max=None, max_ts=None, first=None,
            first_ts=None, last=None, last_ts=None, change=None, change_pct=None,
            reason="no sample in the window had a synced book with both sides" if points else "no samples",
        )  # fmt: skip
    lo = min(valid, key=lambda p: (p[1], p[0]))
    hi = max(valid, key=lambda p: (p[1], -p[0]))
    first, last = valid[0], valid[-1]
    change = last[1] - first[1]
    return SeriesSummary(
        points=len(points),
        valid_points=len(valid),
        min=lo[1],
        min_ts=iso_ns(lo[0]),
        min_venue=lo[2],
        max=hi[1],
        max_ts=iso_ns(hi[0]),
        max_venue=hi[2],
        first=first[1],
        first_ts=iso_ns(first[0]),
        last=last[1],
        last_ts=iso_ns(last[0]),
        change=change,
        change_pct=None if first[1] == 0 else (last[1] / first[1] - 1.0) * 100.0,
        reason=None if first[1] != 0 else "change_pct: the first value is 0",
    )


def _thin(points: list[LiquidityPoint], max_points: int) -> list[LiquidityPoint]:
    """Every k-th point (k = ceil(n / max_points)), plus the last and each extreme, oldest first."""
    n = len(points)
    if n <= max_points:
        return points
    k = math.ceil(n / max_points)
    keep = set(range(0, n, k)) | {n - 1}
    vals = [(i, p.value) for i, p in enumerate(points) if p.value is not None]
    if vals:
        keep.add(min(vals, key=lambda x: x[1])[0])
        keep.add(max(vals, key=lambda x: x[1])[0])
    return [points[i] for i in sorted(keep)]


class HistoryService:
    """The liquidity history of a process (module doc): recorder + writer + queries."""

    def __init__(self, settings: Settings, market: MarketData, candles: CandleService):
        self.settings = settings
        self.market = market
        self.candles = candles
        cfg = settings.data_engine
        self.interval_s = cfg.history_interval_s
        self.windows_bps = tuple(float(w) for w in settings.analytics.depth_windows_bps)
        self.writer = StorageWriter.from_settings(settings, None)
        self.recorder: LiquidityRecorder | None = None
        if cfg.history_enabled:
            self.recorder = LiquidityRecorder(
                market.store,
                self.writer,
                windows_bps=self.windows_bps,
                interval_s=cfg.history_interval_s,
                snapshot_interval_s=cfg.book_snapshot_interval_s,
                snapshot_levels=cfg.book_snapshot_levels,
                record_trades=cfg.history_record_trades,
                adapter_for=market.registry,
            ).attach()
            market.witness = self
        self._db: Any = None
        self._closed = False  # set by close(): a replay ending after it records no history
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._start_lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task] = []
        self._connecting: asyncio.Task | None = None  # a connect begun on the loop thread (``begin``)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> StorageWriter:
        """Connect the writer to the history database (migrated) and start flushing (idempotent).
        Live, also the quiet-book tick and the retention job."""
        if self._db is not None:
            return self.writer
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._db is None:
                db = (await self.candles.history()).db
                self.writer.db = db
                await self.writer.start()
                self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
                self._db = db
                if not self.market.is_recorded and self.recorder is not None:
                    self._tasks.append(asyncio.create_task(self._tick_loop(), name="mlm-history-tick"))
                    self._tasks.append(asyncio.create_task(self._prune_loop(), name="mlm-history-prune"))
        return self.writer

    def bind_loop(self) -> None:
        """Start without connecting (``Services(defer_storage=True)``: a one-shot command on
        recorded data): remember the running event loop; the database is connected (and migrated)
        on first use - before a replay writes rows (``begin``), when a witness check needs the
        database (``accept``) or a query runs (``flush``). A start that restores every recording
        whose rows are vouched for (``accept``) never opens it."""
        if self._loop is None:
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()

    async def _start_logged(self) -> None:
        try:
            await self.start()
        except Exception as exc:  # as Services.start: the writer buffers, the witness replays
            log.warning("liquidity history: storage not available (%s); rows are buffered", exc)

    def _connect_now(self) -> None:
        """Connect a loop-bound (``bind_loop``), unconnected service from synchronous code: from
        another thread wait for it (at most ``WITNESS_TIMEOUT_S``); on the loop's own thread
        (which cannot wait for itself) schedule it: the writer flushes once the loop runs again."""
        loop = self._loop
        if self._db is not None or self._closed or loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            if self._connecting is None:
                self._connecting = loop.create_task(self._start_logged(), name="mlm-history-connect")
            return
        fut = asyncio.run_coroutine_threadsafe(self._start_logged(), loop)
        try:
            fut.result(timeout=WITNESS_TIMEOUT_S)
        except Exception as exc:
            fut.cancel()
            log.warning("liquidity history: storage not connected (%s); rows are buffered", exc)

    async def close(self) -> None:
        """Stop the background jobs and flush what the writer holds (idempotent)."""
        if self._connecting is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
            self._connecting = None
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        # The producer first: a replay still running in a worker thread (the API's warm-up) would
        # otherwise keep submitting rows while the writer drains, and the stop time out with rows
        # dropped (CI: "stop timed out with 267 rows buffered"). A replay cut short this way writes a
        # checkpoint without a history record (``end`` returns None), so the next start replays it.
        self._closed = True
        if self.recorder is not None:
            self.recorder.detach()
        if self._db is not None:
            await self.writer.stop()
            self._db = None
        if self.market.witness is self:
            self.market.witness = None

    # ------------------------------------------------------------------ replay witness

    def begin(self) -> RowTally | None:
        """Before a replay (``MarketData.witness``): count what the recorder submits. A service
        started without connecting (``bind_loop``) connects first, so the replay's rows are
        written while it runs."""
        if self.recorder is None:
            return None
        self._connect_now()
        return self.recorder.start_tally()

    def end(self, tally: RowTally | None, instruments: Any) -> dict | None:
        """After a replay: the record of the rows submitted for ``instruments`` and each book's
        sampling state (module doc), JSON-safe; None without a recorder."""
        if tally is None or self.recorder is None:
            return None
        self.recorder.stop_tally(tally)
        if self._closed:
            return None  # detached mid-replay (close): the tally is short of the replay's rows
        books = []
        for inst in sorted(instruments):
            st = self.recorder.book_state(inst)
            if st is None:
                continue
            m = tally.metrics.get(inst)
            sn = tally.snapshots.get(inst)
            tr = tally.trades.get(inst)
            books.append({
                "venue": inst.venue, "symbol": inst.symbol, "step": st[0], "last_snapshot_ns": st[1],
                "metrics": m, "snapshots": sn,
                "trades": None if tr is None else [len(tally.trade_ids[inst]), tr[0], tr[1]],
            })  # fmt: skip
        return {"params": self.recorder.params, "books": books}

    def accept(self, record: dict) -> bool:
        """At a restore: True when the history database holds every row of ``record`` (``end``)
        under this recorder's settings; the recorder then resumes each book's state. False
        (replay) otherwise, also when the service is neither started nor bound to a loop
        (``bind_loop``: it connects now) or the database does not answer within
        ``WITNESS_TIMEOUT_S``. A load on the service's own event loop (a synchronous caller)
        asks through a private engine on a private loop; any other thread through the service's
        loop.

        Vouchers (SQLite files only): after a check that found the rows, the database file's
        identity (device, inode, size, mtime and ctime in ns of the file and of a non-empty
        ``-wal`` / ``-journal``) is kept next to the checkpoints (``_vouch``). While that identity
        is unchanged no process has written the file, so the rows are still exactly those found:
        the record is accepted without opening the database (``_vouched``). Any write changes the
        identity and the full check runs again; PostgreSQL always gets the full check."""
        rec = self.recorder
        if rec is None or record.get("params") != rec.params:
            return False
        try:
            books = [
                (InstrumentId(str(b["venue"]), str(b["symbol"])), int(b["step"]), b["last_snapshot_ns"],
                 b["metrics"], b["snapshots"], b["trades"])
                for b in record["books"]
            ]  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return False
        if any(rec.book_state(b[0]) is not None for b in books):
            return False  # the recorder has sampled these books already: replaying merges
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        url = self._db.url if self._db is not None else self.settings.effective_database_url
        voucher = self._voucher(url, record)
        if voucher is not None and _identity_matches(voucher):
            stored = True
        else:
            before_ns = time.time_ns()
            before = None if voucher is None else sqlite_identity(voucher[1])
            try:
                stored = self._check_rows(loop, books)
            except Exception as exc:  # database down or slow: replaying writes the rows
                log.warning("liquidity history: stored rows not checked (%s); replaying", exc)
                return False
            if stored and voucher is not None:
                _vouch(voucher, before, before_ns)
        if not stored:
            return False
        for inst, step, last_snapshot_ns, *_ in books:
            rec.resume_book(inst, step, None if last_snapshot_ns is None else int(last_snapshot_ns))
        return True

    def _check_rows(self, loop: asyncio.AbstractEventLoop, books: list[tuple]) -> bool:
        """The full witness check (``_rows_stored``) from the calling thread (``accept``)."""
        db = self._db
        if threading.get_ident() == self._loop_thread:
            # A synchronous load on the service's own loop (e.g. listing every instrument loads
            # the small captures), which blocks the loop anyway: ask through a private engine on
            # a private loop (run_sync: a helper thread).
            from market_liquidity_monitor.storage.db import run_sync

            if db is not None:
                url, schema = db.url, db.schema
            else:  # bound, not connected: the database the service would connect to
                url, schema = self.settings.effective_database_url, None
                db_file = sqlite_file(url)
                if db_file is not None and not db_file.exists():
                    return False  # nothing stored yet (and no empty file created here)
            return run_sync(lambda: self._rows_stored_privately(url, schema, books))
        fut = asyncio.run_coroutine_threadsafe(self._rows_stored_connected(books), loop)
        try:
            return fut.result(timeout=WITNESS_TIMEOUT_S)
        except BaseException:
            fut.cancel()
            raise

    async def _rows_stored_connected(self, books: list[tuple]) -> bool:
        if self._db is None:  # bound to the loop, not connected yet (bind_loop)
            await self.start()
        return await self._rows_stored(self._db, books)

    def _voucher(self, url: str, record: dict) -> tuple[Path, Path] | None:
        """``(voucher file, SQLite file)`` for ``record`` on the database ``url``; None when the
        database is not a SQLite file or there is no checkpoint directory to keep it in."""
        db_file = sqlite_file(url)
        cache = getattr(self.market, "checkpoints", None)
        if db_file is None or cache is None:
            return None
        digest = hashlib.sha256(
            orjson.dumps({"db": str(db_file), "record": record}, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        return Path(cache.directory) / f"witness-{digest}.json", db_file

    async def _rows_stored_privately(self, url: str, schema: str | None, books: list[tuple]) -> bool:
        from market_liquidity_monitor.storage.db import Database

        db = Database(url, schema=schema)
        try:
            return await asyncio.wait_for(self._rows_stored(db, books), WITNESS_TIMEOUT_S)
        finally:
            await db.dispose()

    async def _rows_stored(self, db: Any, books: list[tuple]) -> bool:
        """True when, per book, the stored rows of each table in the record's span are exactly
        the record's (counts, first and last; ``book_metrics`` on the recorder's grid)."""
        from sqlalchemy import and_, func, select

        from market_liquidity_monitor.storage.models import (
            book_metric_depths,
            book_metrics,
            book_snapshots,
            trades,
        )

        rec = self.recorder
        grid = rec.interval_ns
        windows = list(rec.windows_bps)
        m, d, s, t = book_metrics.c, book_metric_depths.c, book_snapshots.c, trades.c
        async with db.engine.connect() as conn:
            for inst, _step, _snap, metrics, snaps, trs in books:
                if metrics is not None:
                    n, first, last = (int(x) for x in metrics)
                    span = and_(m.venue == inst.venue, m.symbol == inst.symbol, m.ts_ns >= first,
                                m.ts_ns <= last, m.ts_ns % grid == 0)  # fmt: skip
                    got = (await conn.execute(select(func.count(), func.min(m.ts_ns), func.max(m.ts_ns))
                                              .where(span))).one()  # fmt: skip
                    if tuple(got) != (n, first, last):
                        return False
                    dspan = and_(d.venue == inst.venue, d.symbol == inst.symbol, d.ts_ns >= first,
                                 d.ts_ns <= last, d.ts_ns % grid == 0, d.window_bps.in_(windows))  # fmt: skip
                    if (await conn.execute(select(func.count()).where(dspan))).scalar_one() != n * len(
                        windows
                    ):
                        return False
                # snapshots and trades: the row count of the tallied span
                for tally, table, ts in ((snaps, s, s.ts_recv_ns), (trs, t, t.ts_event_ns)):
                    if tally is None:
                        continue
                    n, first, last = (int(x) for x in tally)
                    span = and_(
                        table.venue == inst.venue, table.symbol == inst.symbol, ts >= first, ts <= last
                    )
                    if (await conn.execute(select(func.count()).where(span))).scalar_one() != n:
                        return False
        return True

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.recorder.tick(time.time_ns())

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.data_engine.history_prune_every_s)
            try:
                await self.prune(time.time_ns())
            except Exception:
                log.exception("liquidity history: pruning failed")

    async def prune(self, now_ns: int) -> dict[str, int]:
        """Downsample and delete old rows (module doc) relative to ``now_ns``. Rows are on a grid of
        ``history_interval_s``, so downsampling keeps those whose time is a multiple of
        ``history_downsample_interval_s``. Returns rows deleted per table."""
        from sqlalchemy import and_, delete

        from market_liquidity_monitor.storage.models import book_metric_depths, book_metrics

        cfg = self.settings.data_engine
        db = self._db or (await self.candles.history()).db
        out = {"book_metrics": 0, "book_metric_depths": 0}
        coarse_ns = round(cfg.history_downsample_interval_s * 1e9)
        async with db.begin() as conn:
            for table in (book_metrics, book_metric_depths):
                n = 0
                if cfg.history_retention_days > 0:
                    cut = now_ns - round(cfg.history_retention_days * _DAY_NS)
                    n += (await conn.execute(delete(table).where(table.c.ts_ns < cut))).rowcount or 0
                if cfg.history_downsample_after_days > 0 and coarse_ns > round(self.interval_s * 1e9):
                    cut = now_ns - round(cfg.history_downsample_after_days * _DAY_NS)
                    stmt = delete(table).where(and_(table.c.ts_ns < cut, table.c.ts_ns % coarse_ns != 0))
                    n += (await conn.execute(stmt)).rowcount or 0
                out[table.name] = n
        return out

    async def flush(self) -> None:
        """Write every row the recorder has queued (the history then answers up to now)."""
        await self.start()
        await self.writer.flush()

    # ------------------------------------------------------------------ queries

    def _instruments(self, symbol: str, venue: str | None) -> list[InstrumentId]:
        if venue is not None:
            return [self.market.resolve(symbol, venue)]
        found = []
        for v in self.market.venues():
            try:
                found.append(self.market.resolve(symbol, v))
            except UnknownSymbolError:
                continue
        if not found:
            self.market.resolve(symbol)  # raises UnknownSymbolError naming what there is
        return found

    async def liquidity_history(
        self,
        symbol: str,
        venue: str | None = None,
        metric: str = "depth",
        window_bps: float | None = None,
        *,
        start: Any = None,
        end: Any = None,
        lookback_s: float | None = None,
        period: Literal["today"] | None = None,
        unit: Literal["quote", "base"] = "quote",
        max_points: int = 600,
    ) -> LiquidityHistoryAnswer:
        """The stored liquidity history of ``symbol`` on ``venue`` (None: every venue listing it).

        ``metric``: one of ``HISTORY_METRICS`` (depth metrics need ``window_bps``, one of the
        recorded windows ``analytics.depth_windows_bps``; default ``analytics.default_window_bps``
        when recorded, else the widest); ``unit`` for depth: ``quote`` (notional) or ``base``.
        Window: ``start``/``end`` (epoch ms, datetime or ISO text), or ``lookback_s`` seconds
        before the reference time, or ``period="today"`` (UTC midnight of the reference day to
        it); none = everything stored. Reference time: module doc. ``max_points`` (10..10000)
        thins the returned points, never the summary.

        Raises ``InvalidInputError`` (bad metric, unit, window, times; the message lists what is
        valid), ``UnknownSymbolError``/``UnknownVenueError``, ``NoHistoryError`` when no row is
        stored for the books in the window (it says what is stored).
        """
        if metric not in HISTORY_METRICS:
            raise InvalidInputError(
                f"Unknown metric {metric!r}: valid metrics are {', '.join(HISTORY_METRICS)}"
            )
        if unit not in ("quote", "base"):
            raise InvalidInputError(f"Unknown unit {unit!r}: use 'quote' (notional) or 'base' (base asset)")
        if not (isinstance(max_points, int) and 10 <= max_points <= 10_000):
            raise InvalidInputError(f"max_points must be an integer in [10, 10000], got {max_points!r}")
        per_window = HISTORY_METRICS[metric][0] == "book_metric_depths"
        if per_window:
            if window_bps is None:
                d = float(self.settings.analytics.default_window_bps)
                window_bps = d if d in self.windows_bps else max(self.windows_bps)
            try:
                window_bps = float(window_bps)
            except (TypeError, ValueError):
                window_bps = math.nan
            if window_bps not in self.windows_bps:
                raise InvalidInputError(
                    f"window_bps {window_bps!r} is not recorded: the history has depth within "
                    f"{', '.join(f'{w:g}' for w in self.windows_bps)} bps (MLM_ANALYTICS__DEPTH_WINDOWS_BPS)"
                )
        else:
            window_bps = None
        if lookback_s is not None:
            try:
                lookback_s = float(lookback_s)
            except (TypeError, ValueError):
                lookback_s = math.nan
            if not (0 < lookback_s <= MAX_LOOKBACK_S):
                raise InvalidInputError(
                    f"lookback_s must be a number of seconds in (0, {MAX_LOOKBACK_S}], got {lookback_s!r}"
                )
        if period not in (None, "today"):
            raise InvalidInputError(f"Unknown period {period!r}: the only period is 'today'")
        start_ms, end_ms = to_ms(start), to_ms(end)

        insts = await asyncio.to_thread(self._instruments, symbol, venue)
        if self.market.is_recorded:
            for inst in insts:
                await asyncio.to_thread(self.market.ensure_loaded, inst)
        await self.flush()
        db = self._db
        from sqlalchemy import func, select

        from market_liquidity_monitor.storage.models import book_metrics

        # Reference time ("now").
        async with db.engine.connect() as conn:
            bounds = (
                await conn.execute(
                    select(func.min(book_metrics.c.ts_ns), func.max(book_metrics.c.ts_ns)).where(
                        _books_clause(book_metrics, insts)
                    )
                )
            ).one()
        stored_first, stored_last = bounds
        if stored_last is None:
            raise NoHistoryError(
                f"No liquidity history is stored for {', '.join(str(i) for i in insts)}: it is written "
                f"while ingest runs (mlm up, or on recorded data with --data)."
            )
        if self.market.is_recorded:
            ref_ns, ref_text = (
                int(stored_last),
                "end of the stored history (recorded data: the recording's clock)",
            )
        else:
            ref_ns, ref_text = time.time_ns(), "wall clock"
        end_ns = end_ms * 1_000_000 if end_ms is not None else ref_ns
        if start_ms is not None:
            start_ns, words = start_ms * 1_000_000, f"{iso_ns(start_ms * 1_000_000)} to {iso_ns(end_ns)}"
        elif lookback_s is not None:
            start_ns = end_ns - round(lookback_s * 1e9)
            words = f"last {_fmt_lookback(lookback_s)} before {iso_ns(end_ns)}"
        elif period == "today":
            day = datetime.fromtimestamp(end_ns / 1e9, tz=UTC).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            start_ns = int(day.timestamp()) * 1_000_000_000
            words = f"today (UTC): {iso_ns(start_ns)} to {iso_ns(end_ns)}"
        else:
            start_ns, words = (
                int(stored_first),
                f"everything stored: {iso_ns(int(stored_first))} to {iso_ns(end_ns)}",
            )
        if end_ms is None and start_ms is None:
            words += f" ({'where the stored recording ends' if self.market.is_recorded else 'now'})"
        if start_ns > end_ns:
            raise InvalidInputError(f"start {iso_ns(start_ns)} is after end {iso_ns(end_ns)}")

        rows_read = 0
        series: list[LiquiditySeries] = []
        everything: list[tuple[int, float | None, str]] = []
        first_seen: int | None = None
        last_seen: int | None = None
        notes: list[str] = []
        async with db.engine.connect() as conn:
            for inst in insts:
                pts = await self._read(conn, inst, metric, window_bps, unit, start_ns, end_ns)
                rows_read += len(pts) * (2 if per_window else 1)
                if not pts:
                    notes.append(f"{inst.venue} {inst.symbol}: no stored sample in the window")
                    continue
                first_seen = pts[0][0] if first_seen is None else min(first_seen, pts[0][0])
                last_seen = pts[-1][0] if last_seen is None else max(last_seen, pts[-1][0])
                triples = [(t, v, inst.venue) for t, v, _s, _u in pts]
                everything.extend(triples)
                points = [LiquidityPoint(ts=iso_ns(t), ts_ns=t, value=v) for t, v, _s, _u in pts]
                thinned = _thin(points, max_points)
                series.append(
                    LiquiditySeries(
                        venue=inst.venue,
                        symbol=inst.symbol,
                        points=thinned,
                        thinned_from=len(points) if len(thinned) < len(points) else None,
                        summary=summarize(triples),
                        stale_points=sum(1 for p in pts if p[2]),
                        unsynced_points=sum(1 for p in pts if not p[3]),
                    )
                )
        if not series:
            raise NoHistoryError(
                f"No liquidity history of {symbol} in the window ({words}); stored: "
                f"{iso_ns(int(stored_first))} to {iso_ns(int(stored_last))}."
            )
        everything.sort(key=lambda p: p[0])
        if metric in _DEPTH_METRICS:
            u = "quote currency (notional)" if unit == "quote" else "base asset"
        elif metric == "imbalance":
            u = "ratio in [-1, 1]"
        elif metric == "spread_bps":
            u = "bps"
        else:
            u = "quote currency"
        return LiquidityHistoryAnswer(
            symbol=symbol,
            venue=venue,
            metric=metric,
            metric_description=HISTORY_METRICS[metric][1],
            unit=u,
            window_bps=window_bps,
            start=iso_ns(start_ns),
            end=iso_ns(end_ns),
            window=words,
            series=series,
            summary=summarize(everything),
            source=HistorySource(
                kind="stored rows",
                tables=["book_metrics", "book_metric_depths"] if per_window else ["book_metrics"],
                rows=rows_read,
                database=db.dialect,
                first_ts=iso_ns(first_seen),
                last_ts=iso_ns(last_seen),
                interval_s=self.interval_s,
                reference=ref_text,
                reference_ts=iso_ns(ref_ns),
            ),
            notes=notes,
        )

    async def depth_series(
        self, venue: str, symbol: str, window_bps: float, unit: str = "notional"
    ) -> tuple[list[int], list[float], int] | None:
        """Bid + ask depth within ``window_bps`` of one book from every stored row with a value:
        ``(ts_ns, depth, rows read)``, oldest first; ``unit`` ``notional`` (quote) or ``size``
        (base). None when nothing is stored, the window is not recorded or the database is down
        (crunch detection then falls back to its in-memory samples)."""
        w = float(window_bps)
        if w not in self.windows_bps:
            return None
        try:
            await self.flush()
            u = "quote" if unit == "notional" else "base"
            async with self._db.engine.connect() as conn:
                pts = await self._read(conn, InstrumentId(venue, symbol), "depth", w, u, 0, 2**62)
        except Exception as exc:
            log.warning("liquidity history: depth of %s %s not read (%s)", venue, symbol, exc)
            return None
        ts = [t for t, v, _s, _y in pts if v is not None]
        vals = [v for _t, v, _s, _y in pts if v is not None]
        return (ts, vals, len(pts)) if ts else None

    async def _read(
        self, conn: Any, inst: InstrumentId, metric: str, window_bps: float | None, unit: str,
        start_ns: int, end_ns: int,
    ) -> list[tuple[int, float | None, bool, bool]]:  # fmt: skip
        """``(ts_ns, value, stale, synced)`` of one book in ``[start_ns, end_ns]``, oldest first."""
        from sqlalchemy import and_, select

        from market_liquidity_monitor.storage.models import book_metric_depths, book_metrics

        m = book_metrics.c
        where = and_(m.venue == inst.venue, m.symbol == inst.symbol, m.ts_ns >= start_ns, m.ts_ns <= end_ns)
        if metric in ("spread_bps", "mid", "microprice"):
            stmt = select(m.ts_ns, m[metric], m.stale, m.synced).where(where).order_by(m.ts_ns)
            return [(int(t), v, bool(s), bool(y)) for t, v, s, y in (await conn.execute(stmt)).all()]
        d = book_metric_depths.c
        cols = (d.imbalance,) if metric == "imbalance" else (d[f"bid_{unit}"], d[f"ask_{unit}"])
        stmt = (
            select(m.ts_ns, m.stale, m.synced, *cols)
            .select_from(
                book_metrics.join(
                    book_metric_depths,
                    and_(
                        d.venue == m.venue,
                        d.symbol == m.symbol,
                        d.ts_ns == m.ts_ns,
                        d.window_bps == window_bps,
                    ),
                )
            )
            .where(where)
            .order_by(m.ts_ns)
        )
        out = []
        for row in (await conn.execute(stmt)).all():
            t, stale, synced = int(row[0]), bool(row[1]), bool(row[2])
            if metric == "imbalance" or metric == "bid_depth":
                v = row[3]
            elif metric == "ask_depth":
                v = row[4]
            else:
                v = None if row[3] is None or row[4] is None else row[3] + row[4]
            out.append((t, v, stale, synced))
        return out


def _books_clause(table: Any, insts: list[InstrumentId]) -> Any:
    from sqlalchemy import and_, or_

    return or_(*(and_(table.c.venue == i.venue, table.c.symbol == i.symbol) for i in insts))


# ---------------------------------------------------------------------- witness vouchers


def sqlite_file(url: str) -> Path | None:
    """The absolute path of the file of a SQLite URL (``sqlite[+driver]:///path``); None for any
    other database, an in-memory one or a URI-style (``?uri=true``) one."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return None
    path, _, query = rest.partition("?")
    if not path or path == ":memory:" or "uri=true" in query.lower():
        return None
    return Path(os.path.abspath(path))


def sqlite_identity(db_file: Path) -> list | None:
    """What changes whenever a process writes the SQLite database ``db_file``: per file holding
    its content (the database, and its ``-wal`` / ``-journal`` when not empty), ``[st_dev, st_ino,
    st_size, st_mtime_ns, st_ctime_ns]`` (None for an absent or empty journal). None when the
    database file does not exist. ``st_ctime`` cannot be set back by a process (``utime`` sets
    only atime and mtime), and replacing the file changes the inode."""
    out: list = []
    for suffix in ("", "-wal", "-journal"):
        try:
            st = os.stat(f"{db_file}{suffix}")
        except FileNotFoundError:
            if not suffix:
                return None
            out.append(None)
            continue
        if suffix and st.st_size == 0:  # an empty WAL or journal holds no page
            out.append(None)
            continue
        out.append([st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return out


def _identity_matches(voucher: tuple[Path, Path]) -> bool:
    """True when the voucher file exists, names this database and holds its current identity."""
    path, db_file = voucher
    try:
        kept = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(kept, dict) or kept.get("db") != str(db_file):
        return False
    now = sqlite_identity(db_file)
    return now is not None and kept.get("identity") == now


def _vouch(voucher: tuple[Path, Path], before: list | None, before_ns: int) -> None:
    """Keep the identity of the database whose rows a check (begun at ``before_ns``, wall clock)
    just found: only when it did not change during the check (``before``) and its last change is
    at least ``VOUCH_MIN_AGE_NS`` older than the check (a write in the same tick of the file
    system's clock could leave the identity as it was: the "racy" case of git's index). Written
    atomically; a failure to write only costs the next process a full check."""
    path, db_file = voucher
    after = sqlite_identity(db_file)
    if before is None or after != before:
        return
    if max(f[4] for f in after if f is not None) > before_ns - VOUCH_MIN_AGE_NS:
        return
    body = orjson.dumps({"db": str(db_file), "identity": after})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("liquidity history: voucher %s not written (%s)", path, exc)
