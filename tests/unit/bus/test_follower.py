"""The bus rebuild in one process (``InProcessBus``): a replica fed by a worker's stream equals
the worker's book; a lost message is a gap on the replica (counted), and the next checkpoint image
resyncs it (counted); Redis-free, on the recorded OKX capture (CRC32-checked books)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from market_liquidity_monitor.bus import codec
from market_liquidity_monitor.bus.follower import BookFollower, bus_adapters
from market_liquidity_monitor.bus.publisher import PublishingStore
from market_liquidity_monitor.bus.transport import InProcessBus
from market_liquidity_monitor.bus.worker import parse_shard, shard_venues
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import ReadStats, Replayer, discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
OKX = DATA / "cryptofeed" / "OKX.ws.1.0.gz"
BTC = InstrumentId("okx", "BTC/USDT")


class LossyBus(InProcessBus):
    """An in-process bus that loses the ``lose``-th delta of ``key`` (a dropped network batch)."""

    def __init__(self, key: str, lose: int):
        super().__init__()
        self.key, self.lose, self.seen = key, lose, 0

    def publish(self, shard, messages, images=None):
        kept = []
        for m in messages:
            d = codec.loads(m)
            if d[0] == codec.DELTA and d[1] == self.key:
                self.seen += 1
                if self.seen == self.lose:
                    continue
            kept.append(m)
        return super().publish(shard, kept, images)


def _replay(bus) -> tuple[PublishingStore, BookStore]:
    if not OKX.is_file():
        pytest.skip("recorded OKX capture missing")
    reg = AdapterRegistry()
    # Book ages on the recording's clock, as in the worker (ShardWorker sets it per timeline).
    worker = PublishingStore(reg, bus, 0, 1, clock=ReplayClock())
    bus.register_shard(0, 1, worker.epoch)
    ref = BookStore(reg)  # the single-process book, replayed independently
    for g in discover(DATA, venues=["okx"]):
        Replayer(worker, reg).run(g.records(ReadStats()))
        Replayer(ref, reg).run(g.records(ReadStats()))
    worker.tick()
    worker.flush()
    return worker, ref


def _follow(bus) -> tuple[BookFollower, BookStore]:
    store = BookStore(bus_adapters(AdapterRegistry()))
    f = BookFollower(bus, store, block_ms=0)
    while f.poll():
        pass
    return f, store


def test_replica_equals_single_process_book():
    worker, ref = _replay(InProcessBus())
    f, store = _follow(worker.bus)
    assert store.instruments() == ref.instruments()
    for inst in ref.instruments():
        assert store.entry(inst).book.levels_scaled() == ref.entry(inst).book.levels_scaled(), inst
        assert store.entry(inst).book.quality.gaps == 0
    assert f.counters.gaps == 0
    assert ref.entry(BTC).book.quality.checksums_verified > 50  # deltas the lossy test can lose one of


def test_lost_delta_is_a_gap_and_the_next_checkpoint_resyncs():
    bus = LossyBus(codec.inst_key(BTC), lose=50)
    worker, ref = _replay(bus)
    f, store = _follow(bus)
    e = store.entry(BTC)
    assert (f.counters.gaps, e.book.quality.gaps, e.book.quality.synced) == (1, 1, False)
    worker.tick(checkpoint=True)  # the periodic image of every synced book
    worker.flush()
    while f.poll():
        pass
    assert e.book.quality.synced and e.book.quality.resyncs == 1
    assert e.book.levels_scaled() == ref.entry(BTC).book.levels_scaled()


def test_worker_down_marks_stale_and_heartbeat_clears():
    worker, _ = _replay(InProcessBus())
    f, store = _follow(worker.bus)
    f.heartbeat_timeout_s = 0.0
    f.check_heartbeats()
    assert store.quality(store.entry(BTC))["stale"] is True
    f.heartbeat_timeout_s = 60.0
    worker.tick()
    worker.flush()
    while f.poll():
        pass
    assert store.quality(store.entry(BTC))["stale"] is False


def test_shards_split_venues_and_bad_shard_is_refused():
    venues = ["okx", "binance", "kraken", "bitstamp", "binance"]
    parts = [shard_venues(venues, i, 3) for i in range(3)]
    assert parts == [["binance", "okx"], ["bitstamp"], ["kraken"]]
    assert parse_shard("1/2") == (1, 2)
    for bad in ("2/2", "-1/2", "1", "a/b"):
        with pytest.raises(ValueError, match="I/N"):
            parse_shard(bad)


def test_replica_books_can_be_read_while_the_follower_applies():
    """API requests read the replica's store while the follower thread writes it: every read
    (view, quality, listing) must see a whole message applied or not, never raise mid-update."""
    import threading

    from market_liquidity_monitor.bus.follower import ReplicaStore
    from market_liquidity_monitor.domain.errors import BookNotReadyError

    bus = InProcessBus()
    reg = AdapterRegistry()
    worker = PublishingStore(reg, bus, 0, 1, clock=ReplayClock())
    bus.register_shard(0, 1, worker.epoch)
    worker.start()
    store = ReplicaStore(bus_adapters(AdapterRegistry()))
    f = BookFollower(bus, store, block_ms=10)
    stop = threading.Event()
    threading.Thread(target=f.run, args=(stop,), daemon=True).start()
    feed = threading.Thread(
        target=lambda: [
            Replayer(worker, reg).run(g.records(ReadStats())) for g in discover(DATA, venues=["okx"])
        ]
    )
    feed.start()
    reads = 0
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show, if any
    try:
        while feed.is_alive() or reads < 50:
            for inst in store.instruments():
                try:
                    v = store.view(inst.venue, inst.symbol)
                    assert len(v.bid_prices) == len(v.bid_sizes)
                except BookNotReadyError:
                    pass
                store.quality(store.find(inst.venue, inst.symbol))
                reads += 1
    finally:
        sys.setswitchinterval(switch)
        feed.join()
        worker.stop()
        deadline = time.monotonic() + 10
        while f.counters.deltas_applied < worker.counters.deltas and time.monotonic() < deadline:
            stop.wait(0.05)
        stop.set()
    assert reads > 50 and f.counters.deltas_applied == worker.counters.deltas
