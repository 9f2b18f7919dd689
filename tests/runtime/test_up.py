"""``mlm up`` as a real process on the recorded data: API answers, Ctrl+C stops everything cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from market_liquidity_monitor import analytics
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData

from .helpers import REPO, clean_env, free_port, mlm, pid_alive, wait_http

QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"


@pytest.fixture(scope="module")
def direct_impact(data_dir):
    """The answer computed directly: a 5 BTC buy walked through the recorded Binance BTC/USDT book."""
    market = MarketData.from_recordings(Settings(), data_dir)
    view = market.view(market.resolve("BTC/USDT", "binance"))
    return analytics.market_impact(view, "buy", size=5)


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    proc = subprocess.Popen(
        mlm("up", *args),
        cwd=tmp_path,  # no .env of the repo is read
        env=env or clean_env(tmp_path / "home"),
        stdin=subprocess.DEVNULL,
        stdout=out.open("w"),
        stderr=err.open("w"),
    )
    return proc, out, err


def _stop(proc: subprocess.Popen, err: Path) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"mlm up did not stop within 90 s of SIGINT:\n{err.read_text()[-3000:]}")


@pytest.mark.slow
def test_up_recorded_no_ui_answers_and_stops_cleanly(data_dir, tmp_path, direct_impact):
    port = free_port()
    proc, out, err = _start(tmp_path, "--data", str(data_dir), "--no-ui", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_http(f"{base}/api/health", proc, 180, err).json()
        assert health["status"] == "ok" and health["mode"] == "recorded"

        r = httpx.post(f"{base}/api/chat", json={"message": QUESTION}, timeout=240)
        assert r.status_code == 200, r.text
        body = r.json()
        calls = [c for c in body["tool_calls"] if c["tool"] == "market_impact"]
        assert calls, body
        res = calls[0]["result"]
        assert (res["venue"], res["symbol"], res["side"], res["size"]) == ("binance", "BTC/USDT", "buy", 5.0)
        # The same book the test replayed itself: the same numbers.
        assert res["slippage_bps"] == pytest.approx(direct_impact.slippage_bps, rel=1e-12)
        assert res["vwap"] == pytest.approx(direct_impact.vwap, rel=1e-12)
        assert res["book_ts"] == direct_impact.book_ts
        answer = body["answer"]
        assert "binance" in answer.lower() and "BTC/USDT" in answer and direct_impact.book_ts in answer
        assert f"{direct_impact.slippage_bps:.2f} bps" in answer
    finally:
        code = _stop(proc, err)

    assert code == 0, err.read_text()[-3000:]
    stdout = out.read_text()
    assert f"API   {base}" in stdout and "Stopped." in stdout
    # Without --verbose only warnings are logged: no uvicorn, Alembic or replay INFO lines.
    assert not [line for line in err.read_text().splitlines() if " INFO " in line], err.read_text()[-3000:]
    with pytest.raises(httpx.ConnectError):  # the port is closed: uvicorn really stopped
        httpx.get(f"{base}/api/health", timeout=3)


@pytest.mark.slow
def test_up_with_ui_starts_streamlit_and_stops_it(data_dir, tmp_path):
    if not (REPO / "frontend" / "app.py").is_file():
        pytest.skip("frontend/app.py is not there")
    port, ui_port = free_port(), free_port()
    env = clean_env(tmp_path / "home", OPENAI_API_KEY="sk-test-PLANTED-not-for-the-ui")
    proc, out, err = _start(
        tmp_path, "--data", str(data_dir), "--port", str(port), "--ui-port", str(ui_port), "--verbose",
        env=env,
    )  # fmt: skip
    ui_pid = None
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", proc, 180, err)
        wait_http(f"http://127.0.0.1:{ui_port}/_stcore/health", proc, 180, err)
        m = re.search(r"streamlit started \(pid (\d+)\)", err.read_text())
        assert m, err.read_text()[-2000:]
        ui_pid = int(m.group(1))
        assert pid_alive(ui_pid)
        child_env = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{ui_pid}/environ").read_text().split("\0")
            if "=" in item
        )
        # The app is pointed at the API, and gets no secret it does not need.
        assert child_env["MLM_API_URL"] == f"http://127.0.0.1:{port}"
        assert "OPENAI_API_KEY" not in child_env
    finally:
        code = _stop(proc, err)

    assert code == 0, err.read_text()[-3000:]
    assert f"App   http://127.0.0.1:{ui_port}" in out.read_text()
    assert "streamlit stopped (exit code" in err.read_text()
    assert ui_pid is not None and not pid_alive(ui_pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=3)
