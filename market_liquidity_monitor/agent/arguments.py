"""Argument types of the tools (``agent/tools.py``) for a model's tool schema.

Closed sets are advertised as a JSON-schema ``enum`` (``WithJsonSchema``) built from the product's
own enums, so the schema lists exactly the values the services accept:

- ``TradeSide``: ``domain.instrument.Side`` (``buy``/``sell``);
- ``ExecutionSchedule``: ``analytics.backtest.Schedule``;
- ``AlertMetricName``, ``AlertComparison``, ``AlertDepthSide``: ``analytics.alerts``'
  ``AlertMetric``, ``Comparison``, ``DepthSide``;
- ``HistoryMetric``, ``DepthUnit``, ``HistoryPeriod``: ``services.history``'s metrics, units, periods;
- ``Timeframe`` is open (each venue lists its own): a ``<n><unit>`` pattern, unit s, m, h, d, w or
  M (month), the form ``storage.timeframes`` parses.

The schema is what the model is told; the check stays where it is, in the services
(``Side.parse``, ``Schedule(...)``, ``AlertSpec``...): their messages name the valid values, the
aliases they accept (``long``/``short``, any case) keep working, and a tool that gathers its
argument problems (``agent/retries.py``) still reports a bad side together with a bad size and
venue in one retry, instead of pydantic refusing the side alone first.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import WithJsonSchema

from market_liquidity_monitor.analytics.alerts import AlertMetric, Comparison, DepthSide
from market_liquidity_monitor.analytics.backtest import Schedule
from market_liquidity_monitor.domain.instrument import Side
from market_liquidity_monitor.services.history import HISTORY_METRICS


def _enum(enum: Any) -> Any:
    return WithJsonSchema({"type": "string", "enum": [m.value for m in enum]})


TradeSide = Annotated[str, _enum(Side)]
ExecutionSchedule = Annotated[str, _enum(Schedule)]
AlertMetricName = Annotated[str, _enum(AlertMetric)]
AlertComparison = Annotated[str, _enum(Comparison)]
AlertDepthSide = Annotated[str, _enum(DepthSide)]
Timeframe = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^[1-9][0-9]*[smhdwM]$"})]
# Liquidity history (services/history.py): the stored metrics, depth units, named periods.
HistoryMetric = Annotated[str, WithJsonSchema({"type": "string", "enum": list(HISTORY_METRICS)})]
DepthUnit = Annotated[str, WithJsonSchema({"type": "string", "enum": ["quote", "base"]})]
HistoryPeriod = Annotated[str, WithJsonSchema({"type": "string", "enum": ["today"]})]

__all__ = [
    "AlertComparison",
    "AlertDepthSide",
    "AlertMetricName",
    "ExecutionSchedule",
    "Timeframe",
    "TradeSide",
]
