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

Taker fees: these functions take a fee per venue (bps or ``TakerFee`` with its source); which fee
applies is decided in one place, ``services.fees.FeeService`` (request, settings, recorded venue
metadata, ccxt markets, then ``DEFAULT_TAKER_FEES``: each venue's published base-tier, lowest
30-day volume, taker rate with its source). Keys are a ccxt id (``"bybit"``) or id and market type
(``"bybit:linear"``); the market-specific key is tried first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from pydantic import Field

from market_liquidity_monitor.analytics.liquidity import (
    BookRef,
    Result,
    check_number,
    check_window,
    depth_within_bps,
    market_impact,
    one_amount,
    side_sign,
    top_of_book,
)
from market_liquidity_monitor.analytics.quality import BookProblem, book_problems
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import Side

__all__ = [
    "DEFAULT_TAKER_FEES",
    "ArbitrageCheck",
    "LiquidityConcentration",
    "TakerFee",
    "VenueComparison",
    "VenueCost",
    "VenueDepth",
    "compare_venues",
    "concentration_exclusions",
    "fee_keys",
    "herfindahl",
]

BPS = 1e4

# Published base-tier taker fees (bps) and where they come from. Base tier = the lowest 30-day
# volume, no token discount; an account's own rate may be lower: set analytics.taker_fee_bps.
_SCHEDULE = "published fee schedule, base tier"
DEFAULT_TAKER_FEES: dict[str, tuple[float, str]] = {
    "binance": (10.0, f"Binance spot {_SCHEDULE} (VIP 0 taker 0.1000%), binance.com/en/fee/schedule"),
    "binanceusdm": (
        5.0,
        f"Binance USD-M futures {_SCHEDULE} (VIP 0 taker 0.0500%), binance.com/en/fee/futureFee",
    ),
    "binancecoinm": (
        5.0,
        f"Binance COIN-M futures {_SCHEDULE} (VIP 0 taker 0.0500%), binance.com/en/fee/futureFee",
    ),
    "coinbase": (60.0, f"Coinbase Exchange {_SCHEDULE} (taker 0.60%), exchange fee schedule"),
    "kraken": (40.0, f"Kraken Pro spot {_SCHEDULE} (taker 0.40%), kraken.com/features/fee-schedule"),
    "bybit": (10.0, f"Bybit spot {_SCHEDULE} (non-VIP taker 0.10%), bybit.com trading fee structure"),
    "bybit:linear": (5.5, f"Bybit perpetuals/futures {_SCHEDULE} (non-VIP taker 0.055%)"),
    "bybit:inverse": (5.5, f"Bybit perpetuals/futures {_SCHEDULE} (non-VIP taker 0.055%)"),
    "okx": (10.0, f"OKX spot {_SCHEDULE} (regular Lv1 taker 0.10%), okx.com/fees"),
    "okx:linear": (5.0, f"OKX perpetuals/futures {_SCHEDULE} (regular Lv1 taker 0.05%), okx.com/fees"),
    "okx:inverse": (5.0, f"OKX perpetuals/futures {_SCHEDULE} (regular Lv1 taker 0.05%), okx.com/fees"),
    "bitstamp": (40.0, f"Bitstamp {_SCHEDULE} (taker 0.40%), bitstamp.net/fee-schedule"),
    "gemini": (40.0, f"Gemini ActiveTrader/API {_SCHEDULE} (taker 0.40%), gemini.com/fees/api-fee-schedule"),
    "kucoin": (10.0, f"KuCoin spot {_SCHEDULE} (LV0 taker 0.10%), kucoin.com/vip/privilege"),
    "gate": (20.0, "Gate.io spot VIP 0 taker 0.2% (the fee field of /api/v4/spot/currency_pairs)"),
    "bitfinex": (20.0, f"Bitfinex {_SCHEDULE} (taker 0.200%), bitfinex.com/fees"),
    "hyperliquid": (4.5, f"Hyperliquid perpetuals {_SCHEDULE} (tier 0 taker 0.045%), hyperliquid docs: fees"),
}


class TakerFee(Result):
    """The taker fee assumed for one venue (and market type), and where it comes from."""

    venue: str
    market: str | None  # market type looked up ("spot", "linear", "inverse"), if given
    fee_bps: float
    source: str


class VenueDepth(Result):
    """One venue's resting notional within ``window_bps`` of its own mid (quote units)."""

    window_bps: float
    bid_notional: float
    ask_notional: float
    depth_notional: float  # bid + ask
    share: float | None  # of the included venues' summed depth_notional; None if excluded or all are 0
    exceeds_visible_book: bool = False  # the window reaches past the visible book: depth is a lower bound


class VenueCost(BookRef):
    """The order walked through one venue's book, with its fee and that venue's depth."""

    side: Side
    fee_bps: float
    fee_source: str | None = None  # where fee_bps comes from (None when given as a bare number)
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
    depth_share: float | None  # of the included venues' summed depth_notional (None if excluded)
    depth_window_exceeds_visible_book: bool = False  # window past the visible book: depth is a lower bound
    depth_windows: tuple[VenueDepth, ...] = ()  # one per requested windows_bps
    reason: str | None = None
    # Why this book is not trustworthy (not synced / crossed / stale, from BookView.quality);
    # such a venue is reported but never chosen as best_venue.
    book_warning: str | None = None


class ArbitrageCheck(Result):
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


class LiquidityConcentration(Result):
    """Venue shares of depth within a window, HHI and effective venue count, over the books that can
    be compared now: ``venues_included``; ``venues_excluded`` (venue -> why: a stale, crossed or
    unsynced book, or one more than ``max_book_age_diff_ms`` older than the freshest trusted book);
    ``truncated``: included venues whose window reaches past their visible book (their depth, and
    so their share, is a lower bound)."""

    window_bps: float
    shares: dict[str, float]
    hhi: float | None  # in [1/N, 1]; None when no included venue has depth in the window
    effective_venue_count: float | None  # 1 / hhi
    reason: str | None = None
    venues_included: tuple[str, ...] = ()
    venues_excluded: dict[str, str] = Field(default_factory=dict)
    truncated: tuple[str, ...] = ()


class VenueComparison(Result):
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
    concentration_by_window: tuple[LiquidityConcentration, ...] = ()  # one per windows_bps
    max_book_ts_diff_ms: float | None = None  # largest time gap between two books; None if one lacks a ts
    contemporaneous: bool | None = None  # every pair within max_book_age_diff_ms; None for one venue
    contemporaneity_note: str | None = None


def fee_keys(venue: str, market: str | None) -> list[str]:
    """Keys a fee table is looked up by, most specific first: ``["venue:market", "venue"]``."""
    return ([f"{venue}:{market}"] if market else []) + [venue]


def fee_table(
    venues: Sequence[str], fees_bps: Mapping[str, float | TakerFee] | None
) -> tuple[dict[str, float], dict[str, str | None]]:
    """``({venue: fee_bps}, {venue: source})`` for ``venues`` (in their order) from ``fees_bps``.

    ``fees_bps``: taker fee per venue as bps or ``TakerFee`` (its source is kept; None for a bare
    number), or None for zero fees everywhere. Raises ``InvalidInputError`` when a venue has no
    fee or a fee is not a finite number in [0, 10000) bps.
    """
    if fees_bps is None:
        return dict.fromkeys(venues, 0.0), dict.fromkeys(venues)
    missing = [v for v in venues if v not in fees_bps]
    if missing:
        raise InvalidInputError(
            f"fees_bps has no taker fee for {', '.join(missing)}; give one for every venue "
            f"({', '.join(venues)}) or pass fees_bps=None to assume zero fees"
        )
    fees: dict[str, float] = {}
    sources: dict[str, str | None] = {}
    for v in venues:
        f, sources[v] = fees_bps[v], None
        if isinstance(f, TakerFee):
            f, sources[v] = f.fee_bps, f.source
        if isinstance(f, bool) or not isinstance(f, Real) or not math.isfinite(f) or not 0 <= f < BPS:
            raise InvalidInputError(f"fees_bps[{v!r}] must be a finite number in [0, 10000) bps; got {f!r}")
        fees[v] = float(f)
    return fees, sources


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


def _book_warning(view: BookView) -> str | None:
    """Why a book should not be trusted for a decision (``book_problems``); None if it can be."""
    q = view.quality or {}
    words = {BookProblem.STALE: f"stale ({q.get('age_ms')} ms without an update)"}
    return ", ".join(words.get(p, str(p)) for p in book_problems(q)) or None


def compare_venues(
    views: Sequence[BookView],
    side: Side | str,
    size: float | None = None,
    notional: float | None = None,
    fees_bps: Mapping[str, float | TakerFee] | None = None,
    window_bps: float = 50.0,
    max_book_age_diff_ms: float = 2000.0,
    windows_bps: Sequence[float] | None = None,
) -> VenueComparison:
    """The same taker order (``size`` base or ``notional`` quote, fees excluded) on each venue.

    ``fees_bps``: taker fee per venue (every venue must be present) as bps or ``TakerFee`` (its
    source is then reported, e.g. from ``services.fees.FeeService``), or None for zero fees.
    ``window_bps``: the window of ``depth_*``, ``depth_share`` and ``concentration``;
    ``windows_bps`` (optional): more windows, reported per venue in ``depth_windows`` and across
    venues in ``concentration_by_window``. Per venue: VWAP, slippage_bps, fee, fee-adjusted cost,
    spread_bps and depth; across venues: the best venue and why, arbitrage after both taker fees
    between books at most ``max_book_age_diff_ms`` apart (else "not contemporaneous"), venue
    shares of depth, HHI and effective venue count. See the module docstring for the formulas.
    ``best_venue`` is None, with the reason, when no venue fills the whole order. A book that is
    not synced, crossed or stale (``BookView.quality``) is reported with ``book_warning`` and is
    never the best venue; the reason names it when it would have been cheaper.

    Raises ``InvalidInputError`` for no views, two books of one venue, a bad amount, window, fee
    table or ``max_book_age_diff_ms < 0``; ``BookNotReadyError`` if a book lacks a side.
    """
    side = Side.parse(side)
    amount, by_notional = one_amount(size, notional)
    window = check_window(window_bps)
    extra_windows = [] if windows_bps is None else sorted({check_window(w) for w in windows_bps})
    max_diff = check_number("max_book_age_diff_ms", max_book_age_diff_ms, allow_zero=True, unit="ms")
    if not views:
        raise InvalidInputError("compare_venues needs at least one book")
    names = [v.instrument.venue for v in views]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"one book per venue; got venues {names}")
    fees, sources = fee_table(names, fees_bps)
    s = side_sign(side)
    excluded = _concentration_exclusions(views, max_diff)
    depths = {v.instrument.venue: depth_within_bps(v, window) for v in views}
    hhi, shares = _shares(depths, excluded)
    by_window: list[LiquidityConcentration] = []
    venue_windows: dict[str, list[VenueDepth]] = {n: [] for n in names}
    for w in extra_windows:
        dw = {v.instrument.venue: depth_within_bps(v, w) for v in views}
        h_w, sh_w = _shares(dw, excluded)
        by_window.append(_concentration(w, h_w, sh_w, excluded, dw))
        for k, d in dw.items():
            venue_windows[k].append(
                VenueDepth(
                    window_bps=w,
                    bid_notional=d.bid_notional,
                    ask_notional=d.ask_notional,
                    depth_notional=d.bid_notional + d.ask_notional,
                    share=sh_w.get(k) if h_w is not None else None,
                    exceeds_visible_book=_truncated(d),
                )
            )
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
                fee_source=sources[venue],
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
                depth_share=shares.get(venue) if hhi is not None else None,
                depth_window_exceeds_visible_book=_truncated(d),
                depth_windows=tuple(venue_windows[venue]),
                reason=imp.reason,
                book_warning=_book_warning(v),
            )
        )
    fills = sorted((r for r in rows if r.fully_filled), key=lambda r: r.cost_bps)
    full = [r for r in fills if r.book_warning is None]
    untrusted = [r for r in fills if r.book_warning is not None]
    if not full:
        best, best_px = None, None
        why = "no venue's visible book fills the whole order"
        if untrusted:
            why = (
                "no venue with a trustworthy book fills the whole order ("
                + "; ".join(f"{r.venue}: {r.book_warning}" for r in untrusted)
                + ")"
            )
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
        cheaper = [r for r in untrusted if r.cost_bps < full[0].cost_bps]
        if cheaper:
            why += "; not chosen although cheaper: " + "; ".join(
                f"{r.venue} ({r.cost_bps:.3f} bps, book {r.book_warning})" for r in cheaper
            )
        best_px = min(full, key=lambda r: s * r.vwap_incl_fees).venue
    ts_diff, together, note = _contemporaneity(views, max_diff)
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
        concentration=_concentration(window, hhi, shares, excluded, depths),
        concentration_by_window=tuple(by_window),
        max_book_ts_diff_ms=ts_diff,
        contemporaneous=together,
        contemporaneity_note=note,
    )


def _truncated(d: Any) -> bool:
    return bool(d.bid_window_exceeds_visible_book or d.ask_window_exceeds_visible_book)


def concentration_exclusions(views: Sequence[BookView], max_diff_ms: float) -> dict[str, str]:
    """Venues whose books are left out of venue shares and HHI, and why (``venue -> reason``): the
    rule of ``compare_venues``, shared with the WebSocket metrics stream."""
    return _concentration_exclusions(views, max_diff_ms)


def _concentration_exclusions(views: Sequence[BookView], max_diff_ms: float) -> dict[str, str]:
    """Books left out of shares and HHI, and why: untrusted now (``book_problems``: stale, crossed,
    not synced), or more than ``max_diff_ms`` older than the freshest trusted book (depth measured
    at different times does not add up). Books without a timestamp are kept only when none has one."""
    out: dict[str, str] = {}
    for v in views:
        w = _book_warning(v)
        if w is not None:
            out[v.instrument.venue] = f"book {w}"
    trusted = [v for v in views if v.instrument.venue not in out and v.book_ts_ns is not None]
    if trusted:
        newest = max(trusted, key=lambda v: v.book_ts_ns)
        for v in trusted:
            gap = (newest.book_ts_ns - v.book_ts_ns) / 1e6
            if gap > max_diff_ms:
                out[v.instrument.venue] = (
                    f"book {gap / 1000:,.0f} s older than the freshest ({newest.instrument.venue}, "
                    f"{newest.book_ts_iso}): not contemporaneous"
                )
    return out


def _shares(depths: Mapping[str, Any], excluded: Mapping[str, str]) -> tuple[float | None, dict[str, float]]:
    return herfindahl({k: d.bid_notional + d.ask_notional for k, d in depths.items() if k not in excluded})


def _concentration(
    window: float,
    hhi: float | None,
    shares: dict[str, float],
    excluded: Mapping[str, str] | None = None,
    depths: Mapping[str, Any] | None = None,
) -> LiquidityConcentration:
    excluded = dict(excluded or {})
    included = tuple(k for k in shares)
    if hhi is not None:
        reason = None
    elif not included:
        reason = "no book can be compared now (every one is excluded: see venues_excluded)"
    else:
        reason = f"no included venue has resting size within {window:g} bps of its mid"
    return LiquidityConcentration(
        window_bps=window,
        shares=shares,
        hhi=hhi,
        effective_venue_count=None if hhi is None else 1.0 / hhi,
        reason=reason,
        venues_included=included,
        venues_excluded=excluded,
        truncated=tuple(k for k in included if depths is not None and _truncated(depths[k])),
    )


def _contemporaneity(views: Sequence[BookView], max_diff_ms: float) -> tuple[float | None, bool | None, str]:
    """``(max pairwise ts gap ms, all within max_diff_ms, note)``; gap None if a book has no ts."""
    if len(views) < 2:
        return None, None, "one venue: nothing to compare in time"
    ts = [v.book_ts_ns for v in views]
    if any(t is None for t in ts):
        missing = [v.instrument.venue for v in views if v.book_ts_ns is None]
        return None, False, f"no book timestamp for {', '.join(missing)}: contemporaneity unknown"
    first = min(views, key=lambda v: v.book_ts_ns)
    last = max(views, key=lambda v: v.book_ts_ns)
    gap = (last.book_ts_ns - first.book_ts_ns) / 1e6
    if gap <= max_diff_ms:
        return gap, True, f"books within {gap:.0f} ms of each other (limit {max_diff_ms:g} ms)"
    return (
        gap,
        False,
        (
            f"books are not contemporaneous: {first.instrument.venue} at {first.book_ts_iso} and "
            f"{last.instrument.venue} at {last.book_ts_iso} are {gap:.0f} ms apart (limit {max_diff_ms:g} ms); "
            "costs are each book's own, cross-venue price gaps are not opportunities"
        ),
    )
