"""Replay of every recorded order-book capture (cryptofeed + the Bybit v5 sample) through its adapter.

For every venue and instrument: synced at the end, no gaps, no checksum failures, not crossed.
Checksums are verified on every message that carries one: 4,269 Kraken updates and 290 OKX
messages (README §5.2). Damaging the stream on purpose (one message dropped) must be caught by
the checksum or the sequence rule of that one instrument.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import (
    ReadStats,
    Replayer,
    discover,
    read_tardis_book_snapshots,
    read_tardis_incremental_l2,
)
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

BOOK_VENUES = ["coinbase", "kraken", "bybit", "okx", "bitstamp", "gemini", "kucoin", "gate", "bitfinex"]
EXPECTED_CHECKSUMS = {"kraken": 4269, "okx": 290}


def _replay(group, registry=None, records=None):
    reg = registry or AdapterRegistry()
    store = BookStore(reg, clock=ReplayClock())
    rs = ReadStats()
    stats = Replayer(store, reg).run(records if records is not None else group.records(rs))
    return store, stats, rs, reg(group.venue)


@pytest.fixture(scope="module")
def groups(data_dir):
    venues = AdapterRegistry().venues  # Tardis CSVs of venues without an adapter are not replayed here
    gs = [g for g in discover(data_dir) if g.fmt != "hftbacktest" and g.venue in venues]
    if not any(g.venue == "kraken" for g in gs):
        pytest.skip("cryptofeed captures not found")
    return gs


@pytest.fixture(scope="module")
def replays(groups):
    return {g.name: (g, *_replay(g)) for g in groups}


def test_every_cryptofeed_venue_is_discovered(groups):
    names = {g.name for g in groups}
    for prefix in (
        "COINBASE",
        "KRAKEN",
        "BYBIT",
        "OKX",
        "BITSTAMP",
        "GEMINI",
        "KUCOIN",
        "GATEIO",
        "BITFINEX",
    ):
        assert f"cryptofeed/{prefix}" in names
    kraken = next(g for g in groups if g.name == "cryptofeed/KRAKEN")
    assert sorted(f.name for f in kraken.files) == [
        "KRAKEN.ws.48.0.gz",
        "KRAKEN.ws.49.0.gz",
        "KRAKEN.ws.50.0.gz",
    ]
    bybit = next(g for g in groups if g.name == "cryptofeed/BYBIT")
    assert [f.name for f in bybit.files] == ["BYBIT.ws.25.0.gz", "BYBIT.ws.26.0.gz"]
    assert "nautilus_trader/bybit/xrpusdt-ob500" in names
    # REST snapshot bodies are tied to their symbol from the URL (query or Bitstamp path).
    for name, wanted in (("cryptofeed/BITSTAMP", "ethusd"), ("cryptofeed/GATEIO", "BTC_USDC"),
                         ("cryptofeed/KUCOIN", "SNX-BTC")):  # fmt: skip
        g = next(g for g in groups if g.name == name)
        assert wanted in {r.venue_symbol for r in g.records() if r.kind == "rest"}


def test_every_book_replays_without_gaps_or_checksum_failures(replays):
    rows = []
    per_venue_checksums: dict[str, int] = defaultdict(int)
    for name, (g, store, stats, rs, adapter) in replays.items():
        assert rs.corrupt == 0, name
        assert stats.undecodable == 0, name
        if g.venue in BOOK_VENUES:
            assert adapter.errors.malformed == 0 and adapter.errors.unknown == 0, (name, adapter.errors)
        assert store.instruments(), name
        updates = verified = 0
        for inst in store.instruments():
            e = store.entry(inst)
            q = e.book.quality
            assert q.synced, f"{name} {inst} never synced"
            assert q.gaps == 0, f"{name} {inst}: {q}"
            assert q.checksum_failures == 0, f"{name} {inst}: {q}"
            assert not q.crossed, f"{name} {inst} ends crossed"
            updates += e.sync.counters.deltas_applied
            verified += q.checksums_verified
        per_venue_checksums[g.venue] += verified
        rows.append((name, g.venue, stats.records, len(store.instruments()), updates, verified))
    print(f"\n{'recording':38} {'venue':13} {'messages':>8} {'books':>5} {'updates':>7} {'checksums ok':>12}")
    for r in rows:
        print(f"{r[0]:38} {r[1]:13} {r[2]:8d} {r[3]:5d} {r[4]:7d} {r[5]:12d}")
    for venue, n in EXPECTED_CHECKSUMS.items():
        assert per_venue_checksums[venue] == n, (venue, per_venue_checksums[venue])


def test_okx_checksums_use_the_original_wire_strings(replays):
    *_, adapter = replays["cryptofeed/OKX"]
    assert adapter.checksum_string_fallbacks == 0


def test_books_from_six_venues_share_one_store_with_sane_tops(groups):
    reg = AdapterRegistry()
    store = BookStore(reg, windows_bps=(50,), clock=ReplayClock())
    for g in groups:
        Replayer(store, reg).run(g.records())
    venues = {i.venue for i in store.instruments() if i.venue in BOOK_VENUES}
    assert len(venues) >= 6, venues
    for inst in store.instruments():
        book = store.entry(inst).book
        assert book.quality.synced, inst
        tob = book.top_of_book()
        assert tob is not None, inst
        bid, bid_size, ask, ask_size = tob
        assert 0 < bid < ask, (inst, tob)
        assert bid_size > 0 and ask_size > 0, (inst, tob)
        view = store.view(inst.venue, inst.symbol, max_levels=5)
        assert view.bid_sizes[0] > 0
    # Inverse books are converted from USD contracts to base units.
    v = store.view("bybit", "BTC/USD:BTC", max_levels=1)
    contracts = store.entry(InstrumentId("bybit", "BTC/USD:BTC")).book.levels_scaled(1)[0][0][1]
    assert v.bid_sizes[0] == pytest.approx(contracts / v.bid_prices[0])
    okx = InstrumentId("okx", "BTC/USD:BTC-220527")  # 100 USD per contract
    v = store.view(okx.venue, okx.symbol, max_levels=1)
    contracts = store.entry(okx).book.levels_scaled(1)[0][0][1]
    assert v.bid_sizes[0] == pytest.approx(contracts * 100 / v.bid_prices[0])


def _records_without(group, predicate):
    """The group's records minus the first one matching ``predicate(record)``."""
    dropped = []
    out = []
    for r in group.records():
        if not dropped and predicate(r):
            dropped.append(r)
            continue
        out.append(r)
    assert dropped
    return out


def test_a_lost_kraken_update_is_caught_by_the_checksum(groups):
    g = next(g for g in groups if g.name == "cryptofeed/KRAKEN")
    seen = {"n": 0}

    def is_xmr_update(r):  # the 100th XMR/USD book update
        if b'"book-1000","XMR/USD"' in r.payload and b'"c":' in r.payload:
            seen["n"] += 1
            return seen["n"] == 100
        return False

    store, *_ = _replay(g, records=_records_without(g, is_xmr_update))
    q = store.entry(InstrumentId("kraken", "XMR/USD")).book.quality
    assert q.checksum_failures == 1 and not q.synced  # waits for a resubscribe snapshot
    other = store.entry(InstrumentId("kraken", "SC/EUR")).book.quality
    assert other.synced and other.checksum_failures == 0  # only that instrument resyncs


@pytest.mark.parametrize(
    ("name", "marker", "symbol"),
    [
        ("cryptofeed/KUCOIN", b'"topic":"/market/level2:SNX-BTC"', "SNX/BTC"),
        ("cryptofeed/GATEIO", b'"s":"OMG_USDT"', "OMG/USDT"),
        ("nautilus_trader/bybit/xrpusdt-ob500", b'"type":"delta"', "XRP/USDT:USDT"),
    ],
)
def test_a_lost_diff_is_a_gap_for_that_instrument_only(groups, name, marker, symbol):
    g = next(g for g in groups if g.name == name)
    seen = {"n": 0}

    def is_tenth(r):
        if r.kind == "ws" and marker in r.payload:
            seen["n"] += 1
            return seen["n"] == 10
        return False

    store, *_ = _replay(g, records=_records_without(g, is_tenth))
    for inst in store.instruments():
        q = store.entry(inst).book.quality
        if inst.symbol == symbol:
            assert q.gaps == 1 and not q.synced, (inst, q)
        else:
            assert q.gaps == 0 and q.synced, (inst, q)


def test_bitfinex_sequence_break_resyncs_books(groups):
    """Dropping any frame breaks the connection-wide SEQ: every book's next update is a gap."""
    g = next(g for g in groups if g.name == "cryptofeed/BITFINEX")
    records = list(g.records())
    # Drop a frame after all books have their snapshots (the last "subscribed" is near the start).
    last_sub = max(i for i, r in enumerate(records) if b'"event":"subscribed"' in r.payload)
    victim = last_sub + 50
    store, *_, adapter = _replay(g, records=records[:victim] + records[victim + 1 :])
    assert adapter.connection_gaps == 1
    gapped = [i for i in store.instruments() if store.entry(i).book.quality.gaps]
    assert gapped, "no book noticed the lost frame"
    for inst in gapped:
        assert not store.entry(inst).book.quality.synced


def test_tardis_csv_readers(data_dir: Path):
    tardis = data_dir / "nautilus_trader" / "tardis"
    if not tardis.is_dir():
        pytest.skip("tardis samples not found")
    events = list(read_tardis_incremental_l2(tardis / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"))
    assert len(events) == 1 and isinstance(events[0], L2Snapshot)  # all 15 rows are one snapshot
    snap = events[0]
    assert snap.instrument == InstrumentId("deribit", "BTC/USD:BTC")
    assert len(snap.bids) + len(snap.asks) == 15
    snaps = list(read_tardis_book_snapshots(tardis / "binance-futures_book_snapshot_25_BTCUSDT.csv"))
    assert len(snaps) == 10
    s = snaps[0]
    assert s.instrument == InstrumentId("binanceusdm", "BTC/USDT:USDT")
    assert len(s.bids) == len(s.asks) == 25
    assert s.asks[0] == ("11657.08", "1.714") and s.bids[0] == ("11657.07", "10.896")
    assert float(s.bids[0][0]) < float(s.asks[0][0])
    assert not any(isinstance(e, L2Delta) for e in snaps)
