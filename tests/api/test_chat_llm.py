"""``POST /api/chat`` on a real model: the API (uvicorn on a loopback socket) in front of the loopback
OpenAI-compatible server (``testing/llm_server.py``), on the recorded books.

Streaming is real (events leave the API while the provider is still writing), a limit is a 200
answer after which no request reaches the provider, a client that disconnects cancels the run, and
a failing provider is answered by the offline model with a note.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from pydantic_ai import models

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import AgentSettings, ApiSettings, Settings
from market_liquidity_monitor.testing.llm_server import LoopbackLLM, failing, looping, tool_then_answer

KEY = "sk-test-api-loopback-2b9d"
QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
IMPACT_ARGS = {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"}


class ThreadedApi:
    """uvicorn serving an app on a free loopback port, in a daemon thread."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadedApi:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture
def llm(monkeypatch):
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)  # the provider is 127.0.0.1
    with LoopbackLLM() as server:
        yield server


@pytest.fixture
def api_for(data_dir, api_home, api_market, llm) -> Iterator:
    """``api_for(**agent_settings)``: the API's URL, its assistant on the loopback model."""
    servers = []

    def start(**agent) -> str:
        settings = Settings(
            data_dir=data_dir,
            home_dir=api_home,
            venues=("binance",),
            api=ApiSettings(token=None, watch_symbols=("BTC/USDT",)),
            agent=AgentSettings(model="openai:loopback", base_url=llm.base_url, api_key=KEY, **agent),
        )
        srv = ThreadedApi(create_app(settings, market=api_market)).__enter__()
        servers.append(srv)
        return srv.url

    yield start
    for srv in servers:
        srv.__exit__(None, None, None)


def impact_answer(results) -> str:
    r = results[0]["json"]
    return f"On {r['venue']} {r['symbol']} (book {r['book_ts']}) a 5 BTC buy fills at VWAP {r['vwap']} USDT."


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict]]:
    """``(event, data)`` from ``text/event-stream`` lines (WHATWG server-sent events)."""
    event, data = None, []
    for line in lines:
        if line == "":
            if event is not None:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def test_stream_sends_the_first_chunk_before_the_run_ends(llm, api_for, capsys):
    # 3 s per model turn: a tool-call turn, then an answer streamed in 6 pieces over 3 s
    llm.model = tool_then_answer("market_impact", IMPACT_ARGS, impact_answer, turn_s=3.0, pieces=6)
    url = api_for()
    t0 = time.monotonic()
    times: dict[str, float] = {}
    events = []
    with httpx.stream("POST", f"{url}/api/chat", json={"message": QUESTION, "stream": True}, timeout=60) as r:
        times["headers"] = time.monotonic() - t0
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for event, data in sse_events(r.iter_lines()):
            times.setdefault(event, time.monotonic() - t0)
            events.append((event, data))
    times["end"] = time.monotonic() - t0
    with capsys.disabled():
        print(f"\n/api/chat stream, 3 s per turn: { ({k: round(v, 2) for k, v in times.items()}) }")
    kinds = [e for e, _ in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "done"
    assert kinds[2:-1] == ["chunk"] * 6, events
    done = events[-1][1]
    assert "".join(d["text"] for e, d in events if e == "chunk") == done["answer"]
    assert done["answer"] == impact_answer([{"json": done["tool_calls"][0]["result"]}])
    # the tool call went out after the first 3 s turn, the first piece 0.5 s into the second turn,
    # the run ended 2.5 s later: events leave as they happen, not all at the end
    assert times["headers"] < times["chunk"]
    assert 2.5 < times["tool_call"] < times["chunk"] < times["done"] - 2.0
    assert 5.5 < times["done"] < 15


def test_json_mode_is_unchanged(llm, api_for):
    llm.model = tool_then_answer("market_impact", IMPACT_ARGS, impact_answer)
    r = httpx.post(f"{api_for()}/api/chat", json={"message": QUESTION}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"answer", "tool_calls", "session_id", "grounding"}
    assert body["answer"] == impact_answer([{"json": body["tool_calls"][0]["result"]}])


@pytest.mark.parametrize("stream", [False, True])
def test_limit_is_a_200_answer_and_no_request_follows(llm, api_for, stream):
    llm.model = looping("market_impact", IMPACT_ARGS)
    url = api_for(max_tool_calls=2)
    r = httpx.post(f"{url}/api/chat", json={"message": QUESTION, "stream": stream}, timeout=60)
    t_answer = time.monotonic()
    assert r.status_code == 200, r.text
    if stream:
        events = list(sse_events(iter(r.text.splitlines())))
        assert events[-1][0] == "done"
        body = events[-1][1]
    else:
        body = r.json()
    assert "more than 2 tool calls" in body["answer"] and "MLM_AGENT__MAX_TOOL_CALLS" in body["answer"]
    assert len(llm.requests) == 3
    time.sleep(1.0)
    assert not llm.requests_after(t_answer)


def _assert_run_cancelled(llm: LoopbackLLM, t_close: float) -> None:
    # a looping model asks again every 0.5 s for up to 50 tool calls: if the run went on after the
    # client left, requests would keep coming
    time.sleep(2.5)
    late = llm.requests_after(t_close + 0.3)
    assert not late, f"{len(late)} request(s) reached the provider after the client disconnected"


def test_client_disconnect_cancels_a_streamed_run(llm, api_for):
    llm.model = looping("market_impact", IMPACT_ARGS, turn_s=0.5)
    url = api_for(max_tool_calls=50, max_requests=60)
    with httpx.stream("POST", f"{url}/api/chat", json={"message": QUESTION, "stream": True}, timeout=60) as r:
        for event, _ in sse_events(r.iter_lines()):
            if event == "tool_result":
                break
    t_close = time.monotonic()
    assert len(llm.requests) >= 1
    _assert_run_cancelled(llm, t_close)


def test_client_disconnect_cancels_a_json_run(llm, api_for):
    llm.model = looping("market_impact", IMPACT_ARGS, turn_s=0.5)
    url = api_for(max_tool_calls=50, max_requests=60)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/api/chat", json={"message": QUESTION}, timeout=httpx.Timeout(1.6, connect=5))
    t_close = time.monotonic()
    assert len(llm.requests) >= 2  # the run was going
    _assert_run_cancelled(llm, t_close)


def test_failing_provider_is_answered_offline_with_a_note(llm, api_for):
    llm.model = failing(500)
    r = httpx.post(f"{api_for(retry_attempts=2)}/api/chat", json={"message": QUESTION}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tool_calls"][0]["tool"] == "market_impact"
    assert body["answer"].endswith(
        f"Note: the provider 'openai:loopback' at {llm.base_url} answered HTTP 500 (2 attempts); "
        "answered by the offline model."
    )
    assert KEY not in r.text
