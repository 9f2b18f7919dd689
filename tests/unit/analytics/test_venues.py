"""Venue comparison on hand-built books: costs with fees, best venue, arbitrage gating by book
time, and the Herfindahl-Hirschman concentration of depth.

Books (prices USDT, sizes BTC), fees X = 10 bps, Y = 2 bps:

    venue x                 venue y
    bids       asks         bids        asks
    99.9 x 2   100.1 x 1    100.2 x 1   100.3 x 2
    99.8 x 2   100.2 x 1    100.0 x 3   100.5 x 2
"""

from __future__ import annotations

import pytest

from market_liquidity_monitor.analytics.venues import VenueComparison, compare_venues, herfindahl
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId

T0 = 1_723_161_600_000_000_000
FEES = {"x": 10.0, "y": 2.0}


def view(venue, bids, asks, ts_ns=T0):
    return BookView.from_levels(InstrumentId(venue, "BTC/USDT"), bids, asks, ts_event_ns=ts_ns)


def books(dt_ns: int = 0):
    return [
        view("x", [(99.9, 2), (99.8, 2)], [(100.1, 1), (100.2, 1)]),
        view("y", [(100.2, 1), (100.0, 3)], [(100.3, 2), (100.5, 2)], ts_ns=T0 + dt_ns),
    ]


def test_costs_and_best_venue_hand_checked():
    res = compare_venues(books(), "buy", size=2, fees_bps=FEES, window_bps=50)
    x, y = res.venues
    # x: mid 100, vwap (100.1 + 100.2) / 2 = 100.15, incl fee 100.15 * 1.001 = 100.25015 -> 25.015 bps
    assert x.mid_price == pytest.approx(100.0) and x.vwap == pytest.approx(100.15)
    assert x.slippage_bps == pytest.approx(15.0)
    assert x.cost_bps == pytest.approx(25.015)
    assert x.cost_quote == pytest.approx(0.25015 * 2)
    assert x.spread_bps == pytest.approx(20.0)
    # y: mid 100.25, vwap 100.3, incl fee 100.3 * 1.0002 = 100.32006 -> (100.32006 - 100.25)/100.25 = 6.9885 bps
    assert y.cost_bps == pytest.approx((100.3 * 1.0002 - 100.25) / 100.25 * 1e4)
    assert res.best_venue == "y" and "lowest fee-adjusted cost" in res.best_venue_reason
    assert res.best_venue_by_price == "x"  # 100.25015 < 100.32006 in absolute price
    assert VenueComparison.model_validate_json(res.model_dump_json()) == res


def test_hhi_hand_checked():
    res = compare_venues(books(), "buy", size=1, window_bps=50)
    # x mid 100: bids >= 99.5 (99.9*2 + 99.8*2 = 399.4), asks <= 100.5 (100.1 + 100.2 = 200.3) -> 599.7
    # y mid 100.25: bids >= 99.74875 (100.2 + 300 = 400.2), asks <= 100.75125 (200.6 + 201 = 401.6) -> 801.8
    c = res.concentration
    sx, sy = 599.7 / 1401.5, 801.8 / 1401.5
    assert c.shares == pytest.approx({"x": sx, "y": sy})
    assert c.hhi == pytest.approx(sx**2 + sy**2)
    assert c.effective_venue_count == pytest.approx(1 / (sx**2 + sy**2))
    assert 0.5 <= c.hhi <= 1


def test_herfindahl_bounds():
    assert herfindahl({"a": 1, "b": 1, "c": 1, "d": 1})[0] == pytest.approx(0.25)  # 1/N
    assert herfindahl({"a": 5, "b": 0})[0] == pytest.approx(1.0)
    assert herfindahl({"a": 0, "b": 0})[0] is None
    with pytest.raises(InvalidInputError):
        herfindahl({"a": -1})


def test_arbitrage_after_fees():
    res = compare_venues(books(), "buy", size=1, fees_bps={"x": 0, "y": 0})
    # y's bid 100.2 > x's ask 100.1: buy x, sell y; edge (100.2 - 100.1) / 100.1 = 9.99 bps, size min(1, 1)
    arb = {(a.buy_venue, a.sell_venue): a for a in res.arbitrage}
    a = arb[("x", "y")]
    assert a.contemporaneous and a.opportunity
    assert a.edge_bps == pytest.approx(0.1 / 100.1 * 1e4)
    assert a.size == 1 and a.profit_quote == pytest.approx(0.1)
    assert arb[("y", "x")].opportunity is False
    # with fees 10 + 2 bps: 100.2 * 0.9998 = 100.17996 < 100.1 * 1.001 = 100.2001 -> gone
    res = compare_venues(books(), "buy", size=1, fees_bps=FEES)
    a = next(a for a in res.arbitrage if a.buy_venue == "x")
    assert a.opportunity is False and a.edge_bps < 0


def test_arbitrage_not_contemporaneous():
    res = compare_venues(books(dt_ns=3_500_000_000), "buy", size=1, max_book_age_diff_ms=2000)
    for a in res.arbitrage:
        assert not a.contemporaneous and a.opportunity is None and a.edge_bps is None
        assert a.ts_diff_ms == pytest.approx(3500)
        assert "not contemporaneous" in a.reason
    res = compare_venues(books(dt_ns=1_500_000_000), "buy", size=1, max_book_age_diff_ms=2000)
    assert all(a.contemporaneous for a in res.arbitrage)


def test_partial_fill_and_no_best_venue():
    res = compare_venues(books(), "buy", size=50)
    assert res.best_venue is None and not any(v.fully_filled for v in res.venues)
    assert all(v.reason for v in res.venues)
    res = compare_venues(books(), "buy", size=3)  # only y holds 4 asks
    assert res.best_venue == "y" and "only venue" in res.best_venue_reason


def test_sell_side_and_notional():
    res = compare_venues(books(), "sell", notional=100.2, fees_bps=FEES)
    y = res.venues[1]
    # 1 BTC at 100.2; mid 100.25; net 100.2 * 0.9998; cost = -(100.17996 - 100.25)/100.25
    assert y.filled_size == pytest.approx(1.0)
    assert y.cost_bps == pytest.approx((100.25 - 100.2 * 0.9998) / 100.25 * 1e4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 1, "fees_bps": {"x": 1}}, "no taker fee for y"),
        ({"size": 1, "window_bps": 0}, "window_bps"),
        ({"size": 1, "max_book_age_diff_ms": -1}, "max_book_age_diff_ms"),
        ({}, "exactly one"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        compare_venues(books(), "buy", **kwargs)


def test_duplicate_and_empty():
    with pytest.raises(InvalidInputError, match="one book per venue"):
        compare_venues([books()[0], books()[0]], "buy", size=1)
    with pytest.raises(InvalidInputError, match="at least one"):
        compare_venues([], "buy", size=1)


# ------------------------------------------------------------------ fees, windows, contemporaneity


def test_fee_sources_windows_and_contemporaneity():
    from market_liquidity_monitor.analytics.venues import TakerFee

    fees = {
        "x": TakerFee(venue="x", market="spot", fee_bps=10.0, source="test schedule x"),
        "y": 2.0,
    }
    res = compare_venues(books(), "buy", size=2, fees_bps=fees, window_bps=50, windows_bps=[50, 10])
    x, y = res.venues
    assert (x.fee_source, y.fee_source) == ("test schedule x", None)
    assert x.cost_bps == pytest.approx(25.015)  # as with a bare 10 bps
    assert [d.window_bps for d in x.depth_windows] == [10.0, 50.0]
    # 10 bps of x's mid 100: bids >= 99.9 (99.9 * 2), asks <= 100.1 (100.1): 299.9;
    # of y's mid 100.25: bids >= 100.14975 (100.2), asks <= 100.35025 (100.3 * 2): 300.8
    assert x.depth_windows[0].depth_notional == pytest.approx(299.9)
    assert y.depth_windows[0].depth_notional == pytest.approx(300.8)
    c10, c50 = res.concentration_by_window
    assert c10.shares == pytest.approx({"x": 299.9 / 600.7, "y": 300.8 / 600.7})
    assert c50 == res.concentration  # the main window again
    assert res.contemporaneous is True and res.max_book_ts_diff_ms == 0
    late = compare_venues(books(dt_ns=5_000_000_000), "buy", size=1, max_book_age_diff_ms=2000)
    assert late.contemporaneous is False and late.max_book_ts_diff_ms == pytest.approx(5000)
    assert "not contemporaneous" in late.contemporaneity_note and "y at" in late.contemporaneity_note
    alone = compare_venues(books()[:1], "buy", size=1)
    assert alone.contemporaneous is None and alone.arbitrage == ()
