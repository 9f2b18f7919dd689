"""Bulk candle import speed into SQLite and PostgreSQL (rows/s).

Reads every candle file under ../shared/data (freqtrade JSON and Feather: 18 files, 724,830 candles)
once, then times inserting them through ``storage.repositories.insert_candles`` (the path
``mlm import`` uses: chunks of 20,000 rows, insert-or-ignore on the primary key, one transaction
per chunk) into a fresh, migrated database:

* ``first``: empty tables, every row new;
* ``again``: the same rows a second time, every row a primary-key conflict (idempotent re-import);
* ``end_to_end``: ``importers.import_path`` on the candle files into another fresh database,
  file parsing included.

    .venv/bin/python benchmarks/bench_import.py                      # SQLite only
    .venv/bin/python benchmarks/bench_import.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/bench_import.py --json

PostgreSQL runs in a throwaway schema that is dropped afterwards; ``MLM_TEST_POSTGRES_URL`` is used
when ``--postgres`` is not given. Absolute figures depend on the machine and its disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from market_liquidity_monitor.storage.db import Database  # noqa: E402
from market_liquidity_monitor.storage.importers import discover, import_path, read_candles  # noqa: E402
from market_liquidity_monitor.storage.migrations import upgrade_async  # noqa: E402
from market_liquidity_monitor.storage.repositories import insert_candles  # noqa: E402

CHUNK = 20_000


def load(data_dir: Path) -> list[tuple[object, object]]:
    items, _ = discover(data_dir)
    return [(item, read_candles(item.paths[0])) for item in items if item.kind == "candles"]


async def insert_all(db: Database, loaded: list[tuple[object, object]]) -> tuple[int, int, float]:
    rows = inserted = 0
    t0 = time.perf_counter()
    for item, c in loaded:
        for s in range(0, len(c), CHUNK):
            sl = slice(s, s + CHUNK)
            async with db.begin() as conn:
                inserted += await insert_candles(
                    conn, item.venue, item.symbol, item.timeframe, c.ts_ms[sl].tolist(), c.open[sl].tolist(),
                    c.high[sl].tolist(), c.low[sl].tolist(), c.close[sl].tolist(), c.volume[sl].tolist(),
                )  # fmt: skip
            rows += len(c.ts_ms[sl])
    return rows, inserted, time.perf_counter() - t0


async def end_to_end(url: str, schema: str | None, data_dir: Path) -> tuple[int, float]:
    await upgrade_async(url, schema=schema)
    db = Database(url, schema=schema)
    try:
        t0 = time.perf_counter()
        rows = 0
        for sub in ("tooyipjee_freqtrade", "genetrader"):
            report = await import_path(db, data_dir / sub, include_recordings=False)
            rows += report.rows_inserted
        return rows, time.perf_counter() - t0
    finally:
        await db.dispose()


async def drop_schema(url: str, schema: str) -> None:
    db = Database(url)
    try:
        async with db.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await db.dispose()


async def bench_backend(name: str, url: str, schema: str | None, loaded, data_dir: Path) -> dict:
    await upgrade_async(url, schema=schema)
    db = Database(url, schema=schema)
    try:
        rows, inserted, t_first = await insert_all(db, loaded)
        _, inserted_again, t_again = await insert_all(db, loaded)
    finally:
        await db.dispose()
    assert inserted == rows and inserted_again == 0, (inserted, rows, inserted_again)
    if schema:
        await drop_schema(url, schema)
        schema = f"bench_import_{uuid.uuid4().hex[:8]}"
    else:
        url = url.replace(".sqlite3", "-e2e.sqlite3")
    try:
        e2e_rows, t_e2e = await end_to_end(url, schema, data_dir)
    finally:
        if schema:
            await drop_schema(url, schema)
    return {
        "backend": name,
        "rows": rows,
        "first_rows_per_s": rows / t_first,
        "again_rows_per_s": rows / t_again,
        "end_to_end_rows_per_s": e2e_rows / t_e2e,
        "first_s": t_first,
        "again_s": t_again,
        "end_to_end_s": t_e2e,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=(REPO / ".." / "shared" / "data").resolve())
    parser.add_argument("--postgres", default=os.environ.get("MLM_TEST_POSTGRES_URL"))
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    loaded = load(args.data_dir)
    t_read = time.perf_counter() - t0
    total = sum(len(c) for _, c in loaded)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
            results.append(await bench_backend("sqlite", url, None, loaded, args.data_dir))
        if args.postgres:
            schema = f"bench_import_{uuid.uuid4().hex[:8]}"
            try:
                results.append(
                    await bench_backend("postgresql", args.postgres, schema, loaded, args.data_dir)
                )
            finally:
                await drop_schema(args.postgres, schema)
    out = {
        "files": len(loaded),
        "rows": total,
        "read_s": t_read,
        "read_rows_per_s": total / t_read,
        "results": results,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"{len(loaded)} candle files, {total:,} rows; parsing all files: {t_read:.2f} s ({total / t_read:,.0f} rows/s)"
    )
    print(f"{'backend':<11} {'first import':>16} {'re-import':>16} {'end-to-end':>16}")
    for r in results:
        print(
            f"{r['backend']:<11} {r['first_rows_per_s']:>12,.0f} r/s {r['again_rows_per_s']:>12,.0f} r/s"
            f" {r['end_to_end_rows_per_s']:>12,.0f} r/s"
        )
    if not args.postgres:
        print("(PostgreSQL skipped: pass --postgres URL or set MLM_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    asyncio.run(main())
