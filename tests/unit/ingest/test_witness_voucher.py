"""Witness vouchers (``services/history.py``): once a full check found a recording's history rows in
the SQLite file, a later process restores that recording without opening the database - without
even importing SQLAlchemy - for as long as no process has written the file; any write sends the
next process through the full check again, and a row missing then means a replay.

Each "process" is a real child interpreter (``sys.modules`` is the evidence that no database was
used), run the way ``mlm ask`` builds its services (``Services.build(..., defer_storage=True)``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from market_liquidity_monitor.services.history import VOUCH_MIN_AGE_NS, sqlite_file

REPO = Path(__file__).resolve().parents[3]

CHILD = """
import asyncio, json, sys
from pathlib import Path

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.services import Services


async def main():
    data, home, ckpt = map(Path, sys.argv[1:4])
    settings = Settings(data_dir=data, home_dir=home, ingest={"checkpoint_dir": ckpt})
    services = Services.build(settings, defer_storage=True)
    await services.start()
    await services.books.load_all()
    out = {
        "replays": services.market.replays,
        "restores": services.market.restores,
        "unwitnessed": services.market.checkpoints.stats.unwitnessed,
        "sqlalchemy": "sqlalchemy" in sys.modules,
    }
    await services.close()
    return out


print(json.dumps(asyncio.run(main())))
"""


def process(recordings: Path, home: Path, ckpt: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLM_")}
    env["PYTHONPATH"] = str(REPO)
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(recordings), str(home), str(ckpt)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("book_metrics", "book_metric_depths", "book_snapshots", "trades")
        }


def wait_until_vouchable(db: Path) -> None:
    """Sleep until the file's last change is older than a voucher needs (``VOUCH_MIN_AGE_NS``)."""
    newest = max(os.stat(f).st_ctime_ns for f in db.parent.glob(db.name + "*"))
    time.sleep(max(0.0, (newest + VOUCH_MIN_AGE_NS - time.time_ns()) / 1e9) + 0.2)


def test_vouched_rows_restore_without_the_database_and_any_write_rechecks(recordings, tmp_path):
    home, ckpt = tmp_path / "home", tmp_path / "ckpt"
    db = home / "mlm.sqlite3"
    cold = process(recordings, home, ckpt)
    assert (cold["replays"], cold["restores"]) == (2, 0)
    stored = rows(db)
    assert stored["book_metrics"] and stored["trades"]

    # Just written: the full check restores, but vouches for nothing (a write in the same clock
    # tick could hide behind an unchanged identity).
    fresh = process(recordings, home, ckpt)
    assert (fresh["replays"], fresh["restores"], fresh["sqlalchemy"]) == (0, 2, True)
    if time.time_ns() - os.stat(db).st_ctime_ns < VOUCH_MIN_AGE_NS:
        assert not list(ckpt.glob("witness-*.json"))

    wait_until_vouchable(db)
    checked = process(recordings, home, ckpt)  # full check, now vouched for
    assert (checked["replays"], checked["restores"], checked["sqlalchemy"]) == (0, 2, True)
    assert len(list(ckpt.glob("witness-*.json"))) == 2

    # Nothing wrote the file since: restored without SQLAlchemy, i.e. without any query.
    vouched = process(recordings, home, ckpt)
    assert (vouched["replays"], vouched["restores"], vouched["sqlalchemy"]) == (0, 2, False)
    assert rows(db) == stored

    # Another process writes a row (of a table the witness does not count): the identity changed,
    # so the full check runs again (SQLAlchemy loaded) - and finds the rows, so still no replay.
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO alerts (name, venue, symbol, metric, operator, threshold, cooldown_s, enabled,"
            " params, created_at_ms, updated_at_ms) VALUES ('x', 'kraken', 'BTC/USD', 'spread_bps', '>', 5,"
            " 60, 0, '{}', 0, 0)"
        )
    rechecked = process(recordings, home, ckpt)
    assert (rechecked["replays"], rechecked["restores"], rechecked["sqlalchemy"]) == (0, 2, True)

    # A row of a recording deleted by another process: the full check runs, misses it, and that
    # recording is replayed (the row is back), the other one restored.
    with sqlite3.connect(db) as conn:
        venue, symbol, ts = conn.execute(
            "SELECT venue, symbol, max(ts_ns) FROM book_metrics GROUP BY venue, symbol LIMIT 1"
        ).fetchone()
        conn.execute(
            "DELETE FROM book_metrics WHERE venue = ? AND symbol = ? AND ts_ns = ?", (venue, symbol, ts)
        )
    assert rows(db)["book_metrics"] == stored["book_metrics"] - 1
    after_delete = process(recordings, home, ckpt)
    assert (after_delete["replays"], after_delete["restores"], after_delete["unwitnessed"]) == (1, 1, 1)
    assert rows(db) == stored


def test_only_sqlite_files_get_vouchers(tmp_path):
    assert sqlite_file(f"sqlite+aiosqlite:///{tmp_path}/mlm.sqlite3") == tmp_path / "mlm.sqlite3"
    assert sqlite_file("sqlite:///rel/mlm.sqlite3") == Path(os.path.abspath("rel/mlm.sqlite3"))
    for url in (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        "sqlite+aiosqlite:///:memory:",
        "sqlite://",
        "sqlite:///file:mlm.db?mode=ro&uri=true",
    ):
        assert sqlite_file(url) is None, url
