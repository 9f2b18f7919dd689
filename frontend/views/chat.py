"""Chat: ask the assistant (POST /api/chat, streamed: tool calls show as they run, the answer as it
is written); each answer shows its tool calls and, where it helps, a chart drawn from API data
(impact curve, depth, venue costs)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.client import ApiClient
from mlm_ui.common import client, downloads, page_header, raw_json, show_failure
from mlm_ui.files import safe_name
from mlm_ui.shapes import book_level_rows, is_number, records
from mlm_ui.units import currencies, fmt_time
from mlm_ui.verdict import liquidity_verdict

EXAMPLES = (
    "How much slippage would a 5 BTC market buy cause on Binance?",
    "Show me the order book depth for BTC/USDT",
    "Which venue is best to sell 200 ETH?",
    "Is there enough liquidity to execute a 10 ETH sell order?",
)
# Multiples of the asked size for the impact curve drawn under a market-impact answer.
CURVE_MULTIPLES = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def impact_curve(api: ApiClient, result: dict[str, Any]) -> dict[str, Any] | None:
    """Impact of multiples of the asked order on the same book (POST /api/impact per point)."""
    venue, symbol, side = result.get("venue"), result.get("symbol"), result.get("side")
    size, notional = result.get("size"), result.get("notional_requested")
    key, base = ("size", size) if is_number(size) else ("notional", notional)
    if not (venue and symbol and side and is_number(base)):
        return None
    points = []
    for m in CURVE_MULTIPLES:
        amount = round(base * m, 10)
        resp = api.impact({"venue": venue, "symbol": symbol, "side": side, key: amount})
        if not resp.ok:
            continue
        points.append({**resp.data, "x": amount})
    if len(points) < 2:
        return None
    cur = currencies(symbol)
    unit = cur.base_label if key == "size" else cur.quote_label
    return {
        "kind": "impact_curve",
        "points": points,
        "highlight": round(base, 10),
        "x_label": f"order {key} ({unit})",
        "title": f"Impact curve — {side} {symbol} on {venue} (book {fmt_time(result.get('book_ts'))} UTC)",
    }


def chart_for(api: ApiClient, tool_calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The data of one chart for an answer, fetched once (kept in the message history)."""
    for call in tool_calls:
        tool, result = call.get("tool"), call.get("result") or {}
        if not isinstance(result, dict) or result.get("error"):
            continue
        if tool == "market_impact":
            chart = impact_curve(api, result)
            if chart:
                return chart
        if tool == "order_book" and result.get("venue") and result.get("symbol"):
            resp = api.orderbook(result["venue"], result["symbol"], levels=200)
            if resp.ok:
                return {
                    "kind": "depth",
                    "book": resp.data,
                    "title": f"Depth — {result['symbol']} on {result['venue']} "
                    f"(book {fmt_time(resp.data.get('book_ts'))} UTC)",
                }
        if tool == "compare_venues" and records(result.get("rows")):
            metric = result.get("ranked_by") or "spread_bps"
            return {
                "kind": "bars",
                "rows": result["rows"],
                "metric": metric,
                "best": result.get("best_venue"),
                "title": f"{metric} by venue — {result.get('symbol')}",
            }
    return None


def chart_data(chart: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The rows a chat chart plots (for its CSV/Parquet downloads) and a file name stem."""
    if chart["kind"] == "impact_curve":
        first = chart["points"][0] if chart["points"] else {}
        return chart["points"], safe_name(
            "impact-curve", first.get("venue"), first.get("symbol"), first.get("side")
        )
    if chart["kind"] == "depth":
        book = chart["book"]
        return book_level_rows(book), safe_name(
            "book-levels", book.get("venue"), book.get("symbol"), book.get("book_ts")
        )
    rows = chart.get("rows") or []
    symbol = next((r.get("symbol") for r in rows if isinstance(r, dict)), None)
    return rows, safe_name("venues", symbol, chart.get("metric"))


def render_verdict(verdict: dict[str, Any] | None) -> None:
    if not verdict:
        return
    if verdict["yes"]:
        st.success(f"**Yes — enough visible liquidity.** {verdict['reason']}", icon=":material/check_circle:")
    else:
        st.error(f"**No — not enough visible liquidity.** {verdict['reason']}", icon=":material/cancel:")


def render_chart(chart: dict[str, Any], key: str) -> None:
    if chart["kind"] == "impact_curve":
        fig = charts.impact_curve_figure(
            chart["points"],
            x_key="x",
            title=chart["title"],
            highlight_x=chart["highlight"],
            x_label=chart["x_label"],
        )
    elif chart["kind"] == "depth":
        fig = charts.depth_figure(chart["book"], title=chart["title"])
    elif chart["kind"] == "bars":
        fig = charts.bar_figure(
            chart["rows"], "venue", chart["metric"], title=chart["title"], highlight=chart.get("best")
        )
    else:
        return
    st.plotly_chart(fig, key=key)
    rows, stem = chart_data(chart)
    if rows:
        downloads(rows, stem, key=key)


def render_tool_calls(tool_calls: list[dict[str, Any]], grounding: Any) -> None:
    label = f"Tool calls ({len(tool_calls)})" + (
        " — grounded" if isinstance(grounding, dict) and grounding.get("grounded") else ""
    )
    with st.expander(label, expanded=False):
        if not tool_calls:
            st.caption("The assistant answered without calling a tool.")
        for i, call in enumerate(tool_calls, 1):
            st.markdown(f"**{i}. `{call.get('tool')}`** — args `{call.get('args')}`")
            st.json(call.get("result"), expanded=False)
        if grounding:
            raw_json(grounding, "Grounding check", in_expander=False)


def render_message(msg: dict[str, Any], idx: int) -> None:
    with st.chat_message(msg["role"]):
        if msg["role"] == "user":
            st.markdown(msg["content"])
            return
        if msg.get("failure") is not None:
            show_failure(msg["failure"], "The assistant")
            return
        render_verdict(msg.get("verdict"))
        st.markdown(msg["content"])
        if msg.get("chart"):
            render_chart(msg["chart"], key=f"chat-chart-{idx}")
        render_tool_calls(msg.get("tool_calls") or [], msg.get("grounding"))


def _message(api: ApiClient, data: dict[str, Any]) -> dict[str, Any]:
    """The history entry of an answer (the ``done`` payload of POST /api/chat)."""
    if data.get("session_id"):
        st.session_state["chat_session_id"] = data["session_id"]
    tool_calls = [c for c in data.get("tool_calls") or [] if isinstance(c, dict)]
    return {
        "role": "assistant",
        "content": data.get("answer") or "_(empty answer)_",
        "tool_calls": tool_calls,
        "grounding": data.get("grounding"),
        "chart": chart_for(api, tool_calls),
        "verdict": liquidity_verdict(data.get("answer") or "", tool_calls),
    }


def ask_streaming(api: ApiClient, question: str, idx: int) -> dict[str, Any]:
    """One question, rendered as it is answered: the tool calls as they run (a status box), the
    text as the model writes it (``st.write_stream``), then the final answer with its tool calls
    and chart. Returns the history entry."""
    outcome: dict[str, Any] = {}
    with st.chat_message("assistant"):
        status_slot = st.empty()
        status = status_slot.status("Asking the assistant…", expanded=False)
        text_slot = st.empty()

        def text() -> Any:
            for ev in api.chat_stream(question, st.session_state.get("chat_session_id")):
                if ev.event == "chunk":
                    yield str(ev.data.get("text", ""))
                elif ev.event == "tool_call":
                    status.update(label=f"Running `{ev.data.get('name')}`…", state="running")
                    status.markdown(f"`{ev.data.get('name')}` — args `{ev.data.get('args')}`")
                elif ev.event == "tool_result":
                    mark = "done" if ev.data.get("ok") else "refused its arguments"
                    status.markdown(f"`{ev.data.get('name')}` {mark}: {ev.data.get('summary')}")
                elif ev.event == "done":
                    outcome["done"] = ev.data
                elif ev.event == "error":
                    outcome["error"] = ev.data.get("detail") or "the assistant failed"
                elif ev.event == "failure":
                    outcome["failure"] = ev.response

        with text_slot.container():
            st.write_stream(text())
        status_slot.empty()
        if "done" in outcome:
            msg = _message(api, outcome["done"])
            with text_slot.container():  # the final answer (notes included) replaces the stream
                render_verdict(msg.get("verdict"))
                st.markdown(msg["content"])
            if msg.get("chart"):
                render_chart(msg["chart"], key=f"chat-chart-{idx}")
            render_tool_calls(msg.get("tool_calls") or [], msg.get("grounding"))
            return msg
        text_slot.empty()
        if "failure" in outcome:
            show_failure(outcome["failure"], "The assistant")
            return {"role": "assistant", "failure": outcome["failure"]}
        detail = outcome.get("error") or "the answer stream ended without an answer"
        st.error(f"**The assistant failed** — {detail}", icon=":material/warning:")
        return {"role": "assistant", "content": f"_(the assistant failed: {detail})_"}


page_header(
    "Chat",
    "Ask about liquidity in plain language. Every number comes from a tool call on a real order book.",
)
api = client()
history: list[dict[str, Any]] = st.session_state.setdefault("chat_history", [])


def example_buttons(prefix: str) -> str | None:
    """The example questions as buttons; the one clicked, if any."""
    picked = None
    with st.container(horizontal=True, gap="small"):
        for n, q in enumerate(EXAMPLES):
            if st.button(q, key=f"{prefix}_{n}", icon=":material/help:"):
                picked = q
    return picked


def answered(msg: dict[str, Any]) -> bool:
    """Whether an assistant message answered from at least one tool call that worked (a refusal,
    a clarifying question or a failed lookup did not)."""
    calls = msg.get("tool_calls") or []
    return msg.get("failure") is None and any(
        isinstance(c.get("result"), dict) and not c["result"].get("error") for c in calls
    )


hint = st.empty()
picked = None  # an example question clicked
if not history:
    with hint.container():
        st.info("Try: click a question, or type your own below.", icon=":material/lightbulb:")
        picked = example_buttons("chat_example")
elif st.sidebar.button("New conversation"):
    history.clear()
    st.session_state.pop("chat_session_id", None)
    st.rerun()

for i, m in enumerate(history):
    render_message(m, i)

again = st.empty()
if history and history[-1].get("role") == "assistant" and not answered(history[-1]):
    with again.container():
        st.caption("Questions the assistant can answer from the order books:")
        picked = example_buttons("chat_again")

question = st.chat_input("Ask about spread, depth, slippage, venues…") or picked
if question:
    hint.empty()
    again.empty()
    history.append({"role": "user", "content": question})
    render_message(history[-1], len(history) - 1)
    history.append(ask_streaming(api, question, len(history)))
