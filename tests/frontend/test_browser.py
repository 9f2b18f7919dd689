"""The app in a real browser: Debian's chromium (headless) driven by Playwright, against
``streamlit run frontend/app.py`` talking to the real API on recorded data."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import streamlit_app

CHROMIUM = Path("/usr/bin/chromium")
QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)"
    ),
    # logfire (the API's tracing) notes the trace context the app's requests carry; harmless here.
    pytest.mark.filterwarnings("ignore:Found propagated trace context:RuntimeWarning"),
]


@pytest.fixture(scope="module")
def streamlit_url(api_server, tmp_path_factory) -> Iterator[str]:
    with streamlit_app(api_server.url, tmp_path_factory.mktemp("streamlit") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(streamlit_url):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = ctx.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            yield pg
        finally:
            browser.close()


# Screenshots are also copied here, for people to look at after a run.
SHARED_SHOTS = Path("/tmp/mlm-screens")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: ``MLM_FRONTEND_SCREENSHOTS`` if set (kept), else pytest's tmp dir
    (each is also copied to ``/tmp/mlm-screens/``)."""
    env = os.environ.get("MLM_FRONTEND_SCREENSHOTS")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    return tmp_path_factory.mktemp("screenshots")


def save(page, shots: Path, name: str) -> Path:
    """A screenshot of the whole page: Streamlit scrolls inside its main container, so the
    viewport is made as tall as the page's content first."""
    height = page.evaluate(
        "(() => { const e = document.querySelector('[data-testid=stMainBlockContainer]');"
        " return e ? Math.ceil(e.getBoundingClientRect().top + e.scrollHeight) : 1000; })()"
    )
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 40, 12_000))})
    page.wait_for_timeout(800)  # let plotly re-lay out at the new size
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    SHARED_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHARED_SHOTS / path.name)
    print(f"{name} screenshot: {path}")
    return path


def settle(page, timeout_s: float = 180) -> None:
    """Wait until Streamlit has finished running the script (no "Running..." status)."""
    page.wait_for_timeout(700)
    deadline = time.monotonic() + timeout_s
    while page.get_by_test_id("stStatusWidget").count() and time.monotonic() < deadline:
        page.wait_for_timeout(300)
    page.wait_for_timeout(500)


def assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:3000]


def test_chat_in_the_browser(page, streamlit_url, shots):
    page.goto(streamlit_url)
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for()
    box.fill(QUESTION)
    box.press("Enter")
    # Two chat messages (question, answer), the answer with its tool-call expander and chart.
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text(re.compile(r"Tool calls \(1\)")).wait_for()
    answer.locator(".js-plotly-plot").first.wait_for()
    text = answer.inner_text()
    assert "slippage" in text.lower() and "binance" in text.lower(), text
    assert re.search(r"\d+(\.\d+)?\s*bps", text), text
    assert_no_exception(page)
    save(page, shots, "chat")


def test_live_book_in_the_browser(page, streamlit_url, shots):
    page.goto(f"{streamlit_url}/live_book")
    page.get_by_text("Cumulative depth — BTC/USDT on binance").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    # Streamlit renders elements progressively: wait for the metric tiles before reading the page.
    page.get_by_test_id("stMetricLabel").filter(has_text="Spread").first.wait_for()
    body = page.inner_text("body")
    assert "Mid" in body and "Spread" in body, body[:2000]
    assert_no_exception(page)
    save(page, shots, "live_book")


def test_compare_in_the_browser(page, streamlit_url, shots):
    page.goto(f"{streamlit_url}/compare")
    page.get_by_role("heading", name="Compare venues").wait_for()
    page.get_by_test_id("stBaseButton-primaryFormSubmit").click()
    # Either the comparison (best venue and a chart) or a clear not-available / error state.
    page.get_by_text(re.compile(r"Best venue|not available on this API|failed")).first.wait_for()
    body = page.inner_text("body")
    assert "Best venue" in body, body[:3000]
    page.locator(".js-plotly-plot").first.wait_for()
    assert_no_exception(page)
    save(page, shots, "compare")


# ----------------------------------------------------------------------------------- every page


def choose(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def pick_radio(page, label: str, option: str) -> None:
    page.get_by_test_id("stRadio").filter(has_text=label).first.get_by_text(option, exact=True).click()


def run_form(page) -> None:
    page.get_by_test_id("stBaseButton-primaryFormSubmit").first.click()
    settle(page)


def assert_page_ok(page) -> None:
    """No Streamlit exception, the data labelled as recorded, no developer toolbar."""
    assert_no_exception(page)
    page.get_by_text(re.compile(r"Recorded data")).first.wait_for()
    assert page.get_by_test_id("stAppDeployButton").count() == 0
    assert page.get_by_text("Deploy", exact=True).count() == 0


def chat_defaults(page) -> None:
    page.get_by_role("button", name="Show me the order book depth for BTC/USDT").wait_for()


def chat_example(page) -> None:
    page.get_by_role("button", name="Show me the order book depth for BTC/USDT").click()
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.locator(".js-plotly-plot").first.wait_for()
    settle(page)
    # the depth chart's levels can be downloaded
    answer.get_by_role("button", name="CSV").wait_for()
    answer.get_by_role("button", name="Parquet").wait_for()


def live_defaults(page) -> None:
    page.get_by_text("Cumulative depth — BTC/USDT on binance").first.wait_for()
    page.get_by_text("Depth ±50 bps (USDT)").first.wait_for()
    page.get_by_role("button", name="CSV").first.wait_for()  # the depth chart's levels


def live_stream_25(page) -> None:
    choose(page, "Depth window", "±25 bps of mid")
    page.get_by_text("Depth ±25 bps (USDT)").first.wait_for()
    page.get_by_test_id("stCheckbox").filter(has_text="Cross-venue stream").first.click()
    page.get_by_text("Cross-venue stream — BTC/USDT ±25 bps").wait_for()
    settle(page)


def compare_defaults(page) -> None:
    run_form(page)
    page.get_by_text("Best venue").first.wait_for()
    # the venues without a comparable book, each with the reason in words (kraken: BTC/CHF only)
    page.get_by_role("heading", name="Venues left out").wait_for()
    left_out = page.get_by_test_id("stTable").filter(has_text="Left out because").first
    row = left_out.locator("tr").filter(has_text="kraken").first
    assert "other quote currency" in row.inner_text() and "CHF" in row.inner_text(), left_out.inner_text()
    assert "no such market" in left_out.inner_text()
    # gate's thin BTC/USDC book cannot fill 5 BTC (~6,000 bps): named, not drawn on the full fills' scale
    note = page.get_by_text(re.compile(r"Not charted, they cannot fill the whole order")).first
    note.wait_for()
    assert "gate" in note.inner_text(), note.inner_text()
    chart = page.locator(".js-plotly-plot").first
    assert "gate" not in chart.inner_text() and "binance" in chart.inner_text(), chart.inner_text()


def compare_sell_notional(page) -> None:
    pick_radio(page, "Side", "sell")
    pick_radio(page, "Amount in", "quote (notional)")
    page.get_by_label("Amount", exact=True).fill("250000")
    run_form(page)
    page.get_by_text("Best venue").first.wait_for()


def route_defaults(page) -> None:
    run_form(page)
    page.get_by_text("Routed plan").first.wait_for()


def route_more_venues(page) -> None:
    """The watched Binance venues plus okx, typed in (a venue the API has an older book of)."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text="Venues").first
    for venue in ("binance", "binancecoinm"):
        box.click()
        page.get_by_role("option", name=venue, exact=True).click()
        page.wait_for_timeout(300)
    box.click()
    page.keyboard.type("okx", delay=50)
    page.wait_for_timeout(500)
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    for venue in ("binance", "binancecoinm", "okx"):
        box.get_by_text(venue, exact=True).wait_for()
    run_form(page)
    page.get_by_role("heading", name="Venues left out").wait_for()
    left_out = page.get_by_test_id("stTable").filter(has_text="Left out because").first
    row = left_out.locator("tr").filter(has_text="okx").first
    assert "excluded from routing" in row.inner_text() and "not contemporaneous" in row.inner_text()


def candles_defaults(page) -> None:
    page.get_by_text("BTC/USDT on binance — 1h candles").first.wait_for()


def candles_between_dates(page) -> None:
    page.get_by_label("Symbol", exact=True).fill("ETH/USDT")
    page.keyboard.press("Enter")
    settle(page)
    choose(page, "Timeframe", "5m")
    settle(page)
    pick_radio(page, "Window", "Between dates")
    settle(page)
    page.get_by_text("ETH/USDT on binance — 5m candles").first.wait_for()


def backtest_defaults(page) -> None:
    run_form(page)
    page.get_by_text("No interval above 200 bps").wait_for()


def backtest_large_sell(page) -> None:
    pick_radio(page, "Side", "sell")
    # 5,000 BTC at once: ~2x the 2,000 BTC whose per-candle cost on the calibrated BTC model is
    # ~200 bps (the high-risk threshold), so the window has risk periods to list
    page.get_by_label("Size (base units)", exact=True).fill("5000")
    page.get_by_label("Lookback (days)", exact=True).fill("2")
    run_form(page)
    page.get_by_role("heading", name="Risk periods").wait_for()


def pairs_defaults(page) -> None:
    run_form(page)
    page.get_by_text("Hedge ratio (OLS)").first.wait_for()


def pairs_hourly(page) -> None:
    page.get_by_label("Symbol B", exact=True).fill("SOL/USDT")
    choose(page, "Timeframe", "1h")
    page.get_by_label("Lookback (days)", exact=True).fill("30")
    run_form(page)
    page.get_by_text("BTC/USDT vs SOL/USDT").first.wait_for()


def alerts_defaults(page) -> None:
    page.get_by_role("button", name="Create rule").click()
    settle(page)
    page.get_by_text("The rule was not sent:").wait_for()  # no threshold typed: said, nothing sent


def alerts_depth_rule(page) -> None:
    choose(page, "Metric", "Depth within the window (USDT)")
    settle(page)
    choose(page, "Book side", "Bid")
    settle(page)
    box = page.get_by_label("Threshold: Bid depth within 50 bps (USDT)", exact=True)
    box.fill("1,000,000")
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Create rule").click()
    settle(page)
    page.get_by_text(re.compile(r"Rule \d+ created")).wait_for()
    page.get_by_role("button", name="Create rule").click()  # the same rule again: the API says no
    settle(page)
    page.get_by_text(re.compile(r"an identical rule already exists: id \d+")).first.wait_for()


def alerts_cleanup(page) -> None:
    for _ in range(5):
        button = page.get_by_role("button", name="Delete")
        if not button.count():
            return
        button.first.click()
        settle(page)


def health_defaults(page) -> None:
    page.get_by_text("Feeds and books").wait_for()


def health_refresh(page) -> None:
    page.get_by_role("button", name="Refresh").click()
    settle(page)
    page.get_by_text("Feeds and books").wait_for()


PAGES = [
    ("chat", "", chat_defaults, chat_example),
    ("live_book", "live_book", live_defaults, live_stream_25),
    ("compare", "compare", compare_defaults, compare_sell_notional),
    ("route", "route", route_defaults, route_more_venues),
    ("candles", "candles", candles_defaults, candles_between_dates),
    ("backtest", "backtest", backtest_defaults, backtest_large_sell),
    ("pairs", "pairs", pairs_defaults, pairs_hourly),
    ("alerts", "alerts", alerts_defaults, alerts_depth_rule),
    ("health", "health", health_defaults, health_refresh),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "path", "defaults", "changed"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_with_defaults_and_a_changed_form(
    page, streamlit_url, shots, name, path, defaults, changed
):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{streamlit_url}/{path}")
    settle(page)
    try:
        defaults(page)
        settle(page)
        assert_page_ok(page)
        save(page, shots, f"{name}-defaults")
        page.goto(f"{streamlit_url}/{path}")  # a fresh run of the page, then a changed form
        settle(page)
        changed(page)
        settle(page)
        assert_page_ok(page)
        save(page, shots, f"{name}-changed")
    finally:
        if name == "alerts":
            alerts_cleanup(page)


@pytest.mark.slow
def test_candles_csv_download_is_the_apis_candles(page, streamlit_url, api_server):
    page.goto(f"{streamlit_url}/candles")
    settle(page)
    page.get_by_text("BTC/USDT on binance — 1h candles").first.wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="CSV").first.click()
    download = info.value
    assert re.fullmatch(r"candles-binance-BTC-USDT-1h-.+\.csv", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    api = httpx.get(
        f"{api_server.url}/api/history/candles",
        params={"symbol": "BTC/USDT", "timeframe": "1h", "start": rows[0]["ts"]},
        timeout=60,
    ).json()["candles"]
    assert [r["ts"] for r in rows] == [c["ts"] for c in api]
    assert [float(r["close"]) for r in rows] == [c["close"] for c in api]
    assert list(rows[0]) == ["ts", "open", "high", "low", "close", "volume", "ts_ms"]


YES_NO = "Is there enough liquidity to execute a 10 ETH sell order?"


def _csv_download(page, scope) -> list[dict[str, str]]:
    with page.expect_download() as info:
        scope.get_by_role("button", name="CSV").first.click()
    return list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))


@pytest.mark.slow
def test_chat_yes_no_verdict_and_its_chart_download(page, streamlit_url, api_server, shots):
    """The example question is a button; its answer opens with a yes/no verdict and the reason, in
    the book's currencies; the impact curve under it downloads as the API's own impact answers."""
    page.goto(streamlit_url)
    settle(page)
    page.get_by_role("button", name=YES_NO).click()
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("Yes — enough visible liquidity.").wait_for()
    answer.locator(".js-plotly-plot").first.wait_for()
    settle(page)
    alert = answer.get_by_test_id("stAlert").first.inner_text()
    assert "bid side of ETH/USDT on binance" in alert and "10 ETH" in alert and "USDT" in alert, alert
    assert_no_exception(page)
    save(page, shots, "chat-verdict")

    rows = _csv_download(page, answer)
    direct = httpx.post(
        f"{api_server.url}/api/impact",
        json={"venue": "binance", "symbol": "ETH/USDT", "side": "sell", "size": 10},
        timeout=60,
    ).json()
    asked = [r for r in rows if float(r["x"]) == 10.0]
    assert len(asked) == 1, [r["x"] for r in rows]
    assert float(asked[0]["slippage_bps"]) == direct["slippage_bps"]
    assert float(asked[0]["vwap"]) == direct["vwap"]
    assert sorted(float(r["x"]) for r in rows) == [1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0]


@pytest.mark.slow
def test_live_book_levels_download_is_the_apis_book(page, streamlit_url, api_server):
    page.goto(f"{streamlit_url}/live_book")
    settle(page)
    page.get_by_text("Cumulative depth — BTC/USDT on binance").first.wait_for()
    rows = _csv_download(page, page)
    book = httpx.get(
        f"{api_server.url}/api/orderbook/binance/BTC/USDT", params={"levels": 200}, timeout=60
    ).json()
    for side in ("bids", "asks"):
        mine = [r for r in rows if r["side"] == side[:-1]]
        assert [(float(r["price"]), float(r["size"])) for r in mine] == [tuple(lvl) for lvl in book[side]]
        total = sum(s for _, s in book[side])
        assert float(mine[-1]["cum_size"]) == pytest.approx(total, rel=1e-12)
