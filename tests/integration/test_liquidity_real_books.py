"""Liquidity analytics on a real book: the Binance spot BTCUSDT REST depth snapshot (1000 levels a side)
recorded by hftbacktest on 2024-08-08 23:54:14 UTC, and the books that follow it.

Checks: the numpy walk equals an independent plain-Python Decimal walk; the impact curve is
monotone; ``max_size_within_slippage`` sits exactly on its limit; depth windows agree with the
integer live book ``L2Book`` on the same levels.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pytest

from market_liquidity_monitor.analytics.liquidity import (
    book_summary,
    depth_within_bps,
    impact_curve,
    market_impact,
    max_size_within_slippage,
    top_of_book,
)
from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.instrument import InstrumentId

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
RECORDING = DATA_DIR / "hftbacktest" / "spot" / "btcusdt_20240808.gz"
BTC = InstrumentId("binance", "BTC/USDT")
WINDOWS_BPS = (1, 2.5, 5, 10, 25, 30, 50, 100)

pytestmark = pytest.mark.skipif(
    not RECORDING.is_file(),
    reason=f"recorded data not found: {RECORDING} (expected <repo>/../shared/data, see its README)",
)


def _read_recording() -> tuple[int, dict, list[dict]]:
    """``(recv_ns, snapshot_json, depth_updates)``; the snapshot is the one line with ``lastUpdateId``."""
    snapshot: tuple[int, dict] | None = None
    deltas: list[dict] = []
    with gzip.open(RECORDING, "rt") as fh:
        for line in fh:
            ns, _, payload = line.partition(" ")
            msg = json.loads(payload)
            if "lastUpdateId" in msg:
                assert snapshot is None, "expected exactly one REST snapshot line"
                snapshot = (int(ns), msg)
            elif msg.get("stream", "").endswith("@depth@100ms"):
                deltas.append(msg["data"])
    assert snapshot is not None, "no REST depth snapshot in the recording"
    return snapshot[0], snapshot[1], deltas


@pytest.fixture(scope="module")
def recording() -> tuple[int, dict, list[dict]]:
    return _read_recording()


@pytest.fixture(scope="module")
def live_book(recording) -> L2Book:
    recv_ns, snap, _ = recording
    book = L2Book(BTC)
    book.apply_snapshot(snap["bids"], snap["asks"], snap["lastUpdateId"], None, recv_ns)
    return book


@pytest.fixture(scope="module")
def view(live_book) -> BookView:
    return live_book.view()


@pytest.fixture(scope="module")
def decimal_levels(recording) -> dict[str, list[tuple[Decimal, Decimal]]]:
    """The snapshot's levels as exact Decimals, best first (zero sizes dropped)."""
    _, snap, _ = recording
    bids = sorted(((Decimal(p), Decimal(q)) for p, q in snap["bids"] if Decimal(q)), reverse=True)
    asks = sorted((Decimal(p), Decimal(q)) for p, q in snap["asks"] if Decimal(q))
    return {"buy": asks, "sell": bids}


def _decimal_walk(levels, amount: Decimal, by_notional: bool) -> tuple[Decimal, Decimal, int, bool]:
    """Independent reference: plain-Python walk in Decimal -> (filled_size, filled_notional, levels, full)."""
    size = notional = Decimal(0)
    used = 0
    for price, level_size in levels:
        remaining = amount - (notional if by_notional else size)
        if remaining <= 0:
            break
        take = min(level_size, remaining / price) if by_notional else min(level_size, remaining)
        size += take
        notional += take * price
        used += 1
    return size, notional, used, (notional if by_notional else size) >= amount


def test_view_matches_the_snapshot(recording, view, live_book):
    recv_ns, snap, _ = recording
    assert view.bid_prices.size == 1000 and view.ask_prices.size == 1000
    direct = BookView.from_levels(BTC, snap["bids"], snap["asks"], ts_recv_ns=recv_ns)
    for name in ("bid_prices", "bid_sizes", "ask_prices", "ask_sizes"):
        np.testing.assert_array_equal(getattr(view, name), getattr(direct, name))
    top = top_of_book(view)
    assert (top.best_bid, top.best_bid_size, top.best_ask, top.best_ask_size) == live_book.top_of_book()
    assert top.mid_price == live_book.mid_price()
    assert (top.best_bid, top.best_ask) == (61837.63, 61837.64)  # line 8 of the recording
    assert top.spread == 0.01
    assert top.book_ts == "2024-08-08T23:54:14.206Z"


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("size", ["0.0005", "0.5", "3.78826", "5", "12.3456789", "40", "1000"])
def test_size_walk_equals_decimal_walk(view, decimal_levels, side, size):
    ref_size, ref_notional, ref_levels, ref_full = _decimal_walk(decimal_levels[side], Decimal(size), False)
    r = market_impact(view, side, size=float(size))
    assert r.fully_filled == ref_full
    assert r.levels_consumed == ref_levels
    assert r.filled_size == pytest.approx(float(ref_size), rel=1e-9)
    assert r.filled_notional == pytest.approx(float(ref_notional), rel=1e-9)
    assert r.vwap == pytest.approx(float(ref_notional / ref_size), rel=1e-9)
    mid = (decimal_levels["buy"][0][0] + decimal_levels["sell"][0][0]) / 2
    sign = 1 if side == "buy" else -1
    ref_slippage = sign * (ref_notional / ref_size - mid) / mid * 10_000
    assert r.slippage_bps == pytest.approx(float(ref_slippage), rel=1e-6, abs=1e-9)
    if not ref_full:  # 1000 BTC exceeds the visible 1000 levels: the fill is the whole side
        assert r.unfilled_size == pytest.approx(float(Decimal(size) - ref_size), rel=1e-9)


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("notional", ["50", "150000", "1000000", "2500000.55", "1e9"])
def test_notional_walk_equals_decimal_walk(view, decimal_levels, side, notional):
    with localcontext() as ctx:
        ctx.prec = 50
        ref_size, ref_notional, ref_levels, ref_full = _decimal_walk(
            decimal_levels[side], Decimal(notional), True
        )
    r = market_impact(view, side, notional=float(notional))
    assert r.fully_filled == ref_full
    assert r.levels_consumed == ref_levels
    assert r.filled_size == pytest.approx(float(ref_size), rel=1e-9)
    assert r.filled_notional == pytest.approx(float(ref_notional), rel=1e-9)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_walk_ending_exactly_on_a_level_boundary(view, decimal_levels, side):
    # The cumulative size of the first 37 levels, computed exactly: the walk consumes exactly 37.
    boundary = sum(s for _, s in decimal_levels[side][:37])
    r = market_impact(view, side, size=float(boundary))
    _, ref_notional, ref_levels, _ = _decimal_walk(decimal_levels[side], boundary, False)
    assert ref_levels == 37 and r.levels_consumed == 37
    assert r.worst_price == float(decimal_levels[side][36][0])
    assert r.filled_notional == pytest.approx(float(ref_notional), rel=1e-12)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_impact_curve_slippage_is_non_decreasing(view, side):
    sizes = np.geomspace(1e-4, 200.0, 400)
    curve = impact_curve(view, side, sizes=sizes)
    slippage = np.array([p.slippage_bps for p in curve.points])
    assert np.all(np.diff(slippage) >= -1e-9)
    # the smallest order fills at the best level: its cost is half the 0.01 spread
    assert slippage[0] == pytest.approx(top_of_book(view).spread_bps / 2, rel=1e-6)
    vwaps = np.array([p.vwap for p in curve.points])
    worse = np.diff(vwaps) * (1 if side == "buy" else -1)
    assert np.all(worse >= -1e-12 * vwaps[1:])  # monotone up to float rounding of notional / size
    # Each point equals the single-order walk.
    for i in (0, 57, 199, 399):
        single = market_impact(view, side, size=float(sizes[i]))
        assert curve.points[i].vwap == single.vwap
        assert curve.points[i].fully_filled == single.fully_filled


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("limit_bps", [0.001, 0.5, 1, 2.5, 5, 10, 12.5])  # whole side: ~12.9 / ~13.5 bps
def test_max_size_within_slippage_is_on_the_limit(view, side, limit_bps):
    r = max_size_within_slippage(view, side, limit_bps)
    assert r.size > 0 and not r.limited_by_book
    at = market_impact(view, side, size=r.size)
    assert at.slippage_bps <= limit_bps
    assert at.vwap == pytest.approx(r.vwap, rel=1e-12)
    assert r.notional == pytest.approx(at.filled_notional, rel=1e-12)
    above = market_impact(view, side, size=r.size * (1 + 1e-6))
    assert above.slippage_bps > limit_bps


def test_max_size_below_half_spread_is_zero(view):
    # The spread is 0.01 on ~61837.6: half of it is ~0.00081 bps.
    r = max_size_within_slippage(view, "buy", 0.0005)
    assert r.size == 0.0 and r.vwap is None and "bps from mid" in r.reason


def test_max_size_beyond_the_visible_book_says_so(view):
    r = max_size_within_slippage(view, "sell", 500)  # the 1000 visible bids span ~33 bps
    assert r.limited_by_book and r.size == pytest.approx(float(np.sum(view.bid_sizes)))


def test_depth_agrees_with_live_book_on_the_snapshot(view, live_book, decimal_levels):
    mid = (decimal_levels["buy"][0][0] + decimal_levels["sell"][0][0]) / 2
    for w in WINDOWS_BPS:
        d = depth_within_bps(view, w)
        expected = live_book.depth(w)
        for key, value in expected.items():
            assert getattr(d, key) == pytest.approx(value, rel=1e-12), (w, key)
        wd = Decimal(str(w))
        assert d.bid_levels == sum(p >= mid * (10_000 - wd) / 10_000 for p, _ in decimal_levels["sell"])
        assert d.ask_levels == sum(p <= mid * (10_000 + wd) / 10_000 for p, _ in decimal_levels["buy"])
    # The snapshot holds 1000 levels a side (~33-35 bps): 50 and 100 bps reach past it.
    s = book_summary(view)
    assert [d.bid_window_exceeds_visible_book for d in s.depth] == [False, False, True, True]
    assert all(-1 <= i.imbalance <= 1 for i in s.imbalance)


def test_depth_agrees_with_live_book_along_the_replay(recording):
    """Apply the diff-depth updates after the snapshot (Binance spot rule) and compare every 20th book."""
    recv_ns, snap, deltas = recording
    book = L2Book(BTC)
    book.apply_snapshot(snap["bids"], snap["asks"], snap["lastUpdateId"], None, recv_ns)
    last = snap["lastUpdateId"]
    applied = compared = 0
    for data in deltas:
        if data["u"] <= last:
            continue  # older than the book
        # first applied: U <= lastUpdateId + 1 <= u; afterwards U == previous u + 1
        assert data["U"] <= last + 1 <= data["u"], "sequence gap in the recording"
        book.apply_levels(data["b"], data["a"], data["u"], data["E"] * 1_000_000, None)
        last = data["u"]
        applied += 1
        if applied % 20:
            continue
        view = book.view()
        assert top_of_book(view).mid_price == book.mid_price()
        for w in (5, 10, 25):
            d = depth_within_bps(view, w)
            for key, value in book.depth(w).items():
                assert getattr(d, key) == pytest.approx(value, rel=1e-12), (applied, w, key)
        compared += 1
    assert applied > 3000 and compared > 150
