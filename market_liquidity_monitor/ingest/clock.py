"""Injectable time. Every component asks a ``Clock`` for now; replay uses the recording's time."""

from __future__ import annotations

import time
from typing import Protocol

from market_liquidity_monitor.domain.time import iso_ns

__all__ = ["Clock", "ReplayClock", "WallClock", "iso_ns"]


class Clock(Protocol):
    def now_ns(self) -> int: ...


class WallClock:
    """Live mode: wall-clock time (ns since the Unix epoch)."""

    def now_ns(self) -> int:
        return time.time_ns()


class ReplayClock:
    """Replay mode: "now" is the receive time of the last replayed record."""

    def __init__(self, start_ns: int = 0):
        self._now = start_ns

    def advance(self, ts_ns: int) -> None:
        if ts_ns > self._now:
            self._now = ts_ns

    def now_ns(self) -> int:
        return self._now
