"""Smart order routing: hand-checked splits, baselines, errors, and the optimality property.

Reference books (``two_venues()``), fees A = 10 bps, B = 0 bps:

    venue A               venue B
    bids     asks         bids       asks
    99.9 x1  100 x1       99.95 x1   100.05 x1
             101 x1                  100.5  x5

Fee-adjusted asks: A 100.1, 101.101; B 100.05, 100.5.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_liquidity_monitor.analytics.routing import RoutingResult, route_order
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId

FEES = {"a": 10.0, "b": 0.0}


def view(venue: str, bids, asks, ts_ns: int | None = 1_700_000_000_000_000_000) -> BookView:
    return BookView.from_levels(InstrumentId(venue, "BTC/USDT"), bids, asks, ts_event_ns=ts_ns)


def two_venues() -> list[BookView]:
    return [
        view("a", [(99.9, 1)], [(100, 1), (101, 1)]),
        view("b", [(99.95, 1)], [(100.05, 1), (100.5, 5)]),
    ]


def baseline(res: RoutingResult, name: str):
    return next(b for b in res.baselines if b.name == name)


def test_buy_split_hand_checked():
    res = route_order(two_venues(), "buy", size=2, fees_bps=FEES)
    # greedy on fee-adjusted asks: B 100.05 x1, then A 100.1 x1 (A's 100 * 1.001)
    kids = {c.venue: c for c in res.routed.children}
    assert set(kids) == {"a", "b"}
    assert kids["a"].size == pytest.approx(1) and kids["a"].notional == pytest.approx(100)
    assert kids["a"].fee_quote == pytest.approx(0.1) and kids["a"].total_quote == pytest.approx(100.1)
    assert kids["b"].size == pytest.approx(1) and kids["b"].vwap == pytest.approx(100.05)
    assert kids["b"].fee_quote == 0
    assert res.routed.total_quote == pytest.approx(200.15)
    assert res.routed.avg_price == pytest.approx(200.05 / 2)
    assert res.routed.avg_price_incl_fees == pytest.approx(200.15 / 2)
    assert res.routed.fees_quote == pytest.approx(0.1)
    assert res.fully_filled and res.unfilled_size == 0
    # reference mid = (max bid 99.95 + min ask 100) / 2 = 99.975; cost = 200.15 - 2 * 99.975 = 0.2
    assert res.reference_mid == pytest.approx(99.975)
    assert res.cost_vs_mid_quote == pytest.approx(0.2)
    assert res.cost_vs_mid_bps == pytest.approx(0.2 / 199.95 * 1e4)

    # best single venue by fee-adjusted top: B (100.05 < 100.1); all on B: 100.05 + 100.5 = 200.55
    best = baseline(res, "best_single_venue")
    assert best.fillable and best.total_quote == pytest.approx(200.55)
    assert best.savings_quote == pytest.approx(0.40)
    assert best.savings_bps == pytest.approx(0.40 / 200.55 * 1e4)  # 19.945 bps
    # equal split: 1 on each = the routed plan
    eq = baseline(res, "equal_split")
    assert eq.total_quote == pytest.approx(200.15) and eq.savings_quote == pytest.approx(0, abs=1e-9)
    # pro rata by ask size within 50 bps of each venue's mid:
    # A mid 99.95, bound 100.44975 -> 1; B mid 100, bound 100.5 (inclusive) -> 6; split 2/7 : 12/7
    # A: 2/7 * 100.1; B: 1 * 100.05 + 5/7 * 100.5
    pr = baseline(res, "pro_rata_depth")
    expected = 2 / 7 * 100.1 + 100.05 + 5 / 7 * 100.5
    assert pr.total_quote == pytest.approx(expected)
    assert pr.savings_quote == pytest.approx(expected - 200.15)


def test_sell_split_hand_checked():
    books = [
        view("a", [(100, 1), (99, 1)], [(100.2, 1)]),
        view("b", [(99.95, 1), (99.5, 3)], [(100.3, 1)]),
    ]
    res = route_order(books, "sell", size=2, fees_bps=FEES)
    # fee-adjusted bids: A 99.9, 98.901; B 99.95, 99.5 -> B 99.95 then A 99.9
    assert res.routed.total_quote == pytest.approx(99.95 + 99.9)
    best = baseline(res, "best_single_venue")  # B: 99.95 + 99.5
    assert best.total_quote == pytest.approx(199.45)
    assert best.savings_quote == pytest.approx(199.85 - 199.45)
    assert best.savings_bps > 0


def test_notional_request_is_fee_inclusive_outlay():
    res = route_order(two_venues(), "buy", notional=150.075, fees_bps=FEES)
    # B 100.05 x1 (100.05), then 50.025 of A at 100.1 effective -> 0.49975 BTC
    assert res.routed.total_quote == pytest.approx(150.075)
    assert res.routed.filled_size == pytest.approx(1 + 50.025 / 100.1)
    assert res.notional_requested == 150.075 and res.size is None


def test_single_venue_cant_fill_reported_not_a_number():
    res = route_order(two_venues(), "buy", size=7, fees_bps=FEES)
    # merged asks hold 8; B alone holds 6, A alone 2
    assert res.fully_filled
    best = baseline(res, "best_single_venue")
    assert not best.fillable and best.savings_bps is None and best.total_quote is None
    assert "b cannot fill" in best.reason
    eq = baseline(res, "equal_split")  # 3.5 on A (holds 2)
    assert not eq.fillable and "a cannot fill" in eq.reason


def test_merged_book_too_small():
    res = route_order(two_venues(), "buy", size=10, fees_bps=FEES)
    assert not res.fully_filled
    assert res.unfilled_size == pytest.approx(2) and res.unfilled_notional is None
    assert res.routed.filled_size == pytest.approx(8)
    assert all(not b.fillable for b in res.baselines)
    assert res.reason


def test_excluded_and_zero_fees():
    res = route_order(two_venues(), "buy", size=1, excluded={"b": "withdrawals suspended"})
    assert res.excluded == {"b": "withdrawals suspended"}
    assert [v.venue for v in res.venues] == ["a"]
    assert res.fees_assumed_zero
    assert res.routed.total_quote == pytest.approx(100)


def test_empty_side_is_excluded_with_reason():
    books = [*two_venues(), view("c", [(99, 1)], [])]
    res = route_order(books, "buy", size=1, fees_bps={**FEES, "c": 0})
    assert "c" in res.excluded and "empty" in res.excluded["c"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 1, "fees_bps": {"a": 1}}, "no taker fee for b"),
        ({"size": 1, "notional": 1}, "exactly one"),
        ({"size": -1}, "size"),
        ({"size": 1, "fees_bps": {"a": -1, "b": 0}}, "fees_bps"),
        ({"size": 1, "excluded": {"a": "x", "b": "y"}}, "no usable book"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        route_order(two_venues(), "buy", **kwargs)


def test_duplicate_venue_rejected():
    with pytest.raises(InvalidInputError, match="two books"):
        route_order([two_venues()[0], two_venues()[0]], "buy", size=1)


def test_result_is_frozen_and_json():
    res = route_order(two_venues(), "buy", size=2, fees_bps=FEES)
    assert RoutingResult.model_validate_json(res.model_dump_json()) == res
    with pytest.raises(Exception):  # noqa: B017 - pydantic frozen error
        res.size = 3


def test_book_ts_diff():
    books = [
        view("a", [(99, 1)], [(100, 1)], ts_ns=0 + 10**18),
        view("b", [(99, 1)], [(100, 1)], ts_ns=10**18 + 2_500_000),
    ]
    assert route_order(books, "buy", size=1).max_book_ts_diff_ms == pytest.approx(2.5)


# ------------------------------------------------------------------------------ properties

level = st.tuples(st.integers(1, 400), st.floats(0.01, 5, allow_nan=False))


@st.composite
def books(draw):
    n = draw(st.integers(1, 4))
    out, fees = [], {}
    for i in range(n):
        base = draw(st.integers(9_900, 10_100))
        asks = [(base + d / 10, s) for d, s in draw(st.lists(level, min_size=1, max_size=8))]
        bids = [(base - d / 10, s) for d, s in draw(st.lists(level, min_size=1, max_size=8))]
        out.append(view(f"v{i}", bids, asks))
        fees[f"v{i}"] = draw(st.sampled_from([0.0, 1.0, 2.5, 7.5, 10.0, 40.0]))
    return out, fees


@settings(max_examples=150, deadline=None)
@given(books(), st.sampled_from(["buy", "sell"]), st.floats(0.05, 20), st.booleans())
def test_routed_never_worse_than_any_baseline(bk, side, amount, by_notional):
    views, fees = bk
    if by_notional:
        amount *= 10_000
        res = route_order(views, side, notional=amount, fees_bps=fees)
    else:
        res = route_order(views, side, size=amount, fees_bps=fees)
    for b in res.baselines:
        if b.fillable:
            assert res.fully_filled
            assert b.savings_bps >= -1e-9, (b, res.routed)
            assert b.savings_quote >= -1e-6 * max(1.0, abs(b.total_quote))
    # totals add up
    r = res.routed
    assert math.isclose(r.total_quote, sum(c.total_quote for c in r.children), rel_tol=1e-12)
    if res.fully_filled and not by_notional:
        assert math.isclose(r.filled_size, amount, rel_tol=1e-9)


def test_strictly_better_when_split_pays():
    # Same top price on both venues but thin: any single-venue fill walks deep, the split doesn't.
    books = [
        view("a", [(99, 1)], [(100, 1), (110, 10)]),
        view("b", [(99, 1)], [(100, 1), (110, 10)]),
    ]
    res = route_order(books, "buy", size=2)
    assert baseline(res, "best_single_venue").savings_bps > 400  # 100+110 vs 100+100
    assert baseline(res, "equal_split").savings_bps == pytest.approx(0, abs=1e-9)
