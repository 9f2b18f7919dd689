"""Every page of the Streamlit app, run with ``AppTest`` against the real API on recorded data.

Pages whose endpoint the API does not serve (yet) must say so clearly; each test checks the
endpoint in the API's OpenAPI document and asserts the matching state, so nothing is skipped.
"""

from __future__ import annotations

import json
import re
from typing import Literal

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from streamlit.testing.v1 import AppTest

from .conftest import APP, APP_TIMEOUT_S, ApiServer, wait_until_not_warming

# The API (instrumented by logfire) and the app's client share this process in these tests.
pytestmark = pytest.mark.filterwarnings("ignore:Found propagated trace context:RuntimeWarning")

QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
BPS = re.compile(r"-?\d[\d,]*(\.\d+)?\s*bps")


def run_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page:
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def served(api_url: str, path: str, method: str) -> bool:
    spec = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    return method.lower() in (spec.get("paths", {}).get(path) or {})


def assert_not_available(at: AppTest, api_url: str, path: str) -> None:
    info = texts(at.info)
    assert "not available on this API yet" in info, info
    assert f"{api_url}{path}" in info, info


def submit(at: AppTest, button_key: str) -> AppTest:
    """Press a form's submit button."""
    at.button(key=button_key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ----------------------------------------------------------------------------------- chat


def test_chat_answers_with_tool_calls_and_an_impact_curve(api_url):
    at = run_page()
    assert "Try:" in texts(at.info)
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, [e.value for e in at.exception]
    md = texts(at.markdown)
    answer = next(m.value for m in at.markdown if m.value != QUESTION and "slippage" in m.value.lower())
    assert "binance" in answer.lower() and "BTC/USDT" in answer
    assert "slippage" in answer.lower() and BPS.search(answer), answer
    # The tool calls in an expander, with the market_impact call's arguments.
    assert [e.label for e in at.expander] == ["Tool calls (1) — grounded"]
    assert "`market_impact`" in md
    # The impact curve: slippage rises with size, and "your order" is the tool's own figure.
    api_impact = httpx.post(
        f"{api_url}/api/impact", json={"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "size": 5}
    ).json()
    (fig,) = figures(at)
    curve = next(t for t in fig["data"] if t["name"] == "slippage vs mid (bps)")
    assert curve["y"] == sorted(curve["y"]) and len(curve["y"]) >= 5
    mine = next(t for t in fig["data"] if t["name"] == "your order")
    assert mine["x"] == [5.0] and mine["y"][0] == pytest.approx(api_impact["slippage_bps"])

    # The conversation continues in the same API session.
    at.chat_input[0].set_value("what about 10 BTC?").run()
    assert not at.exception
    follow_up = [m.value for m in at.markdown if "10 BTC" in m.value and "VWAP" in m.value]
    assert follow_up, texts(at.markdown)
    assert len(figures(at)) == 2


def test_chat_depth_question_draws_the_book(api_url):
    at = run_page()
    at.chat_input[0].set_value("Show me the order book depth for BTC/USDT").run()
    assert not at.exception
    (fig,) = figures(at)
    assert {t["name"] for t in fig["data"]} == {"Bids", "Asks"}
    assert "binance" in fig["layout"]["title"]["text"]


# ----------------------------------------------------------------------------------- live book


def test_live_book_renders_depth_chart_at_the_apis_mid(api_url):
    book = httpx.get(f"{api_url}/api/orderbook/binance/BTC/USDT", params={"levels": 5}).json()
    mid = book["top_of_book"]["mid_price"]
    at = run_page("live_book")
    assert not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Mid"].replace(",", "")) == pytest.approx(mid, abs=0.01)
    (fig,) = figures(at)
    bids = next(t for t in fig["data"] if t["name"] == "Bids")
    asks = next(t for t in fig["data"] if t["name"] == "Asks")
    assert bids["x"][0] == book["bids"][0][0] and asks["x"][0] == book["asks"][0][0]
    assert bids["x"][0] < mid < asks["x"][0]
    # The mid line sits at the API's mid.
    assert fig["layout"]["shapes"][0]["x0"] == pytest.approx(mid)
    assert len(bids["x"]) == 200  # levels per side selected on the page
    # A second poll draws spread and imbalance over time.
    at.button(key="lb_refresh").click().run()
    assert not at.exception
    figs = figures(at)
    assert len(figs) == 2
    names = {t["name"] for t in figs[1]["data"]}
    assert names == {"spread_bps", "imbalance"}


def test_live_book_cross_venue_stream_over_websocket(api_url):
    wait_until_not_warming(api_url)  # the stream reports the books the API has loaded
    at = run_page("live_book")
    at.toggle(key="lb_stream").set_value(True).run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Cross-venue stream — BTC/USDT ±50 bps" in texts(at.subheader)
    figs = {f["layout"]["title"]["text"]: f for f in figures(at)}
    spread = figs["Spread (bps) by venue"]
    names = {t["name"] for t in spread["data"]}
    assert names == {"binance", "binancecoinm"}, texts(at.caption)  # the API's venues
    book = httpx.get(f"{api_url}/api/orderbook/binance/BTC/USDT", params={"levels": 1}).json()
    binance = next(t for t in spread["data"] if t["name"] == "binance")
    assert binance["y"][-1] == pytest.approx(book["top_of_book"]["spread_bps"], rel=1e-3)
    metrics = {m.label: m.value for m in at.metric}
    assert 0 < float(metrics["HHI of depth"]) <= 1


def test_live_book_shows_the_apis_detail_for_an_unknown_symbol(api_url):
    at = run_page("live_book")
    at.text_input(key="lb_symbol").set_value("BTC/USDX").run()
    err = texts(at.error)
    assert "answered 404" in err and "BTC/USDT" in err, err  # the API's "did you mean" detail
    assert not at.get("plotly_chart")


# ----------------------------------------------------------------------------------- forms


def test_compare_page(api_url):
    at = run_page("compare")
    assert "Run" in [b.label for b in at.button]
    at.radio(key="cmp_side").set_value("sell")
    at.multiselect(key="cmp_venues").set_value(["binance", "binancecoinm"])
    submit(at, "cmp_submit")
    if not served(api_url, "/api/compare", "post"):
        assert_not_available(at, api_url, "/api/compare")
        return
    assert not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best venue"] in ("binance", "binancecoinm")
    assert metrics["Venues compared"] == "2"
    assert figures(at)


def test_route_page_shows_the_routed_plan_and_baselines(api_url):
    status = wait_until_not_warming(api_url)
    assert status["status"] == "live", status  # spot + COIN-M books are fresh on the recording
    at = run_page("route")
    at.multiselect(key="route_venues").set_value(["binance", "binancecoinm"])
    submit(at, "route_submit")
    assert not at.error and not at.warning, texts(at.error) + texts(at.warning)
    assert {"Routed plan", "Against the baselines"} <= {s.value for s in at.subheader}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Fully filled"] == "yes"
    expected = httpx.post(
        f"{api_url}/api/execute",
        json={"symbol": "BTC", "side": "buy", "size": 5, "venues": ["binance", "binancecoinm"]},
    ).json()
    assert metrics["Avg price incl. fees"] == f"{expected['routed']['avg_price_incl_fees']:,.2f}"
    split, baselines = figures(at)
    assert split["data"][0]["labels"] == [c["venue"] for c in expected["routed"]["children"]]
    assert {t for t in baselines["data"][0]["x"]} == {b["name"] for b in expected["baselines"]}


def test_route_page_explains_a_409_when_the_api_is_not_live(monkeypatch):
    """The real API answers 409 on the full recording (its USD-M book is stale); this stub answers
    the same way, so the state is tested without a second real API."""
    stub = FastAPI()

    @stub.post("/api/execute")
    def execute() -> None:
        raise HTTPException(
            status_code=409,
            detail={
                "message": "execution simulation needs status 'live'; the system is 'degraded'",
                "status": "degraded",
                "reasons": ["binanceusdm:BTC/USDT:USDT: stale"],
            },
        )

    server = ApiServer(stub)
    server.start()
    try:
        monkeypatch.setenv("MLM_API_URL", server.url)
        at = run_page("route")
        submit(at, "route_submit")
    finally:
        server.stop()
    warn = texts(at.warning)
    assert "Not executed" in warn and "409" in warn
    assert "the system is 'degraded'" in warn and "binanceusdm:BTC/USDT:USDT: stale" in warn
    assert not at.error and not at.get("plotly_chart")


def test_backtest_page(api_url):
    at = run_page("backtest")
    at.number_input(key="bt_lookback").set_value(2.0)
    # 2000 BTC per 1m candle (2021-05): large enough for high-risk (> 200 bps) periods in two days on
    # the validated book model (100 BTC costs ~11 bps there).
    at.number_input(key="bt_size").set_value(2000.0)
    submit(at, "bt_submit")
    if not served(api_url, "/api/backtest", "post"):
        assert_not_available(at, api_url, "/api/backtest")
        return
    assert not at.error, texts(at.error)
    expected = httpx.post(
        f"{api_url}/api/backtest",
        json={"symbol": "BTC/USDT", "side": "buy", "size": 2000, "lookback_days": 2},
        timeout=120,
    ).json()
    res = expected.get("result", expected)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Avg slippage"] == f"{res['avg_slippage_bps']:,.2f} bps"
    assert metrics["Intervals"] == f"{res['intervals']:,}"
    figs = figures(at)
    titles = [f["layout"]["title"]["text"] for f in figs]
    assert "Slippage percentiles (bps)" in titles
    # Slippage over time is the API's own per-interval series, with the API's risk periods shaded
    # (each band from the period's first candle to the end of its last one).
    series, periods, bucket = res["series"], res["risk_periods"], res["series_bucket_intervals"]
    assert len(series) == -(-res["intervals"] // bucket) <= 2000 and periods
    fig = figs[titles.index("slippage_bps over time (high-risk shaded)")]
    (line,) = fig["data"]
    assert line["x"] == [p["ts"] for p in series]
    assert line["y"] == [p["slippage_bps"] for p in series]
    rects = [s for s in fig["layout"]["shapes"] if s.get("type") == "rect"]
    step = pd.Timedelta(expected["timeframe"])
    assert [(r["x0"], pd.Timestamp(r["x1"])) for r in rects] == [
        (p["start"], pd.Timestamp(p["end"]) + step) for p in periods
    ]
    assert "The API returns summary statistics only" not in texts(at.info)
    if bucket > 1:  # downsampled: the page says how
        assert f"each the worst of {bucket} consecutive intervals" in texts(at.caption)
    assert len(at.dataframe) >= 1  # the risk periods table


def test_pairs_page(api_url):
    at = run_page("pairs")
    # Hourly candles keep the API's statistics (ADF, cointegration) quick.
    at.selectbox(key="pairs_tf").set_value("1h")
    at.number_input(key="pairs_lookback").set_value(3.0)
    submit(at, "pairs_submit")
    if not served(api_url, "/api/pairs", "get"):
        assert_not_available(at, api_url, "/api/pairs")
        return
    assert not at.error, texts(at.error)
    expected = httpx.get(
        f"{api_url}/api/pairs",
        params={
            "symbol_a": "BTC/USDT",
            "symbol_b": "ETH/USDT",
            "timeframe": "1h",
            "lookback_days": 3,
            "size": 1,
        },
        timeout=120,
    ).json()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Hedge ratio (OLS)"] == f"{expected['analysis']['hedge_ratio_ols']:,.4f}"
    titles = [f["layout"]["title"]["text"] for f in figures(at)]
    assert titles[:3] == [
        "Spread (log a - beta log b - alpha)",
        "Rolling z-score of the spread",
        "Rolling return correlation",
    ]
    if expected.get("trade_cost"):
        assert metrics["Round-trip cost"] == f"{expected['trade_cost']['round_trip_cost_bps']:,.2f} bps"


def test_alerts_page(api_url):
    at = run_page("alerts")
    if not served(api_url, "/api/alerts", "get"):
        assert_not_available(at, api_url, "/api/alerts")
        return
    assert not at.error, texts(at.error)
    subheaders = texts(at.subheader)
    assert "New rule" in subheaders and "Rules" in subheaders and "Recent triggers" in subheaders
    create_and_delete_rule(at)


def create_and_delete_rule(at: AppTest) -> None:
    """Fill the rule form (built from the API's schema), create a rule, see it listed, delete it."""
    fields = {w.key: w for w in [*at.text_input, *at.selectbox] if (w.key or "").startswith("alert_f_")}
    values = {"symbol": "BTC/USDT", "venue": "binance", "threshold": "1000", "name": "frontend-test"}
    for name, value in values.items():
        if f"alert_f_{name}" in fields and hasattr(fields[f"alert_f_{name}"], "input"):
            fields[f"alert_f_{name}"].input(value)
    for name, value in (("metric", "spread_bps"), ("comparison", "above")):
        box = fields.get(f"alert_f_{name}")
        if box is not None and value in box.options:
            box.set_value(value)
    at.button(key="alert_submit").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Rule created" in texts(at.success)
    deletes = [b for b in at.button if (b.key or "").startswith("del_")]
    assert len(deletes) == 1, [b.key for b in at.button]
    deletes[0].click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "No alert rules yet." in texts(at.info)


class StubRule(BaseModel):
    symbol: str
    metric: Literal["spread_bps", "depth_notional", "imbalance"]
    comparison: Literal["above", "below"]
    threshold: float
    venue: str | None = None
    name: str | None = None


def test_alerts_page_round_trip_on_a_stub_api(monkeypatch):
    """The alerts page against a small API of the same contract (POST/GET /api/alerts, DELETE
    /api/alerts/{id}, GET /api/alerts/events): the form comes from the stub's OpenAPI schema."""
    stub = FastAPI()
    rules: dict[int, dict] = {}

    @stub.post("/api/alerts", status_code=201)
    def create(rule: StubRule) -> dict:
        rid = max(rules, default=0) + 1
        rules[rid] = {"id": rid, **rule.model_dump()}
        return rules[rid]

    @stub.get("/api/alerts")
    def listing() -> list[dict]:
        return list(rules.values())

    @stub.delete("/api/alerts/{rule_id}", status_code=204)
    def delete(rule_id: int) -> None:
        if rules.pop(rule_id, None) is None:
            raise HTTPException(404, f"no rule {rule_id}")

    @stub.get("/api/alerts/events")
    def events() -> list[dict]:
        return [{"rule_id": 7, "ts": "2024-08-09T00:05:05Z", "message": "spread_bps 3.1 above 3"}]

    server = ApiServer(stub)
    server.start()
    try:
        monkeypatch.setenv("MLM_API_URL", server.url)
        at = run_page("alerts")
        assert "Form fields from the API's OpenAPI schema." in texts(at.caption)
        assert at.selectbox(key="alert_f_metric").options == ["spread_bps", "depth_notional", "imbalance"]
        assert "spread_bps 3.1 above 3" in at.dataframe[-1].value.to_string()
        create_and_delete_rule(at)
        assert rules == {}
        # A rule the API rejects shows the API's validation detail.
        at.text_input(key="alert_f_threshold").input("lots")
        at.button(key="alert_submit").click().run()
        assert "threshold" in texts(at.error) and "answered 422" in texts(at.error)
    finally:
        server.stop()


def test_health_page(api_url):
    at = run_page("health")
    assert not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Status"] == "ok" and metrics["Mode"] == "recorded"
    assert int(metrics["Books loaded"]) >= 1
    if not served(api_url, "/api/status", "get"):
        assert_not_available(at, api_url, "/api/status")


# ----------------------------------------------------------------------------------- API down


@pytest.mark.parametrize(
    ("page", "form"),
    [
        (None, None),
        ("live_book", None),
        ("compare", "cmp_submit"),
        ("route", "route_submit"),
        ("backtest", "bt_submit"),
        ("pairs", "pairs_submit"),
        ("alerts", None),
        ("health", None),
    ],
)
def test_every_page_says_when_the_api_is_down(dead_api_url, page, form):
    at = run_page(page)
    if page is None:
        at.chat_input[0].set_value(QUESTION).run()
    if form:
        submit(at, form)
    assert not at.exception
    err = texts(at.error)
    assert "The API is not reachable" in err, err
    assert dead_api_url in err and "MLM_API_URL" in err
    assert not at.get("plotly_chart")
