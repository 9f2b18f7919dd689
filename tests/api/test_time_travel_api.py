"""REST time travel: ``as_of`` query parameters on the book endpoints and ``GET /api/timeline``,
checked against a Decimal rebuild of the raw recording (tests/timetravel_reference.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.timetravel_reference import _ns, decimal_book, decimal_vwap_buy

AS_OF = "2024-08-08T23:58:00Z"


def test_timeline_gives_each_recorded_book_its_range(live_client):
    r = live_client.get("/api/timeline")
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "recorded" and body["time"] == "book time, UTC"
    row = next(b for b in body["books"] if b["venue"] == "binance" and b["symbol"] == "BTC/USDT")
    assert row["first_ts"] == "2024-08-08T23:54:14.206Z" and row["last_ts"] == "2024-08-09T00:05:04.535Z"
    assert row["first_ts_ns"] < _ns(AS_OF) < row["last_ts_ns"]


def test_orderbook_and_impact_as_of(live_client, data_dir):
    bids, asks, _, _ = decimal_book(data_dir, _ns(AS_OF))
    r = live_client.get("/api/orderbook/binance/BTC/USDT", params={"as_of": AS_OF, "levels": 10})
    assert r.status_code == 200, r.text
    ob = r.json()
    assert ob["book"]["as_of"] == "2024-08-08T23:58:00.000Z"
    assert ob["bids"] == [[float(p), float(bids[p])] for p in sorted(bids, reverse=True)[:10]]
    assert ob["asks"] == [[float(p), float(asks[p])] for p in sorted(asks)[:10]]
    latest = live_client.get("/api/orderbook/binance/BTC/USDT", params={"levels": 10}).json()
    assert latest["book"]["as_of"] is None and latest["bids"] != ob["bids"]

    body = {"symbol": "BTC/USDT", "side": "buy", "size": 5, "venue": "binance"}
    imp = live_client.post("/api/impact", params={"as_of": AS_OF}, json=body)
    assert imp.status_code == 200, imp.text
    assert imp.json()["vwap"] == pytest.approx(float(decimal_vwap_buy(asks, Decimal(5))), rel=1e-12)


def test_compare_and_execute_as_of(live_client):
    body = {"symbol": "BTC", "side": "buy", "size": 5, "venues": ["binance", "binancecoinm"]}
    c = live_client.post("/api/compare", params={"as_of": AS_OF}, json=body)
    assert c.status_code == 200, c.text
    assert c.json()["as_of"] == "2024-08-08T23:58:00.000Z"
    assert {row["book"]["as_of"] for row in c.json()["venues"]} == {"2024-08-08T23:58:00.000Z"}
    e = live_client.post("/api/execute", params={"as_of": AS_OF}, json=body)
    assert e.status_code == 200, e.text
    assert all(b["as_of"] == "2024-08-08T23:58:00.000Z" for b in e.json()["books"])


@pytest.mark.parametrize(
    ("as_of", "needle"),
    [("2024-08-08T23:00:00Z", "can be rebuilt from 2024-08-08T23:54:14.206Z"), ("noon", "ISO 8601")],
)
def test_bad_as_of_is_422_saying_what_is_valid(live_client, as_of, needle):
    r = live_client.get("/api/orderbook/binance/BTC/USDT", params={"as_of": as_of})
    assert r.status_code == 422
    assert needle in r.text
