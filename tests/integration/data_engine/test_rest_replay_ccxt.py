"""The real ccxt async clients (and DataEngine) against the REST stand-in over ../shared/data.

Every expected value is read here, independently of the stand-in, from the recording files: the raw
JSON of a cryptofeed capture line, the hftbacktest snapshot/trade lines, the candle files via
json/pandas. Prices and sizes are compared as Decimal.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from ccxt.base import errors as ccxt_errors

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.cache import MemoryCache
from market_liquidity_monitor.data_engine.engine import DataEngine, default_exchange_factory
from market_liquidity_monitor.data_engine.errors import VenueRequestError
from market_liquidity_monitor.data_engine.replay_server import RestReplayServer
from market_liquidity_monitor.domain.errors import UnknownSymbolError


# -- independent readers of the recordings ------------------------------------------------------
def capture_body(data_dir: Path, name: str, url_part: str) -> Any:
    """JSON body of the newest line of cryptofeed/<name> whose request URL contains ``url_part``."""
    found = None
    with gzip.open(data_dir / "cryptofeed" / name, "rt") as fh:
        for line in fh:
            url, sep, rest = line.partition(" -> ")
            if sep and url_part in url:
                ts, _, body = rest.partition(": ")
                if found is None or float(ts) > found[0]:
                    found = (float(ts), body)
    assert found is not None, (name, url_part)
    return json.loads(found[1])


def capture_ts(data_dir: Path, name: str, url_part: str) -> float:
    with gzip.open(data_dir / "cryptofeed" / name, "rt") as fh:
        for line in fh:
            url, sep, rest = line.partition(" -> ")
            if sep and url_part in url:
                return float(rest.partition(": ")[0])
    raise AssertionError(url_part)


def hft_snapshot(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt") as fh:
        for line in fh:
            _ns, _, payload = line.partition(" ")
            if payload.startswith('{"lastUpdateId"'):
                return json.loads(payload)
    raise AssertionError(f"no snapshot line in {path}")


def hft_trades(paths: list[Path]) -> list[dict[str, Any]]:
    out = {}
    for path in paths:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                payload = line.partition(" ")[2]
                if '"e":"trade"' in payload:
                    d = json.loads(payload)["data"]
                    out[d["t"]] = d
    return [out[k] for k in sorted(out)]


def freqtrade_json(path: Path) -> list[list[float]]:
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


def assert_levels(got: list, want: list[list[str]]) -> None:
    """ccxt float levels (or decimal-string levels) equal the recorded decimal strings."""
    assert len(got) == len(want)
    for (gp, gs, *_), (wp, ws, *_) in zip(got, want, strict=True):
        assert Decimal(str(gp)) == Decimal(wp) and Decimal(str(gs)) == Decimal(ws), (gp, gs, wp, ws)


# -- fixtures -----------------------------------------------------------------------------------
def settings_for(base_url: str, *venues: str, **engine: Any) -> Settings:
    return Settings(
        venues=venues or ("binance",),
        data_engine=DataEngineSettings(rest_base_url=base_url, request_timeout_s=10.0, **engine),
    )


@pytest.fixture
async def exchanges(server: RestReplayServer):
    """The product's ccxt exchanges (``default_exchange_factory``) pointed at the stand-in."""
    make = default_exchange_factory(settings_for(server.base_url))
    made: dict[str, Any] = {}

    def get(venue: str):
        if venue not in made:
            made[venue] = make(venue)
        return made[venue]

    yield get
    for ex in made.values():
        await ex.close()


@pytest.fixture
async def engine(server: RestReplayServer):
    eng = DataEngine(
        settings_for(server.base_url, "binance", "bitstamp", "gate", "kucoin"), MemoryCache(300.0)
    )
    yield eng
    await eng.close()


# -- load_markets ---------------------------------------------------------------------------------
async def test_binance_load_markets_is_spot_plus_usdm_plus_coinm_exchange_info(
    exchanges, server: RestReplayServer, data_dir: Path
) -> None:
    spot = capture_body(data_dir, "BINANCE.0.gz", "/api/v3/exchangeInfo")["symbols"]
    usdm = capture_body(data_dir, "BINANCE_FUTURES.0.gz", "/fapi/v1/exchangeInfo")["symbols"]
    coinm = capture_body(data_dir, "BINANCE_DELIVERY.0.gz", "/dapi/v1/exchangeInfo")["symbols"]
    markets = await exchanges("binance").load_markets()
    assert len(markets) == len(spot) + len(usdm) + len(coinm)
    assert sorted(server.requests) == [
        "/api.binance.com/api/v3/exchangeInfo",
        "/dapi.binance.com/dapi/v1/exchangeInfo",
        "/fapi.binance.com/fapi/v1/exchangeInfo",
    ]  # no currencies request: default_exchange_factory turns fetch_currencies off
    btc = next(s for s in spot if s["symbol"] == "BTCUSDT")
    tick = next(f["tickSize"] for f in btc["filters"] if f["filterType"] == "PRICE_FILTER")
    assert Decimal(str(markets["BTC/USDT"]["precision"]["price"])) == Decimal(tick)

    usdm_markets = await exchanges("binanceusdm").load_markets()
    assert len(usdm_markets) == len(usdm) and "BTC/USDT:USDT" in usdm_markets
    coinm_markets = await exchanges("binancecoinm").load_markets()
    assert len(coinm_markets) == len(coinm)
    raw_perp = next(s for s in coinm if s["symbol"] == "BTCUSD_PERP")
    assert coinm_markets["BTC/USD:BTC"]["contractSize"] == float(raw_perp["contractSize"]) == 100.0


async def test_bitstamp_markets_derived_from_the_recorded_trading_pairs_info(
    exchanges, data_dir: Path
) -> None:
    raw = capture_body(data_dir, "BITSTAMP.0.gz", "/api/v2/trading-pairs-info/")
    markets = await exchanges("bitstamp").load_markets()
    assert len(markets) == len(raw) == 140
    eth = next(p for p in raw if p["name"] == "ETH/USD")
    m = markets["ETH/USD"]
    assert m["id"] == eth["url_symbol"] == "ethusd"
    assert Decimal(str(m["precision"]["price"])) == Decimal(1).scaleb(-eth["counter_decimals"])
    assert Decimal(str(m["precision"]["amount"])) == Decimal(1).scaleb(-eth["base_decimals"])
    amount, currency = eth["minimum_order"].split()
    assert currency == "USD" and Decimal(str(m["limits"]["cost"]["min"])) == Decimal(amount)
    assert m["active"] is (eth["trading"] == "Enabled")


async def test_gate_load_markets_has_the_recorded_spot_pairs_and_fees(
    exchanges, server: RestReplayServer, data_dir: Path
) -> None:
    raw = capture_body(data_dir, "GATEIO.0.gz", "/api/v4/spot/currency_pairs")
    markets = await exchanges("gate").load_markets()
    assert len(markets) == len(raw)  # companion listings (margin, futures, options) answer empty
    pair = next(p for p in raw if p["id"] == "BTC_USDC")
    m = markets["BTC/USDC"]
    assert Decimal(str(m["taker"])) == Decimal(pair["fee"]) / 100
    assert Decimal(str(m["precision"]["price"])) == Decimal(1).scaleb(-pair["precision"])
    assert m["margin"] is False and m["spot"] is True
    assert "/api.gateio.ws/api/v4/margin/currency_pairs" in server.requests


async def test_kucoin_load_markets_reads_the_recorded_v1_symbols_at_v2(
    exchanges, server: RestReplayServer, data_dir: Path
) -> None:
    raw = capture_body(data_dir, "KUCOIN.0.gz", "/api/v1/symbols")["data"]
    ex = exchanges("kucoin")
    markets = await ex.load_markets()
    assert "/api.kucoin.com/api/v2/symbols" in server.requests
    assert len(markets) == len(raw)
    snx = next(s for s in raw if s["symbol"] == "SNX-BTC")
    m = markets["SNX/BTC"]
    assert Decimal(str(m["precision"]["price"])) == Decimal(snx["priceIncrement"])
    assert Decimal(str(m["precision"]["amount"])) == Decimal(snx["baseIncrement"])
    # Per-market fee rates come from allTickers, not recorded: ccxt falls back to its exchange-wide rate.
    assert m["taker"] == ex.fees["trading"]["taker"]


@pytest.mark.parametrize(
    ("venue", "error"),
    [
        ("bybit", ccxt_errors.BadRequest),  # v5 instruments-info: Bybit's 10017 path-not-found
        ("bitfinex", ccxt_errors.ExchangeNotAvailable),  # conf keys ccxt asks for were not recorded
        ("coinbaseexchange", ccxt_errors.OrderNotFound),  # recorded host is api.pro.coinbase.com
    ],
)
async def test_venues_whose_current_endpoints_were_not_recorded_fail_with_their_own_error(
    exchanges, venue: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await exchanges(venue).load_markets()


# -- order books ----------------------------------------------------------------------------------
async def test_bitstamp_eth_usd_book_equals_the_recorded_snapshot(engine: DataEngine, data_dir: Path) -> None:
    raw = capture_body(data_dir, "BITSTAMP.http.0.0.gz", "/api/v2/order_book/ethusd")
    snap = await engine.order_book("bitstamp", "ETH/USD", limit=10**6)
    assert_levels(snap.bids, raw["bids"])
    assert_levels(snap.asks, raw["asks"])
    assert snap.sequence == int(raw["microtimestamp"])  # ccxt bitstamp: nonce = microtimestamp
    assert snap.ts_event == int(raw["microtimestamp"]) // 1000 * 1_000_000


async def test_binance_btc_usdt_book_is_the_hftbacktest_1000_level_snapshot(
    engine: DataEngine, exchanges, data_dir: Path
) -> None:
    raw = hft_snapshot(data_dir / "hftbacktest" / "spot" / "btcusdt_20240808.gz")
    assert len(raw["bids"]) == len(raw["asks"]) == 1000
    snap = await engine.order_book("binance", "BTC/USDT", limit=1000)
    assert snap.sequence == raw["lastUpdateId"]
    assert_levels(snap.bids, raw["bids"])
    assert_levels(snap.asks, raw["asks"])
    top = await exchanges("binance").fetch_order_book("BTC/USDT", 5)
    assert_levels(top["bids"], raw["bids"][:5])
    assert_levels(top["asks"], raw["asks"][:5])


@pytest.mark.parametrize(
    ("venue", "symbol", "path"),
    [
        ("binanceusdm", "BTC/USDT:USDT", "usdm/btcusdt_20240808.gz"),
        ("binanceusdm", "ETH/USDT:USDT", "usdm/ethusdt_20240808.gz"),
        ("binancecoinm", "BTC/USD:BTC", "cm/btcusd_perp_20240808.gz"),
        ("binancecoinm", "ETH/USD:ETH", "cm/ethusd_perp_20240808.gz"),
        ("binance", "ETH/USDT", "spot/ethusdt_20240808.gz"),
    ],
)
async def test_binance_futures_books_are_the_hftbacktest_snapshots(
    exchanges, data_dir: Path, venue: str, symbol: str, path: str
) -> None:
    raw = hft_snapshot(data_dir / "hftbacktest" / path)
    book = await exchanges(venue).fetch_order_book(symbol, 100)
    assert book["nonce"] == raw["lastUpdateId"]
    assert_levels(book["bids"], raw["bids"][:100])
    assert_levels(book["asks"], raw["asks"][:100])
    if "T" in raw:
        assert book["timestamp"] == raw["T"]


async def test_gate_btc_usdc_book_equals_the_recorded_snapshot(engine: DataEngine, data_dir: Path) -> None:
    url = "currency_pair=BTC_USDC&"
    raw = capture_body(data_dir, "GATEIO.http.0.0.gz", url)
    snap = await engine.order_book("gate", "BTC/USDC", limit=100)
    assert snap.sequence == raw["id"]
    assert_levels(snap.bids, raw["bids"][:100])
    assert_levels(snap.asks, raw["asks"][:100])
    # Gate's 2021 response had no `current`; the stand-in puts the capture's receive time there.
    assert snap.ts_event == int(capture_ts(data_dir, "GATEIO.http.0.0.gz", url) * 1000) * 1_000_000
    five = await engine.order_book("gate", "BTC/USDC", limit=5)
    assert_levels(five.bids, raw["bids"][:5])


async def test_kucoin_public_book_is_the_top_of_the_recorded_full_book(exchanges, data_dir: Path) -> None:
    raw = capture_body(data_dir, "KUCOIN.http.0.0.gz", "symbol=SNX-BTC")["data"]
    book = await exchanges("kucoin").fetch_order_book("SNX/BTC", 20)
    assert_levels(book["bids"], raw["bids"][:20])
    assert_levels(book["asks"], raw["asks"][:20])
    assert book["nonce"] == int(raw["sequence"]) and book["timestamp"] == raw["time"]


# -- candles ---------------------------------------------------------------------------------------
async def test_fetch_ohlcv_pages_through_the_1m_file_and_keeps_its_gap(
    engine: DataEngine, data_dir: Path
) -> None:
    rows = freqtrade_json(data_dir / "tooyipjee_freqtrade" / "binance" / "BTC_USDT-1m.json.gz")
    # start 1,000 minutes before the recorded maintenance gap of 2021-04-25 04:01-08:44
    gap_at = next(i for i in range(1, len(rows)) if rows[i][0] - rows[i - 1][0] != 60_000)
    since = rows[gap_at - 1000][0]
    got: list[list[float]] = []
    for _ in range(3):
        page = await engine.ohlcv("binance", "BTC/USDT", "1m", since_ms=since, limit=1000)
        assert len(page) == 1000
        got += page
        since = page[-1][0] + 60_000
    want = rows[gap_at - 1000 : gap_at + 2000]
    assert got == [[int(r[0]), *map(float, r[1:6])] for r in want]
    assert got[1000][0] - got[999][0] == rows[gap_at][0] - rows[gap_at - 1][0] > 60_000  # no filled gap


async def test_fetch_ohlcv_5m_and_1h_from_the_feather_files(exchanges, data_dir: Path) -> None:
    ex = exchanges("binance")
    for tf, step in (("5m", 300_000), ("1h", 3_600_000)):
        df = pd.read_feather(data_dir / "genetrader" / "binance" / f"ETH_USDT-{tf}.feather")
        open_ms = (df["date"].astype("int64") // 1_000_000).tolist()
        i = 1234
        page = await ex.fetch_ohlcv("ETH/USDT", tf, open_ms[i] + step // 2, 300)  # since inside candle i
        want = df.iloc[i + 1 : i + 301]  # Binance: candles opening at or after startTime
        assert [r[0] for r in page] == open_ms[i + 1 : i + 301]
        assert [r[1:] for r in page] == want[["open", "high", "low", "close", "volume"]].values.tolist()
        recent = await ex.fetch_ohlcv("ETH/USDT", tf, None, 7)  # no bounds: the newest candles
        assert [r[0] for r in recent] == open_ms[-7:]


async def test_klines_wire_format_and_binance_parameter_rules(
    server: RestReplayServer, data_dir: Path
) -> None:
    rows = freqtrade_json(data_dir / "tooyipjee_freqtrade" / "binance" / "ETH_USDT-1m.json.gz")
    url = f"{server.base_url}/api.binance.com/api/v3/klines"
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(url, params={"symbol": "ETHUSDT", "interval": "1m", "startTime": rows[0][0]})
        body = r.json()
        assert r.status_code == 200 and len(body) == 500  # default limit
        first = body[0]
        assert len(first) == 12 and first[0] == rows[0][0] and first[6] == rows[0][0] + 59_999
        assert [float(x) for x in first[1:6]] == rows[0][1:6] and first[7:] == [None] * 5
        assert all(isinstance(x, str) and "e" not in x for x in first[1:6])
        r = await client.get(
            url, params={"symbol": "ETHUSDT", "interval": "1m", "startTime": rows[0][0], "limit": 5000}
        )
        assert len(r.json()) == 1000  # max 1000
        end = rows[100][0]
        r = await client.get(url, params={"symbol": "ETHUSDT", "interval": "1m", "endTime": end, "limit": 10})
        assert [k[0] for k in r.json()] == [row[0] for row in rows[91:101]]  # the 10 ending at endTime
        cases = [
            ({"interval": "1m"}, -1102),
            ({"symbol": "ETHUSDT"}, -1102),
            ({"symbol": "ETHUSDT", "interval": "7m"}, -1120),
            ({"symbol": "ETHUSDT", "interval": "15m"}, -1120),  # valid, not recorded
            ({"symbol": "ETHUSDT", "interval": "1m", "limit": "ten"}, -1100),
            ({"symbol": "NKNUSDT", "interval": "1m"}, -1121),
        ]
        for params, code in cases:
            r = await client.get(url, params=params)
            assert r.status_code == 400 and r.json()["code"] == code, (params, r.text)
        r = await client.get(url, params={"symbol": "ETHUSDT", "interval": "15m"})
        assert "1m/" not in r.headers["X-Replay-Note"] and "1m, 5m, 1h" in r.headers["X-Replay-Note"]
        r = await client.get(
            f"{server.base_url}/fapi.binance.com/fapi/v1/klines",
            params={"symbol": "BTCUSDT", "interval": "1m"},
        )
        assert r.status_code == 400 and r.json() == {"code": -1121, "msg": "Invalid symbol."}
        r = await client.get(f"{server.base_url}/api.binance.com/api/v3/nothing")
        assert r.status_code == 404 and "nginx" in r.text


# -- time and trades ---------------------------------------------------------------------------------
async def test_fetch_time_is_the_end_of_the_newest_candle(exchanges, data_dir: Path) -> None:
    ends = []
    for path in (data_dir / "genetrader" / "binance").glob("*.feather"):
        step = {"5m": 300_000, "1h": 3_600_000}[path.stem.rsplit("-", 1)[1]]
        ends.append(int(pd.read_feather(path)["date"].astype("int64").max()) // 1_000_000 + step)
    for path in (data_dir / "tooyipjee_freqtrade" / "binance").glob("*-1m.json.gz"):
        ends.append(int(freqtrade_json(path)[-1][0]) + 60_000)
    assert await exchanges("binance").fetch_time() == max(ends)
    assert pd.Timestamp(max(ends), unit="ms") == pd.Timestamp("2024-09-07 02:25:00")


async def test_futures_time_is_the_newest_recorded_trade_or_snapshot(exchanges, data_dir: Path) -> None:
    paths = sorted((data_dir / "hftbacktest" / "cm").glob("*.gz"))
    times = [int(t["T"]) for t in hft_trades(paths)]
    for p in paths:
        if p.name.endswith("_20240808.gz"):
            snap = hft_snapshot(p)
            times += [snap["E"], snap["T"]]
    assert await exchanges("binancecoinm").fetch_time() == max(times)


async def test_engine_trades_are_the_latest_recorded_spot_trades(engine: DataEngine, data_dir: Path) -> None:
    raw = hft_trades(sorted((data_dir / "hftbacktest" / "spot").glob("btcusdt_*.gz")))[-50:]
    trades = await engine.trades("binance", "BTC/USDT", limit=50)
    assert [t.trade_id for t in trades] == [str(d["t"]) for d in raw]
    for t, d in zip(trades, raw, strict=True):
        assert Decimal(t.price) == Decimal(d["p"]) and Decimal(t.size) == Decimal(d["q"])
        assert t.side == ("sell" if d["m"] else "buy")  # buyer is maker -> the taker sold
        assert t.ts_event == d["T"] * 1_000_000


async def test_trades_wire_shapes_and_exact_quote_qty(
    server: RestReplayServer, exchanges, data_dir: Path
) -> None:
    raw = hft_trades(sorted((data_dir / "hftbacktest" / "usdm").glob("ethusdt_*.gz")))
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(
            f"{server.base_url}/fapi.binance.com/fapi/v1/trades", params={"symbol": "ETHUSDT", "limit": 3}
        )
        assert r.json() == [
            {
                "id": d["t"],
                "price": d["p"],
                "qty": d["q"],
                "quoteQty": format((Decimal(d["p"]) * Decimal(d["q"])).normalize(), "f"),
                "time": d["T"],
                "isBuyerMaker": d["m"],
            }
            for d in raw[-3:]
        ]
        r = await client.get(f"{server.base_url}/api.binance.com/api/v3/trades", params={"symbol": "ETHUSDT"})
        body = r.json()
        assert len(body) == 500 and set(body[0]) == {
            "id",
            "price",
            "qty",
            "quoteQty",
            "time",
            "isBuyerMaker",
            "isBestMatch",
        }
        assert all(Decimal(t["quoteQty"]) == Decimal(t["price"]) * Decimal(t["qty"]) for t in body)
        r = await client.get(
            f"{server.base_url}/dapi.binance.com/dapi/v1/trades", params={"symbol": "BTCUSD_PERP", "limit": 2}
        )
        assert [t["baseQty"] for t in r.json()] == [None, None]
    trades = await exchanges("binanceusdm").fetch_trades(
        "ETH/USDT:USDT", None, 10, {"fetchTradesMethod": "fapiPublicGetTrades"}
    )
    assert [t["id"] for t in trades] == [str(d["t"]) for d in raw[-10:]]


# -- unknown symbols --------------------------------------------------------------------------------
async def test_unknown_and_unrecorded_symbols(engine: DataEngine, exchanges) -> None:
    # DOGE/USDT is listed in the recorded exchangeInfo but no book of it was recorded.
    with pytest.raises(ccxt_errors.BadSymbol, match="Invalid symbol"):
        await exchanges("binance").fetch_order_book("DOGE/USDT", 5)
    with pytest.raises(VenueRequestError, match="Invalid symbol"):
        await engine.order_book("binance", "DOGE/USDT", limit=5)
    assert engine.breaker("binance").consecutive_failures == 0  # a refusal, not an outage
    with pytest.raises(UnknownSymbolError):
        await engine.order_book("binance", "NOPE/USDT", limit=5)  # not listed: rejected before a request
    with pytest.raises(ccxt_errors.BadSymbol, match="INVALID_CURRENCY_PAIR"):
        await exchanges("gate").fetch_order_book("BTC/USDT", 5)
    with pytest.raises(ccxt_errors.BadSymbol, match="Unsupported trading pair"):
        await exchanges("kucoin").fetch_order_book("BTC/USDT", 20)
    # ccxt 4.5.90 maps no Bitstamp error to BadSymbol: an unrecorded pair is an ExchangeError.
    with pytest.raises(ccxt_errors.ExchangeError, match="Not found"):
        await exchanges("bitstamp").fetch_order_book("BTC/USD")
