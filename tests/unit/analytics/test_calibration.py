"""Book-model calibration, walk, scaling, conditions and validation, by hand.

Hand model (``hand_model()``): reference 24 h quote volume 1e6, knots at 0.001 and 0.003 of it, so
the ask side holds 1,000 quote at 1 bps and 2,000 quote at 5 bps (bids 2 and 8 bps): an order of
2,000 quote costs (1000 * 1 + 1000 * 5) / 2000 = 3 bps.
"""

from __future__ import annotations

import math
import statistics
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from market_liquidity_monitor.analytics.calibration import (
    MIN_CONDITION_CANDLES,
    BookModelSet,
    DepthModel,
    MarketConditions,
    ScalingLaw,
    build_model_set,
    calibrate_depth_model,
    conditions_at,
    depth_slippage_bps,
    modelled_book,
    rolling_conditions,
    scale_factors,
    validate_depth_model,
)
from market_liquidity_monitor.analytics.liquidity import market_impact
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId
from tests.support import decimal_vwap

INST = InstrumentId("binance", "AAA/USDT")
T0 = pd.Timestamp("2024-01-02 00:00", tz="UTC")


def cond(qv: float = 1e6, vol: float = 100.0) -> MarketConditions:
    return MarketConditions(
        ts="2024-01-01T00:00:00Z", quote_volume_24h=qv, volatility_24h_bps=vol, candles=24, source="t"
    )


def hand_model(**kw) -> DepthModel:
    fields = dict(
        venue="binance",
        symbol="AAA/USDT",
        depth_frac=(0.001, 0.003),
        bid_distance_bps=(2.0, 8.0),
        ask_distance_bps=(1.0, 5.0),
        complete_within_bps=50.0,
        half_spread_bps=0.5,
        ref=cond(),
        n_books=1,
        books_start=None,
        books_end=None,
        model_source="hand",
    )
    fields.update(kw)
    return DepthModel(**fields)


# ------------------------------------------------------------------------------------ walk


def test_walk_hand_checked():
    m = hand_model()
    slip, extra = depth_slippage_bps(m, "buy", [500.0, 1000.0, 2000.0, 3000.0])
    assert slip == pytest.approx([1.0, 1.0, 3.0, (1000 + 2000 * 5) / 3000], rel=1e-12)
    assert not extra.any()
    slip, _ = depth_slippage_bps(m, "sell", 2000.0)
    assert slip == pytest.approx((1000 * 2 + 1000 * 8) / 2000, rel=1e-12)
    # size_factor 2: 1,000 quote walks like 2,000 in the reference book; cost_factor scales the bps
    slip, _ = depth_slippage_bps(m, "buy", 1000.0, size_factor=2.0, cost_factor=3.0)
    assert slip == pytest.approx(3 * 3.0, rel=1e-12)


def test_walk_past_the_last_knot_is_flagged_and_extends_the_slope():
    m = hand_model()
    # tail: distance grows from 5 bps at (5 - 1) / (2000 - 500) bps per quote unit (level midpoints)
    slope = 4 / 1500
    area = 1000 * 1 + 2000 * 5 + 1000 * 5 + slope * 1000**2 / 2
    slip, extra = depth_slippage_bps(m, "buy", 4000.0)
    assert slip[()] == pytest.approx(area / 4000, rel=1e-12) and bool(extra[()])


def test_walk_rejects_bad_notional():
    with pytest.raises(InvalidInputError, match="notional"):
        depth_slippage_bps(hand_model(), "buy", [100.0, 0.0])


def test_modelled_book_walks_like_the_model():
    m = hand_model()
    view = modelled_book(m, INST, 100.0, size_factor=2.0, cost_factor=3.0)
    assert view.ask_prices == pytest.approx([100 * (1 + 3e-4), 100 * (1 + 15e-4)])
    assert view.bid_sizes == pytest.approx([1000 / 2 / 100, 2000 / 2 / 100])
    for notional in (200.0, 500.0, 1200.0):
        want, _ = depth_slippage_bps(m, "buy", notional, 2.0, 3.0)
        # vs the model's mid (100): the view's own (best bid + best ask) / 2 is 99.985 here
        got = market_impact(view, "buy", size=notional / 100)
        assert (got.vwap - 100) / 100 * 1e4 == pytest.approx(float(want[()]), rel=1e-9)
        vwap = decimal_vwap(view.ask_prices, view.ask_sizes, Decimal(repr(notional / 100)))
        assert float((vwap - 100) / 100 * 10_000) == pytest.approx(float(want[()]), rel=1e-9)


# --------------------------------------------------------------------------------- scaling


def test_invariance_and_proportional_factors():
    ref = cond(qv=1e6, vol=100.0)
    a, b = scale_factors(ref, 8e6, 100.0)  # 8x the volume: r = 8^(-1/3)
    assert (a, b) == pytest.approx((0.5, 0.5))
    a, b = scale_factors(ref, 1e6, 800.0)  # 8x the volatility: r = 8^(2/3)
    assert (a, b) == pytest.approx((4.0, 4.0))
    a, b = scale_factors(ref, 8e6, 200.0, ScalingLaw.PROPORTIONAL)
    assert (a, b) == pytest.approx((1 / 8, 2.0))


# ------------------------------------------------------------------------------ conditions


def hourly_candles(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.concatenate(([100.0], close[:-1]))
    vol = rng.uniform(5, 15, n)
    idx = pd.date_range(T0 - pd.Timedelta(hours=n), periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": opens, "high": np.maximum(opens, close) * 1.001, "low": np.minimum(opens, close) * 0.999,
         "close": close, "volume": vol},
        index=idx,
    )  # fmt: skip


def test_rolling_conditions_against_a_plain_loop():
    c = hourly_candles()
    got = rolling_conditions(c)
    for k in (30, 59):  # full 24 h windows: candles k-23..k, returns ending there
        rows = range(k - 23, k + 1)
        qv = sum(c["volume"].iloc[i] * c["close"].iloc[i] for i in rows) / 24 * 24
        rets = [math.log(c["close"].iloc[i] / c["close"].iloc[i - 1]) for i in rows]
        vol = statistics.stdev(rets) * math.sqrt(24) * 1e4
        assert got["quote_volume_24h"].iloc[k] == pytest.approx(qv, rel=1e-12)
        assert got["volatility_24h_bps"].iloc[k] == pytest.approx(vol, rel=1e-9)
        assert got["candles"].iloc[k] == 24
    assert np.isnan(got["quote_volume_24h"].iloc[MIN_CONDITION_CANDLES - 2])  # too few candles yet


def test_conditions_at_uses_only_closed_candles():
    c = hourly_candles()
    roll = rolling_conditions(c)
    k = 40
    at_close = conditions_at(c, c.index[k] + pd.Timedelta(hours=1))
    assert at_close.quote_volume_24h == pytest.approx(roll["quote_volume_24h"].iloc[k])
    assert at_close.ts == (c.index[k] + pd.Timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    before_close = conditions_at(c, c.index[k] + pd.Timedelta(minutes=59))
    assert before_close.volatility_24h_bps == pytest.approx(roll["volatility_24h_bps"].iloc[k - 1])
    with pytest.raises(InvalidInputError, match="at least 13"):
        conditions_at(c, c.index[5])


def test_candle_frame_errors():
    c = hourly_candles()
    with pytest.raises(InvalidInputError, match="volume"):
        rolling_conditions(c.drop(columns="volume"))
    with pytest.raises(InvalidInputError, match="increasing"):
        rolling_conditions(c.iloc[::-1])
    with pytest.raises(InvalidInputError, match="DatetimeIndex"):
        rolling_conditions(c.reset_index(drop=True))


# ----------------------------------------------------------------------------- calibration


def ladder(ts_ns: int, near_bps: float, near_notional: float, inst: InstrumentId = INST) -> BookView:
    """Mid 100: on each side one level at ``near_bps`` holding ``near_notional`` quote at mid and a
    small level at 60 bps (so the visible book reaches past the 50 bps completeness bound)."""
    q = near_notional / 100
    return BookView.from_levels(
        inst,
        [(100 * (1 - near_bps / 1e4), q), (100 * (1 - 60 / 1e4), 1.0)],
        [(100 * (1 + near_bps / 1e4), q), (100 * (1 + 60 / 1e4), 1.0)],
        ts_event_ns=ts_ns,
    )


def _fraction_area(levels: list[tuple[Fraction, Fraction]], x: Fraction) -> Fraction:
    """integral_0^x of the distance of the level holding the x-th quote unit (plain loop)."""
    area, left = Fraction(0), x
    for dist, notional in levels:
        take = min(left, notional)
        area += take * dist
        left -= take
        if left == 0:
            return area
    raise AssertionError("past the book")


def test_calibration_averages_the_walks_by_hand():
    t = int(T0.value)
    views = [ladder(t, 1.0, 1e5), ladder(t + 2_000_000_000, 3.0, 2e5)]
    m = calibrate_depth_model(views, cond(qv=1e9))
    # cap = the smallest depth within 50 bps of any view and side: 1e5 quote; knots 100 quote x 10^(k/8)
    assert m.depth_frac[-1] * 1e9 == pytest.approx(1e5)
    assert m.depth_frac[0] * 1e9 == pytest.approx(100.0)
    assert m.half_spread_bps == pytest.approx(2.0)
    knots = [Fraction(repr(f * 1e9)) for f in m.depth_frac]
    books = [[(Fraction(1), Fraction(10**5))], [(Fraction(3), Fraction(2 * 10**5))]]
    prev = Fraction(0)
    for i, x in enumerate(knots):
        mean_area = sum(_fraction_area(b, x) - _fraction_area(b, prev) for b in books) / 2
        assert m.ask_distance_bps[i] == pytest.approx(float(mean_area / (x - prev)), rel=1e-9)
        prev = x
    # both books are flat (one level each) inside the cap: every level sits at the mean, 2 bps
    assert m.ask_distance_bps == pytest.approx([2.0] * len(knots), rel=1e-9)
    assert m.bid_distance_bps == pytest.approx(m.ask_distance_bps, rel=1e-9)
    assert "calibrated on 2 binance:AAA/USDT books" in m.model_source


def test_model_slippage_equals_the_mean_real_slippage_at_every_knot():
    """The defining property of averaging the walks: at each knot the model's slippage is the mean
    of ``market_impact`` over the calibration views (here books with several levels)."""
    t = int(T0.value)

    def book(shift: float, ts: int) -> BookView:
        bids = [(100 * (1 - (d + shift) / 1e4), s) for d, s in ((0.5, 3.0), (2, 10.0), (7, 40.0), (60, 1.0))]
        asks = [(100 * (1 + (d + shift) / 1e4), s) for d, s in ((0.5, 5.0), (3, 15.0), (9, 30.0), (60, 1.0))]
        return BookView.from_levels(INST, bids, asks, ts_event_ns=ts)

    views = [book(0.0, t), book(1.5, t + 1), book(0.2, t + 2)]
    m = calibrate_depth_model(views, cond(qv=1e8))
    for side in ("buy", "sell"):
        for f in m.depth_frac[::3]:
            x = f * 1e8
            real = np.mean([market_impact(v, side, size=x / 100).slippage_bps for v in views])
            got, extra = depth_slippage_bps(m, side, x)
            assert float(got[()]) == pytest.approx(real, rel=1e-9) and not bool(extra[()])


def test_calibration_errors():
    t = int(T0.value)
    with pytest.raises(InvalidInputError, match="at least one"):
        calibrate_depth_model([], cond())
    other = ladder(t, 1.0, 1e5, InstrumentId("binance", "BBB/USDT"))
    with pytest.raises(InvalidInputError, match="one instrument"):
        calibrate_depth_model([ladder(t, 1.0, 1e5), other], cond())
    short = BookView.from_levels(INST, [(99.99, 10.0)], [(100.01, 10.0)], ts_event_ns=t)
    with pytest.raises(InvalidInputError, match=r"ends 1\.00 bps from mid"):
        calibrate_depth_model([short], cond())
    crossed = BookView.from_levels(
        INST, [(100.02, 1.0), (99.0, 1.0)], [(100.01, 1.0), (101, 1.0)], ts_event_ns=t
    )
    with pytest.raises(InvalidInputError, match="crossed"):
        calibrate_depth_model([crossed], cond())
    with pytest.raises(InvalidInputError, match="first knot"):
        calibrate_depth_model([ladder(t, 1.0, 50.0)], cond(qv=1e9))  # 50 quote < 100 quote first knot


# ------------------------------------------------------------------------------ validation


def test_validation_by_hand():
    t = int(T0.value)
    m = calibrate_depth_model([ladder(t, 1.0, 1e6)], cond(qv=1e9))  # every level at 1 bps
    real = [ladder(t + 1, 2.0, 1e6), ladder(t + 2, 4.0, 1e6)]  # 2 and 4 bps for any order inside
    v = validate_depth_model(m, real, cond(qv=1e9), notionals=[1e4, 1e5], label="oos")
    assert v.label == "oos" and v.n_books == 2 and v.target == "binance:AAA/USDT"
    assert (v.size_factor, v.cost_factor) == pytest.approx((1.0, 1.0))
    for p in v.points:
        assert p.model_slippage_bps == pytest.approx(1.0)
        assert p.real_slippage_bps_mean == pytest.approx(3.0)
        assert (p.real_slippage_bps_min, p.real_slippage_bps_max) == pytest.approx((2.0, 4.0))
        assert p.error_bps_mean == pytest.approx(-2.0)
        assert p.abs_error_bps_mean == pytest.approx(2.0) and p.abs_error_bps_max == pytest.approx(3.0)
    assert v.mean_abs_error_bps == pytest.approx(2.0) and v.max_abs_error_bps == pytest.approx(3.0)
    assert v.point("sell", 2e4).notional == 1e4 and v.point("buy", 9e4).notional == 1e5
    # at 8x the volume (same volatility) the model book is 2x thicker and 2x tighter: 0.5 bps
    v8 = validate_depth_model(m, real, cond(qv=8e9), notionals=[1e4])
    assert v8.points[0].model_slippage_bps == pytest.approx(0.5)


def test_validation_errors():
    t = int(T0.value)
    m = calibrate_depth_model([ladder(t, 1.0, 1e6)], cond(qv=1e9))
    with pytest.raises(InvalidInputError, match="at least one"):
        validate_depth_model(m, [], cond())
    with pytest.raises(InvalidInputError, match="notional"):
        validate_depth_model(m, [ladder(t, 1.0, 1e6)], cond(), notionals=[0])
    from market_liquidity_monitor.domain.errors import InsufficientLiquidityError

    with pytest.raises(InsufficientLiquidityError, match="cannot fill"):
        validate_depth_model(m, [ladder(t, 1.0, 1e6)], cond(), notionals=[1e9])


# ------------------------------------------------------------------------------- model set


def five_minute(n: int, seed: int, volume: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    idx = pd.date_range(T0 - pd.Timedelta(minutes=5 * n), periods=n, freq="5min", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": np.full(n, volume)}, index=idx
    )


def test_model_set_splits_validates_and_scales():
    t = int(T0.value)
    a_inst, b_inst = INST, InstrumentId("binance", "BBB/USDT")
    books = {
        "AAA/USDT": [ladder(t + i * 10**9, 1.0 + 0.1 * i, 1e6, a_inst) for i in range(4)],
        "BBB/USDT": [ladder(t + i * 10**9, 2.0, 2e6, b_inst) for i in range(4)],
    }
    candles = {"AAA/USDT": five_minute(400, 1, 2e5), "BBB/USDT": five_minute(400, 2, 1e4)}
    ms = build_model_set(books, candles, calibration_fraction=0.5, notionals=[1e4])
    assert isinstance(ms, BookModelSet)
    assert [m.symbol for m in ms.models] == ["AAA/USDT", "BBB/USDT"]
    a = ms.calibrated("AAA/USDT")
    assert a.n_books == 2 and a.error.label == "out-of-sample" and a.error.n_books == 2
    assert [v.label for v in ms.in_sample] == ["in-sample", "in-sample"]
    assert {v.label for v in ms.cross} == {
        "BBB/USDT predicted from AAA/USDT (out of sample)",
        "AAA/USDT predicted from BBB/USDT (out of sample)",
    }
    # calibration conditions: the 24 h of candles closed before the first calibration book
    want = conditions_at(candles["AAA/USDT"], T0)
    assert a.ref.quote_volume_24h == pytest.approx(want.quote_volume_24h)
    # an unrecorded asset picks the calibrated asset nearest in log(volatility x quote volume)
    near_b = MarketConditions(
        ts="2024-01-02T00:00:00Z", quote_volume_24h=ms.calibrated("BBB/USDT").ref.quote_volume_24h * 1.1,
        volatility_24h_bps=ms.calibrated("BBB/USDT").ref.volatility_24h_bps, candles=288, source="t",
    )  # fmt: skip
    m = ms.model_for("CCC/USDT", near_b)
    assert m.scaled_from == "binance:BBB/USDT" and m.applies_to == "CCC/USDT"
    assert m.error.label == "AAA/USDT predicted from BBB/USDT (out of sample)"
    assert m.model_source.startswith("scaled from binance:BBB/USDT by market microstructure invariance")
    assert "mean |error|" in m.model_source
    assert ms.model_for("AAA/USDT") is a
    with pytest.raises(InvalidInputError, match="no recorded book"):
        ms.model_for("CCC/USDT")


def test_model_set_errors():
    t = int(T0.value)
    books = {"AAA/USDT": [ladder(t + i, 1.0, 1e6) for i in range(3)]}
    with pytest.raises(InvalidInputError, match="no candles"):
        build_model_set(books, {})
    with pytest.raises(InvalidInputError, match="calibration_fraction"):
        build_model_set(books, {"AAA/USDT": five_minute(400, 1, 1e4)}, calibration_fraction=1.0)
    with pytest.raises(InvalidInputError, match="cannot be split"):
        build_model_set({"AAA/USDT": books["AAA/USDT"][:1]}, {"AAA/USDT": five_minute(400, 1, 1e4)})
