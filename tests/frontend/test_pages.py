"""Every page of the Streamlit app, run with ``AppTest`` against the real API on recorded data.

Pages whose endpoint the API does not serve (yet) must say so clearly; each test checks the
endpoint in the API's OpenAPI document and asserts the matching state, so nothing is skipped.
"""

from __future__ import annotations

import json
import re
from datetime import date
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


def test_chat_example_question_buttons_ask_the_question(api_url):
    at = run_page()
    examples = [b for b in at.button if (b.key or "").startswith("chat_example_")]
    assert len(examples) == 4
    depth = next(b for b in examples if b.label == "Show me the order book depth for BTC/USDT")
    depth.click().run()
    assert not at.exception, [e.value for e in at.exception]
    # The question is asked (a user message), answered with a depth chart, and the buttons are gone.
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.chat_message[0].markdown[0].value == "Show me the order book depth for BTC/USDT"
    (fig,) = figures(at)
    assert {t["name"] for t in fig["data"]} == {"Bids", "Asks"}
    assert not [b for b in at.button if (b.key or "").startswith("chat_example_")]


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
    assert float(metrics["Mid (USDT)"].replace(",", "")) == pytest.approx(mid, abs=0.01)
    (fig,) = figures(at)
    bids = next(t for t in fig["data"] if t["name"] == "Bids")
    asks = next(t for t in fig["data"] if t["name"] == "Asks")
    assert bids["x"][0] == book["bids"][0][0] and asks["x"][0] == book["asks"][0][0]
    assert bids["x"][0] < mid < asks["x"][0]
    # The mid line sits at the API's mid; the axes name the currencies.
    assert fig["layout"]["shapes"][0]["x0"] == pytest.approx(mid)
    assert fig["layout"]["xaxis"]["title"]["text"] == "price (USDT per BTC)"
    assert fig["layout"]["yaxis"]["title"]["text"] == "cumulative size (BTC)"
    assert len(bids["x"]) == 200  # levels per side selected on the page
    # A second poll of the recorded book returns the same book time: no new point, no chart
    # pretending the book moved; the page says why.
    at.button(key="lb_refresh").click().run()
    assert not at.exception
    assert len(figures(at)) == 1
    assert at.session_state["lb_series"]["binance|BTC/USDT|50"][0]["book_ts"] == book["book_ts"]
    assert len(at.session_state["lb_series"]["binance|BTC/USDT|50"]) == 1
    assert f"Recorded book: it stays at book time {book['book_ts']}" in texts(at.caption)


def _compact(x: float) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:,.2f}{suffix}"
    return f"{x:,.2f}"


def test_live_book_metrics_name_their_units(api_url):
    book = httpx.get(
        f"{api_url}/api/orderbook/binance/BTC/USDT", params={"levels": 5, "window_bps": 50}
    ).json()
    tob = book["top_of_book"]
    depth = next(d for d in book["depth"] if d["window_bps"] == 50)
    at = run_page("live_book")
    m = {x.label: x for x in at.metric}
    assert set(m) == {
        "Mid (USDT)",
        "Best bid (USDT)",
        "Best ask (USDT)",
        "Spread (bps)",
        "Imbalance ±50 bps (-1 to 1)",
        "Depth ±50 bps (USDT)",
    }
    assert m["Depth ±50 bps (USDT)"].value == _compact(depth["bid_notional"] + depth["ask_notional"])
    assert m["Best bid (USDT)"].value == f"{tob['best_bid']:,.2f}"
    assert m["Best bid (USDT)"].delta == f"size {tob['best_bid_size']:,.4f} BTC"
    assert m["Best ask (USDT)"].delta == f"size {tob['best_ask_size']:,.4f} BTC"
    assert float(m["Spread (bps)"].value) == pytest.approx(tob["spread_bps"], rel=0.05)


def test_live_book_window_change_starts_a_new_series(api_url):
    at = run_page("live_book")
    assert set(at.session_state["lb_series"]) == {"binance|BTC/USDT|50"}
    at.selectbox(key="lb_window").set_value(25.0).run()
    assert not at.exception and not at.error, texts(at.error)
    # Only the 25 bps series is kept: a series never mixes windows.
    assert set(at.session_state["lb_series"]) == {"binance|BTC/USDT|25"}
    (point,) = at.session_state["lb_series"]["binance|BTC/USDT|25"]
    assert point["window_bps"] == 25
    labels = {x.label for x in at.metric}
    assert {"Imbalance ±25 bps (-1 to 1)", "Depth ±25 bps (USDT)"} <= labels


def test_live_book_cross_venue_stream_over_websocket(api_url):
    wait_until_not_warming(api_url)  # the stream reports the books the API has loaded
    at = run_page("live_book")
    at.toggle(key="lb_stream").set_value(True).run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Cross-venue stream — BTC/USDT ±50 bps" in texts(at.subheader)
    figs = {f["layout"]["title"]["text"]: f for f in figures(at)}
    spread = figs["Spread (bps) by venue"]
    assert spread["layout"]["xaxis"]["title"]["text"] == "book time (UTC)"
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
    children = expected["routed"]["children"]
    quotes = {c["symbol"].split("/")[1].split(":")[0] for c in children}
    quote = quotes.pop() if len(quotes) == 1 else "quote"
    assert metrics[f"Avg price incl. fees ({quote})"] == f"{expected['routed']['avg_price_incl_fees']:,.2f}"
    figs = figures(at)
    if len(children) > 1:  # a split: the size per venue as a donut
        split, baselines = figs
        assert split["data"][0]["labels"] == [c["venue"] for c in children]
    else:  # one venue: said in words
        (baselines,) = figs
        assert f"The whole order goes to **{children[0]['venue']}**" in texts(at.caption)
    words = {
        "best_single_venue": "Best single venue",
        "pro_rata_depth": "Pro rata by depth",
        "equal_split": "Equal split",
    }
    assert set(baselines["data"][0]["x"]) == {words[b["name"]] for b in expected["baselines"]}
    assert baselines["layout"]["yaxis"]["title"]["text"] == "savings of the routed plan (bps)"


def test_route_page_lists_the_venues_left_out_as_a_table(api_url):
    """Venues typed in besides the watched ones (okx: a capture years older than the
    Binance books) are left out by the API; the page shows them as venue / reason rows."""
    wait_until_not_warming(api_url)
    at = run_page("route")
    venues = ["binance", "binancecoinm", "okx", "kraken"]
    at.multiselect(key="route_venues").set_value(venues)
    submit(at, "route_submit")
    assert not at.error, texts(at.error)
    expected = httpx.post(
        f"{api_url}/api/execute", json={"symbol": "BTC", "side": "buy", "size": 5, "venues": venues}
    ).json()
    assert "okx" in expected["excluded"]  # (kraken may be left out too, or have no BTC book at all)
    assert "Venues left out" in texts(at.subheader)
    (left_out,) = [t.value for t in at.table]  # a plain table: long reasons wrap
    assert list(left_out.columns) == ["Venue", "Left out because", "Details"]
    # books the routing checks dropped, then venues with no usable book of the asset at all
    reasons = {**{u["venue"]: u["reason"] for u in expected["unavailable"]}, **expected["excluded"]}
    assert dict(zip(left_out["Venue"], left_out["Details"], strict=True)) == reasons
    okx = left_out.set_index("Venue").loc["okx"]
    assert "not contemporaneous" in okx["Details"] and okx["Left out because"] == "excluded from routing"


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
    # 20,000 BTC per 5m candle of the newest data (2024-09): large enough for high-risk (> 200 bps)
    # periods in two days on the validated book model (100 BTC costs about 1 bps there).
    at.number_input(key="bt_size").set_value(20000.0)
    submit(at, "bt_submit")
    if not served(api_url, "/api/backtest", "post"):
        assert_not_available(at, api_url, "/api/backtest")
        return
    assert not at.error, texts(at.error)
    expected = httpx.post(
        f"{api_url}/api/backtest",
        json={"symbol": "BTC/USDT", "side": "buy", "size": 20000, "lookback_days": 2},
        timeout=120,
    ).json()
    res = expected.get("result", expected)
    metrics = {m.label: m.value for m in at.metric}
    from mlm_ui.units import fmt_number  # the page's display format; the number is the API's

    assert metrics["Avg slippage (bps)"] == fmt_number(res["avg_slippage_bps"], "bps").removesuffix(" bps")
    assert metrics["Intervals"] == f"{res['intervals']:,}"
    figs = figures(at)
    titles = [f["layout"]["title"]["text"] for f in figs]
    assert "Slippage percentiles (bps)" in titles
    # Slippage over time is the API's own per-interval series, with the API's risk periods shaded
    # (each band from the period's first candle to the end of its last one).
    series, periods, bucket = res["series"], res["risk_periods"], res["series_bucket_intervals"]
    assert len(series) == -(-res["intervals"] // bucket) <= 2000 and periods
    fig = figs[titles.index("Slippage vs mid (bps) over time (high-risk periods shaded)")]
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


def test_backtest_page_with_its_default_form(api_url):
    """The form as a new user finds it (5 BTC buy, 7 days, timeframe auto): a run without any
    high-risk period must render, not crash."""
    at = run_page("backtest")
    submit(at, "bt_submit")
    assert not at.error, texts(at.error)
    expected = httpx.post(
        f"{api_url}/api/backtest",
        json={"symbol": "BTC/USDT", "side": "buy", "size": 5.0, "lookback_days": 7.0},
        timeout=120,
    ).json()
    res = expected["result"]
    assert res["risk_periods"] == [] and res["high_risk_intervals"] == 0  # the case under test
    metrics = {m.label: m.value for m in at.metric}
    from mlm_ui.units import fmt_number  # the page's display format; the number is the API's

    assert metrics["Avg slippage (bps)"] == fmt_number(res["avg_slippage_bps"], "bps").removesuffix(" bps")
    assert metrics["High-risk intervals"] == "0"
    fig = next(f for f in figures(at) if f["layout"]["title"]["text"].startswith("Slippage vs mid"))
    assert not [s for s in fig["layout"].get("shapes", []) if s.get("type") == "rect"]  # nothing shaded
    assert f"No interval above {res['high_risk_threshold_bps']:g} bps" in texts(at.caption)


def test_backtest_page_sell_run_without_risk_period(api_url):
    """A non-default run (sell 0.5 BTC over one day on 5-minute candles) with no risk period."""
    at = run_page("backtest")
    at.radio(key="bt_side").set_value("sell")
    at.number_input(key="bt_size").set_value(0.5)
    at.number_input(key="bt_lookback").set_value(1.0)
    at.selectbox(key="bt_tf").set_value("5m")
    submit(at, "bt_submit")
    assert not at.error, texts(at.error)
    res = httpx.post(
        f"{api_url}/api/backtest",
        json={"symbol": "BTC/USDT", "side": "sell", "size": 0.5, "lookback_days": 1.0, "timeframe": "5m"},
        timeout=120,
    ).json()["result"]
    assert res["risk_periods"] == []
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Intervals"] == f"{res['intervals']:,}"
    from mlm_ui.units import fmt_number  # the page's display format; the number is the API's

    assert metrics["Max (bps)"] == fmt_number(res["max_slippage_bps"], "bps").removesuffix(" bps")


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


def fill_rule(at: AppTest, **values: str) -> None:
    """Fill the rule form: text fields by typing, choices by their API value."""
    for name, value in values.items():
        key = f"alert_f_{name}"
        box = next((w for w in at.selectbox if w.key == key), None)
        if box is not None:
            box.set_value(value)
        else:
            at.text_input(key=key).input(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def create_and_delete_rule(at: AppTest) -> None:
    """Fill the rule form (built from the API's schema), create a rule, see it listed, delete it."""
    fill_rule(
        at, symbol="BTC/USDT", venue="binance", metric="spread_bps", comparison="above", threshold="1000"
    )
    at.text_input(key="alert_f_name").input("frontend-test")
    at.button(key="alert_submit").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "created: Spread (bps) is above 1,000 — BTC/USDT on binance" in texts(at.success)
    assert "(“frontend-test”)" in texts(at.caption)
    deletes = [b for b in at.button if (b.key or "").startswith("del_")]
    assert len(deletes) == 1, [b.key for b in at.button]
    deletes[0].click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "No alert rules yet." in texts(at.info)


def test_alert_form_speaks_trader_words(api_url):
    at = run_page("alerts")
    metric = at.selectbox(key="alert_f_metric")
    # The default metric is the spread, and every option names its unit.
    assert metric.value == "spread_bps" and metric.options[0] == "Spread (bps)"
    assert "Mid price (USDT)" in metric.options and "mid_price" not in metric.options
    assert at.text_input(key="alert_f_threshold").label == "Threshold: Spread (bps)"
    fill_rule(at, metric="depth_notional")
    at.selectbox(key="alert_f_side").set_value("bid").run()
    assert at.text_input(key="alert_f_threshold").label == "Threshold: Bid depth within 50 bps (USDT)"
    # Nothing typed, or not a number: the form says what to enter and sends nothing.
    at.button(key="alert_submit").click().run()
    assert "Enter a threshold: Bid depth within 50 bps (USDT), e.g. 1000000." in texts(at.error)
    fill_rule(at, threshold="lots")
    at.button(key="alert_submit").click().run()
    assert "The threshold 'lots' is not a number" in texts(at.error)
    assert httpx.get(f"{api_url}/api/alerts").json() == []


def test_alert_form_shows_the_apis_refusal_of_a_duplicate_rule(api_url):
    at = run_page("alerts")
    fill_rule(
        at, symbol="BTC/USDT", venue="binance", metric="imbalance", comparison="below", threshold="-0.9"
    )
    at.button(key="alert_submit").click().run()
    assert not at.error, texts(at.error)
    (rule,) = httpx.get(f"{api_url}/api/alerts").json()
    try:
        assert rule["metric"] == "imbalance" and rule["window_bps"] == 50 and rule["threshold"] == -0.9
        at.button(key="alert_submit").click().run()  # the same rule again
        err = texts(at.error)
        assert "answered 422" in err and f"an identical rule already exists: id {rule['id']}" in err, err
        assert [r["id"] for r in httpx.get(f"{api_url}/api/alerts").json()] == [rule["id"]]
    finally:
        httpx.delete(f"{api_url}/api/alerts/{rule['id']}")


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
        if rule.symbol == "BTC/USDX":
            raise HTTPException(422, "no market BTC/USDX on binance; did you mean BTC/USDT?")
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
        # The stub's three metrics, in words.
        assert at.selectbox(key="alert_f_metric").options == [
            "Spread (bps)",
            "Depth within the window (USDT)",
            "Book imbalance within the window (-1 to 1)",
        ]
        assert "spread_bps 3.1 above 3" in at.dataframe[-1].value.to_string()
        create_and_delete_rule(at)
        assert rules == {}
        # A rule the API rejects shows the API's own detail.
        fill_rule(at, symbol="BTC/USDX", threshold="5")
        at.button(key="alert_submit").click().run()
        assert "answered 422" in texts(at.error) and "no market BTC/USDX" in texts(at.error)
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


# ----------------------------------------------------------------------------------- candles


def _raw_candles(data_dir, name: str) -> pd.DataFrame:
    """The recorded candle file itself (genetrader feather), read without the package."""
    return pd.read_feather(data_dir / "genetrader" / "binance" / f"{name}.feather")


def _candlestick(at: AppTest) -> dict:
    (fig,) = figures(at)
    return next(t for t in fig["data"] if t["type"] == "candlestick"), fig


def test_candles_page_with_its_defaults(api_url, data_dir):
    """BTC/USDT 1h, the 14 days ending at the last stored candle: the recorded file's last 336 rows."""
    raw = _raw_candles(data_dir, "BTC_USDT-1h").tail(14 * 24)
    at = run_page("candles")
    assert not at.error and not at.warning, texts(at.error) + texts(at.warning)
    candles, fig = _candlestick(at)
    assert len(candles["x"]) == 14 * 24
    assert pd.to_datetime(candles["x"], utc=True).tolist() == raw["date"].tolist()
    assert candles["open"] == raw["open"].tolist() and candles["close"] == raw["close"].tolist()
    assert candles["high"] == raw["high"].tolist() and candles["low"] == raw["low"].tolist()
    volume = next(t for t in fig["data"] if t["type"] == "bar")
    assert volume["y"] == raw["volume"].tolist() and volume["name"] == "volume (BTC)"
    assert fig["layout"]["yaxis"]["title"]["text"] == "price (USDT)"
    assert fig["layout"]["xaxis2"]["title"]["text"] == "time (UTC)"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Last close (USDT)"] == f"{raw['close'].iloc[-1]:,.2f}"
    assert metrics["High (USDT)"] == f"{raw['high'].max():,.2f}"
    assert [b.label for b in at.get("download_button")] == ["CSV", "Parquet"]


def test_candles_page_between_dates_on_five_minute_candles(api_url, data_dir):
    raw = _raw_candles(data_dir, "ETH_USDT-5m")
    raw = raw[(raw["date"] >= "2024-09-01") & (raw["date"] < "2024-09-03")]
    at = run_page("candles")
    at.text_input(key="cd_symbol").set_value("ETH/USDT")
    at.selectbox(key="cd_tf").set_value("5m")
    at.radio(key="cd_window").set_value("Between dates").run()
    at.date_input(key="cd_from").set_value(date(2024, 9, 1))
    at.date_input(key="cd_to").set_value(date(2024, 9, 2)).run()
    assert not at.exception and not at.error, texts(at.error)
    candles, _ = _candlestick(at)
    assert len(candles["x"]) == 2 * 288 == len(raw)
    assert candles["close"] == raw["close"].tolist()
    assert "576 5m candles of ETH/USDT on binance: 2024-09-01 00:00 → 2024-09-02 23:55 UTC" in texts(
        at.caption
    )


def test_candles_page_lists_what_is_stored_when_nothing_matches(api_url):
    at = run_page("candles")
    at.text_input(key="cd_symbol").set_value("FOO/USDT").run()
    assert not at.exception
    assert "No candles for this choice." in texts(at.warning)
    stored = at.dataframe[0].value
    assert {"BTC/USDT", "ETH/USDT"} <= set(stored["symbol"])


# ----------------------------------------------------------------------------------- every page


@pytest.mark.parametrize(
    "page", [None, "live_book", "compare", "route", "candles", "backtest", "pairs", "alerts", "health"]
)
def test_every_page_says_the_data_is_recorded(api_url, page):
    at = run_page(page)
    assert "Recorded data" in texts(at.markdown), texts(at.markdown)[:500]
    assert "data: **recorded**" in texts(at.sidebar.caption)


# ----------------------------------------------------------------------------------- API down


@pytest.mark.parametrize(
    ("page", "form"),
    [
        (None, None),
        ("live_book", None),
        ("compare", "cmp_submit"),
        ("route", "route_submit"),
        ("candles", None),
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
