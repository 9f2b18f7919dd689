"""Smart order routing, simulation only: split one taker order across several books of one asset.

Pure functions over :class:`~market_liquidity_monitor.book.view.BookView` (no I/O, no clocks). No
order is ever sent: the result is what the visible books say the split would have cost.

Cost model (taker only, linear). Filling ``q`` base units at a level of raw price ``p`` on a venue
with taker fee ``f`` (``fee_bps / 1e4``) costs ``q * p * (1 + f)`` quote for a buy and yields
``q * p * (1 - f)`` for a sell: the fee is charged on traded notional, as on Binance, Coinbase,
Kraken, OKX and Bybit (their published fee schedules). ``p * (1 + f)`` / ``p * (1 - f)`` is the
level's *effective price*.

Why a greedy walk of the merged, fee-adjusted book is optimal. Buying ``Q`` base units at least
cost is the linear program ``min sum_i e_i q_i`` s.t. ``sum_i q_i = Q``, ``0 <= q_i <= s_i`` over
every level ``i`` of every venue (``e_i`` effective price, ``s_i`` visible size): a fractional
knapsack, whose optimum takes the levels in increasing order of ``e_i`` (an exchange argument:
any allocation that leaves a cheaper unit untaken while taking a dearer one can swap them and not
cost more). The order is also *feasible* on every venue: within one venue the fee is one number,
so ``e_i`` sorts like the raw price and the greedy order never takes a deeper level before a
shallower one of the same book. The same holds for a sell (maximise proceeds: decreasing ``e_i``)
and for a notional request (fixed quote spend incl. fees -> maximise base bought; fixed quote
proceeds net of fees -> minimise base sold), both again fractional knapsacks. Hence the routed
plan is never worse than any other split of the same visible books, baselines included.

Request units:

- ``size``: base units to buy/sell; ``total_quote`` is what is paid incl. fees (buy) or received
  net of fees (sell);
- ``notional``: quote units *including fees*: the whole outlay for a buy, the net proceeds wanted
  from a sell.

Baselines (each a split of the same request; each child walks its own venue's book):

- ``best_single_venue``: everything on the venue with the best fee-adjusted top of book;
- ``pro_rata_depth``: split in proportion to each venue's resting size on the consumed side within
  ``pro_rata_window_bps`` of that venue's mid (``depth_within_bps``), falling back to the whole
  visible side if no venue has any size in the window;
- ``equal_split``: the same amount on every venue.

A baseline that cannot fill its part on some venue is reported with ``fillable=False`` and a
reason, never with a number. ``savings_*`` compare fee-inclusive average prices:
``savings_bps = s * (avg_baseline - avg_routed) / avg_baseline * 1e4`` (``s`` = +1 buy, -1 sell;
positive = routing is better) and ``savings_quote = s * (avg_baseline - avg_routed) * filled_size``
(the routed fill size; for a ``size`` request this is exactly the difference of totals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from market_liquidity_monitor.analytics.liquidity import (
    REL_TOL,
    BookRef,
    Result,
    book_ref,
    check_window,
    depth_within_bps,
    exact_mid,
    one_amount,
    side_sign,
)
from market_liquidity_monitor.analytics.quality import BookProblem, book_problems
from market_liquidity_monitor.analytics.venues import TakerFee, fee_table
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import Side
from market_liquidity_monitor.domain.time import iso_ns

__all__ = [
    "BaselineComparison",
    "ChildOrder",
    "RoutedVenue",
    "RoutingPlan",
    "RoutingResult",
    "route_order",
    "routing_exclusions",
]

BPS = 1e4
BASELINES: tuple[str, ...] = ("best_single_venue", "pro_rata_depth", "equal_split")


# ----------------------------------------------------------------------------------- results


class ChildOrder(BookRef):
    """The part of the order sent to one venue (sizes base units, notionals quote units)."""

    side: Side
    size: float
    notional: float  # sum(price * size), fees excluded
    vwap: float  # notional / size, fees excluded
    fee_bps: float
    fee_quote: float
    total_quote: float  # notional + fee (buy) / notional - fee (sell)
    levels_consumed: int
    worst_price: float


class RoutingPlan(Result):
    """One allocation of the order (the routed one or a baseline) and what it costs.

    When ``fillable`` is False the figures are None and ``reason`` says which venue ran out.
    """

    name: str
    fillable: bool
    reason: str | None = None
    filled_size: float | None
    filled_notional: float | None  # fees excluded, quote units
    fees_quote: float | None
    total_quote: float | None  # paid incl. fees (buy) / received net of fees (sell)
    avg_price: float | None  # filled_notional / filled_size
    avg_price_incl_fees: float | None  # total_quote / filled_size
    children: tuple[ChildOrder, ...]


class BaselineComparison(Result):
    """The routed plan against one baseline; None figures with a reason when the baseline can't fill."""

    name: str
    fillable: bool
    reason: str | None = None
    avg_price_incl_fees: float | None
    total_quote: float | None
    savings_bps: float | None  # positive = routing is cheaper
    savings_quote: float | None


class RoutedVenue(BookRef):
    """A venue that took part, its taker fee and fee-adjusted best price on the consumed side."""

    fee_bps: float
    best_price: float
    best_price_incl_fees: float
    mid_price: float


class RoutingResult(Result):
    """A simulated split of one taker order across venues, with baselines."""

    side: Side
    size: float | None  # base units requested (None for a notional request)
    notional_requested: float | None  # quote units incl. fees (None for a size request)
    venues: tuple[RoutedVenue, ...]
    excluded: dict[str, str]  # venue -> reason it was left out
    fees_assumed_zero: bool  # no fee table was given
    reference_mid: float  # (highest best bid + lowest best ask) / 2 over the venues used
    max_book_ts_diff_ms: float | None  # spread of the books' timestamps; None if one has none
    routed: RoutingPlan
    fully_filled: bool
    unfilled_size: float | None
    unfilled_notional: float | None
    cost_vs_mid_quote: float  # s * (total_quote - filled_size * reference_mid): fees + slippage
    cost_vs_mid_bps: float
    baselines: tuple[BaselineComparison, ...]
    reason: str | None = None


# ----------------------------------------------------------------------------------- helpers


def _levels(view: BookView, side: Side) -> tuple[np.ndarray, np.ndarray]:
    if side is Side.BUY:
        return np.asarray(view.ask_prices, dtype=float), np.asarray(view.ask_sizes, dtype=float)
    return np.asarray(view.bid_prices, dtype=float), np.asarray(view.bid_sizes, dtype=float)


def _fee_factor(side: Side, fee_bps: float) -> float:
    return 1.0 + fee_bps / BPS if side is Side.BUY else 1.0 - fee_bps / BPS


class _Fill:
    """Per-level fill of one allocation: quantities taken of each (venue, level)."""

    __slots__ = ("full", "taken")

    def __init__(self, taken: list[np.ndarray], full: bool):
        self.taken = taken
        self.full = full


def _walk_levels(
    eff: np.ndarray, sizes: np.ndarray, amount: float, by_notional: bool
) -> tuple[np.ndarray, bool]:
    """Take levels in the given order until ``amount`` (base, or effective quote) is reached.

    Returns the quantity (base) taken of each level and whether the amount was reached.
    """
    per_level = eff * sizes if by_notional else sizes
    cum = np.cumsum(per_level)
    if cum.size == 0:
        return np.zeros(0), False
    k = int(np.searchsorted(cum, amount * (1.0 - REL_TOL), side="left"))
    taken = np.zeros_like(sizes)
    if k >= cum.size:
        return sizes.copy(), False
    taken[:k] = sizes[:k]
    before = float(cum[k - 1]) if k else 0.0
    rest = amount - before
    part = rest / eff[k] if by_notional else rest
    taken[k] = min(max(part, 0.0), float(sizes[k]))
    return taken, True


def _children(
    side: Side, views: Sequence[BookView], fees: Sequence[float], taken: Sequence[np.ndarray]
) -> tuple[ChildOrder, ...]:
    out = []
    for view, fee, q in zip(views, fees, taken, strict=True):
        size = float(q.sum())
        if size <= 0.0:
            continue
        prices, _ = _levels(view, side)
        notional = float(np.dot(prices, q))
        fee_quote = notional * fee / BPS
        used = np.nonzero(q > 0)[0]
        out.append(
            ChildOrder(
                **book_ref(view),
                side=side,
                size=size,
                notional=notional,
                vwap=notional / size,
                fee_bps=fee,
                fee_quote=fee_quote,
                total_quote=notional + fee_quote if side is Side.BUY else notional - fee_quote,
                levels_consumed=int(used[-1]) + 1,
                worst_price=float(prices[used[-1]]),
            )
        )
    return tuple(out)


def _plan(name: str, side: Side, views, fees, taken, fillable: bool, reason: str | None) -> RoutingPlan:
    if not fillable:
        return RoutingPlan(
            name=name,
            fillable=False,
            reason=reason,
            filled_size=None,
            filled_notional=None,
            fees_quote=None,
            total_quote=None,
            avg_price=None,
            avg_price_incl_fees=None,
            children=(),
        )
    children = _children(side, views, fees, taken)
    size = sum(c.size for c in children)
    notional = sum(c.notional for c in children)
    fees_q = sum(c.fee_quote for c in children)
    total = sum(c.total_quote for c in children)
    return RoutingPlan(
        name=name,
        fillable=True,
        reason=reason,
        filled_size=size,
        filled_notional=notional,
        fees_quote=fees_q,
        total_quote=total,
        avg_price=notional / size,
        avg_price_incl_fees=total / size,
        children=children,
    )


def _split_plan(name: str, side: Side, views, fees, weights: np.ndarray, amount: float, by_notional: bool):
    """Split ``amount`` by ``weights`` and walk each venue alone; unfillable if any part can't fill."""
    parts = amount * weights / weights.sum()
    taken = []
    short = []
    for view, fee, part in zip(views, fees, parts, strict=True):
        prices, sizes = _levels(view, side)
        if part <= 0.0:
            taken.append(np.zeros_like(sizes))
            continue
        q, full = _walk_levels(prices * _fee_factor(side, fee), sizes, float(part), by_notional)
        taken.append(q)
        if not full:
            unit = "quote units incl. fees" if by_notional else "base units"
            short.append(f"{view.instrument.venue} cannot fill its {part:g} {unit}")
    if short:
        return _plan(name, side, views, fees, taken, False, "; ".join(short))
    return _plan(name, side, views, fees, taken, True, None)


def _savings(side: Side, routed: RoutingPlan, base: RoutingPlan) -> BaselineComparison:
    if not base.fillable or not routed.fillable:
        return BaselineComparison(
            name=base.name,
            fillable=base.fillable,
            reason=base.reason or routed.reason,
            avg_price_incl_fees=base.avg_price_incl_fees,
            total_quote=base.total_quote,
            savings_bps=None,
            savings_quote=None,
        )
    s = side_sign(side)
    diff = s * (base.avg_price_incl_fees - routed.avg_price_incl_fees)
    return BaselineComparison(
        name=base.name,
        fillable=True,
        avg_price_incl_fees=base.avg_price_incl_fees,
        total_quote=base.total_quote,
        savings_bps=diff / base.avg_price_incl_fees * BPS,
        savings_quote=diff * routed.filled_size,
    )


# --------------------------------------------------------------------------------- function


def route_order(
    views: Sequence[BookView],
    side: Side | str,
    size: float | None = None,
    notional: float | None = None,
    fees_bps: Mapping[str, float | TakerFee] | None = None,
    excluded: Mapping[str, str] | None = None,
    pro_rata_window_bps: float = 50.0,
) -> RoutingResult:
    """Least-cost split of a taker order of ``size`` base units or ``notional`` quote units (incl.
    fees) across ``views`` (one book per venue, same asset), with three baselines.

    ``fees_bps``: taker fee per venue in bps or ``TakerFee`` (every used venue must be present;
    checked by ``venues.fee_table``), or None for zero fees (``fees_assumed_zero=True``). ``excluded``: venue -> reason; those books are not
    used and the reasons are echoed in ``excluded`` (as are venues whose consumed side is empty).

    The routed plan is the greedy walk of the merged fee-adjusted book (optimal, see the module
    docstring); baselines and savings as defined there. If the merged book cannot fill the request,
    ``fully_filled`` is False, the routed plan is the whole visible side and every baseline is
    reported unfillable.

    Raises ``InvalidInputError`` for a bad amount/side/fee table, two books of one venue, or no
    usable book; ``BookNotReadyError`` if a used book lacks the other side (no mid).
    """
    side = Side.parse(side)
    amount, by_notional = one_amount(size, notional)
    window = check_window(pro_rata_window_bps)
    excluded_out: dict[str, str] = dict(excluded or {})
    seen: set[str] = set()
    used: list[BookView] = []
    for v in views:
        venue = v.instrument.venue
        if venue in seen:
            raise InvalidInputError(f"two books for venue {venue!r}; route_order takes one book per venue")
        seen.add(venue)
        if venue in excluded_out:
            continue
        prices, _ = _levels(v, side)
        if prices.size == 0:
            excluded_out[venue] = (
                f"the {'ask' if side is Side.BUY else 'bid'} side of {v.instrument} is empty"
            )
            continue
        used.append(v)
    if not used:
        raise InvalidInputError(
            f"no usable book among {sorted(seen) or 'none'} (excluded: {excluded_out or 'none'})"
        )
    fee_of, _ = fee_table([v.instrument.venue for v in used], fees_bps)
    fees = list(fee_of.values())
    mids = [exact_mid(v)[0] for v in used]
    best_bid = max(float(v.bid_prices[0]) for v in used)
    best_ask = min(float(v.ask_prices[0]) for v in used)
    ref_mid = (best_bid + best_ask) / 2.0

    # Merged fee-adjusted book: sort every level of every venue by effective price, best first.
    eff_parts, size_parts, venue_idx, level_idx = [], [], [], []
    for i, (v, fee) in enumerate(zip(used, fees, strict=True)):
        prices, sizes = _levels(v, side)
        eff_parts.append(prices * _fee_factor(side, fee))
        size_parts.append(sizes)
        venue_idx.append(np.full(prices.size, i))
        level_idx.append(np.arange(prices.size))
    eff = np.concatenate(eff_parts)
    lvl_sizes = np.concatenate(size_parts)
    vidx = np.concatenate(venue_idx)
    lidx = np.concatenate(level_idx)
    order = np.argsort(eff if side is Side.BUY else -eff, kind="stable")
    q_sorted, full = _walk_levels(eff[order], lvl_sizes[order], amount, by_notional)
    taken = [np.zeros(_levels(v, side)[0].size) for v in used]
    for q, vi, li in zip(q_sorted, vidx[order], lidx[order], strict=True):
        if q > 0:
            taken[int(vi)][int(li)] = q
    routed = _plan("routed", side, used, fees, taken, True, None)
    reason = None
    unfilled_size = unfilled_notional = 0.0
    if not full:
        if by_notional:
            unfilled_size, unfilled_notional = None, amount - float(np.dot(eff, lvl_sizes))
        else:
            unfilled_size, unfilled_notional = amount - float(lvl_sizes.sum()), None
        reason = f"the merged visible books of {len(used)} venue(s) cannot fill the request"

    # Baselines.
    best_i = int(
        np.argmin(
            [
                _levels(v, side)[0][0] * _fee_factor(side, f) * side_sign(side)
                for v, f in zip(used, fees, strict=True)
            ]
        )
    )
    one_hot = np.zeros(len(used))
    one_hot[best_i] = 1.0
    depth = np.array(
        [
            (d.ask_size if side is Side.BUY else d.bid_size)
            for d in (depth_within_bps(v, window) for v in used)
        ]
    )
    if depth.sum() <= 0:
        depth = np.array([float(_levels(v, side)[1].sum()) for v in used])
    plans = {
        "best_single_venue": _split_plan("best_single_venue", side, used, fees, one_hot, amount, by_notional),
        "pro_rata_depth": _split_plan("pro_rata_depth", side, used, fees, depth, amount, by_notional),
        "equal_split": _split_plan("equal_split", side, used, fees, np.ones(len(used)), amount, by_notional),
    }
    ts = [v.book_ts_ns for v in used]
    ts_diff = None if any(t is None for t in ts) else (max(ts) - min(ts)) / 1e6
    s = side_sign(side)
    cost_q = s * (routed.total_quote - routed.filled_size * ref_mid)
    return RoutingResult(
        side=side,
        size=None if by_notional else amount,
        notional_requested=amount if by_notional else None,
        venues=tuple(
            RoutedVenue(
                **book_ref(v),
                fee_bps=f,
                best_price=float(_levels(v, side)[0][0]),
                best_price_incl_fees=float(_levels(v, side)[0][0] * _fee_factor(side, f)),
                mid_price=m,
            )
            for v, f, m in zip(used, fees, mids, strict=True)
        ),
        excluded=excluded_out,
        fees_assumed_zero=fees_bps is None,
        reference_mid=ref_mid,
        max_book_ts_diff_ms=ts_diff,
        routed=routed,
        fully_filled=full,
        unfilled_size=unfilled_size,
        unfilled_notional=unfilled_notional,
        cost_vs_mid_quote=cost_q,
        cost_vs_mid_bps=cost_q / (routed.filled_size * ref_mid) * BPS,
        baselines=tuple(_savings(side, routed, plans[name]) for name in BASELINES),
        reason=reason,
    )


def routing_exclusions(
    views: Sequence[BookView],
    *,
    max_age_diff_ms: float,
    open_venues: Iterable[str] = (),
    requested: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Venues whose books a router must not use, with the reason (``{venue: reason}``).

    In order: ``requested`` exclusions (venue -> reason, e.g. the user's own), venues in
    ``open_venues`` (circuit breaker open), books that are not synced, crossed or stale (from
    ``BookView.quality``), and books more than ``max_age_diff_ms`` older than the freshest one
    (not contemporaneous: a split across books from different moments is not a plan). Pure.
    """
    out: dict[str, str] = dict(requested or {})
    open_set = set(open_venues)
    newest = max((v.book_ts_ns for v in views if v.book_ts_ns is not None), default=None)
    for v in views:
        venue, q = v.instrument.venue, v.quality or {}
        if venue in out:
            continue
        problems = book_problems(q)
        if venue in open_set:
            out[venue] = "its REST circuit breaker is open"
        elif problems:
            what = {
                BookProblem.NOT_SYNCED: "not synced (resyncing)",
                BookProblem.CROSSED: "crossed (best bid >= best ask)",
                BookProblem.STALE: f"stale (no update for {q.get('age_ms')} ms)",
            }[problems[0]]
            out[venue] = f"the {v.instrument.symbol} book is {what}"
        elif (
            newest is not None and v.book_ts_ns is not None and newest - v.book_ts_ns > max_age_diff_ms * 1e6
        ):
            out[venue] = (
                f"its {v.instrument.symbol} book ({v.book_ts_iso}) is {(newest - v.book_ts_ns) / 1e9:,.0f} s "
                f"older than the freshest book ({iso_ns(newest)}): not contemporaneous"
            )
    return out
