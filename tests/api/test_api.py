"""The REST API on the recorded books."""

from __future__ import annotations

import pytest

# ``client`` (default venues, on the recorded data) comes from tests/api/conftest.py.


def test_health(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["mode"] == "recorded"


def test_orderbook_endpoint_returns_summary_and_levels(client):
    r = client.get("/api/orderbook/binance/BTC/USDT", params={"levels": 5, "window_bps": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == "BTC/USDT" and len(body["bids"]) == 5 and len(body["asks"]) == 5
    assert body["bids"][0][0] == body["top_of_book"]["best_bid"]
    assert any(d["window_bps"] == 5 for d in body["depth"])
    assert client.get("/api/orderbook/binance/BTC-USDT").json()["symbol"] == "BTC/USDT"


def test_impact_endpoint(client):
    r = client.post(
        "/api/impact", json={"venue": "binance", "symbol": "BTC/USDT", "side": "sell", "notional": 150000}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["side"] == "sell" and body["fully_filled"]
    assert body["filled_notional"] == pytest.approx(150000, rel=1e-9)
    assert body["slippage_bps"] >= 0


@pytest.mark.parametrize(
    "payload",
    [
        {"symbol": "BTC", "side": "buy", "size": 0},
        {"symbol": "BTC", "side": "buy", "size": -1},
        {"symbol": "BTC", "side": "hold", "size": 1},
        {"symbol": "BTC", "side": "buy"},
        {"symbol": "BTC", "side": "buy", "size": 1, "notional": 5},
    ],
)
def test_impact_rejects_bad_input_with_422(client, payload):
    r = client.post("/api/impact", json=payload)
    assert r.status_code == 422


def test_unknown_venue_and_symbol_name_closest_valid_ones(client):
    r = client.get("/api/orderbook/binanse/BTC/USDT")
    assert r.status_code == 404
    assert "Did you mean binance" in r.json()["detail"]
    r = client.get("/api/orderbook/binance/BTC/USDX")
    assert r.status_code == 404
    assert "BTC/USDT" in r.json()["detail"]


def test_chat_round_trip_with_session(client):
    r = client.post(
        "/api/chat", json={"message": "How much slippage would a 5 BTC market buy cause on Binance?"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tool_calls"][0]["tool"] == "market_impact"
    assert body["grounding"]["grounded"]
    assert body["grounding"]["verdict"] == "grounded" and body["grounding"]["unsupported"] == []
    r2 = client.post("/api/chat", json={"message": "what about 10 BTC?", "session_id": body["session_id"]})
    assert r2.json()["tool_calls"][0]["args"]["size"] == 10


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/chat", "/api/impact"} <= set(paths)
