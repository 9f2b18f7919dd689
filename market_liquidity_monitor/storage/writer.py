"""Batched, buffered writes from the ingest path.

``StorageWriter.submit_*`` never awaits and never raises for database trouble (and may be called from
any thread: replay threads feed the liquidity recorder): it appends the row to an in-memory buffer
and returns, so the ingest loop is never blocked by storage. A background task
flushes the buffer in batches (``batch_size`` rows, or every ``flush_interval_s``), each batch in
one transaction with insert-or-ignore semantics, so a batch retried after an ambiguous failure is
not duplicated.

When the database is unreachable the batch goes back to the front of the buffer and the task retries
with capped exponential back-off and jitter (``retry_initial_s`` .. ``retry_max_s``); rows keep being
buffered meanwhile. The buffer is bounded (``max_buffer_rows``): beyond it the *oldest* rows are
dropped and counted in ``stats().dropped`` (and logged), so a long outage costs the oldest data, not
memory. Rows the database rejects as invalid (not a connection problem) are counted in
``stats().rejected`` and logged, never retried forever.

Periodic book snapshots: ``submit_book_snapshot`` keeps the top ``book_snapshot_levels`` levels and
at most one snapshot per instrument per ``book_snapshot_interval_s`` (``force=True`` bypasses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.events import L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId

if TYPE_CHECKING:  # SQLAlchemy is imported once rows are written (a restored start writes none)
    from market_liquidity_monitor.storage.db import Database

log = logging.getLogger(__name__)

#: The tables ``submit`` accepts (``storage.models.INGEST_TABLES``, by name: the writer is built
#: before any database is used, and importing the models means importing SQLAlchemy).
INGEST_TABLE_NAMES = ("candles", "trades", "book_snapshots", "metrics", "book_metrics", "book_metric_depths")


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the database is not reachable / not usable right now": retry the batch."""
    from sqlalchemy import exc as sa_exc

    return (OSError, TimeoutError, ConnectionError, sa_exc.OperationalError, sa_exc.InterfaceError)


def _is_transient(exc: BaseException) -> bool:
    from sqlalchemy import exc as sa_exc

    transient = _transient_errors()
    if isinstance(exc, transient):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    # asyncpg's connection-level errors (e.g. ConnectionDoesNotExistError, CannotConnectNowError).
    mod = type(exc).__module__
    name = type(exc).__name__
    if mod.startswith("asyncpg") and ("Connection" in name or "CannotConnect" in name):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(cause, transient)


def trade_row(trade: Trade) -> dict[str, Any]:
    """The ``trades`` row of a domain ``Trade`` (its ``ts_event`` or, failing that, ``ts_recv`` is
    the trade time; a trade without an id gets ``<time>-<price>-<size>``)."""
    return {
        "venue": trade.instrument.venue,
        "symbol": trade.instrument.symbol,
        "trade_id": trade.trade_id or f"{trade.ts_event or trade.ts_recv}-{trade.price}-{trade.size}",
        "ts_event_ns": trade.ts_event if trade.ts_event is not None else trade.ts_recv,
        "ts_recv_ns": trade.ts_recv,
        "price": float(trade.price),
        "size": float(trade.size),
        "side": trade.side or None,
    }


def book_snapshot_row(
    instrument: InstrumentId,
    bids: Sequence[tuple[str, str]],
    asks: Sequence[tuple[str, str]],
    ts_recv_ns: int,
    levels: int,
    *,
    ts_event_ns: int | None = None,
    sequence: int | None = None,
) -> dict[str, Any]:
    """The ``book_snapshots`` row of the top ``levels`` levels per side (wire decimal strings, best
    first)."""
    top_bids = [[p, s] for p, s in bids[:levels]]
    top_asks = [[p, s] for p, s in asks[:levels]]
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "ts_recv_ns": ts_recv_ns,
        "ts_event_ns": ts_event_ns,
        "sequence": sequence,
        "depth": levels,
        "best_bid": float(top_bids[0][0]) if top_bids else None,
        "best_ask": float(top_asks[0][0]) if top_asks else None,
        "bids": top_bids,
        "asks": top_asks,
    }


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since start. ``buffered`` rows wait in memory; ``dropped`` were discarded because the
    buffer was full; ``rejected`` were refused by the database as invalid."""

    submitted: int
    written: int
    buffered: int
    dropped: int
    rejected: int
    batches: int
    failed_attempts: int
    db_available: bool
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class StorageWriter:
    """Background batched writer for ``candles``, ``trades``, ``book_snapshots`` and ``metrics``.

    Use ``await start()`` once, ``submit_*`` from the ingest path, ``await stop()`` at shutdown (it
    flushes what it can within ``timeout_s``).
    """

    def __init__(
        self,
        db: Database | None,
        *,
        batch_size: int = 2_000,
        flush_interval_s: float = 1.0,
        max_buffer_rows: int = 200_000,
        retry_initial_s: float = 0.25,
        retry_max_s: float = 10.0,
        book_snapshot_levels: int = 20,
        book_snapshot_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if batch_size < 1 or max_buffer_rows < batch_size:
            raise ValueError("need batch_size >= 1 and max_buffer_rows >= batch_size")
        self.db = db
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.book_snapshot_levels = book_snapshot_levels
        self.book_snapshot_interval_s = book_snapshot_interval_s
        self._clock = clock
        self._buffer: deque[tuple[str, dict[str, Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_book_at: dict[InstrumentId, float] = {}
        self._submitted = 0
        self._written = 0
        self._dropped = 0
        self._rejected = 0
        self._batches = 0
        self._failed_attempts = 0
        self._db_available = True
        self._last_error: str | None = None
        self._dropped_logged = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._write_lock: asyncio.Lock | None = None  # one batch in flight at a time

    @classmethod
    def from_settings(cls, settings: Settings, db: Database | None, **overrides: Any) -> StorageWriter:
        cfg = settings.data_engine
        kwargs: dict[str, Any] = {
            "batch_size": cfg.writer_batch_size,
            "flush_interval_s": cfg.writer_flush_interval_s,
            "max_buffer_rows": cfg.writer_max_buffer_rows,
            "book_snapshot_levels": cfg.book_snapshot_levels,
            "book_snapshot_interval_s": cfg.book_snapshot_interval_s,
        }
        kwargs.update(overrides)
        return cls(db, **kwargs)

    # -- submit (never blocks) ---------------------------------------------------------------
    def submit(self, table: str, row: dict[str, Any]) -> None:
        """Queue one row for ``table`` (one of ``INGEST_TABLES``). Never blocks."""
        if table not in INGEST_TABLE_NAMES:
            raise ValueError(f"Unknown table {table!r}: valid tables are {', '.join(INGEST_TABLE_NAMES)}")
        self._buffer.append((table, row))
        self._submitted += 1
        self._enforce_bound()
        if len(self._buffer) >= self.batch_size:
            self._notify()

    def _notify(self) -> None:
        """Wake the flush task; safe from any thread (a replay thread submits too)."""
        loop = self._loop
        if loop is None:
            return  # not started: start() flushes what is buffered
        if threading.get_ident() == self._loop_thread:
            self._wakeup.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wakeup.set)

    def submit_trade(self, trade: Trade) -> None:
        """Queue a domain ``Trade`` (its ``ts_event`` or, failing that, ``ts_recv`` is the trade time)."""
        self.submit("trades", trade_row(trade))

    def submit_candle(
        self,
        venue: str,
        symbol: str,
        timeframe: str,
        ts_ms: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> None:
        self.submit(
            "candles",
            {
                "venue": venue,
                "symbol": symbol,
                "timeframe": timeframe,
                "ts_ms": ts_ms,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            },
        )

    def submit_metric(self, venue: str, symbol: str, name: str, value: float | None, ts_ns: int) -> None:
        """Queue one metric value (``None`` = could not be computed). Cross-venue metrics: venue ``"all"``."""
        self.submit(
            "metrics", {"venue": venue, "symbol": symbol, "name": name, "ts_ns": ts_ns, "value": value}
        )

    def submit_book_snapshot(
        self,
        instrument: InstrumentId,
        bids: Sequence[tuple[str, str]],
        asks: Sequence[tuple[str, str]],
        ts_recv_ns: int,
        *,
        ts_event_ns: int | None = None,
        sequence: int | None = None,
        force: bool = False,
    ) -> bool:
        """Queue the top ``book_snapshot_levels`` levels (wire decimal strings, best first) unless one
        was queued for this instrument less than ``book_snapshot_interval_s`` ago. Returns whether it
        was queued."""
        now = self._clock()
        last = self._last_book_at.get(instrument)
        if not force and last is not None and now - last < self.book_snapshot_interval_s:
            return False
        self._last_book_at[instrument] = now
        self.submit(
            "book_snapshots",
            book_snapshot_row(
                instrument, bids, asks, ts_recv_ns, self.book_snapshot_levels, ts_event_ns=ts_event_ns,
                sequence=sequence,
            ),
        )  # fmt: skip
        return True

    def submit_l2_snapshot(self, snapshot: L2Snapshot, *, force: bool = False) -> bool:
        """``submit_book_snapshot`` for a domain ``L2Snapshot``."""
        return self.submit_book_snapshot(
            snapshot.instrument,
            snapshot.bids,
            snapshot.asks,
            snapshot.ts_recv,
            ts_event_ns=snapshot.ts_event,
            sequence=snapshot.sequence,
            force=force,
        )

    def _enforce_bound(self) -> None:
        over = len(self._buffer) - self.max_buffer_rows
        if over <= 0:
            return
        for _ in range(over):
            self._buffer.popleft()
        self._dropped += over
        # Log at most once per 10 % of the buffer size, not per row.
        if (
            self._dropped - self._dropped_logged >= max(1, self.max_buffer_rows // 10)
            or self._dropped_logged == 0
        ):
            self._dropped_logged = self._dropped
            log.warning(
                "storage writer buffer full (%d rows, database unavailable: %s); dropped %d oldest rows so far",
                self.max_buffer_rows,
                self._last_error,
                self._dropped,
            )

    # -- background flushing -----------------------------------------------------------------
    def stats(self) -> WriterStats:
        return WriterStats(
            submitted=self._submitted,
            written=self._written,
            buffered=len(self._buffer),
            dropped=self._dropped,
            rejected=self._rejected,
            batches=self._batches,
            failed_attempts=self._failed_attempts,
            db_available=self._db_available,
            last_error=self._last_error,
        )

    async def start(self) -> None:
        """Start the flush task on the running loop (idempotent). ``db`` must be set by then (a
        writer built without one buffers until it is)."""
        if self.db is None:
            raise RuntimeError("StorageWriter.start() needs a database: set writer.db first")
        if self._task is None:
            self._stopping = False
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
            self._wakeup = asyncio.Event()  # of this loop
            self._task = asyncio.create_task(self._run(), name="mlm-storage-writer")

    async def stop(self, timeout_s: float = 10.0) -> WriterStats:
        """Stop the background task after flushing what can be written within ``timeout_s``.
        Rows still buffered after that are counted as dropped."""
        self._stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=timeout_s)
            except TimeoutError:
                log.warning("storage writer: stop timed out with %d rows buffered", len(self._buffer))
        left = len(self._buffer)
        if left:
            self._dropped += left
            self._buffer.clear()
            log.warning("storage writer stopped with %d unwritten rows (counted as dropped)", left)
        return self.stats()

    async def flush(self) -> None:
        """Write everything buffered now, and wait for a batch the flush task has in flight; raises
        the database error if a batch cannot be written."""
        while self._buffer:
            await self._write_one_batch()
        if self._write_lock is not None:
            async with self._write_lock:
                pass

    async def _wait_wakeup(self) -> None:
        """Until rows are submitted or the flush interval passes. ``asyncio.timeout``, not
        ``asyncio.wait_for``: on Python 3.11 a ``wait_for`` whose inner wait completes as the task
        is cancelled swallows the cancellation (CPython gh-86296, fixed in 3.12), and this loop then
        waits again: a writer left to the event loop's shutdown kept it from ever closing (a test
        teardown hung 300 s)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.flush_interval_s):
                await self._wakeup.wait()

    async def _run(self) -> None:
        delay = self.retry_initial_s
        while True:
            if not self._buffer:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wait_wakeup()
                continue
            if len(self._buffer) < self.batch_size and not self._stopping:
                # Let a partial batch fill up until the flush interval passes.
                self._wakeup.clear()
                await self._wait_wakeup()
            try:
                while self._buffer:
                    await self._write_one_batch()
                delay = self.retry_initial_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not _is_transient(exc):
                    raise  # _write_one_batch handles data errors; anything else is a bug
                self._failed_attempts += 1
                self._last_error = f"{type(exc).__name__}: {exc}"[:300]
                if self._db_available:
                    log.warning(
                        "storage writer: database unavailable (%s); buffering, retrying with back-off up to %g s",
                        self._last_error,
                        self.retry_max_s,
                    )
                self._db_available = False
                if self._stopping:
                    return
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.retry_max_s, delay * 2)

    async def _write_one_batch(self) -> None:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            await self._write_one_batch_locked()

    async def _write_one_batch_locked(self) -> None:
        n = min(self.batch_size, len(self._buffer))
        if n == 0:
            return
        batch = [self._buffer.popleft() for _ in range(n)]
        try:
            written = await self._write(batch)
        except BaseException as exc:
            if isinstance(exc, Exception) and not _is_transient(exc):
                # Invalid rows: find and reject the bad ones, write the rest.
                written = await self._write_rowwise(batch, exc)
            else:
                # Not written: back to the front, in order; the bound may drop the oldest.
                self._buffer.extendleft(reversed(batch))
                self._enforce_bound()
                raise
        self._written += written
        self._batches += 1
        if not self._db_available:
            log.info("storage writer: database available again; %d rows still buffered", len(self._buffer))
        self._db_available = True

    async def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> int:
        from market_liquidity_monitor.storage.models import INGEST_TABLES
        from market_liquidity_monitor.storage.repositories import insert_rows

        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, row in batch:
            by_table.setdefault(table, []).append(row)
        async with self.db.begin() as conn:
            for table, rows in by_table.items():
                # Rows with different key sets (e.g. optional columns) go in separate statements.
                groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
                for row in rows:
                    groups.setdefault(tuple(row), []).append(row)
                for group in groups.values():
                    await insert_rows(conn, INGEST_TABLES[table], group)
        return len(batch)

    async def _write_rowwise(
        self, batch: list[tuple[str, dict[str, Any]]], first_error: BaseException
    ) -> int:
        written = 0
        for i, item in enumerate(batch):
            try:
                written += await self._write([item])
            except Exception as exc:
                if _is_transient(exc):
                    self._buffer.extendleft(reversed(batch[i:]))
                    self._enforce_bound()
                    raise
                self._rejected += 1
                self._last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.error("storage writer: rejected a %s row (%s): %r", item[0], self._last_error, item[1])
        log.warning("storage writer: batch failed (%s); wrote %d rows one by one", first_error, written)
        return written
