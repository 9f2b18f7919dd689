"""GET /api/export: ids are validated before anything, no path is built from them, and the rows are
streamed to the client in bounded chunks (no file on the server). References: the raw Feather
candle files of ../shared/data, read with pandas."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from market_liquidity_monitor.api.app import create_app
from tests.api.conftest import LIVE_VENUES, settings_for
from tests.api.uvicorn_server import UvicornThread


def _feather(data_dir: Path, coin: str, tf: str) -> pd.DataFrame:
    df = pd.read_feather(data_dir / f"genetrader/binance/{coin}_USDT-{tf}.feather")
    ts = pd.DatetimeIndex(df["date"])
    df.index = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return df[["open", "high", "low", "close", "volume"]].astype(float)


@pytest.fixture
def victim():
    """A file outside the server's export area that a traversal would overwrite then delete."""
    d = Path(tempfile.mkdtemp(prefix="v", dir=tempfile.gettempdir()))
    target = d / "keep_BTC-USDT.csv"
    target.write_text("precious\n")
    yield d, target
    shutil.rmtree(d, ignore_errors=True)


def test_a_traversal_in_venue_is_a_422_and_touches_no_file(live_client, victim):
    d, target = victim
    rel = os.path.relpath(d, "/")  # the exporter's temp dir is two levels under tempfile.gettempdir()
    depth = len(Path(tempfile.gettempdir()).parts)  # "/" + "tmp" -> climb out of it as well
    venue = "x/" + "../" * (depth + 1) + f"{rel}/keep"
    assert len(venue) <= 40, venue  # within the old max_length, so the old code built this path
    r = live_client.get("/api/export", params={"kind": "trades", "symbol": "BTC/USDT", "venue": venue})
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["query", "venue"] and "pattern" in err["msg"]
    assert target.read_text() == "precious\n"


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("venue", "Binance"),
        ("venue", "bin ance"),
        ("venue", "../binance"),
        ("symbol", "BTC/../../etc"),
        ("symbol", "/etc/passwd"),
        ("symbol", "BTC\\USDT"),
        ("symbol", "BTC/USDT:USDT/x"),
    ],
)
def test_ids_that_are_not_ccxt_ids_are_a_422(live_client, param, value):
    params = {"kind": "candles", "symbol": "BTC/USDT", param: value}
    r = live_client.get("/api/export", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", param]


def test_valid_unified_symbols_pass_the_id_check(live_client):
    for symbol in (
        "BTC",
        "btc",
        "BTC/USDT",
        "BTC/USDT:USDT",
        "BTC/USD:BTC-240927",
        "ETH/USDT:USDT-241227-3000-C",
    ):
        r = live_client.get("/api/export", params={"kind": "trades", "symbol": symbol, "venue": "binance"})
        assert r.status_code == 200, (symbol, r.text)


@pytest.fixture(scope="module")
def server(data_dir, api_home, api_market):
    app = create_app(settings_for(data_dir, api_home, venues=LIVE_VENUES), market=api_market)
    with UvicornThread(app) as srv:
        assert app.state.readiness.wait(600)
        yield srv


def _export_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("mlm-export-*")}


def test_csv_export_is_streamed_in_chunks_with_every_row(server, data_dir):
    ref = _feather(data_dir, "BTC", "5m")
    before = _export_dirs()
    sizes: list[int] = []
    with (
        httpx.Client(base_url=server.url, timeout=60) as c,
        c.stream("GET", "/api/export", params={"kind": "candles", "symbol": "BTC", "timeframe": "5m"}) as r,
    ):
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.headers
        assert r.headers["content-disposition"] == 'attachment; filename="candles_binance_BTC-USDT_5m.csv"'
        buf = io.BytesIO()
        for chunk in r.iter_raw():
            sizes.append(len(chunk))
            buf.write(chunk)
    assert _export_dirs() == before  # no file on the server
    df = pd.read_csv(io.BytesIO(buf.getvalue()))
    assert len(df) == len(ref) > 20_000
    assert np.array_equal(df["ts_ms"].to_numpy(), ref.index.asi8 // 10**6)
    assert np.allclose(df["close"].to_numpy(), ref["close"].to_numpy(), rtol=0, atol=0)
    assert len(sizes) > 1


def test_parquet_export_is_built_in_row_groups(server, data_dir):
    ref = _feather(data_dir, "BTC", "5m").loc["2024-09-01":]
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.get(
            "/api/export",
            params={
                "kind": "candles",
                "symbol": "BTC",
                "timeframe": "5m",
                "format": "parquet",
                "start": "2024-09-01",
            },
        )
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    f = pq.ParquetFile(io.BytesIO(r.content))
    assert f.metadata.num_rows == len(ref)
    assert f.metadata.num_row_groups == -(-len(ref) // 20_000)  # one row group per storage chunk
    t = f.read().to_pandas()
    assert np.array_equal(t["volume"].to_numpy(), ref["volume"].to_numpy())


def test_empty_export_still_has_the_columns(live_client):
    r = live_client.get(
        "/api/export",
        params={"kind": "trades", "symbol": "DOGE/USDT", "venue": "binance", "format": "parquet"},
    )
    assert r.status_code == 200
    t = pq.read_table(io.BytesIO(r.content))
    assert t.num_rows == 0 and t.column_names[:3] == ["venue", "symbol", "trade_id"]
    r = live_client.get("/api/export", params={"kind": "trades", "symbol": "DOGE/USDT", "venue": "binance"})
    assert r.text.strip() == "venue,symbol,trade_id,ts,ts_event_ns,ts_recv_ns,price,size,side"
