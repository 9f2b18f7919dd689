"""Token authentication and CORS; secrets never appear in responses."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from tests.api.conftest import LIVE_VENUES, open_client, settings_for

TOKEN = "s3cret-token-for-tests-0123456789"
LLM_KEY = "sk-test-llm-key-must-not-leak"


@pytest.fixture(scope="module")
def secured(data_dir, api_home, api_market):
    s = settings_for(
        data_dir,
        api_home,
        venues=LIVE_VENUES,
        api={"token": TOKEN, "cors_origins": ("http://localhost:8501",)},
        agent={"api_key": LLM_KEY},
    )
    c = open_client(s, api_market)
    yield c
    c.__exit__(None, None, None)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("get", "/api/health", {}),
        ("get", "/api/status", {}),
        ("get", "/api/orderbook/binance/BTC/USDT", {}),
        ("post", "/api/compare", {"json": {"symbol": "BTC", "side": "buy", "size": 1}}),
        ("post", "/api/execute", {"json": {"symbol": "BTC", "side": "buy", "size": 1}}),
        ("get", "/api/history/candles", {"params": {"symbol": "BTC"}}),
        ("get", "/api/alerts", {}),
    ],
)
def test_every_endpoint_needs_the_token(secured, method, path, kw):
    r = getattr(secured, method)(path, **kw)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in r.json()["detail"] and TOKEN not in r.text
    r = getattr(secured, method)(path, headers={"Authorization": "Bearer wrong"}, **kw)
    assert r.status_code == 401 and "invalid" in r.json()["detail"]
    r = getattr(secured, method)(path, headers=AUTH, **kw)
    assert r.status_code in (200, 201), r.text
    assert TOKEN not in r.text and LLM_KEY not in r.text


def test_docs_stay_public(secured):
    assert secured.get("/openapi.json").status_code == 200


def test_websocket_needs_the_token(secured):
    for url in ("/ws/stream?symbol=BTC", "/ws/stream?symbol=BTC&token=wrong"):
        with pytest.raises(WebSocketDenialResponse) as exc, secured.websocket_connect(url):
            pass
        assert exc.value.status_code == 401 and TOKEN not in exc.value.text
    with secured.websocket_connect(f"/ws/stream?symbol=BTC&token={TOKEN}") as ws:
        assert ws.receive_json()["type"] == "hello"
    with secured.websocket_connect("/ws/stream?symbol=BTC", headers=AUTH) as ws:
        assert ws.receive_json()["type"] == "hello"


def test_cors_allows_only_the_configured_origin(secured):
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = secured.options("/api/compare", headers={"Origin": "http://localhost:8501", **pre})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://localhost:8501"
    bad = secured.options("/api/compare", headers={"Origin": "http://evil.example", **pre})
    assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers
    r = secured.get("/api/health", headers={"Origin": "http://localhost:8501", **AUTH})
    assert r.headers["access-control-allow-origin"] == "http://localhost:8501"


def test_no_token_configured_means_open(live_client):
    assert live_client.get("/api/health").status_code == 200
    assert isinstance(live_client, TestClient)
