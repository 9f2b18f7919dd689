"""POST /api/backtest's per-interval cost curve (series) and risk periods on the recorded candles:
the series' candle times against the candle file, its flags against the thresholds, the risk
periods against a plain loop over the full series, and the downsampling against a hand-made
bucket maximum of the full (not downsampled) series of the same service."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from market_liquidity_monitor.analytics.backtest import HIGH_RISK_BPS


def _feather(data_dir, tf):
    df = pd.read_feather(data_dir / f"genetrader/binance/BTC_USDT-{tf}.feather")
    ts = pd.DatetimeIndex(df["date"])
    df.index = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return df[["open", "high", "low", "close", "volume"]].astype(float)


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


def test_hourly_series_is_every_interval_of_the_window(live_client, data_dir):
    res = _post(live_client, "1h", 500, 30)
    c = _feather(data_dir, "1h")
    window = c.index[c.index > c.index[-1] - pd.Timedelta(days=30)]
    series = res["series"]
    assert res["series_bucket_intervals"] == 1 and len(series) == res["intervals"] == len(window) == 720
    assert [p["ts"] for p in series] == [t.isoformat().replace("+00:00", "Z") for t in window]
    slip = np.asarray([p["slippage_bps"] for p in series])
    assert res["avg_slippage_bps"] == pytest.approx(slip.mean(), rel=1e-9)
    assert res["max_slippage_bps"] == pytest.approx(slip.max(), rel=1e-12)
    for p in series:
        assert p["high_risk"] == (p["slippage_bps"] > HIGH_RISK_BPS)
        assert p["optimal"] == (p["slippage_bps"] < 50)
        # a buy fills above the candle's open by the slippage (the order is sent at the open, its mid)
        assert p["fill_price"] == pytest.approx(
            float(c.loc[pd.Timestamp(p["ts"]), "open"]) * (1 + p["slippage_bps"] / 1e4), rel=1e-12
        )
    assert sum(p["high_risk"] for p in series) == res["high_risk_intervals"]
    periods = [(p["start"], p["end"], p["intervals"], p["max_slippage_bps"]) for p in res["risk_periods"]]
    assert periods == _runs([p["ts"] for p in series], list(slip))


def test_five_minute_series_is_downsampled_keeping_each_buckets_max(
    live_client, data_dir, api_market, tmp_path
):
    res = _post(live_client, "5m", 20_000, 60)
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.services import Services

    async def full():  # the same service, every interval returned
        # Its own database (home_dir): the default ./data/mlm.sqlite3 is shared with every other
        # test that builds Settings() without a home, and a CI run hit "database is locked" on it
        # while importing the 5m candles.
        sv = Services.build(
            Settings(data_dir=data_dir, home_dir=tmp_path), market=api_market, persist_alerts=False
        )
        try:
            a = await sv.trading.backtest(
                "BTC/USDT",
                "buy",
                size=20_000,
                lookback_days=60,
                timeframe="5m",
                series=True,
                max_points=20_000,
            )
        finally:
            await sv.close()
        return a.result

    want = asyncio.run(full())
    n = res["intervals"]
    assert n == want.intervals == len(want.series) > 2000 and want.series_bucket_intervals == 1
    bucket = res["series_bucket_intervals"]
    series = res["series"]
    assert bucket == -(-n // 2000) and len(series) == -(-n // bucket) <= 2000
    slip = np.asarray([p["slippage_bps"] for p in want.series])
    ts = [p["ts"] for p in want.series]
    for j, p in enumerate(series):
        chunk = slip[j * bucket : (j + 1) * bucket]
        i = j * bucket + int(np.argmax(chunk))
        assert p["ts"] == ts[i]
        assert p["slippage_bps"] == pytest.approx(chunk.max(), rel=1e-12)
    assert max(p["slippage_bps"] for p in series) == pytest.approx(res["max_slippage_bps"], rel=1e-12)
    # Risk periods come from the full series, not the downsampled one.
    got = [(p["start"], p["end"], p["intervals"]) for p in res["risk_periods"]]
    assert got == [r[:3] for r in _runs(ts, list(slip))]
    assert sum(p["intervals"] for p in res["risk_periods"]) == res["high_risk_intervals"] > 0
