"""Alert endpoints over ``AlertService``: create/list/delete rules, recent events; fired events are
also pushed to the WebSocket clients (``{"type": "alert", "event": {...}}``).

The service keeps rules and events in the app's database (the same one as the candle history),
and evaluates the rules at ``analytics.tick_hz`` once the watched books are loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from market_liquidity_monitor.api.deps import AlertsDep
from market_liquidity_monitor.api.stream import StreamHub
from market_liquidity_monitor.storage.outage import storage_unavailable

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertCreate(BaseModel):
    """A rule: fire when ``metric`` on ``symbol`` (one venue, or every venue when omitted) is
    ``comparison`` ``threshold`` (threshold in the metric's unit: quote units for mid_price and
    depth_notional, base units for depth_size/volume, bps for spread_bps/volatility, a pure number
    for imbalance/zscore). See ``analytics/alerts.py`` for definitions."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTC/USDT",
                    "venue": "binance",
                    "metric": "spread_bps",
                    "comparison": "above",
                    "threshold": 2,
                },
                {
                    "symbol": "BTC/USDT",
                    "metric": "depth_notional",
                    "comparison": "below",
                    "threshold": 1_000_000,
                    "window_bps": 10,
                    "side": "both",
                },
            ]
        },
    )

    symbol: str = Field(
        min_length=1, max_length=40, description="Unified symbol (BTC/USDT); with a venue, BTC works."
    )
    metric: Literal[
        "mid_price",
        "spread_bps",
        "depth_notional",
        "depth_size",
        "imbalance",
        "zscore",
        "volume",
        "volatility",
    ]
    comparison: Literal["above", "below", "crosses_above", "crosses_below", "crosses"]
    threshold: float = Field(allow_inf_nan=False, ge=-1e15, le=1e15)
    venue: str | None = Field(
        default=None, min_length=1, max_length=40, description="ccxt id; omitted = every venue"
    )
    name: str | None = Field(default=None, max_length=128)
    cooldown_s: float = Field(default=300.0, ge=0, le=86_400 * 30, allow_inf_nan=False)
    rearm: Literal["cooldown", "clear"] = "cooldown"
    window_bps: float | None = Field(
        default=None, gt=0, le=10_000, allow_inf_nan=False, description="depth_*, imbalance"
    )
    side: Literal["both", "bid", "ask"] | None = Field(default=None, description="depth_* only")
    lookback: int | None = Field(
        default=None, ge=1, le=4096, description="observations: zscore >= 2, volatility >= 1"
    )
    source: Literal["mid_price", "spread_bps", "pair_spread"] | None = Field(
        default=None, description="zscore only"
    )
    period_s: float | None = Field(
        default=None, gt=0, le=86_400 * 30, allow_inf_nan=False, description="volume only"
    )


@router.post("", status_code=201, summary="Create an alert rule")
async def create_alert(body: AlertCreate, alerts: AlertsDep) -> dict:
    """Store a rule and return it with its ``id``. Errors: 422 a parameter that does not apply to
    the metric or is missing (the message lists the valid ones); 404 unknown venue/symbol."""
    rule = await alerts.create_rule(body.model_dump(exclude_none=True))
    return rule.to_dict()


@router.get("", summary="List alert rules")
async def list_alerts(alerts: AlertsDep) -> list[dict]:
    """Every rule, oldest first."""
    return [r.to_dict() for r in await alerts.list_rules()]


@router.get("/events", summary="Recent alert events")
async def alert_events(
    alerts: AlertsDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Most events returned, newest first.")] = 50,
    symbol: Annotated[str | None, Query(max_length=40)] = None,
    venue: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict]:
    """Fired events, newest first: rule, venue, symbol, metric, comparison, threshold, value,
    previous_value, ts (ISO UTC), book_ts, message."""
    events = await alerts.recent_events(limit, symbol=symbol, venue=venue)
    return [e.model_dump(mode="json") for e in events]


@router.delete("/{alert_id}", status_code=204, summary="Delete an alert rule")
async def delete_alert(
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="Rule id (a 64-bit row id).")],
    alerts: AlertsDep,
) -> None:
    """Errors: 404 when no rule has this id (the message lists the ids that exist)."""
    if not await alerts.delete_rule(alert_id):
        ids = [r.id for r in await alerts.list_rules()]
        raise HTTPException(
            status_code=404, detail=f"no alert rule with id {alert_id}; existing ids: {ids[:50]}"
        )


async def start_alerts(app: FastAPI, services: Any, hub: StreamHub):
    """Start the services' alert rules (loaded from the database, which is connected on use, so a
    database that is down at start only delays the rules) evaluating as data arrives, with fired
    events pushed to the stream hub; returns its stop function."""
    try:
        await services.start(watch_symbols=services.settings.api.watch_symbols)
    except Exception as exc:  # the API serves books without its database; rules load once it is back
        reason = storage_unavailable(exc)
        if reason is None:
            raise
        log.warning("alert rules not loaded, storage unavailable (retried on use): %s", reason)
        app.state.storage.record_failure(reason)
    svc = services.alerts
    svc.watch_symbols.update(s.strip().upper() for s in services.settings.api.watch_symbols)
    svc.subscribe(lambda e: hub.publish({"type": "alert", "event": e.model_dump(mode="json")}))
    app.state.alerts = svc
    readiness = app.state.readiness

    async def run() -> None:
        while not readiness.wait(0):  # evaluate once the watched books are loaded (no replay races)
            await asyncio.sleep(0.5)
        await svc.run()

    task = asyncio.create_task(run(), name="mlm-alerts")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    return stop
