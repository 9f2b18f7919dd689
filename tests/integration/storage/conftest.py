"""Storage fixtures: a migrated database per test on SQLite (always) and PostgreSQL
(``MLM_TEST_POSTGRES_URL``, skipped when unset or unreachable). Each PostgreSQL test gets its own
schema, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.migrations import upgrade_async


async def _pg_admin_connect(url: str):
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return await asyncpg.connect(
        user=u.username, password=u.password, host=u.host or "127.0.0.1", port=u.port or 5432,
        database=u.database, timeout=3,
    )  # fmt: skip


async def pg_url_or_skip() -> str:
    url = os.environ.get("MLM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("MLM_TEST_POSTGRES_URL not set")
    try:
        conn = await asyncio.wait_for(_pg_admin_connect(url), 5)
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {url} not reachable: {exc}")
    await conn.close()
    return url


class PgSchema:
    """A fresh schema in the test database; ``drop()`` removes it with everything in it."""

    def __init__(self, url: str):
        self.url = url
        self.name = f"mlm_test_{uuid.uuid4().hex[:12]}"

    async def drop(self) -> None:
        conn = await _pg_admin_connect(self.url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
async def pg_schema() -> AsyncIterator[PgSchema]:
    url = await pg_url_or_skip()
    schema = PgSchema(url)
    try:
        yield schema
    finally:
        await schema.drop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{(tmp_path / 'mlm.sqlite3').as_posix()}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated ``Database`` on each backend."""
    schema: PgSchema | None = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{(tmp_path / 'mlm.sqlite3').as_posix()}"
        database = Database(url)
    else:
        schema = PgSchema(await pg_url_or_skip())
        url = schema.url
        database = Database(url, schema=schema.name)
    try:
        await upgrade_async(url, schema=schema.name if schema else None)
        yield database
    finally:
        await database.dispose()
        if schema is not None:
            await schema.drop()
