"""Execution backtest: calibration of the depth profile, the model walk, and the candle loop, by hand.

Reference model (``linear_model()``): half-spread 1 bps, cumulative depth 0 at 1 bps growing
linearly to 1 base unit at 11 bps (ref_volume 10, fraction 0.1), so the q-th unit fills at
``g(q) = 1 + 10 q`` bps and a size Q costs ``1 + 5 Q`` bps on average.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from market_liquidity_monitor.analytics.backtest import (
    DEFAULT_BOOK_MODEL,
    HIGH_RISK_BPS,
    OPTIMAL_BPS,
    BookModel,
    atr_bps,
    backtest_execution,
    calibrate_book_model,
    downsample_series,
    model_slippage_bps,
    validate_book_model,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId


def linear_model(ref_atr_bps: float = 10.0) -> BookModel:
    return BookModel(
        grid_bps=(1.0, 11.0),
        bid_depth_frac=(0.0, 0.1),
        ask_depth_frac=(0.0, 0.1),
        half_spread_bps=1.0,
        ref_volume=10.0,
        ref_atr_bps=ref_atr_bps,
        model_source="test",
        n_books=0,
    )


def test_model_walk_hand_checked():
    m = linear_model()
    slip, extra = model_slippage_bps(m, "buy", [0.5, 1.0, 2.0])
    assert slip == pytest.approx([1 + 2.5, 1 + 5, 1 + 10], rel=1e-6)  # last one extrapolated
    assert list(extra) == [False, False, True]
    slip, _ = model_slippage_bps(m, "sell", 1.0, volume_scale=2.0)  # half the size in the scale-1 book
    assert slip == pytest.approx(1 + 2.5, rel=1e-6)
    slip, _ = model_slippage_bps(m, "buy", 1.0, widen=2.0)
    assert slip == pytest.approx(12.0, rel=1e-6)


def test_calibration_hand_checked():
    # mid 100: asks at 1 bps (1) and 5 bps (2); bids at 1 bps (1) and 10 bps (3)
    v = BookView.from_levels(
        InstrumentId("x", "BTC/USDT"), [(99.99, 1), (99.9, 3)], [(100.01, 1), (100.05, 2)]
    )
    m = calibrate_book_model([v, v], ref_volume=10, ref_atr_bps=50, grid_bps=(1, 5, 10))
    assert m.ask_depth_frac == pytest.approx((0.1, 0.3, 0.3))
    assert m.bid_depth_frac == pytest.approx((0.1, 0.1, 0.4))
    assert m.half_spread_bps == pytest.approx(1.0)
    assert m.n_books == 2 and "x:BTC/USDT" in m.model_source
    # the model of a book, at its own conditions, vs the real walk of that book
    val = validate_book_model(m, [v], sizes=[1.0], sides=["buy"])
    # real: 1 unit at 100.01 -> 1 bps. Model knots: (half-spread 1 bps, 0) and (5 bps, 3 units), so the
    # piecewise-linear profile smears the 1-bps level: g(q) = 1 + 4q/3, average over Q=1: 1 + 2/3 bps
    assert val.points[0].real_slippage_bps_mean == pytest.approx(1.0)
    assert val.points[0].model_slippage_bps == pytest.approx(1 + 2 / 3, rel=1e-6)
    assert val.points[0].error_bps_mean == pytest.approx(2 / 3, rel=1e-5)


def test_bad_calibration_input():
    v = BookView.from_levels(InstrumentId("x", "BTC/USDT"), [(99, 1)], [(101, 1)])
    with pytest.raises(InvalidInputError, match="at least one"):
        calibrate_book_model([], 1, 1)
    with pytest.raises(InvalidInputError, match="ref_volume"):
        calibrate_book_model([v], 0, 1)
    with pytest.raises(InvalidInputError, match="increasing"):
        calibrate_book_model([v], 1, 1, grid_bps=(5, 1))


def candles(n: int = 40, volume: float = 10.0, rng_bps: float = 10.0) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    close = np.full(n, 100.0)
    return pd.DataFrame(
        {
            "open": close,
            "high": close * (1 + rng_bps / 2e4),
            "low": close * (1 - rng_bps / 2e4),
            "close": close,
            "volume": np.full(n, volume),
        },
        index=idx,
    )


def test_atr_of_constant_range():
    assert atr_bps(candles(rng_bps=10)).iloc[-1] == pytest.approx(10.0)


def test_backtest_constant_candles_hand_checked():
    # every candle: volume = ref volume, ATR 10 bps = ref ATR -> each fill costs 1 + 5 * 1 = 6 bps
    res = backtest_execution(candles(), linear_model(10.0), "buy", size=1.0)
    assert res.intervals == 40 - 14
    assert res.avg_slippage_bps == pytest.approx(6.0, rel=1e-6)
    assert res.max_slippage_bps == pytest.approx(res.min_slippage_bps)
    assert res.optimal_intervals == 26 and res.high_risk_intervals == 0
    assert res.avg_fill_price == pytest.approx(100 * (1 + 6e-4))
    assert res.total_cost_quote == pytest.approx(26 * 100 * 6e-4)
    assert res.spread_bps_percentiles["p50"] == pytest.approx(2.0)


def test_backtest_volume_and_volatility_move_cost():
    c = candles(60)
    c.loc[c.index[-10:], "volume"] = 0.5  # a twentieth of the volume: 1 unit -> 20 units at scale 1 (101 bps)
    c.loc[c.index[-10:], "high"] = 100 * (1 + 50 / 1e4)  # wider range -> higher ATR -> wider book
    res = backtest_execution(c, linear_model(10.0), "sell", size=1.0)
    assert res.max_slippage_bps > HIGH_RISK_BPS
    assert res.high_risk_intervals >= 1 and res.extrapolated_intervals == 10
    assert res.worst_interval >= c.index[-10].isoformat().replace("+00:00", "Z")


def test_lookback_is_relative_to_data_end():
    res = backtest_execution(candles(100), linear_model(), "buy", size=1.0, lookback=pd.Timedelta(hours=24))
    assert res.intervals == 24
    assert res.end == "2024-01-05T03:00:00Z"


def test_notional_and_default_model():
    res = backtest_execution(candles(), DEFAULT_BOOK_MODEL, "buy", notional=100.0)
    assert res.total_size == pytest.approx(26.0)
    assert "default" in res.model_source


@pytest.mark.parametrize(
    "kwargs, match",
    [({"size": 1, "notional": 1}, "exactly one"), ({"size": -1}, "size"), ({}, "exactly one")],
)
def test_bad_backtest_input(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        backtest_execution(candles(), linear_model(), "buy", **kwargs)


def test_too_few_candles_and_columns():
    with pytest.raises(InvalidInputError, match="at least atr_window"):
        backtest_execution(candles(10), linear_model(), "buy", size=1)
    with pytest.raises(InvalidInputError, match="volume"):
        backtest_execution(candles().drop(columns="volume"), linear_model(), "buy", size=1)


def risky_candles() -> pd.DataFrame:
    """40 constant candles (6 bps for 1 unit on ``linear_model``), except a fortieth of
    the volume at rows 20-22 and 30 (q_eff = 40 units: 1 + 5 * 40 = 201 bps) and a tenth at row 25
    (1 + 5 * 10 = 51 bps: neither high-risk nor optimal). ATR stays 10 bps, so no widening."""
    c = candles(40)
    c.iloc[[20, 21, 22, 30], c.columns.get_loc("volume")] = 0.25
    c.iloc[25, c.columns.get_loc("volume")] = 1.0
    return c


def test_series_and_risk_periods_hand_checked():
    c = risky_candles()
    res = backtest_execution(c, linear_model(10.0), "buy", size=1.0, series=True)
    s = res.series
    assert s is not None and s.bucket_intervals == 1
    assert len(s.ts) == res.intervals == 26 and s.ts[0] == res.start and s.ts[-1] == res.end
    want = np.full(26, 6.0)
    want[[20 - 14, 21 - 14, 22 - 14, 30 - 14]] = 201.0
    want[25 - 14] = 51.0
    assert s.slippage_bps == pytest.approx(tuple(want), rel=1e-6)
    assert s.fill_price == pytest.approx(tuple(100 * (1 + want / 1e4)), rel=1e-9)
    assert s.high_risk == tuple(bool(x) for x in want > HIGH_RISK_BPS)
    assert s.optimal == tuple(bool(x) for x in want < OPTIMAL_BPS)
    assert sum(s.high_risk) == res.high_risk_intervals == 4
    ts = [t.isoformat().replace("+00:00", "Z") for t in c.index]
    got = [(p.start, p.end, p.intervals, round(p.max_slippage_bps, 6)) for p in res.risk_periods]
    assert got == [(ts[20], ts[22], 3, 201.0), (ts[30], ts[30], 1, 201.0)]
    assert s.records()[20 - 14] == {
        "ts": ts[20], "slippage_bps": s.slippage_bps[6], "fill_price": s.fill_price[6],
        "high_risk": True, "optimal": False,
    }  # fmt: skip
    # off by default: the summary only
    plain = backtest_execution(c, linear_model(10.0), "buy", size=1.0)
    assert plain.series is None and plain.risk_periods is None
    assert plain.avg_slippage_bps == res.avg_slippage_bps


def test_sell_fill_price_is_below_the_close():
    res = backtest_execution(risky_candles(), linear_model(10.0), "sell", size=1.0, series=True)
    assert res.series.fill_price[6] == pytest.approx(100 * (1 - 201e-4), rel=1e-9)


def test_downsample_keeps_the_max_of_each_bucket():
    s = backtest_execution(risky_candles(), linear_model(10.0), "buy", size=1.0, series=True).series
    assert downsample_series(s, 26) is s
    d = downsample_series(s, 5)  # buckets of ceil(26 / 5) = 6 consecutive intervals -> 5 points
    assert d.bucket_intervals == 6 and len(d.ts) == 5
    for j, t in enumerate(d.ts):
        chunk = s.slippage_bps[6 * j : 6 * j + 6]
        i = 6 * j + int(np.argmax(chunk))
        assert (t, d.slippage_bps[j], d.high_risk[j]) == (s.ts[i], max(chunk), s.high_risk[i])
    # rows 20-22 (points 6-8) share bucket 6-11, row 30 (point 16) is in bucket 12-17: both kept
    assert d.high_risk == (False, True, True, False, False)
    with pytest.raises(InvalidInputError, match="max_points"):
        downsample_series(s, 0)
