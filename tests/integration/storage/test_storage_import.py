"""Import of the recorded candle files (and recorded trades) in ../shared/data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.storage.cli import import_path as cli_import_path
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.history import History
from market_liquidity_monitor.storage.importers import (
    discover,
    import_path,
    parse_file_name,
    read_candles,
    to_epoch_ms,
)
from market_liquidity_monitor.storage.models import trades
from market_liquidity_monitor.storage.repositories import count_rows

# Every candle file in ../shared/data and its row count (README §3.4, §3.5).
EXPECTED = {
    ("BTC/USDT", "1m"): 42_915, ("ETH/USDT", "1m"): 42_915, ("LTC/USDT", "1m"): 42_916,
    ("XRP/USDT", "1m"): 42_916, ("BCH/USDT", "1m"): 42_915, ("ADA/USDT", "1m"): 42_915,
    ("BTC/USDT", "5m"): 71_769, ("ETH/USDT", "5m"): 71_769, ("SOL/USDT", "5m"): 72_028,
    ("XRP/USDT", "5m"): 72_028, ("LTC/USDT", "5m"): 71_769, ("DOGE/USDT", "5m"): 72_029,
    ("BTC/USDT", "1h"): 5_980, ("ETH/USDT", "1h"): 5_980, ("SOL/USDT", "1h"): 6_002,
    ("XRP/USDT", "1h"): 6_002, ("LTC/USDT", "1h"): 5_980, ("DOGE/USDT", "1h"): 6_002,
}  # fmt: skip


def test_file_names() -> None:
    assert parse_file_name("BTC_USDT-5m.feather") == ("BTC/USDT", "5m")
    assert parse_file_name("ETH_USDT-1m.json.gz") == ("ETH/USDT", "1m")
    assert parse_file_name("BTC_USDT_USDT-1h-futures.feather") == ("BTC/USDT:USDT", "1h")
    assert parse_file_name("BTC_USDT-trades.json.gz") == ("BTC/USDT", "trades")
    assert parse_file_name("BTC_USDT_USDT-8h-funding_rate.feather") is None
    assert parse_file_name("README.md") is None


def test_epoch_units_by_magnitude() -> None:
    ms = 1_704_067_200_000
    for values in ([ms // 1000], [ms], [ms * 1000], [ms * 1_000_000]):
        assert to_epoch_ms(pd.Series(values)).tolist() == [ms]
    assert to_epoch_ms(pd.Series(["2024-01-01T00:00:00Z"])).tolist() == [ms]
    assert to_epoch_ms(pd.Series(pd.to_datetime(["2024-01-01"]))).tolist() == [ms]  # naive = UTC


def test_readers_on_the_real_files(data_dir: Path) -> None:
    feather = read_candles(data_dir / "genetrader" / "binance" / "BTC_USDT-5m.feather")
    assert len(feather) == 71_769
    assert feather.ts_ms[0] == 1_704_067_200_000  # 2024-01-01 00:00 UTC
    assert (feather.ts_ms[1:] - feather.ts_ms[:-1] == 300_000).all()  # no gaps
    js = read_candles(data_dir / "tooyipjee_freqtrade" / "binance" / "BTC_USDT-1m.json.gz")
    with gzip.open(data_dir / "tooyipjee_freqtrade" / "binance" / "BTC_USDT-1m.json.gz", "rt") as fh:
        first = json.load(fh)[0]
    assert len(js) == 42_915
    assert [js.ts_ms[0], js.open[0], js.high[0], js.low[0], js.close[0], js.volume[0]] == pytest.approx(first)


def test_discover_finds_every_candle_file(data_dir: Path) -> None:
    items, skipped = discover(data_dir)
    series = {(i.symbol, i.timeframe) for i in items if i.kind == "candles"}
    assert series == set(EXPECTED)
    assert all(i.venue == "binance" for i in items if i.kind == "candles")
    assert any(i.kind == "recording" for i in items)
    assert any(p.name == "README.md" for p, _ in skipped)


async def test_csv_and_trade_files(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "kraken"
    folder.mkdir()
    (folder / "XBT_EUR-1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "1704067200,38000.5,38100,37950,38050.1,12.5\n"
        "1704070800,38050.1,38200,38000,38150,7.25\n"
    )
    (folder / "XBT_EUR-trades.csv").write_text(
        "timestamp,id,type,side,price,amount,cost\n"
        "1704067200123,t1,,buy,38000.5,0.1,3800.05\n"
        "1704067201456,t2,,sell,38000.4,0.2,7600.08\n"
    )
    report = await import_path(db, tmp_path)
    assert report.errors == []
    assert report.rows_inserted == 4
    df = await History(db).candles("XBT/EUR", "kraken", "1h")
    assert df["ts_ms"].tolist() == [1_704_067_200_000, 1_704_070_800_000]
    assert df["close"].tolist() == [38050.1, 38150.0]
    tr = await History(db).trades("XBT/EUR", "kraken")
    assert tr["trade_id"].tolist() == ["t1", "t2"] and tr["side"].tolist() == ["buy", "sell"]
    assert tr["ts_event_ns"].tolist() == [1_704_067_200_123_000_000, 1_704_067_201_456_000_000]
    again = await import_path(db, tmp_path)
    assert again.rows_inserted == 0 and again.rows_read == 4


async def test_import_btc_eth_5m_249_days_idempotent(db: Database, data_dir: Path) -> None:
    """Both backends: the 249 days of 5m BTC and ETH candles, imported twice (second time adds nothing)."""
    folder = data_dir / "genetrader" / "binance"
    for name in ("BTC_USDT-5m.feather", "ETH_USDT-5m.feather"):
        first = await import_path(db, folder / name, venue="binance")
        assert first.rows_inserted == 71_769 and not first.errors
        second = await import_path(db, folder / name, venue="binance")
        assert second.rows_inserted == 0 and second.rows_read == 71_769
    history = History(db)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        df = await history.candles(symbol, "binance", "5m")
        assert len(df) == 71_769
        days = (df["ts"].iloc[-1] - df["ts"].iloc[0]).total_seconds() / 86_400
        assert 249 <= days < 250
        week = await history.candles(symbol, "binance", "5m", "2024-05-01", "2024-05-08")
        assert len(week) == 7 * 288
        assert week["ts"].iloc[0] == pd.Timestamp("2024-05-01", tz="UTC")


@pytest.mark.slow
async def test_mlm_import_loads_every_file_in_shared_data(tmp_path: Path, data_dir: Path) -> None:
    """``mlm import ../shared/data`` on the embedded SQLite default: every candle file and the recorded trades."""
    settings = Settings(home_dir=tmp_path / "home", database_url=None)
    report = cli_import_path(settings, data_dir, progress=False)
    assert report.errors == []
    db = Database(settings.effective_database_url)
    try:
        coverage = {(c["symbol"], c["timeframe"]): c["count"] for c in await History(db).coverage("binance")}
        assert coverage == EXPECTED
        async with db.engine.connect() as conn:
            n_trades = await count_rows(conn, trades)
            assert await count_rows(conn, trades, venue="binanceusdm", symbol="BTC/USDT:USDT") == 21_313
        assert n_trades == report.rows_inserted - sum(EXPECTED.values())
        assert n_trades > 70_000
    finally:
        await db.dispose()


def test_cli_import_shows_progress_and_summary(tmp_path: Path, data_dir: Path) -> None:
    import io

    from rich.console import Console

    out = io.StringIO()
    settings = Settings(home_dir=tmp_path / "home", database_url=None)
    report = cli_import_path(
        settings,
        data_dir / "genetrader" / "binance" / "XRP_USDT-1h.feather",
        progress=True,
        venue="binance",
        console=Console(file=out, width=160),
    )
    assert report.rows_inserted == 6_002
    text = out.getvalue()
    assert "Import summary" in text and "binance XRP/USDT 1h" in text and "6,002 new" in text
