"""``MarketData.resolve`` remembers its answers (hits and misses) per instrument set: a compare
asks every venue for the symbol, and the scan over every instrument was ~15% of its CPU. The
memo must never outlive the set it was computed from: a book that appears later (a live feed, a
recording loaded) is found, and a remembered miss still raises with the valid names."""

from __future__ import annotations

import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import UnknownSymbolError, UnknownVenueError
from market_liquidity_monitor.domain.events import L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.market_data import MarketData, pick_instrument

T0 = 1_723_161_600_000_000_000


def _book(market: MarketData, inst: InstrumentId, seq: int = 1) -> None:
    market.store.on_event(L2Snapshot(inst, [("100.0", "2.0")], [("101.0", "1.0")], seq, None, T0 + seq))


def test_memo_follows_the_instrument_set():
    market = MarketData(Settings())
    _book(market, InstrumentId("kraken", "BTC/USD"))
    assert market.resolve("btc", "kraken") == InstrumentId("kraken", "BTC/USD")
    with pytest.raises(UnknownSymbolError) as miss:
        market.resolve("ETH/USD", "kraken")
    with pytest.raises(UnknownSymbolError) as again:  # remembered: the same error, valid names included
        market.resolve("ETH/USD", "kraken")
    assert str(again.value) == str(miss.value) and "BTC/USD" in str(again.value)

    _book(market, InstrumentId("kraken", "ETH/USD"), seq=2)  # a book that appears later is found
    assert market.resolve("ETH/USD", "kraken") == InstrumentId("kraken", "ETH/USD")
    _book(market, InstrumentId("kraken", "BTC/USDT"), seq=3)
    assert market.resolve("BTC/USDT", "kraken") == InstrumentId("kraken", "BTC/USDT")
    with pytest.raises(UnknownVenueError):
        market.resolve("BTC", "nosuchvenue")


def test_memo_agrees_with_a_fresh_pick_on_recorded_data(data_dir):
    settings = Settings()
    market = MarketData.from_recordings(settings, data_dir)
    everything = market.instruments()
    for sym in ("BTC", "btc/usdt", "ETH/USD", "XBT", "SOL/USDT", "DOGE"):
        for venue in [*sorted({i.venue for i in everything}), None]:
            for _ in range(2):  # first call computes, second comes from the memo
                cands = everything if venue is None else [i for i in everything if i.venue == venue]
                want = pick_instrument(sym.strip().upper(), cands, settings.agent.default_venue)
                if want is None:
                    with pytest.raises(UnknownSymbolError):
                        market.resolve(sym, venue)
                else:
                    assert market.resolve(sym, venue) == want, (sym, venue)
