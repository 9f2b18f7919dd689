"""POST /api/backtest's per-interval series and risk periods on the recorded candles, against
``backtest_execution`` run directly on the candle file with the same calibrated book model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from market_liquidity_monitor.analytics.backtest import (
    HIGH_RISK_BPS,
    atr_bps,
    backtest_execution,
    calibrate_book_model,
)


def _feather(data_dir, tf):
    df = pd.read_feather(data_dir / f"genetrader/binance/BTC_USDT-{tf}.feather")
    ts = pd.DatetimeIndex(df["date"])
    df.index = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return df[["open", "high", "low", "close", "volume"]].astype(float)


def _direct(api_market, data_dir, tf, size, days):
    c = _feather(data_dir, tf)
    view = api_market.view(api_market.resolve("BTC/USDT", "binance"))
    at = pd.Timestamp(view.book_ts_ns, unit="ns", tz="UTC").floor(tf.replace("m", "min"))
    model = calibrate_book_model([view], float(c.loc[at, "volume"]), float(atr_bps(c).loc[at]))
    return backtest_execution(c, model, "buy", size=size, lookback=pd.Timedelta(days=days), series=True)


def _runs(ts, slip):
    """Contiguous runs of slip > HIGH_RISK_BPS, recomputed by a plain loop."""
    out, start = [], None
    for i, s in enumerate([*slip, 0.0]):
        if s > HIGH_RISK_BPS and start is None:
            start = i
        elif s <= HIGH_RISK_BPS and start is not None:
            out.append((ts[start], ts[i - 1], i - start, max(slip[start:i])))
            start = None
    return out


def _post(client, tf, size, days):
    r = client.post(
        "/api/backtest",
        json={"symbol": "BTC/USDT", "side": "buy", "size": size, "lookback_days": days, "timeframe": tf},
    )
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_hourly_series_is_every_interval_of_backtest_execution(live_client, api_market, data_dir):
    res = _post(live_client, "1h", 100, 30)
    want = _direct(api_market, data_dir, "1h", 100, 30).series
    series = res["series"]
    assert res["series_bucket_intervals"] == 1 and len(series) == len(want.ts) == res["intervals"] == 720
    assert [p["ts"] for p in series] == list(want.ts)
    # The API reads 150 candles of ATR warm-up, not the whole file: Wilder's EWM agrees to ~1e-5.
    assert [p["slippage_bps"] for p in series] == pytest.approx(want.slippage_bps, rel=1e-4)
    assert [p["fill_price"] for p in series] == pytest.approx(want.fill_price, rel=1e-8)
    for p in series:
        assert p["high_risk"] == (p["slippage_bps"] > HIGH_RISK_BPS)
        assert p["optimal"] == (p["slippage_bps"] < 50)
    assert sum(p["high_risk"] for p in series) == res["high_risk_intervals"] >= 1
    periods = [(p["start"], p["end"], p["intervals"], p["max_slippage_bps"]) for p in res["risk_periods"]]
    slip = [p["slippage_bps"] for p in series]
    assert periods == _runs([p["ts"] for p in series], slip)


def test_five_minute_series_is_downsampled_keeping_each_buckets_max(live_client, api_market, data_dir):
    res = _post(live_client, "5m", 50, 60)
    want = _direct(api_market, data_dir, "5m", 50, 60)
    n = res["intervals"]
    assert n == want.intervals == len(want.series.ts) > 2000
    bucket = res["series_bucket_intervals"]
    series = res["series"]
    assert bucket == -(-n // 2000) and len(series) == -(-n // bucket) <= 2000
    slip = np.asarray(want.series.slippage_bps)
    for j, p in enumerate(series):
        chunk = slip[j * bucket : (j + 1) * bucket]
        i = j * bucket + int(np.argmax(chunk))
        assert p["ts"] == want.series.ts[i]
        assert p["slippage_bps"] == pytest.approx(chunk.max(), rel=1e-4)
    assert max(p["slippage_bps"] for p in series) == pytest.approx(res["max_slippage_bps"], rel=1e-12)
    # Risk periods come from the full series, not the downsampled one.
    got = [(p["start"], p["end"], p["intervals"]) for p in res["risk_periods"]]
    assert got == [r[:3] for r in _runs(want.series.ts, list(slip))]
    assert sum(p["intervals"] for p in res["risk_periods"]) == res["high_risk_intervals"] > 0
