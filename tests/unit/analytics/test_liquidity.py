"""Hand-computed cases for the pure liquidity analytics (arithmetic written next to each number).

The reference book used throughout (``book()``), mid = (99 + 101) / 2 = 100:

    bids            asks
    99 x 3          101 x 1
    98 x 2          102 x 2
    97 x 5          103 x 4
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from market_liquidity_monitor.analytics import (
    BookImbalance,
    DepthWindow,
    ImpactCurve,
    ImpactResult,
    MaxSizeResult,
    OrderBookSummary,
    TopOfBook,
    book_summary,
    depth_within_bps,
    imbalance,
    impact_curve,
    market_impact,
    max_size_within_slippage,
    top_of_book,
)
from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InsufficientLiquidityError,
    InvalidInputError,
)
from market_liquidity_monitor.domain.instrument import InstrumentId, Side

BTC = InstrumentId("binance", "BTC/USDT")
TS_NS = 1_723_161_254_206_652_067  # 2024-08-08T23:54:14.206652067Z
BIDS = [(99.0, 3.0), (98.0, 2.0), (97.0, 5.0)]
ASKS = [(101.0, 1.0), (102.0, 2.0), (103.0, 4.0)]


def book(bids=BIDS, asks=ASKS, ts_event_ns: int | None = TS_NS) -> BookView:
    return BookView.from_levels(BTC, bids, asks, ts_event_ns=ts_event_ns)


# ------------------------------------------------------------------------------ top of book


def test_top_of_book_hand_computed():
    top = top_of_book(book())
    assert isinstance(top, TopOfBook)
    assert (top.venue, top.symbol) == ("binance", "BTC/USDT")
    assert top.book_ts == "2024-08-08T23:54:14.206Z"
    assert top.book_ts_ns == TS_NS
    assert (top.best_bid, top.best_bid_size, top.best_ask, top.best_ask_size) == (99.0, 3.0, 101.0, 1.0)
    assert top.mid_price == 100.0  # (99 + 101) / 2
    assert top.spread == 2.0  # 101 - 99
    assert top.spread_bps == 200.0  # 2 / 100 * 1e4
    # microprice = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
    #            = (99 * 1 + 101 * 3) / (3 + 1) = 402 / 4 = 100.5 (leans to the thin ask side)
    assert top.microprice == 100.5
    assert top.crossed is False


def test_top_of_book_mid_and_spread_are_exact_decimals():
    # Float arithmetic would give 0.1 + 0.2 = 0.30000000000000004 and 0.3 - 0.1 = 0.19999999999999998.
    top = top_of_book(book(bids=[(0.1, 1)], asks=[(0.3, 1)]))
    assert top.mid_price == 0.2  # (0.1 + 0.3) / 2, exact decimal then rounded once
    assert top.spread == 0.2  # 0.3 - 0.1
    assert top.spread_bps == 10_000.0  # 0.2 / 0.2 * 1e4


def test_top_of_book_reports_a_crossed_book_as_is():
    top = top_of_book(book(bids=[(101, 1)], asks=[(100, 1)]))
    assert top.crossed is True
    assert top.spread == -1.0  # 100 - 101, not "fixed"
    assert top.spread_bps == pytest.approx(-1 / 100.5 * 1e4)


@pytest.mark.parametrize(("bids", "asks"), [([], ASKS), (BIDS, []), ([], [])])
def test_top_of_book_empty_side_raises_book_not_ready(bids, asks):
    with pytest.raises(BookNotReadyError, match="empty"):
        top_of_book(book(bids=bids, asks=asks))


def test_book_ts_none_without_timestamp():
    top = top_of_book(book(ts_event_ns=None))
    assert top.book_ts is None and top.book_ts_ns is None


# ----------------------------------------------------------------------------------- depth


def test_depth_within_150_bps():
    # bounds: 100 * (1 - 0.015) = 98.5, 100 * (1 + 0.015) = 101.5
    d = depth_within_bps(book(), 150)
    assert isinstance(d, DepthWindow)
    assert (d.bid_bound_price, d.ask_bound_price) == pytest.approx((98.5, 101.5))
    assert (d.bid_size, d.bid_notional, d.bid_levels) == (3.0, 297.0, 1)  # 99 x 3 = 297
    assert (d.ask_size, d.ask_notional, d.ask_levels) == (1.0, 101.0, 1)  # 101 x 1
    assert d.bid_window_exceeds_visible_book is False
    assert d.book_ts == "2024-08-08T23:54:14.206Z"


def test_depth_bounds_are_inclusive():
    # 200 bps: bounds 98 and 102 exactly, so the 98 bid and the 102 ask are in.
    d = depth_within_bps(book(), 200)
    assert (d.bid_size, d.bid_notional, d.bid_levels) == (5.0, 493.0, 2)  # 3 + 2; 297 + 98*2 = 493
    assert (d.ask_size, d.ask_notional, d.ask_levels) == (3.0, 305.0, 2)  # 1 + 2; 101 + 102*2 = 305


def test_depth_whole_book_at_10000_bps():
    # bounds 0 and 200: everything; notionals 297+196+485 = 978, 101+204+412 = 717
    d = depth_within_bps(book(), 10_000)
    assert (d.bid_size, d.bid_notional, d.bid_levels) == (10.0, 978.0, 3)
    assert (d.ask_size, d.ask_notional, d.ask_levels) == (7.0, 717.0, 3)
    assert d.bid_window_exceeds_visible_book and d.ask_window_exceeds_visible_book


def test_depth_level_exactly_on_a_bound_that_floats_miss():
    # mid = (35.99 + 36.01) / 2 = 36; 25 bps: bid bound 36 * 0.9975 = 35.91, ask bound 36 * 1.0025 = 36.09.
    # In floats, ((35.99 + 36.01) / 2) * (1 - 25/1e4) = 35.910000000000004 > 35.91 and would drop
    # the 35.91 level; the exact comparison keeps it, as the integer live book does.
    bids = [(35.99, 1), (35.95, 1), (35.91, 2), (35.90, 4)]
    asks = [(36.01, 1), (36.05, 1), (36.09, 2), (36.10, 4)]
    assert (35.99 + 36.01) / 2 * (1 - 25 / 1e4) > 35.91  # the trap is real
    d = depth_within_bps(book(bids, asks), 25)
    assert d.bid_levels == 3 and d.bid_size == 4.0  # 1 + 1 + 2
    assert d.ask_levels == 3 and d.ask_size == 4.0
    live = L2Book(BTC)
    live.apply_snapshot(
        [[str(p), str(s)] for p, s in bids], [[str(p), str(s)] for p, s in asks], 1, TS_NS, None
    )
    assert live.depth(25) == {
        "bid_size": d.bid_size,
        "ask_size": d.ask_size,
        "bid_notional": d.bid_notional,
        "ask_notional": d.ask_notional,
    }


@pytest.mark.parametrize("window", [0, -5, 10_000.5, math.nan, math.inf, "10", None, True])
def test_depth_bad_window(window):
    with pytest.raises(InvalidInputError, match="window_bps"):
        depth_within_bps(book(), window)


def test_depth_empty_side_raises_book_not_ready():
    with pytest.raises(BookNotReadyError):
        depth_within_bps(book(asks=[]), 10)


# ------------------------------------------------------------------------------- imbalance


def test_imbalance_hand_computed():
    # 150 bps: bid 3, ask 1 -> (3 - 1) / (3 + 1) = 0.5
    imb = imbalance(book(), 150)
    assert isinstance(imb, BookImbalance)
    assert (imb.bid_size, imb.ask_size, imb.imbalance, imb.reason) == (3.0, 1.0, 0.5, None)
    # 200 bps: bid 5, ask 3 -> 2 / 8 = 0.25; whole book: (10 - 7) / 17
    assert imbalance(book(), 200).imbalance == 0.25
    assert imbalance(book(), 10_000).imbalance == pytest.approx(3 / 17)


def test_imbalance_none_with_reason_when_window_inside_the_spread():
    # 50 bps: bounds 99.5 / 100.5, no level on either side (half-spread is 100 bps).
    imb = imbalance(book(), 50)
    assert imb.imbalance is None
    assert "no level within 50 bps" in imb.reason


def test_imbalance_counts_depth_not_just_the_top():
    # Best bid and best ask are equally far from mid, so a window holds both or neither; the
    # imbalance comes from deeper levels. bids 99 x 1, 98.6 x 4; asks 101 x 1, 102 x 9; mid 100.
    # 150 bps: bounds 98.5 / 101.5 -> bid 1 + 4 = 5, ask 1 -> (5 - 1) / (5 + 1) = 2/3
    view = book(bids=[(99, 1), (98.6, 4)], asks=[(101, 1), (102, 9)])
    assert imbalance(view, 150).imbalance == pytest.approx(2 / 3)
    # 200 bps: bounds 98 / 102 -> bid 5, ask 10 -> (5 - 10) / 15 = -1/3
    assert imbalance(view, 200).imbalance == pytest.approx(-1 / 3)


def test_imbalance_bad_window():
    with pytest.raises(InvalidInputError):
        imbalance(book(), 0)


# --------------------------------------------------------------------------------- summary


def test_book_summary_collects_everything():
    s = book_summary(book(), windows_bps=(150, 200))
    assert isinstance(s, OrderBookSummary)
    assert s.top_of_book == top_of_book(book())
    assert [d.window_bps for d in s.depth] == [150.0, 200.0]
    assert s.depth[1] == depth_within_bps(book(), 200)
    assert [i.imbalance for i in s.imbalance] == [0.5, 0.25]
    assert (s.bid_levels, s.ask_levels) == (3, 3)
    assert (s.bid_total_size, s.ask_total_size) == (10.0, 7.0)
    assert (s.bid_total_notional, s.ask_total_notional) == (978.0, 717.0)
    assert s.quality == {}


def test_book_summary_default_windows_and_json():
    s = book_summary(book())
    assert [d.window_bps for d in s.depth] == [10.0, 25.0, 50.0, 100.0]
    # 100 bps: bounds 99 / 101 -> exactly the best levels
    assert (s.depth[3].bid_size, s.depth[3].ask_size) == (3.0, 1.0)
    data = json.loads(s.model_dump_json())
    assert data["top_of_book"]["microprice"] == 100.5
    assert data["book_ts"] == "2024-08-08T23:54:14.206Z"
    assert OrderBookSummary.model_validate_json(s.model_dump_json()) == s


@pytest.mark.parametrize("windows", [(), (10, 0), "10", None])
def test_book_summary_bad_windows(windows):
    with pytest.raises(InvalidInputError, match="window"):
        book_summary(book(), windows_bps=windows)


# ---------------------------------------------------------------------------- market impact


def test_buy_by_size_two_levels():
    # asks 101 x 1, then 1 of 102 x 2: notional 101 + 102 = 203, vwap 203 / 2 = 101.5
    r = market_impact(book(), "buy", size=2)
    assert isinstance(r, ImpactResult)
    assert r.side is Side.BUY
    assert (r.size, r.notional_requested) == (2.0, None)
    assert (r.filled_size, r.filled_notional, r.vwap) == (2.0, 203.0, 101.5)
    assert (r.mid_price, r.best_price, r.worst_price) == (100.0, 101.0, 102.0)
    assert r.slippage_bps == pytest.approx(150.0)  # (101.5 - 100) / 100 * 1e4
    assert r.slippage_vs_best_bps == pytest.approx(0.5 / 101 * 1e4)  # 49.50495...
    assert (r.levels_consumed, r.levels_available) == (2, 3)
    assert r.fully_filled and r.unfilled_size == 0.0 and r.unfilled_notional == 0.0 and r.reason is None


def test_buy_ending_exactly_on_a_level_boundary():
    # 3 = 1 + 2: levels 101 and 102 consumed entirely, 103 untouched; vwap (101 + 204) / 3
    r = market_impact(book(), Side.BUY, size=3)
    assert r.levels_consumed == 2 and r.worst_price == 102.0
    assert r.vwap == pytest.approx(305 / 3)


def test_buy_within_best_level_has_zero_slippage_vs_best():
    # 0.5 of 101 x 1: vwap 101, slippage vs mid = half spread = 100 bps
    r = market_impact(book(), "buy", size=0.5)
    assert (r.vwap, r.levels_consumed, r.slippage_vs_best_bps) == (101.0, 1, 0.0)
    assert r.slippage_bps == pytest.approx(100.0)


def test_buy_partial_fill_reports_what_it_could_fill():
    # asks hold 1 + 2 + 4 = 7; notional 101 + 204 + 412 = 717; vwap 717 / 7 = 102.428571...
    r = market_impact(book(), "buy", size=10)
    assert r.fully_filled is False
    assert (r.filled_size, r.filled_notional) == (7.0, 717.0)
    assert r.vwap == pytest.approx(717 / 7)
    assert r.slippage_bps == pytest.approx((717 / 7 - 100) / 100 * 1e4)  # 242.857...
    assert r.unfilled_size == 3.0 and r.unfilled_notional is None  # price of the rest is unknown
    assert (r.levels_consumed, r.worst_price) == (3, 103.0)
    assert "holds only 7 base units" in r.reason


def test_request_for_exactly_the_visible_size_is_fully_filled():
    # sizes 0.1 + 0.7 = 0.7999999999999999 in floats; asking for 0.8 is still a full fill
    r = market_impact(book(asks=[(101, 0.1), (102, 0.7)]), "buy", size=0.8)
    assert r.fully_filled and r.levels_consumed == 2 and r.unfilled_size == 0.0


def test_sell_by_size():
    # bids 99 x 3 then 1 of 98 x 2: notional 297 + 98 = 395, vwap 395 / 4 = 98.75
    r = market_impact(book(), "sell", size=4)
    assert (r.filled_size, r.filled_notional, r.vwap) == (4.0, 395.0, 98.75)
    assert r.slippage_bps == pytest.approx(125.0)  # (100 - 98.75) / 100 * 1e4
    assert r.slippage_vs_best_bps == pytest.approx(0.25 / 99 * 1e4)  # (99 - 98.75) / 99 * 1e4 = 25.2525...
    assert (r.best_price, r.worst_price, r.levels_consumed) == (99.0, 98.0, 2)


def test_buy_by_notional_pro_rates_in_quote_terms():
    # 152 quote: 101 buys 1 unit, the remaining 51 buys 51 / 102 = 0.5 unit; vwap 152 / 1.5 = 101.333...
    r = market_impact(book(), "buy", notional=152)
    assert (r.size, r.notional_requested) == (None, 152.0)
    assert (r.filled_size, r.filled_notional) == (1.5, 152.0)
    assert r.vwap == pytest.approx(152 / 1.5)
    assert r.slippage_bps == pytest.approx((152 / 1.5 - 100) / 100 * 1e4)  # 133.33...
    assert r.levels_consumed == 2 and r.fully_filled


def test_sell_by_notional_on_a_boundary():
    # 493 quote = 99 x 3 (297) + 98 x 2 (196): size 5, vwap 98.6, slippage (100 - 98.6) / 100 * 1e4 = 140
    r = market_impact(book(), "sell", notional=493)
    assert r.filled_size == pytest.approx(5.0)
    assert r.vwap == pytest.approx(98.6)
    assert r.slippage_bps == pytest.approx(140.0)
    assert r.levels_consumed == 2


def test_notional_partial_fill():
    # asks hold 717 quote (7 base); 1000 requested -> 283 unfilled, unfilled base size unknown
    r = market_impact(book(), "buy", notional=1000)
    assert not r.fully_filled
    assert (r.filled_size, r.filled_notional) == (7.0, 717.0)
    assert r.unfilled_notional == 283.0 and r.unfilled_size is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 0},
        {"size": -1},
        {"size": math.nan},
        {"size": math.inf},
        {"size": True},
        {"size": "1"},
        {"notional": 0},
        {"notional": -5.0},
        {"notional": math.nan},
        {"size": 1, "notional": 100},
        {},
    ],
)
def test_market_impact_bad_amounts(kwargs):
    with pytest.raises(InvalidInputError, match=r"size|notional"):
        market_impact(book(), "buy", **kwargs)


def test_market_impact_message_says_what_is_valid():
    with pytest.raises(InvalidInputError) as exc:
        market_impact(book(), "buy", size=1, notional=1)
    assert "exactly one of size (base units) or notional (quote units)" in str(exc.value)
    with pytest.raises(InvalidInputError) as exc:
        market_impact(book(), "buy", size=-2)
    assert "finite number > 0" in str(exc.value)


def test_market_impact_bad_side():
    with pytest.raises(InvalidInputError, match="valid sides"):
        market_impact(book(), "hold", size=1)


def test_market_impact_empty_side():
    with pytest.raises(InsufficientLiquidityError, match="ask side"):
        market_impact(book(asks=[]), "buy", size=1)
    with pytest.raises(InsufficientLiquidityError, match="bid side"):
        market_impact(book(bids=[]), "sell", notional=100)
    # the walked side exists but there is no mid to measure against
    with pytest.raises(BookNotReadyError):
        market_impact(book(asks=[]), "sell", size=1)


def test_impact_result_is_frozen_and_json_round_trips():
    r = market_impact(book(), "sell", size=4)
    with pytest.raises(ValidationError):
        r.vwap = 1.0
    data = json.loads(r.model_dump_json())
    assert data["side"] == "sell" and data["book_ts"] == "2024-08-08T23:54:14.206Z"
    assert ImpactResult.model_validate_json(r.model_dump_json()) == r


# ----------------------------------------------------------------------------- impact curve


def test_impact_curve_matches_market_impact_point_by_point():
    sizes = [3, 0.5, 2, 10]  # input order is kept
    c = impact_curve(book(), "buy", sizes=sizes)
    assert isinstance(c, ImpactCurve)
    assert (c.side, c.mid_price, c.best_price, c.levels_available) == (Side.BUY, 100.0, 101.0, 3)
    assert [p.size for p in c.points] == [3.0, 0.5, 2.0, 10.0]
    for p, s in zip(c.points, sizes, strict=True):
        r = market_impact(book(), "buy", size=s)
        assert (p.vwap, p.slippage_bps, p.fully_filled, p.levels_consumed, p.worst_price) == (
            r.vwap,
            r.slippage_bps,
            r.fully_filled,
            r.levels_consumed,
            r.worst_price,
        )
    # 0.5 -> vwap 101 (100 bps), 2 -> 101.5 (150 bps), 10 -> partial (7 filled)
    assert [p.fully_filled for p in c.points] == [True, True, True, False]
    assert c.points[1].slippage_bps == pytest.approx(100.0)
    assert c.points[3].filled_size == 7.0


def test_impact_curve_by_notional_sell_side():
    # 297 quote = the whole 99 level (size 3, vwap 99); 493 = + 98 x 2 (size 5, vwap 98.6)
    c = impact_curve(book(), "sell", notionals=np.array([297.0, 493.0]))
    assert [p.notional_requested for p in c.points] == [297.0, 493.0]
    assert [p.size for p in c.points] == [None, None]
    assert c.points[0].filled_size == pytest.approx(3.0) and c.points[0].vwap == pytest.approx(99.0)
    assert c.points[1].filled_size == pytest.approx(5.0) and c.points[1].vwap == pytest.approx(98.6)
    assert c.points[0].slippage_bps == pytest.approx(100.0)  # (100 - 99) / 100 * 1e4


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"sizes": [1], "notionals": [1]},
        {"sizes": []},
        {"sizes": [1, 0]},
        {"sizes": [math.nan]},
        {"sizes": "12"},
    ],
)
def test_impact_curve_bad_inputs(kwargs):
    with pytest.raises(InvalidInputError):
        impact_curve(book(), "buy", **kwargs)


def test_impact_curve_empty_side():
    with pytest.raises(InsufficientLiquidityError):
        impact_curve(book(bids=[]), "sell", sizes=[1])


# --------------------------------------------------------------------- max size within limit


def test_max_size_solves_inside_a_level():
    # 160 bps -> target vwap 101.6. After 101 x 1 the vwap is 101 <= 101.6; after 102 x 2 it is
    # 305 / 3 = 101.67 > 101.6, so the answer lies inside the 102 level:
    # (101 + 102 q) / (1 + q) = 101.6  ->  q = 0.6 / 0.4 = 1.5  ->  size 2.5, notional 101 + 153 = 254
    r = max_size_within_slippage(book(), "buy", 160)
    assert isinstance(r, MaxSizeResult)
    assert r.size == pytest.approx(2.5, rel=1e-12)
    assert r.notional == pytest.approx(254.0, rel=1e-12)
    assert r.vwap == pytest.approx(101.6, rel=1e-12)
    assert r.slippage_bps <= 160
    assert (r.levels_consumed, r.worst_price, r.limited_by_book, r.reason) == (2, 102.0, False, None)
    assert market_impact(book(), "buy", size=r.size).slippage_bps <= 160


def test_max_size_on_a_level_boundary_and_sell_side():
    # buy 150 bps: (101 + 102 q) / (1 + q) = 101.5 -> q = 1 -> size 2 (as market_impact buy 2 above)
    assert max_size_within_slippage(book(), "buy", 150).size == pytest.approx(2.0, rel=1e-12)
    # sell 125 bps: target 98.75; (297 + 98 q) / (3 + q) = 98.75 -> q = 0.75 / 0.75 = 1 -> size 4
    r = max_size_within_slippage(book(), "sell", 125)
    assert r.size == pytest.approx(4.0, rel=1e-12)
    assert r.vwap == pytest.approx(98.75, rel=1e-12)


def test_max_size_at_exactly_half_spread_takes_the_best_level():
    # 100 bps = half the spread: all of 101 x 1 (vwap 101 = target), nothing of 102
    r = max_size_within_slippage(book(), "buy", 100)
    assert (r.size, r.vwap, r.levels_consumed) == (1.0, 101.0, 1)


def test_max_size_zero_when_limit_below_half_spread():
    r = max_size_within_slippage(book(), "buy", 50)  # best ask is already 100 bps away
    assert (r.size, r.notional, r.vwap, r.slippage_bps, r.worst_price, r.levels_consumed) == (
        0.0,
        0.0,
        None,
        None,
        None,
        0,
    )
    assert "already 100 bps from mid" in r.reason
    assert max_size_within_slippage(book(), "sell", 0).size == 0.0


def test_max_size_limited_by_the_visible_book():
    # 10000 bps: the whole ask side (7, 717 quote) fits; the real maximum may be larger
    r = max_size_within_slippage(book(), "buy", 10_000)
    assert (r.size, r.notional, r.levels_consumed, r.limited_by_book) == (7.0, 717.0, 3, True)
    assert "true maximum may be larger" in r.reason


@pytest.mark.parametrize("limit", [-1, math.nan, math.inf, "5", None])
def test_max_size_bad_limit(limit):
    with pytest.raises(InvalidInputError, match="max_slippage_bps"):
        max_size_within_slippage(book(), "buy", limit)


def test_max_size_empty_side():
    with pytest.raises(InsufficientLiquidityError):
        max_size_within_slippage(book(asks=[]), "buy", 10)


# ------------------------------------------------------------------ properties vs references

_price_cents = st.integers(min_value=1, max_value=2_000_000)
_size_units = st.integers(min_value=1, max_value=10_000_000)


@st.composite
def decimal_books(draw):
    """Random books of 2-decimal prices and 5-decimal sizes, as wire strings and as a view."""
    mid_cents = draw(st.integers(min_value=10_000, max_value=2_000_000))
    bid_off = draw(st.lists(st.integers(1, 5_000), min_size=1, max_size=40, unique=True))
    ask_off = draw(st.lists(st.integers(1, 5_000), min_size=1, max_size=40, unique=True))
    bids = [(Decimal(mid_cents - o) / 100, Decimal(draw(_size_units)) / 100_000) for o in bid_off]
    asks = [(Decimal(mid_cents + o) / 100, Decimal(draw(_size_units)) / 100_000) for o in ask_off]
    return bids, asks


def _decimal_walk(levels, amount: Decimal, by_notional: bool) -> tuple[Decimal, Decimal]:
    """Plain-Python reference: (filled_size, filled_notional) of a walk, best level first."""
    size = notional = Decimal(0)
    for price, level_size in levels:
        remaining = amount - (notional if by_notional else size)
        if remaining <= 0:
            break
        take = min(level_size, remaining / price if by_notional else remaining)
        size += take
        notional += take * price
    return size, notional


@settings(max_examples=150, deadline=None)
@given(decimal_books(), st.sampled_from([1, 5, 10, 25, 33.33, 50, 100, 500]))
def test_depth_agrees_with_live_book(books, window):
    bids, asks = books
    live = L2Book(BTC)
    live.apply_snapshot(
        [[str(p), str(s)] for p, s in bids], [[str(p), str(s)] for p, s in asks], 1, TS_NS, None
    )
    view = live.view()
    d = depth_within_bps(view, window)
    expected = live.depth(window)
    for key in ("bid_size", "ask_size", "bid_notional", "ask_notional"):
        assert getattr(d, key) == pytest.approx(expected[key], rel=1e-12, abs=1e-12)
    # level sets decided exactly: count the levels the integer book would include
    mid = (max(p for p, _ in bids) + min(p for p, _ in asks)) / 2
    w = Decimal(str(window))
    assert d.bid_levels == sum(p >= mid * (10_000 - w) / 10_000 for p, _ in bids)
    assert d.ask_levels == sum(p <= mid * (10_000 + w) / 10_000 for p, _ in asks)
    assert d.mid_price == live.mid_price()
    assert top_of_book(view).mid_price == live.mid_price()


@settings(max_examples=150, deadline=None)
@given(decimal_books(), st.sampled_from(["buy", "sell"]), st.integers(1, 10**9), st.booleans())
def test_walk_agrees_with_decimal_reference(books, side, amount_units, by_notional):
    bids, asks = books
    view = BookView.from_levels(
        BTC, [(float(p), float(s)) for p, s in bids], [(float(p), float(s)) for p, s in asks]
    )
    levels = sorted(asks) if side == "buy" else sorted(bids, reverse=True)
    amount = Decimal(amount_units) / (10 if by_notional else 100_000)
    r = market_impact(view, side, **{"notional" if by_notional else "size": float(amount)})
    ref_size, ref_notional = _decimal_walk(levels, amount, by_notional)
    assert r.filled_size == pytest.approx(float(ref_size), rel=1e-9)
    assert r.filled_notional == pytest.approx(float(ref_notional), rel=1e-9)
    assert r.vwap == pytest.approx(float(ref_notional / ref_size), rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(decimal_books(), st.sampled_from(["buy", "sell"]), st.floats(0, 600, allow_nan=False))
def test_max_size_is_the_boundary_of_the_limit(books, side, limit):
    bids, asks = books
    view = BookView.from_levels(
        BTC, [(float(p), float(s)) for p, s in bids], [(float(p), float(s)) for p, s in asks]
    )
    r = max_size_within_slippage(view, side, limit)
    if r.size > 0:
        assert market_impact(view, side, size=r.size).slippage_bps <= limit
    if not r.limited_by_book:
        bigger = market_impact(view, side, size=r.size * (1 + 1e-6) + 1e-9)
        assert bigger.slippage_bps > limit


def test_exact_helpers_agree_with_fraction_arithmetic():
    # The depth bound is compared on exact decimals: 35.91 == 36 * 9975 / 10000 exactly.
    assert Fraction("36") * 9975 / 10_000 == Fraction("35.91")
