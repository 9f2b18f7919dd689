"""The assistant's tools: thin wrappers that resolve the instrument, read one book through
``MarketData`` and call one analytics function each. Results are plain JSON-able dicts, logged in
``deps.tool_log`` so answers can be checked against them (grounding).

A bad argument raises ``ModelRetry`` with the valid values, so an LLM can correct itself; the
offline model turns it into a clear answer.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import ModelRetry, RunContext

from market_liquidity_monitor import analytics
from market_liquidity_monitor.agent.retries import ArgumentProblems
from market_liquidity_monitor.analytics import BookProblem, book_problems
from market_liquidity_monitor.analytics import venues as analytics_venues
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InsufficientLiquidityError,
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.instrument import InstrumentId, Side
from market_liquidity_monitor.history_service import default_pair
from market_liquidity_monitor.ingest.clock import iso_ns
from market_liquidity_monitor.market_data import USD_LIKE, MarketData
from market_liquidity_monitor.storage.history import (
    InsufficientHistoryError,
    NoHistoryError,
    trend_of_candles,
    volatility_of_candles,
)


@dataclass
class ToolCallRecord:
    tool: str
    args: dict[str, Any]
    result: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args, "result": self.result}


@dataclass
class AgentDeps:
    """What a run needs: settings, the market-data facade, and the log of this run's tool calls."""

    settings: Settings
    market: MarketData
    tool_log: list[ToolCallRecord] = field(default_factory=list)
    # Candle history (storage); None when the app runs without it.
    history: Any = None
    # The ccxt data engine (circuit breakers per venue); None when not configured.
    engine: Any = None
    # The AlertService (rules, events, crunches); None when alerts are not available.
    alerts: Any = None


def _quality_warning(q: dict) -> str | None:
    """The book's present trust problems (``analytics.book_problems``) and its integrity history."""
    problems = [
        f"stale (last update {q.get('age_ms')} ms before now)"
        if p is BookProblem.STALE
        else "crossed (best bid >= best ask)"
        if p is BookProblem.CROSSED
        else str(p)
        for p in book_problems(q)
    ]
    if q.get("checksum_failures"):
        problems.append(f"{q['checksum_failures']} checksum failures")
    if q.get("gaps"):
        problems.append(f"{q['gaps']} sequence gaps (resynced {q.get('resyncs', 0)} times)")
    return "; ".join(problems) or None


def _instrument(deps: AgentDeps, symbol: str, venue: str | None) -> InstrumentId:
    try:
        return deps.market.resolve(symbol, venue)
    except (UnknownVenueError, UnknownSymbolError) as exc:
        raise ModelRetry(str(exc)) from exc


def _view(deps: AgentDeps, inst: InstrumentId):
    try:
        return deps.market.view(inst)
    except BookNotReadyError as exc:
        raise ModelRetry(f"{exc}. Try again shortly or ask about another venue.") from exc


def _side(side: str | None) -> Side:
    """``side`` as a ``Side``, buy when not given."""
    try:
        return Side.parse(side) if side else Side.BUY
    except InvalidInputError as exc:
        raise ModelRetry(str(exc)) from exc


def _window_arg(window_bps: float | None) -> None:
    if window_bps is not None and not (isinstance(window_bps, int | float) and 0 < window_bps <= 10_000):
        raise ModelRetry(f"window_bps must be in (0, 10000], got {window_bps!r}.")


def _size_args(size: float | None, notional: float | None) -> None:
    for name, v in (("size", size), ("notional", notional)):
        if v is not None and (not isinstance(v, int | float) or not math.isfinite(v) or v <= 0):
            raise ModelRetry(f"{name} must be a positive number, got {v!r}.")
    if size is not None and notional is not None:
        raise ModelRetry("Give either size (base units) or notional (quote units), not both.")


def _logged(fn):
    """Log every call of a tool in the run's tool log (``deps.tool_log``): its arguments (None left
    out) and its result, or ``{"error": ...}`` when it refused its arguments (ModelRetry), so
    answers can be checked against them. Works for sync and async tools."""
    signature = inspect.signature(fn)

    def record(ctx: RunContext[AgentDeps], args, kwargs, result: dict) -> None:
        bound = signature.bind(ctx, *args, **kwargs)
        call_args = {k: v for k, v in list(bound.arguments.items())[1:] if v is not None}
        ctx.deps.tool_log.append(ToolCallRecord(fn.__name__, call_args, result))

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(ctx: RunContext[AgentDeps], *args, **kwargs):
            try:
                result = await fn(ctx, *args, **kwargs)
            except ModelRetry as exc:
                record(ctx, args, kwargs, {"error": str(exc.message)})
                raise
            record(ctx, args, kwargs, result)
            return result

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(ctx: RunContext[AgentDeps], *args, **kwargs):
        try:
            result = fn(ctx, *args, **kwargs)
        except ModelRetry as exc:
            record(ctx, args, kwargs, {"error": str(exc.message)})
            raise
        record(ctx, args, kwargs, result)
        return result

    return wrapper


# --------------------------------------------------------------------- tools


@_logged
def order_book(
    ctx: RunContext[AgentDeps], symbol: str, venue: str | None = None, window_bps: float | None = None
) -> dict:
    """Order-book summary of one instrument: best bid/ask, mid, spread (and spread_bps), microprice,
    depth within bps windows of mid (base size and quote notional per side), imbalance, and the
    book's timestamp and quality.

    Args:
        symbol: base asset ("BTC") or unified pair ("ETH/USDT", "BTC/USDT:USDT" for a linear perp).
        venue: ccxt venue id ("binance", "binanceusdm", "coinbase", "kraken", ...); default venue if omitted.
        window_bps: an extra depth window in basis points (default windows: 10, 25, 50, 100).
    """
    deps = ctx.deps
    _window_arg(window_bps)
    inst = _instrument(deps, symbol, venue)
    view = _view(deps, inst)
    windows = list(deps.settings.analytics.depth_windows_bps)
    if window_bps is not None and window_bps not in windows:
        windows.append(float(window_bps))
    try:
        summary = analytics.book_summary(view, sorted(windows))
    except MLMError as exc:
        raise ModelRetry(str(exc)) from exc
    res = summary.model_dump(mode="json")
    res["quality_warning"] = _quality_warning(view.quality)
    res["requested_window_bps"] = window_bps
    return res


@_logged
def market_impact(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: str,
    size: float | None = None,
    notional: float | None = None,
    venue: str | None = None,
) -> dict:
    """Cost of a market order walked through the visible book: VWAP, slippage_bps vs mid and vs
    best, levels consumed, filled size, and whether the book could fill it at all.

    Args:
        symbol: base asset ("BTC") or unified pair.
        side: "buy" (walks the asks) or "sell" (walks the bids).
        size: order size in base units (e.g. 5 for 5 BTC). Give size or notional.
        notional: order size in quote units (e.g. 150000 for $150k).
        venue: ccxt venue id; default venue if omitted.
    """
    deps = ctx.deps
    problems = ArgumentProblems("market_impact")  # every bad argument in one retry
    side_e = problems.check("side", Side.parse, side)
    problems.check("size/notional", _size_args, size, notional)
    if size is None and notional is None:
        problems.add("size/notional", "market_impact needs size (base units) or notional (quote units).")
    inst = problems.check("symbol/venue", _instrument, deps, symbol, venue)
    problems.raise_if_any()
    view = _view(deps, inst)
    try:
        res = analytics.market_impact(view, side_e, size=size, notional=notional).model_dump(mode="json")
    except InsufficientLiquidityError as exc:
        res = {"venue": inst.venue, "symbol": inst.symbol, "book_ts": view.book_ts_iso, "error": str(exc)}
    except MLMError as exc:
        raise ModelRetry(str(exc)) from exc
    res["quality_warning"] = _quality_warning(view.quality)
    res["quality"] = view.quality
    return res


# ------------------------------------------------------------ multi-venue helpers

#: Default order for a venue comparison when the question names no size: quote units (the answer
#: says it is a reference order the assistant chose).
REFERENCE_NOTIONAL_QUOTE = 10_000.0

#: ccxt class names that differ from the venue id the app uses.
_CCXT_CLASS = {"gateio": "gate"}


def taker_fee_bps(deps: AgentDeps, inst: InstrumentId) -> tuple[float | None, str]:
    """Taker fee of ``inst``'s venue in bps and where it comes from.

    ``analytics.venues.taker_fee``: the settings override ``analytics.taker_fee_bps`` (keys
    ``"venue:market"`` then ``"venue"``), then the venue's published base-tier rate
    (``DEFAULT_TAKER_FEES``, with its source). A venue none of those know falls back to ccxt's
    exchange-wide public rate (``exchange.fees["trading"]["taker"]``, a fraction -> bps, no network);
    ``(None, reason)`` when nothing knows it.
    """
    venue, market = inst.venue, inst.market_type.value
    overrides = deps.settings.analytics.taker_fee_bps
    try:
        fee = analytics_venues.taker_fee(venue, market, overrides=overrides)
        return fee.fee_bps, fee.source
    except InvalidInputError:
        pass
    # taker_fee rejected the configured override (negative or not finite): passed on as configured.
    for key in (f"{venue}:{market}", venue):
        if key in overrides:
            return float(overrides[key]), f"settings analytics.taker_fee_bps[{key!r}]"
    exchange = None
    if deps.engine is not None:
        try:
            exchange = deps.engine.exchange(venue)
        except MLMError:
            exchange = None
    if exchange is None:
        try:
            import ccxt

            cls = getattr(ccxt, _CCXT_CLASS.get(venue, venue), None)
            exchange = cls() if cls is not None else None
        except Exception:  # a ccxt class that cannot be built just has no fee
            exchange = None
    taker = ((getattr(exchange, "fees", None) or {}).get("trading") or {}).get("taker")
    if taker is None:
        return None, f"no public taker fee known for {venue}"
    return round(float(taker) * 10_000, 6), f"ccxt {venue} exchange-wide public base-tier taker fee"


def _fee_table(deps: AgentDeps, views) -> tuple[dict[str, float], dict[str, str]]:
    fees, sources = {}, {}
    for v in views:
        bps, source = taker_fee_bps(deps, v.instrument)
        fees[v.instrument.venue] = 0.0 if bps is None else bps
        sources[v.instrument.venue] = source if bps is not None else f"{source}; assumed 0"
    return fees, sources


def _quote_group(symbol: str) -> tuple[str, ...]:
    """Quotes whose prices are comparable with what the user asked for: USD-like unless a pair
    with another quote was named."""
    if "/" in symbol:
        quote = symbol.upper().split("/")[1].split(":")[0]
        return USD_LIKE if quote in USD_LIKE else (quote,)
    return USD_LIKE


def venue_books(deps: AgentDeps, symbol: str, venues: list[str]) -> tuple[list, list[dict]]:
    """One synced book of ``symbol`` per venue (USD-like quotes unless the pair says otherwise).

    Returns ``(views, unavailable)``; ``unavailable`` rows are ``{"venue", "reason"}`` naming what
    the venue has instead.
    """
    market = deps.market
    group = _quote_group(symbol)
    views, missing = [], []
    for venue in venues:
        try:
            inst = market.resolve(symbol, venue)
        except (UnknownVenueError, UnknownSymbolError) as exc:
            missing.append({"venue": venue, "reason": str(exc)})
            continue
        if inst.quote not in group:
            missing.append(
                {
                    "venue": venue,
                    "reason": f"{venue} has {inst.symbol} only, quoted in {inst.quote}: its prices are "
                    f"not comparable with books quoted in {'/'.join(group)}",
                }
            )
            continue
        try:
            view = market.view(inst)
            analytics.top_of_book(view)
        except MLMError as exc:
            missing.append({"venue": venue, "reason": f"{inst}: {exc}"})
            continue
        views.append(view)
    return views, missing


def assets_on_several_venues(market: MarketData) -> str:
    """``"BTC (6 venues), ETH (5 venues)"``: bases with a USD-quoted book on two or more venues."""
    by_base: dict[str, set[str]] = {}
    for i in market.instruments():
        if i.quote in USD_LIKE:
            by_base.setdefault(i.base, set()).add(i.venue)
    ranked = sorted(((b, len(v)) for b, v in by_base.items() if len(v) >= 2), key=lambda x: (-x[1], x[0]))
    return ", ".join(f"{b} ({n} venues)" for b, n in ranked) or "none"


def _book_row(view) -> dict:
    return {
        "venue": view.instrument.venue,
        "symbol": view.instrument.symbol,
        "market_type": view.instrument.market_type.value,
        "book_ts": view.book_ts_iso,
        "quality": view.quality,
        "quality_warning": _quality_warning(view.quality),
    }


def _time_spread(views) -> dict:
    ts = [v.book_ts_ns for v in views if v.book_ts_ns is not None]
    if len(ts) < 2:
        return {"book_ts_span_s": 0.0, "books_contemporaneous": True}
    span = (max(ts) - min(ts)) / 1e9
    return {"book_ts_span_s": round(span, 3), "books_contemporaneous": span * 1000 <= 2_000}


@_logged
def compare_venues(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: str | None = None,
    size: float | None = None,
    notional: float | None = None,
    venues: list[str] | None = None,
    venue: str | None = None,
    window_bps: float | None = None,
) -> dict:
    """Compare one asset across venues: the same taker order walked through each venue's book,
    fee-adjusted cost vs that venue's mid (cost_bps = slippage + taker fee), spread_bps, depth within
    a window, arbitrage between contemporaneous books (net of both taker fees) and the
    concentration of liquidity (HHI). Each row carries its book_ts and quality: recordings of
    different venues are from different times.

    Args:
        symbol: base asset ("ETH") or unified pair ("ETH/USD"); books quoted in USD, USDT, USDC...
            are compared together (a pair with another quote compares that quote only).
        side: "buy" or "sell" (default "buy").
        size: order size in base units. notional: order size in quote units. With neither, a
            reference order of 10,000 quote units is used (and reported as such).
        venues: ccxt ids to compare (two or more); all venues with a book for the asset if omitted.
        venue: one venue of interest: it is compared against every other venue with a book.
        window_bps: depth window in bps (default 50).
    """
    deps = ctx.deps
    _size_args(size, notional)
    side_e = _side(side)
    _window_arg(window_bps)
    window = float(window_bps or deps.settings.analytics.default_window_bps)
    market = deps.market
    named = [v.strip().lower() for v in (venues or [])]
    focus = venue.strip().lower() if venue else (named[0] if len(named) == 1 else None)
    wanted = named if len(named) >= 2 else market.venues()
    if focus and focus not in wanted:
        wanted = [focus, *wanted]
    views, missing = venue_books(deps, symbol, wanted)
    if not views:
        raise ModelRetry(
            f"No venue has a comparable book for {symbol!r}"
            + (f" among {', '.join(wanted)}" if named else "")
            + ": "
            + "; ".join(m["reason"] for m in missing[:6])
            + f". Assets with USD-quoted books on several venues: {assets_on_several_venues(market)}."
        )
    defaulted = size is None and notional is None
    amount = {"size": size, "notional": notional} if not defaulted else {"notional": REFERENCE_NOTIONAL_QUOTE}
    fees, fee_sources = _fee_table(deps, views)
    try:
        cmp = analytics_venues.compare_venues(
            views,
            side_e,
            fees_bps=fees,
            window_bps=window,
            max_book_age_diff_ms=float(deps.settings.analytics.max_book_age_diff_ms),
            **amount,
        )
    except MLMError as exc:
        raise ModelRetry(str(exc)) from exc
    res = cmp.model_dump(mode="json")
    books = {v.instrument.venue: _book_row(v) for v in views}
    for row in res["venues"]:
        row.update(
            {k: books[row["venue"]][k] for k in ("market_type", "quality", "quality_warning")},
            fee_source=fee_sources[row["venue"]],
        )
    ranked = sorted((r for r in res["venues"] if r["fully_filled"]), key=lambda r: r["cost_bps"])
    for n, r in enumerate(ranked, 1):
        r["rank"] = n
    arbs = res.pop("arbitrage")
    res.update(
        symbol_requested=symbol,
        focus_venue=focus,
        venues_compared=len(views),
        unavailable=missing,
        reference_order_defaulted=defaulted,
        cost_includes_taker_fees=True,
        max_book_age_diff_ms=deps.settings.analytics.max_book_age_diff_ms,
        arbitrage_opportunities=[a for a in arbs if a["opportunity"]],
        arbitrage_pairs_checked=sum(1 for a in arbs if a["contemporaneous"]),
        arbitrage_pairs_not_contemporaneous=sum(1 for a in arbs if not a["contemporaneous"]),
        arbitrage_best_edge=max(
            (a for a in arbs if a["contemporaneous"]), key=lambda a: a["edge_bps"], default=None
        ),
        **_time_spread(views),
    )
    return res


@_logged
def venue_health(
    ctx: RunContext[AgentDeps], venue: str | None = None, venues: list[str] | None = None
) -> dict:
    """Health of every book (synced, sequence gaps, resyncs, checksum failures, crossed and stale
    flags, age of the last update, per venue and instrument) and the state of each venue's REST
    circuit breaker (closed / open / half_open, consecutive failures, last error).

    Args:
        venue: only this venue (ccxt id, e.g. binance); None for every venue.
        venues: only these venues.
    """
    deps = ctx.deps
    market = deps.market
    asked = [v.lower() for v in ([venue] if venue else []) + list(venues or [])]
    unknown = [v for v in asked if v not in market.registry.venues]
    if unknown:
        raise ModelRetry(
            f"Unknown venue {', '.join(unknown)}; valid venues: {', '.join(market.registry.venues)}."
        )
    if market.is_recorded:
        # Recordings load lazily: report on the books asked about, not only those loaded so far.
        if asked:
            for inst in (i for v in asked for i in market.instruments(v)):
                market.ensure_loaded(inst)
        else:
            market.load_all()
    rows = []
    for inst in market.store.instruments():
        if asked and inst.venue not in asked:
            continue
        q = market.quality(inst)
        rows.append({"venue": inst.venue, "symbol": inst.symbol, **q, "warning": _quality_warning(q)})
    breakers = [h.to_dict() for h in deps.engine.health()] if deps.engine is not None else []
    breakers = [b for b in breakers if not asked or b.get("venue") in asked]
    res = {
        "books": rows,
        "circuit_breakers": breakers,
        "open_breakers": [b["venue"] for b in breakers if b.get("state") != "closed"],
        "books_total": len(rows),
        "healthy": sum(1 for r in rows if r["warning"] is None),
        "unhealthy": sum(1 for r in rows if r["warning"] is not None),
        "mode": "recorded" if market.is_recorded else "live",
    }
    return res


@_logged
async def price_history(
    ctx: RunContext[AgentDeps],
    symbol: str,
    lookback_days: float | None = None,
    venue: str | None = None,
    timeframe: str | None = None,
) -> dict:
    """Price trend and realised volatility of one asset over a lookback window ending at the
    latest stored candle (the data's own end time on recorded data).

    Realised volatility: sample standard deviation of close-to-close log returns, annualised by
    sqrt(periods per year). Trend: return % first-to-last close and the least-squares slope of
    ln(close) per day.

    Args:
        symbol: base asset ("BTC") or pair ("BTC/USDT"); a base asset uses its USDT pair.
        lookback_days: window length in days (default 7).
        venue: ccxt venue id of the candles (default "binance").
        timeframe: candle timeframe ("5m", "1h", ...); chosen from what is stored if omitted.
    """
    deps = ctx.deps
    if deps.history is None:
        raise ModelRetry("Candle history is not available in this deployment.")
    days = float(lookback_days or 7)
    if not (0 < days <= 3650):
        raise ModelRetry(f"lookback_days must be in (0, 3650], got {lookback_days!r}.")
    venue = (venue or deps.settings.agent.default_venue).lower()
    pair = default_pair(symbol, deps.settings)
    try:
        w = await deps.history.window(venue, pair, days, timeframe)
        h = await deps.history.history()
        candles = await h.candles(pair, venue, w.timeframe, w.start_ms, w.end_ms)  # read once for both
        vol = volatility_of_candles(candles).to_dict()
        trend = trend_of_candles(candles).to_dict()
    except (NoHistoryError, InsufficientHistoryError) as exc:
        raise ModelRetry(str(exc)) from exc
    res = {
        "venue": venue,
        "symbol": pair,
        "timeframe": w.timeframe,
        "lookback_days": days,
        "window_start": iso_ns(vol["start_ms"] * 1_000_000),
        "window_end": iso_ns(vol["end_ms"] * 1_000_000),
        "data_end": iso_ns(int(w.series["last_ts_ms"]) * 1_000_000),
        "volatility": vol,
        "trend": trend,
    }
    return res


TOOLS = (order_book, market_impact, compare_venues, venue_health, price_history)
