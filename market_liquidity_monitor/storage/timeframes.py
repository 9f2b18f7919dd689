"""Timeframe strings (ccxt style: ``1s``, ``1m``, ``5m``, ``1h``, ``4h``, ``1d``, ``1w``) and their lengths."""

from __future__ import annotations

import re

from market_liquidity_monitor.domain.errors import InvalidInputError

_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_TF = re.compile(r"^(\d+)([smhdw])$")

SECONDS_PER_YEAR = 365 * 86_400  # crypto markets trade every day of the year


def timeframe_seconds(timeframe: str) -> int:
    """Length of a timeframe in seconds; raises ``InvalidInputError`` for an unknown form
    (months are not supported: they have no fixed length)."""
    m = _TF.match(timeframe.strip())
    if not m or int(m.group(1)) <= 0:
        raise InvalidInputError(
            f"Invalid timeframe {timeframe!r}: use <n><unit> with unit s, m, h, d or w (e.g. 1m, 5m, 1h, 1d)."
        )
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def timeframe_ms(timeframe: str) -> int:
    return timeframe_seconds(timeframe) * 1000


def periods_per_year(timeframe: str) -> float:
    """Number of ``timeframe`` periods in a 365-day year (the annualisation factor's square)."""
    return SECONDS_PER_YEAR / timeframe_seconds(timeframe)
