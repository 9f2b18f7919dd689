"""Time travel on the recorded Binance spot BTC/USDT book: answers ``as_of`` an instant equal an
independent Decimal rebuild of the raw recording up to that instant, and differ from the answer on
the book at the recording's end.

The reference applies the raw hftbacktest lines itself (https://github.com/nkaz001/hftbacktest
file layout: ``<receive ns> <json>``; one REST depth snapshot with ``lastUpdateId``): Binance's
documented rule for a local book (https://developers.binance.com/docs/binance-spot-api-docs/
web-socket-streams#how-to-manage-a-local-order-book-correctly): drop events with ``u`` <=
``lastUpdateId``, then apply each ``depthUpdate`` in order, absolute sizes, size 0 deletes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.ingest.timetravel import AsOfOutOfRangeError
from market_liquidity_monitor.market_data import MarketData
from tests.support import services_for
from tests.timetravel_reference import _ns, decimal_book, decimal_vwap_buy

AS_OF = "2024-08-08T23:58:00Z"


@pytest.fixture(scope="module")
def services(data_dir, tmp_path_factory):
    settings = Settings(data_dir=data_dir, ingest={"checkpoint_dir": tmp_path_factory.mktemp("ckpt")})
    return services_for(settings, MarketData.from_recordings(settings, data_dir))


def run(coro):
    return asyncio.run(coro)


def test_as_of_book_and_impact_equal_a_decimal_rebuild(services, data_dir):
    bids, asks, last_recv, last_event = decimal_book(data_dir, _ns(AS_OF))
    ob = run(services.liquidity.order_book("BTC/USDT", "binance", levels=25, as_of=AS_OF))
    assert ob.book.as_of == "2024-08-08T23:58:00.000Z"
    assert ob.bids == [(float(p), float(bids[p])) for p in sorted(bids, reverse=True)[:25]]
    assert ob.asks == [(float(p), float(asks[p])) for p in sorted(asks)[:25]]
    # The book's time is its last update at or before as_of: venue time E (ms), receive time <= as_of.
    assert ob.book.book_ts_ns == last_event * 1_000_000
    assert _ns(ob.book.book_received_ts) == last_recv // 1_000_000 * 1_000_000
    assert last_recv <= _ns(AS_OF)
    assert ob.book.age_ms == pytest.approx((_ns(AS_OF) - last_recv) / 1e6, abs=0.1)

    imp = run(services.liquidity.impact("BTC", "buy", 5, None, "binance", as_of=AS_OF))
    assert imp.vwap == pytest.approx(float(decimal_vwap_buy(asks, Decimal(5))), rel=1e-12)
    best_bid, best_ask = max(bids), min(asks)
    assert imp.mid_price == pytest.approx(float((best_bid + best_ask) / 2), rel=1e-12)

    # ...and differ from the answer on the book at the end of the recording.
    end = run(services.liquidity.impact("BTC", "buy", 5, None, "binance"))
    assert end.book.as_of is None
    assert end.mid_price != imp.mid_price and end.vwap != imp.vwap
    _, e_asks, _, _ = decimal_book(data_dir, 2**62)
    assert end.vwap == pytest.approx(float(decimal_vwap_buy(e_asks, Decimal(5))), rel=1e-12)


def test_a_second_instant_is_rebuilt_from_a_checkpoint_not_the_start(services, data_dir):
    as_of = "2024-08-09T00:02:30.5Z"
    bids, asks, _, _ = decimal_book(data_dir, _ns(as_of))
    ms = run(services.liquidity.max_size("BTC/USDT", "buy", 5, "binance", as_of=as_of))
    assert ms.book.as_of == "2024-08-09T00:02:30.500Z"
    tl = services.market.timeline(services.market._known[ms_inst(services)])
    assert tl.checkpoints > 10  # one every 30 s of the ~11 min recording
    ob = run(services.liquidity.order_book("BTC/USDT", "binance", levels=5, as_of=as_of))
    assert ob.bids[0][0] == float(max(bids)) and ob.asks[0][0] == float(min(asks))


def ms_inst(services):
    return run(services.books.resolve("BTC/USDT", "binance"))


def test_as_of_outside_the_recording_names_the_valid_range(services):
    with pytest.raises(AsOfOutOfRangeError) as err:
        run(services.liquidity.order_book("BTC/USDT", "binance", as_of="2024-08-08T23:00:00Z"))
    msg = str(err.value)
    assert "2024-08-08T23:54:14.206Z" in msg and "2024-08-09T00:05:04.535Z" in msg
    with pytest.raises(InvalidInputError, match="ISO 8601"):
        run(services.liquidity.order_book("BTC/USDT", "binance", as_of="yesterday"))


def test_compare_as_of_uses_the_books_at_that_instant(services, data_dir):
    ans = run(services.liquidity.compare("BTC", "buy", 5, venues=["binance", "binancecoinm"], as_of=AS_OF))
    assert ans.as_of == "2024-08-08T23:58:00.000Z"
    rows = {r.venue: r for r in ans.venues}
    assert set(rows) == {"binance", "binancecoinm"}
    for r in rows.values():
        assert r.book.as_of == ans.as_of and _ns(r.book.book_received_ts) <= _ns(AS_OF)
    bids, asks, _, _ = decimal_book(data_dir, _ns(AS_OF))
    assert rows["binance"].mid_price == pytest.approx(float((max(bids) + min(asks)) / 2), rel=1e-12)
