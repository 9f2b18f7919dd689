"""``mlm replay`` and the replay API behind it, on the real captures in ../shared/data.

Expected values are computed independently from the same files (a direct ``Replayer`` run per
recording group, or the raw event timestamps), never written down by hand.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market_liquidity_monitor.cli import app
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.recorder import RecordingHeader, RecordWriter, read_recording
from market_liquidity_monitor.ingest.replay import (
    ReadStats,
    Replayer,
    detect_format,
    discover,
    read_any,
    read_hftbacktest,
    read_paths,
    with_fallback,
)
from market_liquidity_monitor.ingest.store import QUALITY_KEYS, BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

runner = CliRunner(env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})  # error boxes unwrapped


@pytest.fixture(scope="module")
def cf(data_dir: Path) -> Path:
    d = data_dir / "cryptofeed"
    if not (d / "KRAKEN.ws.50.0.gz").is_file():
        pytest.skip("cryptofeed captures not found")
    return d


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _direct(records) -> tuple[BookStore, Replayer]:
    reg = with_fallback(AdapterRegistry())
    store = BookStore(reg, clock=ReplayClock())
    rp = Replayer(store, reg)
    rp.run(records)
    return store, rp


def test_detect_format_names_every_layout(data_dir: Path, cf: Path, tmp_path: Path):
    assert detect_format(cf / "KRAKEN.ws.50.0.gz") == "cryptofeed"
    assert detect_format(cf / "BINANCE.http.0.0.gz") == "cryptofeed"
    assert detect_format(data_dir / "hftbacktest" / "spot" / "btcusdt_20240809.gz") == "hftbacktest"
    assert detect_format(data_dir / "nautilus_trader" / "bybit" / "xrpusdt-ob500.data.zip") == "bybit_zip"
    tardis = data_dir / "nautilus_trader" / "tardis"
    assert detect_format(tardis / "deribit_incremental_book_L2_BTC-PERPETUAL.csv") == "tardis_l2"
    assert detect_format(tardis / "binance-futures_book_snapshot_5_BTCUSDT.csv") == "tardis_snapshot"
    with pytest.raises(ValueError, match="trades/quotes"):
        detect_format(tardis / "bitmex_trades_XBTUSD.csv")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world\n")
    with pytest.raises(ValueError, match="valid: mlm, hftbacktest, cryptofeed"):
        detect_format(junk)
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "missing.gz")


def test_read_paths_merges_files_in_receive_time_order(data_dir: Path, cf: Path):
    files = [
        cf / "OKX.ws.1.0.gz",
        cf / "KRAKEN.ws.50.0.gz",
        data_dir / "nautilus_trader" / "tardis" / "deribit_incremental_book_L2_BTC-PERPETUAL.csv",
    ]
    merged = list(read_paths(files))
    singles = [list(read_any(f)) for f in files]
    assert len(merged) == sum(len(s) for s in singles)
    ts = [r.ts_recv_ns for r in merged]
    assert ts == sorted(ts)
    # Within one file, file order is kept.
    okx = [r.payload for r in merged if r.source == str(files[0])]
    assert okx == [r.payload for r in singles[0]]


def test_discover_includes_tardis_incremental_l2(data_dir: Path):
    groups = [g for g in discover(data_dir) if g.fmt == "tardis_l2"]
    if not groups:
        pytest.skip("tardis samples not found")
    g = groups[0]
    assert g.venue == "deribit"
    recs = list(g.records())
    assert recs and all(r.kind == "event" and isinstance(r.event, L2Snapshot | L2Delta) for r in recs)
    store, _ = _direct(recs)
    (inst,) = store.instruments()
    book = store.entry(inst).book
    assert book.quality.synced
    # Tardis rows: every row of the sample is a level of one snapshot.
    rows = (g.files[0].read_text().strip().splitlines())[1:]
    bids, asks = book.levels_scaled()
    assert len(bids) + len(asks) == len(rows)


def test_replay_cli_stats_json_match_a_direct_replay(cf: Path):
    files = [cf / "KRAKEN.ws.50.0.gz", cf / "OKX.ws.1.0.gz"]
    res = runner.invoke(app, ["replay", *map(str, files), "--stats", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rows = {(r["venue"], r["symbol"]): r for r in out["per_instrument"]}
    store, rp = _direct(read_paths(files))
    assert out["records"] == rp.stats.records and out["events"] == rp.stats.events
    assert set(rows) == {(i.venue, i.symbol) for i in store.instruments()}
    for inst in store.instruments():
        e = store.entry(inst)
        q = e.book.quality
        r = rows[(inst.venue, inst.symbol)]
        assert r["messages"] == e.messages
        assert r["updates_applied"] == e.sync.counters.deltas_applied
        assert r["checksums_verified"] == q.checksums_verified > 0  # both venues checksum every update
        assert r["checksum_failures"] == q.checksum_failures == 0
        assert r["gaps"] == r["resyncs"] == 0 and r["synced"]
        assert _iso(out["first_ts"]) <= _iso(r["first_ts"]) <= _iso(r["last_ts"]) <= _iso(out["last_ts"])
    for key in ("crossed_episodes", "stale_episodes", "last_gap", "snapshots"):
        assert all(key in r for r in rows.values())
    assert out["connection_breaks"] == out["corrupt_lines"] == out["undecodable"] == 0


def test_replay_cli_rejects_bad_input(tmp_path: Path, cf: Path):
    res = runner.invoke(app, ["replay", str(tmp_path / "nope.gz")])
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(app, ["replay", str(cf / "OKX.ws.1.0.gz"), "--speed", "-1"])
    assert res.exit_code == 2 and "valid speeds" in res.output
    with pytest.raises(ValueError, match="speed must be >= 0"):
        Replayer(BookStore(AdapterRegistry()), AdapterRegistry()).run([], speed=-2)


def test_stale_episodes_are_update_gaps_longer_than_the_threshold(cf: Path):
    """Stale = no book update for ``stale_after_ms`` (trades/tickers/heartbeats do not count).
    Counted from the raw event times of the Kraken book capture, independently of the store."""
    path = cf / "KRAKEN.ws.50.0.gz"
    stale_ms = 2_000
    reg = AdapterRegistry()
    adapter = reg("kraken")
    times: dict = {}
    last_ts = 0
    import orjson

    for rec in read_any(path):
        last_ts = rec.ts_recv_ns
        for ev in adapter.parse_message(orjson.loads(rec.payload), rec.ts_recv_ns):
            if isinstance(ev, L2Snapshot | L2Delta):
                times.setdefault(ev.instrument, []).append(ev.ts_recv)
    expected = {}
    for inst, ts in times.items():
        n = sum(1 for a, b in itertools.pairwise(ts) if b - a > stale_ms * 1_000_000)
        expected[inst] = n + (1 if last_ts - ts[-1] > stale_ms * 1_000_000 else 0)
    assert any(expected.values()), "threshold too high to exercise anything"
    reg2 = AdapterRegistry()
    store = BookStore(reg2, clock=ReplayClock(), stale_after_ms=stale_ms)
    rp = Replayer(store, reg2)
    rp.run(read_any(path))
    got = {(r["venue"], r["symbol"]): r for r in rp.instrument_stats()}
    for inst, n in expected.items():
        assert got[(inst.venue, inst.symbol)]["stale_episodes"] == n, inst
        assert got[(inst.venue, inst.symbol)]["stale"] == (last_ts - times[inst][-1] > stale_ms * 1_000_000)


def test_quality_dict_is_stable(cf: Path):
    store, _ = _direct(read_any(cf / "OKX.ws.1.0.gz"))
    for inst in store.instruments():
        q = store.quality(store.entry(inst))
        assert tuple(q) == QUALITY_KEYS
        assert q["stale_after_ms"] == store.stale_after_ns // 1_000_000


def test_paced_replay_waits_recorded_time_over_speed(cf: Path):
    """At speed N the waits add up to the recorded span / N (fake clock: nothing really sleeps)."""
    recs = list(itertools.islice(read_any(cf / "OKX.ws.1.0.gz"), 120))
    span_s = (recs[-1].ts_recv_ns - recs[0].ts_recv_ns) / 1e9
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    reg = AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    rp = Replayer(store, reg)
    rp.monotonic = lambda: now[0]
    rp.sleep = sleep
    rp.run(recs, speed=4.0)
    assert sum(slept) == pytest.approx(span_s / 4.0, abs=0.002 * len(recs))
    fast_store, _ = _direct(recs)
    for inst in fast_store.instruments():  # pacing changes nothing in the books
        assert store.entry(inst).book.levels_scaled() == fast_store.entry(inst).book.levels_scaled()


def test_stop_event_ends_a_background_replay(cf: Path):
    recs = list(read_any(cf / "KRAKEN.ws.50.0.gz"))
    reg = AdapterRegistry()
    rp = Replayer(BookStore(reg, clock=ReplayClock()), reg)
    stop = threading.Event()
    stop.set()
    t = rp.run_in_thread(recs, speed=1.0, stop_event=stop)
    t.join(10)
    assert not t.is_alive() and rp.stats.stopped and rp.stats.records == 0
    stop2 = threading.Event()
    rp2 = Replayer(BookStore(reg, clock=ReplayClock()), reg)

    def on_record(rec, _events):
        if rp2.stats.records == 50:
            stop2.set()

    rp2.run(recs, on_record=on_record, stop_event=stop2)
    assert rp2.stats.stopped and rp2.stats.records == 50


def test_close_marker_in_our_recording_is_a_gap(data_dir: Path, tmp_path: Path):
    """A recorded socket break (``close`` marker) marks the book as a gap and discards it."""
    src = data_dir / "hftbacktest" / "spot" / "btcusdt_20240808.gz"
    recs = list(itertools.islice(read_hftbacktest(src, "binance", "BTCUSDT"), 400))
    out = tmp_path / "cut.mlm.gz"
    header = RecordingHeader("binance", ["BTC/USDT"], ["BTCUSDT"])
    with RecordWriter(out, header) as w:
        for i, r in enumerate(recs):
            if i == 300:
                w.on_close(r.ts_recv_ns, "closed ConnectionClosedError")
                w.on_open(r.ts_recv_ns, "ws://127.0.0.1:1/stream")
            if r.kind == "rest":
                w.on_rest(r.ts_recv_ns, "BTCUSDT", r.payload)
            else:
                w.on_frame(r.ts_recv_ns, r.payload)
    reg = AdapterRegistry()
    # Without markers: the break is invisible, the book is continuous.
    plain, _ = _direct(read_recording(out))
    (inst,) = plain.instruments()
    assert plain.entry(inst).book.quality.gaps == 0
    store = BookStore(reg, clock=ReplayClock())
    rp = Replayer(store, reg)
    rs = ReadStats()
    rp.run(read_any(out, rs))
    q = store.entry(inst).book.quality
    assert rp.stats.connection_breaks == 1 and q.gaps == 1
    assert q.last_gap_ts_ns == recs[300].ts_recv_ns
    assert not q.synced  # waits for a snapshot that this recording does not have
