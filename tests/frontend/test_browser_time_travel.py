"""Time travel in a real browser (Debian chromium + Playwright, as tests/frontend/test_browser.py):
moving the Live book time slider rebuilds the book to another instant of the recording, and the
book time the page shows changes with it; the API agrees on the book at that instant."""

from __future__ import annotations

import re
import time

import httpx

from .test_browser import assert_no_exception, page, pytestmark, save, settle, shots, streamlit_url  # noqa: F401

BOOK_TIME = re.compile(r"BTC/USDT on binance — book time (\d{4}-\d\d-\d\d \d\d:\d\d[:\d.]*) UTC")


def book_time(pg) -> str:
    pg.get_by_text("Cumulative depth — BTC/USDT on binance").first.wait_for()
    m = BOOK_TIME.search(pg.inner_text("body"))
    assert m, pg.inner_text("body")[:2000]
    return m.group(1)


def book_time_change(pg, old: str, timeout_s: float = 240) -> str:
    """The book time once the page shows another one than ``old`` (a rerun keeps the previous
    elements on screen until it replaces them; the first rebuild replays the recording once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        settle(pg)
        now = book_time(pg)
        if now != old or time.monotonic() > deadline:
            return now
        pg.wait_for_timeout(1000)


def test_live_book_time_slider_moves_the_book(page, streamlit_url, shots, api_server):  # noqa: F811
    page.goto(f"{streamlit_url}/live_book")
    settle(page)
    page.get_by_text("Book time (UTC)").first.wait_for()
    latest = book_time(page)
    assert "Latest recorded books" in page.inner_text("body")

    slider = page.get_by_test_id("stSlider").filter(has_text="Book time (UTC)").get_by_role("slider")
    slider.focus()
    slider.press("Home")  # the first instant of the recording
    settle(page)
    page.get_by_text("Books rebuilt to").first.wait_for()
    first = book_time_change(page, latest)
    assert first != latest and first < latest, (first, latest)
    rebuilt = re.search(r"Books rebuilt to (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", page.inner_text("body"))
    assert rebuilt, page.inner_text("body")[:2000]
    # The API's book at the instant the page asked for is the one the page shows.
    as_of = rebuilt.group(1).replace(" ", "T") + "Z"
    api = httpx.get(f"{api_server.url}/api/orderbook/binance/BTC/USDT", params={"as_of": as_of}, timeout=120)
    assert api.status_code == 200, api.text
    assert api.json()["book"]["book_ts"].replace("T", " ").removesuffix("Z").startswith(first[:19])
    for _ in range(30):  # 30 s later (one second per step)
        slider.press("ArrowRight")
    later = book_time_change(page, first)
    assert first < later <= latest, (first, later, latest)
    assert_no_exception(page)
    save(page, shots, "live_book_time_travel")
