"""The real live client against the loopback fake OKX (a checksum venue), recorded OKX capture.

A corrupted checksum must resync that one book by resubscribing it on the open socket (no
reconnect, the other books untouched); an abrupt disconnect must reconnect, reset the adapter's
connection state and resync every book from the snapshots a new subscription brings. Each test
ends with every book equal, level by level, to the book replayed offline from the clean capture.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from market_liquidity_monitor.domain.errors import BookNotReadyError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.fake_okx import FakeOkxVenue
from market_liquidity_monitor.ingest.fake_venue import Fault
from market_liquidity_monitor.ingest.live import VenueConnection
from market_liquidity_monitor.ingest.replay import read_cryptofeed
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

from .conftest import FAST, checksum_reference, running

RATE = 400.0  # frames/s: the 400-odd recorded frames play in about a second


@pytest.fixture(scope="module")
def okx_records(data_dir):
    path = data_dir / "cryptofeed" / "OKX.ws.1.0.gz"
    if not path.is_file():
        pytest.skip("cryptofeed OKX capture not found")
    return list(read_cryptofeed(path, "okx"))


@pytest.fixture(scope="module")
def okx_reference(okx_records) -> BookStore:
    return checksum_reference(okx_records)


@contextlib.asynccontextmanager
async def okx_session(records, **conn_kwargs):
    async with FakeOkxVenue(records, max_rate_per_s=RATE) as fake:
        reg = AdapterRegistry()
        adapter = reg("okx")
        symbols = [adapter.unified_symbol(i) for i in sorted(fake.truth)]
        store = BookStore(reg)
        conn = VenueConnection(
            adapter,
            symbols,
            store,
            settings=FAST,
            ws_url=fake.ws_url,
            silence_timeout_s=30.0,
            **conn_kwargs,
        )
        async with running(conn, 5.0):
            yield fake, conn, store


async def _settle(fake: FakeOkxVenue, conn: VenueConnection) -> None:
    """Until everything was produced and every frame sent has been processed by the client."""
    async with asyncio.timeout(15):
        await fake.done.wait()
        while not (
            conn.synced() and conn.counters.messages >= fake.stats.frames_sent and not conn._awaiting_push
        ):
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)
        assert conn.counters.messages == fake.stats.frames_sent


def _assert_books_equal_reference(store: BookStore, reference: BookStore) -> None:
    assert store.instruments() == reference.instruments()
    for inst in reference.instruments():
        got, ref = store.entry(inst).book, reference.entry(inst).book
        assert got.quality.synced, inst
        assert (got.price_decimals, got.size_decimals) == (ref.price_decimals, ref.size_decimals)
        assert got.levels_scaled() == ref.levels_scaled(), inst
        assert not got.quality.crossed


async def test_clean_okx_session_matches_reference(okx_records, okx_reference):
    async with okx_session(okx_records) as (fake, conn, store):
        await _settle(fake, conn)
        _assert_books_equal_reference(store, okx_reference)
        for inst in store.instruments():
            q = store.entry(inst).book.quality
            assert (q.checksum_failures, q.resyncs, q.gaps) == (0, 0, 0)
            assert q.checksums_verified > 0
        assert conn.counters.resubscribes == conn.counters.reconnects == 0
        assert fake.stats.snapshots_served == len(fake.truth)


async def test_corrupted_checksum_resubscribes_that_book_only(okx_records, okx_reference):
    victim = InstrumentId("okx", "BTC/USDT")
    async with okx_session(okx_records) as (fake, conn, store):
        fake.inject(Fault.CHECKSUM, inst_id="BTC-USDT")
        await _settle(fake, conn)
        assert fake.stats.faults_applied == ["checksum"]
        _assert_books_equal_reference(store, okx_reference)
        for inst in store.instruments():
            q = store.entry(inst).book.quality
            if inst == victim:
                assert (q.checksum_failures, q.resyncs) == (1, 1)
                assert q.last_gap_ts_ns is not None
            else:
                assert (q.checksum_failures, q.resyncs) == (0, 0), inst
        c = conn.counters
        assert c.resubscribes == 1 and c.reconnects == 0 and c.connects == 1
        assert fake.stats.unsubscribes == 1
        assert fake.stats.snapshots_served == len(fake.truth) + 1
        assert conn.status()["books"]["BTC/USDT"]["checksum_failures"] == 1


async def test_abrupt_disconnect_reconnects_and_resets_adapter_state(okx_records, okx_reference):
    async with okx_session(okx_records) as (fake, conn, store):
        resets_before = conn.counters.adapter_resets
        fake.inject(Fault.DISCONNECT)
        await _settle(fake, conn)
        assert fake.stats.faults_applied == ["disconnect"]
        _assert_books_equal_reference(store, okx_reference)
        c = conn.counters
        assert c.reconnects == 1 and c.connects == 2
        assert c.adapter_resets == resets_before + 1 == 2
        assert fake.stats.connections == 2
        for inst in store.instruments():
            q = store.entry(inst).book.quality
            assert q.resyncs == 1 and q.checksum_failures == 0, inst


async def test_books_are_not_served_while_the_lost_socket_is_being_replaced(okx_records, okx_reference):
    """From the moment the socket is lost until the new socket's snapshots, no book is synced: the
    last image of a dead stream is not trusted (the backoff wait before reconnecting is held open
    here; with OKX's subscribe pacing alone it lasts ~1.2 s)."""
    reconnect = asyncio.Event()

    async def held_backoff(_delay_s: float) -> None:
        await reconnect.wait()

    async with okx_session(okx_records, sleep=held_backoff, rand=lambda: 1.0) as (fake, conn, store):
        fake.inject(Fault.DISCONNECT)
        async with asyncio.timeout(5):
            while conn.connected:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # well inside the held backoff wait
        assert conn.counters.connects == 1 and "disconnect (closed)" in (conn.last_error or "")
        assert not conn.synced()
        for inst in store.instruments():
            assert not store.entry(inst).book.quality.synced, inst
            with pytest.raises(BookNotReadyError):
                store.view("okx", inst.symbol)
        assert conn.counters.invalidations == len(fake.truth)
        reconnect.set()
        await _settle(fake, conn)
        _assert_books_equal_reference(store, okx_reference)
        c = conn.counters
        assert c.reconnects == 1 and c.connects == 2
        assert c.invalidations == len(fake.truth)  # once per book, at the loss
        for inst in store.instruments():
            assert store.entry(inst).book.quality.resyncs == 1, inst
