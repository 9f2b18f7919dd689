"""BookSync with Binance's documented rules, on constructed event sequences."""

from __future__ import annotations

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.sync import (
    BinanceFuturesRule,
    BinanceSpotRule,
    BookSync,
    DeltaOutcome,
    SyncState,
)
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId

INST = InstrumentId("binance", "BTC/USDT")


def delta(U, u, pu=None, bid=("100", "1")):
    return L2Delta(INST, [list(bid)], [], U, u, pu, None, u)


def snap(lid):
    return L2Snapshot(INST, [["100", "5"]], [["101", "5"]], lid, None, lid)


def test_spot_buffer_then_snapshot_drops_stale_and_checks_first_event():
    s = BookSync(L2Book(INST), BinanceSpotRule())
    for d in (delta(95, 99), delta(100, 104), delta(105, 108)):
        assert s.on_delta(d) is DeltaOutcome.BUFFERED
    assert s.on_snapshot(snap(101))  # 99 <= 101 stale; 100 <= 102 <= 104 first; 105 follows
    assert s.state is SyncState.SYNCED
    assert s.counters.deltas_stale == 1 and s.counters.deltas_applied == 2
    assert s.book.sequence == 108
    assert s.on_delta(delta(109, 110)) is DeltaOutcome.APPLIED
    assert s.on_delta(delta(105, 110)) is DeltaOutcome.STALE  # u <= local id: ignored


def test_spot_gap_clears_book_and_requests_snapshot():
    s = BookSync(L2Book(INST), BinanceSpotRule())
    s.on_snapshot(snap(100))
    assert s.on_delta(delta(101, 105)) is DeltaOutcome.APPLIED
    assert s.on_delta(delta(107, 110)) is DeltaOutcome.GAP  # 106 missing
    assert s.needs_snapshot and not s.book.is_ready and s.book.quality.gaps == 1
    assert s.on_delta(delta(111, 112)) is DeltaOutcome.BUFFERED
    assert s.on_snapshot(snap(109))  # resync: 107..110 brackets 110
    assert s.book.quality.resyncs == 1 and s.book.sequence == 112


def test_snapshot_older_than_the_buffer_is_rejected():
    s = BookSync(L2Book(INST), BinanceSpotRule())
    s.on_delta(delta(200, 210))
    assert not s.on_snapshot(snap(150))  # lastUpdateId+1 < first U: too old
    assert s.needs_snapshot and s.counters.snapshots_too_old == 1
    assert s.on_snapshot(snap(205))


def test_futures_rule_uses_pu_and_no_plus_one():
    s = BookSync(L2Book(INST), BinanceFuturesRule())
    s.on_delta(delta(90, 99, 89))
    s.on_delta(delta(100, 120, 99))  # U <= 110 <= u: first event for lastUpdateId 110
    s.on_delta(delta(121, 130, 120))
    assert s.on_snapshot(snap(110))
    assert s.counters.deltas_applied == 2 and s.book.sequence == 130
    assert s.on_delta(delta(131, 140, 129)) is DeltaOutcome.GAP  # pu != previous u
