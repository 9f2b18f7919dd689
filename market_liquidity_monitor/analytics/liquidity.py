"""Pure liquidity analytics over one ``BookView``: top of book, depth, imbalance, market impact.

Everything here is a pure function of a :class:`~market_liquidity_monitor.book.view.BookView`
(no I/O, no clocks, no framework imports). Results are frozen pydantic models whose field names
carry their units (``_bps``, ``_ns``; ``size`` is base units, ``notional``/``price`` quote units)
and which always say which book they describe: ``venue``, ``symbol``, ``book_ts`` (ISO 8601 UTC,
``view.book_ts_iso``) and ``book_ts_ns``.

Definitions (the same as the live book, :mod:`market_liquidity_monitor.book.orderbook`):

- ``mid_price = (best_bid + best_ask) / 2``; ``spread = best_ask - best_bid`` (quote units);
  ``spread_bps = spread / mid_price * 1e4``;
- bid depth within ``w`` bps: levels with ``price >= mid * (1 - w/1e4)``; ask depth: levels with
  ``price <= mid * (1 + w/1e4)``; ``*_size`` sums base sizes, ``*_notional`` sums ``price * size``;
- the walks (market impact, impact curve, max size within a slippage limit) consume the visible
  book level by level, best first, and pro-rate the last level touched: the VWAP walk of the
  visible book used in Kaiko's slippage methodology and in venue "cost of a market order" tools.

Exactness. ``BookView`` holds floats converted from the wire's decimal strings. Where a result must
agree *exactly* with the integer live book (mid, spread, which levels fall inside a depth window),
the few scalars involved are taken back to their decimal value with ``Fraction(repr(x))`` (the
shortest decimal that round-trips, i.e. the wire value for any price with <= 15 significant
digits) and compared in exact rational arithmetic. Sums over levels are numpy float sums
(``cumsum``), exact to ~1e-15 relative. Walks use ``cumsum`` + ``searchsorted``; there is no
Python loop over levels.

One difference by design: the live book quantises a depth window to 0.01 bps
(``round(window_bps * 100)``); here the window is used as given. Both agree for any window that is
a multiple of 0.01 bps (10, 25, 50, 100...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InsufficientLiquidityError,
    InvalidInputError,
)
from market_liquidity_monitor.domain.instrument import Side

__all__ = [
    "BookImbalance",
    "DepthWindow",
    "ImpactCurve",
    "ImpactPoint",
    "ImpactResult",
    "MaxSizeResult",
    "OrderBookSummary",
    "TopOfBook",
    "book_summary",
    "depth_within_bps",
    "imbalance",
    "imbalance_from_depth",
    "impact_curve",
    "market_impact",
    "max_size_within_slippage",
    "top_of_book",
]

BPS = 1e4
MAX_WINDOW_BPS = 10_000.0
DEFAULT_WINDOWS_BPS: tuple[float, ...] = (10, 25, 50, 100)
# Relative tolerance when matching a requested amount against cumulative sums: an amount within
# 1e-12 of a level boundary is treated as ending on that boundary (float noise in the cumsum, far
# below any venue's lot size), so a request for exactly the visible size counts as fully filled.
REL_TOL = 1e-12


# ----------------------------------------------------------------------------------- results


class Result(BaseModel):
    """Base of every result: frozen, no unknown fields, JSON-serialisable."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class BookRef(Result):
    """Which book a result describes."""

    venue: str
    symbol: str
    book_ts: str | None  # ISO 8601 UTC (ms, "Z"); None only if the view carries no timestamp
    book_ts_ns: int | None  # ns since the Unix epoch: venue time if known, else local receive time


class TopOfBook(BookRef):
    """Best levels, mid, spread and microprice of one book (prices quote units, sizes base units)."""

    best_bid: float
    best_bid_size: float
    best_ask: float
    best_ask_size: float
    mid_price: float
    spread: float  # quote units; negative only if the book is crossed
    spread_bps: float
    microprice: float
    crossed: bool  # best_bid >= best_ask: reported as is, never "fixed"


class DepthWindow(BookRef):
    """Resting liquidity within ``window_bps`` of mid on each side."""

    window_bps: float
    mid_price: float
    bid_bound_price: float  # bids with price >= this are inside
    ask_bound_price: float  # asks with price <= this are inside
    bid_size: float  # base units
    bid_notional: float  # quote units, sum of price * size
    bid_levels: int
    ask_size: float
    ask_notional: float
    ask_levels: int
    # Every visible level of the side is inside the window: the window reaches past the visible
    # book, so for a truncated feed (e.g. a 1000-level snapshot) the true depth may be larger.
    bid_window_exceeds_visible_book: bool
    ask_window_exceeds_visible_book: bool


class BookImbalance(BookRef):
    """Size imbalance within ``window_bps`` of mid: ``(bid_size - ask_size) / (bid_size + ask_size)``."""

    window_bps: float
    bid_size: float
    ask_size: float
    imbalance: float | None  # in [-1, 1]; None when the window holds no level on either side
    reason: str | None = None


class OrderBookSummary(BookRef):
    """Top of book, depth and imbalance per window, and the size of the visible book."""

    top_of_book: TopOfBook
    depth: tuple[DepthWindow, ...]
    imbalance: tuple[BookImbalance, ...]
    bid_levels: int
    ask_levels: int
    bid_total_size: float
    ask_total_size: float
    bid_total_notional: float
    ask_total_notional: float
    quality: dict[str, Any]  # the book's integrity flags/counters as given by the view


class ImpactResult(BookRef):
    """Cost of one taker order walked through the visible book.

    Exactly one of ``size`` (base) and ``notional_requested`` (quote) is set. When the side cannot
    fill the whole request, ``fully_filled`` is False and the figures describe what it could fill;
    the unfilled part is given in the unit of the request only (its price is unknown).
    """

    side: Side
    size: float | None
    notional_requested: float | None
    filled_size: float
    filled_notional: float
    vwap: float
    mid_price: float
    best_price: float
    worst_price: float  # price of the last level touched
    slippage_bps: float  # vs mid; positive = cost
    slippage_vs_best_bps: float  # vs best ask (buy) / best bid (sell); positive = cost
    levels_consumed: int  # levels touched, the pro-rated last one included
    levels_available: int
    fully_filled: bool
    unfilled_size: float | None  # base; None when the request was a notional that did not fill
    unfilled_notional: float | None  # quote; None when the request was a size that did not fill
    reason: str | None = None


class ImpactPoint(Result):
    """One point of an impact curve (same meaning as the ``ImpactResult`` fields)."""

    size: float | None
    notional_requested: float | None
    filled_size: float
    filled_notional: float
    vwap: float
    slippage_bps: float
    slippage_vs_best_bps: float
    levels_consumed: int
    worst_price: float
    fully_filled: bool


class ImpactCurve(BookRef):
    """Market impact of several order sizes (or notionals) on one side of one book, input order kept."""

    side: Side
    mid_price: float
    best_price: float
    levels_available: int
    points: tuple[ImpactPoint, ...]


class MaxSizeResult(BookRef):
    """Largest taker order whose VWAP slippage vs mid stays within ``max_slippage_bps``.

    ``size`` is 0 (and ``vwap``, ``slippage_bps``, ``worst_price`` None) when even the best level is
    beyond the limit; ``limited_by_book`` is True when the whole visible side fits within it.
    """

    side: Side
    max_slippage_bps: float
    size: float  # base units
    notional: float  # quote units
    vwap: float | None
    slippage_bps: float | None
    mid_price: float
    best_price: float
    worst_price: float | None
    levels_consumed: int
    levels_available: int
    limited_by_book: bool
    reason: str | None = None


# ----------------------------------------------------------------------------------- helpers
# Shared by the other analytics modules (venues, routing, pairs, backtest, alerts): the result
# bases above, ``book_ref``, ``exact_mid``, ``check_number``, ``check_window``, ``one_amount``,
# ``side_sign`` and ``REL_TOL``. Not re-exported by the package.


def book_ref(view: BookView) -> dict[str, Any]:
    """The ``BookRef`` fields of ``view``: venue, symbol, book_ts (ISO 8601 UTC), book_ts_ns."""
    return {
        "venue": view.instrument.venue,
        "symbol": view.instrument.symbol,
        "book_ts": view.book_ts_iso,
        "book_ts_ns": view.book_ts_ns,
    }


# Values derived only from a view's arrays (top of book, cumulative sums), memoised by array
# identity: the book store hands out the same read-only arrays until the book changes, so repeated
# questions on an unchanged book (REST polling, a recorded book, the N venues of a comparison) reuse
# them instead of recomputing per request (bench_api profile: exact top-of-book and the cumulative
# sums were most of an /api/impact or /api/compare request). An entry holds the arrays it was
# computed from and is used only while a caller passes those very objects; bounded, cleared whole.
_MEMO: dict[tuple, tuple[tuple[np.ndarray, ...], Any]] = {}
_MEMO_MAX = 512


def _memo(kind: str, arrays: tuple[np.ndarray, ...], extra: Any, compute: Any) -> Any:
    key = (kind, *map(id, arrays), extra)
    hit = _MEMO.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], arrays, strict=True)):
        return hit[1]
    value = compute()
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.clear()
    _MEMO[key] = (arrays, value)
    return value


def _exact(x: float) -> Fraction:
    """The decimal value behind a float from the wire (shortest round-trip repr), as a Fraction."""
    return Fraction(repr(float(x)))


def _require_both_sides(view: BookView, what: str) -> None:
    empty = [name for name, arr in (("bid", view.bid_prices), ("ask", view.ask_prices)) if arr.size == 0]
    if empty:
        raise BookNotReadyError(
            f"{view.instrument}: the {' and '.join(empty)} side of the book is empty; {what} needs both sides"
        )


def exact_mid(view: BookView) -> tuple[float, Fraction]:
    """``(mid_price, exact_mid)``: mid as the live book computes it (correctly rounded exact value)."""
    _require_both_sides(view, "the mid price")
    return _memo("mid", (view.bid_prices, view.ask_prices), None, lambda: _exact_mid(view))


def _exact_mid(view: BookView) -> tuple[float, Fraction]:
    mid = (_exact(view.bid_prices[0]) + _exact(view.ask_prices[0])) / 2
    return float(mid), mid


def check_number(name: str, value: Any, *, allow_zero: bool = False, unit: str = "") -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (>= 0 with ``allow_zero``)."""
    bound = ">= 0" if allow_zero else "> 0"
    hint = f" ({unit})" if unit else ""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInputError(f"{name} must be a finite number {bound}{hint}; got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidInputError(f"{name} must be a finite number {bound}{hint}; got {value!r}")
    return v


def check_window(window_bps: Any) -> float:
    """``window_bps`` as a float in (0, 10000] bps, else ``InvalidInputError``."""
    w = check_number("window_bps", window_bps, unit="basis points of mid")
    if w > MAX_WINDOW_BPS:
        raise InvalidInputError(
            f"window_bps must be > 0 and <= {MAX_WINDOW_BPS:g} (100%); got {window_bps!r}"
        )
    return w


def _check_amounts(name: str, values: Any, unit: str) -> np.ndarray:
    """A non-empty 1-D float array of finite amounts > 0, else ``InvalidInputError``."""
    if isinstance(values, (str, bytes)) or values is None:
        raise InvalidInputError(
            f"{name} must be a non-empty sequence of numbers > 0 ({unit}); got {values!r}"
        )
    items = list(values)
    if not items:
        raise InvalidInputError(f"{name} must be a non-empty sequence of numbers > 0 ({unit}); got none")
    return np.array([check_number(f"each of {name}", v, unit=unit) for v in items], dtype=float)


def _side_levels(view: BookView, side: Side) -> tuple[np.ndarray, np.ndarray, str]:
    """Prices and sizes a taker order of ``side`` consumes (best first), and that side's name."""
    if side is Side.BUY:
        prices, sizes, name = view.ask_prices, view.ask_sizes, "ask"
    else:
        prices, sizes, name = view.bid_prices, view.bid_sizes, "bid"
    if prices.size == 0:
        raise InsufficientLiquidityError(
            f"{view.instrument}: the {name} side of the book is empty; no {side.value} order can be filled"
        )
    return np.asarray(prices, dtype=float), np.asarray(sizes, dtype=float), name


def side_sign(side: Side) -> float:
    """+1 for a buy (paying above mid is a cost), -1 for a sell."""
    return 1.0 if side is Side.BUY else -1.0


def _bps_cost(side: Side, price: np.ndarray | float, ref: float) -> np.ndarray | float:
    """Signed distance of ``price`` from ``ref`` in bps, positive = worse for the taker."""
    return side_sign(side) * (price - ref) / ref * BPS


@dataclass(frozen=True, slots=True)
class _Walk:
    """Vectorised walk result, one entry per requested amount."""

    filled_size: np.ndarray
    filled_notional: np.ndarray
    levels_consumed: np.ndarray
    worst_price: np.ndarray
    fully_filled: np.ndarray


def _walk(prices: np.ndarray, sizes: np.ndarray, amounts: np.ndarray, by_notional: bool) -> _Walk:
    """Walk the levels (best first) for each amount (base sizes, or quote notionals if ``by_notional``).

    ``k = searchsorted(cumsum, amount)`` is the level that completes the order; the part of it
    taken is pro-rated (in base units for a size, in quote units for a notional). ``k == n``
    means the side is exhausted: the whole visible side is the fill.
    """
    n = prices.size
    cum_size, cum_notional, cs0, cn0 = _memo("cum", (prices, sizes), None, lambda: _cumulative(prices, sizes))
    cum = cum_notional if by_notional else cum_size
    k = np.searchsorted(cum, amounts * (1.0 - REL_TOL), side="left")
    full = k < n
    kc = np.minimum(k, n - 1)
    px = prices[kc]
    if by_notional:
        part_size = (amounts - cn0[kc]) / px
        filled_size = np.where(full, cs0[kc] + part_size, cum_size[-1])
        filled_notional = np.where(full, amounts, cum_notional[-1])
    else:
        part_notional = (amounts - cs0[kc]) * px
        filled_size = np.where(full, amounts, cum_size[-1])
        filled_notional = np.where(full, cn0[kc] + part_notional, cum_notional[-1])
    return _Walk(
        filled_size=filled_size,
        filled_notional=filled_notional,
        levels_consumed=np.where(full, k + 1, n),
        worst_price=np.where(full, px, prices[-1]),
        fully_filled=full,
    )


# --------------------------------------------------------------------------------- functions


def _cumulative(prices: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(cum_size, cum_notional, cs0, cn0)`` of one side; ``cs0[i]`` = size of the i levels before
    level i (``cn0`` the same in quote units)."""
    cum_size = np.cumsum(sizes)
    cum_notional = np.cumsum(prices * sizes)
    return cum_size, cum_notional, np.concatenate(([0.0], cum_size)), np.concatenate(([0.0], cum_notional))


def top_of_book(view: BookView) -> TopOfBook:
    """Best bid/ask, mid, spread and microprice of ``view``.

    - ``mid_price = (best_bid + best_ask) / 2``, ``spread = best_ask - best_bid`` (quote units),
      ``spread_bps = spread / mid_price * 1e4``; mid and spread are computed from the levels'
      exact decimal values, so they equal ``L2Book.mid_price()`` on the same book bit for bit;
    - ``microprice = (best_bid * best_ask_size + best_ask * best_bid_size) / (best_bid_size + best_ask_size)``,
      the size-weighted mid (Stoikov 2018, "The micro-price: a high-frequency estimator of future
      prices", its first-order form): it leans toward the side with less size.

    A crossed book (``best_bid >= best_ask``) is reported as is with ``crossed=True``.
    Raises ``BookNotReadyError`` if either side is empty.
    """
    arrays = (view.bid_prices, view.ask_prices, view.bid_sizes, view.ask_sizes)
    extra = (view.instrument, view.ts_event_ns, view.ts_recv_ns)
    return _memo("top", arrays, extra, lambda: _top_of_book(view))


def _top_of_book(view: BookView) -> TopOfBook:
    mid, mid_x = exact_mid(view)
    bid, ask = _exact(view.bid_prices[0]), _exact(view.ask_prices[0])
    bid_size, ask_size = _exact(view.bid_sizes[0]), _exact(view.ask_sizes[0])
    spread = ask - bid
    micro = (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
    return TopOfBook(
        **book_ref(view),
        best_bid=float(view.bid_prices[0]),
        best_bid_size=float(view.bid_sizes[0]),
        best_ask=float(view.ask_prices[0]),
        best_ask_size=float(view.ask_sizes[0]),
        mid_price=mid,
        spread=float(spread),
        spread_bps=float(spread / mid_x * 10_000),
        microprice=float(micro),
        crossed=bid >= ask,
    )


def _window_counts(view: BookView, mid_x: Fraction, w: float) -> tuple[int, int, float, float]:
    """``(bid_levels, ask_levels, bid_bound, ask_bound)`` inside the window, decided exactly.

    A float ``searchsorted`` finds the boundary; the one or two levels next to it are then checked
    in exact rational arithmetic (the float bound can be off by an ulp), so the level set equals
    the live book's integer computation.
    """
    w_x = _exact(w)
    lo_x = mid_x * (10_000 - w_x) / 10_000
    hi_x = mid_x * (10_000 + w_x) / 10_000
    lo, hi = float(lo_x), float(hi_x)
    bids, asks = view.bid_prices, view.ask_prices
    nb = int(np.searchsorted(-bids, -lo, side="right"))  # bids are descending: count of p >= lo
    while nb < bids.size and _exact(bids[nb]) >= lo_x:
        nb += 1
    while nb > 0 and _exact(bids[nb - 1]) < lo_x:
        nb -= 1
    na = int(np.searchsorted(asks, hi, side="right"))  # asks ascending: count of p <= hi
    while na < asks.size and _exact(asks[na]) <= hi_x:
        na += 1
    while na > 0 and _exact(asks[na - 1]) > hi_x:
        na -= 1
    return nb, na, lo, hi


def depth_within_bps(view: BookView, window_bps: float) -> DepthWindow:
    """Base size and quote notional resting within ``window_bps`` of mid, per side.

    Bids count when ``price >= mid * (1 - window_bps/1e4)``, asks when
    ``price <= mid * (1 + window_bps/1e4)`` (bounds inclusive), the "depth at x%" definition used
    by exchanges' and Kaiko's market-depth figures and by ``L2Book.depth``; the level set is
    decided in exact arithmetic and equals the live book's. Sizes are base units, notionals
    ``sum(price * size)`` in quote units.

    ``window_bps`` must be a finite number with ``0 < window_bps <= 10000``, else
    ``InvalidInputError``. Raises ``BookNotReadyError`` if either side is empty (no mid).
    """
    w = check_window(window_bps)
    _, mid_x = exact_mid(view)
    return _depth(view, w, mid_x)


def _depth(view: BookView, w: float, mid_x: Fraction) -> DepthWindow:
    arrays = (view.bid_prices, view.ask_prices, view.bid_sizes, view.ask_sizes)
    extra = (view.instrument, view.ts_event_ns, view.ts_recv_ns, w, mid_x)
    return _memo("depth", arrays, extra, lambda: _depth_of(view, w, mid_x))


def _depth_of(view: BookView, w: float, mid_x: Fraction) -> DepthWindow:
    nb, na, lo, hi = _window_counts(view, mid_x, w)
    bid_size = float(np.sum(view.bid_sizes[:nb]))
    ask_size = float(np.sum(view.ask_sizes[:na]))
    bid_notional = float(np.dot(view.bid_prices[:nb], view.bid_sizes[:nb]))
    ask_notional = float(np.dot(view.ask_prices[:na], view.ask_sizes[:na]))
    return DepthWindow(
        **book_ref(view),
        window_bps=w,
        mid_price=float(mid_x),
        bid_bound_price=lo,
        ask_bound_price=hi,
        bid_size=bid_size,
        bid_notional=bid_notional,
        bid_levels=nb,
        ask_size=ask_size,
        ask_notional=ask_notional,
        ask_levels=na,
        bid_window_exceeds_visible_book=nb == view.bid_prices.size,
        ask_window_exceeds_visible_book=na == view.ask_prices.size,
    )


def imbalance_value(bid_size: float, ask_size: float) -> float | None:
    """``(bid_size - ask_size) / (bid_size + ask_size)`` in [-1, 1], None when both are 0 (see
    ``imbalance`` for the source)."""
    total = bid_size + ask_size
    return (bid_size - ask_size) / total if total > 0 else None


def imbalance_from_depth(view: BookView, depth: DepthWindow) -> BookImbalance:
    """``imbalance`` from a ``depth_within_bps`` result already computed for ``view`` (no second walk)."""
    value = imbalance_value(depth.bid_size, depth.ask_size)
    if value is not None:
        reason = None
    else:
        value = None
        reason = (
            f"no level within {depth.window_bps:g} bps of mid on either side "
            f"(bounds {depth.bid_bound_price:g} / {depth.ask_bound_price:g}); the spread is wider than the window"
        )
    return BookImbalance(
        **book_ref(view),
        window_bps=depth.window_bps,
        bid_size=depth.bid_size,
        ask_size=depth.ask_size,
        imbalance=value,
        reason=reason,
    )


def imbalance(view: BookView, window_bps: float) -> BookImbalance:
    """Order-book imbalance within ``window_bps`` of mid: ``(bid_size - ask_size) / (bid_size + ask_size)``.

    The standard depth (queue) imbalance of the microstructure literature (e.g. Cartea, Jaimungal
    & Ricci 2018, "Enhancing trading strategies with order book signals"), here over the levels of
    ``depth_within_bps``; in [-1, 1], positive when bids outweigh asks. ``imbalance`` is None with
    a ``reason`` when the window holds no level on either side (spread wider than the window).

    Raises ``InvalidInputError`` for a window outside (0, 10000] bps and ``BookNotReadyError`` if a
    side is empty.
    """
    return imbalance_from_depth(view, depth_within_bps(view, window_bps))


def book_summary(view: BookView, windows_bps: Sequence[float] = DEFAULT_WINDOWS_BPS) -> OrderBookSummary:
    """Top of book, depth and imbalance for each of ``windows_bps``, and the visible book's totals.

    ``windows_bps``: a non-empty sequence of windows, each ``0 < w <= 10000`` bps (input order kept).
    Definitions as in ``top_of_book``, ``depth_within_bps`` and ``imbalance``. ``quality`` is the
    view's integrity record (synced, crossed, stale, resync counts...) passed through unchanged.

    Raises ``InvalidInputError`` for a bad window and ``BookNotReadyError`` if a side is empty.
    """
    if isinstance(windows_bps, (str, bytes)) or windows_bps is None:
        raise InvalidInputError(
            f"windows_bps must be a non-empty sequence of numbers in (0, 10000]; got {windows_bps!r}"
        )
    windows = [check_window(w) for w in windows_bps]
    if not windows:
        raise InvalidInputError("windows_bps must be a non-empty sequence of numbers in (0, 10000]; got none")
    top = top_of_book(view)
    _, mid_x = exact_mid(view)
    depths = tuple(_depth(view, w, mid_x) for w in windows)
    return OrderBookSummary(
        **book_ref(view),
        top_of_book=top,
        depth=depths,
        imbalance=tuple(imbalance_from_depth(view, d) for d in depths),
        bid_levels=int(view.bid_prices.size),
        ask_levels=int(view.ask_prices.size),
        bid_total_size=float(np.sum(view.bid_sizes)),
        ask_total_size=float(np.sum(view.ask_sizes)),
        bid_total_notional=float(np.dot(view.bid_prices, view.bid_sizes)),
        ask_total_notional=float(np.dot(view.ask_prices, view.ask_sizes)),
        quality=dict(view.quality),
    )


def one_amount(size: Any, notional: Any) -> tuple[float, bool]:
    """Validate "exactly one of size/notional"; return ``(amount, by_notional)``."""
    if (size is None) == (notional is None):
        got = "both" if size is not None else "neither"
        raise InvalidInputError(
            f"Pass exactly one of size (base units) or notional (quote units), each a finite number > 0; got {got}"
        )
    if size is not None:
        return check_number("size", size, unit="base units"), False
    return check_number("notional", notional, unit="quote units"), True


def market_impact(
    view: BookView,
    side: Side | str,
    size: float | None = None,
    notional: float | None = None,
) -> ImpactResult:
    """Cost of a taker order of ``size`` base units or ``notional`` quote units, walking the book.

    A buy consumes asks from the best up, a sell bids from the best down (VWAP walk of the visible
    book, as in Kaiko's slippage methodology). The last level touched is pro-rated: in base units
    for a ``size``, in quote units for a ``notional`` (fill until ``sum(price * size)`` reaches it).

    - ``vwap = filled_notional / filled_size``;
    - ``slippage_bps``: buy ``(vwap - mid) / mid * 1e4``, sell ``(mid - vwap) / mid * 1e4`` (positive = cost);
    - ``slippage_vs_best_bps``: the same against the best ask (buy) / best bid (sell).

    If the side holds less than requested, the result describes the fill of the whole visible
    side with ``fully_filled=False`` and the unfilled remainder in the request's unit.

    Raises ``InvalidInputError`` unless exactly one of ``size``/``notional`` is given as a finite
    number > 0, or for an unknown ``side``; ``InsufficientLiquidityError`` if the side to walk is
    empty; ``BookNotReadyError`` if the other side is empty (no mid to measure slippage against).
    """
    side = Side.parse(side)
    amount, by_notional = one_amount(size, notional)
    prices, sizes, side_name = _side_levels(view, side)
    mid, _ = exact_mid(view)
    walk = _walk(prices, sizes, np.array([amount]), by_notional)
    filled_size = float(walk.filled_size[0])
    filled_notional = float(walk.filled_notional[0])
    full = bool(walk.fully_filled[0])
    vwap = filled_notional / filled_size
    best = float(prices[0])
    reason = None
    if full:
        unfilled_size, unfilled_notional = 0.0, 0.0
    elif by_notional:
        unfilled_size, unfilled_notional = None, amount - filled_notional
        reason = (
            f"the visible {side_name} side ({prices.size} levels) holds only {filled_notional:g} quote units; "
            f"{unfilled_notional:g} of the {amount:g} requested could not be filled"
        )
    else:
        unfilled_size, unfilled_notional = amount - filled_size, None
        reason = (
            f"the visible {side_name} side ({prices.size} levels) holds only {filled_size:g} base units; "
            f"{unfilled_size:g} of the {amount:g} requested could not be filled"
        )
    return ImpactResult(
        **book_ref(view),
        side=side,
        size=None if by_notional else amount,
        notional_requested=amount if by_notional else None,
        filled_size=filled_size,
        filled_notional=filled_notional,
        vwap=vwap,
        mid_price=mid,
        best_price=best,
        worst_price=float(walk.worst_price[0]),
        slippage_bps=float(_bps_cost(side, vwap, mid)),
        slippage_vs_best_bps=float(_bps_cost(side, vwap, best)),
        levels_consumed=int(walk.levels_consumed[0]),
        levels_available=int(prices.size),
        fully_filled=full,
        unfilled_size=unfilled_size,
        unfilled_notional=unfilled_notional,
        reason=reason,
    )


def impact_curve(
    view: BookView,
    side: Side | str,
    sizes: Sequence[float] | None = None,
    notionals: Sequence[float] | None = None,
) -> ImpactCurve:
    """``market_impact`` for many order sizes (base) or notionals (quote) at once, vectorised.

    One ``searchsorted`` over the side's cumulative sums serves every point; the definitions are
    those of ``market_impact`` (VWAP walk of the visible book). Points keep the input order. For
    points larger than the visible side, ``fully_filled`` is False and the fill is the whole side.

    Raises ``InvalidInputError`` unless exactly one of ``sizes``/``notionals`` is a non-empty
    sequence of finite numbers > 0; ``InsufficientLiquidityError`` / ``BookNotReadyError`` as
    ``market_impact``.
    """
    side = Side.parse(side)
    if (sizes is None) == (notionals is None):
        got = "both" if sizes is not None else "neither"
        raise InvalidInputError(
            "Pass exactly one of sizes (base units) or notionals (quote units), each a non-empty "
            f"sequence of finite numbers > 0; got {got}"
        )
    by_notional = notionals is not None
    amounts = (
        _check_amounts("notionals", notionals, "quote units")
        if by_notional
        else _check_amounts("sizes", sizes, "base units")
    )
    prices, level_sizes, _ = _side_levels(view, side)
    mid, _ = exact_mid(view)
    walk = _walk(prices, level_sizes, amounts, by_notional)
    vwap = walk.filled_notional / walk.filled_size
    slip = _bps_cost(side, vwap, mid)
    slip_best = _bps_cost(side, vwap, float(prices[0]))
    points = tuple(
        ImpactPoint(
            size=None if by_notional else float(amounts[i]),
            notional_requested=float(amounts[i]) if by_notional else None,
            filled_size=float(walk.filled_size[i]),
            filled_notional=float(walk.filled_notional[i]),
            vwap=float(vwap[i]),
            slippage_bps=float(slip[i]),
            slippage_vs_best_bps=float(slip_best[i]),
            levels_consumed=int(walk.levels_consumed[i]),
            worst_price=float(walk.worst_price[i]),
            fully_filled=bool(walk.fully_filled[i]),
        )
        for i in range(amounts.size)
    )
    return ImpactCurve(
        **book_ref(view),
        side=side,
        mid_price=mid,
        best_price=float(prices[0]),
        levels_available=int(prices.size),
        points=points,
    )


def max_size_within_slippage(view: BookView, side: Side | str, max_slippage_bps: float) -> MaxSizeResult:
    """Largest base size whose VWAP slippage vs mid is <= ``max_slippage_bps``, and its notional and VWAP.

    Work in distances from mid: ``c_i = s * (p_i - mid)`` (``s`` = +1 buy, -1 sell; quote units
    per base unit, the cost of level ``i``) and the budget ``D = mid * L / 1e4``, so that slippage
    <= ``L`` bps means average cost <= ``D``. The average cost after each full level,
    ``cumsum(size * c) / cumsum(size)``, is monotone along the walk (prices only get worse), so a
    ``searchsorted`` finds the ``m`` full levels that stay within ``D``. Inside the next level
    (cost ``c``) the average after taking ``q`` more is ``(K + q c) / (S + q)`` with ``S``/``K`` the
    size and summed cost of the ``m`` levels; solving ``(K + q c) / (S + q) = D`` gives
    ``q = (D S - K) / (c - D)`` (exact up to float rounding). The answer ``S + q`` is then checked
    with the same walk as ``market_impact`` and nudged down by float noise (~1e-13 relative) if
    needed, so that ``market_impact(view, side, size=result.size).slippage_bps <= max_slippage_bps``.

    - ``size == 0`` with a ``reason`` when the best level alone exceeds the limit (for a normal book:
      the limit is below half the spread in bps);
    - ``limited_by_book=True`` with a ``reason`` when the whole visible side stays within the limit:
      the true maximum may be larger than the visible (possibly truncated) book.

    ``max_slippage_bps`` must be a finite number >= 0, else ``InvalidInputError`` (also for an
    unknown side). Raises ``InsufficientLiquidityError`` if the side is empty and
    ``BookNotReadyError`` if the other side is (no mid).
    """
    side = Side.parse(side)
    limit = check_number("max_slippage_bps", max_slippage_bps, allow_zero=True, unit="basis points vs mid")
    prices, sizes, side_name = _side_levels(view, side)
    mid, _ = exact_mid(view)
    n = prices.size
    sign = side_sign(side)
    budget = mid * limit / BPS  # D: allowed average distance from mid, quote units per base unit
    cost = sign * (prices - mid)  # per level, >= 0 unless the book is crossed
    cum_size = np.cumsum(sizes)
    cum_notional = np.cumsum(prices * sizes)
    cum_cost = np.cumsum(sizes * cost)
    # Average cost after each full level; monotone up to float noise, made exactly so for searchsorted.
    avg_cost = np.maximum.accumulate(cum_cost / cum_size)
    m = int(np.searchsorted(avg_cost, budget, side="right"))  # full levels with avg cost <= D
    base = {
        **book_ref(view),
        "side": side,
        "max_slippage_bps": limit,
        "mid_price": mid,
        "best_price": float(prices[0]),
        "levels_available": int(n),
    }
    if m == n:
        total_size, total_notional = float(cum_size[-1]), float(cum_notional[-1])
        vwap = total_notional / total_size
        return MaxSizeResult(
            **base,
            size=total_size,
            notional=total_notional,
            vwap=vwap,
            slippage_bps=float(_bps_cost(side, vwap, mid)),
            worst_price=float(prices[-1]),
            levels_consumed=int(n),
            limited_by_book=True,
            reason=(
                f"the whole visible {side_name} side ({n} levels) stays within {limit:g} bps; "
                "the true maximum may be larger than the visible book"
            ),
        )
    size_before = float(cum_size[m - 1]) if m else 0.0
    cost_before = float(cum_cost[m - 1]) if m else 0.0
    level_cost = float(cost[m])
    if level_cost > budget:
        part = min(max((budget * size_before - cost_before) / (level_cost - budget), 0.0), float(sizes[m]))
    else:  # only float noise in avg_cost can get here: the level is within the limit
        part = float(sizes[m])
    size = size_before + part
    if size <= 0.0:
        best_bps = float(_bps_cost(side, float(prices[0]), mid))
        return MaxSizeResult(
            **base,
            size=0.0,
            notional=0.0,
            vwap=None,
            slippage_bps=None,
            worst_price=None,
            levels_consumed=0,
            limited_by_book=False,
            reason=(
                f"the best {side_name} ({float(prices[0]):g}) is already {best_bps:g} bps from mid, "
                f"beyond the {limit:g} bps limit"
            ),
        )
    # Check with the market_impact walk; back off by float noise if the solved size overshoots.
    step = size * 1e-13
    for _ in range(64):
        walk = _walk(prices, sizes, np.array([size]), by_notional=False)
        vwap = float(walk.filled_notional[0]) / size
        slip = float(_bps_cost(side, vwap, mid))
        if slip <= limit or size <= step:
            break
        size -= step
        step *= 2.0
    return MaxSizeResult(
        **base,
        size=size,
        notional=float(walk.filled_notional[0]),
        vwap=vwap,
        slippage_bps=slip,
        worst_price=float(walk.worst_price[0]),
        levels_consumed=int(walk.levels_consumed[0]),
        limited_by_book=False,
        reason=None,
    )
