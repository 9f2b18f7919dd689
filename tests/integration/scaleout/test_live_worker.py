"""A live ingest worker (``mlm ingest --shard 0/1 --bus``, no ``--data``) as a process: its
WebSocket feeds run against the loopback fake Binance venue (real WebSocket + REST protocol,
recorded BTC/ETH spot frames); a follower reading Redis Streams ends with books equal, level by
level, to the recorded stream replayed in this test."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from market_liquidity_monitor.bus.follower import BookFollower, ReplicaStore, bus_adapters
from market_liquidity_monitor.bus.transport import RedisStreamsBus
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.fake_venue import FakeBinanceVenue
from market_liquidity_monitor.ingest.replay import Replayer, merge, read_hftbacktest
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

from .conftest import DATA

pytestmark = pytest.mark.timeout(120)
LINES = 3000  # ~28 s of each recorded stream
BTC, ETH = InstrumentId("binance", "BTC/USDT"), InstrumentId("binance", "ETH/USDT")


def recorded():
    d = DATA / "hftbacktest" / "spot"
    if not (d / "btcusdt_20240808.gz").is_file():
        pytest.skip("recorded hftbacktest spot data missing")
    btc = list(itertools.islice(read_hftbacktest(d / "btcusdt_20240808.gz", "binance", "BTCUSDT"), LINES))
    eth = list(
        itertools.islice(
            read_hftbacktest(d / "ethusdt_20240808.gz", "binance", "ETHUSDT", seq_base=10**9), LINES
        )
    )
    refs = {}
    for inst, recs in ((BTC, btc), (ETH, eth)):
        reg = AdapterRegistry()
        store = BookStore(reg, clock=ReplayClock())
        Replayer(store, reg).run(recs)
        refs[inst] = store.entry(inst).book
    return list(merge(btc, eth)), refs


async def test_live_worker_publishes_books_equal_to_the_recorded_stream(redis_url, procs):
    records, refs = recorded()
    async with FakeBinanceVenue(records, max_rate_per_s=3000) as fake:
        procs.env.update(
            MLM_VENUES=json.dumps(["binance"]),
            MLM_API__WATCH_SYMBOLS=json.dumps(["BTC/USDT", "ETH/USDT"]),
            MLM_INGEST__WS_BASE_URL=fake.ws_url,
            MLM_INGEST__REST_BASE_URL=fake.rest_url,
            # A (re)sync snapshot carries the whole true book (~1,170 bid levels by the end), so
            # books compare exactly with the replayed stream.
            MLM_INGEST__SNAPSHOT_LIMIT="5000",
        )
        procs.start("live-worker", "ingest", "--shard", "0/1", "--bus", redis_url)
        store = ReplicaStore(bus_adapters(AdapterRegistry()))
        follower = BookFollower(RedisStreamsBus(redis_url), store, block_ms=50)
        final = None
        try:
            async with asyncio.timeout(90):
                await fake.done.wait()
                final = fake.final_update_id
                while True:
                    await asyncio.to_thread(follower.poll)
                    books = [store.entry(i).book for i in (BTC, ETH)] if len(store.instruments()) == 2 else []
                    if books and all(
                        b.quality.synced and b.levels_scaled() == refs[i].levels_scaled()
                        for b, i in zip(books, (BTC, ETH), strict=True)
                    ):
                        break
        except TimeoutError:
            pytest.fail(f"replica books never equalled the recorded ones: {follower.status()} "
                        f"{final} {procs.log('live-worker')}")  # fmt: skip
    assert (
        follower.counters.deltas_applied > 50 and follower.counters.images_applied >= 2
    )  # deltas, not one image
    assert follower.counters.gaps == 0
    assert follower.status()["shards"][0]["down"] is False
