"""Storage (database) outages seen from the API: 503 with a reason, and a state that
``/api/status`` reports. Timeouts and the outage classification are in ``storage/outage.py``.

- ``StorageMonitor``: ``state`` ``ok``/``down``/``unknown`` with ``last_error`` and ``since`` (ISO
  UTC of the last change), updated by every storage error the API maps to 503 and by a probe task
  (``SELECT 1`` through ``HistoryService``, every ``probe_interval_s``; every ``probe_interval_s / 4``
  while down), which also reconnects (and migrates) as soon as the database is back.
- ``install_storage_handlers(app)``: exception handlers turning those errors into
  ``503 {"detail": "storage unavailable: ...", "storage": {...}}``; anything else stays the app's 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.storage.outage import describe, storage_unavailable

log = logging.getLogger(__name__)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StorageMonitor:
    """The database's state as the API last saw it; ``start()``/``stop()`` run the probe task.

    ``history``: the app's ``HistoryService`` (its ``history()`` connects and migrates)."""

    def __init__(self, settings: Settings, history: Any, *, probe_interval_s: float | None = None):
        self.settings = settings
        self.history = history
        self.probe_interval_s = probe_interval_s or settings.api.db_probe_interval_s
        url = make_url(settings.effective_database_url)
        self.backend = url.get_backend_name()
        self.target = url.render_as_string(hide_password=True)
        self.state = "unknown"
        self.last_error: str | None = None
        self.since = time.time()
        self.checked_at: float | None = None
        self.failures = 0
        self._task: asyncio.Task | None = None

    def record_ok(self) -> None:
        self.checked_at = time.time()
        if self.state != "ok":
            if self.state == "down":
                log.warning("storage %s is back after %.1f s", self.target, time.time() - self.since)
            self.state, self.since = "ok", time.time()

    def record_failure(self, reason: str) -> None:
        self.checked_at = time.time()
        self.failures += 1
        self.last_error = reason
        if self.state != "down":
            log.warning("storage %s unavailable: %s", self.target, reason)
            self.state, self.since = "down", time.time()

    def snapshot(self) -> dict[str, Any]:
        """``{"backend", "state", "last_error", "since", "checked_at", "failures"}`` (ISO UTC times)."""
        return {
            "backend": self.backend,
            "state": self.state,
            "last_error": self.last_error,
            "since": _iso(self.since),
            "checked_at": None if self.checked_at is None else _iso(self.checked_at),
            "failures": self.failures,
        }

    async def probe(self) -> bool:
        """One ``SELECT 1`` through the app's history database (connecting/migrating first)."""
        timeout = self.settings.api.db_connect_timeout_s + self.settings.api.db_statement_timeout_s
        try:
            async with asyncio.timeout(timeout * 2):
                h = await self.history.history()
                async with h.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.record_failure(storage_unavailable(exc) or describe(exc))
            return False
        self.record_ok()
        return True

    async def _run(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.probe_interval_s / (4 if self.state == "down" else 1))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mlm-storage-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def install_storage_handlers(app: FastAPI) -> None:
    """503 with the reason for storage outages (``storage_unavailable``); other errors: the app's 500."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        reason = storage_unavailable(exc)
        monitor: StorageMonitor | None = getattr(request.app.state, "storage", None)
        if reason is None:
            fallback = request.app.exception_handlers.get(Exception)
            if fallback is not None:
                return await fallback(request, exc)
            raise exc
        if monitor is not None:
            monitor.record_failure(reason)
        log.warning("storage unavailable on %s %s: %s", request.method, request.url.path, reason)
        return JSONResponse(
            status_code=503,
            content={
                "detail": f"storage unavailable: {reason}; retry once the database is back (see /api/status)",
                "storage": None if monitor is None else monitor.snapshot(),
            },
            headers={"Retry-After": "5"},
        )

    import asyncpg

    for cls in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError):  # fmt: skip
        app.add_exception_handler(cls, handler)


__all__ = ["StorageMonitor", "install_storage_handlers"]
