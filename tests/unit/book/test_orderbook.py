"""L2Book: hand-computed cases for levels, top of book, depth windows and the view."""

from __future__ import annotations

import pytest

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.domain.errors import BookNotReadyError, InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId

INST = InstrumentId("binance", "BTC/USDT")


def book(windows=()):
    b = L2Book(INST)
    for w in windows:
        b.track_window(w)
    # bids 100.0x1, 99.5x2, 99.0x4 ; asks 100.5x1.5, 101.0x3, 110.0x10
    b.apply_snapshot(
        [["100.0", "1"], ["99.5", "2"], ["99.0", "4"]],
        [["100.5", "1.5"], ["101.0", "3"], ["110.0", "10"]],
        sequence=10,
        ts_event_ns=1_000,
        ts_recv_ns=2_000,
    )
    return b


def test_snapshot_top_of_book_and_mid():
    b = book()
    assert b.top_of_book() == (100.0, 1.0, 100.5, 1.5)
    assert b.mid_price() == 100.25  # (100.0 + 100.5) / 2
    assert b.sequence == 10 and b.level_count() == (3, 3)
    assert b.is_ready


def test_deltas_are_absolute_and_zero_deletes():
    b = book()
    b.apply_levels([["100.0", "0"], ["99.75", "0.5"]], [["100.5", "2.5"]], 11, 3_000, 4_000)
    assert b.top_of_book() == (99.75, 0.5, 100.5, 2.5)
    # The same price written differently is the same key: deleting "99.750" removes "99.75".
    b.apply_levels([["99.750", "0.000"]], [], 12, None, 5_000)
    assert b.best_bid_scaled()[0] == 9950  # 99.5, scale widened to 2 decimals by "99.75"
    assert b.level_count() == (2, 3)
    # Deleting a level that is not there is a no-op (normal on Binance).
    b.apply_levels([["42.0", "0"]], [], 13, None, 6_000)
    assert b.level_count() == (2, 3)
    assert (b.sequence, b.ts_event_ns, b.ts_recv_ns) == (13, 3_000, 6_000)


def test_scale_widens_when_a_finer_price_arrives():
    b = book()
    b.apply_levels([["99.95", "1"]], [], 11, None, 1)  # snapshot had 1 decimal
    assert b.price_decimals == 2
    assert b.top_of_book() == (100.0, 1.0, 100.5, 1.5)
    assert [p for p, _ in b.levels_scaled()[0]] == [10000, 9995, 9950, 9900]


def test_depth_within_window_hand_computed():
    b = book(windows=(50,))
    # mid 100.25; 50 bps -> bids >= 100.25 * 0.995 = 99.74875 -> only 100.0x1
    #                        asks <= 100.25 * 1.005 = 100.75125 -> only 100.5x1.5
    d = b.depth(50)
    assert d == {"bid_size": 1.0, "ask_size": 1.5, "bid_notional": 100.0, "ask_notional": 150.75}
    # 100 bps -> bids >= 99.2475 (100, 99.5: 3), asks <= 101.2525 (100.5, 101: 4.5)
    d100 = b.depth(100)  # not tracked: full scan
    assert d100["bid_size"] == 3.0 and d100["ask_size"] == 4.5
    assert d100["bid_notional"] == 100.0 + 199.0 and d100["ask_notional"] == 150.75 + 303.0


def test_incremental_window_follows_mid_moves():
    b = book(windows=(50, 100))
    b.apply_levels([["100.4", "2"]], [], 11, None, 1)  # new best bid: mid 100.45
    # 50 bps: bids >= 99.94775 -> 100.4x2 + 100.0x1 ; asks <= 100.95225 -> 100.5x1.5
    assert b.depth(50)["bid_size"] == 3.0 and b.depth(50)["ask_size"] == 1.5
    for w in (50, 100):
        assert b.depth_scaled(w) == b._depth_scan(w)
    b.apply_levels([], [["100.5", "0"], ["101.0", "0"]], 12, None, 2)  # asks thin out: mid jumps
    for w in (50, 100):
        assert b.depth_scaled(w) == b._depth_scan(w)


def test_crossed_book_is_flagged_not_fixed():
    b = book()
    b.apply_levels([["100.6", "1"]], [], 11, None, 1)
    assert b.quality.crossed and b.quality.crossed_episodes == 1
    assert b.top_of_book()[0] == 100.6  # reported as it is
    b.apply_levels([["100.6", "0"]], [], 12, None, 2)
    assert not b.quality.crossed


def test_refuses_deltas_before_a_snapshot_and_after_clear():
    b = L2Book(INST)
    with pytest.raises(BookNotReadyError):
        b.apply_levels([["1", "1"]], [], 1, None, 1)
    b = book()
    b.clear()
    with pytest.raises(BookNotReadyError):
        b.view()
    with pytest.raises(InvalidInputError):
        b.track_window(0)


def test_view_and_inverse_contract_sizes():
    v = book().view()
    assert list(v.bid_prices) == [100.0, 99.5, 99.0] and list(v.ask_sizes) == [1.5, 3.0, 10.0]
    assert v.book_ts_ns == 1_000
    inv = L2Book(InstrumentId("binancecoinm", "BTC/USD:BTC"), contract_size=100.0)
    inv.apply_snapshot([["50000.0", "10"]], [["50010.0", "5"]], 1, None, 1)
    vi = inv.view()
    assert vi.bid_sizes[0] == pytest.approx(10 * 100 / 50000.0)  # contracts * face / price
