"""Answers remembered per book state (``LiquidityService._AnswerMemo``, ``BookService._provenance_of``):
an unchanged book gives the very same answer object (and the REST route the same bytes), any
update gives a new answer computed on the new book, and time-travel questions are never served
from the memo.

Books: the recorded Binance spot and USD-M BTCUSDT streams (hftbacktest, 2024-08-08) fed record by
record into a live-mode store, as live ingest would. References: Decimal walks of the book levels
read from the store at the moment of the question, never the code under test.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import Replayer, merge, read_hftbacktest
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.venues.registry import AdapterRegistry
from tests.support import decimal_vwap, services_for


class Feed:
    """The two recordings merged on one clock, replayed into the store a slice at a time."""

    def __init__(self, data_dir: Path):
        hft = data_dir / "hftbacktest"
        spot = read_hftbacktest(hft / "spot" / "btcusdt_20240808.gz", "binance", "BTCUSDT")
        perp = read_hftbacktest(
            hft / "usdm" / "btcusdt_20240808.gz", "binanceusdm", "BTCUSDT", seq_base=10**9
        )
        self.records = merge(spot, perp)
        self.registry = AdapterRegistry()
        self.clock = ReplayClock()
        self.store = BookStore(self.registry, clock=self.clock)
        self.replayer = Replayer(self.store, self.registry, clock=self.clock)

    def advance(self, n: int) -> None:
        self.replayer.run(itertools.islice(self.records, n))


@pytest.fixture()
def live(data_dir: Path, tmp_path: Path):
    feed = Feed(data_dir)
    feed.advance(60_000)  # both books synced (each starts from its recorded REST snapshot)
    settings = Settings(home_dir=tmp_path)
    market = MarketData(settings, store=feed.store, registry=feed.registry, clock=feed.clock)
    services = services_for(settings, market)
    return feed, services


def _ask_levels(store: BookStore, venue: str, symbol: str):
    v = store.view(venue, symbol)
    return v.ask_prices, v.ask_sizes


async def test_an_unchanged_book_gives_the_same_answer_and_an_update_a_new_one(live) -> None:
    feed, services = live
    liq = services.liquidity
    first = await liq.impact("BTC/USDT", "buy", size=5, venue="binance")
    again = await liq.impact("BTC/USDT", "buy", size=5, venue="binance")
    assert again is first  # nothing arrived in between: not walked again
    assert first.vwap == pytest.approx(
        float(decimal_vwap(*_ask_levels(feed.store, "binance", "BTC/USDT"), Decimal(5))), rel=1e-12
    )

    # the book moves: feed until the Binance spot ask side differs from the one walked
    before = [float(x) for x in feed.store.view("binance", "BTC/USDT").ask_prices[:50]]
    for _ in range(200):
        feed.advance(500)
        now = feed.store.view("binance", "BTC/USDT")
        if [float(x) for x in now.ask_prices[:50]] != before:
            break
    else:
        pytest.fail("the recording never moved the top 50 ask levels")
    moved = await liq.impact("BTC/USDT", "buy", size=5, venue="binance")
    assert moved is not first
    assert moved.book.book_ts_ns >= first.book.book_ts_ns
    assert moved.vwap == pytest.approx(
        float(decimal_vwap(*_ask_levels(feed.store, "binance", "BTC/USDT"), Decimal(5))), rel=1e-12
    )
    # another question on the same book is remembered separately
    sell = await liq.impact("BTC/USDT", "sell", size=5, venue="binance")
    assert sell is not moved and sell.side != moved.side


async def test_compare_follows_every_book_it_read(live) -> None:
    feed, services = live
    liq = services.liquidity
    venues = ["binance", "binanceusdm"]
    first = await liq.compare("BTC", "buy", size=5, venues=venues)
    assert await liq.compare("BTC", "buy", size=5, venues=venues) is first
    # a different fee is a different question
    cheaper = await liq.compare("BTC", "buy", size=5, venues=venues, fees_bps={"binance": 0.0})
    assert cheaper is not first
    row = next(r for r in cheaper.venues if r.venue == "binance")
    assert row.fee_bps == 0.0

    # one record at a time until one changes the USD-M book alone: the comparison is computed again
    def arrays(venue: str, symbol: str):
        return feed.store.view(venue, symbol).ask_prices

    last = first
    for rec in feed.records:
        spot, usdm = arrays("binance", "BTC/USDT"), arrays("binanceusdm", "BTC/USDT:USDT")
        feed.replayer.run([rec])
        if arrays("binance", "BTC/USDT") is not spot:  # spot moved: ask again on this state
            last = await liq.compare("BTC", "buy", size=5, venues=venues)
            continue
        if arrays("binanceusdm", "BTC/USDT:USDT") is not usdm:
            break
    else:
        pytest.fail("the recording ended before a USD-M update")
    moved = await liq.compare("BTC", "buy", size=5, venues=venues)
    assert moved is not last and moved is not first
    usdm = next(r for r in moved.venues if r.venue == "binanceusdm")
    ref = decimal_vwap(*_ask_levels(feed.store, "binanceusdm", "BTC/USDT:USDT"), Decimal(5))
    assert usdm.vwap == pytest.approx(float(ref), rel=1e-12)


async def test_order_book_answer_and_its_json_are_reused_only_while_the_book_is(live) -> None:
    from market_liquidity_monitor.api.routes import answer_response

    feed, services = live
    liq = services.liquidity
    a = await liq.order_book("BTC/USDT", "binance", levels=20)
    b = await liq.order_book("BTC/USDT", "binance", levels=20)
    assert b is a
    assert answer_response(a).body == answer_response(b).body == a.model_dump_json(by_alias=True).encode()
    other_levels = await liq.order_book("BTC/USDT", "binance", levels=5)
    assert other_levels is not a and len(other_levels.asks) == 5
    feed.advance(5_000)
    c = await liq.order_book("BTC/USDT", "binance", levels=20)
    view = feed.store.view("binance", "BTC/USDT")
    assert c.asks == [
        (float(p), float(s)) for p, s in zip(view.ask_prices[:20], view.ask_sizes[:20], strict=True)
    ]
    assert c.bids == [
        (float(p), float(s)) for p, s in zip(view.bid_prices[:20], view.bid_sizes[:20], strict=True)
    ]


async def test_time_travel_answers_are_not_remembered(data_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=data_dir, home_dir=tmp_path)
    services = services_for(settings, MarketData.from_recordings(settings, data_dir))
    liq = services.liquidity
    at = "2024-08-08T23:58:00Z"
    a = await liq.impact("BTC/USDT", "buy", size=5, venue="binance", as_of=at)
    b = await liq.impact("BTC/USDT", "buy", size=5, venue="binance", as_of=at)
    assert a is not b and a == b
    assert len(liq._answers._entries) == 0
