"""Alembic migrations of the storage schema, configured in code (no alembic.ini needed).

``upgrade(url)`` (sync, for the CLI) and ``await upgrade_async(url)`` (for application start-up)
bring a database to the latest revision; both are idempotent. On PostgreSQL the upgrade holds a
transaction-scoped advisory lock, so several processes starting together do not race.

For developers: ``alembic -c market_liquidity_monitor/storage/migrations/alembic.ini revision -m "..."``
creates a new revision file in ``versions/`` (set ``MLM_DATABASE_URL`` or pass ``-x url=...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from market_liquidity_monitor.storage.db import make_engine, run_sync

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Arbitrary constant key of the PostgreSQL advisory lock taken while migrating.
_PG_LOCK_KEY = 7_243_019_551


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at this package's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade_sync(connection: Any, revision: str, schema: str | None) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        if schema:
            quoted = connection.dialect.identifier_preparer.quote_identifier(schema)
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current_sync(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_async(url: str, revision: str = "head", *, schema: str | None = None) -> None:
    """Apply migrations up to ``revision`` on ``url``. ``schema`` (PostgreSQL only) is created if
    missing and used as the search_path, so the tables and ``alembic_version`` live in it."""
    engine = make_engine(url, schema=schema, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, revision, schema)
    finally:
        await engine.dispose()


async def current_async(url: str, *, schema: str | None = None) -> str | None:
    """The database's current revision id, or None for an empty database."""
    engine = make_engine(url, schema=schema, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_sync)
    finally:
        await engine.dispose()


def head_revision() -> str:
    """The latest revision id in ``versions/``."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, revision: str = "head", *, schema: str | None = None) -> None:
    """Sync wrapper of ``upgrade_async`` (the ``mlm db upgrade`` command)."""
    run_sync(lambda: upgrade_async(url, revision, schema=schema))


def current(url: str, *, schema: str | None = None) -> str | None:
    """Sync wrapper of ``current_async``."""
    return run_sync(lambda: current_async(url, schema=schema))
