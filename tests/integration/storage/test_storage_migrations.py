"""Alembic migrations: applied programmatically, idempotent, and in step with the ORM models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.migrations import current_async, head_revision, upgrade, upgrade_async
from market_liquidity_monitor.storage.models import Base

TABLES = {
    "candles",
    "trades",
    "book_snapshots",
    "metrics",
    "alerts",
    "alert_events",
    "chat_sessions",
    "chat_messages",
}


async def test_upgrade_creates_every_table_and_is_idempotent(db: Database) -> None:
    schema = db.schema
    assert await current_async(db.url, schema=schema) == head_revision()
    await upgrade_async(db.url, schema=schema)  # again: no-op
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert names >= TABLES | {"alembic_version"}


async def test_migration_matches_the_models(db: Database) -> None:
    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


def test_sync_upgrade_for_the_cli(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{(tmp_path / 'sub' / 'cli.sqlite3').as_posix()}"
    upgrade(url)
    upgrade(url)
    assert (tmp_path / "sub" / "cli.sqlite3").exists()


async def test_sync_upgrade_inside_a_running_loop(tmp_path) -> None:
    # mlm's start-up may call the sync form from async code: it must not deadlock or fail.
    url = f"sqlite+aiosqlite:///{(tmp_path / 'loop.sqlite3').as_posix()}"
    upgrade(url)
    assert await current_async(url) == head_revision()


def test_db_app_upgrade_and_current_commands(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from market_liquidity_monitor.storage.cli import db_app

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MLM_DATABASE_URL", raising=False)
    monkeypatch.setenv("MLM_HOME_DIR", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()
    result = runner.invoke(db_app, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert f"is at revision {head_revision()}" in result.output
    assert (tmp_path / "home" / "mlm.sqlite3").exists()
    result = runner.invoke(db_app, ["current"])
    assert result.exit_code == 0 and f"current {head_revision()}, head {head_revision()}" in result.output


def test_head_read_from_the_revision_files_is_alembics_head() -> None:
    from market_liquidity_monitor.storage.migrations import _head_from_files

    assert _head_from_files() == head_revision()


def test_a_database_at_head_is_not_migrated_again_and_an_older_one_is(tmp_path, monkeypatch) -> None:
    """At head: one version read, Alembic's upgrade never called. Behind head (stamped at the
    first revision, as an older release left it): Alembic upgrades it to head."""
    import asyncio
    import sqlite3

    from alembic import command

    import market_liquidity_monitor.storage.migrations as migrations

    url = f"sqlite+aiosqlite:///{(tmp_path / 'h.sqlite3').as_posix()}"
    upgrade(url)
    calls = []
    real = command.upgrade
    monkeypatch.setattr(command, "upgrade", lambda cfg, rev: (calls.append(rev), real(cfg, rev)))
    asyncio.run(migrations.upgrade_async(url))
    assert calls == []
    with sqlite3.connect(tmp_path / "h.sqlite3") as conn:
        conn.execute("DROP TABLE book_metric_depths")
        conn.execute("DROP TABLE book_metrics")
        conn.execute("UPDATE alembic_version SET version_num = '0002_candle_fetches'")
    asyncio.run(migrations.upgrade_async(url))
    assert calls == ["head"]
    assert asyncio.run(current_async(url)) == head_revision()
    with sqlite3.connect(tmp_path / "h.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM book_metrics").fetchone() == (0,)
