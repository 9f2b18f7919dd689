"""Fee-aware venue comparison on real recorded books.

Two venues at the same moment: the hftbacktest Binance spot BTCUSDT and USD-M BTCUSDT recordings
(2024-08-08, recorded simultaneously), the first two minutes replayed on one timeline and sampled
every 20 s. Two venues at different times: the cryptofeed OKX BTC-USDT capture (2022-05-13)
against the Binance spot book (2024-08-08): not contemporaneous, so no arbitrage verdict.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from market_liquidity_monitor.analytics import (
    compare_venues,
    depth_within_bps,
    herfindahl,
    market_impact,
    top_of_book,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import Replayer, discover, merge, read_hftbacktest
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

WINDOWS = (10.0, 25.0, 50.0, 100.0)
SAMPLE_EVERY_NS = 20 * 10**9
SPAN_NS = 120 * 10**9

# Published base-tier taker fees (bps), read from the venues' fee pages (not from the project's table):
# Binance spot VIP 0 0.1000% (binance.com/en/fee/schedule); USD-M and COIN-M VIP 0 0.0500%
# (binance.com/en/fee/futureFee); OKX spot Lv1 0.10% (okx.com/fees).
PUBLISHED = {"binance": 10.0, "binanceusdm": 5.0, "binancecoinm": 5.0, "okx": 10.0}


def _fees(*views) -> dict[str, float]:
    return {v.instrument.venue: PUBLISHED[v.instrument.venue] for v in views}


@pytest.fixture(scope="module")
def pairs(data_dir: Path) -> list[tuple[BookView, BookView]]:
    """(spot, USD-M) BTC books every 20 s of the first two minutes, replayed on one clock."""
    hft = data_dir / "hftbacktest"
    spot = read_hftbacktest(hft / "spot" / "btcusdt_20240808.gz", "binance", "BTCUSDT")
    perp = read_hftbacktest(hft / "usdm" / "btcusdt_20240808.gz", "binanceusdm", "BTCUSDT", seq_base=10**9)
    reg = AdapterRegistry()
    clock = ReplayClock()
    store = BookStore(reg, clock=clock)
    first = next(read_hftbacktest(hft / "spot" / "btcusdt_20240808.gz", "binance", "BTCUSDT")).ts_recv_ns
    out: list[tuple[BookView, BookView]] = []
    nxt = [first]

    def on_record(rec, _events) -> None:
        if rec.ts_recv_ns < nxt[0]:
            return
        try:
            views = (store.view("binance", "BTC/USDT"), store.view("binanceusdm", "BTC/USDT:USDT"))
        except MLMError:  # a book not synced yet (before its REST snapshot)
            return
        nxt[0] = rec.ts_recv_ns + SAMPLE_EVERY_NS
        out.append(views)

    records = itertools.takewhile(lambda r: r.ts_recv_ns < first + SPAN_NS, merge(spot, perp))
    Replayer(store, reg, clock=clock).run(records, on_record=on_record)
    assert len(out) >= 4
    return out


def test_fee_aware_comparison_on_simultaneous_books(pairs) -> None:
    for spot, perp in pairs:
        fees = _fees(spot, perp)
        res = compare_venues([spot, perp], "buy", size=5, fees_bps=fees, windows_bps=WINDOWS)
        assert res.contemporaneous and res.max_book_ts_diff_ms <= 2000
        assert "within" in res.contemporaneity_note
        for row, view in zip(res.venues, (spot, perp), strict=True):
            venue = view.instrument.venue
            assert row.fee_bps == fees[venue]
            imp = market_impact(view, "buy", size=5)
            assert row.vwap == imp.vwap and row.slippage_bps == imp.slippage_bps
            f = row.fee_bps / 1e4
            assert row.cost_bps == pytest.approx((imp.vwap * (1 + f) - imp.mid_price) / imp.mid_price * 1e4)
            assert row.spread_bps == top_of_book(view).spread_bps
            assert [d.window_bps for d in row.depth_windows] == list(WINDOWS)
            for d in row.depth_windows:
                ref = depth_within_bps(view, d.window_bps)
                assert d.depth_notional == pytest.approx(ref.bid_notional + ref.ask_notional, rel=1e-12)
        # concentration per window: shares of the summed depth, HHI, 1/HHI
        for conc in res.concentration_by_window:
            amounts = {
                v.instrument.venue: depth_within_bps(v, conc.window_bps).bid_notional
                + depth_within_bps(v, conc.window_bps).ask_notional
                for v in (spot, perp)
            }
            total = sum(amounts.values())
            assert conc.shares == pytest.approx({k: a / total for k, a in amounts.items()})
            assert conc.hhi == pytest.approx(sum((a / total) ** 2 for a in amounts.values()))
            assert conc.hhi == pytest.approx(herfindahl(amounts)[0])
            assert conc.effective_venue_count == pytest.approx(1 / conc.hhi)
            assert 0.5 <= conc.hhi <= 1.0
        best = min(res.venues, key=lambda r: r.cost_bps)
        assert res.best_venue == best.venue and "lowest fee-adjusted cost" in res.best_venue_reason


def test_arbitrage_after_fees_on_simultaneous_books(pairs) -> None:
    """Spot-perp price gaps exist before fees; after both taker fees none is an opportunity."""
    gross_edges = []
    for spot, perp in pairs:
        res = compare_venues([spot, perp], "sell", notional=250_000, fees_bps=_fees(spot, perp))
        zero = compare_venues([spot, perp], "sell", notional=250_000)
        for a, z in zip(res.arbitrage, zero.arbitrage, strict=True):
            assert a.contemporaneous and a.ts_diff_ms <= 2000
            buy = spot if a.buy_venue == "binance" else perp
            sell = perp if buy is spot else spot
            ask, bid = float(buy.ask_prices[0]), float(sell.bid_prices[0])
            assert z.edge_bps == pytest.approx((bid - ask) / ask * 1e4)
            fb = PUBLISHED[a.buy_venue] / 1e4
            fs = PUBLISHED[a.sell_venue] / 1e4
            assert a.edge_bps == pytest.approx((bid * (1 - fs) - ask * (1 + fb)) / (ask * (1 + fb)) * 1e4)
            assert a.opportunity is False  # 15 bps of round-trip taker fees dwarf the basis
            gross_edges.append(z.edge_bps)
    print(
        f"\nspot/USD-M gross top-of-book edges (bps): min {min(gross_edges):.2f}, max {max(gross_edges):.2f}"
    )


def test_a_lower_fee_moves_cost_by_the_fee_difference(pairs) -> None:
    spot, perp = pairs[-1]
    fees = {**_fees(spot, perp), "binance": 7.5}
    base = compare_venues([spot, perp], "buy", size=2, fees_bps=_fees(spot, perp))
    over = compare_venues([spot, perp], "buy", size=2, fees_bps=fees)
    b, o = base.venues[0], over.venues[0]
    # cost_bps = s (vwap (1 + f) - mid) / mid: 2.5 bps less fee -> vwap / mid * 2.5 bps less cost
    assert b.cost_bps - o.cost_bps == pytest.approx(b.vwap / b.mid_price * 2.5, rel=1e-9)
    assert over.venues[1].cost_bps == base.venues[1].cost_bps


def test_books_from_different_times_are_not_compared_for_arbitrage(data_dir: Path, pairs) -> None:
    (group,) = [g for g in discover(data_dir, venues=["okx"]) if g.fmt == "cryptofeed"]
    reg = AdapterRegistry()
    store = BookStore(reg)
    Replayer(store, reg).run(group.records())
    okx = store.view("okx", "BTC/USDT")
    spot = pairs[-1][0]
    res = compare_venues([spot, okx], "buy", size=1, fees_bps=_fees(spot, okx), windows_bps=(10, 50))
    assert res.contemporaneous is False and res.max_book_ts_diff_ms > 365 * 86_400_000
    assert "not contemporaneous" in res.contemporaneity_note and okx.book_ts_iso in res.contemporaneity_note
    for a in res.arbitrage:
        assert not a.contemporaneous and a.opportunity is None and a.edge_bps is None
        assert "not contemporaneous" in a.reason
    # each venue's own cost is still reported, with its fee source
    assert {r.venue: r.fee_bps for r in res.venues} == {"binance": 10.0, "okx": 10.0}
    assert res.best_venue in {"binance", "okx"}
    print("\n" + res.contemporaneity_note)
