"""Fixtures of the scale-out tests: a throwaway ``redis-server`` on a free loopback port, a small
data directory (four cryptofeed venue captures of ../shared/data, linked) and product processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("MLM_TEST_DATA_DIR", REPO.parent / "shared" / "data"))
# Kraken (CRC32 checksums, fixed-depth truncation), OKX (checksums), Binance spot (sequence rule,
# REST snapshots) and Bitstamp (REST snapshots): 27 books, ~5,400 book messages, 2 venues a shard.
CAPTURES = (
    "KRAKEN.ws.50.0.gz",
    "OKX.ws.1.0.gz",
    "BINANCE.ws.1.0.gz",
    "BINANCE.http.0.0.gz",
    "BITSTAMP.ws.1.0.gz",
    "BITSTAMP.http.0.0.gz",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def small_data(tmp_path) -> Path:
    missing = [c for c in CAPTURES if not (DATA / "cryptofeed" / c).is_file()]
    if missing:
        pytest.skip(f"recorded data missing: {missing}")
    d = tmp_path / "data" / "cryptofeed"
    d.mkdir(parents=True)
    for c in CAPTURES:
        (d / c).symlink_to(DATA / "cryptofeed" / c)
    return d.parent


class Procs:
    """Product processes started with ``python -m market_liquidity_monitor.cli``, stopped at the end."""

    def __init__(self, tmp: Path, env: dict):
        self.tmp, self.env, self.procs = tmp, env, []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("ab")
        p = subprocess.Popen(
            [sys.executable, "-m", "market_liquidity_monitor.cli", *args],
            cwd=self.tmp,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


@pytest.fixture
def procs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLM_")}
    env.update(
        PYTHONPATH=str(REPO),
        MLM_HOME_DIR=str(tmp_path / "home"),
        MLM_BUS__SNAPSHOT_INTERVAL_S="1.0",
        MLM_BUS__HEARTBEAT_INTERVAL_S="0.2",
        MLM_BUS__HEARTBEAT_TIMEOUT_S="1.5",
        # Recorded books age on the recording's clock: a 30 s capture's quiet books would be
        # stale at its end (in the single-process run too); staleness here = a worker gone.
        MLM_ANALYTICS__STALE_AFTER_MS="3600000",
        # No REST fallback to the internet from a test: a refused loopback port.
        MLM_DATA_ENGINE__REST_BASE_URL=f"http://127.0.0.1:{free_port()}",
    )
    p = Procs(tmp_path, env)
    yield p
    p.stop_all()
