"""The frontend's helpers on their own: the API client's states, response-shape helpers, charts."""

from __future__ import annotations

import json

import httpx
import pytest
from mlm_ui import charts, shapes, units
from mlm_ui.client import ApiClient, format_detail


def client_for(handler, token: str | None = None) -> ApiClient:
    return ApiClient("http://api.test/", token=token, transport=httpx.MockTransport(handler))


def test_ok_response_and_bearer_token():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        seen["url"] = str(request.url)
        return httpx.Response(200, json={"status": "ok"})

    resp = client_for(handler, token="s3cret").orderbook("binance", "BTC/USDT", levels=5)
    assert resp.ok and resp.data == {"status": "ok"} and resp.status == 200
    assert seen["auth"] == "Bearer s3cret"
    assert seen["url"] == "http://api.test/api/orderbook/binance/BTC/USDT?levels=5"


def test_no_token_no_header_and_env_configuration():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, json={})

    assert client_for(handler).health().ok and seen["auth"] is None
    c = ApiClient.from_env({"MLM_API_URL": "http://h:1/", "MLM_API__TOKEN": " t "})
    assert c.base_url == "http://h:1" and c.token == "t"
    d = ApiClient.from_env({})
    assert d.base_url == "http://127.0.0.1:8000" and d.token is None


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (404, {"detail": "Not Found"}, "not_available"),  # FastAPI: no such route
        (405, {"detail": "Method Not Allowed"}, "not_available"),
        (404, {"detail": "Unknown venue 'binanse'. Did you mean binance?"}, "http_error"),
        (503, {"detail": "book not synced"}, "http_error"),
    ],
)
def test_error_kinds(status, body, kind):
    resp = client_for(lambda r: httpx.Response(status, json=body)).post("/api/compare", {})
    assert resp.kind == kind and resp.status == status and not resp.ok
    assert resp.detail == body["detail"]


def test_validation_and_structured_details_are_readable():
    detail = [
        {"loc": ["body", "size"], "msg": "Input should be greater than 0", "type": "greater_than"},
        {"loc": ["query", "levels"], "msg": "Field required", "type": "missing"},
    ]
    assert format_detail(detail) == "size: Input should be greater than 0; query.levels: Field required"
    conflict = {"message": "needs status 'live'", "status": "degraded", "reasons": ["a: stale", "b: gap"]}
    assert format_detail(conflict) == "needs status 'live' — reasons: a: stale; b: gap"
    resp = client_for(lambda r: httpx.Response(409, json={"detail": conflict})).execute({})
    assert resp.kind == "http_error" and resp.status == 409 and "a: stale" in resp.detail


def test_non_json_error_body():
    resp = client_for(lambda r: httpx.Response(502, text="<html>bad gateway</html>")).health()
    assert resp.kind == "http_error" and "bad gateway" in resp.detail


def test_unreachable_names_the_url():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    resp = client_for(handler).chat("hi", session_id="s1")
    assert resp.kind == "unreachable" and resp.status is None
    assert resp.url == "http://api.test/api/chat" and "Connection refused" in resp.error


# ----------------------------------------------------------------------------------- shapes


def test_find_series_in_records_and_columnar_dicts():
    rows = [{"ts": "2024-01-01T00:00:00Z", "slippage_bps": 1.0}]
    assert shapes.find_series({"stats": {"a": 1}, "series": rows}) == rows
    columnar = {"series": {"ts": ["t1", "t2"], "spread": [0.1, 0.2], "zscore": [None, 1.5]}}
    assert shapes.find_series(columnar) == [
        {"ts": "t1", "spread": 0.1, "zscore": None},
        {"ts": "t2", "spread": 0.2, "zscore": 1.5},
    ]
    assert shapes.find_series({"avg": 1.0, "rows": [{"x": 1}]}) is None


def test_threshold_periods():
    rows = [{"t": i, "v": v} for i, v in enumerate([1, 300, 250, 10, 201, 5, 220])]
    assert shapes.threshold_periods(rows, "t", "v", 200) == [(1, 2), (4, 4), (6, 6)]
    assert shapes.threshold_periods(rows, "t", "v", 1000) == []


def test_period_bands_reach_the_end_of_the_last_interval():
    periods = [
        {"start": "2024-09-05T10:00:00Z", "end": "2024-09-05T10:00:00Z", "max_slippage_bps": 250},
        {"start": "2024-09-05T12:05:00Z", "end": "2024-09-05T12:20:00Z"},
        {"start": "2024-09-05T13:00:00Z"},
    ]
    assert shapes.period_bands(periods, 300) == [
        ("2024-09-05T10:00:00Z", "2024-09-05T10:05:00Z"),
        ("2024-09-05T12:05:00Z", "2024-09-05T12:25:00Z"),
    ]
    assert shapes.period_bands(periods) == [
        ("2024-09-05T10:00:00Z", "2024-09-05T10:00:00Z"),
        ("2024-09-05T12:05:00Z", "2024-09-05T12:20:00Z"),
    ]
    rows = [{"t": i, "v": v} for i, v in enumerate([1, 300, 5])]
    fig = charts.risk_series_figure(rows, "t", "v", 200, "x", bands=[(0, 2)])
    assert [(s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect"] == [(0, 2)]
    fig = charts.risk_series_figure(rows, "t", "v", 200, "x")  # no bands given: runs above 200
    assert [(s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect"] == [(1, 1)]


def test_request_schema_resolves_refs_and_optional_enums():
    spec = {
        "paths": {
            "/api/alerts": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rule"}}}
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Rule": {
                    "type": "object",
                    "required": ["metric"],
                    "properties": {
                        "metric": {"$ref": "#/components/schemas/Metric", "description": "what to watch"},
                        "side": {
                            "anyOf": [{"$ref": "#/components/schemas/Side"}, {"type": "null"}],
                            "default": None,
                        },
                    },
                },
                "Metric": {"type": "string", "enum": ["spread_bps", "imbalance"]},
                "Side": {"type": "string", "enum": ["bid", "ask"]},
            }
        },
    }
    schema = shapes.request_schema(spec, "/api/alerts", "post")
    assert schema["required"] == ["metric"]
    assert schema["properties"]["metric"] == {
        "type": "string",
        "enum": ["spread_bps", "imbalance"],
        "description": "what to watch",
    }
    assert schema["properties"]["side"]["enum"] == ["bid", "ask"]
    assert shapes.request_schema(spec, "/api/nope") is None
    assert shapes.has_path(spec, "/api/alerts", "post") and not shapes.has_path(spec, "/api/alerts", "get")


def test_book_point_and_depth_figure():
    book = {
        "symbol": "BTC/USDT",
        "book_ts": "2024-08-09T00:05:05.809Z",
        "top_of_book": {"mid_price": 100.5, "spread_bps": 99.5},
        "depth": [{"window_bps": 50.0, "bid_notional": 10.0, "ask_notional": 5.0}],
        "imbalance": [{"window_bps": 50.0, "imbalance": 0.2}],
        "bids": [[100.0, 1.0], [99.0, 2.0]],
        "asks": [[101.0, 0.5], [102.0, 1.5]],
    }
    p = shapes.book_point(book, 50.0, "now")
    assert p["spread_bps"] == 99.5 and p["imbalance"] == 0.2 and p["depth_notional"] == 15.0
    fig = charts.depth_figure(book, "t").to_plotly_json()
    bids, asks = fig["data"]
    assert list(bids["y"]) == [1.0, 3.0] and list(asks["y"]) == [0.5, 2.0]
    assert list(bids["customdata"]) == [100.0, 298.0]
    assert fig["layout"]["shapes"][0]["x0"] == 100.5


# ----------------------------------------------------------------------------------- units, files, alert form


def test_currencies_of_ccxt_unified_symbols():
    from mlm_ui.units import common_currencies, currencies

    assert currencies("BTC/USDT") == units.Currencies("BTC", "USDT")
    assert currencies("BTC/USDT:USDT") == units.Currencies("BTC", "USDT")
    assert currencies("BTC/USD:BTC") == units.Currencies("BTC", "USD")
    assert currencies("eth") == units.Currencies("ETH", None)
    assert currencies(None) == units.Currencies()
    # Rows that disagree on the quote (USDT spot, USD inverse perp) have no common quote.
    assert common_currencies(["BTC/USDT", "BTC/USD:BTC"]) == units.Currencies("BTC", None)
    assert units.label("vwap", common_currencies(["BTC/USDT"])) == "VWAP (USDT)"
    assert units.label("size", units.Currencies("BTC", None)) == "Size (BTC)"
    assert units.label("notional", units.Currencies("BTC", None)) == "Notional (quote)"
    assert units.label("foo_bar_bps") == "Foo bar (bps)"


@pytest.mark.parametrize(
    ("x", "kind", "unit", "text"),
    [
        (61602.016, "price", "", "61,602.02"),
        (0.09194, "price", "", "0.0919400"),
        (2677.605, "price", "USDT", "2,677.61 USDT"),
        (1.67183, "size", "BTC", "1.6718 BTC"),
        (1540307.6934, "notional", "USDT", "1,540,308 USDT"),
        (0.0016233, "bps", "", "0.0016 bps"),
        (10.2518, "bps", "", "10.25 bps"),
        (0.0777, "share", "", "7.8%"),
        (1000, "ratio", "", "1,000"),
        (None, "price", "", "—"),
        (True, "bool", "", "yes"),
    ],
)
def test_human_number_formats(x, kind, unit, text):
    assert units.fmt_number(x, kind, unit) == text


def test_times_and_amounts_for_reading():
    assert units.fmt_time("2024-08-09T00:05:05.809Z") == "2024-08-09 00:05:05.809"
    assert units.fmt_time("2024-09-06T03:00:00.000Z") == "2024-09-06 03:00"
    assert units.fmt_amount(5.0, "BTC") == "5 BTC" and units.fmt_amount(1234.5) == "1,234.5"
    assert units.column_format("notional", [1540307.69]) == "%,.0f"
    assert units.column_format("bps", [0.0016, 0.25]) == "%,.4f"


def test_downloads_keep_the_rows_as_the_api_gave_them(tmp_path):
    import csv
    import io

    import pyarrow.parquet as pq
    from mlm_ui import files

    rows = [
        {"venue": "binance", "vwap": 61603.56492442001, "excluded": {"okx": "stale"}, "opportunity": None},
        {"venue": "okx", "vwap": 61659.956999999995, "excluded": {}, "opportunity": False},
    ]
    df = files.frame(rows, ["vwap"])
    assert list(df.columns) == ["vwap", "venue", "excluded", "opportunity"]
    back = list(csv.DictReader(io.StringIO(files.csv_bytes(df).decode())))
    assert [float(r["vwap"]) for r in back] == [r["vwap"] for r in rows]  # full precision
    assert json.loads(back[0]["excluded"]) == {"okx": "stale"}
    (tmp_path / "x.parquet").write_bytes(files.parquet_bytes(df))
    table = pq.read_table(tmp_path / "x.parquet").to_pylist()
    assert [r["vwap"] for r in table] == [r["vwap"] for r in rows]
    assert [r["opportunity"] for r in table] == [None, False]
    assert files.safe_name("backtest", "BTC/USDT", "buy", 5.0) == "backtest-BTC-USDT-buy-5.0"
    assert files.safe_name("../../etc/passwd") == "etc-passwd"


def test_alert_rule_checks_in_words():
    from mlm_ui import alert_form

    cur = units.Currencies("BTC", "USDT")
    ok = {"symbol": "BTC/USDT", "metric": "spread_bps", "comparison": "above", "threshold": 5.0}
    assert alert_form.check_rule(ok, cur) == []
    assert alert_form.check_rule({**ok, "threshold": None}, cur) == [
        "Enter a threshold: Spread (bps), e.g. 5."
    ]
    depth = {**ok, "metric": "depth_notional", "threshold": 1e6}
    assert alert_form.check_rule(depth, cur) == [
        "Depth within the window (USDT) needs depth window (± bps of mid)."
    ]
    assert alert_form.check_rule({**ok, "metric": "imbalance", "window_bps": 50, "threshold": 2.0}, cur) == [
        "An imbalance threshold must be between -1 and 1 (got 2)."
    ]
    words = alert_form.threshold_words("depth_notional", cur, {"window_bps": 25.0, "side": "ask"})
    assert words == "Ask depth within 25 bps (USDT)"
    assert alert_form.parse_number("1,000,000") == 1e6 and alert_form.parse_number("lots") is None
    assert alert_form.ordered_metrics(["mid_price", "volume", "spread_bps"]) == [
        "spread_bps",
        "mid_price",
        "volume",
    ]
