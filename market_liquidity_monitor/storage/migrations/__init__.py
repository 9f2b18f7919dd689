"""Alembic migrations of the storage schema, configured in code (no alembic.ini needed).

``upgrade(url)`` (sync, for the CLI) and ``await upgrade_async(url)`` (for application start-up)
bring a database to the latest revision; both are idempotent. On PostgreSQL the upgrade holds a
transaction-scoped advisory lock, so several processes starting together do not race.

A database already at the head revision is answered by one ``SELECT version_num FROM
alembic_version`` against the head read from the revision files themselves (``head_revision``:
each file's ``revision`` / ``down_revision``), without importing Alembic (about 0.15 s of CPU at
every start of ``mlm ask``); anything else - an empty or older database, several heads, a file
that cannot be read that way - goes through Alembic's ``upgrade``.

For developers: ``alembic -c market_liquidity_monitor/storage/migrations/alembic.ini revision -m "..."``
creates a new revision file in ``versions/`` (set ``MLM_DATABASE_URL`` or pass ``-x url=...``).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.pool import NullPool

from market_liquidity_monitor.storage.db import make_engine, run_sync

if TYPE_CHECKING:  # Alembic is imported only when a database needs migrating (module doc)
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Arbitrary constant key of the PostgreSQL advisory lock taken while migrating.
_PG_LOCK_KEY = 7_243_019_551


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at this package's migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade_sync(connection: Any, revision: str, schema: str | None) -> None:
    if revision == "head" and _at_head_sync(connection):
        return  # nothing to apply: Alembic is not even imported (module doc)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        if schema:
            quoted = connection.dialect.identifier_preparer.quote_identifier(schema)
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current_sync(connection: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def _head_from_files() -> str | None:
    """The one revision of ``versions/*.py`` that no other file names as its ``down_revision``
    (module-level literal assignments, read with ``ast``); None when that is not exactly one or a
    file cannot be read that way (Alembic decides then)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found: dict[str, Any] = {}
        try:
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, ast.Name) and t.id in ("revision", "down_revision"):
                            found[t.id] = None if node.value is None else ast.literal_eval(node.value)
        except (OSError, SyntaxError, ValueError):
            return None
        if "revision" not in found:
            continue
        if not isinstance(found["revision"], str):
            return None
        revisions.add(found["revision"])
        down = found.get("down_revision")
        downs.update([down] if isinstance(down, str) else list(down or ()))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _at_head_sync(connection: Any) -> bool:
    """True when the database's ``alembic_version`` holds exactly the head revision of the files
    (read on the connection that would migrate: no second connect, no failed statement)."""
    head = _head_from_files()
    if head is None or not inspect(connection).has_table("alembic_version"):
        return False
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return [r[0] for r in rows] == [head]


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
