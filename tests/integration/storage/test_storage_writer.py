"""The batched, buffered storage writer: batching, snapshot throttling, bounded buffer with counted drops."""

from __future__ import annotations

import asyncio
import time

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.domain.events import L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.models import book_snapshots, candles, metrics, trades
from market_liquidity_monitor.storage.repositories import count_rows, fetch_book_snapshots
from market_liquidity_monitor.storage.writer import StorageWriter

BTC = InstrumentId("binance", "BTC/USDT")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def trade(i: int) -> Trade:
    return Trade(
        BTC,
        price="61837.63",
        size="0.02",
        side="buy",
        trade_id=str(i),
        ts_event=10**18 + i,
        ts_recv=10**18 + i,
    )


async def test_writes_every_kind_in_batches(db: Database) -> None:
    clock = FakeClock()
    writer = StorageWriter(db, batch_size=100, flush_interval_s=0.05, max_buffer_rows=10_000, clock=clock)
    await writer.start()
    for i in range(1_050):
        writer.submit_trade(trade(i))
    writer.submit_trade(trade(5))  # duplicate trade id: ignored, not an error
    for i in range(10):
        writer.submit_candle("binance", "BTC/USDT", "1m", 1_700_000_000_000 + i * 60_000, 1, 2, 0.5, 1.5, 10)
        writer.submit_metric("binance", "BTC/USDT", "spread_bps", 0.1 * i if i else None, 10**18 + i)
    snap = L2Snapshot(BTC, [("61837.63000000", "3.78826000"), ("61837.62", "1")] * 20, [("61837.64", "1.5")],
                      sequence=7, ts_event=None, ts_recv=10**18)  # fmt: skip
    assert writer.submit_l2_snapshot(snap)
    clock.t += 10  # within the 60 s interval: throttled
    assert not writer.submit_book_snapshot(BTC, snap.bids, snap.asks, 10**18 + 1)
    clock.t += 60
    assert writer.submit_book_snapshot(BTC, snap.bids, snap.asks, 10**18 + 2)
    assert writer.submit_book_snapshot(BTC, snap.bids, snap.asks, 10**18 + 3, force=True)
    await asyncio.sleep(0.2)
    stats = await writer.stop()
    assert stats.submitted == 1_051 + 20 + 3
    assert (
        stats.written == stats.submitted
        and stats.dropped == 0
        and stats.buffered == 0
        and stats.rejected == 0
    )
    assert stats.batches >= 11
    async with db.engine.connect() as conn:
        assert await count_rows(conn, trades) == 1_050
        assert await count_rows(conn, candles) == 10
        assert await count_rows(conn, metrics) == 10
        assert await count_rows(conn, book_snapshots) == 3
        (first, *_) = await fetch_book_snapshots(conn, "binance", "BTC/USDT")
    assert len(first["bids"]) == 20 and first["depth"] == 20  # top N levels only
    assert first["bids"][0] == ["61837.63000000", "3.78826000"]
    assert first["best_bid"] == 61837.63 and first["best_ask"] == 61837.64 and first["sequence"] == 7


async def test_from_settings_and_stop_flushes_partial_batch(db: Database) -> None:
    settings = Settings(data_engine=DataEngineSettings(writer_batch_size=500, writer_flush_interval_s=30))
    writer = StorageWriter.from_settings(settings, db)
    assert writer.batch_size == 500 and writer.book_snapshot_levels == 20
    await writer.start()
    for i in range(7):
        writer.submit_trade(trade(i))
    stats = await writer.stop()  # does not wait for the 30 s interval
    assert stats.written == 7
    async with db.engine.connect() as conn:
        assert await count_rows(conn, trades) == 7


async def test_unreachable_database_buffers_boundedly_and_counts_drops() -> None:
    # Nothing listens on port 9: every connection attempt is refused at once.
    db = Database("postgresql+asyncpg://postgres@127.0.0.1:9/test", connect_timeout_s=1)
    writer = StorageWriter(db, batch_size=10, flush_interval_s=0.01, max_buffer_rows=100,
                           retry_initial_s=0.01, retry_max_s=0.05)  # fmt: skip
    await writer.start()
    try:
        worst = 0.0
        for i in range(250):
            t0 = time.perf_counter()
            writer.submit_trade(trade(i))  # never blocks, never raises
            worst = max(worst, time.perf_counter() - t0)
            if i % 25 == 0:
                await asyncio.sleep(0.02)
        assert worst < 0.05  # microseconds normally; generous for a loaded CI machine
        stats = writer.stats()
        # The buffer holds at most 100 rows; one batch (10) may be out of it, in a failing write.
        assert stats.buffered <= 100
        assert 140 <= stats.dropped <= 150
        assert stats.written == 0
        assert not stats.db_available and stats.failed_attempts >= 1
        assert "refused" in (stats.last_error or "").lower() or "connect" in (stats.last_error or "").lower()
    finally:
        final = await writer.stop(timeout_s=0.5)
        await db.dispose()
    assert final.written == 0
    assert final.dropped == 250  # what was still buffered at stop is reported as dropped too


async def test_invalid_rows_are_rejected_not_retried_forever(db: Database) -> None:
    writer = StorageWriter(db, batch_size=10, flush_interval_s=0.01)
    await writer.start()
    for i in range(5):
        writer.submit_trade(trade(i))
    writer.submit("trades", {"venue": "binance", "symbol": "BTC/USDT", "trade_id": "bad", "ts_event_ns": None,
                             "ts_recv_ns": None, "price": 1.0, "size": 1.0, "side": "buy"})  # fmt: skip
    stats = await writer.stop()
    assert stats.rejected == 1 and stats.written == 5
    async with db.engine.connect() as conn:
        assert await count_rows(conn, trades) == 5


async def test_flush_task_ends_when_cancelled_as_rows_arrive(db: Database) -> None:
    """Cancelling the flush task in the same loop iteration as its wake-up ends it. With
    ``asyncio.wait_for`` around the wake-up wait, Python 3.11 returned the wait's result and dropped
    the cancellation (CPython gh-86296), and the loop waited again: an event loop shutting down
    with a writer still running (a test's teardown) hung until pytest-timeout's 300 s."""
    writer = StorageWriter(db, flush_interval_s=30.0)
    await writer.start()
    task = writer._task
    for _ in range(3):
        await asyncio.sleep(0)  # the task is now waiting for its wake-up
    writer._wakeup.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    assert task in done, "the flush task survived its cancellation"
    assert task.cancelled()
