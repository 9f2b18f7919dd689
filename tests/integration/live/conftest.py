"""Fixtures for the live-client tests: the recorded BTCUSDT spot prefix, its reference book, and a
helper that runs the real ``VenueConnection`` against the loopback ``FakeBinanceVenue``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

import pytest

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.config import IngestSettings
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.fake_venue import FakeBinanceVenue
from market_liquidity_monitor.ingest.live import VenueConnection
from market_liquidity_monitor.ingest.replay import RawRecord, Replayer, read_hftbacktest
from market_liquidity_monitor.ingest.store import BookEntry, BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

PREFIX_LINES = 3000  # ~28 s of recorded BTCUSDT spot: 281 depth, 2200 bookTicker, 518 trade frames
RATE = 4000.0  # frames/s the fake venue plays at: ~0.75 s per session
BTC = InstrumentId("binance", "BTC/USDT")

# Short timers so faults resolve quickly; snapshot_limit 5000 so a resync snapshot carries the
# whole true book (~1170 bid levels by the end of the prefix) and books compare exactly.
FAST = IngestSettings(
    backoff_initial_s=0.05,
    backoff_max_s=0.5,
    snapshot_limit=5000,
    snapshot_timeout_s=5.0,
    handover_timeout_s=2.0,
    backoff_reset_after_s=60.0,
)


@pytest.fixture(scope="session")
def spot_records(data_dir) -> list[RawRecord]:
    path = data_dir / "hftbacktest" / "spot" / "btcusdt_20240808.gz"
    return list(itertools.islice(read_hftbacktest(path, "binance", "BTCUSDT"), PREFIX_LINES))


@pytest.fixture(scope="session")
def reference(spot_records) -> L2Book:
    """The book rebuilt from the clean recording (no network, no faults)."""
    reg = AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    Replayer(store, reg).run(spot_records)
    book = store.entry(BTC).book
    assert book.quality.synced and book.quality.gaps == 0
    return book


def checksum_reference(records: list[RawRecord]) -> BookStore:
    """The books rebuilt offline from a clean capture of a checksum venue (no network, no faults):
    every book must end synced with its checksums verified and none failed."""
    reg = AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    Replayer(store, reg).run(records)
    for inst in store.instruments():
        q = store.entry(inst).book.quality
        assert q.synced and q.checksum_failures == 0 and q.checksums_verified > 0, inst
    return store


@contextlib.asynccontextmanager
async def running(conn: VenueConnection, sync_timeout_s: float):
    """Run ``conn`` until the block exits; before entering it, every book must have synced."""
    task = asyncio.create_task(conn.run())
    try:
        assert await conn.wait_synced(sync_timeout_s), conn.status()
        yield conn
    finally:
        conn.stop()
        async with asyncio.timeout(5):
            await task


@dataclass
class Session:
    fake: FakeBinanceVenue
    conn: VenueConnection
    store: BookStore
    task: asyncio.Task
    unsynced_after_first_sync: list[int] = field(default_factory=list)

    @property
    def entry(self) -> BookEntry:
        return self.store.entry(BTC)

    @property
    def book(self) -> L2Book:
        return self.entry.book

    @property
    def c(self):
        return self.conn.counters

    async def synced(self, timeout: float = 5.0) -> None:
        assert await self.conn.wait_synced(timeout), self.conn.status()

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the venue played everything and the client's book reached the final update id."""
        final = self.fake.final_update_id["BTCUSDT"]
        async with asyncio.timeout(timeout):
            await self.fake.done.wait()
            while not (self.book.quality.synced and self.book.sequence == final and not self.conn._fetching):
                await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def live_session(
    spot_records, *, fake_kwargs=None, settings=FAST, watch_sync=False, before_start=None, **conn_kwargs
):
    """Start the fake venue and a real ``VenueConnection`` on it; stop both on exit."""
    fk = {"max_rate_per_s": RATE, **(fake_kwargs or {})}
    async with FakeBinanceVenue(spot_records, **fk) as fake:
        if before_start is not None:
            before_start(fake)
        reg = AdapterRegistry()
        store = BookStore(reg)
        adapter = conn_kwargs.pop("adapter", None) or reg("binance")
        conn_kwargs.setdefault("silence_timeout_s", 3.0)
        conn = VenueConnection(
            adapter,
            ["BTC/USDT"],
            store,
            settings=settings,
            ws_url=fake.ws_url,
            rest_base_url=fake.rest_url,
            **conn_kwargs,
        )
        task = asyncio.create_task(conn.run())
        s = Session(fake, conn, store, task)
        watcher = None
        if watch_sync:
            watcher = asyncio.create_task(_watch_sync(s))
        try:
            yield s
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            conn.stop()
            async with asyncio.timeout(5):
                await task


async def _watch_sync(s: Session) -> None:
    """Record every moment (ms) the book was not synced after its first sync (make-before-break)."""
    loop = asyncio.get_running_loop()
    seen = False
    t0 = loop.time()
    while True:
        q = s.book.quality.synced
        if q:
            seen = True
        elif seen:
            s.unsynced_after_first_sync.append(round((loop.time() - t0) * 1e3))
        await asyncio.sleep(0.001)


def assert_equal_to_reference(s: Session, reference: L2Book) -> None:
    """Exact int levels and update id equal to the clean replay, and to the venue's true book."""
    assert s.book.sequence == reference.sequence
    assert (s.book.price_decimals, s.book.size_decimals) == (
        reference.price_decimals,
        reference.size_decimals,
    )
    bids, asks = s.book.levels_scaled()
    ref_bids, ref_asks = reference.levels_scaled()
    assert bids == ref_bids
    assert asks == ref_asks
    assert s.fake.truth_book("BTCUSDT").levels_scaled() == (ref_bids, ref_asks)
    assert not s.book.quality.crossed
