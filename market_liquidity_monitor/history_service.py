"""Candle history for the assistant and the API: one ``Database`` per event loop, migrated on
first use, and (on recorded data) the candle files of ``data_dir`` imported once if missing."""

from __future__ import annotations

import asyncio
import logging

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.storage import migrations
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.history import History
from market_liquidity_monitor.storage.importers import import_path

log = logging.getLogger(__name__)

# Timeframes tried for a lookback, finest first: enough points without reading months of 1m bars.
_TIMEFRAMES_BY_DAYS = ((2, ("1m", "5m", "1h")), (14, ("5m", "1m", "1h")), (10**9, ("1h", "5m", "1m")))


class HistoryService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._db: Database | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._imported = False
        self._lock: asyncio.Lock | None = None

    async def history(self) -> History:
        loop = asyncio.get_running_loop()
        if self._db is None or self._loop is not loop:
            url = self.settings.effective_database_url
            await migrations.upgrade_async(url)
            self._db, self._loop, self._lock = Database(url), loop, asyncio.Lock()
        return History(self._db)

    async def coverage(self, venue: str, symbol: str) -> list[dict]:
        """Stored series for ``symbol`` on ``venue``; imports ``data_dir``'s candle files once when
        nothing is stored and the app runs on recorded data."""
        h = await self.history()
        cov = await h.coverage(venue, symbol)
        if not cov and self.settings.data_dir is not None and not self._imported:
            async with self._lock:
                if not self._imported:
                    log.info("importing candle files from %s", self.settings.data_dir)
                    await import_path(h.db, self.settings.data_dir, include_recordings=False)
                    self._imported = True
            cov = await h.coverage(venue, symbol)
        return cov

    @staticmethod
    def pick_timeframe(coverage: list[dict], lookback_days: float) -> dict | None:
        by_tf = {c["timeframe"]: c for c in coverage}
        for max_days, order in _TIMEFRAMES_BY_DAYS:
            if lookback_days <= max_days:
                for tf in order:
                    if tf in by_tf:
                        return by_tf[tf]
        return next(iter(coverage), None)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None
