"""Fixtures of the frontend tests: a real API (uvicorn in a thread, on the recorded data) and
helpers to drive the Streamlit app with ``AppTest``.

The frontend talks to the API over HTTP only, so the tests do too: nothing here hands the app a
Python object of the package.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic_ai import models

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import ApiSettings, Settings

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
APP = FRONTEND / "app.py"
# The helper package of the app (mlm_ui), importable by the unit tests as the app imports it.
if str(FRONTEND) not in sys.path:
    sys.path.insert(0, str(FRONTEND))

models.ALLOW_MODEL_REQUESTS = False

# Seconds an AppTest run may take: a first request on recorded data replays a recording.
APP_TIMEOUT_S = 90


class ApiServer:
    """uvicorn serving an ASGI app on a loopback socket, in a daemon thread."""

    def __init__(self, app):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="mlm-test-api", daemon=True
        )

    def start(self, timeout_s: float = 60) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test API did not start on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="session")
def api_server(data_dir, tmp_path_factory) -> Iterator[ApiServer]:
    # Spot and COIN-M only, watching BTC/USDT: the USD-M capture of the recording ends five minutes
    # before the others, so with it /api/status stays "degraded" and /api/execute answers 409 (that
    # state has its own test); this way the Route page gets a real plan, and the warm-up is shorter.
    settings = Settings(
        data_dir=data_dir,
        home_dir=tmp_path_factory.mktemp("mlm-frontend-home"),
        venues=("binance", "binancecoinm"),
        api=ApiSettings(token=None, watch_symbols=("BTC/USDT",)),
    )
    server = ApiServer(create_app(settings))
    server.start()
    # Warm up: replay the Binance BTC/USDT recording once, so page runs stay fast.
    r = httpx.get(f"{server.url}/api/orderbook/binance/BTC/USDT", params={"levels": 1}, timeout=120)
    assert r.status_code == 200, r.text
    try:
        yield server
    finally:
        server.stop()


def wait_until_not_warming(url: str, timeout_s: float = 120) -> dict:
    """``/api/status`` once the API's warm-up (replay of the watched books) is over."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = httpx.get(f"{url}/api/status", timeout=30).json()
        if status["status"] != "warming" or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


@pytest.fixture
def api_url(api_server, monkeypatch) -> str:
    """The real API's URL, set as ``MLM_API_URL`` for the app under test."""
    monkeypatch.setenv("MLM_API_URL", api_server.url)
    monkeypatch.delenv("MLM_API__TOKEN", raising=False)
    return api_server.url


@pytest.fixture
def dead_api_url(monkeypatch) -> str:
    """A loopback URL where nothing listens, set as ``MLM_API_URL``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLM_API_URL", url)
    monkeypatch.delenv("MLM_API__TOKEN", raising=False)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_app(api_url: str, log: Path) -> Iterator[str]:
    """The app as ``mlm up`` starts it (``runtime.streamlit_command``), talking to ``api_url``, on a
    free loopback port: yields its URL once ``/_stcore/health`` answers; stopped on exit."""
    from market_liquidity_monitor.runtime import streamlit_command

    port = free_port()
    env = {**os.environ, "MLM_API_URL": api_url, "PYTHONUNBUFFERED": "1"}
    env.pop("MLM_API__TOKEN", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            streamlit_command(APP, "127.0.0.1", port), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start on {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
