"""Timestamp formatting shared by every layer."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_ns(ts_ns: int | None) -> str | None:
    """ns since epoch -> ISO 8601 UTC with millisecond precision (``2024-08-09T00:05:04.123Z``)."""
    if ts_ns is None:
        return None
    return (
        datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
