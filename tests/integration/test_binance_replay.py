"""Replay of the recorded Binance books: sync rules, bookTicker agreement, depth-window exactness."""

from __future__ import annotations

import bisect
import gzip
from pathlib import Path

import pytest

from market_liquidity_monitor.book.scaling import parse_scaled
from market_liquidity_monitor.domain.events import BookTicker, L2Delta
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import ReadStats, Replayer, discover, read_hftbacktest
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry


def _replay(group, windows=(), on_record=None):
    reg = AdapterRegistry()
    store = BookStore(reg, windows_bps=windows, clock=ReplayClock())
    rs = ReadStats()
    stats = Replayer(store, reg).run(group.records(rs), on_record=on_record)
    return store, stats, rs


@pytest.fixture(scope="module")
def groups(data_dir):
    gs = {g.name: g for g in discover(data_dir, venues=["binance", "binanceusdm", "binancecoinm"])}
    assert "hftbacktest/spot/btcusdt" in gs
    return gs


def test_every_binance_recording_replays_without_gaps(groups):
    for name, g in groups.items():
        store, stats, rs = _replay(g)
        assert rs.corrupt == 0, name
        assert stats.undecodable == 0, name
        assert store.instruments(), name
        for inst in store.instruments():
            e = store.entry(inst)
            q = e.book.quality
            assert q.synced, f"{name} {inst} never synced"
            assert q.gaps == 0 and q.resyncs == 0, f"{name} {inst}: {q}"
            assert not q.crossed, f"{name} {inst} ends crossed"
            assert e.sync.counters.deltas_applied > 0
            # The first applied delta bracketed the snapshot: some buffered ones were stale.
            assert e.sync.counters.snapshots_applied == 1


def test_both_days_are_replayed_in_order(groups):
    g = groups["hftbacktest/spot/btcusdt"]
    assert [f.name for f in g.files] == ["btcusdt_20240808.gz", "btcusdt_20240809.gz"]
    store, stats, _ = _replay(g)
    e = store.entry(store.instruments()[0])
    # 23:54:13 -> 00:05:04 UTC local receive time: the replay reaches the second day.
    assert stats.last_ts_ns - stats.first_ts_ns > 10 * 60 * 1e9
    assert e.sync.counters.deltas_applied > 6000


@pytest.mark.parametrize("name", ["hftbacktest/spot/btcusdt", "hftbacktest/spot/ethusdt"])
def test_book_top_matches_book_ticker(groups, name):
    """After each depth event, best bid/ask (price and size) must equal the latest bookTicker whose
    update id is <= the event's final update id ``u``.

    Binance's bookTicker and diff-depth are separate streams. Where they disagree, the test checks
    the disagreement is upstream: the ticker's best bid/ask price is never given a size by any
    depth event around that point (on the recording, the diff stream later deletes a level it never
    added), so no book built from the depth stream could show it.
    """
    tickers: list[BookTicker] = []
    checks = []
    depth_prices: list[tuple[int, set[str]]] = []
    store_ref = {}

    def hook(rec, events):
        for ev in events:
            if isinstance(ev, BookTicker):
                tickers.append(ev)
            elif isinstance(ev, L2Delta):
                # Prices the diff stream sets to a non-zero size (adds or changes).
                added = {p for p, q in ev.bids if float(q)} | {p for p, q in ev.asks if float(q)}
                depth_prices.append((ev.last_sequence, added))
                e = store_ref["store"].entry(ev.instrument)
                if e.book.quality.synced and e.book.sequence == ev.last_sequence:
                    b = e.book
                    checks.append(
                        (
                            ev.last_sequence,
                            b.best_bid_scaled(),
                            b.best_ask_scaled(),
                            b.price_decimals,
                            b.size_decimals,
                        )
                    )

    reg = AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    store_ref["store"] = store
    Replayer(store, reg).run(groups[name].records(), on_record=hook)

    tickers.sort(key=lambda t: t.sequence)
    ids = [t.sequence for t in tickers]
    agree, disagree = 0, []
    for u, bb, ba, pd, sd in checks:
        i = bisect.bisect_right(ids, u) - 1
        if i < 0:
            continue
        t = tickers[i]
        tb = (parse_scaled(t.bid_price, pd), parse_scaled(t.bid_size, sd))
        ta = (parse_scaled(t.ask_price, pd), parse_scaled(t.ask_size, sd))
        if (tb, ta) == (bb, ba):
            agree += 1
        else:
            disagree.append((u, t, tb != bb, ta != ba))
    total = agree + len(disagree)
    rate = agree / total
    print(f"{name}: bookTicker agreement {agree}/{total} = {rate:.4%}")
    assert total > 6000
    assert rate >= 0.999
    depth_ids = [d[0] for d in depth_prices]
    for u, t, bid_differs, ask_differs in disagree:
        j = bisect.bisect_left(depth_ids, u)
        nearby = set().union(*(p for _, p in depth_prices[max(0, j - 3) : j + 4]))
        if bid_differs:
            assert t.bid_price not in nearby, f"unexplained bid mismatch at u={u}"
        if ask_differs:
            assert t.ask_price not in nearby, f"unexplained ask mismatch at u={u}"


def test_incremental_depth_equals_full_scan_on_every_update(groups):
    windows = (10.0, 50.0, 2.5)
    mismatches = []
    counted = [0]

    def hook(rec, events):
        for ev in events:
            if isinstance(ev, L2Delta):
                e = store_ref["store"].entry(ev.instrument)
                if not e.book.quality.synced:
                    continue
                for w in windows:
                    if e.book.depth_scaled(w) != e.book._depth_scan(w):
                        mismatches.append((ev.last_sequence, w))
                counted[0] += 1

    reg = AdapterRegistry()
    store = BookStore(reg, windows_bps=windows, clock=ReplayClock())
    store_ref = {"store": store}
    Replayer(store, reg).run(groups["hftbacktest/usdm/btcusdt"].records(), on_record=hook)
    assert counted[0] > 6000
    assert mismatches == []


def test_coinm_sizes_are_converted_from_contracts(groups):
    store, _, _ = _replay(groups["hftbacktest/cm/btcusd_perp"])
    (inst,) = store.instruments()
    assert inst.symbol == "BTC/USD:BTC"
    e = store.entry(inst)
    view = e.book.view(max_levels=1)
    contracts = e.book.levels_scaled(1)[0][0][1] / 10**e.book.size_decimals
    # 1 contract = 100 USD face value: base size = contracts * 100 / price.
    assert view.bid_sizes[0] == pytest.approx(contracts * 100 / view.bid_prices[0])


def test_corrupt_and_truncated_lines_are_skipped_and_counted(tmp_path: Path, data_dir):
    src = data_dir / "hftbacktest/spot/btcusdt_20240808.gz"
    with gzip.open(src, "rb") as fh:
        lines = [next(fh) for _ in range(40)]
    bad = [*lines[:10], b"garbage line without timestamp\n", b"123 {not json\n", *lines[10:30]]
    raw = gzip.compress(b"".join(bad))
    path = tmp_path / "btcusdt_20240808.gz"
    path.write_bytes(raw[: len(raw) - 7])  # truncated gzip tail
    stats = ReadStats()
    records = list(read_hftbacktest(path, "binance", "BTCUSDT", stats))
    assert stats.corrupt >= 2  # the timestamp-less line and the truncated tail
    reg = AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    rstats = Replayer(store, reg).run(records)
    assert rstats.undecodable == 1  # the "{not json" line
    assert store.entry(store.instruments()[0]).book.quality.synced
