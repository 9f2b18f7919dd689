"""Disk checkpoints of replayed books (fast starts): a second process on the same recordings restores
exactly what a replay builds, without replaying; a changed file or a corrupt checkpoint is never
used (counted, rebuilt by replaying)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData


def open_market(recordings, ckpt_dir) -> MarketData:
    settings = Settings(data_dir=recordings, ingest={"checkpoint_dir": ckpt_dir})
    md = MarketData.from_recordings(settings, recordings)
    md.load_all()
    return md


def state(md: MarketData) -> dict:
    """Everything an answer reads from the store, per instrument."""
    out = {}
    for inst in md.store.instruments():
        e = md.store.entry(inst)
        q = md.store.quality(e)
        row = {"quality": q, "ticker": e.ticker, "trades": list(e.trades), "range": md._ranges.get(inst)}
        if e.book.quality.synced:
            v = md.store.view(inst.venue, inst.symbol)
            row["levels"] = [v.bid_prices.tolist(), v.bid_sizes.tolist(), v.ask_prices.tolist(),
                             v.ask_sizes.tolist(), v.book_ts_ns]  # fmt: skip
            row["depth"] = {w: e.book.depth(w) for w in md.settings.analytics.depth_windows_bps} if (
                v.bid_prices.size and v.ask_prices.size) else None  # fmt: skip
        h = md.depth_history(inst)
        row["history"] = None if h is None else (list(h.ts_ns), [tuple(d) for d in h.depth])
        out[inst] = row
    return out


def test_second_process_restores_without_replaying(recordings, tmp_path):
    cold = open_market(recordings, tmp_path / "ckpt")
    assert cold.replays == 2 and cold.checkpoints.stats.written == 2
    warm = open_market(recordings, tmp_path / "ckpt")
    assert warm.replays == 0 and warm.checkpoints.stats.hits == 2
    a, b = state(cold), state(warm)
    assert a.keys() == b.keys() and len(a) >= 8
    assert any(np.size(r.get("levels", [[]])[0]) for r in a.values())
    for inst in a:
        assert a[inst] == b[inst], inst
    assert (
        warm.read_stats.lines == cold.read_stats.lines and warm.read_stats.corrupt == cold.read_stats.corrupt
    )
    # No-cache settings replay every time.
    off = MarketData.from_recordings(
        Settings(data_dir=recordings, ingest={"checkpoint_cache": False}), recordings
    )
    off.load_all()
    assert off.replays == 2 and off.checkpoints is None


def test_changed_recording_is_replayed(recordings, tmp_path):
    open_market(recordings, tmp_path / "ckpt")
    f = recordings / "cryptofeed" / "BINANCE.ws.1.0.gz"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same bytes, new mtime
    md = open_market(recordings, tmp_path / "ckpt")
    assert md.replays == 1 and md.checkpoints.stats.hits == 1 and md.checkpoints.stats.misses == 1


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "garbage", "wrong_payload"])
def test_corrupt_checkpoint_is_ignored_counted_and_rebuilt(recordings, tmp_path, damage):
    ck = tmp_path / "ckpt"
    cold = open_market(recordings, ck)
    files = sorted(ck.glob("books-*.ckpt"))
    assert len(files) == 2
    victim = files[0]
    raw = victim.read_bytes()
    if damage == "flip_byte":
        raw = raw[:-10] + bytes([raw[-10] ^ 0xFF]) + raw[-9:]
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "garbage":
        raw = b"\x00\x01 not a checkpoint"
    else:  # a well-formed file whose content is not a valid book image (levels out of order)
        import hashlib
        import zlib

        import orjson

        header, body = raw.split(b"\n", 1)
        payload = orjson.loads(zlib.decompress(body))
        book = payload["entries"][0]["book"]
        book["bids"] = book["bids"][2:4] + book["bids"][0:2] + book["bids"][4:]
        body = zlib.compress(orjson.dumps(payload))
        h = orjson.loads(header)
        h.update(length=len(body), sha256=hashlib.sha256(body).hexdigest())
        raw = orjson.dumps(h) + b"\n" + body
    victim.write_bytes(raw)
    md = open_market(recordings, ck)
    assert md.checkpoints.stats.corrupt == 1 and md.checkpoints.stats.corrupt_examples
    assert md.replays == 1 and md.checkpoints.stats.written == 1
    assert state(md) == state(cold)
    again = open_market(recordings, ck)  # the rebuilt file is good
    assert again.replays == 0 and again.checkpoints.stats.corrupt == 0


def _head(src, dst, lines: int) -> None:
    import gzip

    with gzip.open(src, "rb") as fh, gzip.open(dst, "wb") as out:
        for i, line in enumerate(fh):
            if i >= lines:
                break
            out.write(line)


def test_restore_moves_the_shared_session_clock_like_a_replay(data_dir, tmp_path):
    """The hftbacktest books share one session clock: a checkpoint written by a process that had
    loaded another, later-ending recording first must not carry that recording's end along."""
    d = tmp_path / "data" / "hftbacktest" / "spot"
    d.mkdir(parents=True)
    # The first lines of the real files (each has its REST snapshot on line 8): BTC ends later.
    _head(data_dir / "hftbacktest/spot/btcusdt_20240808.gz", d / "btcusdt_20240808.gz", 3000)
    _head(data_dir / "hftbacktest/spot/ethusdt_20240808.gz", d / "ethusdt_20240808.gz", 1500)
    root, ck = tmp_path / "data", tmp_path / "ckpt"

    def market(cache: bool) -> MarketData:
        s = Settings(data_dir=root, ingest={"checkpoint_dir": ck, "checkpoint_cache": cache})
        return MarketData.from_recordings(s, root)

    first = market(True)
    btc, eth = first.resolve("BTC/USDT"), first.resolve("ETH/USDT")
    first.ensure_loaded(btc)
    first.ensure_loaded(eth)  # its checkpoint is written with the session clock past BTC's end
    assert first.time_range(btc).last_ns > first.time_range(eth).last_ns
    warm, replayed = market(True), market(False)
    warm.ensure_loaded(eth)
    replayed.ensure_loaded(eth)
    assert warm.replays == 0 and replayed.replays == 1
    assert warm.quality(eth) == replayed.quality(eth)  # age_ms and stale flag included


# ------------------------------------------------------------ with the liquidity-history recorder

HISTORY_TABLES = ("book_metrics", "book_metric_depths", "book_snapshots", "trades")


def run_with_history(recordings, ckpt_dir, home, on_loop: bool = False):
    """One "process": a market observed by the liquidity-history recorder (HistoryService on the
    SQLite file under ``home``), every recording loaded off the event loop as a request would (or,
    ``on_loop``, synchronously on it, as listing every instrument does), the rows flushed. Returns
    the market, the recorder's per-book state and every stored row (plain SQL, sorted)."""
    import asyncio
    import sqlite3

    from market_liquidity_monitor.services.candles import CandleService
    from market_liquidity_monitor.services.history import HistoryService

    settings = Settings(data_dir=recordings, home_dir=home, ingest={"checkpoint_dir": ckpt_dir})

    async def go():
        md = MarketData.from_recordings(settings, recordings)
        candles = CandleService(settings)
        hist = HistoryService(settings, md, candles)
        await hist.start()
        if on_loop:
            md.load_all()
        else:
            await asyncio.to_thread(md.load_all)
        await hist.flush()
        rec = {i: hist.recorder.book_state(i) for i in md.store.instruments()}
        await hist.close()
        await candles.close()
        return md, rec

    md, rec = asyncio.run(go())
    with sqlite3.connect(home / "mlm.sqlite3") as conn:
        rows = {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in HISTORY_TABLES}
    return md, rec, rows


def test_history_recorded_once_then_restored_and_a_fresh_database_replays(recordings, tmp_path):
    ck = tmp_path / "ckpt"
    first, rec1, rows1 = run_with_history(recordings, ck, tmp_path / "home1")
    assert first.replays == 2 and first.restores == 0
    assert all(rows1[t] for t in ("book_metrics", "book_metric_depths", "trades")), {
        t: len(r) for t, r in rows1.items()
    }
    # Same recordings, same history database: every row is stored, so no replay; the books, the
    # rows and the recorder's sampling state are what the replay left.
    second, rec2, rows2 = run_with_history(recordings, ck, tmp_path / "home1")
    assert second.replays == 0 and second.restores == 2 and second.checkpoints.stats.hits == 2
    assert rows2 == rows1 and rec2 == rec1
    assert state(second) == state(first)
    # Another (empty) database: the rows are not there, so the recordings replay and write them -
    # the very rows of the first replay.
    third, rec3, rows3 = run_with_history(recordings, ck, tmp_path / "home2")
    assert third.replays == 2 and third.restores == 0
    assert (third.checkpoints.stats.hits, third.checkpoints.stats.unwitnessed) == (0, 2)
    assert rows3 == rows1 and rec3 == rec1
    # A row missing (e.g. dropped by the writer during an outage): that recording replays again
    # and the row is back.
    import sqlite3

    with sqlite3.connect(tmp_path / "home1" / "mlm.sqlite3") as conn:
        venue, symbol, ts = conn.execute(
            "SELECT venue, symbol, max(ts_ns) FROM book_metrics GROUP BY venue, symbol LIMIT 1"
        ).fetchone()
        conn.execute(
            "DELETE FROM book_metrics WHERE venue = ? AND symbol = ? AND ts_ns = ?", (venue, symbol, ts)
        )
    fourth, _rec4, rows4 = run_with_history(recordings, ck, tmp_path / "home1")
    assert fourth.replays == 1 and fourth.restores == 1
    assert rows4 == rows1


def test_a_load_on_the_event_loop_restores_too(recordings, tmp_path):
    """The witness cannot wait for its own loop: it asks through a private engine instead."""
    ck = tmp_path / "ckpt"
    first, rec1, rows1 = run_with_history(recordings, ck, tmp_path / "home")
    second, rec2, rows2 = run_with_history(recordings, ck, tmp_path / "home", on_loop=True)
    assert (first.replays, second.replays, second.restores) == (2, 0, 2)
    assert rows2 == rows1 and rec2 == rec1
