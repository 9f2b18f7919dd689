"""Is the database down? The timeouts the API uses, and telling an outage from a bug.

- ``db_engine_options(settings, url)``: keyword arguments for ``storage.db.Database`` that bound
  how long a caller waits for PostgreSQL: ``api.db_connect_timeout_s`` to connect (asyncpg
  ``timeout``), ``api.db_statement_timeout_s`` per statement (asyncpg ``command_timeout``, which
  also bounds the pool's pre-ping) and for a free pooled connection (SQLAlchemy ``pool_timeout``).
  SQLite keeps ``storage.db``'s settings (a local file has no network to wait on).
- ``storage_unavailable(exc)``: the reason when ``exc`` means "the database cannot be reached or
  did not answer in time" (connection refused/reset/closed, connect or statement timeout, server
  shutting down, too many connections, pool exhausted) and it was raised by the storage stack
  (SQLAlchemy, asyncpg, aiosqlite, Alembic or ``market_liquidity_monitor.storage``: asyncpg raises
  a refused connection as a bare ``OSError``); None otherwise, so a real bug stays a 500.
"""

from __future__ import annotations

import traceback
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from market_liquidity_monitor.config import Settings

_STORAGE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "alembic", "market_liquidity_monitor.storage")


def db_engine_options(settings: Settings, url: str) -> dict[str, Any]:
    """``Database(url, **db_engine_options(settings, url))``: the API's timeouts (module doc)."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "postgresql":
        return {}
    api = settings.api
    opts: dict[str, Any] = {
        "connect_timeout_s": api.db_connect_timeout_s,
        "pool_timeout": api.db_statement_timeout_s,
    }
    if sa_url.get_driver_name() == "asyncpg":
        opts["connect_args"] = {"command_timeout": api.db_statement_timeout_s}
    return opts


def _raised_in_storage(exc: BaseException) -> bool:
    for e in _chain(exc):
        for frame, _ in traceback.walk_tb(e.__traceback__):
            mod = frame.f_globals.get("__name__", "")
            if mod.startswith(_STORAGE_MODULES):
                return True
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen and len(seen) < 10:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def _asyncpg_outage(e: BaseException) -> bool:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(
        e,
        asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError
        | asyncpg.exceptions.TooManyConnectionsError,
    )


def describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "the database did not answer in time (timeout)"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:200] if msg else type(e).__name__


def storage_unavailable(exc: BaseException) -> str | None:
    """Why the database is unavailable, if ``exc`` says so (module doc); else None."""
    for e in _chain(exc):
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return describe(e.orig or e)
        if isinstance(e, sa_exc.TimeoutError):  # pool exhausted: every connection is stuck
            return "no database connection free within the timeout (pool exhausted)"
        if isinstance(e, sa_exc.OperationalError | sa_exc.InterfaceError) and not isinstance(
            e, sa_exc.ProgrammingError
        ):
            orig = e.orig
            if orig is None or _asyncpg_outage(orig) or isinstance(orig, OSError | TimeoutError):
                return describe(orig or e)
            if type(orig).__module__.startswith("sqlite3"):
                return None  # SQLite "database is locked"/"no such table" are not outages
            return describe(orig)
        if _asyncpg_outage(e) or isinstance(e, ConnectionError | TimeoutError):
            return describe(e) if _raised_in_storage(exc) else None
        if isinstance(e, OSError) and e.errno is not None and _raised_in_storage(exc):
            return describe(e)
    return None


__all__ = ["db_engine_options", "describe", "storage_unavailable"]
