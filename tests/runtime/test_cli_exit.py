"""``mlm ask`` ends without the interpreter's teardown once its answer is written: ``main`` exits
through ``runtime.fast_exit`` (logs and streams flushed, then ``os._exit``) with the command's exit
code; other commands, and a failed ask, exit the ordinary way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import market_liquidity_monitor.cli as cli
import market_liquidity_monitor.runtime as runtime

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def exits(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(runtime, "fast_exit", calls.append)
    monkeypatch.setattr(cli, "_skip_teardown", False)
    monkeypatch.setattr(cli, "_process_entry", False)  # main() sets it: not for the rest of the session
    return calls


def test_main_skips_the_teardown_only_after_a_command_that_asked_for_it(monkeypatch, exits):
    def done_command():
        cli._skip_teardown = True
        raise SystemExit(0)

    monkeypatch.setattr(cli, "app", done_command)
    with pytest.raises(SystemExit):  # fast_exit is recorded here, not run
        cli.main()
    assert exits == [0]


def test_main_exits_the_ordinary_way_otherwise(monkeypatch, exits):
    def failed_command():
        raise SystemExit(2)

    monkeypatch.setattr(cli, "app", failed_command)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2 and exits == []


def test_ask_output_is_complete_on_a_pipe(data_dir, tmp_path):
    """The JSON answer is flushed before ``os._exit`` (stdout is a pipe: block-buffered)."""
    env = {**os.environ, "MLM_HOME_DIR": str(tmp_path / "home"),
           "MLM_INGEST__CHECKPOINT_DIR": str(tmp_path / "ckpt")}  # fmt: skip
    q = "What is the market impact of buying 5 BTC on binance?"
    p = subprocess.run(
        [sys.executable, "-m", "market_liquidity_monitor.cli", "ask", q, "--data", str(data_dir), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert "BTC" in out["answer"] and out["tool_calls"]
    assert all("result" in c for c in out["tool_calls"])
