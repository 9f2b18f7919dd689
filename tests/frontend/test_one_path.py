"""One path per question: the assistant (in-process, as ``mlm ask`` runs it, and behind
``POST /api/chat``), the REST API and the app's API client give the same numbers, venues, fees and
fee sources for the same five questions (impact, compare, route, backtest, pairs).

Each interface reaches the data through its own ``Services`` container (the API server's, and a
second one built here as ``mlm ask`` builds it), so agreement also shows the answers do not depend
on which process computed them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from mlm_ui.client import ApiClient

from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.services import Services

# question, tool, tool args the offline model must call, REST method + path, REST body/params,
# app-client call
CASES = [
    (
        "How much slippage would a 5 BTC market buy cause on Binance?",
        "market_impact",
        {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"},
        ("POST", "/api/impact", {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"}),
        lambda api: api.impact({"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"}),
    ),
    (
        "Which venue is best to sell 200 ETH?",
        "compare_venues",
        {"symbol": "ETH", "side": "sell", "size": 200},
        ("POST", "/api/compare", {"symbol": "ETH", "side": "sell", "size": 200}),
        lambda api: api.compare({"symbol": "ETH", "side": "sell", "size": 200}),
    ),
    (
        "Route a 25 BTC buy across venues",
        "route_order",
        {"symbol": "BTC", "side": "buy", "size": 25},
        ("POST", "/api/execute", {"symbol": "BTC", "side": "buy", "size": 25}),
        lambda api: api.execute({"symbol": "BTC", "side": "buy", "size": 25}),
    ),
    (
        "Backtest buying 10 BTC over the last 3 days on 1h candles",
        "backtest_execution",
        {"symbol": "BTC", "side": "buy", "size": 10, "lookback_days": 3, "timeframe": "1h"},
        (
            "POST",
            "/api/backtest",
            {"symbol": "BTC", "side": "buy", "size": 10, "lookback_days": 3, "timeframe": "1h"},
        ),
        lambda api: api.backtest(
            {"symbol": "BTC", "side": "buy", "size": 10, "lookback_days": 3, "timeframe": "1h"}
        ),
    ),
    (
        "What's the hedge ratio between ETH and BTC?",
        "pairs_stats",
        {"symbol_a": "ETH", "symbol_b": "BTC"},
        ("GET", "/api/pairs", {"symbol_a": "ETH", "symbol_b": "BTC"}),
        lambda api: api.pairs(symbol_a="ETH", symbol_b="BTC"),
    ),
]

# Presentation-only fields an interface adds: the per-interval series a chart needs (REST asks for
# it, the assistant does not) and the system status /api/execute reports beside its plan.
_PRESENTATION = {"series", "series_bucket_intervals", "status"}


def _strip(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in _PRESENTATION}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _fees(answer: dict) -> dict:
    """``{venue: (fee_bps, source)}`` wherever the answer reports fees."""
    if "fees" in answer:
        return {v: (f["fee_bps"], f["source"]) for v, f in answer["fees"].items()}
    if "trade_cost_fee_sources" in answer:
        legs = answer["trade_cost"]["legs"]
        return {
            "legs": sorted((leg["leg"], leg["fee_bps"]) for leg in legs),
            **answer["trade_cost_fee_sources"],
        }
    return {}


@pytest.fixture(scope="module")
def in_process(data_dir, tmp_path_factory) -> list[dict]:
    """The five questions asked of an assistant built as ``mlm ask`` builds it."""
    settings = Settings(data_dir=data_dir, home_dir=tmp_path_factory.mktemp("mlm-one-path"))
    services = Services.build(settings, persist_alerts=False)
    assistant = Assistant(settings, services)

    async def run() -> list[dict]:
        try:
            # Book ages on recorded data are measured against the end of what has been replayed of a
            # recording session so far: load everything first, as the API server does below.
            await services.books.load_all()
            return [(await assistant.ask(q)).as_dict() for q, *_ in CASES]
        finally:
            await services.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def loaded_server(api_server):
    """The API server with every recording replayed (a health question loads them all)."""
    with httpx.Client(base_url=api_server.url, timeout=300) as http:
        r = http.post("/api/chat", json={"message": "Are any venue feeds stale or disconnected?"})
        assert r.status_code == 200, r.text
    return api_server


@pytest.mark.parametrize("n", range(len(CASES)), ids=[c[1] for c in CASES])
def test_assistant_rest_and_app_client_agree(n, in_process, loaded_server) -> None:
    api_server = loaded_server
    question, tool, args, (method, path, payload), app_call = CASES[n]
    asked = in_process[n]
    calls = [c for c in asked["tool_calls"] if c["tool"] == tool]
    assert calls and calls[0]["args"] == args, asked["tool_calls"]
    from_chat = calls[0]["result"]

    with httpx.Client(base_url=api_server.url, timeout=120) as http:
        r = http.request(method, path, **({"json": payload} if method == "POST" else {"params": payload}))
        assert r.status_code == 200, r.text
        from_rest = r.json()
        chat = http.post("/api/chat", json={"message": question})
        assert chat.status_code == 200, chat.text
    (api_call,) = [c for c in chat.json()["tool_calls"] if c["tool"] == tool]
    app = app_call(ApiClient(api_server.url))
    assert app.ok, app.detail
    from_app = app.data

    want = _strip(from_rest)
    assert _strip(from_chat) == want, f"{tool}: the assistant and REST disagree"
    assert _strip(api_call["result"]) == want, f"{tool}: /api/chat and REST disagree"
    assert _strip(from_app) == want, f"{tool}: the app's client and REST disagree"
    fees = _fees(from_rest)
    if tool in ("compare_venues", "route_order", "pairs_stats"):
        assert fees and all(fees.values())
    assert _fees(from_chat) == fees == _fees(from_app)
