"""The liquidity recorder's sampling rule on a hand-made Binance book (real adapter and BookStore),
and the history's retention on a migrated SQLite file (rows checked with plain SQL).

Sampling: a row at each grid point T = k x interval that an event passes, showing the book as it
stood just before that event; ``tick`` samples quiet books (stale once older than stale_after_ms);
a book that is not synced gets a row of flags and no figures.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from decimal import Decimal

import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.events import L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.liquidity_recorder import LiquidityRecorder
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.services.candles import CandleService
from market_liquidity_monitor.services.history import HistoryService
from market_liquidity_monitor.venues.registry import AdapterRegistry

BTC = InstrumentId("binance", "BTC/USDT")
S = 1_000_000_000
T0 = 1_723_161_300 * S  # a whole second


class ListSink:
    def __init__(self):
        self.rows: dict[str, list[dict]] = defaultdict(list)

    def submit(self, table: str, row: dict) -> None:
        self.rows[table].append(row)


def _snap(ts: int, bid: str, ask: str, seq: int) -> L2Snapshot:
    return L2Snapshot(BTC, [(bid, "2.0"), ("99.0", "1.0")], [(ask, "1.0"), ("103.0", "4.0")], seq, None, ts)


@pytest.fixture
def rig():
    reg = AdapterRegistry()
    store = BookStore(reg, windows_bps=(10.0, 500.0), clock=ReplayClock(), stale_after_ms=3_000)
    sink = ListSink()
    rec = LiquidityRecorder(
        store, sink, windows_bps=(10.0, 500.0), interval_s=1.0, snapshot_interval_s=0, adapter_for=reg
    ).attach()
    return store, sink, rec


def test_rows_show_the_book_as_it_stood_at_each_grid_point(rig):
    store, sink, _rec = rig
    store.on_event(_snap(T0 + 100_000_000, "100.0", "101.0", 1))  # first event: no row yet
    store.on_event(_snap(T0 + 900_000_000, "100.5", "101.0", 2))  # same second: no row
    store.on_event(_snap(T0 + 2 * S + 5, "99.5", "102.0", 3))  # passes T0+1s and T0+2s: one row at T0+2s
    (row,) = sink.rows["book_metrics"]
    assert row["ts_ns"] == T0 + 2 * S and row["book_ts_recv_ns"] == T0 + 900_000_000
    # The book of the second snapshot, not the third (applied after the sample).
    bid, ask = Decimal("100.5"), Decimal("101.0")
    mid = (bid + ask) / 2
    assert (row["best_bid"], row["best_ask"], row["mid"]) == (100.5, 101.0, float(mid))
    assert row["spread_bps"] == pytest.approx(float((ask - bid) / mid * 10_000), rel=1e-12)
    assert row["microprice"] == pytest.approx(float((bid * 1 + ask * 2) / 3), rel=1e-12)
    assert row["synced"] and not row["stale"] and not row["unverified"]
    assert row["age_ms"] == pytest.approx(1_100.0)
    d10, d500 = sink.rows["book_metric_depths"]
    # 10 bps of 100.75: only the best levels are inside (100.649..100.851): none on either side.
    assert (d10["bid_base"], d10["ask_base"], d10["imbalance"]) == (0.0, 0.0, None)
    # 500 bps (95.71..105.79): both levels a side; quote = sum(price x size).
    assert (d500["bid_base"], d500["ask_base"]) == (3.0, 5.0)
    assert d500["bid_quote"] == pytest.approx(100.5 * 2 + 99.0) and d500["ask_quote"] == pytest.approx(
        101.0 + 412.0
    )
    assert d500["imbalance"] == pytest.approx((3 - 5) / 8)


def test_tick_samples_a_quiet_book_and_flags_it_stale(rig):
    store, sink, rec = rig
    store.on_event(_snap(T0, "100.0", "101.0", 1))
    assert rec.tick(T0 + 2 * S + 1) == 1  # 2 s old: not stale yet (stale_after 3 s)
    assert rec.tick(T0 + 2 * S + 2) == 0  # same grid point: nothing new
    assert rec.tick(T0 + 5 * S) == 1
    first, second = sink.rows["book_metrics"]
    assert (first["ts_ns"], first["stale"]) == (T0 + 2 * S, False)
    assert (second["ts_ns"], second["stale"], second["age_ms"]) == (T0 + 5 * S, True, 5_000.0)


def test_an_unsynced_book_gets_flags_and_no_figures(rig):
    store, sink, _rec = rig
    store.on_event(_snap(T0, "100.0", "101.0", 1))
    store.entry(BTC).sync.invalidate()  # e.g. a gap: waits for a new snapshot
    store.on_event(Trade(BTC, "100.0", "0.5", "buy", "t1", T0 + S, T0 + S + 10))
    (row,) = sink.rows["book_metrics"]
    assert not row["synced"] and row["mid"] is None and row["spread_bps"] is None
    assert all(d["bid_base"] is None and d["imbalance"] is None for d in sink.rows["book_metric_depths"])
    (trade,) = sink.rows["trades"]  # the trade itself is stored
    assert (trade["trade_id"], trade["price"], trade["size"], trade["side"]) == ("t1", 100.0, 0.5, "buy")


def test_prune_downsamples_then_deletes_old_rows(tmp_path):
    settings = Settings(
        home_dir=tmp_path,
        data_engine={"history_retention_days": 10, "history_downsample_after_days": 1,
                     "history_downsample_interval_s": 60},
    )  # fmt: skip
    now = 1_800_000_000 * S  # a multiple of 60 s

    async def go():
        candles = CandleService(settings)
        hist = HistoryService(settings, MarketData(settings), candles)
        writer = await hist.start()
        for age_s in (0, 30, 60, 2 * 86_400, 2 * 86_400 + 30, 11 * 86_400):  # seconds before now
            ts = now - age_s * S
            writer.submit("book_metrics", {
                "venue": "binance", "symbol": "BTC/USDT", "ts_ns": ts, "synced": True, "stale": False,
                "crossed": False, "unverified": False, "gaps": 0, "resyncs": 0, "mid": 1.0,
            })  # fmt: skip
        await hist.flush()
        deleted = await hist.prune(now)
        await hist.close()
        await candles.close()
        return deleted

    deleted = asyncio.run(go())
    with sqlite3.connect(tmp_path / "mlm.sqlite3") as conn:
        kept = sorted((now - t) // S for (t,) in conn.execute("SELECT ts_ns FROM book_metrics"))
    # Younger than 1 day: all kept; 1..10 days: only whole minutes; older than 10 days: gone.
    assert kept == [0, 30, 60, 2 * 86_400]
    assert deleted["book_metrics"] == 2
