"""The offline model: a deterministic pydantic-ai ``FunctionModel``.

Turn 1 (a user prompt): ``parse_query`` maps the question (with the session's earlier questions
for follow-ups) to one tool call. Turn 2 (tool results came back): the answer is written from
those results only, naming venue, instrument and book timestamp. Questions outside the assistant's
scope get a polite refusal that says what it can do; no tool is called.
"""

from __future__ import annotations

from typing import Any

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
from pydantic_ai.models.function import AgentInfo, FunctionModel

from market_liquidity_monitor.agent.parser import ParsedQuery, parse_query

CAPABILITY_HELP = (
    "I can answer questions about crypto market liquidity from real order books: the spread, depth "
    'and imbalance of a book ("Show me the order book depth for BTC/USDT"), the cost and slippage '
    'of a market order ("How much slippage would a five BTC market buy cause on Binance?"), a '
    'comparison of one asset across venues ("Which venue is best to sell ETH?"), and the health '
    "of the data feeds."
)

NOT_YET = {
    "route_order": "Smart order routing across venues",
    "backtest": "Execution backtests over past data",
    "pairs": "Pairs statistics (hedge ratio, z-score, ADF, correlation)",
    "alerts": "Liquidity alerts and anomaly detection",
}


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
    return "n/a" if x is None else f"{x:.2f}"


def fmt_notional(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _base(symbol: str) -> str:
    return symbol.split("/")[0]


def _quote(symbol: str) -> str:
    return symbol.split("/")[1].split(":")[0] if "/" in symbol else ""


# -------------------------------------------------------------- answer writing


def answer_market_impact(r: dict, args: dict) -> str:
    if "error" in r:
        return f"{r['error']} (venue {r.get('venue')}, {r.get('symbol')}, book as of {r.get('book_ts')})."
    base, quote = _base(r["symbol"]), _quote(r["symbol"])
    verb = "Buying" if r["side"] == "buy" else "Selling"
    amount = (
        f"{fmt_size(r['size'])} {base}"
        if r.get("size") is not None
        else f"{fmt_notional(r['notional_requested'])} {quote} of {base}"
    )
    where = f"on {r['venue']} ({r['symbol']}, book as of {r['book_ts']})"
    direction = "above" if r["side"] == "buy" else "below"
    if r["fully_filled"]:
        text = (
            f"{verb} {amount} {where} would fill at a VWAP of {fmt_price(r['vwap'])} {quote}, "
            f"{fmt_bps(r['slippage_bps'])} bps {direction} the mid price of {fmt_price(r['mid_price'])} "
            f"(slippage vs the best {'ask' if r['side'] == 'buy' else 'bid'}: {fmt_bps(r['slippage_vs_best_bps'])} bps). "
            f"It would consume {r['levels_consumed']} price levels, down to {fmt_price(r['worst_price'])}, "
            f"for a total of {fmt_notional(r['filled_notional'])} {quote}."
        )
    else:
        text = (
            f"There is not enough visible liquidity for {verb.lower()} {amount} {where}: the whole visible "
            f"{'ask' if r['side'] == 'buy' else 'bid'} side ({r['levels_consumed']} levels) fills only "
            f"{fmt_size(r['filled_size'])} {base} at a VWAP of {fmt_price(r['vwap'])} {quote} "
            f"({fmt_bps(r['slippage_bps'])} bps from the mid of {fmt_price(r['mid_price'])}). "
            "Beyond that the book shows nothing, so the cost of the rest is unknown."
        )
    if args.get("side_defaulted"):
        text += " (You didn't say buy or sell; I assumed a buy.)"
    return text + _warn(r)


def _warn(r: dict) -> str:
    w = r.get("quality_warning")
    return f" Warning: this book is {w}; treat these figures with care." if w else ""


def answer_order_book(r: dict, args: dict) -> str:
    tob = r["top_of_book"]
    base, quote = _base(r["symbol"]), _quote(r["symbol"])
    lines = [
        f"{r['symbol']} on {r['venue']} (book as of {r['book_ts']}): best bid {fmt_price(tob['best_bid'])} "
        f"({fmt_size(tob['best_bid_size'])} {base}), best ask {fmt_price(tob['best_ask'])} "
        f"({fmt_size(tob['best_ask_size'])} {base}), mid {fmt_price(tob['mid_price'])}, spread "
        f"{fmt_price(tob['spread'])} {quote} ({fmt_bps(tob['spread_bps'])} bps)."
    ]
    want = args.get("window_bps")
    depths = r["depth"]
    imbs = {i["window_bps"]: i for i in r["imbalance"]}
    chosen = [d for d in depths if want is None or d["window_bps"] == want]
    for d in chosen:
        imb = imbs.get(d["window_bps"], {}).get("imbalance")
        imb_s = f", imbalance {imb:+.3f}" if imb is not None else ""
        lines.append(
            f"Within {d['window_bps']:g} bps of mid: {fmt_size(d['bid_size'])} {base} bid "
            f"({fmt_notional(d['bid_notional'])} {quote}) and {fmt_size(d['ask_size'])} {base} ask "
            f"({fmt_notional(d['ask_notional'])} {quote}){imb_s}."
        )
    if any(
        d.get("bid_window_exceeds_visible_book") or d.get("ask_window_exceeds_visible_book") for d in chosen
    ):
        lines.append("Some windows reach past the visible book, so their depth is a lower bound.")
    return " ".join(lines) + _warn(r)


def answer_compare(r: dict, args: dict) -> str:
    with_order = r.get("size") is not None or r.get("notional") is not None
    parts = []
    for row in r["rows"]:
        s = f"{row['venue']} {row['symbol']} (book as of {row['book_ts']}): spread {fmt_bps(row['spread_bps'])} bps"
        s += f", depth within {row['window_bps']:g} bps {fmt_notional(row['bid_depth_notional'])} bid / {fmt_notional(row['ask_depth_notional'])} ask (quote)"
        if with_order and "slippage_bps" in row:
            s += f", VWAP {fmt_price(row['vwap'])}, slippage {fmt_bps(row['slippage_bps'])} bps"
            if not row.get("fully_filled"):
                s += f" (only {fmt_size(row['filled_size'])} fillable)"
        if row.get("quality_warning"):
            s += f" [warning: {row['quality_warning']}]"
        parts.append(s)
    head = f"Comparison for {r['symbol']}"
    if with_order:
        amount = (
            f"{fmt_size(r['size'])}"
            if r.get("size") is not None
            else f"{fmt_notional(r['notional'])} quote of"
        )
        head += f" ({r['side']} {amount} {_base(r['rows'][0]['symbol'])})"
    text = head + ":\n- " + "\n- ".join(parts)
    if r.get("best_venue"):
        crit = "lowest slippage" if with_order else "tightest spread"
        text += f"\nBest: {r['best_venue']} ({r['best_symbol']}), by {crit}."
    elif with_order:
        text += "\nNo venue can fill the whole order from its visible book."
    if r.get("unavailable"):
        text += "\nNot compared: " + "; ".join(u["reason"] for u in r["unavailable"])
    if len({row["book_ts"][:16] for row in r["rows"] if row.get("book_ts")}) > 1:
        text += "\nNote: these books are from different times, so they are not contemporaneous."
    return text


def answer_health(r: dict, args: dict) -> str:
    if not r["books"] and not r.get("circuit_breakers"):
        return "No books are loaded and no REST venue has been called yet, so there is nothing to report on."
    lines = [f"{r['healthy']} of {r['books_total']} books are healthy ({r['mode']} data)."]
    for b in r["books"]:
        state = "ok" if b["warning"] is None else b["warning"]
        lines.append(
            f"- {b['venue']} {b['symbol']}: {state}; gaps {b['gaps']}, resyncs {b['resyncs']}, "
            f"checksum failures {b['checksum_failures']}, updates applied {b['updates_applied']}"
        )
    if r.get("circuit_breakers"):
        opened = r.get("open_breakers") or []
        lines.append(
            "REST circuit breakers: "
            + (f"open or half-open for {', '.join(opened)}." if opened else "all closed.")
        )
    else:
        lines.append("No REST venue has been called yet, so no circuit breaker has tripped.")
    return "\n".join(lines)


def answer_history(r: dict, args: dict) -> str:
    v, t = r["volatility"], r["trend"]
    return (
        f"{r['symbol']} on {r['venue']}, {r['timeframe']} candles from {r['window_start']} to {r['window_end']} "
        f"(the last {r['lookback_days']:g} days of the data, which ends {r['data_end']}): realised volatility "
        f"{v['vol_annualised_pct']:.2f}% annualised ({v['vol_period_pct']:.4f}% per {r['timeframe']} period, "
        f"{v['n_returns']} returns). Price went from {fmt_price(t['first_close'])} to {fmt_price(t['last_close'])} "
        f"({t['return_pct']:+.2f}%); the log-price trend is {t['direction']} at {t['slope_pct_per_day']:+.3f}% per day "
        f"(R² {t['r_squared']:.3f})."
    )


WRITERS = {
    "price_history": answer_history,
    "market_impact": answer_market_impact,
    "order_book": answer_order_book,
    "compare_venues": answer_compare,
    "venue_health": answer_health,
}


# ------------------------------------------------------------ question -> call


def plan_tool_call(q: ParsedQuery) -> tuple[str, dict] | str:
    """A tool name and its arguments for a parsed question, or an answer text when no tool fits."""
    a = q.args
    cap = q.capability
    if cap == "refuse":
        code, _, why = (q.reason or "").partition(": ")
        if code in ("smalltalk", "empty"):
            return f"Hello! {CAPABILITY_HELP}"
        return (
            f"Sorry, I can't help with that ({why or 'not a market-liquidity question'}). {CAPABILITY_HELP}"
        )
    if cap in NOT_YET:
        return f"{NOT_YET[cap]} is not available in this version yet. {CAPABILITY_HELP}"
    if cap == "health":
        return "venue_health", {}
    symbol = a.get("symbol")
    if not symbol:
        return "Which asset do you mean? Name a coin or pair, for example BTC or ETH/USDT. " + CAPABILITY_HELP
    if cap == "order_book":
        return "order_book", {k: a[k] for k in ("symbol", "venue", "window_bps") if k in a}
    if cap == "market_impact":
        if "size" not in a and "notional" not in a:
            return "order_book", {k: a[k] for k in ("symbol", "venue") if k in a}
        args = {k: a[k] for k in ("symbol", "side", "size", "notional", "venue") if k in a}
        args.setdefault("side", "buy")
        return "market_impact", args
    if cap == "history":
        return "price_history", {k: a[k] for k in ("symbol", "lookback_days", "venue", "timeframe") if k in a}
    if cap == "compare_venues":
        return "compare_venues", {
            k: a[k] for k in ("symbol", "side", "size", "notional", "venues", "window_bps") if k in a
        }
    return f"I couldn't map that question to a tool. {CAPABILITY_HELP}"


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
        q = parse_conversation(_user_prompts(messages))
        stated = q.args if q is not None else {}
        for p in returns:
            writer = WRITERS.get(p.tool_name)
            if not isinstance(p.content, dict):  # a tool refused its arguments (ModelRetry)
                texts.append(f"I couldn't answer that: {p.content}")
                continue
            args = dict(calls.get(p.tool_call_id, {}), side_defaulted="side" not in stated)
            texts.append(writer(p.content, args) if writer else str(p.content))
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


def _last_calls(messages: list[ModelMessage]) -> dict[str, dict[str, Any]]:
    out = {}
    for m in messages:
        if isinstance(m, ModelResponse):
            for p in m.parts:
                if isinstance(p, ToolCallPart):
                    out[p.tool_call_id] = p.args_as_dict()
    return out


def build_offline_model() -> FunctionModel:
    return FunctionModel(offline_model_function, model_name="offline")
