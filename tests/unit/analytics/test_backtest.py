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
    backtest_order,
    calibrate_book_model,
    downsample_series,
    model_slippage_bps,
    validate_book_model,
)
from market_liquidity_monitor.analytics.calibration import (
    DepthModel,
    conditions_at,
    depth_slippage_bps,
    modelled_book,
    scale_factors,
)
from market_liquidity_monitor.analytics.liquidity import market_impact
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
    c = alternating()
    res = backtest_execution(c, DEFAULT_BOOK_MODEL, "buy", notional=100.0, lookback=pd.Timedelta(hours=10))
    opens = c["open"].to_numpy()[-10:]
    assert res.total_size == pytest.approx(float(np.sum(100.0 / opens)))
    assert res.mid_price_source.startswith("open of each candle")
    # the frozen default is the recorded ETH/USDT model scaled, with its validated error; never "default"
    assert res.model_source.startswith("scaled from binance:ETH/USDT") and "mean |error|" in res.model_source
    assert DEFAULT_BOOK_MODEL.error.label == "BTC/USDT predicted from ETH/USDT (out of sample)"


def test_backtest_execution_rejects_no_model():
    with pytest.raises(InvalidInputError, match="no book model"):
        backtest_execution(alternating(), None, "buy", size=1.0)


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


# ------------------------------------------------------------------------------- one order
#
# ``alternating()``: 60 hourly candles closing 100, 101, 100, ... (each opens at the previous close),
# volume 10: every full 24 h window has the same quote volume and volatility, so from candle 25 on
# the model book equals its reference (scale factors 1) and fills are hand-computable.
# ``hand_depth()``: asks 1,000 quote at 1 bps then 2,000 at 5 bps; bids 1,000 at 2 bps then 2,000
# at 8 bps. Window: candles 30..39 (opens 101 at even positions of the window, 100 at odd ones).

FEE = {"fee_bps": 10.0, "fee_source": "test schedule, 0.10 % taker"}


def alternating(n: int = 60, volume: float = 10.0) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    close = np.where(np.arange(n) % 2 == 0, 100.0, 101.0)
    opens = np.concatenate(([101.0], close[:-1]))
    return pd.DataFrame(
        {"open": opens, "high": np.maximum(opens, close), "low": np.minimum(opens, close), "close": close,
         "volume": np.full(n, volume)},
        index=idx,
    )  # fmt: skip


def hand_depth(c: pd.DataFrame) -> DepthModel:
    ref = conditions_at(c, c.index[30])
    qv = ref.quote_volume_24h
    return DepthModel(
        venue="binance", symbol="AAA/USDT", depth_frac=(1000 / qv, 3000 / qv),
        bid_distance_bps=(2.0, 8.0), ask_distance_bps=(1.0, 5.0), complete_within_bps=50.0,
        half_spread_bps=0.5, ref=ref, n_books=1, books_start=None, books_end=None, model_source="hand",
    )  # fmt: skip


def _window(c):
    return {"start": c.index[30], "end": c.index[39]}


def test_arrival_buy_hand_checked():
    c = alternating()
    m = hand_depth(c)
    q = 2000 / 101  # 2,000 quote at the arrival mid 101 -> (1000 * 1 + 1000 * 5) / 2000 = 3 bps
    r = backtest_order(c, m, "buy", size=q, **FEE, **_window(c), symbol="AAA/USDT")
    assert (r.start, r.end, r.candles, r.interval_s) == (
        "2024-01-02T06:00:00Z",
        "2024-01-02T15:00:00Z",
        10,
        3600.0,
    )
    assert r.arrival_mid_price == 101.0 and r.arrival_ts == r.start and len(r.slices) == 1
    fill = 101 * (1 + 3e-4)
    sl = r.slices[0]
    assert (sl.ts, sl.size, sl.mid_price) == (r.start, pytest.approx(q), 101.0)
    assert (sl.size_factor, sl.cost_factor) == pytest.approx((1.0, 1.0), rel=1e-9)
    assert sl.slippage_bps == pytest.approx(3.0, rel=1e-9) and sl.fill_price == pytest.approx(fill, rel=1e-12)
    assert r.filled_size == pytest.approx(q) and r.avg_fill_price == pytest.approx(fill, rel=1e-12)
    assert r.avg_fill_price_incl_fees == pytest.approx(fill * 1.001, rel=1e-12)
    assert r.fee_quote == pytest.approx(fill * q * 1e-3, rel=1e-12)
    assert r.impact_quote == pytest.approx((fill - 101) * q, rel=1e-9)
    assert r.market_move_quote == 0.0
    assert r.cost_vs_arrival_quote == pytest.approx((fill * 1.001 - 101) * q, rel=1e-9)
    assert r.cost_vs_arrival_bps == pytest.approx((fill * 1.001 - 101) / 101 * 1e4, rel=1e-9)
    assert r.impact_bps == pytest.approx(3.0, rel=1e-9)
    assert r.fee_cost_bps == pytest.approx(fill * 1e-3 / 101 * 1e4, rel=1e-9)
    assert r.last_close == 101.0 and r.last_close_ts == r.end
    assert r.pnl_quote == pytest.approx(q * (101 - fill * 1.001), rel=1e-9)
    assert r.pnl_pct == pytest.approx((101 / (fill * 1.001) - 1) * 100, rel=1e-9)
    assert r.fee_source == FEE["fee_source"] and r.model_source == "hand" and r.model_error is None
    assert "unknown" in r.model_error_note


def test_arrival_sell_mirrors_the_signs():
    c = alternating()
    q = 2000 / 101  # bids: (1000 * 2 + 1000 * 8) / 2000 = 5 bps
    r = backtest_order(c, hand_depth(c), "sell", size=q, **FEE, **_window(c))
    fill = 101 * (1 - 5e-4)
    incl = fill * (1 - 1e-3)
    assert r.avg_fill_price == pytest.approx(fill, rel=1e-12) and r.avg_fill_price_incl_fees == pytest.approx(
        incl
    )
    assert r.impact_quote == pytest.approx((101 - fill) * q, rel=1e-9) and r.impact_quote > 0
    assert r.cost_vs_arrival_quote == pytest.approx((101 - incl) * q, rel=1e-9)
    assert r.pnl_quote == pytest.approx(q * (incl - 101), rel=1e-9)


def test_arrival_at_a_later_candle_counts_the_move_since_the_decision():
    c = alternating()
    q = 10.0
    at = c.index[33] + pd.Timedelta(minutes=10)  # inside candle 33, which opens at 100
    r = backtest_order(c, hand_depth(c), "buy", size=q, at=at, **FEE, **_window(c))
    assert r.slices[0].ts == "2024-01-02T09:00:00Z" and r.slices[0].mid_price == 100.0
    assert r.market_move_quote == pytest.approx(q * (100 - 101))
    assert r.cost_vs_arrival_quote == pytest.approx(
        r.market_move_quote + r.impact_quote + r.fee_quote, rel=1e-12
    )


def test_twap_slices_hand_checked():
    c = alternating()
    r = backtest_order(
        c, hand_depth(c), "buy", size=40.0, schedule="twap", slice_candles=3, **FEE, **_window(c)
    )
    # slices at candles 30, 33, 36, 39 (opens 101, 100, 101, 100), 10 base units each
    assert [s.ts for s in r.slices] == [
        c.index[i].isoformat().replace("+00:00", "Z") for i in (30, 33, 36, 39)
    ]
    assert [s.size for s in r.slices] == pytest.approx([10.0] * 4)
    mids = [101.0, 100.0, 101.0, 100.0]
    want = [(1000 * 1 + 10 * 5) / 1010, 1.0, (1000 * 1 + 10 * 5) / 1010, 1.0]  # 1,010 / 1,000 quote
    assert [s.mid_price for s in r.slices] == mids
    assert [s.slippage_bps for s in r.slices] == pytest.approx(want, rel=1e-9)
    fills = [mm * (1 + w / 1e4) for mm, w in zip(mids, want, strict=True)]
    assert r.avg_fill_price == pytest.approx(sum(fills) / 4, rel=1e-12)
    assert r.market_move_quote == pytest.approx(10 * sum(mm - 101 for mm in mids))  # -20
    assert r.impact_quote == pytest.approx(
        sum(10 * (f - mm) for f, mm in zip(fills, mids, strict=True)), rel=1e-9
    )
    assert r.fee_quote == pytest.approx(sum(10 * f for f in fills) * 1e-3, rel=1e-12)
    assert r.cost_vs_arrival_quote == pytest.approx(
        r.market_move_quote + r.impact_quote + r.fee_quote, rel=1e-12
    )
    # P&L = the price move from arrival to the last close on Q, minus the shortfall
    assert r.pnl_quote == pytest.approx(40 * (101 - 101) - r.cost_vs_arrival_quote, rel=1e-9)
    assert r.pnl_quote == pytest.approx(40 * (101 - r.avg_fill_price_incl_fees), rel=1e-9)
    # the cost curve: the whole 40 units at every candle of the window (4,040 / 4,000 quote)
    curve = r.cost_curve
    assert curve.intervals == 10 and curve.total_size == pytest.approx(400.0)
    big = [
        (1000 + 2000 * 5 + 1040 * 5 + 1040**2 / 2 * 4 / 1500) / 4040,
        (1000 + 2000 * 5 + 1000 * 5 + 1000**2 / 2 * 4 / 1500) / 4000,
    ]
    assert curve.series.slippage_bps == pytest.approx(big * 5, rel=1e-9)
    assert curve.extrapolated_intervals == 10  # 4,000 quote is past the modelled 3,000
    assert r.extrapolated_slices == 0


def test_vwap_slices_follow_the_volume():
    c = alternating()
    vol = c["volume"].to_numpy().copy()
    vol[30:40] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    c["volume"] = vol
    r = backtest_order(
        c, hand_depth(c), "sell", size=55.0, schedule="vwap", slice_candles=2, **FEE, **_window(c)
    )
    blocks = [1 + 2, 3 + 4, 5 + 6, 7 + 8, 9 + 10]
    assert [s.size for s in r.slices] == pytest.approx([55.0 * b / 55 for b in blocks])
    m = hand_depth(c)
    for s in r.slices:  # the book of the 24 h closed before each slice, walked as a BookView
        t = pd.Timestamp(s.ts)
        cond = conditions_at(c, t)
        a, b = scale_factors(m.ref, cond.quote_volume_24h, cond.volatility_24h_bps)
        assert (s.size_factor, s.cost_factor) == pytest.approx((float(a), float(b)), rel=1e-9)
        view = modelled_book(m, InstrumentId("binance", "AAA/USDT"), s.mid_price, float(a), float(b))
        got = market_impact(view, "sell", size=s.size)
        assert s.fill_price == pytest.approx(got.vwap, rel=1e-12)


def test_notional_order_is_sized_at_the_arrival_mid():
    c = alternating()
    r = backtest_order(c, hand_depth(c), "buy", notional=2000.0, **FEE, **_window(c))
    assert r.notional_requested == 2000.0 and r.size_requested is None
    assert r.filled_size == pytest.approx(2000 / 101)


def test_lookback_window_and_model_error_note():
    c = alternating()
    m = DEFAULT_BOOK_MODEL
    r = backtest_order(c, m, "buy", size=1.0, fee_bps=0, fee_source="none (maker rebate ignored)",
                       lookback=pd.Timedelta(hours=10))  # fmt: skip
    assert r.candles == 10 and r.end == "2024-01-03T11:00:00Z" and r.fee_quote == 0
    assert r.model_scaled and r.model_calibrated_on == "binance:ETH/USDT"
    assert r.model_error is m.error and r.model_error_at_size.notional == 10_000.0
    assert "outside the validated range" in r.model_error_note  # a 100-quote order


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fee_bps": -1, "fee_source": "x"}, "fee_bps"),
        ({"fee_bps": 1, "fee_source": " "}, "fee_source"),
        ({**FEE, "schedule": "iceberg"}, "arrival, twap, vwap"),
        ({**FEE, "schedule": "twap", "slice_candles": 0}, "slice_candles"),
        ({**FEE, "at": "2024-01-10"}, "outside the window"),
        ({**FEE, "schedule": "twap", "at": "2024-01-02T07:00Z"}, "arrival schedule only"),
        ({**FEE, "lookback": pd.Timedelta(hours=2), "start": "2024-01-02"}, "not both"),
        ({**FEE, "start": "2024-01-01T05:00Z"}, "before the window"),
        ({**FEE, "start": "2025-01-01", "end": "2025-01-02"}, "no candle in the window"),
        ({**FEE, "start": "yesterday-ish"}, "not a timestamp"),
    ],
)
def test_bad_order_input(kwargs, match):
    c = alternating()
    kw = {"start": c.index[30], "end": c.index[39], **kwargs}
    if "lookback" in kw:
        kw.pop("end")
    with pytest.raises(InvalidInputError, match=match):
        backtest_order(c, hand_depth(c), "buy", size=1.0, **kw)


def test_order_needs_a_validated_depth_model():
    c = alternating()
    with pytest.raises(InvalidInputError, match="DepthModel"):
        backtest_order(c, linear_model(), "buy", size=1.0, **FEE)
    with pytest.raises(InvalidInputError, match="no book model"):
        backtest_order(c, None, "buy", size=1.0, **FEE)


def test_cost_curve_matches_an_arrival_order_at_each_candle():
    c = alternating()
    m = hand_depth(c)
    r = backtest_order(c, m, "buy", size=15.0, **FEE, **_window(c))
    for i in (0, 3, 7):
        one = backtest_order(c, m, "buy", size=15.0, at=c.index[30 + i], **FEE, **_window(c))
        assert r.cost_curve.series.slippage_bps[i] == pytest.approx(one.slices[0].slippage_bps, rel=1e-12)
    want, _ = depth_slippage_bps(m, "buy", 15.0 * 101)
    assert r.slices[0].slippage_bps == pytest.approx(float(want[()]), rel=1e-9)
