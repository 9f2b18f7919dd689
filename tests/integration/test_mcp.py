"""``mlm mcp`` driven by the MCP SDK's own client, over both transports, on the recorded data.

- stdio: ``python -m market_liquidity_monitor.cli mcp --data ../shared/data`` as a real subprocess;
- streamable HTTP: ``mlm mcp --http --port <free>`` with ``MLM_API__TOKEN``; no token -> HTTP 401.

Both list every tool of the assistant and answer the 5 BTC market buy on Binance with exactly the
numbers of ``mlm ask "How much slippage would a 5 BTC market buy cause on Binance?" --json`` (its
market_impact call, run as a third process), and those numbers equal an independent Decimal replay
and walk of the recorded Binance spot book (hftbacktest BTCUSDT: REST snapshot + diff-depth
updates, applied by Binance's documented rule: drop updates with ``u <= lastUpdateId``, then set
each level's quantity, 0 removes it).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.runtime.helpers import REPO, clean_env, free_port, mlm

DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
BTC_SPOT = [DATA_DIR / "hftbacktest" / "spot" / f"btcusdt_{d}.gz" for d in ("20240808", "20240809")]
QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
TOKEN = "mcp-test-token-7f3a"
ARGS = {"symbol": "BTC", "side": "buy", "size": 5.0, "venue": "binance"}  # what `mlm ask` calls (checked)
ASSISTANT_TOOLS = {
    "order_book",
    "market_impact",
    "liquidity_history",
    "max_size_within_slippage",
    "compare_venues",
    "route_order",
    "backtest_execution",
    "pairs_stats",
    "price_history",
    "venue_health",
    "create_alert",
    "list_alerts",
    "liquidity_alerts",
}

pytestmark = [
    pytest.mark.skipif(
        not all(p.is_file() for p in BTC_SPOT), reason=f"recorded data not found under {DATA_DIR}"
    ),
    pytest.mark.timeout(240),
]


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """Start ``mlm ask --json`` and the HTTP MCP server together (each replays recordings)."""
    home = tmp_path_factory.mktemp("mcp-home")
    port = free_port()
    err = home / "http.err"
    ask = subprocess.Popen(
        mlm("ask", QUESTION, "--data", str(DATA_DIR), "--json"),
        env=clean_env(home / "ask"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with err.open("w") as err_fh:
        http = subprocess.Popen(
            mlm("mcp", "--http", "--port", str(port), "--data", str(DATA_DIR)),
            env=clean_env(home / "http", MLM_API__TOKEN=TOKEN),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err_fh,
        )
    try:
        yield {"ask": ask, "http": http, "url": f"http://127.0.0.1:{port}/mcp", "err": err, "home": home}
    finally:
        for proc in (ask, http):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _ask_impact(processes) -> dict:
    """The market_impact call of ``mlm ask --json``: its arguments and typed result."""
    if "impact" not in processes:
        out, err = processes["ask"].communicate(timeout=180)
        assert processes["ask"].returncode == 0, err[-3000:]
        calls = [c for c in json.loads(out)["tool_calls"] if c["tool"] == "market_impact"]
        assert len(calls) == 1, out
        assert calls[0]["args"] == ARGS
        processes["impact"] = calls[0]
    return processes["impact"]


def _decimal_book() -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal], int]:
    """Bids, asks and the last applied update's event time (ms) of the recorded Binance spot book.

    Binance's rule ("How to manage a local order book correctly"): buffer the stream, take the REST
    snapshot, drop buffered updates with ``u <= lastUpdateId``, apply the rest in order; a quantity
    of 0 removes the level."""
    snapshot, updates = None, []
    for path in BTC_SPOT:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                msg = json.loads(line.partition(" ")[2])
                if "lastUpdateId" in msg:
                    snapshot = msg
                elif msg.get("stream", "").endswith("@depth@100ms"):
                    updates.append(msg["data"])
    assert snapshot is not None
    bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"] if Decimal(q)}
    asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"] if Decimal(q)}
    event_ms = None
    for upd in updates:
        if upd["u"] <= snapshot["lastUpdateId"]:
            continue
        for side, levels in ((bids, upd["b"]), (asks, upd["a"])):
            for p, q in levels:
                if Decimal(q):
                    side[Decimal(p)] = Decimal(q)
                else:
                    side.pop(Decimal(p), None)
        event_ms = upd["E"]
    assert max(bids) < min(asks), "the replayed book is crossed"
    return bids, asks, event_ms


def _decimal_buy(size: Decimal) -> dict:
    bids, asks, event_ms = _decimal_book()
    best_bid, best_ask = max(bids), min(asks)
    mid = (best_bid + best_ask) / 2
    left, paid, levels, worst = size, Decimal(0), 0, None
    for price in sorted(asks):
        take = min(left, asks[price])
        paid += take * price
        left -= take
        levels, worst = levels + 1, price
        if left == 0:
            break
    vwap = paid / size
    return {
        "event_ms": event_ms,
        "mid_price": mid,
        "best_price": best_ask,
        "worst_price": worst,
        "vwap": vwap,
        "filled_notional": paid,
        "slippage_bps": (vwap - mid) / mid * 10_000,
        "levels_consumed": levels,
    }


NUMBERS = (
    "vwap",
    "mid_price",
    "best_price",
    "worst_price",
    "filled_size",
    "filled_notional",
    "slippage_bps",
    "slippage_vs_best_bps",
    "levels_consumed",
    "levels_available",
    "fully_filled",
    "book_ts",
)


def _check_same_as_ask(result, ask_impact: dict) -> None:
    assert not result.is_error, result.content
    got = result.structured_content
    assert json.loads(result.content[0].text) == got  # the text block carries the same JSON
    want = ask_impact["result"]
    assert {k: got[k] for k in NUMBERS} == {k: want[k] for k in NUMBERS}
    assert got["book"]["source"] == want["book"]["source"] == "recording"


async def test_stdio_lists_tools_and_answers_like_ask(processes, tmp_path):
    """Runs while `mlm ask` and the HTTP server load (the ask's answer is read at the end)."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters
    from mcp.shared.exceptions import MCPError

    env = clean_env(tmp_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "market_liquidity_monitor.cli", "mcp", "--data", str(DATA_DIR)],
        env={k: env[k] for k in ("MLM_HOME_DIR", "PYTHONPATH", "PYTHONUNBUFFERED")},
        cwd=str(REPO),
    )
    async with Client(params, read_timeout_seconds=150) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("market_impact", ARGS)
        # Loose arguments are coerced as in chat; the answer is the same.
        loose = await client.call_tool("market_impact", {**ARGS, "size": "5"})
        # Bad arguments: the service's message as a tool error, every problem at once; the
        # session goes on.
        bad = await client.call_tool(
            "market_impact", {"symbol": "BTC", "side": "buy", "size": -1, "venue": "binanse"}
        )
        missing = await client.call_tool("market_impact", {"side": "buy", "size": 5})
        with pytest.raises(MCPError, match="unknown tool 'nope'; valid tools: order_book"):
            await client.call_tool("nope", {})
        again = await client.call_tool("market_impact", ARGS)

    assert {t.name for t in tools} == ASSISTANT_TOOLS
    assert all(t.description and t.input_schema["type"] == "object" for t in tools)
    assert [t.name for t in tools if not t.annotations.read_only_hint] == ["create_alert"]
    assert bad.is_error
    text = bad.content[0].text
    assert "size must be a finite number > 0, got -1.0" in text
    assert "Unknown venue 'binanse'" in text and "Valid venues: " in text and "binance" in text
    assert missing.is_error and "symbol" in missing.content[0].text
    impact = _ask_impact(processes)
    for r in (result, loose, again):
        _check_same_as_ask(r, impact)


def test_decimal_walk_matches_ask(processes):
    ref = _decimal_buy(Decimal(5))
    got = _ask_impact(processes)["result"]
    assert got["levels_consumed"] == ref["levels_consumed"]
    for k in ("mid_price", "best_price", "worst_price", "vwap", "filled_notional"):
        assert Decimal(repr(got[k])) == pytest.approx(ref[k], rel=Decimal("1e-12")), k
    # vwap - mid in binary floats: ~1e-11 bps of cancellation error
    assert Decimal(repr(got["slippage_bps"])) == pytest.approx(ref["slippage_bps"], abs=Decimal("1e-9"))
    assert got["book"]["book_ts_ns"] == ref["event_ms"] * 1_000_000


def _wait_listening(url: str, proc: subprocess.Popen, err: Path, timeout_s: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlm mcp --http exited with {proc.returncode}:\n{err.read_text()[-3000:]}")
        try:
            return httpx.post(url, json={}, timeout=5)
        except httpx.HTTPError:
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout_s} s:\n{err.read_text()[-3000:]}")


async def test_http_needs_token_and_answers_like_ask(processes):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    url = processes["url"]
    first = _wait_listening(url, processes["http"], processes["err"])
    assert first.status_code == 401
    assert first.headers["www-authenticate"] == "Bearer"
    assert "missing API token" in first.json()["detail"]
    wrong = httpx.post(url, json={}, headers={"Authorization": "Bearer not-the-token"}, timeout=5)
    assert wrong.status_code == 401 and "invalid API token" in wrong.json()["detail"]
    assert TOKEN not in wrong.text

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=150) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=150) as client,
    ):
        tools = (await client.list_tools()).tools
        assert {t.name for t in tools} == ASSISTANT_TOOLS
        result = await client.call_tool("market_impact", ARGS)
    _check_same_as_ask(result, _ask_impact(processes))


def test_http_without_configured_token_refuses_to_start(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from market_liquidity_monitor.cli import app

    for k in list(os.environ):
        if k.startswith("MLM_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("MLM_HOME_DIR", str(tmp_path))
    res = CliRunner().invoke(app, ["mcp", "--http", "--port", str(free_port())])
    assert res.exit_code == 2, res.output
    assert "--http needs an API token: set MLM_API__TOKEN" in res.output
