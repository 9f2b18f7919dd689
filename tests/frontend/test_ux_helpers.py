"""The app's left-out table, chart downloads and yes/no verdict helpers, on real API answers
(the test API on the recorded data), checked against figures recomputed here."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest
from mlm_ui.shapes import book_level_rows, left_out_rows
from mlm_ui.verdict import liquidity_verdict


def _post(api_server, path: str, body: dict) -> dict:
    r = httpx.post(f"{api_server.url}{path}", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_book_level_rows_are_the_levels_with_running_sums(api_server):
    book = httpx.get(
        f"{api_server.url}/api/orderbook/binance/BTC/USDT", params={"levels": 50}, timeout=120
    ).json()
    rows = book_level_rows(book)
    assert [r["side"] for r in rows] == ["bid"] * 50 + ["ask"] * 50
    for side in ("bids", "asks"):
        mine = [r for r in rows if r["side"] == side[:-1]]
        assert [(r["price"], r["size"]) for r in mine] == [tuple(lvl) for lvl in book[side]]
        assert [r["level"] for r in mine] == list(range(1, 51))
        cum = sum(Decimal(repr(s)) for _, s in book[side])
        notional = sum(Decimal(repr(p)) * Decimal(repr(s)) for p, s in book[side])
        assert mine[-1]["cum_size"] == pytest.approx(float(cum), rel=1e-12)
        assert mine[-1]["cum_notional"] == pytest.approx(float(notional), rel=1e-12)
    assert book_level_rows({"bids": [], "asks": None}) == []


def test_left_out_rows_name_every_venue_with_the_reason_in_words(api_server):
    cmp = _post(api_server, "/api/compare", {"symbol": "BTC", "side": "buy", "size": 5})
    rows = left_out_rows(cmp["unavailable"], cmp.get("excluded"))
    assert {r["venue"] for r in rows} == {u["venue"] for u in cmp["unavailable"]}
    by_venue = {r["venue"]: r for r in rows}
    for u in cmp["unavailable"]:
        assert by_venue[u["venue"]]["reason"] == u["reason"]
        assert by_venue[u["venue"]]["why"] in ("no such market", "other quote currency", "book not ready")
    assert by_venue["kraken"]["why"] == "other quote currency"  # the recording has BTC/CHF only
    # a routing exclusion dict, and a venue named twice keeps its first reason
    mixed = left_out_rows({"okx": "stale"}, [{"venue": "okx", "reason": "x", "kind": "no_symbol"}])
    assert mixed == [{"venue": "okx", "why": "excluded from routing", "reason": "stale"}]


def test_verdict_restates_yes_or_no_with_the_tools_figures(api_server):
    imp = _post(
        api_server, "/api/impact", {"venue": "binance", "symbol": "ETH/USDT", "side": "sell", "size": 10}
    )
    assert imp["fully_filled"] is True
    calls = [{"tool": "market_impact", "args": {}, "result": imp}]
    v = liquidity_verdict("Yes: the visible book can absorb it. Selling 10 ETH ...", calls)
    assert v is not None and v["yes"] is True
    assert v["reason"].startswith("The visible bid side of ETH/USDT on binance") and "10 ETH" in v["reason"]
    slip = re.search(r"([\d.]+) bps from the mid", v["reason"])
    assert slip and float(slip.group(1)) == pytest.approx(imp["slippage_bps"], abs=0.01)
    vwap = re.search(r"VWAP of ([\d,.]+) USDT", v["reason"])
    assert vwap and float(vwap.group(1).replace(",", "")) == pytest.approx(imp["vwap"], abs=0.01)
    # no verdict when the answer is not a yes/no, or when its word contradicts the book
    assert liquidity_verdict("Selling 10 ETH on binance would fill at ...", calls) is None
    assert liquidity_verdict("No: not enough", calls) is None
    # a side too thin for the order: "No" with what it fills
    book = httpx.get(
        f"{api_server.url}/api/orderbook/binance/ETH/USDT", params={"levels": 1}, timeout=120
    ).json()
    huge = book["bid_total_size"] * 2
    thin = _post(
        api_server, "/api/impact", {"venue": "binance", "symbol": "ETH/USDT", "side": "sell", "size": huge}
    )
    assert thin["fully_filled"] is False
    v = liquidity_verdict(
        "No: there is not enough visible liquidity", [{"tool": "market_impact", "result": thin}]
    )
    assert v is not None and v["yes"] is False and "fills only" in v["reason"]
