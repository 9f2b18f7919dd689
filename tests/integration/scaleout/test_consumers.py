"""Storage consumers in a Redis consumer group, as processes: one ingest worker publishes metrics
frames while two ``mlm consume`` members write them to one database; one member is killed mid-run
(SIGKILL, entries read but unacknowledged). The other takes them over (``XAUTOCLAIM``): the rows
in the database, read back with a direct SQL query, are exactly the single-process run's rows —
none lost, none twice."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import pytest
import redis

from market_liquidity_monitor.bus import codec
from market_liquidity_monitor.bus.publisher import PublishingStore
from market_liquidity_monitor.bus.transport import InProcessBus
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import ReadStats, Replayer, discover
from market_liquidity_monitor.storage import migrations
from market_liquidity_monitor.venues.registry import AdapterRegistry

pytestmark = pytest.mark.timeout(240)


def single_process_rows(data_dir) -> dict[tuple, float | None]:
    """The metrics rows of the same replay in one process (in-process bus, nothing lost):
    ``{(venue, symbol, name, ts_ns): value}``."""
    reg = AdapterRegistry()
    windows = Settings().analytics.depth_windows_bps
    bus = InProcessBus(maxlen=10**7)
    for g in discover(data_dir):  # each capture on its own timeline, as in the worker
        store = PublishingStore(
            reg, bus, 0, 1, metrics_interval_ms=1000, windows_bps=windows, clock=ReplayClock()
        )
        Replayer(store, reg).run(g.records(ReadStats()))
        store.flush()
    rows = {}
    for raw in bus.metrics:
        _, key, _, ts_ns, frame = codec.loads(raw)
        venue, _, symbol = key.partition("|")
        for name, value in frame.items():
            rows[(venue, symbol, name, ts_ns)] = value
    return rows


def db_rows(path) -> list[tuple]:
    with sqlite3.connect(path, timeout=30) as con:
        return con.execute("SELECT venue, symbol, name, ts_ns, value FROM metrics").fetchall()


def test_killed_consumer_loses_no_row_and_writes_none_twice(redis_url, small_data, procs, tmp_path):
    db_path = tmp_path / "metrics.sqlite3"
    db_url = f"sqlite+aiosqlite:///{db_path}"
    migrations.upgrade(db_url)
    procs.env.update(
        MLM_DATABASE_URL=db_url, MLM_BUS__CLAIM_IDLE_MS="1000", MLM_BUS__METRICS_INTERVAL_MS="1000"
    )
    expected = single_process_rows(small_data)
    assert len(expected) > 3000

    c1 = procs.start("c1", "consume", "--bus", redis_url, "--consumer", "c1")
    c2 = procs.start("c2", "consume", "--bus", redis_url, "--consumer", "c2")
    time.sleep(2.0)  # both members in the group before frames flow
    procs.start(
        "worker", "ingest", "--shard", "0/1", "--bus", redis_url, "--data", str(small_data), "--speed", "3"
    )

    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        n = len(db_rows(db_path)) if db_path.exists() else 0
        if n > len(expected) // 5:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no rows written: {procs.log('c1')}")
    c1.send_signal(signal.SIGKILL)
    c1.wait(10)
    n_at_kill = len(db_rows(db_path))
    assert n_at_kill < len(expected), "killed after the run: not mid-run"
    pending_c1 = r.xpending_range("mlm:bus:metrics", "storage", "-", "+", 10_000, consumername="c1")

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rows = db_rows(db_path)
        group = r.xinfo_groups("mlm:bus:metrics")[0]
        if len(rows) >= len(expected) and group["pending"] == 0 and group.get("lag") in (0, None):
            break
        time.sleep(0.25)
    rows = db_rows(db_path)
    got = {(v, s, n, t): val for v, s, n, t, val in rows}
    assert len(got) == len(rows)  # no key twice
    assert len(rows) == len(expected), (len(rows), len(expected), procs.log("c2"))
    assert got == expected
    assert r.xinfo_groups("mlm:bus:metrics")[0]["pending"] == 0

    c2.send_signal(signal.SIGTERM)
    c2.wait(20)
    stats = json.loads(procs.log("c2").strip().splitlines()[-1])
    # What c1 had read but not acknowledged when it died was claimed (and written) by c2.
    assert stats["claimed"] >= len(pending_c1)
    assert stats["write_failures"] == 0
