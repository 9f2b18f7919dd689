"""The assistant's tools: thin adapters over the service layer (``services``).

Each tool passes its arguments to one service method; that method's typed answer (the same answer
REST, the CLI and the MCP server return) is logged unchanged and the model reads its compact view
(``agent/compact.py``: internal counters and empty fields left out). Every call is logged in
``deps.tool_log`` (arguments, typed result or the refusal) so the answer can be checked against it
(grounding). A bad argument or a question the data cannot answer raises ``ModelRetry`` with the
service's message, which says what is valid; an LLM corrects itself from it and the offline model
turns it into a plain answer.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_ai import ModelRetry, RunContext, ToolReturn

from market_liquidity_monitor.agent.arguments import (
    AlertComparison,
    AlertDepthSide,
    AlertMetricName,
    DepthUnit,
    ExecutionSchedule,
    HistoryMetric,
    HistoryPeriod,
    Timeframe,
    TradeSide,
)
from market_liquidity_monitor.agent.compact import compact_result
from market_liquidity_monitor.agent.retries import ArgumentProblems
from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.services.alerting import (
    AlertListAnswer,
    CreateAlertAnswer,
    LiquidityAlertsAnswer,
)
from market_liquidity_monitor.services.health import HealthAnswer
from market_liquidity_monitor.services.history import LiquidityHistoryAnswer
from market_liquidity_monitor.services.liquidity import (
    CompareAnswer,
    ImpactAnswer,
    MaxSizeAnswer,
    OrderBookAnswer,
    RouteAnswer,
    check_amount,
    parse_side,
)
from market_liquidity_monitor.services.trading import BacktestAnswer, PairsAnswer, PriceHistoryAnswer

if TYPE_CHECKING:
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.services import Services


@dataclass
class ToolCallRecord:
    """One tool call of a run: ``result`` is the typed answer, or None with ``error`` (the refusal)."""

    tool: str
    args: dict[str, Any]
    result: BaseModel | None = None
    error: str | None = None

    def result_dict(self) -> dict[str, Any]:
        if self.result is None:
            return {"error": self.error}
        return self.result.model_dump(mode="json")

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args, "result": self.result_dict()}


@dataclass
class AgentDeps:
    """What a run needs: the service container and the log of this run's tool calls."""

    services: Services
    tool_log: list[ToolCallRecord] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.services.settings


def _logged(fn):
    """Run a tool over the services: ``MLMError`` -> ``ModelRetry`` with its message, and every call
    recorded in ``deps.tool_log`` (arguments bound from the signature, None left out). The run gets
    a ``ToolReturn``: the model's compact view of the answer (``compact_result``), the typed answer
    as its ``metadata``."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    async def wrapper(ctx: RunContext[AgentDeps], *args, **kwargs):
        bound = signature.bind(ctx, *args, **kwargs)
        call_args = {k: v for k, v in list(bound.arguments.items())[1:] if v is not None}
        try:
            result = await fn(ctx, *args, **kwargs)
        except MLMError as exc:
            ctx.deps.tool_log.append(ToolCallRecord(fn.__name__, call_args, error=str(exc)))
            raise ModelRetry(str(exc)) from exc
        except ModelRetry as exc:
            ctx.deps.tool_log.append(ToolCallRecord(fn.__name__, call_args, error=str(exc.message)))
            raise
        ctx.deps.tool_log.append(ToolCallRecord(fn.__name__, call_args, result=result))
        # The model reads the compact view; the typed answer rides along as metadata (not sent to
        # a provider) for the offline model, and in full in the tool log (agent/compact.py).
        return ToolReturn(return_value=compact_result(result), metadata=result)

    return wrapper


# --------------------------------------------------------------------------- books


@_logged
async def order_book(
    ctx: RunContext[AgentDeps], symbol: str, venue: str | None = None, window_bps: float | None = None
) -> OrderBookAnswer:
    """Order-book summary of one instrument: best bid/ask, mid, spread (and spread_bps), microprice,
    depth within bps windows of mid (base size and quote notional per side), imbalance, and the
    book's source, timestamp and quality.

    Args:
        symbol: base asset ("BTC") or unified pair ("ETH/USDT", "BTC/USDT:USDT" for a linear perp).
        venue: ccxt venue id ("binance", "binanceusdm", "coinbase", "kraken", ...); default venue if omitted.
        window_bps: an extra depth window in basis points (default windows: 10, 25, 50, 100).
    """
    return await ctx.deps.services.liquidity.order_book(symbol, venue, window_bps)


@_logged
async def market_impact(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: TradeSide | None = None,
    size: float | None = None,
    notional: float | None = None,
    venue: str | None = None,
) -> ImpactAnswer:
    """Cost of a market order walked through the visible book: VWAP, slippage_bps vs mid and vs
    best, levels consumed, filled size, and whether the book could fill it at all.

    Args:
        symbol: base asset ("BTC") or unified pair.
        side: "buy" (walks the asks) or "sell" (walks the bids); buy if omitted.
        size: order size in base units (e.g. 5 for 5 BTC). Give size or notional.
        notional: order size in quote units (e.g. 150000 for $150k).
        venue: ccxt venue id; default venue if omitted.
    """
    problems = ArgumentProblems("market_impact")  # every bad argument in one retry (agent/retries.py)
    problems.check("side", parse_side, side)
    problems.check("size/notional", check_amount, size, notional)
    await problems.acheck("symbol/venue", ctx.deps.services.books.resolve, symbol, venue)
    problems.raise_if_any()
    return await ctx.deps.services.liquidity.impact(symbol, side, size, notional, venue)


@_logged
async def max_size_within_slippage(
    ctx: RunContext[AgentDeps],
    symbol: str,
    max_slippage_bps: float,
    side: TradeSide | None = None,
    venue: str | None = None,
) -> MaxSizeAnswer:
    """The largest market order whose VWAP slippage vs mid stays within a limit: size (base units),
    notional (quote units), VWAP and levels consumed; says when the visible book ends first.

    Args:
        symbol: base asset ("BTC") or unified pair.
        max_slippage_bps: the slippage limit in basis points vs mid (e.g. 10).
        side: "buy" or "sell"; buy if omitted.
        venue: ccxt venue id; default venue if omitted.
    """
    return await ctx.deps.services.liquidity.max_size(symbol, side, max_slippage_bps, venue)


@_logged
async def compare_venues(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: TradeSide | None = None,
    size: float | None = None,
    notional: float | None = None,
    venues: list[str] | None = None,
    venue: str | None = None,
    window_bps: float | None = None,
) -> CompareAnswer:
    """Compare one asset across venues: the same taker order walked through each venue's book,
    fee-adjusted cost vs that venue's mid (cost_bps = slippage + taker fee, fee source named),
    spread_bps, depth within a window, arbitrage between contemporaneous books (net of both taker
    fees) and the concentration of liquidity (HHI). Each row carries its book's source, time and
    quality.

    Args:
        symbol: base asset ("ETH") or unified pair ("ETH/USD"); books quoted in USD, USDT, USDC...
            are compared together (a pair with another quote compares that quote only).
        side: "buy" or "sell" (default "buy").
        size: order size in base units. With neither size nor notional, a reference order of
            10,000 quote units is compared (and reported as such).
        notional: order size in quote units.
        venues: ccxt ids to compare (two or more); every venue with a book of the asset if omitted.
        venue: one venue of interest: it is compared against every other venue with a book.
        window_bps: depth window in bps (default 50).
    """
    return await ctx.deps.services.liquidity.compare(symbol, side, size, notional, venues, venue, window_bps)


@_logged
async def route_order(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: TradeSide | None = None,
    size: float | None = None,
    notional: float | None = None,
    venues: list[str] | None = None,
    exclude_venues: list[str] | None = None,
) -> RouteAnswer:
    """Smart-order-routing simulation (nothing is sent to a venue): the least-cost split of one
    taker order across the venues' books against three baselines (everything on the best single
    venue, pro-rata by depth within 50 bps, equal split), with savings in bps and quote units;
    costs include taker fees. Stale, crossed, unsynced, circuit-open or non-contemporaneous books
    are excluded and named with the reason.

    Args:
        symbol: base asset ("BTC") or unified pair; books quoted in USD, USDT, USDC... are merged.
        side: "buy" or "sell" (default "buy").
        size: base units to trade. Give size or notional.
        notional: quote units incl. fees (the outlay of a buy, the net proceeds of a sell).
        venues: ccxt ids to route across; every venue with a book if omitted.
        exclude_venues: ccxt ids to leave out.
    """
    return await ctx.deps.services.liquidity.route(symbol, side, size, notional, venues, exclude_venues)


# --------------------------------------------------------------------------- history


@_logged
async def backtest_execution(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: TradeSide | None = None,
    size: float | None = None,
    notional: float | None = None,
    lookback_days: float | None = None,
    timeframe: Timeframe | None = None,
    venue: str | None = None,
    schedule: ExecutionSchedule | None = None,
    at: str | None = None,
) -> BacktestAnswer:
    """How one taker order would have performed over a past window: its fills on the modelled book,
    cost vs the arrival price (market move, impact, taker fee), P&L marked to the window's last
    close, the book model used and its validated error; plus, as context, the cost of the same size
    at every candle (avg/max bps, high-risk intervals) and the candle source.

    Args:
        symbol: base asset ("SOL") or pair ("SOL/USDT"); a base asset uses its USDT pair.
        side: "buy" or "sell" (default "buy").
        size: order size in base units. Give size or notional.
        notional: order size in quote units.
        lookback_days: window in days ending at the data's last candle (default 7).
        timeframe: candle timeframe ("5m", "1h"); chosen from what is stored if omitted.
        venue: ccxt id of the candles (default "binance").
        schedule: "arrival" (the whole order at the window's start, default), "twap" (equal slices
            over the window) or "vwap" (slices in proportion to each candle's volume).
        at: ISO 8601 UTC time of a single order (schedule "arrival"); the window's start if omitted.
    """
    return await ctx.deps.services.trading.backtest(
        symbol, side, size, notional, lookback_days, timeframe, venue, schedule=schedule, at=at
    )


@_logged
async def pairs_stats(
    ctx: RunContext[AgentDeps],
    symbol_a: str,
    symbol_b: str,
    timeframe: Timeframe | None = None,
    lookback_days: float | None = None,
    venue: str | None = None,
    size: float | None = None,
) -> PairsAnswer:
    """Pairs statistics of two assets from their close prices: hedge ratio (OLS and Huber) of
    log a on log b, spread z-score (48-point rolling window), ADF test of the spread,
    Engle-Granger cointegration, rolling correlation of log returns, half-life of mean reversion,
    and the round-trip taker cost of the spread trade on both real books (each leg's fee included).

    Args:
        symbol_a: first asset ("ETH"), the dependent leg.
        symbol_b: second asset ("BTC"), the hedge leg.
        timeframe: candle timeframe ("1h" default, "5m", ...).
        lookback_days: window in days ending at the data's last common candle (default 30).
        venue: ccxt id of the candles (default "binance").
        size: base units of leg a for the trade-cost estimate (default: 10,000 quote units of a).
    """
    return await ctx.deps.services.trading.pairs(symbol_a, symbol_b, timeframe, lookback_days, venue, size)


@_logged
async def price_history(
    ctx: RunContext[AgentDeps],
    symbol: str,
    lookback_days: float | None = None,
    venue: str | None = None,
    timeframe: Timeframe | None = None,
) -> PriceHistoryAnswer:
    """Price trend and realised volatility of one asset over a lookback window ending at the
    latest candle (the data's own end time on recorded data): return % first-to-last close, the
    least-squares slope of ln(close) per day, and the annualised standard deviation of
    close-to-close log returns.

    Args:
        symbol: base asset ("BTC") or pair ("BTC/USDT"); a base asset uses its USDT pair.
        lookback_days: window length in days (default 7).
        venue: ccxt venue id of the candles (default "binance").
        timeframe: candle timeframe ("5m", "1h", ...); chosen from what is stored if omitted.
    """
    return await ctx.deps.services.trading.price_history(symbol, lookback_days, venue, timeframe)


@_logged
async def liquidity_history(
    ctx: RunContext[AgentDeps],
    symbol: str,
    venue: str | None = None,
    metric: HistoryMetric = "depth",
    window_bps: float | None = None,
    lookback_s: float | None = None,
    period: HistoryPeriod | None = None,
    start: str | None = None,
    end: str | None = None,
    unit: DepthUnit = "quote",
) -> LiquidityHistoryAnswer:
    """How a book's liquidity changed over a window, from the stored liquidity history (a row per
    book per second of book time): the series, min/max and when they occurred, first/last and the
    change, and the stored rows it came from. On recorded data "now" is the recording's end.

    Args:
        symbol: base asset ("BTC") or pair ("ETH/USDT").
        venue: ccxt venue id; every venue that lists the asset if omitted.
        metric: depth, bid_depth, ask_depth, imbalance, spread_bps, mid or microprice.
        window_bps: depth window in bps for depth/imbalance (one of the recorded windows: 10, 25, 50, 100).
        lookback_s: window length in seconds before now (3600 = the last hour).
        period: "today" (UTC midnight to now).
        start: window start (ISO 8601 UTC) instead of a lookback.
        end: window end (ISO 8601 UTC); now if omitted.
        unit: depth in "quote" (notional) or "base" units.
    """
    return await ctx.deps.services.history.liquidity_history(
        symbol, venue, metric, window_bps, start=start, end=end, lookback_s=lookback_s, period=period,
        unit=unit,
    )  # fmt: skip


# --------------------------------------------------------------------------- health and alerts


@_logged
async def venue_health(
    ctx: RunContext[AgentDeps], venue: str | None = None, venues: list[str] | None = None
) -> HealthAnswer:
    """Health of every book (source, synced, sequence gaps, resyncs, checksum failures, crossed and
    stale flags, age of the last update, per venue and instrument) and each venue's REST circuit
    breaker (closed / open / half_open, consecutive failures, last error).

    Args:
        venue: only this venue (ccxt id, e.g. binance); every venue if omitted.
        venues: only these venues.
    """
    return await ctx.deps.services.health.venue_health(venue, venues)


def _alert_answers(deps: AgentDeps):
    answers = deps.services.alert_answers
    if answers is None:
        raise ModelRetry("Liquidity alerts are not available in this deployment (no alert service).")
    return answers


@_logged
async def create_alert(
    ctx: RunContext[AgentDeps],
    symbol: str,
    metric: AlertMetricName,
    comparison: AlertComparison,
    threshold: float,
    venue: str | None = None,
    window_bps: float | None = None,
    side: AlertDepthSide | None = None,
    lookback: int | None = None,
    period_s: float | None = None,
    cooldown_s: float | None = None,
) -> CreateAlertAnswer:
    """Create a liquidity alert rule on one book, evaluated on every observation of it.

    Args:
        symbol: base asset ("BTC") or unified pair; resolved to the venue's book.
        metric: mid_price (quote), spread_bps, depth_notional (quote), depth_size (base),
            imbalance (-1..1), zscore, volume (base), volatility (bps).
        comparison: above, below, crosses_above, crosses_below, crosses.
        threshold: in the metric's unit.
        venue: ccxt id; default venue if omitted.
        window_bps: depth window for depth_* and imbalance (default 50).
        side: both, bid or ask (for depth_*).
        lookback: observations for zscore and volatility (default 20).
        period_s: trailing seconds for volume (default 300).
        cooldown_s: seconds between two firings of the rule (default 300).
    """
    return await _alert_answers(ctx.deps).create(
        symbol, metric, comparison, threshold, venue, window_bps, side, lookback, period_s, cooldown_s
    )


@_logged
async def list_alerts(ctx: RunContext[AgentDeps]) -> AlertListAnswer:
    """Every alert rule (id, symbol, venue, metric, comparison, threshold, cooldown) and how many
    events each has fired recently."""
    return await _alert_answers(ctx.deps).list()


@_logged
async def liquidity_alerts(
    ctx: RunContext[AgentDeps],
    symbol: str,
    venue: str | None = None,
    window_bps: float | None = None,
    drop_ratio: float | None = None,
    lookback_days: float | None = None,
) -> LiquidityAlertsAnswer:
    """Recent alert firings and liquidity anomalies of one asset: events fired by the rules,
    liquidity crunches (depth within window_bps falling below drop_ratio of its rolling median
    until it recovers) and feed anomalies of each book (crossed, stale, gaps, checksum failures).

    Args:
        symbol: base asset ("BTC") or unified pair.
        venue: one ccxt id; every venue with a book of the asset if omitted.
        window_bps: depth window of the crunch detection in bps (default 50).
        drop_ratio: a crunch starts when depth falls below this fraction of its rolling median
            (0..1, default 0.5).
        lookback_days: only events and crunches of the last N days (e.g. 1 for "the past 24 hours").
    """
    return await _alert_answers(ctx.deps).liquidity_alerts(
        symbol, venue, window_bps, drop_ratio, lookback_days
    )


TOOLS = (
    order_book,
    market_impact,
    max_size_within_slippage,
    compare_venues,
    route_order,
    backtest_execution,
    pairs_stats,
    price_history,
    liquidity_history,
    venue_health,
    create_alert,
    list_alerts,
    liquidity_alerts,
)
