"""API load benchmark: a real uvicorn on loopback on the recorded data, fixed request mixes at
fixed concurrencies, against a ceiling endpoint served by the same process in the same run.

The server runs as a child process (``--serve``): the app of ``create_app`` on ``../shared/data``
plus two benchmark-only routes, ``GET /bench/ceiling`` (a minimal FastAPI endpoint returning a
cached constant JSON payload of the size of an orderbook answer: the ceiling of this
server/machine) and ``GET /bench/lag`` (the longest event-loop stall seen by a probe task inside
the server: a loop of ``asyncio.sleep(0.010)`` whose overshoot is the stall; reset on read).

The client (this process, httpx over loopback, ``c`` connections) sends ``--count`` requests per
cell for each mix and concurrency 1, 16 and 64, after a warm-up, and reports req/s, p50 and p99
latency (ms) per cell, the ratio of req/s to the ceiling at the same concurrency, and the longest
stall seen during the cell. Targets (ratios to the ceiling of the same run): orderbook and impact
>= 0.5, compare >= 0.3, chat >= 0.15; p99 at c=16 <= 50 ms for orderbook/impact and <= 300 ms
for chat; no stall > 100 ms. Usage::

    python benchmarks/bench_api.py [--data ../shared/data] [--count 400] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
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
}
TARGET_RATIO = {"orderbook": 0.5, "impact": 0.5, "compare": 0.3, "chat": 0.15}
TARGET_P99_C16_MS = {"orderbook": 50.0, "impact": 50.0, "chat": 300.0}
TARGET_STALL_MS = 100.0


# ------------------------------------------------------------------------------ server side


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
    probe = {"max_ms": 0.0, "task": None}

    async def lag_probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.010)
            probe["max_ms"] = max(probe["max_ms"], (loop.time() - t0 - 0.010) * 1000)

    @app.get("/bench/ceiling", include_in_schema=False)
    async def ceiling() -> Response:
        return Response(payload, media_type="application/json")

    @app.get("/bench/lag", include_in_schema=False)
    async def lag() -> dict:
        if probe["task"] is None:
            probe["task"] = asyncio.create_task(lag_probe())
        out = {"max_stall_ms": round(probe["max_ms"], 2)}
        probe["max_ms"] = 0.0
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


async def _cell(base: str, mix: str, c: int, count: int) -> dict:
    import httpx

    method, path, body = MIXES[mix]
    lat: list[float] = []
    errors: dict[int, int] = {}
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        await client.get("/bench/lag")  # reset the stall probe
        for _ in range(min(c, 8)):  # warm-up: connections open, first-use caches filled
            await client.request(method, path, json=body)
        left = count

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                t0 = time.perf_counter()
                r = await client.request(method, path, json=body)
                lat.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        wall = time.perf_counter() - t0
        stall = (await client.get("/bench/lag")).json()["max_stall_ms"]
    lat.sort()
    return {
        "mix": mix,
        "concurrency": c,
        "requests": len(lat),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(statistics.median(lat), 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
        "max_stall_ms": stall,
        "errors": errors,
    }


async def run(base: str, count: int, chat_count: int) -> dict:
    cells = []
    for mix in MIXES:
        for c in CONCURRENCY:
            cells.append(await _cell(base, mix, c, chat_count if mix == "chat" else count))
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
        report = asyncio.run(run(base, args.count, args.chat_count))
        report["server_pid"] = proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'mix':<10}{'c':>4}{'req/s':>9}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'stall ms':>10}")
    for x in report["cells"]:
        print(
            f"{x['mix']:<10}{x['concurrency']:>4}{x['rps']:>9.1f}{x['ratio_to_ceiling']:>8.3f}"
            f"{x['p50_ms']:>9.2f}{x['p99_ms']:>9.2f}{x['max_stall_ms']:>10.1f}"
            + (f"  errors {x['errors']}" if x["errors"] else "")
        )
    for t in report["targets"]:
        print(("met    " if t["met"] else "MISSED ") + t["target"])


if __name__ == "__main__":
    main()
