"""Async SQLAlchemy engine and session factory from a database URL.

* ``sqlite+aiosqlite:///path/mlm.sqlite3`` (the embedded default, ``settings.effective_database_url``):
  the parent directory is created; WAL journal, ``synchronous=NORMAL``, foreign keys on, 30 s busy
  timeout.
* ``postgresql+asyncpg://user@host:5432/db``: pre-ping on checkout (a restarted server's dead
  connections are replaced), connect timeout ``connect_timeout_s``. ``schema`` sets the
  connection's ``search_path``, so one database can hold isolated schemas (tests use one per test).

Build one ``Database`` per process (lifespan or CLI command) and ``await db.dispose()`` at the end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from market_liquidity_monitor.config import Settings


def make_engine(
    url: str,
    *,
    schema: str | None = None,
    connect_timeout_s: float = 5.0,
    echo: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """An ``AsyncEngine`` for ``url`` with the per-dialect settings described in the module doc."""
    sa_url = make_url(url)
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        database = sa_url.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in str(sa_url)
        if not in_memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if in_memory:
            kwargs.setdefault("poolclass", StaticPool)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", 30)
        engine = create_async_engine(sa_url, echo=echo, connect_args=connect_args, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if backend == "postgresql":
        connect_args = kwargs.pop("connect_args", {})
        if sa_url.get_driver_name() == "asyncpg":
            connect_args.setdefault("timeout", connect_timeout_s)
            connect_args.setdefault("command_timeout", 120)
            if schema:
                connect_args.setdefault("server_settings", {})["search_path"] = schema
        elif schema:
            connect_args.setdefault("options", f"-csearch_path={schema}")
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(sa_url, echo=echo, connect_args=connect_args, **kwargs)
    return create_async_engine(sa_url, echo=echo, **kwargs)


class Database:
    """An engine plus its session factory. ``url`` and ``schema`` as for ``make_engine``."""

    def __init__(self, url: str, *, schema: str | None = None, **engine_kwargs: Any):
        self.url = url
        self.schema = schema
        self.engine: AsyncEngine = make_engine(url, schema=schema, **engine_kwargs)
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    @classmethod
    def from_settings(cls, settings: Settings, **engine_kwargs: Any) -> Database:
        """The database of ``settings.effective_database_url`` (SQLite under ``home_dir`` by default)."""
        return cls(settings.effective_database_url, **engine_kwargs)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session committed on success and rolled back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection inside one transaction."""
        async with self.engine.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return (
            f"Database({make_url(self.url).render_as_string(hide_password=True)!r}, schema={self.schema!r})"
        )


def run_sync(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``coro_fn()`` to completion from sync code (CLI commands). Inside a running event loop
    (e.g. called from async start-up code or a test) it runs on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coroutine(coro_fn))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(_as_coroutine(coro_fn))
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="mlm-run-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


async def _as_coroutine(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return await coro_fn()
