"""Results memoised by a view's arrays (``analytics.liquidity._memo``) are never reused for a book
that changed: two views of the same instrument and timestamp but different levels give each its
own figures, equal to a hand (Decimal) computation; the same view asked twice gives equal results.
"""

from __future__ import annotations

from decimal import Decimal as D

from market_liquidity_monitor.analytics import book_summary, depth_within_bps, market_impact, top_of_book
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.instrument import InstrumentId, Side

INST = InstrumentId("binance", "BTC/USDT")
TS = 1_723_161_600_000_000_000


def view(bids, asks) -> BookView:
    return BookView.from_levels(INST, bids, asks, ts_event_ns=TS)


def vwap_buy(asks, size) -> D:
    """Independent Decimal walk of the asks (best first) for ``size`` base units."""
    left, cost = D(str(size)), D(0)
    for p, s in asks:
        take = min(left, D(str(s)))
        cost += take * D(str(p))
        left -= take
        if left == 0:
            break
    return cost / D(str(size))


def test_a_changed_book_with_the_same_timestamp_is_recomputed():
    a_bids, a_asks = [(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0), (102.0, 5.0)]
    b_bids, b_asks = [(99.5, 3.0), (98.0, 2.0)], [(100.5, 0.5), (103.0, 5.0)]
    va, vb = view(a_bids, a_asks), view(b_bids, b_asks)
    for v, bids, asks in ((va, a_bids, a_asks), (vb, b_bids, b_asks), (va, a_bids, a_asks)):
        top = top_of_book(v)
        mid = (D(str(bids[0][0])) + D(str(asks[0][0]))) / 2
        assert top.mid_price == float(mid)
        assert top.best_bid_size == bids[0][1]
        imp = market_impact(v, Side.BUY, size=2)
        assert abs(D(str(imp.vwap)) - vwap_buy(asks, 2)) < D("1e-9")
        d = depth_within_bps(v, 150)
        lo, hi = mid * (1 - D("0.015")), mid * (1 + D("0.015"))
        assert d.bid_size == float(sum(D(str(s)) for p, s in bids if D(str(p)) >= lo))
        assert d.ask_size == float(sum(D(str(s)) for p, s in asks if D(str(p)) <= hi))
        s = book_summary(v, [150])
        assert s.depth[0] == d and s.top_of_book == top
