"""``mlm --help`` and ``mlm ask`` import only what they use (``python -X importtime``): no heavy
library loads for the help, and a book question on recorded data loads neither ccxt (no venue is
called) nor statsmodels/scipy (no pairs statistics) nor pandas (no candles); asked again on the
same history database (at the head revision) it does not load Alembic either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported(
    args: list[str], env: dict[str, str] | None = None, *, full: bool = False, drop: tuple[str, ...] = ()
) -> set[str]:
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "market_liquidity_monitor.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**{k: v for k, v in os.environ.items() if k not in drop}, **(env or {})},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Pydantic plugin" not in p.stderr, p.stderr[-3000:]  # no plugin warning either
    return {
        line.rsplit("|", 1)[-1].strip() if full else line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in p.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_book_question_imports_logfire_only_when_there_are_spans_to_make(data_dir, tmp_path):
    """Logfire (and the requests/OpenTelemetry SDK it brings) is imported by ``mlm ask`` only when
    tracing is wanted (``observability.tracing_wanted``); pydantic-ai then uses logfire_api's
    stand-in. ``logfire._internal.main`` is the body of the real package."""
    env = {"MLM_HOME_DIR": str(tmp_path / "home"), "MLM_INGEST__CHECKPOINT_DIR": str(tmp_path / "ckpt")}
    sinks = ("LOGFIRE_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT", "MLM_OBSERVABILITY__TRACING")
    ask = ["ask", "What is the market impact of buying 5 BTC on binance?", "--data", str(data_dir)]
    quiet = imported(ask, env, full=True, drop=sinks)
    assert "pydantic_ai" in quiet and "logfire_api" in quiet
    assert "logfire._internal.main" not in quiet and "requests" not in quiet
    traced = imported(ask, {**env, "MLM_OBSERVABILITY__TRACING": "true"}, full=True, drop=sinks)
    assert "logfire._internal.main" in traced


def test_the_mlm_console_script_is_the_process_entry(data_dir, tmp_path):
    """The installed ``mlm`` script runs ``cli.main`` (the process entry: fast exit, Logfire kept
    out), not the bare Typer app: its ``ask`` imports no Logfire either
    (``PYTHONPROFILEIMPORTTIME`` is ``-X importtime`` for a script)."""
    script = Path(sys.executable).with_name("mlm")
    assert script.exists(), f"{script}: the package is not installed with its console script"
    env = {k: v for k, v in os.environ.items() if k not in ("LOGFIRE_TOKEN", "MLM_OBSERVABILITY__TRACING")}
    env.update(
        PYTHONPROFILEIMPORTTIME="1",
        MLM_HOME_DIR=str(tmp_path / "home"),
        MLM_INGEST__CHECKPOINT_DIR=str(tmp_path / "ckpt"),
    )
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    p = subprocess.run(
        [str(script), "ask", "What is the market impact of buying 5 BTC on binance?", "--data", str(data_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    names = {ln.rsplit("|", 1)[-1].strip() for ln in p.stderr.splitlines() if ln.startswith("import time:")}
    assert "pydantic_ai" in names and "logfire._internal.main" not in names


def test_help_imports_no_heavy_library():
    mods = imported(["--help"])
    assert "typer" in mods  # the check sees imports at all
    heavy = {"ccxt", "pandas", "numpy", "statsmodels", "scipy", "sqlalchemy", "alembic", "pydantic_ai",
             "pydantic_settings"}  # fmt: skip
    assert not mods & heavy, sorted(mods & heavy)


def test_recorded_book_question_imports_no_venue_client_or_statistics(data_dir, tmp_path):
    env = {"MLM_HOME_DIR": str(tmp_path / "home"), "MLM_INGEST__CHECKPOINT_DIR": str(tmp_path / "ckpt")}
    ask = ["ask", "What is the market impact of buying 5 BTC on binance?", "--data", str(data_dir)]
    first = imported(ask, env)
    assert "pydantic_ai" in first and "alembic" in first  # the assistant ran; a new database migrated
    unused = {"ccxt", "statsmodels", "scipy", "pandas"}
    assert not first & unused, sorted(first & unused)
    again = imported(ask, env)
    assert "pydantic_ai" in again and "sqlalchemy" in again  # the history database was opened
    assert not again & (unused | {"alembic"}), sorted(again & (unused | {"alembic"}))


def test_warm_book_question_on_vouched_rows_opens_no_database(data_dir, tmp_path):
    """Once a full witness check has vouched for the stored history rows (``services/history.py``)
    and nothing wrote the database since, ``mlm ask`` restores its recordings and answers without
    importing SQLAlchemy or the SQLite driver, so without a single query."""
    import time

    from market_liquidity_monitor.services.history import VOUCH_MIN_AGE_NS

    home, ckpt = tmp_path / "home", tmp_path / "ckpt"
    env = {"MLM_HOME_DIR": str(home), "MLM_INGEST__CHECKPOINT_DIR": str(ckpt)}
    ask = ["ask", "What is the market impact of buying 5 BTC on binance?", "--data", str(data_dir)]
    assert "sqlalchemy" in imported(ask, env)  # replayed: the rows are written
    newest = max(f.stat().st_ctime_ns for f in home.glob("mlm.sqlite3*"))
    time.sleep(max(0.0, (newest + VOUCH_MIN_AGE_NS - time.time_ns()) / 1e9) + 0.2)
    assert "sqlalchemy" in imported(ask, env)  # restored after the full check, which vouches
    assert list(ckpt.glob("witness-*.json"))
    warm = imported(ask, env)
    assert "pydantic_ai" in warm and not warm & {"sqlalchemy", "aiosqlite", "alembic"}, sorted(
        warm & {"sqlalchemy", "aiosqlite", "alembic"}
    )
