"""Every endpoint on the recorded data, cross-checked against the analytics functions called
directly or an independent recomputation from the source files."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from market_liquidity_monitor import analytics
from market_liquidity_monitor.analytics.pairs import analyze_pair
from market_liquidity_monitor.analytics.routing import route_order
from market_liquidity_monitor.analytics.venues import compare_venues
from market_liquidity_monitor.api.status import Readiness, compute_status
from market_liquidity_monitor.config import Settings


def _views(market, symbol, venues):
    return [market.view(market.resolve(symbol, v)) for v in venues]


def _feather(data_dir, coin, tf):
    df = pd.read_feather(data_dir / f"genetrader/binance/{coin}_USDT-{tf}.feather")
    ts = pd.DatetimeIndex(df["date"])
    df.index = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return df[["open", "high", "low", "close", "volume"]].astype(float)


# ----------------------------------------------------------------------------------- status


def test_status_live_when_every_watched_book_is_fresh(live_client, api_market):
    body = live_client.get("/api/status").json()
    assert body["status"] == "live", body["reasons"]
    assert body["reasons"] == [] and body["mode"] == "recorded"
    configured = [v for v in body["venues"] if v["configured"]]
    assert {v["venue"] for v in configured} == {"binance", "binancecoinm"}
    assert all(v["connection"] == "replay" and v["watched_total"] == 2 for v in configured)
    assert all(b["ok"] for b in body["books"] if b["watched"])
    # every loaded book is listed (not only the watched ones), with the same quality fields
    held = {(i.venue, i.symbol) for i in api_market.store.instruments()}
    assert {(b["venue"], b["symbol"]) for b in body["books"]} == held
    assert body["books_total"] == len(held) and {v["venue"] for v in body["venues"]} >= {i[0] for i in held}
    for b in (b for b in body["books"] if b["watched"]):
        q = api_market.quality(api_market.resolve(b["symbol"], b["venue"]))
        assert b["ok"] and b["synced"] and not b["stale"]
        assert b["age_ms"] == q["age_ms"] <= 10_000
    assert {"clients", "frames_skipped", "clients_dropped"} <= set(body["websocket"])
    # The liquidity history's writer: its counters, no row dropped or refused.
    w = body["writer"]
    assert w["dropped"] == 0 and w["rejected"] == 0 and w["max_buffer_rows"] == 200_000
    assert w["submitted"] >= w["written"] + w["buffered"]
    assert isinstance(body["circuit_breakers"], list)


def test_status_degraded_names_the_stale_usdm_books(client, api_market):
    body = client.get("/api/status").json()
    assert body["status"] == "degraded"
    stale = [b for b in body["books"] if not b["ok"] and b["watched"]]
    assert {b["venue"] for b in stale} == {"binanceusdm"}
    for b in stale:
        q = api_market.quality(api_market.resolve(b["symbol"], "binanceusdm"))
        assert q["stale"] and q["age_ms"] > 10_000
        assert any(b["symbol"] in r and "stale" in r for r in body["reasons"])


def test_status_is_warming_until_the_books_are_loaded(data_dir, api_home, api_market):
    r = Readiness(Settings(data_dir=data_dir, home_dir=api_home), api_market)  # not started yet
    st = compute_status(r, breakers=[], websocket={}, writer=None)
    assert st["status"] == "warming" and st["reasons"][0] == "loading books"


# ----------------------------------------------------------------------------------- compare


def test_compare_matches_compare_venues(live_client, api_market):
    body = {
        "symbol": "BTC/USDT",
        "side": "buy",
        "size": 40,
        "window_bps": 25,
        "venues": ["binance", "binancecoinm"],
    }
    r = live_client.post("/api/compare", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    views = _views(api_market, "BTC/USDT", ("binance", "binancecoinm"))
    # no request fees, no settings override: the published base-tier rates, VIP 0 taker 0.1000% spot
    # (binance.com/en/fee/schedule) and 0.0500% COIN-M (binance.com/en/fee/futureFee)
    fees = {"binance": 10.0, "binancecoinm": 5.0}
    assert all(got["fee_sources"][v].startswith("published: Binance") for v in fees)
    assert not got["fees_assumed_zero"] and {r["venue"]: r["fee_bps"] for r in got["venues"]} == fees
    want = compare_venues(
        views, "buy", size=40, fees_bps=fees, window_bps=25,
        max_book_age_diff_ms=2000,
    )  # fmt: skip
    assert got["best_venue"] == want.best_venue
    assert [v["cost_bps"] for v in got["venues"]] == pytest.approx([v.cost_bps for v in want.venues])
    # HHI recomputed from each book's depth within 25 bps
    depth = [analytics.depth_within_bps(v, 25) for v in views]
    tot = [d.bid_notional + d.ask_notional for d in depth]
    shares = [t / sum(tot) for t in tot]
    assert got["concentration"]["hhi"] == pytest.approx(sum(s * s for s in shares), rel=1e-12)
    assert got["unavailable"] == []
    assert len(got["arbitrage"]) == 2


def test_compare_lists_venues_without_the_symbol(client):
    r = client.post("/api/compare", json={"symbol": "BTC", "side": "sell", "notional": 1_000_000})
    assert r.status_code == 200, r.text
    got = r.json()
    # every recorded venue with a USD-quoted BTC book is compared; the others say why not
    assert {v["venue"] for v in got["venues"]} == {
        "binance",
        "binanceusdm",
        "binancecoinm",
        "bybit",
        "okx",
        "gate",
    }
    why = {u["venue"]: u for u in got["unavailable"]}
    assert why["kraken"]["kind"] == "other_quote" and "CHF" in why["kraken"]["reason"]
    assert why["gemini"]["kind"] == "other_quote" and "GBP" in why["gemini"]["reason"]
    assert why["bitstamp"]["kind"] == "no_symbol"


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"symbol": "BTC", "side": "buy", "size": 1, "venues": ["binanse"]}, 404, "Did you mean binance"),
        ({"symbol": "BTC", "side": "buy", "size": 1, "notional": 5}, 422, "exactly one of size"),
        ({"symbol": "BTC", "side": "buy", "size": 1, "fees_bps": {"kraken": 10}}, 422, "without a book"),
        ({"symbol": "BTC", "side": "buy", "size": 1, "window_bps": 0}, 422, "greater than 0"),
        ({"symbol": "ZZZ", "side": "buy", "size": 1}, 422, "no venue has a comparable book"),
    ],
)
def test_compare_4xx_say_what_is_wrong(live_client, payload, status, needle):
    r = live_client.post("/api/compare", json=payload)
    assert r.status_code == status, r.text
    assert needle in r.text


# ----------------------------------------------------------------------------------- execute


def test_execute_routes_like_route_order_when_live(live_client, api_market):
    body = {
        "symbol": "BTC/USDT", "side": "buy", "size": 60, "fees_bps": {"binance": 10, "binancecoinm": 5},
        "venues": ["binance", "binancecoinm"],
    }  # fmt: skip
    r = live_client.post("/api/execute", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    views = _views(api_market, "BTC/USDT", ("binance", "binancecoinm"))
    want = route_order(views, "buy", size=60, fees_bps={"binance": 10, "binancecoinm": 5})
    assert got["simulation"] is True and got["status"] == "live"
    assert got["routed"]["total_quote"] == pytest.approx(want.routed.total_quote, rel=1e-12)
    assert sum(c["size"] for c in got["routed"]["children"]) == pytest.approx(60)
    assert [b["savings_bps"] for b in got["baselines"]] == pytest.approx(
        [b.savings_bps for b in want.baselines]
    )
    assert all(b["savings_bps"] is None or b["savings_bps"] >= -1e-9 for b in got["baselines"])


def test_execute_on_a_degraded_system_routes_over_the_healthy_books_only(client, api_market):
    status = client.get("/api/status").json()
    assert status["status"] == "degraded"  # the USD-M capture ends five minutes before the others
    r = client.post(
        "/api/execute",
        json={
            "symbol": "BTC/USDT",
            "side": "buy",
            "size": 5,
            "venues": ["binance", "binanceusdm", "binancecoinm"],
        },
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "degraded"
    assert set(got["excluded"]) == {"binanceusdm"} and "stale" in got["excluded"]["binanceusdm"]
    assert {c["venue"] for c in got["routed"]["children"]} <= {"binance", "binancecoinm"}
    views = _views(api_market, "BTC/USDT", ("binance", "binancecoinm"))
    want = route_order(views, "buy", size=5, fees_bps={"binance": 10.0, "binancecoinm": 5.0})
    assert got["routed"]["total_quote"] == pytest.approx(want.routed.total_quote, rel=1e-12)


def test_execute_is_409_when_no_requested_book_is_usable(client):
    r = client.post(
        "/api/execute", json={"symbol": "BTC/USDT", "side": "buy", "size": 1, "venues": ["binanceusdm"]}
    )
    assert r.status_code == 409, r.text
    d = r.json()["detail"]
    assert d["status"] == "degraded" and "no venue has a synced, fresh book" in d["message"]
    assert any("binanceusdm" in x and "stale" in x for x in d["reasons"])


def test_execute_is_409_while_warming(data_dir, api_home):
    # A market whose recordings are not loaded yet: the readiness thread has not finished.
    from fastapi.testclient import TestClient

    from market_liquidity_monitor.api.app import create_app
    from market_liquidity_monitor.market_data import MarketData

    settings = Settings(data_dir=data_dir, home_dir=api_home)
    app = create_app(settings, market=MarketData(settings))  # no recordings: nothing ever syncs
    with TestClient(app) as c:
        assert c.get("/api/status").json()["status"] == "warming"
        r = c.post("/api/execute", json={"symbol": "BTC/USDT", "side": "buy", "size": 1})
    assert r.status_code == 409
    assert r.json()["detail"]["status"] == "warming" and "warming" in r.json()["detail"]["message"]


# ----------------------------------------------------------------------------------- backtest


def test_backtest_order_against_the_candle_file(live_client, data_dir):
    """One 10 BTC buy at the start of the last 30 days of 1h candles: arrival and last close read
    from the file, the fee from Binance's published VIP 0 spot rate (0.1000 %), and the cost and P&L
    identities recomputed from the answer's fills."""
    r = live_client.post(
        "/api/backtest",
        json={"symbol": "BTC", "side": "buy", "size": 10, "lookback_days": 30, "timeframe": "1h"},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    c = _feather(data_dir, "BTC", "1h")
    window = c[c.index > c.index[-1] - pd.Timedelta(days=30)]
    o = got["order"]
    assert o["schedule"] == "arrival" and len(o["slices"]) == 1 and o["filled_size"] == 10
    assert o["arrival_mid_price"] == float(window["open"].iloc[0])
    assert o["last_close"] == float(window["close"].iloc[-1]) and o["candles"] == len(window) == 720
    assert o["fee_bps"] == 10.0 and o["fee_source"].startswith("published: Binance spot")
    (sl,) = o["slices"]
    assert sl["mid_price"] == o["arrival_mid_price"]
    assert o["avg_fill_price"] == pytest.approx(sl["fill_price"], rel=1e-12)
    assert o["avg_fill_price_incl_fees"] == pytest.approx(sl["fill_price"] * (1 + 10 / 1e4), rel=1e-12)
    arrival, avg_in = o["arrival_mid_price"], o["avg_fill_price_incl_fees"]
    assert o["cost_vs_arrival_bps"] == pytest.approx((avg_in - arrival) / arrival * 1e4, rel=1e-9)
    assert o["pnl_quote"] == pytest.approx(10 * (o["last_close"] - avg_in), rel=1e-9)
    # BTC has recorded books: its own model, validated out of sample on them
    info = got["model_info"]
    assert info["calibrated"] is True and info["calibrated_on"] == "binance:BTC/USDT"
    assert info["error"]["mean_abs_error_bps"] <= 1.0 and "out" in info["error"]["label"]
    assert got["result"]["intervals"] == 720  # the cost curve of the same size at every candle


def test_backtest_unknown_asset_is_404_listing_what_is_stored(live_client):
    r = live_client.post(
        "/api/backtest", json={"symbol": "NOPE", "side": "buy", "size": 1, "lookback_days": 7}
    )
    assert r.status_code == 404
    assert "BTC/USDT" in r.json()["detail"]


# ----------------------------------------------------------------------------------- pairs


def test_pairs_matches_analyze_pair_on_the_files(live_client, data_dir):
    r = live_client.get(
        "/api/pairs",
        params={"symbol_a": "BTC", "symbol_b": "ETH", "timeframe": "1h", "lookback_days": 30, "size": 2},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    a, b = _feather(data_dir, "BTC", "1h")["close"], _feather(data_dir, "ETH", "1h")["close"]
    end = a.index[-1] + pd.Timedelta(milliseconds=1)
    a = a[a.index >= end - pd.Timedelta(days=30)]
    b = b[b.index >= end - pd.Timedelta(days=30)]
    want = analyze_pair(a, b)
    an = got["analysis"]
    assert an["n_obs"] == want.n_obs == 720
    assert an["hedge_ratio_ols"] == pytest.approx(want.hedge_ratio_ols, rel=1e-9)
    assert an["coint"]["p_value"] == pytest.approx(want.coint.p_value, rel=1e-6)
    assert len(got["series"]["ts"]) == len(got["series"]["zscore"]) == 720
    assert got["series"]["zscore"][-1] == pytest.approx(want.zscore_last, rel=1e-9)
    cost = got["trade_cost"]
    assert cost["size_a"] == 2 and cost["round_trip_cost_quote"] > 0 and len(cost["legs"]) == 4


def test_pairs_4xx(live_client):
    r = live_client.get("/api/pairs", params={"symbol_a": "BTC", "symbol_b": "btc"})
    assert r.status_code == 422 and "different" in r.text
    r = live_client.get("/api/pairs", params={"symbol_a": "BTC", "symbol_b": "ETH", "timeframe": "7m"})
    assert r.status_code == 422 and "1h" in r.text


# ----------------------------------------------------------------------------------- history


def test_candles_resampled_to_4h_match_the_file(live_client, data_dir):
    r = live_client.get(
        "/api/history/candles",
        params={
            "symbol": "ETH/USDT",
            "timeframe": "4h",
            "start": "2024-08-01T00:00:00Z",
            "end": "2024-08-02",
        },
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["source_timeframe"] == "1h" and got["count"] == 6
    c = _feather(data_dir, "ETH", "1h").loc["2024-08-01 00:00":"2024-08-01 03:00"]
    first = got["candles"][0]
    assert first["ts"] == "2024-08-01T00:00:00.000Z"
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        c["open"].iloc[0],
        c["high"].max(),
        c["low"].min(),
        c["close"].iloc[-1],
    )
    assert first["volume"] == pytest.approx(c["volume"].sum(), rel=1e-12)


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"symbol": "BTC", "start": "yesterday-ish"}, 422, "ISO 8601"),
        ({"symbol": "BTC", "start": "2024-08-02", "end": "2024-08-01"}, 422, "must be after"),
        ({"symbol": "DOGE/EUR"}, 404, "Stored"),
    ],
)
def test_candles_4xx(live_client, params, status, needle):
    r = live_client.get("/api/history/candles", params=params)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_trades_come_from_the_replayed_feed(live_client, api_market):
    r = live_client.get("/api/history/trades", params={"symbol": "BTC/USDT", "venue": "binance", "limit": 5})
    assert r.status_code == 200, r.text
    got = r.json()
    want = list(api_market.store.find("binance", "BTC/USDT").trades)[-5:]
    assert got["source"] == "book_store" and got["count"] == 5
    assert [t["trade_id"] for t in got["trades"]] == [t.trade_id for t in want]
    assert [t["price"] for t in got["trades"]] == [float(t.price) for t in want]
    # inverse contracts are converted to base units (100 USD per BTC contract on COIN-M)
    r = live_client.get(
        "/api/history/trades", params={"symbol": "BTC/USD:BTC", "venue": "binancecoinm", "limit": 1}
    )
    (t,) = r.json()["trades"]
    raw = api_market.store.find("binancecoinm", "BTC/USD:BTC").trades[-1]
    assert t["size"] == pytest.approx(float(raw.size) * 100 / float(raw.price))


def test_export_csv_and_parquet(live_client, data_dir):
    c = _feather(data_dir, "BTC", "1h")
    r = live_client.get("/api/export", params={"kind": "candles", "symbol": "BTC/USDT", "timeframe": "1h"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    df = pd.read_csv(io.StringIO(r.text))
    assert len(df) == len(c)
    assert np.allclose(df["close"].to_numpy(), c["close"].to_numpy())
    r = live_client.get(
        "/api/export",
        params={
            "kind": "candles",
            "symbol": "BTC",
            "timeframe": "1h",
            "format": "parquet",
            "start": "2024-09-01",
        },
    )
    assert r.status_code == 200
    t = pq.read_table(io.BytesIO(r.content))
    assert t.num_rows == len(c.loc["2024-09-01":])
    r = live_client.get("/api/export", params={"kind": "candles", "symbol": "BTC", "timeframe": "4h"})
    assert r.status_code == 404 and "1h" in r.json()["detail"]
    r = live_client.get("/api/export", params={"kind": "books", "symbol": "BTC"})
    assert r.status_code == 422 and "candles" in r.text


# ----------------------------------------------------------------------------------- chat


def test_chat_streams_chunks_then_the_tool_calls(live_client):
    q = "How much slippage would a 5 BTC market buy cause on Binance?"
    r = live_client.post("/api/chat", json={"message": q, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [b for b in r.text.split("\n\n") if b.strip()]
    chunks = [json.loads(e.split("data: ", 1)[1])["text"] for e in events if e.startswith("event: chunk")]
    (done,) = [json.loads(e.split("data: ", 1)[1]) for e in events if e.startswith("event: done")]
    assert events[-1].startswith("event: done") and len(chunks) > 5
    assert "".join(chunks) == done["answer"]
    assert done["tool_calls"][0]["tool"] == "market_impact" and done["grounding"]["grounded"]
    plain = live_client.post("/api/chat", json={"message": q}).json()
    assert plain["answer"] == done["answer"]


# ----------------------------------------------------------------------------------- websocket


def test_ws_frames_match_the_books(live_client, api_market):
    with live_client.websocket_connect("/ws/stream?symbol=BTC/USDT&window=25bps") as ws:
        hello = json.loads(ws.receive_text())
        assert hello["type"] == "hello" and hello["window_bps"] == 25 and hello["heartbeat_s"] == 5.0
        while (frame := json.loads(ws.receive_text()))["type"] != "metrics":
            pass
    assert frame["symbol"] == "BTC/USDT" and frame["window_bps"] == 25
    rows = {r["venue"]: r for r in frame["venues"]}
    assert set(rows) == {"binance", "binancecoinm"}
    depth = {}
    for venue, row in rows.items():
        view = api_market.view(api_market.resolve(row["symbol"], venue))
        top, d = analytics.top_of_book(view), analytics.depth_within_bps(view, 25)
        imb = analytics.imbalance(view, 25).imbalance
        assert row["mid"] == pytest.approx(top.mid_price, rel=1e-8)
        assert row["spread_bps"] == pytest.approx(top.spread_bps, rel=1e-3)
        assert row["bid_depth_notional"] == pytest.approx(d.bid_notional, abs=0.01)
        assert row["imbalance"] == pytest.approx(imb, abs=1e-4)
        depth[venue] = d.bid_notional + d.ask_notional
    shares = {k: v / sum(depth.values()) for k, v in depth.items()}
    assert frame["hhi"] == pytest.approx(sum(s * s for s in shares.values()), abs=1e-4)
    assert rows["binance"]["share"] == pytest.approx(shares["binance"], abs=1e-4)


@pytest.mark.parametrize(
    ("query", "needle"), [("symbol=BTC&window=wide", "basis points"), ("symbol=NOPE/USDT", "NOPE")]
)
def test_ws_bad_request_gets_an_error_frame(live_client, query, needle):
    with live_client.websocket_connect(f"/ws/stream?{query}") as ws:
        msg = json.loads(ws.receive_text())
    assert msg["type"] == "error" and needle in msg["detail"]
