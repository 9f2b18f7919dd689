"""Pairs analytics on constructed series: a cointegrated pair with a known hedge ratio and half-life,
a pair of independent random walks, bad input, and the round-trip cost of a pair trade."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import adfuller

from market_liquidity_monitor.analytics.liquidity import market_impact
from market_liquidity_monitor.analytics.pairs import (
    MIN_OBS_FOR_ADF,
    PairAnalysis,
    analyze_pair,
    pair_series,
    pair_trade_cost,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId

PHI = 0.9  # AR(1) coefficient of the spread: λ = PHI - 1 = -0.1, half-life -ln2/λ = 6.93 periods
BETA, ALPHA = 1.3, 0.5


def cointegrated(n: int = 1500, seed: int = 7) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    log_b = np.log(100.0) + np.cumsum(rng.normal(0, 0.01, n))
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = PHI * e[t - 1] + rng.normal(0, 0.005)
    log_a = ALPHA + BETA * log_b + e
    return pd.Series(np.exp(log_a), idx), pd.Series(np.exp(log_b), idx)


def test_cointegrated_pair_recovers_construction():
    a, b = cointegrated()
    res = analyze_pair(a, b, zscore_window=48, name_a="A", name_b="B")
    assert res.n_obs == 1500 and res.period_s == 3600
    assert res.hedge_ratio_ols == pytest.approx(BETA, abs=0.02)
    assert res.hedge_ratio_huber == pytest.approx(BETA, abs=0.02)
    assert res.adf.rejects_unit_root_5pct and res.adf.p_value < 0.01
    assert res.coint.cointegrated_5pct
    hl = res.half_life
    assert hl.lambda_per_period == pytest.approx(PHI - 1, abs=0.02)
    assert hl.half_life_periods == pytest.approx(-math.log(2) / (PHI - 1), rel=0.2)
    assert hl.half_life_hours == pytest.approx(hl.half_life_periods)
    assert PairAnalysis.model_validate_json(res.model_dump_json()) == res


def test_independent_walks_are_not_cointegrated():
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024-01-01", periods=800, freq="1h", tz="UTC")
    a = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.01, 800)) + 5), idx)
    b = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.01, 800)) + 4), idx)
    res = analyze_pair(a, b)
    assert not res.coint.cointegrated_5pct
    assert abs(res.return_corr_mean) < 0.1


def test_series_and_passthrough():
    a, b = cointegrated(500)
    df = pair_series(a, b, zscore_window=20, corr_window=30)
    res = analyze_pair(a, b, zscore_window=20, corr_window=30)
    # z-score by hand at the last point
    s = df["spread"].to_numpy()
    w = s[-20:]
    assert res.zscore_last == pytest.approx((w[-1] - w.mean()) / w.std(ddof=1))
    # ADF passes statsmodels through
    stat, p, lags, nobs, crit, _ = adfuller(s, autolag="AIC", result_object=False)
    assert (res.adf.stat, res.adf.p_value, res.adf.lags_used, res.adf.n_obs_used) == (stat, p, lags, nobs)
    assert res.adf.critical_values == pytest.approx(crit)
    # half-life by numpy lstsq
    x = np.column_stack([np.ones(len(s) - 1), s[:-1]])
    lam = np.linalg.lstsq(x, np.diff(s), rcond=None)[0][1]
    assert res.half_life.lambda_per_period == pytest.approx(lam, rel=1e-9)


def test_inner_join_and_bad_points():
    a, b = cointegrated(200)
    a = a.iloc[10:]
    b = b.copy()
    b.iloc[50] = np.nan
    res = analyze_pair(a, b, zscore_window=10, corr_window=10)
    assert res.n_obs == 189


def test_too_few_points_says_how_many():
    a, b = cointegrated(40)
    with pytest.raises(InvalidInputError, match=r"only 25 overlapping points.*at least 50"):
        analyze_pair(a.iloc[:25], b, zscore_window=48)
    with pytest.raises(InvalidInputError, match=f"at least {MIN_OBS_FOR_ADF}"):
        analyze_pair(a.iloc[:20], b, zscore_window=5, corr_window=5)


def test_bad_windows_and_types():
    a, b = cointegrated(100)
    with pytest.raises(InvalidInputError, match="zscore_window"):
        analyze_pair(a, b, zscore_window=1)
    with pytest.raises(InvalidInputError, match="pandas Series"):
        analyze_pair(a.to_numpy(), b)


def test_no_mean_reversion_gives_reason():
    idx = pd.date_range("2024-01-01", periods=200, freq="1h", tz="UTC")
    t = np.arange(200.0)
    # spread that explodes: a grows faster and faster relative to b
    rng = np.random.default_rng(5)
    b = pd.Series(np.exp(np.sin(t / 7) * 0.1 + 4 + rng.normal(0, 1e-3, 200)), idx)
    a = pd.Series(np.exp(0.5 * np.log(b.to_numpy()) + 1e-4 * 1.04**t + rng.normal(0, 1e-3, 200)), idx)
    res = analyze_pair(a, b, zscore_window=10, corr_window=10)
    assert res.half_life.half_life_periods is None
    assert res.half_life.reason and "does not mean-revert" in res.half_life.reason


def book(venue: str, mid: float, step: float, size: float) -> BookView:
    bids = [(mid - step * (i + 0.5), size) for i in range(10)]
    asks = [(mid + step * (i + 0.5), size) for i in range(10)]
    return BookView.from_levels(InstrumentId(venue, f"{venue.upper()}/USDT"), bids, asks, ts_event_ns=1)


def test_pair_trade_cost_hand_checked():
    va = book("a", 100.0, 0.1, 1.0)  # best 99.95 / 100.05
    vb = book("b", 50.0, 0.05, 10.0)  # best 49.975 / 50.025
    res = pair_trade_cost(va, vb, size_a=1.0, beta=2.0, fees_bps_a=10, fees_bps_b=0, spread_std=0.01)
    # size_b = 2 * 1 * 100 / 50 = 4 b; notionals 100 and 200
    assert res.size_b == pytest.approx(4.0)
    assert res.notional_a == pytest.approx(100) and res.notional_b == pytest.approx(200)
    # a: 1 unit at 100.05 (buy) then 99.95 (sell): slippage 0.05 each + 10 bps fee each (0.10005, 0.09995)
    # b: 4 units at 49.975 (sell) and 50.025 (buy): slippage 0.025 * 4 = 0.1 each, no fee
    expected = 0.05 + 0.10005 + 0.05 + 0.09995 + 0.1 + 0.1
    assert res.round_trip_cost_quote == pytest.approx(expected)
    assert res.round_trip_cost_bps == pytest.approx(expected / 300 * 1e4)
    assert res.cost_in_spread_units == pytest.approx(expected / 100)
    assert res.breakeven_zscore_move == pytest.approx(expected / 100 / 0.01)
    assert [(x.leg, x.phase, x.impact.side.value) for x in res.legs] == [
        ("a", "enter", "buy"),
        ("b", "enter", "sell"),
        ("a", "exit", "sell"),
        ("b", "exit", "buy"),
    ]
    assert res.legs[0].impact == market_impact(va, "buy", size=1.0)
    short = pair_trade_cost(va, vb, 1.0, 2.0, direction="short_spread")
    assert short.legs[0].impact.side.value == "sell"


def test_pair_trade_cost_bad_input():
    va = book("a", 100.0, 0.1, 1.0)
    with pytest.raises(InvalidInputError, match="beta"):
        pair_trade_cost(va, va, 1.0, 0.0)
    with pytest.raises(InvalidInputError, match="direction"):
        pair_trade_cost(va, va, 1.0, 1.0, direction="up")
    with pytest.raises(InvalidInputError, match="size_a"):
        pair_trade_cost(va, va, -1.0, 1.0)
