"""``record()`` against the fake venue, then ``read_recording`` -> ``Replayer``: the replay rebuilds
the live session's books exactly, also from a recording cut mid-write."""

from __future__ import annotations

import asyncio
import gzip
import zlib

from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.fake_venue import FakeBinanceVenue, Fault
from market_liquidity_monitor.ingest.recorder import read_headers, read_recording, record
from market_liquidity_monitor.ingest.replay import ReadStats, Replayer
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

from .conftest import BTC, FAST, RATE


def _replay(path):
    reg = AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    rs = ReadStats()
    stats = Replayer(store, reg).run(read_recording(path, rs))
    return store.entry(BTC).book, stats, rs


async def _record_session(spot_records, out, fault=None):
    reg = AdapterRegistry()
    store = BookStore(reg)
    stop = asyncio.Event()
    async with FakeBinanceVenue(spot_records, max_rate_per_s=RATE) as fake:
        task = asyncio.create_task(
            record(
                "binance",
                ["BTC/USDT"],
                out,
                settings=FAST,
                adapter_for=reg,
                store=store,
                stop=stop,
                ws_url=fake.ws_url,
                rest_base_url=fake.rest_url,
            )
        )
        book = store.entry(BTC).book
        async with asyncio.timeout(10):
            while not book.quality.synced:
                await asyncio.sleep(0.005)
            if fault is not None:
                fake.inject(fault)
            await fake.done.wait()
            final = fake.final_update_id["BTCUSDT"]
            while book.sequence != final:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # trailing ticker/trade frames
        stop.set()
        result = await task
    return result, book


async def test_record_then_replay_reproduces_the_live_books(spot_records, reference, tmp_path):
    out = tmp_path / "btcusdt.mlm.gz"
    result, live_book = await _record_session(spot_records, out, fault=Fault.DROP)
    assert result.writer["rest_bodies"] == 2  # initial sync + the resync after the dropped message
    assert result.connection["snapshots_fetched"] == 2
    assert result.writer["members"] >= 1

    (header,) = read_headers(out)
    assert (header.venue, header.symbols, header.venue_symbols) == ("binance", ["BTC/USDT"], ["BTCUSDT"])

    book, stats, rs = _replay(out)
    assert rs.corrupt == 0 and stats.undecodable == 0
    assert stats.records == result.writer["ws_frames"] + result.writer["rest_bodies"]
    assert book.quality.synced
    assert book.sequence == live_book.sequence == reference.sequence
    assert book.levels_scaled() == live_book.levels_scaled() == reference.levels_scaled()


async def test_truncated_recording_replays_up_to_the_last_complete_member(spot_records, tmp_path):
    out = tmp_path / "cut.mlm.gz"
    settings = FAST.model_copy(update={"record_flush_interval_s": 0.1})  # several members
    reg = AdapterRegistry()
    store = BookStore(reg)
    async with FakeBinanceVenue(spot_records, max_rate_per_s=RATE) as fake:
        result = await record(
            "binance",
            ["BTC/USDT"],
            out,
            duration_s=0.6,
            settings=settings,
            adapter_for=reg,
            store=store,
            ws_url=fake.ws_url,
            rest_base_url=fake.rest_url,
        )
    assert result.writer["members"] >= 3
    full = list(read_recording(out))
    data = out.read_bytes()
    # Cut in the middle of the last member that holds frames: a crash mid-write.
    bounds = _member_bounds(data)
    start, end = next(b for b in reversed(bounds) if b" ws " in zlib.decompress(data[b[0] : b[1]], wbits=31))
    kept = (
        sum(
            1
            for line in gzip.decompress(data[:start]).splitlines()
            if line.split(b" ")[1] in (b"ws", b"rest")
        )
        if start
        else 0
    )
    out.write_bytes(data[: (start + end) // 2])
    rs = ReadStats()
    cut = list(read_recording(out, rs))
    assert 0 < len(cut) == kept < len(full)
    assert [r.payload for r in cut] == [r.payload for r in full[:kept]]
    assert rs.corrupt == 1 and "truncated" in rs.corrupt_examples[0]
    book, _, _ = _replay(out)
    assert book.quality.synced and book.quality.gaps == 0


def _member_bounds(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each gzip member."""
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        out.append((pos, end))
        pos = end
    return out
