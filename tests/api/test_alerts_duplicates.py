"""A rule identical to a stored one (same book, metric, condition, threshold and metric parameters)
is refused with a message naming the existing rule, in the service and through the API (422)."""

from __future__ import annotations

import asyncio

import pytest

from market_liquidity_monitor.alerts_service import AlertService
from market_liquidity_monitor.domain.errors import InvalidInputError

SPREAD = {
    "symbol": "BTC/USDT",
    "venue": "binance",
    "metric": "spread_bps",
    "comparison": "above",
    "threshold": 5,
}


def test_service_refuses_a_duplicate_rule_naming_the_existing_one(api_market):
    async def run() -> None:
        svc = AlertService(api_market)
        first = await svc.create_rule(SPREAD)
        # The same rule, also when typed with the base asset only, another name or cooldown.
        for again in (SPREAD, {**SPREAD, "symbol": "BTC"}, {**SPREAD, "name": "again", "cooldown_s": 60}):
            with pytest.raises(InvalidInputError, match=rf"identical rule already exists: id {first.id} "):
                await svc.create_rule(again)
        # A different threshold, every venue instead of one, or another depth window are new rules.
        other = await svc.create_rule({**SPREAD, "threshold": 6})
        anywhere = await svc.create_rule({k: v for k, v in SPREAD.items() if k != "venue"})
        depth = {
            **SPREAD,
            "metric": "depth_notional",
            "comparison": "below",
            "threshold": 1e6,
            "window_bps": 50,
        }
        d50 = await svc.create_rule(depth)
        d25 = await svc.create_rule({**depth, "window_bps": 25})
        with pytest.raises(InvalidInputError, match=rf"id {d50.id} "):
            await svc.create_rule({**depth, "side": "both"})  # "both" is the default side
        assert len({first.id, other.id, anywhere.id, d50.id, d25.id}) == 5
        assert len(await svc.list_rules()) == 5
        # Once deleted, the rule can be created again.
        assert await svc.delete_rule(first.id)
        assert (await svc.create_rule(SPREAD)).id not in (None, first.id)

    asyncio.run(run())


def test_api_answers_422_for_a_duplicate_rule(live_client):
    rule = {**SPREAD, "threshold": 123.5, "name": "duplicate-check"}
    r = live_client.post("/api/alerts", json=rule)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    try:
        again = live_client.post("/api/alerts", json={**rule, "name": "duplicate-check 2"})
        assert again.status_code == 422, again.text
        assert f"identical rule already exists: id {rid}" in again.json()["detail"]
        assert [a["id"] for a in live_client.get("/api/alerts").json()].count(rid) == 1
    finally:
        assert live_client.delete(f"/api/alerts/{rid}").status_code == 204
