"""Observability: nothing is sent without a token, spans are made in-process, logs name the
instrument, and configured secrets never reach a log line."""

from __future__ import annotations

import asyncio
import io
import logging

import logfire
import pytest
import requests
from fastapi.testclient import TestClient
from logfire.testing import SimpleSpanProcessor, TestExporter
from pydantic_ai import models

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.observability import (
    RedactSecretsFilter,
    configure_logging,
    configure_observability,
    instrument_logger,
    log_context,
    logfire_options,
    secret_values,
)
from tests.support import assistant_for

models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture
def exporter():
    exp = TestExporter()
    yield exp
    # Leave logfire configured, but without this test's exporter.
    logfire.configure(send_to_logfire=False, console=False, metrics=False)


@pytest.fixture
def no_http_out(monkeypatch):
    """Every HTTP request made through ``requests`` (Logfire's OTLP exporter) is recorded and refused."""
    calls: list[str] = []

    def refuse(self, request, *args, **kwargs):
        calls.append(request.url)
        raise requests.ConnectionError(f"test: no network ({request.url})")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)
    return calls


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_options_send_only_with_a_token():
    assert logfire_options(Settings())["send_to_logfire"] == "if-token-present"
    assert logfire_options(Settings())["token"] is None
    assert logfire_options(Settings())["console"] is False
    s = Settings(observability={"logfire_token": "pylf_v1_test_token"})
    assert logfire_options(s)["token"] == "pylf_v1_test_token"
    assert "pylf_v1_test_token" not in repr(s) and "pylf_v1_test_token" not in s.model_dump_json()


def test_without_token_spans_stay_in_process_and_nothing_is_sent(exporter, no_http_out, monkeypatch):
    monkeypatch.delenv("LOGFIRE_TOKEN", raising=False)
    settings = Settings(venues=(), api={"watch_symbols": ()})
    app = create_app(settings)
    report = configure_observability(
        settings, app, additional_span_processors=[SimpleSpanProcessor(exporter)]
    )
    assert report["send_to_logfire"] is False and report["fastapi"] in (True, "native", "middleware")
    assert app.state.observability is report
    cfg = logfire.DEFAULT_LOGFIRE_INSTANCE.config
    assert cfg.send_to_logfire == "if-token-present" and not cfg.token

    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 200
    logfire.force_flush()

    spans = exporter.exported_spans_as_dict()
    routes = {s["attributes"].get("http.route") for s in spans}
    assert "/api/health" in routes, [s["name"] for s in spans]
    assert no_http_out == []  # no exporter tried to reach Logfire (or anything else)


_NO_SINK_PROBE = """
import json, os, sys
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings

settings = Settings(venues=(), api={"watch_symbols": ()}, **json.loads(sys.argv[1]))
app = create_app(settings)
with TestClient(app) as client:
    assert client.get("/api/health").status_code == 200
provider = trace.get_tracer_provider()
span = provider.get_tracer("probe").start_span("probe")
print(json.dumps({
    "report": app.state.observability,
    "sdk_provider": isinstance(getattr(provider, "_tracer_provider", provider), SdkTracerProvider)
        or type(provider).__module__.startswith(("logfire", "opentelemetry.sdk")),
    "recording": span.is_recording(),
}))
"""


def _fresh_process_observability(overrides: dict, **env: str) -> dict:
    """create_app + one request in a fresh interpreter (no tracer provider configured by other
    tests): the observability report, whether an SDK tracer provider was installed, and whether
    a span started afterwards records."""
    import json
    import os
    import subprocess
    import sys

    child_env = {
        k: v for k, v in os.environ.items() if k not in ("LOGFIRE_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT")
    }
    child_env.update(env)
    p = subprocess.run(
        [sys.executable, "-c", _NO_SINK_PROBE, json.dumps(overrides)],
        capture_output=True, text=True, timeout=120, env=child_env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_no_spans_are_made_when_they_would_go_nowhere():
    """Default settings (no token, no console, no OTLP endpoint): nothing is configured or
    instrumented, spans do not record (they cost ~0.3 ms of CPU per request for nobody); the
    report says why. ``observability.tracing=true`` makes them anyway."""
    off = _fresh_process_observability({})
    assert off["report"]["tracing"] is False and "would be dropped" in off["report"]["tracing_reason"]
    assert off["sdk_provider"] is False and off["recording"] is False
    on = _fresh_process_observability({"observability": {"tracing": True}})
    assert on["report"]["tracing"] is True and on["report"]["fastapi"] in (True, "native", "middleware")
    assert on["sdk_provider"] is True and on["recording"] is True


def test_tracing_is_on_whenever_spans_have_a_sink(monkeypatch):
    from market_liquidity_monitor.observability import tracing_wanted

    for var in ("LOGFIRE_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert tracing_wanted(Settings())[0] is False
    assert tracing_wanted(Settings(), span_processors=True) == (True, "span processors given")
    assert tracing_wanted(Settings(observability={"logfire_token": "pylf_v1_x"}))[0] is True
    assert tracing_wanted(Settings(observability={"logfire_console": True}))[0] is True
    assert tracing_wanted(Settings(observability={"tracing": False, "logfire_console": True}))[0] is False
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing_wanted(Settings()) == (True, "OTEL_EXPORTER_OTLP_ENDPOINT set")


def test_agent_runs_and_tool_calls_make_spans(exporter, no_http_out, data_dir):
    settings = Settings()
    report = configure_observability(settings, additional_span_processors=[SimpleSpanProcessor(exporter)])
    assert report["pydantic_ai"] is True
    assistant = assistant_for(settings, MarketData.from_recordings(settings, data_dir))
    res = asyncio.run(assistant.ask("How much slippage would a 5 BTC market buy cause on Binance?"))
    assert res.tool_calls and res.tool_calls[0]["tool"] == "market_impact"
    logfire.force_flush()

    spans = exporter.exported_spans_as_dict()
    tool_spans = [s for s in spans if s["attributes"].get("gen_ai.tool.name") == "market_impact"]
    assert tool_spans, [s["name"] for s in spans]
    assert any("agent" in s["name"] for s in spans), [s["name"] for s in spans]
    assert no_http_out == []


def test_log_lines_name_venue_and_symbol(root_logging):
    stream = io.StringIO()
    configure_logging(Settings(log_level="DEBUG"), stream=stream)
    log = logging.getLogger("market_liquidity_monitor.test")

    log.warning("book discarded: %s gap", InstrumentId("binance", "BTC/USDT"))
    instrument_logger(log, "okx", "ETH/USDT").info("snapshot late")
    with log_context(venue="kraken", symbol="XBT/USD"):
        log.debug("resync")
    log.info("no instrument here")

    lines = stream.getvalue().splitlines()
    assert "[binance BTC/USDT]: book discarded" in lines[0]
    assert "[okx ETH/USDT]: snapshot late" in lines[1]
    assert "[kraken XBT/USD]: resync" in lines[2]
    assert "market_liquidity_monitor.test: no instrument here" in lines[3]


def test_configured_secrets_are_redacted_from_log_lines(root_logging):
    key, pw = "sk-test-PLANTED-redact-0123456789", "PLANTEDpw42"
    settings = Settings(
        agent={"api_key": key},
        database_url=f"postgresql+asyncpg://mlm:{pw}@db:5432/mlm",
    )
    assert set(secret_values(settings)) >= {key, pw}
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    log = logging.getLogger("market_liquidity_monitor.test")
    log.error("provider said: bad key %s", key)
    try:
        raise RuntimeError(f"cannot connect to postgresql+asyncpg://mlm:{pw}@db:5432/mlm")
    except RuntimeError:
        log.exception("database down")
    text = stream.getvalue()
    assert key not in text and pw not in text
    assert "bad key ***" in text and "mlm:***@db" in text and "RuntimeError" in text


def test_redaction_filter_leaves_other_records_alone():
    f = RedactSecretsFilter(["s3cr3t-value"])
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "mid %s at %s", (1.5, "binance"), None)
    assert f.filter(rec) and rec.getMessage() == "mid 1.5 at binance"


def test_up_logs_warnings_only_unless_verbose_or_a_level_is_set(root_logging, monkeypatch):
    """``mlm up``: by default the handler passes warnings and errors only - also from loggers whose
    level a library set itself (uvicorn sets ``uvicorn.error`` to INFO) - so the banner is not
    buried; ``--verbose`` or an explicit ``MLM_LOG_LEVEL`` keep the configured level."""
    from market_liquidity_monitor.runtime import up_log_level

    monkeypatch.delenv("MLM_LOG_LEVEL", raising=False)
    quiet = up_log_level(Settings(), verbose=False)
    assert quiet.log_level == "WARNING"
    assert up_log_level(Settings(), verbose=True).log_level == "INFO"
    monkeypatch.setenv("MLM_LOG_LEVEL", "DEBUG")
    assert up_log_level(Settings(), verbose=False).log_level == "DEBUG"

    stream = io.StringIO()
    configure_logging(quiet, stream=stream)
    uv = logging.getLogger("uvicorn.error")
    old = uv.level
    uv.setLevel(logging.INFO)  # as uvicorn.Config does with log_level="info"
    try:
        uv.info("Started server process [1]")
        logging.getLogger("alembic.runtime.plugins").info("setup plugin alembic.autogenerate.schemas")
        md = logging.getLogger("market_liquidity_monitor.market_data")
        md.info("replaying recording cryptofeed/BINANCE (2 files)")
        md.warning("checkpoint x is corrupt")
    finally:
        uv.setLevel(old)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "WARNING" in lines[0] and "checkpoint x is corrupt" in lines[0], lines
