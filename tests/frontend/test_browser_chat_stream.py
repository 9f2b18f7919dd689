"""The app shows the assistant's text while the model is still writing it (issue 13: "the app shows
text before the answer is complete"), in a real browser (Playwright + Debian chromium): the API runs
on a loopback OpenAI-compatible provider (``testing.llm_server``, not a mock) that takes 3 s per
turn and streams its answer in 6 pieces; the Chat page (``st.write_stream`` over the API's SSE) must
show the first piece while the last is not there yet, and the finished answer (with its tool-call
expander) at least a second later."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from pydantic_ai import models

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import AgentSettings, ApiSettings, Settings
from market_liquidity_monitor.testing.llm_server import LoopbackLLM, tool_then_answer

from .conftest import ApiServer, streamlit_app
from .test_browser import CHROMIUM, QUESTION, assert_no_exception, save, shots  # noqa: F401

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed"),
    pytest.mark.filterwarnings("ignore:Found propagated trace context:RuntimeWarning"),
]
LAST_WORDS = "for a 5 BTC buy."


def _answer(results) -> str:
    r = results[0]["json"]
    return f"{r['venue']} {r['symbol']} book {r['book_ts']}: VWAP {r['vwap']} {LAST_WORDS}"


@pytest.fixture(scope="module")
def slow_api(data_dir, tmp_path_factory) -> Iterator[str]:
    models.ALLOW_MODEL_REQUESTS = True  # the provider is 127.0.0.1
    model = tool_then_answer(
        "market_impact", {"symbol": "BTC", "side": "buy", "size": 5}, _answer, turn_s=3.0, pieces=6
    )
    with LoopbackLLM(model) as llm:
        settings = Settings(
            data_dir=data_dir,
            home_dir=tmp_path_factory.mktemp("stream-home"),
            venues=("binance",),
            api=ApiSettings(token=None, watch_symbols=("BTC/USDT",)),
            agent=AgentSettings(model="openai:loopback", base_url=llm.base_url, api_key="k"),
        )
        server = ApiServer(create_app(settings))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
            models.ALLOW_MODEL_REQUESTS = False


@pytest.fixture(scope="module")
def app_url(slow_api, tmp_path_factory) -> Iterator[str]:
    with streamlit_app(slow_api, tmp_path_factory.mktemp("streamlit-stream") / "streamlit.log") as url:
        yield url


def test_the_chat_page_shows_text_before_the_answer_is_complete(app_url, shots):  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(60_000)
            page.goto(app_url)
            box = page.get_by_test_id("stChatInputTextArea")
            box.wait_for()
            box.fill(QUESTION)
            box.press("Enter")
            t0 = time.monotonic()
            first: tuple[float, str] | None = None
            done_at: float | None = None
            while time.monotonic() - t0 < 90:
                msgs = page.get_by_test_id("stChatMessage")
                if msgs.count() >= 2:
                    text = msgs.nth(1).inner_text()
                    if first is None and "binance" in text:
                        first = (time.monotonic() - t0, text)
                    if msgs.nth(1).get_by_text(re.compile(r"Tool calls \(1\)")).count():
                        done_at = time.monotonic() - t0
                        break
                page.wait_for_timeout(100)
            assert first is not None, page.inner_text("body")[:2000]
            assert done_at is not None, page.inner_text("body")[:2000]
            final = page.get_by_test_id("stChatMessage").nth(1).inner_text()
            print(f"first text at {first[0]:.2f} s, answer complete at {done_at:.2f} s")
            assert LAST_WORDS in final, final
            assert LAST_WORDS not in first[1], first[1]  # a part of the answer was on screen first
            assert done_at - first[0] >= 1.0  # the other pieces came 0.5 s apart after it
            assert_no_exception(page)
            save(page, shots, "chat-streamed")
        finally:
            browser.close()
