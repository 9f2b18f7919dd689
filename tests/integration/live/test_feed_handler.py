"""``FeedHandler``: two symbols on two connections sharing one REST weight bucket; an abrupt
disconnect of both makes both resync through that bucket and end equal to the clean replays."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest

from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.fake_venue import FakeBinanceVenue, Fault
from market_liquidity_monitor.ingest.live import FeedHandler
from market_liquidity_monitor.ingest.replay import Replayer, merge, read_hftbacktest
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

from .conftest import FAST, PREFIX_LINES, RATE

ETH = InstrumentId("binance", "ETH/USDT")
BTC = InstrumentId("binance", "BTC/USDT")


@pytest.fixture(scope="module")
def two_symbols(data_dir):
    d = data_dir / "hftbacktest" / "spot"
    btc = list(
        itertools.islice(read_hftbacktest(d / "btcusdt_20240808.gz", "binance", "BTCUSDT"), PREFIX_LINES)
    )
    eth = list(
        itertools.islice(
            read_hftbacktest(d / "ethusdt_20240808.gz", "binance", "ETHUSDT", seq_base=10**9), PREFIX_LINES
        )
    )
    refs = {}
    for inst, recs in ((BTC, btc), (ETH, eth)):
        reg = AdapterRegistry()
        store = BookStore(reg, clock=ReplayClock())
        Replayer(store, reg).run(recs)
        refs[inst] = store.entry(inst).book
    return list(merge(btc, eth)), refs


async def test_feed_handler_two_connections_disconnect_and_resync(two_symbols):
    records, refs = two_symbols
    reg = AdapterRegistry()
    store = BookStore(reg)
    async with FakeBinanceVenue(records, max_rate_per_s=2 * RATE) as fake:
        fh = FeedHandler(
            store,
            reg,
            FAST,
            max_symbols_per_connection=1,
            ws_url=fake.ws_url,
            rest_base_url=fake.rest_url,
            silence_timeout_s=3.0,
        )
        conns = fh.add_feed("binance", ["BTC/USDT", "ETH/USDT"])
        assert len(conns) == 2 and conns[0].limiter is conns[1].limiter
        task = asyncio.create_task(fh.run())
        try:
            async with asyncio.timeout(15):
                for c in conns:
                    assert await c.wait_synced(5)
                fake.inject(Fault.DISCONNECT)
                await fake.done.wait()
                final = fake.final_update_id
                while not all(
                    store.entry(i).book.sequence == final[vs] and store.entry(i).book.quality.synced
                    for i, vs in ((BTC, "BTCUSDT"), (ETH, "ETHUSDT"))
                ):
                    await asyncio.sleep(0.005)
            status = fh.status()
        finally:
            fh.stop()
            with contextlib.suppress(asyncio.CancelledError):
                async with asyncio.timeout(5):
                    await task
    for c in conns:
        assert c.counters.reconnects == 1 and c.counters.snapshots_fetched == 2
    # Both resyncs (and both initial syncs) went through the one shared bucket: 4 x weight 250.
    assert status["rate_limiters"]["binance"]["acquired_weight"] == 4 * 250
    assert [s["symbols"] for s in status["connections"]] == [["BTC/USDT"], ["ETH/USDT"]]
    for inst, ref in refs.items():
        book = store.entry(inst).book
        assert book.quality.resyncs == 1
        assert book.sequence == ref.sequence
        assert book.levels_scaled() == ref.levels_scaled(), inst
