"""Depth honesty on the recorded books: shares and HHI only over books that can be compared now
(fresh, trusted, contemporaneous with the freshest), the rest named with the reason, and windows
that reach past a venue's visible book flagged. References: the books' own levels (BookView
arrays) summed independently."""

from __future__ import annotations

import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.services import Services


@pytest.fixture(scope="module")
def services(data_dir):
    settings = Settings(data_dir=data_dir)
    return Services.build(
        settings, market=MarketData.from_recordings(settings, data_dir), persist_alerts=False
    )


def _depth(view, w: float) -> float:
    bid, ask = float(view.bid_prices[0]), float(view.ask_prices[0])
    mid = (bid + ask) / 2
    lo, hi = mid * (1 - w / 1e4), mid * (1 + w / 1e4)
    b = sum(p * s for p, s in zip(view.bid_prices, view.bid_sizes, strict=True) if p >= lo)
    a = sum(p * s for p, s in zip(view.ask_prices, view.ask_sizes, strict=True) if p <= hi)
    return b + a


async def test_hhi_covers_only_contemporaneous_trusted_books(services) -> None:
    cmp = await services.liquidity.compare("BTC", "buy", size=10)
    c = cmp.concentration
    views = {r.venue: (await services.books.book_of(r.symbol, r.venue)).view for r in cmp.venues}
    # the 2024 Binance spot and COIN-M books end within a second; USD-M is stale (its capture ends
    # 5 minutes early); the 2021/2022 captures are years older than the freshest book
    assert set(c.venues_included) == {"binance", "binancecoinm"}
    assert "stale" in c.venues_excluded["binanceusdm"]
    for v in ("bybit", "okx"):
        assert "not contemporaneous" in c.venues_excluded[v]
    tot = {v: _depth(views[v], c.window_bps) for v in c.venues_included}
    shares = {v: x / sum(tot.values()) for v, x in tot.items()}
    assert c.hhi == pytest.approx(sum(s * s for s in shares.values()), rel=1e-9)
    for row in cmp.venues:
        if row.venue in c.venues_excluded:
            assert row.depth_share is None
        else:
            assert row.depth_share == pytest.approx(shares[row.venue], rel=1e-9)


async def test_a_window_past_the_visible_book_is_flagged(services) -> None:
    # Bybit's legacy capture is orderBookL2_25: 25 levels a side, a few bps of ETH only
    cmp = await services.liquidity.compare("ETH", "buy", size=1, venues=["bybit", "binance"], window_bps=50)
    book = (await services.books.book_of("ETH/USDT:USDT", "bybit")).view
    mid = (float(book.bid_prices[0]) + float(book.ask_prices[0])) / 2
    reaches = float(book.ask_prices[-1]) < mid * 1.005 or float(book.bid_prices[-1]) > mid * 0.995
    assert reaches, "the recorded Bybit book is wider than 50 bps: pick a wider window"
    row = next(r for r in cmp.venues if r.venue == "bybit")
    assert row.depth_window_exceeds_visible_book is True
    binance = next(r for r in cmp.venues if r.venue == "binance")
    assert binance.depth_window_exceeds_visible_book is False  # a 1000-level book covers 50 bps
