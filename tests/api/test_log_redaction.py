"""No credential in any log line: ``mlm serve`` and ``mlm up`` run as real processes on the
recorded data, clients send the WebSocket ``?token=`` (the right one and a wrong guess) and a
``Bearer`` header; the processes' whole stderr (uvicorn's access lines included) must hold neither."""

from __future__ import annotations

import io
import logging
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.observability import configure_logging, redact_credentials
from tests.runtime.helpers import REPO, clean_env, free_port, mlm, wait_http

TOKEN = "tok-REDACT-ME-0123456789abcdef"
WRONG = "guess-NOT-IN-LOGS-987654"


def _exercise(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{base}/api/health", headers=auth, timeout=10).status_code == 200
    assert httpx.get(f"{base}/api/health", params={"token": TOKEN}, timeout=10).status_code == 401
    with connect(f"ws://127.0.0.1:{port}/ws/stream?symbol=BTC/USDT&token={TOKEN}", open_timeout=30) as ws:
        assert '"hello"' in ws.recv(timeout=30)
    with (
        pytest.raises(InvalidStatus),
        connect(f"ws://127.0.0.1:{port}/ws/stream?token={WRONG}", open_timeout=30),
    ):
        pass


def _run(tmp_path: Path, data_dir: Path, *args: str) -> str:
    port = free_port()
    env = clean_env(tmp_path / "home", MLM_API__TOKEN=TOKEN, PYTHONPATH=str(REPO), MLM_LOG_LEVEL="INFO")
    err = tmp_path / "stderr.txt"
    proc = subprocess.Popen(
        mlm(*args, "--data", str(data_dir), "--port", str(port)),
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/openapi.json", proc, 240, err)
        _exercise(port)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return err.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("command", [("serve",), ("up", "--no-ui")], ids=["serve", "up"])
def test_no_token_in_any_log_line(tmp_path, data_dir, command):
    log = _run(tmp_path, data_dir, *command)
    assert "/ws/stream" in log, log[-3000:]  # the access lines are there...
    assert "token=***" in log
    assert TOKEN not in log and WRONG not in log  # ...without the credentials


def test_redact_credentials_keeps_the_rest_of_the_line():
    line = '127.0.0.1:5 - "WebSocket /ws/stream?symbol=BTC&token=abc123&window=50" 403'
    assert (
        redact_credentials(line) == '127.0.0.1:5 - "WebSocket /ws/stream?symbol=BTC&token=***&window=50" 403'
    )
    assert redact_credentials("GET /x?API_KEY=k1;key=k2") == "GET /x?API_KEY=***;key=***"
    assert redact_credentials("Authorization: Bearer eyJabc.def") == "Authorization: Bearer ***"
    assert (
        redact_credentials("/api/orderbook/binance/BTC/USDT?levels=5")
        == "/api/orderbook/binance/BTC/USDT?levels=5"
    )


def test_uvicorn_access_records_stay_formattable():
    """uvicorn's AccessFormatter unpacks record.args: the filter cleans them in place."""
    from uvicorn.logging import AccessFormatter

    buf = io.StringIO()
    handler = configure_logging(Settings(), stream=buf)
    handler.setFormatter(
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    )
    try:
        # a logger of our own with uvicorn's access-record shape: uvicorn's loggers may have been
        # reconfigured (propagate off, levels) by another test's in-process server
        logging.getLogger("mlm.test.uvicorn_access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/ws/stream?token={TOKEN}", "1.1", 101
        )
    finally:
        logging.getLogger().removeHandler(handler)
    assert (
        buf.getvalue().strip() == '127.0.0.1:1 - "GET /ws/stream?token=*** HTTP/1.1" 101 Switching Protocols'
    )
