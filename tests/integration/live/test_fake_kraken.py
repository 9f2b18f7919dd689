"""The real live client (Kraken WS v2 adapter) against the loopback fake Kraken, recorded capture.

A corrupted checksum, or an update lost on the way (caught by the next checksum), must resync that
one book by unsubscribing and resubscribing it on the open socket: no reconnect, the other nine
books untouched. An abrupt disconnect must reconnect, reset the adapter's connection state and
resync every book from the snapshots the new subscription brings.

Every test ends with every book equal to the book replayed offline from the clean v1 capture, on
the **whole book** (every level, exact scaled ints), not only the top 10 the checksum covers: the
fake serves the full book-1000 image on subscribe (the recorded books are shallower than 1000
levels), so the protocol lets a resynced client hold the whole true book again. The checksum alone
would only prove the top 10; the whole-book comparison is what shows nothing deeper went astray.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

import pytest

from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.fake_kraken import FakeKrakenVenue
from market_liquidity_monitor.ingest.fake_venue import Fault
from market_liquidity_monitor.ingest.live import VenueConnection
from market_liquidity_monitor.ingest.replay import discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.checksums import KRAKEN_CHECKSUM_LEVELS
from market_liquidity_monitor.venues.kraken import Kraken
from market_liquidity_monitor.venues.registry import AdapterRegistry

from .conftest import FAST, checksum_reference, running

RATE = None  # as fast as the client reads (the fake's send queue applies backpressure)
# The runtime paces its own frames at 80 % of Kraken's assumed 1 message/s (ratelimit.py): three
# subscribe frames take ~2.5 s before the reader starts, a resubscribe (two frames) ~2.5 s more.
SYNC_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def kraken_records(data_dir):
    groups = [g for g in discover(data_dir, ["kraken"]) if g.name == "cryptofeed/KRAKEN"]
    if not groups:
        pytest.skip("cryptofeed Kraken capture not found")
    return list(groups[0].records())


@pytest.fixture(scope="module")
def kraken_reference(kraken_records) -> BookStore:
    """The books rebuilt from the clean v1 recording by the v1 adapter (no network, no faults)."""
    return checksum_reference(kraken_records)


@contextlib.asynccontextmanager
async def kraken_session(records, before_start=None):
    async with FakeKrakenVenue(records, max_rate_per_s=RATE) as fake:
        if before_start is not None:
            before_start(fake)
        reg = AdapterRegistry({"kraken": functools.partial(Kraken, version=2, depth=fake.depth)})
        adapter = reg("kraken")
        store = BookStore(reg)
        conn = VenueConnection(adapter, sorted(fake.truth), store, settings=FAST, ws_url=fake.ws_url)
        async with running(conn, SYNC_TIMEOUT_S):
            yield fake, conn, store


async def _settle(fake: FakeKrakenVenue, conn: VenueConnection) -> None:
    """Until everything was produced and the client processed every frame the venue sent on the
    open connection (heartbeats too). Counted per connection: frames an aborted socket had in
    flight are lost with it, and the old socket must have been noticed as dead."""
    async with asyncio.timeout(2 * SYNC_TIMEOUT_S):
        await fake.done.wait()
        while True:
            clients, link = fake._clients, conn._link
            if (
                len(clients) == 1
                and link is not None
                and link.messages == clients[0].sent
                and conn.synced()
                and not conn._awaiting_push
            ):
                break
            await asyncio.sleep(0.005)


def _assert_books_equal_reference(fake: FakeKrakenVenue, conn: VenueConnection, reference: BookStore):
    store = conn.store
    assert store.instruments() == reference.instruments()
    assert len(reference.instruments()) == len(fake.truth) == 10
    for inst in reference.instruments():
        got, ref = store.entry(inst).book, reference.entry(inst).book
        assert got.quality.synced, inst
        assert (got.price_decimals, got.size_decimals) == (ref.price_decimals, ref.size_decimals)
        # The checksum window first (what Kraken's CRC32 proves), then every level.
        assert got.levels_scaled(KRAKEN_CHECKSUM_LEVELS) == ref.levels_scaled(KRAKEN_CHECKSUM_LEVELS), inst
        assert got.levels_scaled() == ref.levels_scaled(), inst
        assert conn.adapter.verify_checksum(got, fake.truth[inst.symbol].checksum()), inst
        assert not got.quality.crossed


async def test_clean_kraken_v2_session_matches_reference(kraken_records, kraken_reference):
    async with kraken_session(kraken_records) as (fake, conn, store):
        await _settle(fake, conn)
        _assert_books_equal_reference(fake, conn, kraken_reference)
        updates = sum(1 for f in fake.frames if f.update is not None)
        verified = 0
        for inst in store.instruments():
            q = store.entry(inst).book.quality
            assert (q.checksum_failures, q.resyncs, q.gaps) == (0, 0, 0), inst
            verified += q.checksums_verified
        # Every pushed snapshot and every recorded update verified (v2 numbers decoded exactly).
        assert verified == len(fake.truth) + updates
        assert conn.adapter.unverifiable_checksums == 0
        assert conn.counters.resubscribes == conn.counters.reconnects == 0
        assert fake.stats.snapshots_served == len(fake.truth)
        # Idle: Kraken's heartbeat keeps the socket alive within the adapter's 5 s silence timeout.
        seen = fake.stats.heartbeats
        async with asyncio.timeout(5):
            while fake.stats.heartbeats <= seen or conn._link.messages < fake._clients[0].sent:
                await asyncio.sleep(0.01)
        assert conn.connected and conn.counters.silence_timeouts == 0
        assert conn.silence_timeout_s == Kraken.keepalive.silence_timeout_s


async def test_corrupted_checksum_resubscribes_that_book_only(kraken_records, kraken_reference):
    victim = InstrumentId("kraken", "XMR/USD")
    inject = lambda f: f.inject(Fault.CHECKSUM, "XMR/USD", skip=300)  # noqa: E731
    async with kraken_session(kraken_records, before_start=inject) as (fake, conn, store):
        await _settle(fake, conn)
        assert fake.stats.faults_applied == ["checksum"]
        _assert_books_equal_reference(fake, conn, kraken_reference)
        for inst in store.instruments():
            q = store.entry(inst).book.quality
            if inst == victim:
                assert (q.checksum_failures, q.resyncs) == (1, 1)
                assert q.last_gap_ts_ns is not None
            else:
                assert (q.checksum_failures, q.resyncs, q.gaps) == (0, 0, 0), inst
        c = conn.counters
        assert c.resubscribes == 1 and c.reconnects == 0 and c.connects == 1
        assert c.invalidations == 0  # the store discarded the book itself (checksum), not the runtime
        assert fake.stats.connections == 1
        assert fake.stats.unsubscribes == 1
        assert fake.stats.snapshots_served == len(fake.truth) + 1
        assert conn.status()["books"]["XMR/USD"]["checksum_failures"] == 1


async def test_dropped_update_is_caught_by_the_next_checksum(kraken_records, kraken_reference):
    victim = InstrumentId("kraken", "SC/EUR")
    inject = lambda f: f.inject(Fault.DROP, "SC/EUR", skip=150)  # noqa: E731
    async with kraken_session(kraken_records, before_start=inject) as (fake, conn, store):
        await _settle(fake, conn)
        assert fake.stats.faults_applied == ["drop"]
        _assert_books_equal_reference(fake, conn, kraken_reference)
        for inst in store.instruments():
            q = store.entry(inst).book.quality
            expected = (1, 1) if inst == victim else (0, 0)
            assert (q.checksum_failures, q.resyncs) == expected, inst
        c = conn.counters
        assert c.resubscribes == 1 and c.reconnects == 0 and c.connects == 1
        assert fake.stats.unsubscribes == 1
        assert fake.stats.snapshots_served == len(fake.truth) + 1


async def test_abrupt_disconnect_reconnects_resets_adapter_and_resyncs_all(kraken_records, kraken_reference):
    inject = lambda f: f.inject(Fault.DISCONNECT, skip=2000)  # noqa: E731
    async with kraken_session(kraken_records, before_start=inject) as (fake, conn, store):
        # No counter baseline is read on entry: the fault is queued before the start, and books
        # are discarded the moment socket #1 dies, so the first sync may be over by then.
        await _settle(fake, conn)
        assert fake.stats.faults_applied == ["disconnect"]
        _assert_books_equal_reference(fake, conn, kraken_reference)
        c = conn.counters
        assert c.reconnects == 1 and c.connects == 2
        assert c.adapter_resets == c.connects == 2  # one reset per socket opened
        assert c.resubscribes == 0
        assert fake.stats.connections == 2
        assert fake.stats.snapshots_served == 2 * len(fake.truth)
        for inst in store.instruments():
            q = store.entry(inst).book.quality
            assert q.resyncs == 1 and q.checksum_failures == 0, inst
