"""One order over a real window: "How would buying 500 SOL have performed over the last 7 days?"

Candles: genetrader Binance SOL/USDT 5m (last candle 2024-09-07 02:15 UTC), read here with pandas.
SOL has no recorded book, so the model is the recorded ETH/USDT model scaled by invariance
(``BookModelSet.model_for``). Every figure is recomputed from the candle file by hand: the trailing
24 h conditions, the scale factor, a Decimal walk of the scaled model book, the fee, the
implementation shortfall and the P&L marked to the last close.
"""

from __future__ import annotations

import itertools
import math
import statistics
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from market_liquidity_monitor.analytics.backtest import backtest_order
from market_liquidity_monitor.analytics.calibration import DepthModel, conditions_at
from market_liquidity_monitor.ingest.book_samples import recorded_model_set

FEE_BPS = 10.0
FEE_SOURCE = "Binance spot VIP 0 taker fee 0.100 % (binance.com fee schedule)"
SIZE = 500.0


@pytest.fixture(scope="module")
def sol(data_dir: Path) -> pd.DataFrame:
    return pd.read_feather(data_dir / "genetrader" / "binance" / "SOL_USDT-5m.feather").set_index("date")


@pytest.fixture(scope="module")
def model(data_dir, sol) -> DepthModel:
    ms = recorded_model_set(data_dir)
    return ms.model_for("SOL/USDT", conditions_at(sol, sol.index[-1], "SOL/USDT 5m"))


def _window(sol):
    return sol[sol.index > sol.index[-1] - pd.Timedelta(days=7)]


def _factor_by_hand(sol: pd.DataFrame, t: pd.Timestamp, model: DepthModel) -> float:
    """r = (vol / vol_ref)^(2/3) * (qv / qv_ref)^(-1/3) over the 288 5m candles before ``t``."""
    before = sol[sol.index < t].iloc[-288:]
    assert len(before) == 288 and before.index[-1] == t - pd.Timedelta(minutes=5)
    qv = float((before["volume"] * before["close"]).sum())
    closes = sol[sol.index < t]["close"].iloc[-289:].tolist()
    rets = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    vol = statistics.stdev(rets) * math.sqrt(288) * 1e4
    return (vol / model.ref.volatility_24h_bps) ** (2 / 3) * (qv / model.ref.quote_volume_24h) ** (-1 / 3)


def _decimal_slippage(model: DepthModel, side: str, notional: float, r: float) -> float:
    """Walk the scaled model book (level i: notional (f_i - f_{i-1}) * qv_ref / r at r * d_i bps) in Decimal."""
    d = model.ask_distance_bps if side == "buy" else model.bid_distance_bps
    qv, rr = Decimal(repr(model.ref.quote_volume_24h)), Decimal(repr(r))
    left, area, prev = Decimal(repr(notional)), Decimal(0), Decimal(0)
    for f, dist in zip(model.depth_frac, d, strict=True):
        f = Decimal(repr(f))
        take = min(left, (f - prev) * qv / rr)
        area += take * rr * Decimal(repr(dist))
        left -= take
        prev = f
        if left == 0:
            break
    assert left == 0, "inside the modelled depth"
    return float(area / Decimal(repr(notional)))


def test_500_sol_arrival_over_the_last_7_days(sol, model):
    r = backtest_order(
        sol, model, "buy", size=SIZE, fee_bps=FEE_BPS, fee_source=FEE_SOURCE, lookback=pd.Timedelta(days=7),
        symbol="SOL/USDT",
    )  # fmt: skip
    w = _window(sol)
    assert r.candles == len(w) == 2016
    assert (pd.Timestamp(r.start), pd.Timestamp(r.end)) == (w.index[0], w.index[-1])
    o0, c_last = float(w["open"].iloc[0]), float(w["close"].iloc[-1])
    assert (o0, float(w["close"].iloc[0]), c_last) == (137.65, 137.9, 124.86)  # SOL fell 137.90 -> 124.86
    assert r.arrival_mid_price == o0 and r.last_close == c_last
    # the model: ETH/USDT's, scaled, with the validated error of that scaling
    assert r.model_scaled and r.model_calibrated_on == "binance:ETH/USDT"
    assert r.model_source.startswith("scaled from binance:ETH/USDT by market microstructure invariance")
    assert r.model_error.label == "BTC/USDT predicted from ETH/USDT (out of sample)"
    assert r.model_error_at_size.notional == 100_000.0  # nearest bucket to 500 x 137.65 = 68,825 quote
    # one slice: the modelled book of the 24 h before the window, walked in Decimal
    (s,) = r.slices
    rr = _factor_by_hand(sol, w.index[0], model)
    assert s.size_factor == pytest.approx(rr, rel=1e-9) and s.cost_factor == pytest.approx(rr, rel=1e-9)
    slip = _decimal_slippage(model, "buy", SIZE * o0, rr)
    assert s.slippage_bps == pytest.approx(slip, rel=1e-9) and not s.extrapolated
    fill = o0 * (1 + slip / 1e4)
    incl = fill * (1 + FEE_BPS / 1e4)
    assert r.avg_fill_price == pytest.approx(fill, rel=1e-12)
    assert r.avg_fill_price_incl_fees == pytest.approx(incl, rel=1e-12)
    assert r.filled_size == SIZE and r.filled_notional_quote == pytest.approx(SIZE * fill, rel=1e-12)
    assert r.fee_quote == pytest.approx(SIZE * fill * FEE_BPS / 1e4, rel=1e-12)
    # implementation shortfall vs the arrival open: impact + fee, no market move for an arrival order
    assert r.cost_vs_arrival_quote == pytest.approx(SIZE * (incl - o0), rel=1e-9)
    assert r.cost_vs_arrival_bps == pytest.approx((incl - o0) / o0 * 1e4, rel=1e-9)
    assert r.market_move_quote == 0 and r.impact_bps == pytest.approx(slip, rel=1e-9)
    # P&L marked to the last close: a loss of about 500 x (124.86 - 137.65) = -6,395 plus costs
    pnl = SIZE * (c_last - incl)
    assert r.pnl_quote == pytest.approx(pnl, rel=1e-12) and r.pnl_quote < -6_395
    assert r.pnl_quote == pytest.approx(SIZE * (c_last - o0) - r.cost_vs_arrival_quote, rel=1e-9)
    assert r.pnl_pct == pytest.approx((c_last / incl - 1) * 100, rel=1e-9)
    # the cost curve is context: the same 500 SOL at each of the 2016 candles, not one order
    assert r.cost_curve.intervals == 2016 and len(r.cost_curve.series.ts) == 2016
    assert r.cost_curve.series.slippage_bps[0] == pytest.approx(slip, rel=1e-9)
    print(
        f"\n500 SOL buy at {r.start}: arrival {o0}, fill {r.avg_fill_price:.4f} ({s.slippage_bps:.3f} bps impact), "
        f"incl. fees {r.avg_fill_price_incl_fees:.4f}; shortfall {r.cost_vs_arrival_quote:.2f} USDT "
        f"({r.cost_vs_arrival_bps:.2f} bps); last close {c_last}: P&L {r.pnl_quote:.2f} USDT ({r.pnl_pct:.2f} %)"
    )


def test_500_sol_twap_and_vwap_over_the_7_days(sol, model):
    w = _window(sol)
    o0, c_last = float(w["open"].iloc[0]), float(w["close"].iloc[-1])
    kw = {"fee_bps": FEE_BPS, "fee_source": FEE_SOURCE, "lookback": pd.Timedelta(days=7)}
    twap = backtest_order(sol, model, "buy", size=SIZE, schedule="twap", slice_candles=12, **kw)
    # one slice per hour (12 candles): 168 slices of 500 / 168 at the opens of candles 0, 12, 24, ...
    opens = w["open"].to_numpy()[::12]
    assert len(twap.slices) == 168 and [s.mid_price for s in twap.slices] == list(opens)
    q = SIZE / 168
    assert all(s.size == pytest.approx(q) for s in twap.slices)
    assert twap.market_move_quote == pytest.approx(q * float((opens - o0).sum()), rel=1e-9)
    assert twap.market_move_quote < 0  # SOL fell: buying later was cheaper than at arrival
    for i in (0, 50, 167):  # each slice's book: the 24 h before its candle
        t = pd.Timestamp(twap.slices[i].ts)
        rr = _factor_by_hand(sol, t, model)
        assert twap.slices[i].cost_factor == pytest.approx(rr, rel=1e-9)
        assert twap.slices[i].slippage_bps == pytest.approx(
            _decimal_slippage(model, "buy", q * twap.slices[i].mid_price, rr), rel=1e-9
        )
    fills = [s.fill_price for s in twap.slices]
    incl = sum(fills) / 168 * (1 + FEE_BPS / 1e4)
    assert twap.avg_fill_price_incl_fees == pytest.approx(incl, rel=1e-12)
    assert twap.pnl_quote == pytest.approx(SIZE * (c_last - incl), rel=1e-9)
    assert twap.cost_vs_arrival_quote == pytest.approx(
        twap.market_move_quote + twap.impact_quote + twap.fee_quote, rel=1e-9
    )
    vwap = backtest_order(sol, model, "buy", size=SIZE, schedule="vwap", slice_candles=12, **kw)
    vols = w["volume"].to_numpy()
    blocks = [float(vols[i : i + 12].sum()) for i in range(0, 2016, 12)]
    assert [s.size for s in vwap.slices] == pytest.approx([SIZE * b / sum(blocks) for b in blocks], rel=1e-9)
    print(
        f"\n500 SOL TWAP hourly: avg fill incl. fees {twap.avg_fill_price_incl_fees:.4f}, shortfall "
        f"{twap.cost_vs_arrival_bps:.1f} bps (move {twap.market_move_bps:.1f}, impact {twap.impact_bps:.3f}, "
        f"fees {twap.fee_cost_bps:.2f}), P&L {twap.pnl_quote:.2f}; VWAP: shortfall {vwap.cost_vs_arrival_bps:.1f} bps, "
        f"P&L {vwap.pnl_quote:.2f}"
    )
