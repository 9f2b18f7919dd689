"""Fixtures for data-engine integration tests: the loopback replay server of recorded Binance REST
responses, and Redis URLs (skipped when unavailable)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from market_liquidity_monitor.data_engine.replay_server import Recordings, RestReplayServer

BINANCE_CAPTURES = ("BINANCE.0.gz", "BINANCE.http.0.0.gz", "BINANCE_FUTURES.0.gz", "BINANCE_DELIVERY.0.gz")


@pytest.fixture
def binance_captures(data_dir: Path) -> list[Path]:
    paths = [data_dir / "cryptofeed" / name for name in BINANCE_CAPTURES]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"cryptofeed captures missing: {missing}")
    return paths


@pytest.fixture
async def replay_server(binance_captures: list[Path]) -> AsyncIterator[RestReplayServer]:
    server = RestReplayServer(binance_captures)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _redis_reachable(url: str) -> bool:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(await asyncio.wait_for(client.ping(), 2))
    except Exception:
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def redis_url() -> str:
    url = os.environ.get("MLM_TEST_REDIS_URL")
    if not url:
        pytest.skip("MLM_TEST_REDIS_URL not set")
    if not await _redis_reachable(url):
        pytest.skip(f"Redis at {url} not reachable")
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServerProcess:
    """A throwaway ``redis-server`` (no persistence) this test starts and kills."""

    def __init__(self, binary: str, port: int):
        self.binary = binary
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServerProcess]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not found")
    port = 6391
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            port = _free_port()  # 6391 taken (another run): use any free port
    server = RedisServerProcess(binary, port)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def recordings(data_dir: Path) -> Recordings:
    """Every recorded REST response of ../shared/data, scanned once per test module."""
    return Recordings.scan(data_dir)


@pytest.fixture
async def server(recordings: Recordings) -> AsyncIterator[RestReplayServer]:
    """A loopback ``RestReplayServer`` over ``recordings`` (the ``mlm rest-replay`` venue)."""
    srv = RestReplayServer(recordings=recordings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
