"""Helpers shared by tests: the service container and the assistant over an existing book store, and
a Decimal walk of book levels (an independent reference for VWAP figures)."""

from __future__ import annotations

from decimal import Decimal

from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.services import Services


def services_for(settings: Settings, market: MarketData, *, persist_alerts: bool = False) -> Services:
    """A ``Services`` container over ``market`` (alert rules in memory unless ``persist_alerts``)."""
    return Services.build(settings, market=market, persist_alerts=persist_alerts)


def assistant_for(settings: Settings, market: MarketData, **kw) -> Assistant:
    """The assistant over a fresh ``Services`` container of ``market``."""
    return Assistant(settings, services_for(settings, market), **kw)


def decimal_vwap(prices, sizes, size: Decimal) -> Decimal:
    """VWAP of ``size`` base units walking (price, size) levels best first, in Decimal (each float
    level read through ``repr``, as printed); asserts the levels fill the whole size."""
    left, notional = size, Decimal(0)
    for p, q in zip(prices, sizes, strict=True):
        take = min(left, Decimal(repr(float(q))))
        notional += take * Decimal(repr(float(p)))
        left -= take
        if left == 0:
            break
    assert left == 0, "the levels must fill the whole size"
    return notional / size
