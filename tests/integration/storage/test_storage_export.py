"""Export of candles, trades and metrics to CSV and Parquet, read back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.storage.cli import export as cli_export
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.export import export
from market_liquidity_monitor.storage.importers import import_path, read_candles
from market_liquidity_monitor.storage.models import metrics, trades
from market_liquidity_monitor.storage.repositories import insert_rows

T0 = 1_704_067_200_000


async def test_candles_to_csv_and_parquet(db: Database, data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / "genetrader" / "binance" / "SOL_USDT-1h.feather"
    await import_path(db, src, venue="binance")
    original = read_candles(src)

    pq_result = await export(db, "candles", tmp_path / "sol.parquet", symbol="SOL/USDT", chunk_rows=1000)
    assert pq_result.rows == 6_002 and pq_result.fmt == "parquet"
    back = pd.read_parquet(tmp_path / "sol.parquet")
    assert list(back.columns) == [
        "venue",
        "symbol",
        "timeframe",
        "ts",
        "ts_ms",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]
    assert back["ts_ms"].tolist() == original.ts_ms.tolist()
    assert back["close"].tolist() == original.close.tolist()
    assert str(back["ts"].dt.tz) == "UTC" and back["ts"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")

    csv_result = await export(
        db, "candles", tmp_path / "out" / "sol.csv", venue="binance", timeframe="1h",
        start="2024-02-01", end="2024-02-02",
    )  # fmt: skip
    assert csv_result.rows == 24
    csv = pd.read_csv(tmp_path / "out" / "sol.csv")
    assert csv["ts"].iloc[0] == "2024-02-01T00:00:00.000000Z"
    assert csv["close"].tolist() == back.set_index("ts_ms").loc[csv["ts_ms"], "close"].tolist()


async def test_trades_metrics_and_empty_exports(db: Database, tmp_path: Path) -> None:
    ns = 1_000_000
    async with db.begin() as conn:
        await insert_rows(conn, trades, [
            {"venue": "binance", "symbol": "BTC/USDT", "trade_id": "1", "ts_event_ns": T0 * ns + 5,
             "ts_recv_ns": None, "price": 42000.5, "size": 0.25, "side": "buy"},
            {"venue": "binance", "symbol": "BTC/USDT", "trade_id": "2", "ts_event_ns": T0 * ns + 9,
             "ts_recv_ns": T0 * ns + 20, "price": 42000.4, "size": 0.5, "side": None},
        ])  # fmt: skip
        await insert_rows(conn, metrics, [
            {"venue": "binance", "symbol": "BTC/USDT", "name": "spread_bps", "ts_ns": T0 * ns, "value": 0.02},
            {"venue": "binance", "symbol": "BTC/USDT", "name": "depth_50bps_bid", "ts_ns": T0 * ns, "value": None},
        ])  # fmt: skip
    res = await export(db, "trades", tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert res.rows == 2
    assert back["ts_event_ns"].tolist() == [T0 * ns + 5, T0 * ns + 9]
    assert back["ts_recv_ns"].isna().tolist() == [True, False]
    assert back["side"].tolist()[0] == "buy"
    res = await export(db, "metrics", tmp_path / "m.csv", names=["spread_bps"])
    assert res.rows == 1
    assert pd.read_csv(tmp_path / "m.csv")["value"].tolist() == [0.02]
    empty = await export(db, "candles", tmp_path / "none.parquet", symbol="NOPE/USDT")
    assert empty.rows == 0 and pd.read_parquet(tmp_path / "none.parquet").empty
    empty_csv = await export(db, "trades", tmp_path / "none.csv", symbol="NOPE/USDT")
    assert empty_csv.rows == 0 and "trade_id" in pd.read_csv(tmp_path / "none.csv").columns
    with pytest.raises(InvalidInputError):
        await export(db, "candles", tmp_path / "x.xlsx")
    with pytest.raises(InvalidInputError):
        await export(db, "orders", tmp_path / "x.csv")


def test_cli_export_on_the_default_sqlite(tmp_path: Path, data_dir: Path) -> None:
    from market_liquidity_monitor.storage.cli import import_path as cli_import

    settings = Settings(home_dir=tmp_path / "home", database_url=None)
    cli_import(settings, data_dir / "genetrader" / "binance" / "DOGE_USDT-1h.feather", progress=False)
    result = cli_export(settings, "candles", tmp_path / "doge.csv", symbol="DOGE/USDT")
    assert result.rows == 6_002
