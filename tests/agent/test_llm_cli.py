"""``mlm ask`` as a real process on a real model (the loopback OpenAI-compatible server): a looping
model stops at MLM_AGENT__MAX_TOOL_CALLS and a hanging one at MLM_AGENT__REQUEST_TIMEOUT_S, each
with an answer on stdout and exit code 0 (no traceback), and no request reaches the provider after
the answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from market_liquidity_monitor.testing.llm_server import LoopbackLLM, hanging, looping

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-cli-loopback-91aa"
QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
IMPACT_ARGS = {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"}


def mlm_ask(llm: LoopbackLLM, data_dir: Path, home: Path, **agent: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLM_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_", "LOGFIRE_"))
    }
    env.update(
        PYTHONPATH=str(REPO),  # this checkout's package, whatever the venv's editable install points at
        MLM_HOME_DIR=str(home),
        MLM_AGENT__MODEL="openai:loopback",
        MLM_AGENT__BASE_URL=llm.base_url,
        MLM_AGENT__API_KEY=KEY,
        **{f"MLM_AGENT__{k.upper()}": v for k, v in agent.items()},
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "market_liquidity_monitor.cli",
            "ask",
            QUESTION,
            "--data",
            str(data_dir),
            "--json",
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_mlm_ask_looping_model_stops_at_the_limit_exit_0(data_dir, tmp_path):
    with LoopbackLLM(looping("market_impact", IMPACT_ARGS)) as llm:
        res = mlm_ask(llm, data_dir, tmp_path, max_tool_calls="2")
        t_exit = time.monotonic()
        assert res.returncode == 0, res.stderr[-3000:]
        assert "Traceback" not in res.stderr and KEY not in res.stdout + res.stderr
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert "more than 2 tool calls" in out["answer"] and "MLM_AGENT__MAX_TOOL_CALLS=2" in out["answer"]
        assert [c["tool"] for c in out["tool_calls"]] == ["market_impact", "market_impact"]
        assert len(llm.requests) == 3  # two calls answered, the third refused before it ran
        time.sleep(0.5)
        assert not llm.requests_after(t_exit)


@pytest.mark.slow
def test_mlm_ask_hanging_model_is_cut_at_the_timeout_exit_0(data_dir, tmp_path):
    with LoopbackLLM(hanging()) as llm:
        res = mlm_ask(llm, data_dir, tmp_path, request_timeout_s="2", fallback_offline="false")
        assert res.returncode == 0, res.stderr[-3000:]
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert "did not answer within 2 s (MLM_AGENT__REQUEST_TIMEOUT_S)" in out["answer"]
        (req,) = llm.requests
        # The server notices the closed connection on its own thread, possibly just after the
        # process has exited (a CI run asserted before it had): wait for it, as test_llm_path does.
        deadline = time.monotonic() + 3
        while req.disconnected_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert req.disconnected_at is not None and 1.9 <= req.disconnected_at - req.t < 4.0
