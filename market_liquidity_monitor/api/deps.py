"""FastAPI dependencies: the objects the lifespan builds once, read from ``app.state``.

``Annotated`` aliases (``MarketDep``, ``SettingsDep``...) keep endpoint signatures short, as in the
FastAPI full-stack template.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.data_engine.engine import DataEngine
from market_liquidity_monitor.history_service import HistoryService
from market_liquidity_monitor.market_data import MarketData


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_market(request: Request) -> MarketData:
    return request.app.state.market


def get_assistant(request: Request) -> Assistant:
    return request.app.state.assistant


def get_engine(request: Request) -> DataEngine:
    return request.app.state.engine


def get_history(request: Request) -> HistoryService:
    return request.app.state.history


def get_status(request: Request) -> Any:
    return request.app.state.status


def get_hub(request: Request) -> Any:
    return request.app.state.hub


def get_alerts(request: Request) -> Any:
    return request.app.state.alerts


SettingsDep = Annotated[Settings, Depends(get_settings)]
MarketDep = Annotated[MarketData, Depends(get_market)]
AssistantDep = Annotated[Assistant, Depends(get_assistant)]
EngineDep = Annotated[DataEngine, Depends(get_engine)]
HistoryDep = Annotated[HistoryService, Depends(get_history)]
StatusDep = Annotated[Any, Depends(get_status)]
HubDep = Annotated[Any, Depends(get_hub)]
AlertsDep = Annotated[Any, Depends(get_alerts)]
