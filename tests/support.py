"""Helpers shared by tests: the service container and the assistant over an existing book store."""

from __future__ import annotations

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
