"""Helpers for tests that start ``mlm`` commands as real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any MLM_*/provider setting, state under ``home``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLM_", "LOGFIRE_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_"))
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    # The checkout under test first on the path, whatever the editable install points at (worktrees).
    path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(
        {"MLM_HOME_DIR": str(home), "PYTHONUNBUFFERED": "1", "COLUMNS": "220", "PYTHONPATH": path}, **extra
    )
    return env


def mlm(*args: str) -> list[str]:
    return [sys.executable, "-m", "market_liquidity_monitor.cli", *args]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float, err_file: Path) -> httpx.Response:
    """GET ``url`` until it answers 200; fail with the process's stderr if it exits first."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode}:\n{err_file.read_text()[-3000:]}")
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code == 200:
                return r
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout_s} s ({last!r}):\n{err_file.read_text()[-3000:]}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is not running either.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
