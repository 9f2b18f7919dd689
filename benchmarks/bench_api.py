"""API load benchmark: a real uvicorn on loopback on the recorded data, fixed request mixes at
fixed concurrencies, against a ceiling endpoint served by the same process in the same run.

The server runs as a child process (``--serve``): the app of ``create_app`` on ``../shared/data``
plus two benchmark-only routes, ``GET /bench/ceiling`` (a minimal FastAPI endpoint returning a
cached constant JSON payload of the size of an orderbook answer: the ceiling of this
server/machine) and ``GET /bench/lag`` (the longest event-loop stall seen by a probe task inside
the server: a loop of ``asyncio.sleep(0.010)`` whose overshoot is the stall; reset on read).

The client (this process: ``c`` keep-alive HTTP/1.1 connections over loopback, requests written
as prebuilt bytes and answers read by their framing, on uvloop when installed, so that it costs
the server's shared CPU as little as a load generator such as wrk would) sends ``--count`` requests per
cell for each mix and concurrency 1, 16 and 64, after a warm-up, and reports req/s, p50 and p99
latency (ms) per cell, the ratio of req/s to the ceiling at the same concurrency, and the longest
stall seen during the cell. Targets (ratios to the ceiling of the same run): orderbook and impact
>= 0.5, compare >= 0.3, chat >= 0.15; p99 at c=16 <= 50 ms for orderbook/impact and <= 300 ms
for chat; no stall > 100 ms. The ``agent_floor`` mix (``POST /bench/agent-floor``, no target) is a
bare pydantic-ai agent with one tool call and a fixed answer: the most any chat through
pydantic-ai could reach in the same run. Usage::

    python benchmarks/bench_api.py [--data ../shared/data] [--count 400] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 16, 64)
QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
MIXES = {
    "ceiling": ("GET", "/bench/ceiling", None),
    "orderbook": ("GET", "/api/orderbook/binance/BTC/USDT?levels=20", None),
    "impact": ("POST", "/api/impact", {"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "size": 5}),
    "compare": ("POST", "/api/compare", {"symbol": "BTC/USDT", "side": "buy", "size": 5}),
    "chat": ("POST", "/api/chat", {"message": QUESTION}),
    # No target: the floor of any chat answered through pydantic-ai (``_agent_floor``).
    "agent_floor": ("POST", "/bench/agent-floor", {"message": QUESTION}),
}
TARGET_RATIO = {"orderbook": 0.5, "impact": 0.5, "compare": 0.3, "chat": 0.15}
TARGET_P99_C16_MS = {"orderbook": 50.0, "impact": 50.0, "chat": 300.0}
TARGET_STALL_MS = 100.0


# ------------------------------------------------------------------------------ server side


def _agent_floor():
    """A bare pydantic-ai agent: a ``FunctionModel`` that calls one tool (returning a small dict)
    and then answers with a fixed sentence; no parser, no grounding, no services, one tool instead
    of the assistant's fourteen. Its req/s is an upper bound of any chat that goes through
    pydantic-ai on this machine, measured in the same run as the ceiling."""
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import FunctionModel

    def model(messages, info):
        if any(isinstance(p, ToolReturnPart) for p in messages[-1].parts):
            return ModelResponse(parts=[TextPart("Buying 5 BTC costs 0.25 bps.")])
        return ModelResponse(parts=[ToolCallPart("impact", {"symbol": "BTC/USDT", "size": 5.0})])

    agent = Agent(FunctionModel(model))

    @agent.tool_plain
    def impact(symbol: str, size: float) -> dict:
        """Slippage of a market buy."""
        return {"symbol": symbol, "size": size, "slippage_bps": 0.25}

    return agent


def serve(data: Path, port: int, home: Path) -> None:
    import uvicorn
    from fastapi.responses import Response

    from market_liquidity_monitor.api.app import create_app
    from market_liquidity_monitor.config import Settings

    settings = Settings(data_dir=data, home_dir=home, log_level="WARNING")
    app = create_app(settings)
    payload = json.dumps(
        {
            "bids": [[61837.63 + i, 0.123 + i] for i in range(20)],
            "asks": [[61838.63 + i, 0.321] for i in range(20)],
        }
    ).encode()
    probe = {"max_ms": 0.0, "task": None, "gc_ms": 0.0, "gc_gen2": 0}
    gc_t0 = [0.0]

    def gc_watch(phase: str, info: dict) -> None:  # the longest collector pause, per generation 2 run
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        elif info.get("generation") == 2:
            probe["gc_gen2"] += 1
            probe["gc_ms"] = max(probe["gc_ms"], (time.perf_counter() - gc_t0[0]) * 1000)
        else:
            probe["gc_ms"] = max(probe["gc_ms"], (time.perf_counter() - gc_t0[0]) * 1000)

    gc.callbacks.append(gc_watch)

    async def lag_probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.010)
            probe["max_ms"] = max(probe["max_ms"], (loop.time() - t0 - 0.010) * 1000)

    @app.get("/bench/ceiling", include_in_schema=False)
    async def ceiling() -> Response:
        return Response(payload, media_type="application/json")

    floor_agent = _agent_floor()

    @app.post("/bench/agent-floor", include_in_schema=False)
    async def agent_floor(body: dict) -> dict:
        result = await floor_agent.run(str(body.get("message", "")))
        return {"answer": result.output}

    @app.get("/bench/lag", include_in_schema=False)
    async def lag() -> dict:
        if probe["task"] is None:
            probe["task"] = asyncio.create_task(lag_probe())
        out = {
            "max_stall_ms": round(probe["max_ms"], 2),
            "max_gc_pause_ms": round(probe["gc_ms"], 2),
            "gc_gen2_runs": probe["gc_gen2"],
        }
        probe["max_ms"] = probe["gc_ms"] = 0.0
        probe["gc_gen2"] = 0
        return out

    @app.get("/bench/ready", include_in_schema=False)
    def ready() -> dict:
        return {"ready": app.state.readiness.wait(0)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ------------------------------------------------------------------------------ client side


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Conn:
    """One keep-alive HTTP/1.1 connection speaking the protocol directly: the request bytes are
    built once per cell and the response read by its ``Content-Length`` (or chunked framing).
    A load generator has to cost far less CPU per request than the server it measures, on a
    machine whose 2 cores the two share; httpx costs ~1-2 ms of CPU per request here, which made
    the client, not the server, the bottleneck of every cell (ceiling c=16: 192 req/s)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
        if b"content-length" in headers:
            body = await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:  # pragma: no cover - the server always frames its answers
            raise RuntimeError(f"unframed response: {head!r}")
        return status, body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def _raw_request(host: str, port: int, method: str, path: str, body: dict | None) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request (JSON body when ``body`` is given)."""
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return head.encode() + b"\r\n" + data


async def _cell(host: str, port: int, mix: str, c: int, count: int) -> dict:
    method, path, body = MIXES[mix]
    raw = _raw_request(host, port, method, path, body)
    lag = _raw_request(host, port, "GET", "/bench/lag", None)
    lat: list[float] = []
    errors: dict[int, int] = {}
    conns = [await _Conn.open(host, port) for _ in range(c)]
    try:
        await conns[0].request(lag)  # reset the stall probe
        for conn in conns[: min(c, 8)]:  # warm-up: first-use caches filled
            await conn.request(raw)
        left = count

        async def worker(conn: _Conn) -> None:
            nonlocal left
            while left > 0:
                left -= 1
                t0 = time.perf_counter()
                status, _ = await conn.request(raw)
                lat.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    errors[status] = errors.get(status, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in conns))
        wall = time.perf_counter() - t0
        lagged = json.loads((await conns[0].request(lag))[1])
        stall = lagged["max_stall_ms"]
    finally:
        for conn in conns:
            await conn.close()
    lat.sort()
    return {
        "mix": mix,
        "concurrency": c,
        "requests": len(lat),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(statistics.median(lat), 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
        "max_stall_ms": stall,
        "max_gc_pause_ms": lagged["max_gc_pause_ms"],
        "gc_gen2_runs": lagged["gc_gen2_runs"],
        "errors": errors,
    }


async def run(host: str, port: int, count: int, chat_count: int) -> dict:
    cells = []
    for mix in MIXES:
        for c in CONCURRENCY:
            n = chat_count if mix in ("chat", "agent_floor") else count
            cells.append(await _cell(host, port, mix, c, n))
    ceiling = {x["concurrency"]: x["rps"] for x in cells if x["mix"] == "ceiling"}
    for x in cells:
        x["ratio_to_ceiling"] = round(x["rps"] / ceiling[x["concurrency"]], 3)
    checks = []
    for x in cells:
        if x["mix"] in TARGET_RATIO:
            checks.append(
                (
                    f"{x['mix']} c={x['concurrency']} ratio >= {TARGET_RATIO[x['mix']]}",
                    x["ratio_to_ceiling"] >= TARGET_RATIO[x["mix"]],
                )
            )
        if x["concurrency"] == 16 and x["mix"] in TARGET_P99_C16_MS:
            checks.append(
                (
                    f"{x['mix']} c=16 p99 <= {TARGET_P99_C16_MS[x['mix']]} ms",
                    x["p99_ms"] <= TARGET_P99_C16_MS[x["mix"]],
                )
            )
    worst = max(x["max_stall_ms"] for x in cells)
    checks.append((f"max stall <= {TARGET_STALL_MS} ms", worst <= TARGET_STALL_MS))
    return {
        "cells": cells,
        "max_stall_ms": worst,
        "targets": [{"target": t, "met": ok} for t, ok in checks],
        "all_targets_met": all(ok for _, ok in checks),
    }


def _run_loop(coro):
    """Run the client on uvloop when it is installed (as uvicorn runs the server), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--count", type=int, default=400, help="requests per cell (chat: --chat-count)")
    ap.add_argument("--chat-count", type=int, default=150)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.data, args.port, args.home)
        return
    import httpx

    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="mlm-bench-api-"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env = {k: v for k, v in env.items() if not k.startswith(("MLM_", "DATABASE_URL", "REDIS_URL"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--port",
            str(port),
            "--home",
            str(home),
            "--data",
            str(args.data),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/bench/ready", timeout=5).json()["ready"]:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                sys.exit(f"server exited with {proc.returncode}")
            time.sleep(0.5)
        httpx.post(f"{base}/api/chat", json={"message": QUESTION}, timeout=300)  # first use: history import
        report = _run_loop(run("127.0.0.1", port, args.count, args.chat_count))
        report["server_pid"] = proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{'mix':<10}{'c':>4}{'req/s':>9}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'stall ms':>10}{'gc ms':>8}{'gen2':>5}"
    )
    for x in report["cells"]:
        print(
            f"{x['mix']:<10}{x['concurrency']:>4}{x['rps']:>9.1f}{x['ratio_to_ceiling']:>8.3f}"
            f"{x['p50_ms']:>9.2f}{x['p99_ms']:>9.2f}{x['max_stall_ms']:>10.1f}"
            f"{x['max_gc_pause_ms']:>8.1f}{x['gc_gen2_runs']:>5}"
            + (f"  errors {x['errors']}" if x["errors"] else "")
        )
    for t in report["targets"]:
        print(("met    " if t["met"] else "MISSED ") + t["target"])


if __name__ == "__main__":
    main()
