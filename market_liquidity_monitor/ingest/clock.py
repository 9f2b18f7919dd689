"""Injectable time. Every component asks a ``Clock`` for now; replay uses the recording's time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


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


def iso_ns(ts_ns: int | None) -> str | None:
    """ns since epoch -> ISO 8601 UTC with millisecond precision (``2024-08-09T00:05:04.123Z``)."""
    if ts_ns is None:
        return None
    return (
        datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
