"""The frontend's streaming chat client (``ApiClient.chat_stream``) against the real API: events in
order with the offline model, events as they happen with a slow provider (the loopback
OpenAI-compatible server), and the failure states."""

from __future__ import annotations

import time

import pytest
from mlm_ui.client import ApiClient, parse_sse
from pydantic_ai import models

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import AgentSettings, ApiSettings, Settings
from market_liquidity_monitor.testing.llm_server import LoopbackLLM, tool_then_answer

from .conftest import ApiServer

QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"


def test_parse_sse_follows_the_event_stream_format():
    lines = [
        "event: chunk",
        'data: {"text": "a"}',
        "",
        ": a comment",
        "data: x",
        "data: y",
        "",
        "event: done",
    ]
    assert list(parse_sse(iter(lines))) == [("chunk", '{"text": "a"}'), ("message", "x\ny")]


def test_chat_stream_with_the_offline_model(api_url):
    events = list(ApiClient(api_url).chat_stream(QUESTION))
    kinds = [e.event for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "done", kinds
    assert set(kinds[2:-1]) == {"chunk"}
    assert events[0].data["name"] == "market_impact"
    done = events[-1].data
    assert "".join(e.data["text"] for e in events if e.event == "chunk") == done["answer"]
    assert done["tool_calls"][0]["tool"] == "market_impact" and done["session_id"]


def test_chat_stream_yields_events_while_the_provider_writes(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)  # the provider is 127.0.0.1

    def answer(results):
        r = results[0]["json"]
        return f"{r['venue']} {r['symbol']} book {r['book_ts']}: VWAP {r['vwap']} for a 5 BTC buy."

    with LoopbackLLM(tool_then_answer("market_impact", {"symbol": "BTC", "side": "buy", "size": 5}, answer,
                                      turn_s=1.5, pieces=5)) as llm:  # fmt: skip
        settings = Settings(
            data_dir=data_dir,
            home_dir=tmp_path,
            venues=("binance",),
            api=ApiSettings(token=None, watch_symbols=("BTC/USDT",)),
            agent=AgentSettings(model="openai:loopback", base_url=llm.base_url, api_key="k"),
        )
        server = ApiServer(create_app(settings))
        server.start()
        try:
            t0 = time.monotonic()
            seen = [(time.monotonic() - t0, e) for e in ApiClient(server.url).chat_stream(QUESTION)]
        finally:
            server.stop()
    chunks = [t for t, e in seen if e.event == "chunk"]
    done_t = next(t for t, e in seen if e.event == "done")
    assert len(chunks) == 5
    assert done_t - chunks[0] > 0.8  # five pieces 0.3 s apart reached the client one by one


def test_chat_stream_failures(dead_api_url):
    (ev,) = list(ApiClient(dead_api_url).chat_stream(QUESTION))
    assert ev.event == "failure" and ev.response.kind == "unreachable" and dead_api_url in ev.response.url


@pytest.mark.parametrize("message", ["", "x" * 5000])
def test_chat_stream_bad_request_is_an_http_error(api_url, message):
    (ev,) = list(ApiClient(api_url).chat_stream(message))
    assert ev.event == "failure" and ev.response.kind == "http_error" and ev.response.status == 422
