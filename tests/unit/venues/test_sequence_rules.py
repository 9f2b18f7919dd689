"""Venue sequence rules driven through ``BookSync``: first-event rules, gaps, resets, staleness."""

from __future__ import annotations

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.rules import (
    BitstampRule,
    BybitRule,
    GateioRule,
    KucoinRule,
    LinkedRule,
    OkxRule,
)
from market_liquidity_monitor.book.sync import BookSync, DeltaOutcome, NoSequenceRule
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId

INST = InstrumentId("test", "BTC/USDT")


def snap(seq, bid="100", ask="101"):
    return L2Snapshot(INST, [(bid, "1")], [(ask, "1")], seq, None, 0)


def delta(first, last, prev=None, bid=("100", "2")):
    return L2Delta(INST, [bid], [], first, last, prev, None, 0)


def sync(rule):
    return BookSync(L2Book(INST), rule)


# ------------------------------------------------------------------------------- OKX


def test_okx_links_by_prev_seq_id_and_accepts_skipped_ids():
    s = sync(OkxRule())
    assert s.on_snapshot(snap(1226))
    assert s.on_delta(delta(1230, 1230, 1226)) is DeltaOutcome.APPLIED  # seqIds may skip
    assert s.on_delta(delta(1230, 1230, 1230)) is DeltaOutcome.APPLIED  # no-change push
    assert s.on_delta(delta(5, 5, 1230)) is DeltaOutcome.APPLIED  # reset: seqId < prevSeqId, linked
    assert s.book.sequence == 5
    assert s.on_delta(delta(9, 9, 5)) is DeltaOutcome.APPLIED


def test_okx_missing_link_is_a_gap_and_the_next_snapshot_recovers():
    s = sync(OkxRule())
    s.on_snapshot(snap(100))
    assert s.on_delta(delta(110, 110, 105)) is DeltaOutcome.GAP
    assert s.book.quality.gaps == 1 and not s.book.quality.synced and s.needs_snapshot
    s.on_delta(delta(120, 120, 110))  # buffered
    assert s.on_snapshot(snap(130))  # a fresh socket snapshot: the buffered deltas are older
    assert s.counters.deltas_stale == 2 and s.book.quality.synced
    assert s.on_delta(delta(140, 140, 130)) is DeltaOutcome.APPLIED


def test_okx_without_seq_ids_bypasses_the_rule():
    s = sync(OkxRule())
    s.on_snapshot(snap(None))
    assert s.on_delta(delta(None, None, None)) is DeltaOutcome.APPLIED


# ----------------------------------------------------------------------------- Bybit


def test_bybit_v5_u_must_be_contiguous():
    s = sync(BybitRule())
    s.on_snapshot(snap(20254869))
    assert s.on_delta(delta(20254870, 20254870)) is DeltaOutcome.APPLIED
    assert s.on_delta(delta(20254872, 20254872)) is DeltaOutcome.GAP
    assert s.book.quality.gaps == 1


def test_bybit_u1_snapshot_overwrites_the_book():
    s = sync(BybitRule())
    s.on_snapshot(snap(500, bid="100"))
    s.on_delta(delta(501, 501))
    assert s.on_snapshot(snap(1, bid="90"))  # service restart
    assert s.book.best_bid_scaled()[0] == 90 and s.book.sequence == 1
    assert s.on_delta(delta(2, 2, bid=("91", "1"))) is DeltaOutcome.APPLIED


def test_bybit_legacy_cross_seq_is_only_ordered():
    s = sync(BybitRule())
    s.on_snapshot(snap(916952241))
    assert s.on_delta(delta(None, 916952265)) is DeltaOutcome.APPLIED  # not contiguous: fine
    assert s.on_delta(delta(None, 916952265)) is DeltaOutcome.STALE  # not newer than the book


# ------------------------------------------------------------------ KuCoin / Gate.io


def test_kucoin_buffer_then_bracketing_first_event_then_contiguous():
    s = sync(KucoinRule())
    s.on_delta(delta(10, 10))
    s.on_delta(delta(11, 13))
    s.on_delta(delta(14, 14))
    assert s.on_snapshot(snap(12))  # 11 <= 13 <= 13 brackets; 10 is stale
    assert s.counters.deltas_stale == 1 and s.counters.deltas_applied == 2
    assert s.on_delta(delta(16, 16)) is DeltaOutcome.GAP


def test_gateio_snapshot_older_than_every_buffered_event_is_refused():
    s = sync(GateioRule())
    s.on_delta(delta(50, 55))
    assert not s.on_snapshot(snap(40))  # id + 1 = 41 < U = 50: too old, fetch again
    assert s.counters.snapshots_too_old == 1 and s.needs_snapshot
    assert s.on_snapshot(snap(52))
    assert s.book.sequence == 55


# ----------------------------------------------------------------- Bitstamp / linked


def test_bitstamp_applies_only_diffs_later_than_the_snapshot():
    s = sync(BitstampRule())
    s.on_delta(delta(1641343695000000, 1641343695000000))
    s.on_delta(delta(1641343695572693, 1641343695572693))  # same microtimestamp as the snapshot
    s.on_delta(delta(1641343695600000, 1641343695600000))
    s.on_snapshot(snap(1641343695572693))
    assert s.counters.deltas_stale == 2 and s.counters.deltas_applied == 1
    assert s.on_delta(delta(1641343695500000, 1641343695500000)) is DeltaOutcome.STALE


def test_linked_rule_breaks_on_a_missing_link():
    s = sync(LinkedRule())
    s.on_snapshot(snap(18))
    assert s.on_delta(delta(19, 19, 18)) is DeltaOutcome.APPLIED
    assert s.on_delta(delta(25, 25, 19)) is DeltaOutcome.APPLIED  # other channels used 20-24
    assert s.on_delta(delta(26, 26, -1)) is DeltaOutcome.GAP  # link broken by a lost frame


# --------------------------------------------------------- socket snapshots, no sequence


def test_sequence_less_snapshot_drops_deltas_buffered_before_it():
    """Kraken/Coinbase/Gemini: after a reset, deltas that arrive before the new socket snapshot
    predate it; replaying them onto it would corrupt the new image."""
    s = sync(NoSequenceRule())
    s.on_snapshot(snap(None, bid="100"))
    s.book.clear()
    s.state = s.state.WAITING_SNAPSHOT
    s.on_delta(delta(None, None, bid=("100", "0")))  # old: deletes the best bid
    s.on_snapshot(snap(None, bid="100"))
    assert s.book.best_bid_scaled() == (100, 1)
    assert s.counters.deltas_stale == 1


def test_truncate_keeps_the_best_levels_and_rebuilds_windows():
    b = L2Book(INST)
    b.track_window(1000)
    b.apply_snapshot(
        [(str(100 - i), "1") for i in range(5)], [(str(101 + i), "1") for i in range(5)], None, None, 0
    )
    assert b.truncate(3) == 4
    bids, asks = b.levels_scaled()
    assert [p for p, _ in bids] == [100, 99, 98] and [p for p, _ in asks] == [101, 102, 103]
    assert b.depth_scaled(1000) == b._depth_scan(1000)
    assert b.truncate(3) == 0
