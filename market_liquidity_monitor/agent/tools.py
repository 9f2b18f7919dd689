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
from market_liquidity_monitor.ingest.clock import iso_ns
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.storage.history import InsufficientHistoryError, NoHistoryError


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


def _quality_warning(q: dict) -> str | None:
    problems = []
    if not q.get("synced", True):
        problems.append("not synced")
    if q.get("crossed"):
        problems.append("crossed (best bid >= best ask)")
    if q.get("stale"):
        problems.append(f"stale (last update {q.get('age_ms')} ms before now)")
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


def _record(deps: AgentDeps, tool: str, args: dict, result: dict) -> dict:
    deps.tool_log.append(ToolCallRecord(tool, {k: v for k, v in args.items() if v is not None}, result))
    return result


def _view(deps: AgentDeps, inst: InstrumentId):
    try:
        return deps.market.view(inst)
    except BookNotReadyError as exc:
        raise ModelRetry(f"{exc}. Try again shortly or ask about another venue.") from exc


def _size_args(size: float | None, notional: float | None) -> None:
    for name, v in (("size", size), ("notional", notional)):
        if v is not None and (not isinstance(v, int | float) or not math.isfinite(v) or v <= 0):
            raise ModelRetry(f"{name} must be a positive number, got {v!r}.")
    if size is not None and notional is not None:
        raise ModelRetry("Give either size (base units) or notional (quote units), not both.")


def _logged(fn):
    """Record a tool call that failed on its arguments (ModelRetry) in the run's tool log too.
    Works for sync and async tools."""

    def log_failure(exc: ModelRetry, ctx: RunContext[AgentDeps], args, kwargs) -> None:
        bound = inspect.signature(fn).bind(ctx, *args, **kwargs)
        call_args = {k: v for k, v in list(bound.arguments.items())[1:] if v is not None}
        ctx.deps.tool_log.append(ToolCallRecord(fn.__name__, call_args, {"error": str(exc.message)}))

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(ctx: RunContext[AgentDeps], *args, **kwargs):
            try:
                return await fn(ctx, *args, **kwargs)
            except ModelRetry as exc:
                log_failure(exc, ctx, args, kwargs)
                raise

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(ctx: RunContext[AgentDeps], *args, **kwargs):
        try:
            return fn(ctx, *args, **kwargs)
        except ModelRetry as exc:
            log_failure(exc, ctx, args, kwargs)
            raise

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
    args = {"symbol": symbol, "venue": venue, "window_bps": window_bps}
    if window_bps is not None and not (isinstance(window_bps, int | float) and 0 < window_bps <= 10_000):
        raise ModelRetry(f"window_bps must be in (0, 10000], got {window_bps!r}.")
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
    return _record(deps, "order_book", args, res)


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
    args = {"symbol": symbol, "side": side, "size": size, "notional": notional, "venue": venue}
    try:
        side_e = Side.parse(side)
    except InvalidInputError as exc:
        raise ModelRetry(str(exc)) from exc
    _size_args(size, notional)
    if size is None and notional is None:
        raise ModelRetry("market_impact needs size (base units) or notional (quote units).")
    inst = _instrument(deps, symbol, venue)
    view = _view(deps, inst)
    try:
        res = analytics.market_impact(view, side_e, size=size, notional=notional).model_dump(mode="json")
    except InsufficientLiquidityError as exc:
        res = {"venue": inst.venue, "symbol": inst.symbol, "book_ts": view.book_ts_iso, "error": str(exc)}
    except MLMError as exc:
        raise ModelRetry(str(exc)) from exc
    res["quality_warning"] = _quality_warning(view.quality)
    res["quality"] = view.quality
    return _record(deps, "market_impact", args, res)


@_logged
def compare_venues(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: str | None = None,
    size: float | None = None,
    notional: float | None = None,
    venues: list[str] | None = None,
    window_bps: float | None = None,
) -> dict:
    """Compare one asset across venues: per venue spread_bps, depth within a window and, when a
    size or notional is given, the VWAP and slippage_bps of that order; names the cheapest venue.

    Books come from different venues and possibly different times: each row carries its book_ts.

    Args:
        symbol: base asset ("SOL") or unified pair.
        side: "buy" or "sell" (default "buy" when a size is given).
        size: order size in base units. notional: order size in quote units.
        venues: ccxt ids to compare; all venues with a book for the asset if omitted.
        window_bps: depth window (default 50).
    """
    deps = ctx.deps
    args = {
        "symbol": symbol,
        "side": side,
        "size": size,
        "notional": notional,
        "venues": venues,
        "window_bps": window_bps,
    }
    _size_args(size, notional)
    side_e = Side.parse(side) if side else Side.BUY
    window = float(window_bps or deps.settings.analytics.default_window_bps)
    market = deps.market
    wanted = [v.lower() for v in venues] if venues else market.venues()
    rows, missing = [], []
    for venue in wanted:
        try:
            inst = market.resolve(symbol, venue)
            view = market.view(inst)
        except UnknownVenueError as exc:
            missing.append({"venue": venue, "reason": str(exc)})
            continue
        except (UnknownSymbolError, BookNotReadyError) as exc:
            missing.append({"venue": venue, "reason": str(exc)})
            continue
        try:
            tob = analytics.top_of_book(view)
            depth = analytics.depth_within_bps(view, window)
        except MLMError as exc:
            missing.append({"venue": venue, "reason": str(exc)})
            continue
        row = {
            "venue": inst.venue,
            "symbol": inst.symbol,
            "book_ts": view.book_ts_iso,
            "mid_price": tob.mid_price,
            "spread_bps": tob.spread_bps,
            "bid_depth_notional": depth.bid_notional,
            "ask_depth_notional": depth.ask_notional,
            "window_bps": window,
            "quality_warning": _quality_warning(view.quality),
        }
        if size is not None or notional is not None:
            try:
                imp = analytics.market_impact(view, side_e, size=size, notional=notional)
                row.update(
                    vwap=imp.vwap,
                    slippage_bps=imp.slippage_bps,
                    filled_size=imp.filled_size,
                    fully_filled=imp.fully_filled,
                )
            except MLMError as exc:
                row.update(error=str(exc))
        rows.append(row)
    if not rows:
        raise ModelRetry(
            f"No venue has a book for {symbol!r}: "
            + "; ".join(m["reason"] for m in missing)
            + f". Venues with books: {', '.join(market.venues())}."
        )
    best = None
    if size is not None or notional is not None:
        ok = [r for r in rows if r.get("fully_filled")]
        if ok:
            best = min(ok, key=lambda r: r["slippage_bps"])
    else:
        best = min(rows, key=lambda r: r["spread_bps"])
    res = {
        "symbol": symbol,
        "side": side_e.value if (size or notional) else side,
        "size": size,
        "notional": notional,
        "rows": rows,
        "unavailable": missing,
        "best_venue": best["venue"] if best else None,
        "best_symbol": best["symbol"] if best else None,
        "ranked_by": "slippage_bps" if (size or notional) else "spread_bps",
    }
    return _record(deps, "compare_venues", args, res)


def venue_health(ctx: RunContext[AgentDeps]) -> dict:
    """Health of every book we hold (synced, sequence gaps, resyncs, checksum failures, crossed
    and stale flags, age of the last update, per venue and instrument) and the state of each
    venue's REST circuit breaker (closed / open / half_open, consecutive failures, last error)."""
    deps = ctx.deps
    market = deps.market
    rows = []
    for inst in market.store.instruments():
        q = market.quality(inst)
        rows.append({"venue": inst.venue, "symbol": inst.symbol, **q, "warning": _quality_warning(q)})
    breakers = [h.to_dict() for h in deps.engine.health()] if deps.engine is not None else []
    res = {
        "books": rows,
        "circuit_breakers": breakers,
        "open_breakers": [b["venue"] for b in breakers if b.get("state") != "closed"],
        "books_total": len(rows),
        "healthy": sum(1 for r in rows if r["warning"] is None),
        "unhealthy": sum(1 for r in rows if r["warning"] is not None),
        "mode": "recorded" if market.is_recorded else "live",
    }
    return _record(deps, "venue_health", {}, res)


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
    args = {"symbol": symbol, "lookback_days": lookback_days, "venue": venue, "timeframe": timeframe}
    if deps.history is None:
        raise ModelRetry("Candle history is not available in this deployment.")
    days = float(lookback_days or 7)
    if not (0 < days <= 3650):
        raise ModelRetry(f"lookback_days must be in (0, 3650], got {lookback_days!r}.")
    venue = (venue or deps.settings.agent.default_venue).lower()
    pair = symbol.upper() if "/" in symbol else f"{symbol.upper()}/{deps.settings.agent.default_quote}"
    try:
        cov = await deps.history.coverage(venue, pair)
        if not cov:
            raise NoHistoryError(f"No candles stored for {pair} on {venue}.")
        series = next((c for c in cov if c["timeframe"] == timeframe), None) if timeframe else None
        series = series or deps.history.pick_timeframe(cov, days)
        tf = timeframe or series["timeframe"]
        end_ms = int(series["last_ts_ms"]) + 1
        start_ms = end_ms - int(days * 86_400_000)
        h = await deps.history.history()
        vol = (await h.realised_volatility(pair, venue, tf, start_ms, end_ms)).to_dict()
        trend = (await h.trend(pair, venue, tf, start_ms, end_ms)).to_dict()
    except (NoHistoryError, InsufficientHistoryError) as exc:
        raise ModelRetry(str(exc)) from exc
    res = {
        "venue": venue,
        "symbol": pair,
        "timeframe": tf,
        "lookback_days": days,
        "window_start": iso_ns(vol["start_ms"] * 1_000_000),
        "window_end": iso_ns(vol["end_ms"] * 1_000_000),
        "data_end": iso_ns((end_ms - 1) * 1_000_000),
        "volatility": vol,
        "trend": trend,
    }
    return _record(deps, "price_history", args, res)


TOOLS = (order_book, market_impact, compare_venues, venue_health, price_history)
