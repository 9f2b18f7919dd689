"""Decision analytics on recorded real data (../shared/data): routing, pairs, venue comparison,
execution backtest and liquidity crunches.

Books: the hftbacktest Binance spot BTCUSDT and USD-M BTCUSDT recordings (2024-08-08 23:54 ->
2024-08-09 00:05 UTC), replayed together on one timeline and sampled every 5 s, so each sample
holds the two books as they stood at the same moment. Candles: genetrader Binance spot 1h/5m.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_liquidity_monitor.analytics.backtest import (
    atr_bps,
    backtest_execution,
    calibrate_book_model,
    validate_book_model,
)
from market_liquidity_monitor.analytics.liquidity import market_impact
from market_liquidity_monitor.analytics.pairs import analyze_pair, pair_series, pair_trade_cost
from market_liquidity_monitor.analytics.routing import route_order
from market_liquidity_monitor.analytics.venues import compare_venues
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import Replayer, discover, merge
from market_liquidity_monitor.market_data import MarketData

# Binance published VIP 0 taker fees: spot 0.100 %, USD-M futures 0.050 %.
FEES_BPS = {"binance": 10.0, "binanceusdm": 5.0}
SAMPLE_EVERY_NS = 5_000_000_000


@dataclass(frozen=True)
class Sample:
    ts_ns: int
    spot: BookView
    perp: BookView


@pytest.fixture(scope="module")
def btc_samples(data_dir: Path) -> list[Sample]:
    """Spot and USD-M BTC books every 5 s of the common recording (merged replay, one clock)."""
    md = MarketData.from_recordings(Settings(), data_dir)
    groups = {g.name: g for g in discover(data_dir)}
    spot_g, perp_g = groups["hftbacktest/spot/btcusdt"], groups["hftbacktest/usdm/btcusdt"]
    spot_i = md.resolve("BTC/USDT", "binance")
    perp_i = md.resolve("BTC", "binanceusdm")
    out: list[Sample] = []
    nxt: list[int | None] = [None]

    def on_record(rec, _events) -> None:
        t = rec.ts_recv_ns
        if nxt[0] is None:
            nxt[0] = t
        if t < nxt[0]:
            return
        nxt[0] = t + SAMPLE_EVERY_NS
        with contextlib.suppress(MLMError):  # a book not synced yet (before its REST snapshot)
            out.append(
                Sample(
                    t, md.store.view(spot_i.venue, spot_i.symbol), md.store.view(perp_i.venue, perp_i.symbol)
                )
            )

    # One clock for the two books (the store judges their staleness on it), not md.clock, which
    # resolve() may have advanced to the end of other venues' captures.
    clock = ReplayClock()
    md.store.set_clock(spot_i, clock)
    md.store.set_clock(perp_i, clock)
    Replayer(md.store, md.registry, clock=clock).run(
        merge(spot_g.records(), perp_g.records()), on_record=on_record
    )
    assert len(out) > 50
    return out


@pytest.fixture(scope="module")
def btc_final(data_dir: Path) -> tuple[BookView, BookView]:
    """The two books at the end of their recordings, as the brief's MarketData door hands them out."""
    md = MarketData.from_recordings(Settings(), data_dir)
    return md.view(md.resolve("BTC/USDT", "binance")), md.view(md.resolve("BTC", "binanceusdm"))


def _contemporaneous(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if abs(s.spot.book_ts_ns - s.perp.book_ts_ns) < 2_000_000_000]


# ----------------------------------------------------------------------------------- routing


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("size", [0.5, 5.0, 40.0])
def test_routing_spot_and_perp_never_worse_than_baselines(btc_samples, side, size):
    checked = 0
    for s in _contemporaneous(btc_samples)[::6]:
        res = route_order([s.spot, s.perp], side, size=size, fees_bps=FEES_BPS)
        assert res.fully_filled
        assert res.max_book_ts_diff_ms < 2000
        assert sum(c.size for c in res.routed.children) == pytest.approx(size, rel=1e-9)
        for b in res.baselines:
            if b.fillable:
                assert b.savings_bps >= -1e-9
        # the best-single-venue baseline is that venue's market_impact walk plus its fee
        best = next(b for b in res.baselines if b.name == "best_single_venue")
        if best.fillable:
            totals = []
            for v in (s.spot, s.perp):
                imp = market_impact(v, side, size=size)
                if imp.fully_filled:
                    f = FEES_BPS[v.instrument.venue] / 1e4
                    totals.append(imp.filled_notional * (1 + f if side == "buy" else 1 - f))
            assert min(abs(best.total_quote - t) / t for t in totals) < 1e-9
        checked += 1
    assert checked >= 5


def test_routing_on_final_books(btc_final):
    spot, perp = btc_final
    res = route_order([spot, perp], "buy", size=10, fees_bps=FEES_BPS)
    # the two final books are ~5 minutes apart (USD-M recording ends at 23:59:59): reported, not hidden
    assert res.max_book_ts_diff_ms > 60_000
    assert res.fully_filled
    print(
        f"\nfinal books: routed avg incl fees {res.routed.avg_price_incl_fees:.2f}; "
        + "; ".join(
            f"{b.name}: {b.savings_bps if b.savings_bps is not None else b.reason}" for b in res.baselines
        )
    )
    for b in res.baselines:
        if b.fillable:
            assert b.savings_bps >= -1e-9


def test_routing_large_order_uses_both_venues(btc_samples):
    """Mid-recording the perp trades ~4 bps below spot, so buys go to the perp alone while a large
    sell (bids: spot's are higher but thinner) is split, strictly beating every single venue."""
    cs = _contemporaneous(btc_samples)
    s = cs[len(cs) // 2]
    res = route_order([s.spot, s.perp], "sell", size=200, fees_bps=FEES_BPS)
    assert {c.venue for c in res.routed.children} == {"binance", "binanceusdm"}
    best = next(b for b in res.baselines if b.name == "best_single_venue")
    assert best.fillable and best.savings_bps > 0.1
    print(
        f"\nsell 200 BTC at {s.spot.book_ts_iso}: "
        + ", ".join(f"{c.venue} {c.size:.3f}" for c in res.routed.children)
        + "; "
        + ", ".join(f"{b.name} saves {b.savings_bps:.3f} bps" for b in res.baselines if b.fillable)
    )


# ------------------------------------------------------------------------------------- pairs


def _closes(data_dir: Path, coin: str, tf: str = "1h") -> pd.DataFrame:
    return pd.read_feather(data_dir / "genetrader" / "binance" / f"{coin}_USDT-{tf}.feather").set_index(
        "date"
    )


def test_pairs_eth_btc_1h_passes_statsmodels_through(data_dir):
    from statsmodels.tsa.stattools import adfuller, coint

    # the last 2000 hours (~83 days) keep the ADF/Engle-Granger lag searches fast
    eth, btc = _closes(data_dir, "ETH")["close"].iloc[-2000:], _closes(data_dir, "BTC")["close"].iloc[-2100:]
    res = analyze_pair(eth, btc, zscore_window=48, corr_window=48, name_a="ETH/USDT", name_b="BTC/USDT")
    df = pd.concat({"a": eth, "b": btc}, axis=1, join="inner").dropna()
    assert res.n_obs == len(df) == 2000
    assert res.end == "2024-09-06T03:00:00Z" and res.period_s == 3600
    la, lb = np.log(df["a"].to_numpy()), np.log(df["b"].to_numpy())
    (alpha, beta), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(lb), lb]), la, rcond=None)
    assert res.hedge_ratio_ols == pytest.approx(beta, rel=1e-9)
    assert res.alpha_ols == pytest.approx(alpha, rel=1e-9, abs=1e-9)
    spread = la - beta * lb - alpha
    stat, p, lags, nobs, crit, _ = adfuller(spread, autolag="AIC", result_object=False)
    assert res.adf.stat == pytest.approx(stat, rel=1e-6) and res.adf.p_value == pytest.approx(p, rel=1e-6)
    assert res.adf.lags_used == lags and res.adf.n_obs_used == nobs
    assert res.adf.critical_values == pytest.approx(crit)
    c = coint(la, lb)
    assert res.coint.stat == pytest.approx(c[0], rel=1e-9) and res.coint.p_value == pytest.approx(
        c[1], rel=1e-9
    )
    r = np.diff(np.log(df.to_numpy()), axis=0)[-48:]
    assert res.return_corr_last == pytest.approx(np.corrcoef(r[:, 0], r[:, 1])[0, 1], rel=1e-9)
    assert 0.5 < res.return_corr_mean < 1.0  # ETH and BTC hourly returns move together
    assert res.hedge_ratio_huber > 0
    z = pair_series(eth, btc, 48, 48)["zscore"].dropna()
    assert res.zscore_last == pytest.approx(z.iloc[-1])
    print(
        f"\nETH/BTC 1h {res.start}..{res.end}: beta OLS {res.hedge_ratio_ols:.3f} Huber {res.hedge_ratio_huber:.3f}, "
        f"ADF {res.adf.stat:.2f} (p {res.adf.p_value:.3f}), EG p {res.coint.p_value:.3f}, "
        f"half-life {res.half_life.half_life_hours} h, z {res.zscore_last:.2f}"
    )


def test_pair_trade_cost_on_real_eth_and_btc_books(data_dir, btc_final):
    md = MarketData.from_recordings(Settings(), data_dir)
    eth_view = md.view(md.resolve("ETH/USDT", "binance"))
    btc_view = btc_final[0]
    res = pair_trade_cost(
        eth_view, btc_view, size_a=50.0, beta=1.1, fees_bps_a=10, fees_bps_b=10, spread_std=0.05
    )
    assert res.fully_filled
    # fees alone: 2 walks x 2 legs x 10 bps of the notional
    fees = sum(x.impact.filled_notional for x in res.legs) * 10 / 1e4
    assert res.round_trip_cost_quote > fees
    assert 20 < res.round_trip_cost_bps < 40  # 20 bps of fees per unit notional + spread and impact
    print(
        f"\nETH 50 / BTC pair round trip: {res.round_trip_cost_quote:.2f} USDT = {res.round_trip_cost_bps:.2f} bps; "
        f"breakeven z move {res.breakeven_zscore_move:.3f}"
    )


# ------------------------------------------------------------------------------------ venues


def test_compare_spot_and_perp_contemporaneous(btc_samples):
    opportunities = 0
    for s in _contemporaneous(btc_samples)[::4]:
        res = compare_venues([s.spot, s.perp], "buy", size=5, fees_bps=FEES_BPS, window_bps=10)
        assert res.best_venue in {"binance", "binanceusdm"}, res.best_venue_reason
        assert all(a.contemporaneous for a in res.arbitrage)
        opportunities += sum(bool(a.opportunity) for a in res.arbitrage)
        c = res.concentration
        assert 0.5 <= c.hhi <= 1 and 1 <= c.effective_venue_count <= 2
        for v in res.venues:
            assert v.cost_bps == pytest.approx(
                v.slippage_bps + v.fee_bps + v.slippage_bps * v.fee_bps / 1e4, rel=1e-9, abs=1e-9
            )
    # spot-perp basis stays far inside the 15 bps of round-trip taker fees
    assert opportunities == 0


def test_compare_final_books_not_contemporaneous(btc_final):
    res = compare_venues(list(btc_final), "sell", notional=1_000_000, fees_bps=FEES_BPS)
    assert all(not a.contemporaneous and a.ts_diff_ms > 60_000 for a in res.arbitrage)
    print("\n" + res.best_venue_reason + f"; HHI within 50 bps {res.concentration.hhi:.3f}")


# ---------------------------------------------------------------------------------- backtest

VALIDATION_SIZES = (0.1, 1.0, 5.0, 20.0, 50.0)


@pytest.fixture(scope="module")
def btc_model(data_dir, btc_samples):
    """Calibrated on the first half of the spot samples; reference volume and ATR from the 1h candle
    that holds the recording (2024-08-08 23:00 UTC)."""
    c = _closes(data_dir, "BTC")
    atr = atr_bps(c)
    at = pd.Timestamp("2024-08-08 23:00", tz="UTC")
    views = [s.spot for s in btc_samples[: len(btc_samples) // 2]]
    return calibrate_book_model(views, ref_volume=float(c.loc[at, "volume"]), ref_atr_bps=float(atr.loc[at]))


def test_book_model_error_vs_real_books(btc_model, btc_samples):
    in_sample = validate_book_model(
        btc_model, [s.spot for s in btc_samples[: len(btc_samples) // 2]], VALIDATION_SIZES
    )
    out_sample = validate_book_model(
        btc_model, [s.spot for s in btc_samples[len(btc_samples) // 2 :]], VALIDATION_SIZES
    )
    print(
        f"\nbook model ({btc_model.model_source}; ref volume {btc_model.ref_volume:.1f} BTC/h, "
        f"ATR {btc_model.ref_atr_bps:.1f} bps, half-spread {btc_model.half_spread_bps:.4f} bps)"
    )
    for name, val in (("in-sample", in_sample), ("out-of-sample", out_sample)):
        print(
            f"  {name} ({val.n_books} books): mean |error| {val.mean_abs_error_bps:.3f} bps, max {val.max_abs_error_bps:.3f} bps"
        )
        for p in val.points:
            print(
                f"    {p.side.value:4} {p.size:5g} BTC: model {p.model_slippage_bps:7.3f} real {p.real_slippage_bps_mean:7.3f} "
                f"error {p.error_bps_mean:+.3f} (|max| {p.abs_error_bps_max:.3f})"
            )
    assert out_sample.mean_abs_error_bps < 2.0
    assert in_sample.mean_abs_error_bps < 1.0


def _wilder_atr_bps(c: pd.DataFrame, n: int = 14) -> list[float]:
    """Wilder's ATR (1978) as bps of the close, by a plain loop: TR_0 = h - l, ATR_i = ATR_{i-1} + (TR_i - ATR_{i-1}) / n."""
    h, lo, cl = c["high"].tolist(), c["low"].tolist(), c["close"].tolist()
    out, atr = [], None
    for i in range(len(cl)):
        tr = h[i] - lo[i] if i == 0 else max(h[i] - lo[i], abs(h[i] - cl[i - 1]), abs(lo[i] - cl[i - 1]))
        atr = tr if atr is None else atr + (tr - atr) / n
        out.append(atr / cl[i] * 1e4)
    return out


def _profile_walk_bps(model, q: float) -> tuple[float, bool]:
    """Exact mean distance (bps) of the first q base units on the legacy model's piecewise-linear
    cumulative ask depth (knots from the half-spread at depth 0; past the last knot the last rising
    segment's slope continues), and whether q went past the last knot."""
    d, depth = [model.half_spread_bps], [0.0]
    for g, f in zip(model.grid_bps, model.ask_depth_frac, strict=True):
        if g > model.half_spread_bps:
            d.append(g)
            depth.append(max(depth[-1], f * model.ref_volume))
    area, i = 0.0, 0
    while i + 1 < len(d) and depth[i + 1] <= q:
        area += (depth[i + 1] - depth[i]) * (d[i] + d[i + 1]) / 2
        i += 1
    if i + 1 < len(d):
        gq = d[i] + (q - depth[i]) * (d[i + 1] - d[i]) / (depth[i + 1] - depth[i])
        return (area + (q - depth[i]) * (d[i] + gq) / 2) / q, False
    j = max(k for k in range(1, len(d)) if depth[k] > depth[k - 1])
    gq = d[-1] + (q - depth[-1]) * (d[j] - d[j - 1]) / (depth[j] - depth[j - 1])
    return (area + (q - depth[-1]) * (d[-1] + gq) / 2) / q, q > depth[-1]


def test_backtest_btc_1h_last_30_days(data_dir, btc_model):
    """The legacy per-candle simulation against a hand recomputation from the candle file."""
    c = _closes(data_dir, "BTC")
    atr = _wilder_atr_bps(c)
    last = c.index[-1]
    rows = [
        i for i in range(14, len(c)) if c.index[i] > last - pd.Timedelta(days=30) and c["volume"].iloc[i] > 0
    ]
    for size in (10.0, 500.0):
        res = backtest_execution(c, btc_model, "buy", size=size, lookback=pd.Timedelta(days=30), series=True)
        assert res.intervals == len(rows) == 30 * 24 and res.end == "2024-09-06T03:00:00Z"
        want, extra = [], 0
        for i in rows:  # the order at the close of each candle on the volume-scaled, ATR-widened profile
            widen = min(max(atr[i] / btc_model.ref_atr_bps, 0.25), 20.0)
            q_eff = size / (c["volume"].iloc[i] / btc_model.ref_volume)
            avg, past = _profile_walk_bps(btc_model, q_eff)
            want.append(widen * avg)
            extra += past
        want = np.array(want)
        # the model integrates on a 400-step trapezoid grid: agreement to 0.1 %
        assert np.array(res.series.slippage_bps) == pytest.approx(want, rel=1e-3, abs=1e-4)
        assert res.avg_slippage_bps == pytest.approx(want.mean(), rel=1e-3)
        assert (res.max_slippage_bps, res.min_slippage_bps) == pytest.approx(
            (want.max(), want.min()), rel=1e-3
        )
        assert res.high_risk_intervals == int((want > 200).sum()) and res.optimal_intervals == int(
            (want < 50).sum()
        )
        assert res.extrapolated_intervals == extra
        closes = c["close"].to_numpy()[rows]
        assert res.total_cost_quote == pytest.approx(float((want / 1e4 * closes * size).sum()), rel=1e-3)
        print(
            f"\nBTC {size:g} buy, last 30 days of 1h: avg {res.avg_slippage_bps:.2f} bps, max {res.max_slippage_bps:.2f} "
            f"({res.worst_interval}), min {res.min_slippage_bps:.2f}; optimal {res.optimal_intervals}, high-risk "
            f"{res.high_risk_intervals}, extrapolated {res.extrapolated_intervals}"
        )
