"""Argument types of the tools (``agent/tools.py``) for a model's tool schema.

Closed sets are ``Literal`` types (a JSON-schema ``enum`` the model sees) built from the product's
own enums, so the schema and the services accept the same values (no second list):

- ``TradeSide``: ``domain.instrument.Side`` (``buy``/``sell``). The aliases ``Side.parse`` accepts
  (``long``/``ask`` -> buy, ``short``/``bid`` -> sell, any case) are mapped before the check, so a
  loose model still gets its answer; anything else is refused with the valid values.
- ``ExecutionSchedule``: ``analytics.backtest.Schedule``; ``AlertMetricName``, ``AlertComparison``,
  ``AlertDepthSide``: ``analytics.alerts``' ``AlertMetric``, ``Comparison``, ``DepthSide``.
- ``Timeframe`` is open (each venue lists its own): a ``<n><unit>`` pattern, unit s, m, h, d, w or
  M (month), as ``storage.timeframes`` parses it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from market_liquidity_monitor.analytics.alerts import AlertMetric, Comparison, DepthSide
from market_liquidity_monitor.analytics.backtest import Schedule
from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.domain.instrument import Side


def _literal(enum: Any) -> Any:
    return Literal[tuple(m.value for m in enum)]  # type: ignore[valid-type]


def _side_alias(value: Any) -> Any:
    """``Side.parse``'s aliases to ``buy``/``sell``; anything else unchanged (the Literal refuses it)."""
    if isinstance(value, str):
        try:
            return Side.parse(value).value
        except MLMError:
            return value
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


TradeSide = Annotated[_literal(Side), BeforeValidator(_side_alias)]
ExecutionSchedule = Annotated[_literal(Schedule), BeforeValidator(_lower)]
AlertMetricName = Annotated[_literal(AlertMetric), BeforeValidator(_lower)]
AlertComparison = Annotated[_literal(Comparison), BeforeValidator(_lower)]
AlertDepthSide = Annotated[_literal(DepthSide), BeforeValidator(_lower)]
Timeframe = Annotated[str, Field(pattern=r"^[1-9][0-9]*[smhdwM]$")]

__all__ = [
    "AlertComparison",
    "AlertDepthSide",
    "AlertMetricName",
    "ExecutionSchedule",
    "Timeframe",
    "TradeSide",
]
