"""Property-based run of the OpenAPI schema (schemathesis strategies, hypothesis underneath):
generated requests to every operation, sent to the app on the recorded data, never get a 5xx.
Examples are limited so the run takes about a minute.

(schemathesis' own pytest plugin does not run under pytest 9 yet, so the operations are
parametrized here and each one is driven by ``hypothesis.given`` on its case strategy.)"""

from __future__ import annotations

import json

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


BODY_OPERATIONS = [op for op in OPERATIONS if op.body]
HOSTILE_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "1" + "0" * 5000]


def _number_fields(schema: dict, components: dict) -> list[str]:
    ref = schema.get("$ref")
    if ref:
        schema = components[ref.rsplit("/", 1)[-1]]
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        kinds = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
        if kinds & {"number", "integer"}:
            out.append(name)
    return out


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=[op.label for op in BODY_OPERATIONS])
def test_hostile_bodies_never_get_a_server_error(live_client, operation):
    """Every operation with a JSON body: each number field set to a non-finite or endless
    literal (422 naming that field), a 2 MB body (413), a NUL in every string (422): never a 5xx."""
    components = SCHEMA.raw_schema.get("components", {}).get("schemas", {})
    body_schema = operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
    ref = body_schema.get("$ref")
    resolved = components[ref.rsplit("/", 1)[-1]] if ref else body_schema
    base = (
        {k: v for k, v in (resolved.get("examples") or [{}])[0].items()} if resolved.get("examples") else {}
    )
    url = operation.path.replace("{", "").replace("}", "")
    numbers = _number_fields(body_schema, components)
    for field in numbers:
        for literal in HOSTILE_NUMBERS:
            doc = json.dumps({**base, field: 1}).replace(f'"{field}": 1', f'"{field}": {literal}')
            r = live_client.request(
                operation.method.upper(), url, content=doc, headers={"content-type": "application/json"}
            )
            assert r.status_code == 422, (operation.label, field, literal, r.text[:300])
            err = r.json()["detail"][0]
            if literal.startswith("1000"):  # json.loads refuses it before any field is known
                assert err["type"] == "number_too_long" and err["loc"] == ["body"]
            else:
                assert err["type"] == "finite_number" and err["loc"] == ["body", field]
    r = live_client.request(
        operation.method.upper(), url, content=b'{"x": "' + b"a" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 413 and len(r.content) < 1000
    for field, value in base.items():
        if isinstance(value, str):
            r = live_client.request(operation.method.upper(), url, json={**base, field: value + "\x00"})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field]
