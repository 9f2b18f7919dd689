"""Property-based run of the OpenAPI schema (schemathesis strategies, hypothesis underneath):
generated requests to every operation, sent to the app on the recorded data, never get a 5xx.
Examples are limited so the run takes about a minute.

(schemathesis' own pytest plugin does not run under pytest 9 yet, so the operations are
parametrized here and each one is driven by ``hypothesis.given`` on its case strategy.)"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings

SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
OPERATIONS = [r.ok() for r in SCHEMA.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors(live_client, operation):
    @settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        kw = case.as_transport_kwargs(base_url="http://testserver")
        r = live_client.request(
            kw["method"],
            kw["url"],
            params=kw.get("params"),
            headers=kw.get("headers"),
            json=kw.get("json"),
            content=kw.get("data") if isinstance(kw.get("data"), bytes | str) else None,
        )
        assert r.status_code < 500, (
            f"{case.method} {kw['url']} {kw.get('params')} {kw.get('json')} -> {r.text[:300]}"
        )

    run()


def test_every_operation_is_covered():
    paths = {op.path for op in OPERATIONS}
    assert {"/api/compare", "/api/execute", "/api/backtest", "/api/pairs", "/api/export"} <= paths
