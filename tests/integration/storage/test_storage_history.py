"""History queries: candles, resampling (from candles and trades), realised volatility, trend."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.history import (
    History,
    InsufficientHistoryError,
    NoHistoryError,
    bucket_start_ms,
    candles_frame,
    realised_volatility_of,
    resample_candles,
    resample_trades,
    to_ms,
    trend_of,
)
from market_liquidity_monitor.storage.importers import import_path, read_candles
from market_liquidity_monitor.storage.models import trades
from market_liquidity_monitor.storage.repositories import insert_candles, insert_rows
from market_liquidity_monitor.storage.timeframes import periods_per_year, timeframe_seconds

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC (a Monday)


def test_timeframes_and_times() -> None:
    assert timeframe_seconds("5m") == 300 and timeframe_seconds("1w") == 604_800
    assert periods_per_year("5m") == 105_120 and periods_per_year("1h") == 8_760
    with pytest.raises(InvalidInputError):
        timeframe_seconds("1M")
    assert to_ms("2024-01-01") == T0 == to_ms(pd.Timestamp("2024-01-01T01:00:00+01:00")) == to_ms(T0)
    assert bucket_start_ms(np.array([T0 + 5 * 86_400_000 + 123]), "1w")[0] == T0  # Saturday -> Monday
    assert bucket_start_ms(np.array([T0 + 3_599_999]), "1h")[0] == T0


def test_resample_real_5m_candles_reproduces_the_real_1h_file(data_dir: Path) -> None:
    folder = data_dir / "genetrader" / "binance"
    five = read_candles(folder / "ETH_USDT-5m.feather")
    hour = read_candles(folder / "ETH_USDT-1h.feather")
    df5 = candles_frame(
        np.column_stack([five.ts_ms, five.open, five.high, five.low, five.close, five.volume])
    )
    got = resample_candles(df5, "5m", "1h", drop_incomplete=True)
    want = candles_frame(
        np.column_stack([hour.ts_ms, hour.open, hour.high, hour.low, hour.close, hour.volume])
    )
    merged = want.merge(got, on="ts_ms", suffixes=("_want", "_got"))
    assert len(merged) == len(want) == 5_980
    for c in ("open", "high", "low", "close"):
        assert np.array_equal(merged[f"{c}_want"], merged[f"{c}_got"]), c
    assert np.allclose(merged["volume_want"], merged["volume_got"], rtol=1e-9)


def test_resample_rejects_non_multiples() -> None:
    df = candles_frame([(T0, 1, 1, 1, 1, 1)])
    with pytest.raises(InvalidInputError):
        resample_candles(df, "5m", "7m")
    with pytest.raises(InvalidInputError):
        resample_candles(df, "1h", "5m")


def test_resample_trades_1s_1m_5m_1h() -> None:
    ns = 1_000_000
    trades_df = pd.DataFrame(
        {
            "ts_event_ns": [T0 * ns + 100 * ns, T0 * ns + 900 * ns, T0 * ns + 1_500 * ns, (T0 + 61_000) * ns],
            "price": [100.0, 101.0, 99.5, 102.0],
            "size": [1.0, 2.0, 0.5, 3.0],
        }
    )
    s1 = resample_trades(trades_df, "1s")
    assert s1["ts_ms"].tolist() == [T0, T0 + 1000, T0 + 61_000]
    assert s1.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        100.0,
        101.0,
        100.0,
        101.0,
        3.0,
    ]
    assert s1["trades"].tolist() == [2, 1, 1]
    m1 = resample_trades(trades_df, "1m")
    assert m1.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [100.0, 101.0, 99.5, 99.5, 3.5]
    assert m1.iloc[1]["open"] == 102.0
    filled = resample_trades(trades_df, "1s", fill_gaps=True)
    assert len(filled) == 62
    assert filled.iloc[2][["open", "close", "volume"]].tolist() == [99.5, 99.5, 0.0]
    assert resample_trades(trades_df, "5m")["volume"].tolist() == [6.5]
    assert resample_trades(trades_df, "1h")["close"].tolist() == [102.0]
    assert resample_trades(trades_df.iloc[:0], "1m").empty


def test_realised_volatility_formula() -> None:
    rng = np.random.default_rng(7)
    r = rng.normal(0, 0.001, 10_000)
    closes = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    sigma, sigma_ann, n = realised_volatility_of(closes, "5m")
    assert n == 10_000
    assert sigma == pytest.approx(np.std(r, ddof=1), rel=1e-9)
    assert sigma_ann == pytest.approx(np.std(r, ddof=1) * math.sqrt(365 * 288), rel=1e-9)
    with pytest.raises(InsufficientHistoryError):
        realised_volatility_of(np.array([1.0, 2.0]), "1h")


def test_trend_on_exact_exponential_growth() -> None:
    ts = np.array([T0 + i * 86_400_000 for i in range(11)])
    closes = 100 * 1.01 ** np.arange(11)
    stats = trend_of(ts, closes)
    assert stats["return_pct"] == pytest.approx((1.01**10 - 1) * 100)
    assert stats["slope_pct_per_day"] == pytest.approx(1.0)
    assert stats["r_squared"] == pytest.approx(1.0)
    with pytest.raises(InsufficientHistoryError):
        trend_of(ts[:1], closes[:1])


async def test_history_queries_on_real_candles(db: Database, data_dir: Path) -> None:
    await import_path(db, data_dir / "genetrader" / "binance" / "BTC_USDT-1h.feather", venue="binance")
    history = History(db)

    week = await history.candles("BTC/USDT", "binance", "1h", "2024-03-01", "2024-03-08")
    assert len(week) == 168 and week.attrs["source_timeframe"] == "1h"
    assert week["ts"].iloc[0] == pd.Timestamp("2024-03-01", tz="UTC")

    four = await history.candles("BTC/USDT", "binance", "4h", "2024-03-01", "2024-03-08")
    assert four.attrs["source_timeframe"] == "1h" and len(four) == 42
    assert four["high"].iloc[0] == week["high"].iloc[:4].max()
    assert four["close"].iloc[-1] == week["close"].iloc[-1]

    vol = await history.realised_volatility("BTC/USDT", "binance", "1h", "2024-03-01", "2024-03-08")
    r = np.diff(np.log(week["close"].to_numpy()))
    assert vol.n_returns == 167
    assert vol.vol_annualised_pct == pytest.approx(np.std(r, ddof=1) * math.sqrt(8760) * 100)
    assert vol.annualisation_factor == pytest.approx(math.sqrt(8760))
    assert 10 < vol.vol_annualised_pct < 200 and vol.gaps == 0
    assert "sqrt(P)" in vol.formula

    tr = await history.trend("BTC/USDT", "binance", "1h", "2024-03-01", "2024-03-08")
    closes = week["close"].to_numpy()
    assert tr.return_pct == pytest.approx((closes[-1] / closes[0] - 1) * 100)
    assert tr.direction in ("up", "down", "flat")
    assert tr.to_dict()["n_candles"] == 168

    with pytest.raises(NoHistoryError) as info:
        await history.candles("BTC/USDT", "binance", "1m", "2024-03-01", "2024-03-02")
    assert "BTC/USDT 1h" in str(info.value) and info.value.available
    with pytest.raises(NoHistoryError):
        await history.candles("PEPE/USDT", "binance", "1h")


async def test_candles_resampled_from_stored_trades(db: Database) -> None:
    ns = 1_000_000
    rows = [
        {"venue": "binance", "symbol": "ETH/USDT", "trade_id": str(i), "ts_event_ns": (T0 + i * 250) * ns,
         "ts_recv_ns": None, "price": 3000.0 + (i % 7), "size": 0.1, "side": "buy"}
        for i in range(2_000)
    ]  # fmt: skip
    async with db.begin() as conn:
        await insert_rows(conn, trades, rows)
        await insert_candles(conn, "binance", "ETH/USDT", "1m", [T0], [1.0], [1.0], [1.0], [1.0], [1.0])
    candles = await History(db).candles_from_trades("ETH/USDT", "binance", "1m")
    assert candles["ts_ms"].tolist() == [T0 + i * 60_000 for i in range(9)]
    assert candles["trades"].tolist() == [240] * 8 + [80]
    assert candles["volume"].iloc[0] == pytest.approx(24.0)
    assert candles.attrs["source_timeframe"] == "trades"
