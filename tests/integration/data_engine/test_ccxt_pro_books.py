"""ccxt.pro books for a venue without a native adapter (Poloniex), through the service layer and the
real ccxt.pro client, against a loopback server speaking Poloniex's WebSocket and REST protocols
(``testing/poloniex_server.py``) with a real recorded book (Binance ETHUSDT, hftbacktest).

References: the book messages the server sent, applied with Decimal here (price -> quantity, a
quantity of 0 removes the level), then walked with Decimal. Never the code under test.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from market_liquidity_monitor.config import DataEngineSettings, Settings
from market_liquidity_monitor.data_engine.errors import VenueUnreachableError
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.services import Services
from market_liquidity_monitor.testing.poloniex_server import PoloniexServer

POLO = InstrumentId("poloniex", "ETH/USDT")


@pytest.fixture
async def polo(data_dir: Path):
    srv = PoloniexServer(data_dir)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def pro_settings(base_url: str, home: Path, **de) -> Settings:
    cfg = {
        "rest_base_url": base_url,
        "pro_ws_base_url": base_url,
        "request_timeout_s": 3.0,
        "pro_backoff_initial_s": 0.05,
        "pro_backoff_max_s": 0.2,
        "pro_first_book_timeout_s": 20.0,  # returns as soon as the book is there (slow shared CI)
        **de,
    }
    return Settings(home_dir=home, venues=("poloniex",), data_engine=DataEngineSettings(**cfg))


def sent_book(messages: list[dict]) -> dict[str, dict[Decimal, Decimal]]:
    """The book a Poloniex client holds after ``messages`` (book_lv2 snapshot + updates)."""
    book: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    for msg in messages:
        (d,) = msg["data"]
        if msg["action"] == "snapshot":
            book = {"bids": {}, "asks": {}}
        for side in ("bids", "asks"):
            for p, q in d[side]:
                if Decimal(q) == 0:
                    book[side].pop(Decimal(p), None)
                else:
                    book[side][Decimal(p)] = Decimal(q)
    return book


def walk_asks(book: dict[str, dict[Decimal, Decimal]], size: Decimal) -> Decimal:
    """VWAP of a market buy of ``size`` walking the asks best first (Decimal)."""
    left, notional = size, Decimal(0)
    for p in sorted(book["asks"]):
        take = min(left, book["asks"][p])
        notional += take * p
        left -= take
        if left == 0:
            return notional / size
    raise AssertionError("book too thin for the reference walk")


async def until(pred, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await pred()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_ccxt_pro_book_is_labelled_and_its_vwap_is_a_walk_of_what_the_server_sent(
    polo: PoloniexServer, tmp_path: Path
) -> None:
    services = Services.build(pro_settings(polo.base_url, tmp_path), persist_alerts=False)
    try:
        res = await services.liquidity.impact("ETH", "buy", size=1, venue="poloniex")
        assert res.venue == "poloniex" and res.symbol == "ETH/USDT"
        assert res.book.source == "ccxt_pro" and res.book.verified is False
        assert res.book.integrity.startswith("unverified")
        assert polo.subscriptions == 1 and [m["action"] for m in polo.sent] == ["snapshot"]
        ref = sent_book(polo.sent)
        assert res.vwap == pytest.approx(float(walk_asks(ref, Decimal(1))), rel=1e-12)
        assert res.mid_price == pytest.approx(float((max(ref["bids"]) + min(ref["asks"])) / 2), rel=1e-12)

        # 40 recorded updates later the answer is a walk of the book after them
        assert await polo.publish(40) == 40
        last_ts_ns = polo.sent[-1]["data"][0]["ts"] * 1_000_000

        async def caught_up():
            book = await services.books.book(POLO)
            return book if book.provenance.book_ts_ns == last_ts_ns else None

        await until(caught_up, what="the 40th update")
        res2 = await services.liquidity.impact("ETH", "buy", size=5, venue="poloniex")
        ref2 = sent_book(polo.sent)
        assert ref2 != ref
        assert res2.book.source == "ccxt_pro"
        assert res2.vwap == pytest.approx(float(walk_asks(ref2, Decimal(5))), rel=1e-12)
        (st,) = services.books.pro.status()
        assert st.state == "watching" and st.venue == "poloniex" and st.updates >= 2 and st.errors == 0
    finally:
        await services.close()


async def test_server_killed_then_restarted(polo: PoloniexServer, tmp_path: Path) -> None:
    """Killed: no number from the old book (REST fails too: the venue is named unreachable, with the
    ccxt.pro reason); WebSocket alone down: REST answers, labelled; restarted: watching resumes."""
    services = Services.build(pro_settings(polo.base_url, tmp_path), persist_alerts=False)
    try:
        first = await services.liquidity.compare("ETH", "buy", size=1, venues=["poloniex"])
        assert [r.venue for r in first.venues] == ["poloniex"]
        assert first.venues[0].book.source == "ccxt_pro"

        await polo.stop()

        async def dropped():
            return [s for s in services.books.pro.status() if s.state == "reconnecting"]

        await until(dropped, what="the watcher to see the connection drop")
        with pytest.raises(InvalidInputError) as info:  # no venue left: the reason, no number
            await services.liquidity.compare("ETH", "buy", size=1, venues=["poloniex"])
        msg = str(info.value)
        assert "poloniex" in msg and "unreachable" in msg and "ccxt.pro" in msg and "Connection closed" in msg
        with pytest.raises(VenueUnreachableError, match=r"ccxt\.pro poloniex ETH/USDT"):
            await services.liquidity.impact("ETH", "buy", size=1, venue="poloniex")

        # REST back, WebSocket refused: a REST snapshot, labelled rest, equal to the server's book
        await polo.set_ws_enabled(False)
        await polo.start()
        res = await services.liquidity.impact("ETH", "buy", size=1, venue="poloniex")
        assert res.book.source == "rest" and res.book.verified is False
        top = polo.top()
        ref = {"bids": {}, "asks": {Decimal(p): Decimal(q) for p, q in top["asks"].items()}}
        assert res.vwap == pytest.approx(float(walk_asks(ref, Decimal(1))), rel=1e-12)

        # WebSocket back: the watcher reconnects by itself and subscribes again
        await polo.set_ws_enabled(True)
        subs = polo.subscriptions

        async def resumed():
            st = services.books.pro.status()
            return polo.subscriptions > subs and st and st[0].state == "watching"

        await until(resumed, what="the watch to resume")
        again = await services.liquidity.impact("ETH", "buy", size=1, venue="poloniex")
        assert again.book.source == "ccxt_pro"
        assert again.vwap == pytest.approx(float(walk_asks(sent_book(polo.sent), Decimal(1))), rel=1e-12)
        (st,) = services.books.pro.status()
        assert st.reconnects >= 1 and st.errors >= 1 and st.last_error
    finally:
        await services.close()


async def test_idle_book_stops_being_watched_and_close_ends_every_watch(
    polo: PoloniexServer, tmp_path: Path
) -> None:
    services = Services.build(pro_settings(polo.base_url, tmp_path, pro_idle_ttl_s=0.3), persist_alerts=False)
    try:
        book = await services.books.book(POLO)
        assert book.provenance.source == "ccxt_pro"
        assert services.books.pro.watched() == [POLO]

        async def reaped():
            return services.books.pro.watched() == [] and polo.connections == 0

        await until(reaped, timeout_s=20.0, what="the idle book to be dropped")
        # asked again: watched again
        assert (await services.books.book(POLO)).provenance.source == "ccxt_pro"
        assert polo.subscriptions == 2
    finally:
        await services.close()
    assert services.books.pro.watched() == []

    async def disconnected():
        return polo.connections == 0

    await until(disconnected, timeout_s=20.0, what="close() to disconnect")


async def test_native_venues_never_use_ccxt_pro(tmp_path: Path) -> None:
    settings = pro_settings("http://127.0.0.1:9", tmp_path)
    services = Services.build(settings, persist_alerts=False)
    try:
        pro = services.books.pro
        assert not pro.supports("binance") and not pro.supports("kraken")  # native adapters
        assert pro.supports("poloniex")
        assert not pro.supports("no-such-venue")
    finally:
        await services.close()
    off = Services.build(
        pro_settings("http://127.0.0.1:9", tmp_path, pro_enabled=False), persist_alerts=False
    )
    try:
        assert not off.books.pro.supports("poloniex")
    finally:
        await off.close()


async def test_health_and_api_status_show_each_watch(polo: PoloniexServer, tmp_path: Path) -> None:
    import httpx

    from market_liquidity_monitor.api.app import create_app

    settings = pro_settings(polo.base_url, tmp_path)
    services = Services.build(settings, persist_alerts=False)
    app = create_app(settings, services=services)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mlm.test") as client:
                assert (await services.books.book(POLO)).provenance.source == "ccxt_pro"
                health = await services.health.venue_health("poloniex")
                (row,) = health.books
                assert (row.venue, row.symbol, row.source, row.warning) == (
                    "poloniex",
                    "ETH/USDT",
                    "ccxt_pro",
                    None,
                )
                (w,) = health.ccxt_pro
                assert w["state"] == "watching" and w["updates"] >= 1 and w["reconnects"] == 0
                assert w["errors"] == 0 and 0 <= w["last_update_age_ms"] < 10_000

                body = (await client.get("/api/status")).json()
                (w,) = body["ccxt_pro"]
                assert (w["venue"], w["symbol"], w["state"]) == ("poloniex", "ETH/USDT", "watching")
                # the watched ETH/USDT (api.watch_symbols) is judged on its ccxt.pro book
                (book,) = [b for b in body["books"] if (b["venue"], b["symbol"]) == ("poloniex", "ETH/USDT")]
                assert book["watched"] is True
                assert book["source"] == "ccxt_pro" and book["ok"] is True
                (venue,) = [v for v in body["venues"] if v["venue"] == "poloniex"]
                assert venue["connection"] == "ccxt_pro"

                await polo.stop()

                async def reconnecting():
                    return [s for s in services.books.pro.status() if s.state == "reconnecting"]

                await until(reconnecting, what="the drop")
                body = (await client.get("/api/status")).json()
                (w,) = body["ccxt_pro"]
                assert (
                    w["state"] == "reconnecting"
                    and w["errors"] >= 1
                    and "Connection closed" in w["last_error"]
                )
                (venue,) = [v for v in body["venues"] if v["venue"] == "poloniex"]
                assert venue["connection"] != "ccxt_pro"
                # the held copy is not "ok" while its watch is down, however young it is
                (book,) = [b for b in body["books"] if (b["venue"], b["symbol"]) == ("poloniex", "ETH/USDT")]
                assert book["ok"] is False and "ccxt.pro watch reconnecting" in book["problem"]
                (row,) = (await services.health.venue_health("poloniex")).books
                assert row.source == "ccxt_pro" and row.warning.startswith("ccxt.pro watch reconnecting")
    finally:
        await services.close()


async def test_mlm_ask_answers_from_a_ccxt_pro_book(polo: PoloniexServer, tmp_path: Path) -> None:
    """The command line as a user runs it: no --data, REST and WebSocket hosts pointed at the stand-in."""
    import json
    import os
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLM_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_"))
    }
    env.update(
        MLM_DATA_ENGINE__REST_BASE_URL=polo.base_url,
        MLM_DATA_ENGINE__PRO_WS_BASE_URL=polo.base_url,
        MLM_HOME_DIR=str(tmp_path),
        MLM_VENUES='["poloniex"]',
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "market_liquidity_monitor.cli", "ask",
        "How much slippage would a 40 ETH market buy cause on Poloniex?", "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    payload = json.loads(out.decode().strip().splitlines()[-1])
    (call,) = payload["tool_calls"]
    r = call["result"]
    assert call["tool"] == "market_impact" and r["venue"] == "poloniex"
    assert r["book"]["source"] == "ccxt_pro" and r["book"]["verified"] is False
    assert r["vwap"] == pytest.approx(float(walk_asks(sent_book(polo.sent), Decimal(40))), rel=1e-12)
    assert r["levels_consumed"] >= 2
    assert "ccxt_pro unverified" in payload["answer"]
    assert polo.subscriptions == 1 and polo.connections == 0  # the process closed its connection
