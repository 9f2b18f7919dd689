"""Cross-venue comparison of one asset: cost of the same taker order on each book, arbitrage between
books, and how concentrated the liquidity is (Herfindahl-Hirschman index).

Pure functions over :class:`~market_liquidity_monitor.book.view.BookView` (one per venue).

- per venue, the ``market_impact`` walk of the visible book; fee-adjusted cost vs that venue's own
  mid: ``cost_bps = s * (vwap * (1 + s f) - mid) / mid * 1e4`` (``s`` = +1 buy, -1 sell, ``f`` =
  ``fee_bps / 1e4``), ``cost_quote = cost_bps / 1e4 * mid * filled_size``; this is slippage plus
  the fee (plus a cross term ``slippage * fee`` of order 1e-7 of notional);
- arbitrage: the best bid of venue X, net of X's taker fee, above the best ask of venue Y
  including Y's fee: ``bid_X (1 - f_X) > ask_Y (1 + f_Y)`` (buy on Y, sell on X, both as taker).
  Only books whose timestamps are within ``max_book_age_diff_ms`` are compared; otherwise the pair
  is reported "not contemporaneous" with the time difference (stale quotes are not an opportunity);
- concentration: venue shares ``s_i`` of resting notional (bid + ask) within ``window_bps`` of each
  venue's mid; ``HHI = sum s_i^2`` in ``[1/N, 1]`` (Herfindahl-Hirschman index: O. C. Herfindahl
  1950, A. O. Hirschman 1945; the concentration measure of the US DOJ/FTC Merger Guidelines, there
  on a 0-10,000 scale), and the effective number of venues ``1 / HHI``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from market_liquidity_monitor.analytics.liquidity import (
    _BookRef,
    _check_number,
    _check_window,
    _one_amount,
    _Result,
    depth_within_bps,
    market_impact,
    top_of_book,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import Side

__all__ = [
    "ArbitrageCheck",
    "LiquidityConcentration",
    "VenueComparison",
    "VenueCost",
    "compare_venues",
    "herfindahl",
]

BPS = 1e4


class VenueCost(_BookRef):
    """The order walked through one venue's book, with its fee and that venue's depth."""

    side: Side
    fee_bps: float
    mid_price: float
    spread_bps: float
    vwap: float  # fees excluded
    vwap_incl_fees: float
    slippage_bps: float  # vs this venue's mid, fees excluded
    cost_bps: float  # vs this venue's mid, fee included
    cost_quote: float
    filled_size: float
    filled_notional: float
    fully_filled: bool
    window_bps: float
    depth_bid_notional: float  # within window_bps of mid, quote units
    depth_ask_notional: float
    depth_notional: float  # bid + ask
    depth_share: float | None  # of the venues' summed depth_notional
    reason: str | None = None


class ArbitrageCheck(_Result):
    """Buy at ``buy_venue``'s best ask, sell at ``sell_venue``'s best bid, both as taker."""

    buy_venue: str
    sell_venue: str
    ts_diff_ms: float | None
    contemporaneous: bool
    best_ask: float
    best_bid: float
    ask_incl_fee: float
    bid_net_of_fee: float
    opportunity: bool | None  # None when not contemporaneous
    edge_bps: float | None  # (bid_net - ask_incl) / ask_incl * 1e4; None when not contemporaneous
    size: float | None  # min(best ask size, best bid size), base units, when an opportunity
    profit_quote: float | None  # edge * size at the top level, when an opportunity
    reason: str | None = None


class LiquidityConcentration(_Result):
    """Venue shares of depth within a window, HHI and effective venue count."""

    window_bps: float
    shares: dict[str, float]
    hhi: float | None  # in [1/N, 1]; None when no venue has depth in the window
    effective_venue_count: float | None  # 1 / hhi
    reason: str | None = None


class VenueComparison(_Result):
    """The same order on each venue, the best venue and why, arbitrage checks and concentration."""

    side: Side
    size: float | None
    notional_requested: float | None
    fees_assumed_zero: bool
    venues: tuple[VenueCost, ...]  # input order
    best_venue: str | None  # lowest cost_bps among venues that fill the whole order
    best_venue_reason: str
    best_venue_by_price: str | None  # best vwap_incl_fees (lowest buy / highest sell) among full fills
    arbitrage: tuple[ArbitrageCheck, ...]
    concentration: LiquidityConcentration


def herfindahl(values: Mapping[str, float]) -> tuple[float | None, dict[str, float]]:
    """``(hhi, shares)`` of non-negative amounts per venue: ``shares = v / sum(v)``, ``hhi = sum(shares**2)``.

    ``hhi`` is None (shares all 0) if the amounts sum to 0; ``InvalidInputError`` for a negative amount.
    """
    total = float(sum(values.values()))
    if any(v < 0 for v in values.values()):
        raise InvalidInputError(f"amounts for the HHI must be >= 0; got {dict(values)}")
    if total <= 0:
        return None, {k: 0.0 for k in values}
    shares = {k: float(v) / total for k, v in values.items()}
    return sum(s * s for s in shares.values()), shares


def _arbitrage(
    views: Sequence[BookView], fees: Mapping[str, float], max_diff_ms: float
) -> list[ArbitrageCheck]:
    out = []
    for buy in views:
        for sell in views:
            if buy is sell or buy.ask_prices.size == 0 or sell.bid_prices.size == 0:
                continue
            bv, sv = buy.instrument.venue, sell.instrument.venue
            ask, bid = float(buy.ask_prices[0]), float(sell.bid_prices[0])
            ask_in = ask * (1 + fees[bv] / BPS)
            bid_net = bid * (1 - fees[sv] / BPS)
            t1, t2 = buy.book_ts_ns, sell.book_ts_ns
            diff = None if t1 is None or t2 is None else abs(t1 - t2) / 1e6
            common = {
                "buy_venue": bv,
                "sell_venue": sv,
                "ts_diff_ms": diff,
                "best_ask": ask,
                "best_bid": bid,
                "ask_incl_fee": ask_in,
                "bid_net_of_fee": bid_net,
            }
            if diff is None or diff > max_diff_ms:
                why = (
                    "a book has no timestamp"
                    if diff is None
                    else f"books {diff:.0f} ms apart (> {max_diff_ms:g} ms): not contemporaneous"
                )
                out.append(
                    ArbitrageCheck(
                        **common,
                        contemporaneous=False,
                        opportunity=None,
                        edge_bps=None,
                        size=None,
                        profit_quote=None,
                        reason=why,
                    )
                )
                continue
            edge = (bid_net - ask_in) / ask_in * BPS
            opp = bid_net > ask_in
            size = min(float(buy.ask_sizes[0]), float(sell.bid_sizes[0])) if opp else None
            out.append(
                ArbitrageCheck(
                    **common,
                    contemporaneous=True,
                    opportunity=opp,
                    edge_bps=edge,
                    size=size,
                    profit_quote=(bid_net - ask_in) * size if opp else None,
                )
            )
    return out


def compare_venues(
    views: Sequence[BookView],
    side: Side | str,
    size: float | None = None,
    notional: float | None = None,
    fees_bps: Mapping[str, float] | None = None,
    window_bps: float = 50.0,
    max_book_age_diff_ms: float = 2000.0,
) -> VenueComparison:
    """The same taker order (``size`` base or ``notional`` quote, fees excluded) on each venue.

    ``fees_bps``: taker fee per venue (every venue must be present) or None for zero fees.
    See the module docstring for cost, arbitrage and HHI definitions. ``best_venue`` is None, with
    the reason, when no venue fills the whole order.

    Raises ``InvalidInputError`` for no views, two books of one venue, a bad amount, window, fee
    table or ``max_book_age_diff_ms < 0``; ``BookNotReadyError`` if a book lacks a side.
    """
    side = Side.parse(side)
    amount, by_notional = _one_amount(size, notional)
    window = _check_window(window_bps)
    max_diff = _check_number("max_book_age_diff_ms", max_book_age_diff_ms, allow_zero=True, unit="ms")
    if not views:
        raise InvalidInputError("compare_venues needs at least one book")
    names = [v.instrument.venue for v in views]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"one book per venue; got venues {names}")
    if fees_bps is None:
        fees = {n: 0.0 for n in names}
    else:
        missing = [n for n in names if n not in fees_bps]
        if missing:
            raise InvalidInputError(
                f"fees_bps has no taker fee for {', '.join(missing)}; give one for every venue or pass None"
            )
        fees = {n: _check_number(f"fees_bps[{n!r}]", fees_bps[n], allow_zero=True, unit="bps") for n in names}
    s = 1.0 if side is Side.BUY else -1.0
    depths = {v.instrument.venue: depth_within_bps(v, window) for v in views}
    hhi, shares = herfindahl({k: d.bid_notional + d.ask_notional for k, d in depths.items()})
    rows = []
    for v in views:
        venue = v.instrument.venue
        imp = market_impact(
            v, side, size=None if by_notional else amount, notional=amount if by_notional else None
        )
        top = top_of_book(v)
        f = fees[venue] / BPS
        vwap_in = imp.vwap * (1 + s * f)
        cost_bps = s * (vwap_in - imp.mid_price) / imp.mid_price * BPS
        d = depths[venue]
        rows.append(
            VenueCost(
                venue=imp.venue,
                symbol=imp.symbol,
                book_ts=imp.book_ts,
                book_ts_ns=imp.book_ts_ns,
                side=side,
                fee_bps=fees[venue],
                mid_price=imp.mid_price,
                spread_bps=top.spread_bps,
                vwap=imp.vwap,
                vwap_incl_fees=vwap_in,
                slippage_bps=imp.slippage_bps,
                cost_bps=cost_bps,
                cost_quote=cost_bps / BPS * imp.mid_price * imp.filled_size,
                filled_size=imp.filled_size,
                filled_notional=imp.filled_notional,
                fully_filled=imp.fully_filled,
                window_bps=window,
                depth_bid_notional=d.bid_notional,
                depth_ask_notional=d.ask_notional,
                depth_notional=d.bid_notional + d.ask_notional,
                depth_share=shares[venue] if hhi is not None else None,
                reason=imp.reason,
            )
        )
    full = sorted((r for r in rows if r.fully_filled), key=lambda r: r.cost_bps)
    if not full:
        best, why, best_px = None, "no venue's visible book fills the whole order", None
    else:
        best = full[0].venue
        if len(full) == 1:
            why = f"{best} is the only venue whose visible book fills the whole order ({full[0].cost_bps:.3f} bps)"
        else:
            nxt = full[1]
            why = (
                f"{best} has the lowest fee-adjusted cost vs its own mid: {full[0].cost_bps:.3f} bps "
                f"(slippage {full[0].slippage_bps:.3f} + fee {full[0].fee_bps:g}) vs {nxt.venue} "
                f"{nxt.cost_bps:.3f} bps (slippage {nxt.slippage_bps:.3f} + fee {nxt.fee_bps:g})"
            )
        best_px = min(full, key=lambda r: s * r.vwap_incl_fees).venue
    conc_reason = None if hhi is not None else f"no venue has resting size within {window:g} bps of its mid"
    return VenueComparison(
        side=side,
        size=None if by_notional else amount,
        notional_requested=amount if by_notional else None,
        fees_assumed_zero=fees_bps is None,
        venues=tuple(rows),
        best_venue=best,
        best_venue_reason=why,
        best_venue_by_price=best_px,
        arbitrage=tuple(_arbitrage(views, fees, max_diff)),
        concentration=LiquidityConcentration(
            window_bps=window,
            shares=shares,
            hhi=hhi,
            effective_venue_count=None if hhi is None else 1.0 / hhi,
            reason=conc_reason,
        ),
    )
