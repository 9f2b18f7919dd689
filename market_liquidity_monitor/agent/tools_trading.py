"""Assistant tools that plan or replay trades: smart order routing across venues, execution
backtests over candle history and pairs statistics. Thin wrappers like ``agent.tools``: resolve
the books and candles, call one analytics function, return a JSON-able dict logged in the run.

Every book used is reported with its ``book_ts`` (ISO 8601 UTC) and quality counters.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from pydantic_ai import ModelRetry, RunContext

from market_liquidity_monitor import analytics
from market_liquidity_monitor.agent.tools import (
    AgentDeps,
    _book_row,
    _fee_table,
    _logged,
    _side,
    _size_args,
    _time_spread,
    assets_on_several_venues,
    taker_fee_bps,
    venue_books,
)
from market_liquidity_monitor.analytics import backtest as bt
from market_liquidity_monitor.analytics import pairs as pairs_mod
from market_liquidity_monitor.analytics import routing
from market_liquidity_monitor.domain.errors import (
    InsufficientLiquidityError,
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.instrument import MarketType, Side
from market_liquidity_monitor.history_service import CandleWindow, default_pair
from market_liquidity_monitor.ingest.clock import iso_ns
from market_liquidity_monitor.storage.history import (
    InsufficientHistoryError,
    NoHistoryError,
    realised_volatility_of,
)
from market_liquidity_monitor.storage.timeframes import timeframe_ms

#: Pair-trade cost is shown for a reference position of this many quote units of leg a when the
#: question names no size.
PAIR_REFERENCE_NOTIONAL_QUOTE = 10_000.0
#: Pairs statistics look back this many days when the question names no window.
PAIRS_DEFAULT_LOOKBACK_DAYS = 30.0
#: Candle timeframe for pairs statistics when the question names none.
PAIRS_DEFAULT_TIMEFRAME = "1h"
#: Execution backtests look back this many days when the question names no window.
BACKTEST_DEFAULT_LOOKBACK_DAYS = 7.0


def _lookback(days: float | None, default: float) -> float:
    value = default if days is None else days
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value <= 3650):
        raise ModelRetry(f"lookback_days must be a number in (0, 3650], got {days!r}.")
    return float(value)


# ----------------------------------------------------------------------------- routing


@_logged
def route_order(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: str | None = None,
    size: float | None = None,
    notional: float | None = None,
    venues: list[str] | None = None,
    exclude_venues: list[str] | None = None,
) -> dict:
    """Smart-order-routing simulation: the least-cost split of one taker order across the venues'
    books (greedy walk of the merged fee-adjusted book, optimal for visible liquidity) against
    three baselines: everything on the best single venue, pro-rata by depth within 50 bps, equal
    split. Savings in bps and quote units; costs include taker fees. Nothing is sent to a venue.

    Books that are not synced, crossed, stale, behind an open circuit breaker, or not
    contemporaneous with the freshest book (more than ``analytics.stale_after_ms`` older) are
    excluded and named with the reason.

    Args:
        symbol: base asset ("BTC") or unified pair; books quoted in USD, USDT, USDC... are merged.
        side: "buy" or "sell" (default "buy").
        size: base units to trade. notional: quote units incl. fees (the outlay of a buy, the net
            proceeds of a sell). Give one of them.
        venues: ccxt ids to route across; all venues with a book if omitted.
        exclude_venues: ccxt ids to leave out.
    """
    deps = ctx.deps
    _size_args(size, notional)
    if size is None and notional is None:
        raise ModelRetry("route_order needs size (base units) or notional (quote units incl. fees).")
    side_e = _side(side)
    market = deps.market
    wanted = [v.strip().lower() for v in venues] if venues else market.venues()
    views, missing = venue_books(deps, symbol, wanted)
    if not views:
        raise ModelRetry(
            f"No venue has a book for {symbol!r} to route across: "
            + "; ".join(m["reason"] for m in missing[:6])
            + f". Assets with USD-quoted books on several venues: {assets_on_several_venues(market)}."
        )
    open_breakers = set()
    if deps.engine is not None:
        open_breakers = {h.venue for h in deps.engine.health() if str(h.to_dict().get("state")) != "closed"}
    excluded = routing.routing_exclusions(
        views,
        max_age_diff_ms=deps.settings.analytics.stale_after_ms,
        open_venues=open_breakers,
        requested={v.strip().lower(): "excluded at your request" for v in exclude_venues or []},
    )
    used = [v for v in views if v.instrument.venue not in excluded]
    if not used:
        raise ModelRetry(
            f"Every book of {symbol!r} is excluded: "
            + "; ".join(f"{k}: {r}" for k, r in excluded.items())
            + "."
        )
    fees, fee_sources = _fee_table(deps, used)
    try:
        plan = routing.route_order(
            views, side_e, size=size, notional=notional, fees_bps=fees, excluded=excluded
        )
    except MLMError as exc:
        raise ModelRetry(str(exc)) from exc
    res = plan.model_dump(mode="json")
    best = next((b for b in res["baselines"] if b["name"] == "best_single_venue"), None)
    # The venue the best-single-venue baseline puts everything on: best fee-adjusted top of book.
    pick = min if side_e is Side.BUY else max
    single = pick(res["venues"], key=lambda v: v["best_price_incl_fees"])["venue"]
    res.update(
        symbol_requested=symbol,
        venues_considered=len(views),
        venues_used=len(used),
        books=[_book_row(v) for v in used],
        unavailable=missing,
        fee_sources=fee_sources,
        cost_includes_taker_fees=True,
        best_single_venue=single,
        savings_vs_best_single_venue_bps=best["savings_bps"] if best else None,
        savings_vs_best_single_venue_quote=best["savings_quote"] if best else None,
        **_time_spread(used),
    )
    return res


# ---------------------------------------------------------------------------- candles


async def _candles(deps: AgentDeps, window: CandleWindow) -> pd.DataFrame:
    """The candles of ``window`` as a frame indexed by UTC time."""
    return (await deps.history.candles(window)).set_index("ts")


# ---------------------------------------------------------------------------- backtest


@_logged
async def backtest_execution(
    ctx: RunContext[AgentDeps],
    symbol: str,
    side: str | None = None,
    size: float | None = None,
    notional: float | None = None,
    lookback_days: float | None = None,
    timeframe: str | None = None,
    venue: str | None = None,
) -> dict:
    """What a taker order would have cost at every candle of a past window: slippage vs mid
    (avg/max/min/median bps), high-risk (> 200 bps) and optimal (< 50 bps) interval counts, average
    fill price, total cost, and the volatility profile (ATR and realised volatility).

    Candles carry no book, so each candle gets a modelled book: calibrated from the real recorded
    book of the instrument when one exists (its depth profile scaled by candle volume and widened
    by ATR; analytics.backtest), with the model's error against that real book; otherwise the
    documented default book model (an assumption, said so in ``model_source``).

    Args:
        symbol: base asset ("SOL") or pair ("SOL/USDT"); a base asset uses its USDT pair.
        side: "buy" or "sell" (default "buy").
        size: base units per interval. notional: quote units per interval. Give one of them.
        lookback_days: window in days ending at the data's last candle (default 7).
        timeframe: candle timeframe ("5m", "1h"); chosen from what is stored if omitted.
        venue: ccxt id of the candles (default "binance").
    """
    deps = ctx.deps
    _size_args(size, notional)
    if size is None and notional is None:
        raise ModelRetry("backtest_execution needs size (base units) or notional (quote units) per interval.")
    if deps.history is None:
        raise ModelRetry("Candle history is not available in this deployment.")
    side_e = _side(side)
    days = _lookback(lookback_days, BACKTEST_DEFAULT_LOOKBACK_DAYS)
    venue = (venue or deps.settings.agent.default_venue).strip().lower()
    pair = default_pair(symbol, deps.settings)
    atr_window = 14
    try:
        w = await deps.history.window(
            venue, pair, days, timeframe, extra_candles=atr_window + 1, latest_capture=True
        )
        df = await _candles(deps, w)
        tf = w.timeframe
        requested = (size,) if size is not None else ()
        model, calib = await _book_model(deps, pair, venue, tf, atr_window, requested)
        result = bt.backtest_execution(
            df,
            model,
            side_e,
            size=size,
            notional=notional,
            lookback=timedelta(days=days),
            atr_window=atr_window,
        )
    except (NoHistoryError, InsufficientHistoryError, InvalidInputError) as exc:
        raise ModelRetry(str(exc)) from exc
    res = result.model_dump(mode="json")
    window = df[df.index >= pd.Timestamp(res["start"])]
    try:
        vol_period, vol_ann, n_ret = realised_volatility_of(window["close"].to_numpy(), tf)
        vol_period, vol_ann = vol_period * 100, vol_ann * 100
    except (InsufficientHistoryError, InvalidInputError):
        vol_period = vol_ann = None
        n_ret = 0
    res.update(
        venue=venue,
        symbol=pair,
        timeframe=tf,
        lookback_days=days,
        data_end=iso_ns(int(w.series["last_ts_ms"]) * 1_000_000),
        candle_source=f"{venue} {pair} {tf} candles (stored history)",
        realised_vol_period_pct=vol_period,
        realised_vol_annualised_pct=vol_ann,
        realised_vol_returns=n_ret,
        **calib,
    )
    return res


async def _book_model(
    deps: AgentDeps, pair: str, venue: str, tf: str, atr_window: int, requested: tuple[float, ...] = ()
):
    """The book model for ``pair``: calibrated from the real book when it exists and its time is
    inside the candle history, else ``DEFAULT_BOOK_MODEL``; plus how it was obtained."""
    info: dict = {"model_calibrated": False, "calibration_book": None, "model_validation": None}
    try:
        inst = deps.market.resolve(pair, venue)
    except (UnknownSymbolError, UnknownVenueError):
        inst = None
    if inst is None or inst.symbol != pair or inst.market_type is not MarketType.SPOT:
        info["model_note"] = (
            f"no recorded order book of {pair} on {venue}, so the documented default book model is used "
            "(an assumption, not a measurement)"
        )
        return bt.DEFAULT_BOOK_MODEL, info
    view = deps.market.view(inst)
    book_ms = view.book_ts_ns // 1_000_000
    step = timeframe_ms(tf)
    h = await deps.history.history()
    try:
        near = await h.candles(pair, venue, tf, book_ms - (4 * atr_window) * step, book_ms + 1)
    except NoHistoryError:
        near = None
    if near is None or len(near) < atr_window + 1 or book_ms - int(near["ts_ms"].iloc[-1]) > step:
        info["model_note"] = (
            f"the recorded {pair} book ({view.book_ts_iso}) lies outside the {tf} candle history, so the "
            "documented default book model is used (an assumption, not a measurement)"
        )
        return bt.DEFAULT_BOOK_MODEL, info
    frame = near.set_index("ts")
    ref_volume = float(frame["volume"].iloc[-1])
    ref_atr = float(bt.atr_bps(frame, atr_window).iloc[-1])
    model = bt.calibrate_book_model([view], ref_volume, ref_atr)
    info.update(
        model_calibrated=True,
        calibration_book=_book_row(view),
        calibration_candle=frame.index[-1].isoformat().replace("+00:00", "Z"),
        ref_volume=ref_volume,
        ref_atr_bps=ref_atr,
        model_note=(
            f"book model calibrated from the real {inst} book of {view.book_ts_iso}, scaled by each "
            "candle's volume and widened by its ATR"
        ),
    )
    mid = float(analytics.top_of_book(view).mid_price)
    sizes = sorted({round(x / mid, 8) for x in (10_000.0, 100_000.0, 1_000_000.0)} | set(requested))
    try:
        val = bt.validate_book_model(model, [view], sizes).model_dump(mode="json")
        val["in_sample"] = True
        val["note"] = "the model is compared with the book it was calibrated from (in-sample)"
        info["model_validation"] = val
    except (InsufficientLiquidityError, MLMError) as exc:
        info["model_validation"] = {"error": str(exc)}
    return model, info


# ------------------------------------------------------------------------------ pairs


@_logged
async def pairs_stats(
    ctx: RunContext[AgentDeps],
    symbol_a: str,
    symbol_b: str,
    timeframe: str | None = None,
    lookback_days: float | None = None,
    venue: str | None = None,
    size: float | None = None,
) -> dict:
    """Pairs statistics of two assets from their close prices: hedge ratio (OLS and Huber) of
    log a on log b, spread z-score (48-point rolling window), ADF test of the spread,
    Engle-Granger cointegration, rolling correlation of log returns and the half-life of mean
    reversion (analytics.pairs). When both assets have a real book, the round-trip taker cost of
    entering and exiting the spread position is added (fees included).

    Args:
        symbol_a: first asset ("ETH"), the dependent leg; symbol_b: second asset ("BTC").
        timeframe: candle timeframe ("1h" default, "5m", ...).
        lookback_days: window in days ending at the data's last common candle (default 30).
        venue: ccxt id of the candles (default "binance").
        size: base units of leg a for the trade-cost estimate (default: 10,000 quote units of a).
    """
    deps = ctx.deps
    if deps.history is None:
        raise ModelRetry("Candle history is not available in this deployment.")
    _size_args(size, None)
    days = _lookback(lookback_days, PAIRS_DEFAULT_LOOKBACK_DAYS)
    venue = (venue or deps.settings.agent.default_venue).strip().lower()
    pa, pb = default_pair(symbol_a, deps.settings), default_pair(symbol_b, deps.settings)
    if pa == pb:
        raise ModelRetry(f"A pair needs two different assets; got {pa} twice.")
    tf = timeframe or PAIRS_DEFAULT_TIMEFRAME
    try:
        wa, wb = [await deps.history.window(venue, p, days, tf, latest_capture=True) for p in (pa, pb)]
        last = min(int(wa.series["last_ts_ms"]), int(wb.series["last_ts_ms"]))
        fa = await _candles(deps, wa.ending_at(last))
        fb = await _candles(deps, wb.ending_at(last))
        end = pd.Timestamp(last, unit="ms", tz="UTC")
        start = end - pd.Timedelta(days=days)
        ca = fa["close"][(fa.index > start) & (fa.index <= end)]
        cb = fb["close"][(fb.index > start) & (fb.index <= end)]
        stats = pairs_mod.analyze_pair(ca, cb, name_a=pa, name_b=pb)
    except (NoHistoryError, InsufficientHistoryError, InvalidInputError) as exc:
        raise ModelRetry(f"{pa} vs {pb} ({tf}, last {days:g} days): {exc}") from exc
    res = stats.model_dump(mode="json")
    res.update(
        venue=venue,
        symbol_a=pa,
        symbol_b=pb,
        timeframe=tf,
        lookback_days=days,
        candle_source=f"{venue} {tf} candles (stored history)",
        trade_cost=_pair_cost(deps, pa, pb, venue, stats, size),
    )
    return res


def _pair_cost(deps: AgentDeps, pa: str, pb: str, venue: str, stats, size: float | None) -> dict:
    """Round-trip cost of the spread trade on the real books of both legs, or why there is none."""
    views = []
    for pair in (pa, pb):
        try:
            inst = deps.market.resolve(pair, venue)
        except (UnknownSymbolError, UnknownVenueError):
            return {"available": False, "reason": f"no recorded order book of {pair} on {venue}"}
        if inst.symbol != pair:
            return {"available": False, "reason": f"no recorded order book of {pair} on {venue}"}
        views.append(deps.market.view(inst))
    va, vb = views
    mid_a = float(analytics.top_of_book(va).mid_price)
    size_a = size if size is not None else PAIR_REFERENCE_NOTIONAL_QUOTE / mid_a
    z = stats.zscore_last
    direction = "short_spread" if (z is not None and z > 0) else "long_spread"
    fa, _ = taker_fee_bps(deps, va.instrument)
    fb, _ = taker_fee_bps(deps, vb.instrument)
    try:
        cost = pairs_mod.pair_trade_cost(
            va,
            vb,
            size_a,
            stats.hedge_ratio_ols,
            direction=direction,
            fees_bps_a=fa or 0.0,
            fees_bps_b=fb or 0.0,
            spread_std=stats.spread_std,
        )
    except MLMError as exc:
        return {"available": False, "reason": str(exc)}
    out = cost.model_dump(mode="json")
    out.update(
        available=True,
        size_a_defaulted=size is None,
        reference_notional_quote=PAIR_REFERENCE_NOTIONAL_QUOTE if size is None else None,
        books=[_book_row(va), _book_row(vb)],
        cost_includes_taker_fees=True,
    )
    return out


TRADING_TOOLS = (route_order, backtest_execution, pairs_stats)
