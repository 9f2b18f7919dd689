"""``mlm rest-replay DIR --port N`` as a real process: it prints the base URL and the env line, serves
the recordings to the real ccxt client and to DataEngine, and stops cleanly on SIGINT."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt_async
import pandas as pd
import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.data_engine.cache import MemoryCache
from market_liquidity_monitor.data_engine.engine import DataEngine, point_exchange_at

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlm(*args: str) -> list[str]:
    return [sys.executable, "-m", "market_liquidity_monitor.cli", *args]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLM_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


class Output:
    """Collects a process's stdout lines in a thread (so waiting never blocks on a pipe)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, marker: str, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(marker in line for line in self.lines):
                return list(self.lines)
            if self.proc.poll() is not None:
                pytest.fail(
                    f"mlm rest-replay exited {self.proc.returncode}: {self.proc.stderr.read()[-3000:]}"
                )
            time.sleep(0.05)
        pytest.fail(f"no {marker!r} within {timeout_s} s; stdout so far: {self.lines}")


async def test_mlm_rest_replay_serves_ccxt_and_the_engine_and_stops_on_sigint(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        mlm("rest-replay", str(data_dir), "--port", str(port)),
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        output = Output(proc)
        lines = output.wait_for("Ctrl-C stops", timeout_s=30)
        base_url = f"http://127.0.0.1:{port}"
        env_line = f"MLM_DATA_ENGINE__REST_BASE_URL={base_url}"
        assert env_line in lines
        text = "\n".join(lines)
        for endpoint in ("/api/v3/klines", "/api/v2/markets/", "/api/v4/spot/order_book", "level2_{20,100}"):
            assert endpoint in text, endpoint

        with gzip.open(data_dir / "cryptofeed" / "BINANCE.http.0.0.gz", "rt") as fh:
            raw = next(json.loads(line.split(": ", 1)[1]) for line in fh if "symbol=LRCBTC&" in line)
        exchange = ccxt_async.binance()
        point_exchange_at(exchange, base_url)
        try:
            book = await exchange.fetch_order_book("LRC/BTC", 10)
        finally:
            await exchange.close()
        assert book["nonce"] == raw["lastUpdateId"]
        assert [Decimal(str(p)) for p, _ in book["bids"]] == [Decimal(p) for p, _ in raw["bids"][:10]]

        name, _, value = env_line.partition("=")
        monkeypatch.setenv(name, value)  # the printed line, as a user would export it
        settings = Settings()
        assert settings.data_engine.rest_base_url == base_url
        engine = DataEngine(settings, MemoryCache(300.0))
        try:
            candles = await engine.ohlcv("binance", "BTC/USDT", "1h", since_ms=None, limit=3)
        finally:
            await engine.close()
        df = pd.read_feather(data_dir / "genetrader" / "binance" / "BTC_USDT-1h.feather").tail(3)
        assert [c[0] for c in candles] == (df["date"].astype("int64") // 1_000_000).tolist()
        assert [c[4] for c in candles] == df["close"].tolist()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
        output.thread.join(timeout=5)
        assert any("rest-replay stopped after" in line for line in output.lines)
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_mlm_rest_replay_rejects_a_directory_without_recordings(tmp_path: Path) -> None:
    proc = subprocess.run(
        mlm("rest-replay", str(tmp_path), "--port", "0"),
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "holds none of the recording folders" in proc.stderr and "Traceback" not in proc.stderr
