"""/api/chat with an unreachable LLM provider: with the offline fallback disabled, 503 with the
assistant's one-line message (model, base URL, what to do), never the key, in JSON and in
streaming mode; with it (the default), a 200 answer from the offline model that says so."""

from __future__ import annotations

import json
import socket

import pytest
from fastapi.testclient import TestClient
from pydantic_ai import models

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import AgentSettings, ApiSettings, Settings

KEY = "sk-test-DO-NOT-PRINT-654321"


@pytest.fixture(params=[False], ids=["no-fallback"])
def chat_client(request, data_dir, api_home, api_market, monkeypatch):
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)  # the provider is a dead loopback port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    settings = Settings(
        data_dir=data_dir,
        home_dir=api_home,
        venues=("binance",),
        api=ApiSettings(token=None, watch_symbols=("BTC/USDT",)),
        agent=AgentSettings(
            model="openai:gpt-4o", base_url=url, api_key=KEY, fallback_offline=request.param, retry_attempts=1
        ),
    )
    with TestClient(create_app(settings, market=api_market), raise_server_exceptions=False) as c:
        yield c, url


@pytest.mark.parametrize("stream", [False, True])
def test_chat_answers_503_naming_the_provider(chat_client, stream):
    c, url = chat_client
    r = c.post("/api/chat", json={"message": "How much slippage would a 5 BTC buy cause?", "stream": stream})
    assert r.status_code == 503, r.text
    detail = r.json()["detail"]
    assert detail.startswith("The LLM provider could not be reached")
    assert "'openai:gpt-4o'" in detail and url in detail and "MLM_AGENT__MODEL=offline" in detail
    assert KEY not in r.text


@pytest.mark.parametrize("chat_client", [True], ids=["fallback"], indirect=True)
@pytest.mark.parametrize("stream", [False, True])
def test_chat_falls_back_to_the_offline_model(chat_client, stream):
    c, url = chat_client
    r = c.post("/api/chat", json={"message": "How much slippage would a 5 BTC buy cause?", "stream": stream})
    assert r.status_code == 200, r.text
    assert KEY not in r.text
    answer = r.json()["answer"] if not stream else json.loads(r.text.rsplit("data: ", 1)[1])["answer"]
    assert answer.endswith(
        f"Note: the provider 'openai:gpt-4o' at {url} could not be reached (APIConnectionError); "
        "answered by the offline model."
    )
