"""LiquidityService: the answers about books — order book, market impact, the largest size within a
slippage limit, venue comparison and smart order routing — computed once, for every interface.

Each method validates its arguments (``InvalidInputError`` saying what is valid), gets its books
from ``BookService`` (source-labelled), its fees from ``FeeService`` (source-labelled), calls one
pure function of ``analytics`` and returns a typed answer: the analytics result plus where every
input came from. Chat tools, REST routes, the WebSocket stream, the CLI, the MCP server and the
Python API return these answers as they are.

Every method takes ``as_of`` (``services.books.parse_as_of``: an ISO 8601 UTC instant or a
datetime; None = the latest book): the answer is then computed on the books rebuilt to that instant
of the recording, and each book's provenance states the instant asked and the book's own time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from market_liquidity_monitor import analytics
from market_liquidity_monitor.analytics import venues as analytics_venues
from market_liquidity_monitor.analytics.liquidity import (
    ImpactResult,
    MaxSizeResult,
    OrderBookSummary,
    check_window,
)
from market_liquidity_monitor.analytics.routing import RoutingResult, route_order, routing_exclusions
from market_liquidity_monitor.analytics.venues import ArbitrageCheck, TakerFee, VenueComparison, VenueCost
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import Side
from market_liquidity_monitor.services.books import (
    Book,
    BookProvenance,
    BookService,
    Unavailable,
    parse_as_of,
)
from market_liquidity_monitor.services.fees import FeeService
from market_liquidity_monitor.services.tabular import Tabular

__all__ = [
    "REFERENCE_NOTIONAL_QUOTE",
    "CompareAnswer",
    "CompareRow",
    "ImpactAnswer",
    "LiquidityService",
    "MaxSizeAnswer",
    "NoUsableBookError",
    "OrderBookAnswer",
    "RouteAnswer",
    "parse_side",
]

#: Order compared when a venue comparison names no size (quote units; the answer says it is a
#: reference order chosen by default).
REFERENCE_NOTIONAL_QUOTE = 10_000.0


# ----------------------------------------------------------------------------- answers


class OrderBookAnswer(Tabular, OrderBookSummary):
    """``analytics.OrderBookSummary`` of one book, its provenance, and (``levels`` > 0) the top
    ``levels`` per side as ``[[price, size], ...]`` best first (quote units, base units)."""

    book: BookProvenance
    requested_window_bps: float | None = None
    bids: list[tuple[float, float]] | None = None
    asks: list[tuple[float, float]] | None = None


class ImpactAnswer(ImpactResult):
    """``analytics.ImpactResult`` of one taker order and the provenance of the book it walked."""

    book: BookProvenance
    side_defaulted: bool = False


class MaxSizeAnswer(MaxSizeResult):
    """``analytics.MaxSizeResult`` (the largest size whose VWAP slippage stays within the limit) and
    its book; plus the price-move reading of the same limit: ``size_within_price_move`` (base) /
    ``notional_within_price_move`` (quote) is the resting size on the walked side within
    ``max_slippage_bps`` of mid, i.e. the largest order whose *worst* fill stays within the limit
    (``analytics.depth_within_bps``)."""

    book: BookProvenance
    size_within_price_move: float
    notional_within_price_move: float


class CompareRow(VenueCost):
    """One venue of a comparison: ``analytics.VenueCost`` plus market type, rank (1 = cheapest of
    the full fills) and the book's provenance."""

    market_type: str
    rank: int | None = None
    book: BookProvenance


class CompareAnswer(Tabular, VenueComparison):
    """``analytics.VenueComparison`` with provenance: each row's book and fee source, the venues
    that could not be compared (``unavailable``, with the reason) and a summary of the arbitrage
    checks. ``reference_order_defaulted``: no size was given, a ``REFERENCE_NOTIONAL_QUOTE`` order
    was compared."""

    venues: tuple[CompareRow, ...]
    symbol: str
    focus_venue: str | None
    venues_compared: int
    unavailable: list[Unavailable]
    reference_order_defaulted: bool
    cost_includes_taker_fees: bool = True
    max_book_age_diff_ms: float
    fees: dict[str, TakerFee]
    fee_sources: dict[str, str]
    arbitrage_opportunities: list[ArbitrageCheck]
    arbitrage_pairs_checked: int
    arbitrage_pairs_not_contemporaneous: int
    arbitrage_best_edge: ArbitrageCheck | None
    book_ts_span_s: float
    as_of: str | None = None  # the instant asked (ISO 8601 UTC), None = latest books


class RouteAnswer(Tabular, RoutingResult):
    """``analytics.RoutingResult`` (simulation only; nothing is sent) with the books used, their
    provenance, the fee of each venue and its source, and the venues without a usable book."""

    simulation: bool = True
    symbol: str
    status: str | None = None  # the system status when asked through /api/execute (live/degraded)
    venues_considered: int
    venues_used: int
    books: list[BookProvenance]
    unavailable: list[Unavailable]
    fees: dict[str, TakerFee]
    fee_sources: dict[str, str]
    cost_includes_taker_fees: bool = True
    best_single_venue: str | None
    savings_vs_best_single_venue_bps: float | None
    savings_vs_best_single_venue_quote: float | None
    book_ts_span_s: float
    as_of: str | None = None  # the instant asked (ISO 8601 UTC), None = latest books


class NoUsableBookError(InvalidInputError):
    """Every book a routing plan could use is excluded; ``reasons``: ``"venue: why"`` per book."""

    def __init__(self, message: str, reasons: list[str]):
        super().__init__(message)
        self.reasons = reasons


# ----------------------------------------------------------------------------- checks


def parse_side(side: str | Side | None, *, default: Side | None = Side.BUY) -> tuple[Side, bool]:
    """``(side, defaulted)``; ``InvalidInputError`` for anything but buy/sell (or None without a default)."""
    if side is None or (isinstance(side, str) and not side.strip()):
        if default is None:
            raise InvalidInputError("side is required: 'buy' or 'sell'")
        return default, True
    return Side.parse(side), False


def check_amount(size: float | None, notional: float | None, *, required: bool = True) -> None:
    """Exactly one of ``size`` (base units) / ``notional`` (quote units), each a finite number > 0."""
    for name, v in (("size", size), ("notional", notional)):
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0
        ):
            raise InvalidInputError(f"{name} must be a finite number > 0, got {v!r}")
        if v is not None and v > 1e15:
            raise InvalidInputError(f"{name} {v:g} is larger than any order book can hold (max 1e15)")
    if size is not None and notional is not None:
        raise InvalidInputError("give either size (base units) or notional (quote units), not both")
    if required and size is None and notional is None:
        raise InvalidInputError("give size (base units) or notional (quote units)")


def _as_of_text(as_of: datetime | str | None) -> str | None:
    spec = parse_as_of(as_of)
    return None if spec is None else spec.text


def _time_span_s(books: Sequence[Book]) -> float:
    ts = [b.view.book_ts_ns for b in books if b.view.book_ts_ns is not None]
    return round((max(ts) - min(ts)) / 1e9, 3) if len(ts) >= 2 else 0.0


class _AnswerMemo:
    """Answers remembered per question and book state.

    An answer is a pure function of its arguments, the books it read and (compare) the fee table
    and the venues left out. ``BookService`` hands out the same ``BookProvenance`` object while a
    book is unchanged (same arrays, equal quality counters, ``age_ms`` included), so an entry is
    used only while every book it was computed from still has the very provenance it saw (compared
    by identity; the entry holds them, so an identity cannot be reused). A recorded book, or a
    live one polled within the same 0.1 ms of its clock, is then answered without walking it again
    (bench_api: a compare was ~1 ms of pure Python per request). Time-travel questions are not
    remembered (their books are rebuilt per question). FIFO eviction beyond ``capacity`` entries
    (the arguments are user input)."""

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self._entries: dict[tuple, tuple[tuple[BookProvenance, ...], Any]] = {}

    def get(self, key: tuple, books: Sequence[Book]) -> Any | None:
        hit = self._entries.get(key)
        if hit is None or len(hit[0]) != len(books):
            return None
        return hit[1] if all(p is b.provenance for p, b in zip(hit[0], books, strict=True)) else None

    def put(self, key: tuple, books: Sequence[Book], answer: Any) -> Any:
        if key not in self._entries and len(self._entries) >= self.capacity:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (tuple(b.provenance for b in books), answer)
        return answer


# ----------------------------------------------------------------------------- service


class LiquidityService:
    """Book answers (module docstring). Build once (``services.build_services``)."""

    def __init__(self, settings: Settings, books: BookService, fees: FeeService, engine: Any = None):
        self.settings = settings
        self.books = books
        self.fees = fees
        self.engine = engine
        # book_summary of the last view seen per (book, windows): the book store reuses a view's
        # arrays until the book changes, so a repeated question on an unchanged book (every REST
        # poll of a recorded book, the app refreshing) does not recompute it (bench_api profile:
        # ~70% of an /api/orderbook request). The entry keeps the arrays it was computed from and
        # is used only while the view holds those very arrays; quality (age) is always of now.
        self._summaries: dict[tuple, tuple[np.ndarray, np.ndarray, analytics.OrderBookSummary]] = {}
        self._answers = _AnswerMemo()

    def _summary(self, view: BookView, windows: list[float]) -> analytics.OrderBookSummary:
        key = (view.instrument, tuple(windows))
        hit = self._summaries.get(key)
        if hit is not None and hit[0] is view.bid_prices and hit[1] is view.ask_prices:
            return hit[2].model_copy(update={"quality": dict(view.quality)})
        summary = analytics.book_summary(view, windows)
        if len(self._summaries) > 4096:  # windows are user input: bound the memo
            self._summaries.clear()
        self._summaries[key] = (view.bid_prices, view.ask_prices, summary)
        return summary

    def windows(self, extra: float | None = None) -> list[float]:
        out = {float(w) for w in self.settings.analytics.depth_windows_bps}
        if extra is not None:
            out.add(check_window(extra))
        return sorted(out)

    async def order_book(
        self,
        symbol: str,
        venue: str | None = None,
        window_bps: float | None = None,
        levels: int = 0,
        as_of: datetime | str | None = None,
    ) -> OrderBookAnswer:
        """Top of book, depth within the configured windows (plus ``window_bps``), imbalance and the
        visible totals of one book; ``levels`` > 0 adds the top levels per side (at most 1000).
        Raises ``InvalidInputError``, ``UnknownVenueError``/``UnknownSymbolError``,
        ``BookNotReadyError``, ``VenueUnreachableError``."""
        windows = self.windows(window_bps)
        if isinstance(levels, bool) or not isinstance(levels, int) or not 0 <= levels <= 1000:
            raise InvalidInputError(f"levels must be an integer in [0, 1000], got {levels!r}")
        book = await self.books.book_of(symbol, venue, as_of=as_of)
        key = ("order_book", book.view.instrument, tuple(windows), window_bps, levels)
        if as_of is None and (hit := self._answers.get(key, (book,))) is not None:
            return hit
        summary = self._summary(book.view, windows)
        v = book.view
        extra: dict[str, Any] = {}
        if levels:
            extra["bids"] = [
                (float(p), float(s)) for p, s in zip(v.bid_prices[:levels], v.bid_sizes[:levels], strict=True)
            ]
            extra["asks"] = [
                (float(p), float(s)) for p, s in zip(v.ask_prices[:levels], v.ask_sizes[:levels], strict=True)
            ]
        answer = OrderBookAnswer(
            **summary.model_dump(), book=book.provenance, requested_window_bps=window_bps, **extra
        )
        return answer if as_of is not None else self._answers.put(key, (book,), answer)

    async def impact(
        self,
        symbol: str,
        side: str | Side | None,
        size: float | None = None,
        notional: float | None = None,
        venue: str | None = None,
        as_of: datetime | str | None = None,
    ) -> ImpactAnswer:
        """Market impact of one taker order walked through the visible book (``analytics.market_impact``).
        ``side`` None means buy (``side_defaulted`` says so). Raises as ``order_book``, plus
        ``InsufficientLiquidityError`` when the side to walk is empty."""
        side_e, defaulted = parse_side(side)
        check_amount(size, notional)
        book = await self.books.book_of(symbol, venue, as_of=as_of)
        key = ("impact", book.view.instrument, side_e, defaulted, size, notional)
        if as_of is None and (hit := self._answers.get(key, (book,))) is not None:
            return hit
        res = analytics.market_impact(book.view, side_e, size=size, notional=notional)
        answer = ImpactAnswer(**res.model_dump(), book=book.provenance, side_defaulted=defaulted)
        return answer if as_of is not None else self._answers.put(key, (book,), answer)

    async def max_size(
        self,
        symbol: str,
        side: str | Side | None,
        max_slippage_bps: float,
        venue: str | None = None,
        as_of: datetime | str | None = None,
    ) -> MaxSizeAnswer:
        """The largest taker order whose VWAP slippage vs mid stays within ``max_slippage_bps``
        (``analytics.max_size_within_slippage``)."""
        side_e, _ = parse_side(side)
        book = await self.books.book_of(symbol, venue, as_of=as_of)
        res = analytics.max_size_within_slippage(book.view, side_e, max_slippage_bps)
        d = analytics.depth_within_bps(book.view, check_window(max_slippage_bps))
        buy = side_e is Side.BUY
        return MaxSizeAnswer(
            **res.model_dump(),
            book=book.provenance,
            size_within_price_move=d.ask_size if buy else d.bid_size,
            notional_within_price_move=d.ask_notional if buy else d.bid_notional,
        )

    async def compare(
        self,
        symbol: str,
        side: str | Side | None = None,
        size: float | None = None,
        notional: float | None = None,
        venues: Sequence[str] | None = None,
        venue: str | None = None,
        window_bps: float | None = None,
        fees_bps: Mapping[str, float] | None = None,
        as_of: datetime | str | None = None,
    ) -> CompareAnswer:
        """The same taker order on each venue's book (``analytics.venues.compare_venues``).

        ``venues``: two or more ccxt ids, or None for every venue with a book of the asset
        (``BookService.venues``); ``venue``: one venue of interest, compared against all others;
        no size: a ``REFERENCE_NOTIONAL_QUOTE`` order. ``fees_bps``: per-venue fees of this request.
        Raises ``InvalidInputError`` (bad arguments, or no venue has a usable book: the reasons
        listed), ``UnknownVenueError`` for a venue id nobody knows."""
        side_e, _ = parse_side(side)
        check_amount(size, notional, required=False)
        window = check_window(
            window_bps if window_bps is not None else self.settings.analytics.default_window_bps
        )
        named = [self.books.canonical(v) for v in (venues or [])]
        focus = self.books.canonical(venue) if venue else (named[0] if len(named) == 1 else None)
        wanted: list[str] | None = named if len(named) >= 2 else None
        if focus and wanted is not None and focus not in wanted:
            wanted = [focus, *wanted]
        books, missing = await self.books.books(symbol, wanted, as_of=as_of)
        if focus and wanted is None and focus not in {b.instrument.venue for b in books}:
            await self.books.books(symbol, [focus], as_of=as_of)  # an unknown focus venue raises here
        if not books:
            raise InvalidInputError(
                f"no venue has a comparable book for {symbol!r}"
                + (f" among {', '.join(wanted)}" if wanted else "")
                + ": "
                + "; ".join(f"{m.venue}: {m.reason}" for m in missing[:6])
                + f". Assets with USD-quoted books on several venues: {self.books.assets_on_several_venues()}."
            )
        fees, no_fee = await self.fees.fee_table([b.instrument for b in books], fees_bps)
        for v, why in no_fee.items():
            missing.append(Unavailable(venue=v, reason=why, kind="no_fee"))
        books = [b for b in books if b.instrument.venue in fees]
        if not books:
            raise InvalidInputError("no compared venue has a known taker fee: " + "; ".join(no_fee.values()))
        defaulted = size is None and notional is None
        amount = (
            {"size": size, "notional": notional} if not defaulted else {"notional": REFERENCE_NOTIONAL_QUOTE}
        )
        key = (
            "compare", symbol, side_e, size, notional, window, focus, tuple(wanted or ()),
            tuple(sorted(fees.items())), tuple(missing),
        )  # fmt: skip
        if as_of is None and (hit := self._answers.get(key, books)) is not None:
            return hit
        max_diff = float(self.settings.analytics.max_book_age_diff_ms)
        # A compare is ~0.8 ms of pure Python: the event loop runs every request that is ready in
        # one iteration, so 64 compares at once held every other client (and the WebSocket ticks)
        # for their sum; yielding here splits each one in two.
        await asyncio.sleep(0)
        cmp = analytics_venues.compare_venues(
            [b.view for b in books],
            side_e,
            fees_bps=fees,
            window_bps=window,
            max_book_age_diff_ms=max_diff,
            **amount,
        )
        prov = {b.instrument.venue: b for b in books}
        full = sorted((r for r in cmp.venues if r.fully_filled), key=lambda r: r.cost_bps)
        ranks = {r.venue: n for n, r in enumerate(full, 1)}
        rows = tuple(
            CompareRow(
                **r.model_dump(),
                market_type=str(prov[r.venue].instrument.market_type),
                rank=ranks.get(r.venue),
                book=prov[r.venue].provenance,
            )
            for r in cmp.venues
        )
        arbs = cmp.arbitrage
        checked = [a for a in arbs if a.contemporaneous]
        data = cmp.model_dump()
        data["venues"] = rows
        answer = CompareAnswer(
            **data,
            symbol=symbol,
            focus_venue=focus,
            venues_compared=len(books),
            unavailable=missing,
            reference_order_defaulted=defaulted,
            max_book_age_diff_ms=max_diff,
            fees=fees,
            fee_sources={v: f.source for v, f in fees.items()},
            arbitrage_opportunities=[a for a in arbs if a.opportunity],
            arbitrage_pairs_checked=len(checked),
            arbitrage_pairs_not_contemporaneous=len(arbs) - len(checked),
            arbitrage_best_edge=max(checked, key=lambda a: a.edge_bps or -math.inf, default=None),
            book_ts_span_s=_time_span_s(books),
            as_of=_as_of_text(as_of),
        )
        return answer if as_of is not None else self._answers.put(key, books, answer)

    def open_breakers(self) -> set[str]:
        """Venues whose REST circuit breaker is not closed."""
        if self.engine is None:
            return set()
        return {h.venue for h in self.engine.health() if str(h.state) != "closed"}

    async def route(
        self,
        symbol: str,
        side: str | Side | None = None,
        size: float | None = None,
        notional: float | None = None,
        venues: Sequence[str] | None = None,
        exclude_venues: Sequence[str] | None = None,
        fees_bps: Mapping[str, float] | None = None,
        as_of: datetime | str | None = None,
    ) -> RouteAnswer:
        """Smart-order-routing simulation across the venues' books (``analytics.routing.route_order``)
        against best single venue, pro-rata and equal-split baselines. Books that are not synced,
        crossed, stale, behind an open circuit breaker, or more than ``analytics.stale_after_ms``
        older than the freshest are excluded with the reason (``analytics.routing_exclusions``).
        Raises ``InvalidInputError`` (bad arguments; every book excluded: the reasons listed)."""
        side_e, _ = parse_side(side)
        check_amount(size, notional)
        wanted = [self.books.canonical(v) for v in venues] if venues else None
        books, missing = await self.books.books(symbol, wanted, as_of=as_of)
        if not books:
            raise NoUsableBookError(
                f"no venue has a book for {symbol!r} to route across: "
                + "; ".join(f"{m.venue}: {m.reason}" for m in missing[:6])
                + f". Assets with USD-quoted books on several venues: {self.books.assets_on_several_venues()}.",
                [f"{m.venue}: {m.reason}" for m in missing],
            )
        views = [b.view for b in books]
        excluded = routing_exclusions(
            views,
            max_age_diff_ms=self.settings.analytics.stale_after_ms,
            open_venues=self.open_breakers(),
            requested={self.books.canonical(v): "excluded at your request" for v in exclude_venues or []},
        )
        used = [b for b in books if b.instrument.venue not in excluded]
        fees, no_fee = await self.fees.fee_table([b.instrument for b in used], fees_bps)
        for v, why in no_fee.items():
            excluded[v] = why
        used = [b for b in used if b.instrument.venue in fees]
        if not used:
            reasons = [f"{m.venue}: {m.reason}" for m in missing] + [f"{k}: {r}" for k, r in excluded.items()]
            raise NoUsableBookError(
                f"no venue has a synced, fresh book of {symbol!r} to route across: " + "; ".join(reasons),
                reasons,
            )
        plan = route_order(
            [b.view for b in used], side_e, size=size, notional=notional, fees_bps=fees, excluded=excluded
        )
        best = next((b for b in plan.baselines if b.name == "best_single_venue"), None)
        pick = min if side_e is Side.BUY else max
        single = pick(plan.venues, key=lambda v: v.best_price_incl_fees).venue if plan.venues else None
        return RouteAnswer(
            **plan.model_dump(),
            symbol=symbol,
            venues_considered=len(books),
            venues_used=len(used),
            books=[b.provenance for b in used],
            unavailable=missing,
            fees=fees,
            fee_sources={v: f.source for v, f in fees.items()},
            best_single_venue=single,
            savings_vs_best_single_venue_bps=best.savings_bps if best else None,
            savings_vs_best_single_venue_quote=best.savings_quote if best else None,
            book_ts_span_s=_time_span_s(used),
            as_of=_as_of_text(as_of),
        )
