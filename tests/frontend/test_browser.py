"""The app in a real browser: Debian's chromium (headless) driven by Playwright, against
``streamlit run frontend/app.py`` talking to the real API on recorded data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import APP, REPO, free_port

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
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, "MLM_API_URL": api_server.url, "PYTHONUNBUFFERED": "1"}
    env.pop("MLM_API__TOKEN", None)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start on {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


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


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: ``MLM_FRONTEND_SCREENSHOTS`` if set (kept), else pytest's tmp dir."""
    env = os.environ.get("MLM_FRONTEND_SCREENSHOTS")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    return tmp_path_factory.mktemp("screenshots")


def save(page, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"{name} screenshot: {path}")


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
