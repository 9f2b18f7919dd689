"""Live mode through the service layer, against the REST stand-in (``mlm rest-replay``) with the
real ccxt client: books from ccxt REST (``source: rest``), candles fetched with ``fetch_ohlcv``
then read from storage, one venue's breaker opening while others answer, and Redis going away.

References come from the capture files themselves (raw JSON, Decimal walks, pandas on the candle
file), never from the code under test.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.replay_server import Fault
from market_liquidity_monitor.services import Services

BITSTAMP_HOST = "www.bitstamp.net"


def live_settings(base_url: str, home: Path, **kw) -> Settings:
    # 20 s: generous for a loopback server on a loaded 2-core machine (a timeout here would fall back
    # to the wall clock, and the recorded candles are not in the window of "now")
    de = {"rest_base_url": base_url, "request_timeout_s": 20.0, **kw.pop("data_engine", {})}
    return Settings(home_dir=home, data_engine=DataEngineSettings(**de), **kw)


def _recorded_bitstamp_ethusd(data_dir: Path) -> dict:
    with gzip.open(data_dir / "cryptofeed/BITSTAMP.http.0.0.gz", "rt") as f:
        for line in f:
            if "/order_book/ethusd" in line:
                return json.loads(line.split(": ", 1)[1])
    raise AssertionError("no recorded ethusd snapshot")


def _walk(levels: list[list[str]], size: Decimal) -> tuple[Decimal, Decimal]:
    """(filled, notional) of a taker order of ``size`` walking ``levels`` best first (Decimal)."""
    left, notional = size, Decimal(0)
    for p, s in levels:
        take = min(left, Decimal(s))
        notional += take * Decimal(p)
        left -= take
        if left == 0:
            break
    return size - left, notional


async def test_rest_book_vwap_equals_a_decimal_walk_of_the_recorded_snapshot(
    server, data_dir, tmp_path
) -> None:
    services = Services.build(live_settings(server.base_url, tmp_path), persist_alerts=False)
    try:
        res = await services.liquidity.impact("ETH", "buy", size=1, venue="bitstamp")
    finally:
        await services.close()
    assert res.symbol == "ETH/USD"  # Bitstamp's most liquid quote is USD (not its thin USDT book)
    assert res.book.source == "rest" and res.book.verified is False
    assert "unverified" in res.book.integrity
    rec = _recorded_bitstamp_ethusd(data_dir)
    asks = sorted(rec["asks"], key=lambda lv: Decimal(lv[0]))[:100]  # ccxt asked for 100 levels
    filled, notional = _walk(asks, Decimal(1))
    assert filled == 1 and res.vwap == pytest.approx(float(notional / filled), rel=1e-12)
    best_bid = max(Decimal(b[0]) for b in rec["bids"])
    mid = (best_bid + Decimal(asks[0][0])) / 2
    assert res.mid_price == pytest.approx(float(mid), rel=1e-12)
    # the snapshot's own time is the book's time (ccxt parses Bitstamp's microtimestamp to ms)
    assert res.book_ts_ns == int(rec["microtimestamp"]) // 1000 * 1_000_000


async def test_candles_are_fetched_once_with_fetch_ohlcv_then_read_from_storage(
    server, data_dir, tmp_path
) -> None:
    settings = live_settings(server.base_url, tmp_path)
    first = Services.build(settings, persist_alerts=False)
    try:
        a = await first.trading.backtest("BTC", "buy", size=2, lookback_days=7)
    finally:
        await first.close()
    c = a.candles
    assert c.source == "ccxt fetch_ohlcv" and c.fetched_candles > 0 and c.stored_candles == 0
    assert c.fetch_requests >= 2 and c.clock.startswith("venue time")  # paginated by 1000
    # independently: the 5m file's candles in [start, end) of the window the answer states
    df = pd.read_feather(data_dir / "genetrader/binance/BTC_USDT-5m.feather")
    ts = (
        pd.DatetimeIndex(df["date"]).tz_convert("UTC")
        if pd.DatetimeIndex(df["date"]).tz
        else pd.DatetimeIndex(df["date"]).tz_localize("UTC")
    )
    start, end = pd.Timestamp(c.start), pd.Timestamp(c.end)
    assert c.fetched_candles == int(((ts >= start) & (ts < end)).sum()) == c.candles
    second = Services.build(settings, persist_alerts=False)  # a new process, the same database
    try:
        b = await second.trading.backtest("BTC", "buy", size=2, lookback_days=7)
    finally:
        await second.close()
    assert b.candles.source == "storage" and b.candles.fetched_candles == 0 and b.candles.fetch_requests == 0
    assert b.result == a.result  # the same numbers from the stored candles


async def test_one_venue_failing_opens_its_breaker_and_the_others_keep_answering(server, tmp_path) -> None:
    settings = live_settings(
        server.base_url,
        tmp_path,
        venues=("binance", "bitstamp"),
        data_engine={"breaker_failure_threshold": 2},
    )
    server.host_faults[BITSTAMP_HOST] = Fault(status=503)
    services = Services.build(settings, persist_alerts=False)
    try:
        for attempt in range(3):
            cmp = await services.liquidity.compare("ETH", "buy", size=1, venues=["binance", "bitstamp"])
            assert [r.venue for r in cmp.venues] == ["binance"]  # binance keeps answering
            (gone,) = cmp.unavailable
            assert gone.venue == "bitstamp" and gone.kind == "unreachable"
            if attempt < 2:  # the venue's own error body, named per venue
                assert "unreachable" in gone.reason and "Internal server error" in gone.reason
            else:  # the breaker is open after 2 failures: no request is sent, and the answer says so
                assert "circuit" in gone.reason.lower() or "open" in gone.reason.lower()
        health = await services.health.venue_health()
        assert "bitstamp" in health.open_breakers and "binance" not in health.open_breakers
    finally:
        await services.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server():
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            import time

            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


async def test_redis_stopped_mid_run_degrades_to_the_in_process_cache(server, tmp_path, redis_server) -> None:
    url, proc = redis_server
    settings = live_settings(server.base_url, tmp_path, redis_url=url)
    services = Services.build(settings, persist_alerts=False)
    try:
        before = await services.liquidity.impact("BTC", "buy", size=1, venue="binance")
        import redis

        assert redis.Redis.from_url(url).exists("mlm:cache:markets:binance")  # markets went to Redis
        assert services.cache.status().backend == "redis"
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        after = await services.liquidity.compare("ETH", "buy", size=1, venues=["binance", "bitstamp"])
        assert {r.venue for r in after.venues} == {"binance", "bitstamp"}  # no error reached the user
        st = services.cache.status()
        assert st.degraded and st.backend == "memory"
        assert before.book.source == "rest"
    finally:
        await services.close()


async def test_mlm_ask_answers_live_from_ccxt_rest(server, data_dir, tmp_path) -> None:
    """The command line as a user runs it: no --data, MLM_DATA_ENGINE__REST_BASE_URL set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLM_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_"))
    }
    env.update(MLM_DATA_ENGINE__REST_BASE_URL=server.base_url, MLM_HOME_DIR=str(tmp_path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "market_liquidity_monitor.cli", "ask",
        "How much slippage would a 1 ETH market buy cause on Bitstamp?", "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    payload = json.loads(out.decode().strip().splitlines()[-1])
    (call,) = payload["tool_calls"]
    r = call["result"]
    assert call["tool"] == "market_impact" and r["book"]["source"] == "rest" and r["venue"] == "bitstamp"
    rec = _recorded_bitstamp_ethusd(data_dir)
    asks = sorted(rec["asks"], key=lambda lv: Decimal(lv[0]))
    _, notional = _walk(asks, Decimal(1))
    assert r["vwap"] == pytest.approx(float(notional), rel=1e-12)
    assert "rest unverified" in payload["answer"]
