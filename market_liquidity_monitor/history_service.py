"""Candle history for the assistant and the API: one ``Database`` per event loop, migrated on
first use, and (on recorded data) the candle files of ``data_dir`` imported once if missing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

import pandas as pd

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.storage import migrations
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.history import History, NoHistoryError
from market_liquidity_monitor.storage.importers import import_path
from market_liquidity_monitor.storage.timeframes import timeframe_ms

log = logging.getLogger(__name__)

# Timeframes tried for a lookback, finest first: enough points without reading months of 1m bars.
_TIMEFRAMES_BY_DAYS = ((2, ("1m", "5m", "1h")), (14, ("5m", "1m", "1h")), (10**9, ("1h", "5m", "1m")))
# A stored series whose last candle is this much older than the newest one is an older capture.
_SAME_CAPTURE_MS = 86_400_000


def default_pair(symbol: str, settings: Settings) -> str:
    """``symbol`` in upper case; a bare base asset ("btc") gets the default quote ("BTC/USDT")."""
    s = symbol.strip().upper()
    return s if "/" in s else f"{s}/{settings.agent.default_quote}"


@dataclass(frozen=True)
class CandleWindow:
    """The ``[start_ms, end_ms)`` epoch-ms window of ``timeframe`` candles of ``symbol`` on ``venue``
    that ends just after ``series['last_ts_ms']``; ``series`` is the stored coverage row it ends at
    (its timeframe is the stored one, which ``timeframe`` is resampled from when they differ)."""

    venue: str
    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int
    series: dict

    def ending_at(self, last_ts_ms: int) -> CandleWindow:
        """The same length of window, ending just after ``last_ts_ms`` instead."""
        shift = self.end_ms - 1 - int(last_ts_ms)
        return replace(self, start_ms=self.start_ms - shift, end_ms=self.end_ms - shift)


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

    async def window(
        self,
        venue: str,
        symbol: str,
        lookback_days: float,
        timeframe: str | None = None,
        *,
        extra_candles: int = 0,
        latest_capture: bool = False,
    ) -> CandleWindow:
        """The last ``lookback_days`` days (plus ``extra_candles`` earlier candles, e.g. a warm-up)
        ending at the last stored candle of ``symbol`` on ``venue``. The series is ``timeframe``
        when stored, else the one ``pick_timeframe`` chooses for the lookback (``timeframe`` is then
        resampled from it by ``History.candles``). With ``latest_capture`` only the series ending
        within a day of the newest one are considered (older captures of another period are ignored).
        Raises ``NoHistoryError`` listing what is stored on ``venue`` when nothing is stored."""
        cov = await self.coverage(venue, symbol)
        if not cov:
            h = await self.history()
            raise NoHistoryError(f"No candles stored for {symbol} on {venue}.", await h.coverage(venue, None))
        if latest_capture:
            newest = max(int(c["last_ts_ms"]) for c in cov)
            cov = [c for c in cov if newest - int(c["last_ts_ms"]) <= _SAME_CAPTURE_MS]
        series = next((c for c in cov if c["timeframe"] == timeframe), None) if timeframe else None
        series = series or self.pick_timeframe(cov, lookback_days)
        tf = timeframe or series["timeframe"]
        end_ms = int(series["last_ts_ms"]) + 1
        start_ms = end_ms - int(lookback_days * 86_400_000) - extra_candles * timeframe_ms(tf)
        return CandleWindow(venue, symbol, tf, start_ms, end_ms, series)

    async def candles(self, window: CandleWindow) -> pd.DataFrame:
        """The candles of ``window`` (``History.candles``: resampled when needed; raises ``NoHistoryError``)."""
        h = await self.history()
        return await h.candles(window.symbol, window.venue, window.timeframe, window.start_ms, window.end_ms)

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
