"""The offline model: a deterministic pydantic-ai ``FunctionModel``.

Turn 1 (a user prompt): ``parse_query`` maps the question (with the session's earlier questions
for follow-ups) to one tool call. Turn 2 (tool results came back): the answer is written from
those results only, naming venue, instrument and book timestamp. Questions outside the assistant's
scope get a polite refusal that says what it can do; no tool is called.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from market_liquidity_monitor.agent.capabilities import CAPABILITY_TOOLS, best_tool, required_args, tool_args
from market_liquidity_monitor.agent.parser import ParsedQuery, parse_query

CAPABILITY_HELP = (
    "I can answer questions about crypto market liquidity from real order books: the spread, depth "
    'and imbalance of a book ("Show me the order book depth for BTC/USDT"), the cost and slippage '
    'of a market order ("How much slippage would a five BTC market buy cause on Binance?"), a '
    'comparison of one asset across venues ("Which venue is best to sell ETH?"), and the health '
    "of the data feeds."
)


# ------------------------------------------------------------------ formatting


def fmt_price(x: float | None) -> str:
    if x is None:
        return "n/a"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.2f}"
    if ax >= 1:
        return f"{x:,.4f}"
    return f"{x:.8f}".rstrip("0").rstrip(".")


def fmt_size(x: float | None) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.2f}"
    return f"{x:.6f}".rstrip("0").rstrip(".") or "0"


def fmt_bps(x: float | None) -> str:
    if x is None:
        return "n/a"
    shown = f"{x:.2f}"
    return "0.00" if shown == "-0.00" else shown  # a rounded zero has no sign


def _levels(n: int, what: str = "levels") -> str:
    """``1 price level``, ``3 price levels``."""
    return f"{n} {what[:-1] if n == 1 else what}"


def fmt_notional(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _base(symbol: str) -> str:
    return symbol.split("/")[0]


def _quote(symbol: str) -> str:
    return symbol.split("/")[1].split(":")[0] if "/" in symbol else ""


# -------------------------------------------------------------- answer writing


def _as_of(b) -> str:
    """``", rebuilt to 2024-08-08T23:58:00.000Z (its last update received 23:57:59.944Z)"`` when the
    book was asked at a past instant of the recording (``BookProvenance.as_of``), else ``""``."""
    if b is None or getattr(b, "as_of", None) is None:
        return ""
    return f", the recorded book rebuilt to {b.as_of} (last update received {b.book_received_ts})"


def _book_text(b) -> str:
    """``"binance BTC/USDT, book as of 2024-...Z"`` plus the source when it is not a recording."""
    src = "" if str(b.source) == "recording" else f", {b.source} {'verified' if b.verified else 'unverified'}"
    return f"{b.venue} {b.symbol}, book as of {b.book_ts}{_as_of(b)}{src}"


def _warn(book) -> str:
    w = book.quality_warning if book is not None else None
    return f" Warning: this book is {w}; treat these figures with care." if w else ""


def answer_market_impact(r, args: dict) -> str:
    base, quote = _base(r.symbol), _quote(r.symbol)
    side = str(r.side)
    verb = "Buying" if side == "buy" else "Selling"
    amount = _amount_text(r.size, r.notional_requested, base, quote)
    where = f"on {r.venue} ({r.symbol}, book as of {r.book_ts}{_as_of(r.book)}"
    if str(r.book.source) != "recording":
        where += f", {r.book.source} {'verified' if r.book.verified else 'unverified'}"
    where += ")"
    direction = "above" if side == "buy" else "below"
    if r.fully_filled:
        text = (
            f"{verb} {amount} {where} would fill at a VWAP of {fmt_price(r.vwap)} {quote}, "
            f"{fmt_bps(r.slippage_bps)} bps {direction} the mid price of {fmt_price(r.mid_price)} "
            f"(slippage vs the best {'ask' if side == 'buy' else 'bid'}: {fmt_bps(r.slippage_vs_best_bps)} bps). "
            f"It would consume {_levels(r.levels_consumed, 'price levels')}, down to {fmt_price(r.worst_price)}, "
            f"for a total of {fmt_notional(r.filled_notional)} {quote}."
        )
        if args.get("liquidity_question"):
            text = "Yes: the visible book can absorb it. " + text
    else:
        text = (
            f"There is not enough visible liquidity for {verb.lower()} {amount} {where}: the whole visible "
            f"{'ask' if side == 'buy' else 'bid'} side ({_levels(r.levels_consumed)}) fills only "
            f"{fmt_size(r.filled_size)} {base} at a VWAP of {fmt_price(r.vwap)} {quote} "
            f"({fmt_bps(r.slippage_bps)} bps from the mid of {fmt_price(r.mid_price)}). "
            "Beyond that the book shows nothing, so the cost of the rest is unknown."
        )
        if args.get("liquidity_question"):
            text = "No: " + text
    if r.side_defaulted or args.get("side_defaulted"):
        text += " (You didn't say buy or sell; I assumed a buy.)"
    return text + _warn(r.book)


def answer_max_size(r, args: dict) -> str:
    base, quote = _base(r.symbol), _quote(r.symbol)
    side = str(r.side)
    where = f"on {r.venue} ({r.symbol}, book as of {r.book_ts}{_as_of(r.book)})"
    if r.size <= 0:
        return (
            f"No {side} order stays within {fmt_bps(r.max_slippage_bps)} bps of the mid {where}: {r.reason}."
            + _warn(r.book)
        )
    text = (
        f"The largest market {side} {where} whose slippage stays within {fmt_bps(r.max_slippage_bps)} bps of the "
        f"mid price {fmt_price(r.mid_price)} is {fmt_size(r.size)} {base} ({fmt_notional(r.notional)} {quote}), "
        f"filling at a VWAP of {fmt_price(r.vwap)} ({fmt_bps(r.slippage_bps)} bps) over "
        f"{_levels(r.levels_consumed, 'price levels')}."
    )
    if r.limited_by_book:
        text += f" {r.reason}."
    text += (
        f" Read as a price move instead (the worst fill within {fmt_bps(r.max_slippage_bps)} bps of the mid), "
        f"the book holds {fmt_size(r.size_within_price_move)} {base} ({fmt_notional(r.notional_within_price_move)} "
        f"{quote}) on the {'ask' if side == 'buy' else 'bid'} side."
    )
    return text + _warn(r.book)


def answer_order_book(r, args: dict) -> str:
    tob = r.top_of_book
    base, quote = _base(r.symbol), _quote(r.symbol)
    src = (
        ""
        if str(r.book.source) == "recording"
        else f", {r.book.source} {'verified' if r.book.verified else 'unverified'}"
    )
    lines = [
        f"{r.symbol} on {r.venue} (book as of {r.book_ts}{_as_of(r.book)}{src}): best bid {fmt_price(tob.best_bid)} "
        f"({fmt_size(tob.best_bid_size)} {base}), best ask {fmt_price(tob.best_ask)} "
        f"({fmt_size(tob.best_ask_size)} {base}), mid {fmt_price(tob.mid_price)}, spread "
        f"{fmt_price(tob.spread)} {quote} ({fmt_bps(tob.spread_bps)} bps)."
    ]
    want = args.get("window_bps")
    imbs = {i.window_bps: i for i in r.imbalance}
    chosen = [d for d in r.depth if want is None or d.window_bps == want]
    for d in chosen:
        imb = imbs.get(d.window_bps)
        imb_s = f", imbalance {imb.imbalance:+.3f}" if imb is not None and imb.imbalance is not None else ""
        lines.append(
            f"Within {d.window_bps:g} bps of mid: {fmt_size(d.bid_size)} {base} bid "
            f"({fmt_notional(d.bid_notional)} {quote}) and {fmt_size(d.ask_size)} {base} ask "
            f"({fmt_notional(d.ask_notional)} {quote}){imb_s}."
        )
    if any(d.bid_window_exceeds_visible_book or d.ask_window_exceeds_visible_book for d in chosen):
        lines.append("Some windows reach past the visible book, so their depth is a lower bound.")
    return " ".join(lines) + _warn(r.book)


def _unavailable_text(items, base: str) -> str:
    """Venues left out, grouped: those without the asset, those quoting it in another currency, then
    each other problem with its reason."""
    no_sym = [u.venue for u in items if u.kind in ("no_symbol", "no_data")]
    other = [u for u in items if u.kind == "other_quote"]
    rest = [u for u in items if u.kind not in ("no_symbol", "no_data", "other_quote")]
    parts = []
    if no_sym:
        parts.append(f"no {base} book on {', '.join(no_sym)}")
    if other:
        parts.append(
            "quoted in another currency (not comparable): "
            + ", ".join(f"{u.venue} ({u.reason.split(' only')[0].split(' has ')[-1]})" for u in other)
        )
    parts += [f"{u.venue}: {u.reason}" for u in rest]
    return "; ".join(parts)


def _amount_text(size, notional, base: str, quote: str = "quote") -> str:
    if size is not None:
        return f"{fmt_size(size)} {base}"
    return f"{fmt_notional(notional)} {quote} of {base}"


def answer_compare(r, args: dict) -> str:
    rows = list(r.venues)
    base = _base(rows[0].symbol)
    order = f"{r.side} {_amount_text(r.size, r.notional_requested, base)}"
    head = f"Comparison of {base} across {r.venues_compared} venue(s) for a {order}"
    if r.reference_order_defaulted:
        head += " (a reference order I chose, since you gave no size)"
    if r.as_of:
        head += f", on the recorded books rebuilt to {r.as_of}"
    head += ". Cost is slippage plus the taker fee, in bps of each venue's own mid:"
    ranked = sorted(rows, key=lambda x: (x.rank is None, x.rank or 0))
    parts = []
    for row in ranked:
        s = f"{_book_text(row.book)}: "
        if row.fully_filled:
            s += (
                f"cost {fmt_bps(row.cost_bps)} bps = slippage {fmt_bps(row.slippage_bps)} + fee "
                f"{fmt_bps(row.fee_bps)}, VWAP {fmt_price(row.vwap)} ({fmt_price(row.vwap_incl_fees)} incl. fee)"
            )
        else:
            s += f"cannot fill the order: {row.reason or 'not enough visible depth'}"
        s += (
            f"; spread {fmt_bps(row.spread_bps)} bps, depth within {row.window_bps:g} bps "
            f"{fmt_notional(row.depth_bid_notional)} bid / {fmt_notional(row.depth_ask_notional)} ask"
        )
        if row.book.quality_warning:
            s += f" [warning: {row.book.quality_warning}]"
        if r.focus_venue == row.venue:
            s += " <- the venue you asked about"
        parts.append(s)
    text = head + "\n- " + "\n- ".join(parts)
    fees = "; ".join(f"{v}: {f.source}" for v, f in sorted(r.fees.items()))
    text += f"\nTaker fees: {fees}."
    if r.best_venue:
        text += f"\nBest: {r.best_venue}. {r.best_venue_reason or ''}".rstrip()
        best = next((x for x in rows if x.venue == r.best_venue), None)
        if best is not None and best.book.quality_warning:
            text += f" Note: its book is {best.book.quality_warning}."
    else:
        text += f"\n{r.best_venue_reason or 'No venue can fill the whole order from its visible book.'}"
    focus = r.focus_venue
    if focus and not any(x.venue == focus for x in rows):
        why = next((u.reason for u in r.unavailable if u.venue == focus), "no book")
        text += f"\n{focus} could not be compared: {why}"
    if r.arbitrage_opportunities:
        text += "\nArbitrage after both taker fees: " + "; ".join(
            f"buy on {a.buy_venue} at {fmt_price(a.ask_incl_fee)} incl. fee, sell on {a.sell_venue} at "
            f"{fmt_price(a.bid_net_of_fee)} net: {fmt_bps(a.edge_bps)} bps on {fmt_size(a.size)} {base} "
            f"({fmt_price(a.profit_quote)} quote)"
            for a in r.arbitrage_opportunities
        )
    elif r.arbitrage_pairs_checked:
        best_edge = r.arbitrage_best_edge
        text += (
            f"\nNo arbitrage after taker fees among the {r.arbitrage_pairs_checked} contemporaneous venue "
            "pair(s) checked"
        )
        if best_edge:
            text += f" (best: buy {best_edge.buy_venue}, sell {best_edge.sell_venue}, {fmt_bps(best_edge.edge_bps)} bps)"
        text += "."
    elif r.venues_compared < 2:
        text += "\nOnly one venue has a comparable book, so there is nothing to rank it against."
    else:
        text += "\nNo arbitrage check: no two books are contemporaneous."
    if r.contemporaneous is False:
        text += (
            f"\nNote: these books are not contemporaneous (recordings of different venues from different "
            f"times, {r.book_ts_span_s:,.0f} s apart at most), so compare their costs, not their prices; "
            "price gaps between them are not opportunities."
        )
    c = r.concentration
    if c.hhi is not None:
        text += (
            f"\nLiquidity concentration within {c.window_bps:g} bps: HHI {c.hhi:.3f} "
            f"(about {c.effective_venue_count:.1f} equal venues) over {', '.join(c.venues_included)}"
        )
        if c.truncated:
            text += f"; the window reaches past the visible book of {', '.join(c.truncated)} (depth is a lower bound)"
        if c.venues_excluded:
            text += "; left out: " + "; ".join(f"{v} ({why})" for v, why in c.venues_excluded.items())
        text += "."
    if r.unavailable:
        text += "\nNot compared: " + _unavailable_text(r.unavailable, base) + "."
    return text


def answer_route(r, args: dict) -> str:
    routed = r.routed
    base = _base(r.venues[0].symbol) if r.venues else _base(r.symbol)
    side = str(r.side)
    verb = "buy" if side == "buy" else "sell"
    amount = (
        f"{fmt_size(r.size)} {base}"
        if r.size is not None
        else f"{fmt_notional(r.notional_requested)} quote (incl. fees) of {base}"
    )
    pay = "paid" if side == "buy" else "received"
    lines = [
        f"Smart-order-routing simulation to {verb} {amount} across {r.venues_used} of "
        f"{r.venues_considered} venue(s) with a book (costs include taker fees; nothing is sent)"
        + (f", on the recorded books rebuilt to {r.as_of}:" if r.as_of else ":")
    ]
    for c in routed.children:
        lines.append(
            f"- {c.venue} {c.symbol} (book as of {c.book_ts}): {fmt_size(c.size)} {base} at VWAP "
            f"{fmt_price(c.vwap)}, fee {fmt_bps(c.fee_bps)} bps ({fmt_price(c.fee_quote)}), "
            f"{_levels(c.levels_consumed)}"
        )
    if routed.fillable:
        lines.append(
            f"Routed: {fmt_size(routed.filled_size)} {base} at an average {fmt_price(routed.avg_price_incl_fees)} "
            f"incl. fees, {fmt_notional(routed.total_quote)} {pay} in total; cost vs the reference mid "
            f"{fmt_price(r.reference_mid)}: {fmt_bps(r.cost_vs_mid_bps)} bps ({fmt_notional(r.cost_vs_mid_quote)})."
        )
    if not r.fully_filled:
        lines.append(f"The merged visible books cannot fill it all: {r.reason}.")
    names = {
        "best_single_venue": f"all on the best single venue ({r.best_single_venue})",
        "pro_rata_depth": "pro-rata by depth",
        "equal_split": "equal split",
    }
    for b in r.baselines:
        label = names.get(b.name, b.name)
        if b.savings_bps is None:
            lines.append(f"vs {label}: not comparable ({b.reason or 'cannot fill'}).")
        else:
            lines.append(
                f"vs {label}: average {fmt_price(b.avg_price_incl_fees)} incl. fees, total "
                f"{fmt_notional(b.total_quote)}; routing saves {fmt_bps(b.savings_bps)} bps "
                f"({fmt_price(b.savings_quote)} quote)."
            )
    lines.append("Taker fees: " + "; ".join(f"{v}: {f.source}" for v, f in sorted(r.fees.items())) + ".")
    if r.excluded:
        lines.append("Excluded: " + "; ".join(f"{v}: {why}" for v, why in r.excluded.items()) + ".")
    if r.venues_used == 1:
        lines.append("Only one venue's book is usable, so the routed plan is that venue alone.")
    if r.unavailable:
        lines.append("Not used: " + _unavailable_text(r.unavailable, base) + ".")
    return "\n".join(lines)


def _candles_text(c) -> str:
    if c.source == "storage":
        return f"{c.candles} {c.timeframe} candles from storage"
    return f"{c.candles} {c.timeframe} candles ({c.fetched_candles} fetched now with ccxt fetch_ohlcv in {c.fetch_requests} request(s), {c.stored_candles} already stored)"


def _window_text(days: float, c) -> str:
    """``the last 7 days of the data, which ends <end>`` (recorded) or ``the last 7 days up to <end>
    (venue time)`` (live)."""
    if c.clock.startswith("the end"):
        return f"the last {days:g} days of the data, which ends {c.end}"
    return f"the last {days:g} days up to {c.end}, by {c.clock}"


def answer_backtest(a, args: dict) -> str:
    o, r = a.order, a.result
    base, quote = _base(a.symbol), _quote(a.symbol)
    sell = str(o.side) == "sell"
    verb = "Selling" if sell else "Buying"
    amount = (
        f"{fmt_size(o.size_requested)} {base}"
        if o.size_requested is not None
        else f"{fmt_notional(o.notional_requested)} {quote} of {base}"
    )
    how = {
        "arrival": f"at once at {o.arrival_ts}",
        "twap": f"in {len(o.slices)} equal slices (TWAP) from {o.start} to {o.end}",
        "vwap": f"in {len(o.slices)} volume-weighted slices (VWAP) from {o.start} to {o.end}",
    }[str(o.schedule)]
    move = "fell" if o.last_close < o.arrival_mid_price else "rose"
    pnl_word = "a loss" if o.pnl_quote < 0 else "a profit"
    text = (
        f"{verb} {amount} on {a.venue} {how} ({_window_text(a.lookback_days, a.candles)}; "
        f"{_candles_text(a.candles)}): arrival price {fmt_price(o.arrival_mid_price)} {quote} (the open of "
        f"{o.arrival_ts}); filled {fmt_size(o.filled_size)} {base} at an average {fmt_price(o.avg_fill_price)} "
        f"{quote}, {fmt_price(o.avg_fill_price_incl_fees)} incl. the {fmt_bps(o.fee_bps)} bps taker fee "
        f"({o.fee_source}). Cost vs arrival {fmt_bps(o.cost_vs_arrival_bps)} bps ({fmt_notional(o.cost_vs_arrival_quote)} "
        f"{quote}): market move {fmt_bps(o.market_move_bps)}, impact {fmt_bps(o.impact_bps)}, fee "
        f"{fmt_bps(o.fee_cost_bps)} bps. The price then {move} to {fmt_price(o.last_close)} at {o.last_close_ts}: "
        f"marked to that close the position shows {pnl_word} of {fmt_notional(abs(o.pnl_quote))} {quote} "
        f"({o.pnl_pct:+.2f}%)."
    )
    info = a.model_info
    text += f"\nBook model: {info.note}."
    if o.model_error_note:
        text += f" {o.model_error_note.rstrip('.')}."
    if o.extrapolated_slices:
        text += (
            f" {o.extrapolated_slices} slice(s) walked past the measured depth of the model, so their cost is "
            "extrapolated."
        )
    text += (
        f"\nFor context, the same {amount} as a separate taker order at every {a.timeframe} candle "
        f"({r.intervals} intervals) would have cost {fmt_bps(r.avg_slippage_bps)} bps on average (median "
        f"{fmt_bps(r.median_slippage_bps)}, max {fmt_bps(r.max_slippage_bps)} at {r.worst_interval}); "
        f"{r.high_risk_intervals} interval(s) above {r.high_risk_threshold_bps:g} bps."
    )
    if a.realised_vol_annualised_pct is not None:
        text += f" Realised volatility over the window: {a.realised_vol_annualised_pct:.2f}% annualised."
    return text


def answer_pairs(p, args: dict) -> str:
    r = p.analysis
    a, b = p.symbol_a, p.symbol_b
    adf, co, hl = r.adf, r.coint, r.half_life
    text = (
        f"{a} vs {b} on {p.venue} {p.timeframe} candles, {r.n_obs} points from {r.start} to "
        f"{r.end} (the last {p.lookback_days:g} days of common data). Hedge ratio of log {_base(a)} on log "
        f"{_base(b)}: {r.hedge_ratio_ols:.4f} (OLS, R² {r.r_squared_ols:.3f}), {r.hedge_ratio_huber:.4f} "
        f"(Huber robust)."
    )
    if r.zscore_last is not None:
        text += f" Spread z-score now {r.zscore_last:+.2f} ({r.zscore_window}-point rolling window)."
    else:
        text += f" No z-score: {r.zscore_reason}."
    text += (
        f" ADF on the spread: statistic {adf.stat:.3f}, p-value {adf.p_value:.4f} (critical value at the five-percent level "
        f"{adf.critical_values['5%']:.3f}): "
        + (
            "stationary at the five-percent level"
            if adf.rejects_unit_root_5pct
            else "not stationary at the five-percent level (a unit root is not rejected)"
        )
        + f". Engle-Granger cointegration: statistic {co.stat:.3f}, p-value {co.p_value:.4f}: "
        + ("cointegrated at that level" if co.cointegrated_5pct else "not cointegrated at that level")
        + "."
    )
    if r.return_corr_last is not None:
        text += (
            f" Correlation of log returns: {r.return_corr_last:.3f} over the last {r.corr_window} points "
            f"(mean of the rolling values {r.return_corr_mean:.3f})."
        )
    if hl.half_life_periods is not None:
        text += f" Half-life of mean reversion: {hl.half_life_periods:.1f} periods"
        text += f" ({hl.half_life_hours:.1f} hours)." if hl.half_life_hours is not None else "."
    else:
        text += f" Half-life: none ({hl.reason})."
    tc = p.trade_cost
    if tc is not None:
        ba, bb = p.trade_cost_books
        size_a = f"{fmt_size(tc.size_a)} {_base(a)}"
        if p.size_a_defaulted:
            size_a += f" (about {fmt_notional(p.reference_notional_quote)} quote, my reference size)"
        fee_a = next((leg.fee_bps for leg in tc.legs if leg.leg == "a"), None)
        fee_b = next((leg.fee_bps for leg in tc.legs if leg.leg == "b"), None)
        text += (
            f"\nRound trip of the {tc.direction.replace('_', ' ')} trade ({size_a} against "
            f"{fmt_size(tc.size_b)} {_base(b)}), entered and exited on the real books "
            f"({ba.venue} {ba.symbol} as of {ba.book_ts}, {bb.venue} {bb.symbol} as of {bb.book_ts}; taker fees "
            f"{fmt_bps(fee_a)} and {fmt_bps(fee_b)} bps included): {fmt_price(tc.round_trip_cost_quote)} quote, "
            f"{fmt_bps(tc.round_trip_cost_bps)} bps of the two legs' notional"
        )
        if tc.breakeven_zscore_move is not None:
            text += f", which the spread must move {tc.breakeven_zscore_move:.3f} standard deviations to pay"
        text += "."
        if not tc.fully_filled:
            text += f" {tc.reason}."
    elif p.trade_cost_reason:
        text += f"\nNo trade-cost estimate: {p.trade_cost_reason}."
    return text


def answer_create_alert(r, args: dict) -> str:
    rule, book = r.rule, r.book
    where = f"the {book.venue} {book.symbol} book (book as of {book.book_ts})" if book else "its book"
    return (
        f"Alert #{rule['id']} set: {r.description} (cooldown {rule['cooldown_s']:g} s). It is checked on every "
        f"observation of {where}. You have {r.rules_total} alert rule(s)."
    )


def answer_list_alerts(r, args: dict) -> str:
    if args.get("delete_requested"):
        head = (
            "I can't delete alert rules from chat (the assistant only reads and creates them): delete one on "
            "the app's Alerts page or with DELETE /api/alerts/{id}. "
        )
        return head + _list_alerts_text(r)
    return _list_alerts_text(r)


def _list_alerts_text(r) -> str:
    if not r.rules:
        return (
            'You have no alert rules yet. Create one like "alert me when the BTC spread on Binance goes above '
            'N bps".'
        )
    lines = [f"{r.rules_total} alert rule(s):"]
    for rule in r.rules:
        lines.append(f"- #{rule.rule['id']}: {rule.description}; fired {rule.events} time(s) recently")
    return "\n".join(lines)


def answer_liquidity_alerts(r, args: dict) -> str:
    lines = [f"Liquidity alerts and anomalies for {r.symbol} ({r.books_observed} book(s) observed now):"]
    if r.events:
        for e in r.events[:10]:
            lines.append(
                f"- {e.venue} {e.symbol}: {e.rule_name} fired at value {e.value:g} (threshold {e.threshold:g})"
            )
    else:
        lines.append(f"- No alert rule has fired ({r.rules_total} rule(s) defined).")
    for s in r.crunches:
        where = f"{s.venue} {s.symbol}" if s.venue else s.symbol
        if not s.available:
            lines.append(f"- Crunch detection for {where}: not possible yet: {s.reason}.")
            continue
        c = s.report or {}
        params = (
            f"depth within {r.window_bps:g} bps (bid + ask), a crunch = below {c['drop_ratio']:g} x "
            f"the median of the previous {c['baseline_n']} observations, recovered at "
            f"{c['recovery_ratio']:g} x"
        )
        span = f"{c['n_observations']} observation(s) from {c['first_ts']} to {c['last_ts']}"
        rep = s.sampled_during_replay
        stored = getattr(s, "stored_history", None)
        if stored:
            span += (
                f", one per {stored['interval_s']:g} s from the stored liquidity history ({stored['table']})"
            )
        elif rep:
            span += f", sampled every {rep['every_depth_updates']} depth updates of the {rep['recording']} recording"
        if c.get("episodes"):
            lines.append(f"- {len(c['episodes'])} liquidity crunch(es) in {where} ({params}; {span}):")
            for ep in c["episodes"]:
                hhi = ""
                if len(c.get("venues") or ()) > 1 and ep.get("hhi_change") is not None:
                    hhi = f", venue HHI {ep['hhi_onset']:.3f} -> {ep['hhi_trough']:.3f} ({ep['hhi_change']:+.3f})"
                lines.append(
                    f"  - onset {ep['onset_ts']}, trough {fmt_notional(ep['trough_depth'])} at {ep['trough_ts']} "
                    f"({ep['drop_pct']:.1f}% below its baseline of {fmt_notional(ep['baseline_depth'])})"
                    + (
                        f", recovered at {ep['recovery_ts']} ({ep['duration_s']:.1f} s)"
                        if ep.get("recovered")
                        else ", not recovered by the last observation"
                    )
                    + hhi
                    + "."
                )
        else:
            lines.append(
                f"- No liquidity crunch found in {where} at {params} over {span}"
                + (f" ({c['reason']})" if c.get("reason") else "")
                + "."
            )
    for b in r.books:
        state = b.quality_warning or "no feed anomaly"
        lines.append(f"- {b.venue} {b.symbol} (book as of {b.book_ts}): {state}.")
    return "\n".join(lines)


def answer_health(r, args: dict) -> str:
    asked = r.venues_asked
    if not r.books and asked:
        return f"No book of {', '.join(asked)} is recorded or connected, so there is nothing to report on."
    if not r.books and not r.circuit_breakers:
        return "No books are loaded and no REST venue has been called yet, so there is nothing to report on."
    lines = [f"{r.healthy} of {r.books_total} books are healthy ({r.mode} data)."]
    for b in r.books:
        state = "ok" if b.warning is None else b.warning
        lines.append(
            f"- {b.venue} {b.symbol}{'' if b.source == 'recording' else f' ({b.source})'}: {state}; gaps {b.gaps}, resyncs {b.resyncs}, "
            f"checksum failures {b.checksum_failures}, updates applied {b.updates_applied}"
        )
    if r.circuit_breakers:
        opened = r.open_breakers
        lines.append(
            "REST circuit breakers: "
            + (f"open or half-open for {', '.join(opened)}." if opened else "all closed.")
        )
    else:
        lines.append("No REST venue has been called yet, so no circuit breaker has tripped.")
    return "\n".join(lines)


def answer_history(r, args: dict) -> str:
    v, t = r.volatility, r.trend
    return (
        f"{r.symbol} on {r.venue}, {r.timeframe} candles from {r.window_start} to {r.window_end} "
        f"({_window_text(r.lookback_days, r.candles)}; {_candles_text(r.candles)}): "
        f"realised volatility {v['vol_annualised_pct']:.2f}% annualised ({v['vol_period_pct']:.4f}% per "
        f"{r.timeframe} period, {v['n_returns']} returns). Price went from {fmt_price(t['first_close'])} to "
        f"{fmt_price(t['last_close'])} ({t['return_pct']:+.2f}%); the log-price trend is {t['direction']} at "
        f"{t['slope_pct_per_day']:+.3f}% per day (R² {t['r_squared']:.3f})."
    )


def _history_value(metric: str, x: float | None) -> str:
    if metric == "spread_bps":
        return "n/a" if x is None else f"{x:.4f} bps"
    if metric == "imbalance":
        return "n/a" if x is None else f"{x:+.4f}"
    if metric in ("mid", "microprice"):
        return fmt_price(x)
    return fmt_notional(x) if x is None or abs(x) >= 100 else fmt_size(x)


def answer_liquidity_history(r, args: dict) -> str:
    m = r.metric
    what = {
        "spread_bps": "spread",
        "mid": "mid price",
        "microprice": "microprice",
        "imbalance": "imbalance",
    }.get(m, m.replace("_", " "))
    if r.window_bps is not None:
        what += f" within {r.window_bps:g} bps of mid"
    unit = f" ({r.unit})" if m not in ("spread_bps",) else ""
    s, src = r.summary, r.source
    books = ", ".join(f"{x.venue} {x.symbol}" for x in r.series)
    lines = [f"{r.symbol} {what}{unit} on {books}, {r.window}."]
    if s.valid_points == 0:
        lines.append(f"No sample in the window had a usable book: {s.reason}.")
    else:
        v = lambda x: _history_value(m, x)  # noqa: E731
        many = len(r.series) > 1
        hi = f" on {s.max_venue}" if many else ""
        lo = f" on {s.min_venue}" if many else ""
        if m in ("spread_bps",):
            lines.append(f"Widest: {v(s.max)} at {s.max_ts}{hi}; tightest: {v(s.min)} at {s.min_ts}{lo}.")
        else:
            lines.append(f"Highest: {v(s.max)} at {s.max_ts}{hi}; lowest: {v(s.min)} at {s.min_ts}{lo}.")
        for x in r.series:
            xs = x.summary
            if xs.valid_points == 0:
                lines.append(f"- {x.venue} {x.symbol}: no usable sample ({xs.reason}).")
                continue
            pct = "" if xs.change_pct is None else f" ({xs.change_pct:+.2f}%)"
            lines.append(
                f"- {x.venue} {x.symbol}: {v(xs.first)} at {xs.first_ts} -> {v(xs.last)} at {xs.last_ts}{pct}; "
                f"max {v(xs.max)} at {xs.max_ts}, min {v(xs.min)} at {xs.min_ts}"
                + (
                    f"; {x.unsynced_points} sample{'s' if x.unsynced_points != 1 else ''} without a synced book"
                    if x.unsynced_points
                    else ""
                )
            )
    lines.append(
        f"Source: {src.rows} stored rows of {' + '.join(src.tables)} ({src.database}), book time "
        f'{src.first_ts} to {src.last_ts}, one sample per {src.interval_s:g} s; "now" is the '
        f"{src.reference} ({src.reference_ts})."
    )
    lines.extend(r.notes[:3])
    return "\n".join(lines)


WRITERS = {
    "price_history": answer_history,
    "liquidity_history": answer_liquidity_history,
    "market_impact": answer_market_impact,
    "max_size_within_slippage": answer_max_size,
    "order_book": answer_order_book,
    "compare_venues": answer_compare,
    "route_order": answer_route,
    "backtest_execution": answer_backtest,
    "pairs_stats": answer_pairs,
    "create_alert": answer_create_alert,
    "list_alerts": answer_list_alerts,
    "liquidity_alerts": answer_liquidity_alerts,
    "venue_health": answer_health,
}


# ------------------------------------------------------------ question -> call


def _call(tool: str, a: dict) -> tuple[str, dict]:
    """``(tool, args)`` with the arguments of ``a`` the tool's signature takes (one vocabulary:
    ``agent.capabilities``); one venue given where the tool takes ``venues`` becomes ``[venue]``."""
    params = tool_args(tool)
    args = {k: a[k] for k in params if k in a}
    if "venues" in params and "venue" not in params and "venue" in a and "venues" not in a:
        args["venues"] = [a["venue"]]
    return tool, args


def plan_tool_call(q: ParsedQuery) -> tuple[str, dict] | str:
    """A tool name and its arguments for a parsed question, or an answer text when no tool fits."""
    a = dict(q.args)
    cap = q.capability
    if cap == "refuse":
        code, _, why = (q.reason or "").partition(": ")
        if code in ("smalltalk", "empty"):
            return f"Hello! {CAPABILITY_HELP}"
        return (
            f"Sorry, I can't help with that ({why or 'not a market-liquidity question'}). {CAPABILITY_HELP}"
        )
    if cap == "alerts":
        return _plan_alerts({**a, **q.extra})
    if cap == "health":
        return _call("venue_health", a)
    if cap == "pairs":
        sa, sb = a.get("symbol_a"), a.get("symbol_b")
        if not sa or not sb:
            return (
                "Pairs statistics need two assets, for example ETH against BTC. "
                + (f"I only found {sa}. " if sa else "")
                + CAPABILITY_HELP
            )
        return _call("pairs_stats", a)
    symbol = a.get("symbol")
    if not symbol:
        return "Which asset do you mean? Name a coin or pair, for example BTC or ETH/USDT. " + CAPABILITY_HELP
    if cap == "order_book":
        return _call("order_book", a)
    if cap == "market_impact":
        if "max_slippage_bps" not in a and "size" not in a and "notional" not in a:
            return _call("order_book", a)  # no order and no limit: what the book holds answers it
        if "max_slippage_bps" not in a:
            a.setdefault("side", "buy")
        return _call(best_tool(cap, a) or "market_impact", a)
    if cap == "history":
        # A liquidity metric named over time ("depth ... changed", "spread widest today"): the stored
        # liquidity history; else price history from candles.
        return _call("liquidity_history" if "metric" in a else "price_history", a)
    if cap == "compare_venues":
        return _call("compare_venues", a)
    if cap == "route_order":
        if "size" not in a and "notional" not in a:
            return (
                f"How much {symbol} should I route? Give a size (e.g. 25 {_base(symbol)}) or a notional "
                "(e.g. $100k), and buy or sell."
            )
        return _call("route_order", a)
    if cap == "backtest":
        if "size" not in a and "notional" not in a:
            return (
                f"What order should I backtest? Give a size (e.g. 500 {_base(symbol)}) or a notional per "
                "interval, and buy or sell."
            )
        return _call("backtest_execution", a)
    # any other capability: its tool that fits what was stated (agent.capabilities), by signature
    tool = best_tool(cap, a) if cap in CAPABILITY_TOOLS else None
    if tool is not None:
        return _call(tool, a)
    missing = sorted({r for t in CAPABILITY_TOOLS.get(cap, ()) for r in required_args(t) if r not in a})
    if missing:
        return f"To answer that I need {', '.join(missing)}. {CAPABILITY_HELP}"
    return f"I couldn't map that question to a tool. {CAPABILITY_HELP}"


def _plan_alerts(a: dict) -> tuple[str, dict] | str:
    action = a.get("alert_action", "recent")
    if a.get("side") not in ("both", "bid", "ask"):
        a = {k: v for k, v in a.items() if k != "side"}  # an order side is not a depth side
    if action in ("list", "delete") or (action == "recent" and not a.get("symbol")):
        # no asset to report on: the rules themselves (and what each fired recently) answer it
        return "list_alerts", {}
    if not a.get("symbol"):
        return (
            "Which asset should I watch? Name a coin or pair, for example BTC or ETH/USDT. " + CAPABILITY_HELP
        )
    if action == "create":
        if (
            a.get("metric") in ("spread_bps", "volatility", "mid_price", "volume", "zscore")
            and "window_bps" in a
        ):
            a = {
                k: v for k, v in a.items() if k != "window_bps"
            }  # "N bps" was the threshold, not a depth window
        if any(k not in a for k in ("metric", "comparison", "threshold")):
            return (
                "To set an alert I need what to watch (spread, depth, imbalance, price, volatility), the "
                'direction (above or below) and a threshold, e.g. "alert me when the BTC spread on Binance '
                'goes above N bps".'
            )
        return _call("create_alert", a)
    return _call("liquidity_alerts", a)


def _user_prompts(messages: list[ModelMessage]) -> list[str]:
    out = []
    for m in messages:
        if isinstance(m, ModelRequest):
            for p in m.parts:
                if isinstance(p, UserPromptPart) and isinstance(p.content, str):
                    out.append(p.content)
    return out


def parse_conversation(prompts: list[str]) -> ParsedQuery | None:
    """Parse each prompt in order, so follow-ups ("and on Kraken?") inherit from the one before."""
    prev = None
    for text in prompts:
        prev = parse_query(text, prev)
    return prev


def offline_model_function(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    last = messages[-1]
    returns = (
        [p for p in last.parts if isinstance(p, ToolReturnPart)] if isinstance(last, ModelRequest) else []
    )
    retries = (
        [p for p in last.parts if isinstance(p, RetryPromptPart)] if isinstance(last, ModelRequest) else []
    )
    if retries:
        r = retries[0]
        msg = r.content if isinstance(r.content, str) else "; ".join(str(e.get("msg", e)) for e in r.content)
        return ModelResponse(parts=[TextPart(f"I couldn't answer that: {msg}")])
    if returns:
        texts = []
        calls = _last_calls(messages)
        prompts = _user_prompts(messages)
        q = parse_conversation(prompts)
        stated = q.args if q is not None else {}
        for p in returns:
            writer = WRITERS.get(p.tool_name)
            # the typed answer: the tool's ToolReturn metadata (its content is the model's compact view)
            answer = p.metadata if isinstance(p.metadata, BaseModel) else p.content
            if not isinstance(answer, BaseModel):  # a tool refused its arguments (ModelRetry)
                texts.append(f"I couldn't answer that: {p.content}")
                continue
            args = dict(
                calls.get(p.tool_call_id, {}),
                side_defaulted="side" not in stated,
                liquidity_question=_asks_if_liquid(prompts[-1] if prompts else ""),
                delete_requested=q is not None and q.extra.get("alert_action") == "delete",
            )
            texts.append(writer(answer, args) if writer else str(answer))
        return ModelResponse(parts=[TextPart("\n\n".join(texts))])
    q = parse_conversation(_user_prompts(messages))
    if q is None:
        return ModelResponse(parts=[TextPart(CAPABILITY_HELP)])
    plan = plan_tool_call(q)
    if isinstance(plan, str):
        return ModelResponse(parts=[TextPart(plan)])
    tool, args = plan
    return ModelResponse(
        parts=[ToolCallPart(tool_name=tool, args=args, tool_call_id=f"offline-{len(messages)}")]
    )


_LIQUID_Q = re.compile(
    r"\benough (visible )?liquidity\b|\bliquid enough\b|\bdeep enough\b|\bcan (the book|the market|it|they) "
    r"(absorb|handle|take)\b|\bis there (the )?liquidity\b",
    re.I,
)


def _asks_if_liquid(question: str) -> bool:
    """Whether the question asks for a yes/no on liquidity ("Is there enough liquidity to sell 10 ETH?")."""
    return bool(_LIQUID_Q.search(question or ""))


def _last_calls(messages: list[ModelMessage]) -> dict[str, dict[str, Any]]:
    out = {}
    for m in messages:
        if isinstance(m, ModelResponse):
            for p in m.parts:
                if isinstance(p, ToolCallPart):
                    out[p.tool_call_id] = p.args_as_dict()
    return out


#: Words per streamed piece of an offline answer.
STREAM_WORDS = 6
_PIECE = re.compile(rf"(?:\S+\s*){{1,{STREAM_WORDS}}}|\s+")


async def offline_stream_function(
    messages: list[ModelMessage], info: AgentInfo
) -> AsyncIterator[str | DeltaToolCalls]:
    """The offline model's streamed response: the same response as ``offline_model_function``
    (computed on the event loop, see ``offline_model_async``), yielded as text pieces of
    ``STREAM_WORDS`` words, or as one complete tool-call delta."""
    response = offline_model_function(messages, info)
    for i, part in enumerate(response.parts):
        if isinstance(part, TextPart):
            for piece in _PIECE.findall(part.content):
                yield piece
                await asyncio.sleep(0)  # let the consumer forward the piece before the next one
        elif isinstance(part, ToolCallPart):
            yield {
                i: DeltaToolCall(
                    name=part.tool_name, json_args=part.args_as_json_str(), tool_call_id=part.tool_call_id
                )
            }


async def offline_model_async(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """``offline_model_function`` run on the event loop. It is a few ms of pure Python (1.5 ms per
    response on the bench question, ~2 ms for a health answer): a worker thread (what
    ``FunctionModel`` does with a sync function) frees nothing, since the thread holds the GIL
    while it parses, and adds a hop and GIL hand-offs to each of the two model requests of a run.
    It yields to the event loop first, as a model's network round trip would: the loop runs
    every ready request in one iteration, so 64 chats at once otherwise held other clients for
    the sum of their agent steps (bench_api chat c=64: stalls of 115-127 ms)."""
    await asyncio.sleep(0)
    return offline_model_function(messages, info)


def build_offline_model() -> FunctionModel:
    """The offline model, for non-streamed (``Agent.run``) and streamed (``run_stream_events``) runs."""
    return FunctionModel(offline_model_async, stream_function=offline_stream_function, model_name="offline")
