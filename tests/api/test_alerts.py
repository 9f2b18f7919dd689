"""Alert endpoints on the recorded books: a rule that must fire does, on the books' real values."""

from __future__ import annotations

import time

import pytest

from market_liquidity_monitor import analytics


def test_alert_rule_lifecycle_and_events(live_client, api_market):
    spread = analytics.top_of_book(api_market.view(api_market.resolve("BTC/USDT", "binance"))).spread_bps
    rule = {
        "symbol": "BTC/USDT",
        "venue": "binance",
        "metric": "spread_bps",
        "comparison": "below",
        "threshold": spread * 2,  # the recorded spread is below twice itself: fires on first sample
        "name": "api-test tight spread",
    }
    r = live_client.post("/api/alerts", json=rule)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] is not None and created["metric"] == "spread_bps"
    assert created["id"] in [a["id"] for a in live_client.get("/api/alerts").json()]
    # Rules are evaluated once the watched books are loaded (warm-up takes longer on a busy machine).
    deadline = time.monotonic() + 180
    while live_client.get("/api/status").json()["status"] == "warming" and time.monotonic() < deadline:
        time.sleep(0.5)
    deadline = time.monotonic() + 30
    mine = []
    while not mine and time.monotonic() < deadline:
        events = live_client.get("/api/alerts/events", params={"limit": 100}).json()
        mine = [e for e in events if e["rule_id"] == created["id"]]
        time.sleep(0.3)
    assert mine, "the rule did not fire"
    assert mine[0]["venue"] == "binance" and mine[0]["value"] == pytest.approx(spread, rel=1e-9)
    assert live_client.delete(f"/api/alerts/{created['id']}").status_code == 204
    r = live_client.delete(f"/api/alerts/{created['id']}")
    assert r.status_code == 404 and "existing ids" in r.json()["detail"]


def test_alert_rule_4xx(live_client):
    r = live_client.post(
        "/api/alerts",
        json={"symbol": "BTC/USDT", "metric": "depth_notional", "comparison": "below", "threshold": 1},
    )
    assert r.status_code == 422 and "window_bps" in r.text
    r = live_client.post(
        "/api/alerts", json={"symbol": "BTC/USDT", "metric": "depth", "comparison": "below", "threshold": 1}
    )
    assert r.status_code == 422 and "depth_notional" in r.text


def test_a_rule_on_a_symbol_without_any_book_is_refused(live_client, api_market):
    """A rule that can never fire (no venue has a book of the symbol) is refused with what exists."""
    rule = {"symbol": "ZZZ/USDT", "metric": "spread_bps", "comparison": "above", "threshold": 5}
    r = live_client.post("/api/alerts", json=rule)
    assert r.status_code == 404, r.text
    body = r.json()
    assert "Unknown symbol 'ZZZ/USDT'" in body["detail"]
    held = {i.symbol for i in api_market.instruments()}
    assert "BTC/USDT" in held and "BTC/USDT" in body["valid"]
    ok = live_client.post("/api/alerts", json={**rule, "symbol": "BTC/USDT", "threshold": 123.5})
    assert ok.status_code == 201, ok.text
    assert live_client.delete(f"/api/alerts/{ok.json()['id']}").status_code == 204
