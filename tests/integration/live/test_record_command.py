"""``mlm record`` (the command path: typer -> ``record()`` -> the real ``VenueConnection``) against the
loopback fake Binance, then ``mlm replay`` of its output: the replay reproduces the recorded
session's books level by level, and its quality counters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading

from typer.testing import CliRunner

from market_liquidity_monitor.cli import app
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.fake_venue import FakeBinanceVenue, Fault
from market_liquidity_monitor.ingest.recorder import read_headers, read_recording
from market_liquidity_monitor.ingest.replay import Replayer
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

from .conftest import BTC

# Snapshot limit 5000: a resync image then carries the whole true book, so books compare exactly
# (with 1000, deep levels the reference learned from deltas are legitimately missing: cryptofeed#604).
runner = CliRunner(env={"COLUMNS": "400", "MLM_INGEST__SNAPSHOT_LIMIT": "5000"})


@contextlib.contextmanager
def fake_in_thread(records, drop_after_frames: int):
    """A ``FakeBinanceVenue`` on its own event loop in a thread (the command runs its own loop);
    one message is dropped ``drop_after_frames`` frames after the first depth snapshot was served
    (a drop before the client's snapshot is covered by the snapshot and is not a gap)."""
    ready, stop = threading.Event(), threading.Event()
    box: dict = {}

    async def main():
        async with FakeBinanceVenue(records, max_rate_per_s=None) as fake:
            box["fake"] = fake
            ready.set()
            injected, served_at = False, None
            while not stop.is_set():
                if served_at is None and fake.stats.depth_served:
                    served_at = fake.position
                if not injected and served_at is not None and fake.position >= served_at + drop_after_frames:
                    fake.inject(Fault.DROP)
                    injected = True
                await asyncio.sleep(0.001)

    t = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield box["fake"]
    finally:
        stop.set()
        t.join(10)


def test_record_command_then_replay_reproduces_the_books(spot_records, reference, tmp_path):
    out = tmp_path / "btc.mlm.gz"
    with fake_in_thread(spot_records, drop_after_frames=20) as fake:
        res = runner.invoke(
            app,
            ["record", "--venue", "binance", "--symbol", "BTC/USDT", "--out", str(out), "--duration-s", "4",
             "--ws-url", fake.ws_url, "--rest-url", fake.rest_url, "--json"],
        )  # fmt: skip
        final = fake.final_update_id["BTCUSDT"]
        assert fake.done.is_set(), "the session ended before the fake venue played everything"
    assert res.exit_code == 0, res.output
    live = json.loads(res.stdout)
    live_q = live["books"]["BTC/USDT"]
    assert live_q["synced"] and live_q["sequence"] == final
    assert fake.stats.faults_applied == ["drop"]
    assert live_q["gaps"] >= 1 and live_q["resyncs"] >= 1  # the drop was seen and repaired
    assert live["writer"]["members"] >= 1 and out.read_bytes()[:2] == b"\x1f\x8b"
    assert [h.venue for h in read_headers(out)] == ["binance"]

    # Direct replay of the file: the same book, level by level, as the live session and the reference.
    reg = AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    Replayer(store, reg).run(read_recording(out))
    book = store.entry(BTC).book
    assert book.sequence == final == reference.sequence
    assert book.levels_scaled() == reference.levels_scaled()
    assert (book.quality.gaps, book.quality.resyncs) == (live_q["gaps"], live_q["resyncs"])

    # The command path of replay: same counters.
    res = runner.invoke(app, ["replay", str(out), "--stats", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    (row,) = rep["per_instrument"]
    assert (row["venue"], row["symbol"]) == ("binance", "BTC/USDT")
    assert row["gaps"] == live_q["gaps"] and row["resyncs"] == live_q["resyncs"]
    assert row["updates_applied"] == store.entry(BTC).sync.counters.deltas_applied
    assert row["synced"] and rep["connection_breaks"] == 0 and rep["corrupt_lines"] == 0
