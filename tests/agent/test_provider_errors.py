"""An unreachable or refusing LLM provider: one clear line and exit code 2 from ``mlm ask`` /
``mlm eval`` (no traceback, no key), ``ModelProviderError`` from ``Assistant.ask``, when the
offline model may not answer instead (``MLM_AGENT__FALLBACK_OFFLINE=false``, or a 4xx refusal);
with the fallback on (the default), an unreachable provider is answered offline and the answer
says so.

The provider is a loopback port where nothing listens, or a local HTTP server answering 401 with
the key echoed in its body: no request leaves the machine.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pydantic_ai import models
from typer.testing import CliRunner

from market_liquidity_monitor.agent.assistant import ModelProviderError
from market_liquidity_monitor.cli import app
from market_liquidity_monitor.config import AgentSettings, Settings
from tests.support import assistant_for

KEY = "sk-test-DO-NOT-PRINT-123456"
QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"


@pytest.fixture
def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def allow_loopback_model_requests(monkeypatch):
    # conftest blocks model requests; these go to a local port only
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)


@pytest.fixture
def refusing_url():
    """A local server answering every request 401 with the key in the body (as some providers do)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode()
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://user:{KEY}@127.0.0.1:{server.server_port}/v1?key={KEY}"
    finally:
        server.shutdown()
        server.server_close()


def _env(monkeypatch, base_url: str, fallback: bool = False) -> None:
    monkeypatch.setenv("MLM_AGENT__MODEL", "openai:gpt-4o")
    monkeypatch.setenv("MLM_AGENT__BASE_URL", base_url)
    monkeypatch.setenv("MLM_AGENT__API_KEY", KEY)
    monkeypatch.setenv("MLM_AGENT__FALLBACK_OFFLINE", "true" if fallback else "false")
    monkeypatch.setenv("MLM_AGENT__RETRY_ATTEMPTS", "1")


@pytest.mark.usefixtures("allow_loopback_model_requests")
def test_mlm_ask_unreachable_provider_falls_back_to_offline_and_says_so(monkeypatch, dead_url, data_dir):
    _env(monkeypatch, dead_url, fallback=True)
    res = CliRunner().invoke(app, ["ask", QUESTION, "--data", str(data_dir), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["tool_calls"][0]["tool"] == "market_impact"
    assert out["answer"].endswith(
        f"Note: the provider 'openai:gpt-4o' at {dead_url} could not be reached (APIConnectionError); "
        "answered by the offline model."
    )
    assert KEY not in res.output


@pytest.mark.usefixtures("allow_loopback_model_requests")
def test_mlm_ask_unreachable_provider_is_one_line_and_exit_2(monkeypatch, dead_url, data_dir):
    _env(monkeypatch, dead_url)
    res = CliRunner().invoke(app, ["ask", QUESTION, "--data", str(data_dir)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    (line,) = lines
    assert line.startswith("error: The LLM provider could not be reached")
    assert "'openai:gpt-4o'" in line and dead_url in line
    assert "MLM_AGENT__BASE_URL" in line and "MLM_AGENT__MODEL=offline" in line
    assert KEY not in res.output and "Traceback" not in res.output


@pytest.mark.usefixtures("allow_loopback_model_requests")
def test_mlm_eval_unreachable_provider_is_one_line_and_exit_2(monkeypatch, dead_url, data_dir, tmp_path):
    _env(monkeypatch, dead_url)
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"query": QUESTION, "capability": "market_impact", "args": {}}) + "\n")
    res = CliRunner().invoke(app, ["eval", str(f), "--data", str(data_dir)])
    assert res.exit_code == 2, res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.strip()]
    assert "could not be reached" in line and dead_url in line and KEY not in res.output


@pytest.mark.usefixtures("allow_loopback_model_requests")
async def test_refusing_provider_names_the_status_never_the_key(refusing_url, recorded_market):
    settings = Settings(agent=AgentSettings(model="openai:gpt-4o", base_url=refusing_url, api_key=KEY))
    with pytest.raises(ModelProviderError) as info:
        await assistant_for(settings, recorded_market).ask(QUESTION)
    msg = str(info.value)
    assert "answered HTTP 401" in msg and "MLM_AGENT__API_KEY" in msg and "MLM_AGENT__MODEL=offline" in msg
    # the URL without user:password and query string, both of which carry the key here
    assert (
        info.value.base_url == refusing_url.split("//")[0] + "//" + refusing_url.split("@")[1].split("?")[0]
    )
    assert info.value.base_url in msg
    assert KEY not in msg and KEY not in repr(info.value)


def test_offline_model_is_unaffected(recorded_market):
    # the default model never reaches a provider: the same question is answered with its tool call
    import asyncio

    r = asyncio.run(assistant_for(Settings(), recorded_market).ask(QUESTION))
    assert r.tool_calls[0]["tool"] == "market_impact"
