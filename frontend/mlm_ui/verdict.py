"""The yes/no verdict of an "is there enough liquidity ..." answer, with its reason (pure: no
Streamlit). The assistant decides that a question asks for a yes/no and opens its answer with
"Yes:" / "No:"; the verdict box restates that word with the market-impact tool's own figures."""

from __future__ import annotations

import re
from typing import Any

from mlm_ui.shapes import is_number
from mlm_ui.units import currencies, fmt_amount, fmt_number, fmt_time

#: The answer opens with a yes/no (the assistant's verdict on "is there enough liquidity...").
VERDICT = re.compile(r"\s*(yes|no)\b\s*[:,.\u2014-]", re.I)


def liquidity_verdict(answer: str, tool_calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A yes/no verdict box for an answer that opens with "Yes:" / "No:" on a market-impact result:
    the verdict and its reason from the tool's own figures (whether the visible side fills the whole
    order, at what VWAP and slippage). None when the answer is not a yes/no, or when its word and
    the tool's ``fully_filled`` disagree (then the answer's text stands alone)."""
    m = VERDICT.match(answer or "")
    result = next(
        (
            c["result"]
            for c in tool_calls
            if c.get("tool") == "market_impact"
            and isinstance(c.get("result"), dict)
            and not c["result"].get("error")
        ),
        None,
    )
    if m is None or result is None or not isinstance(result.get("fully_filled"), bool):
        return None
    yes = result["fully_filled"]
    if yes != (m.group(1).lower() == "yes"):
        return None
    cur = currencies(result.get("symbol"))
    side = "ask" if result.get("side") == "buy" else "bid"
    size, notional = result.get("size"), result.get("notional_requested")
    asked = fmt_amount(size, cur.base_label) if is_number(size) else fmt_amount(notional, cur.quote_label)
    where = f"The visible {side} side of {result.get('symbol')} on {result.get('venue')} (book {fmt_time(result.get('book_ts'))} UTC)"
    price = (
        f"a VWAP of {fmt_number(result.get('vwap'), 'price', cur.quote_label)}, "
        f"{fmt_number(result.get('slippage_bps'), 'bps')} from the mid"
    )
    if yes:
        n = result.get("levels_consumed")
        levels = f"{n} price level" + ("" if n == 1 else "s")
        reason = f"{where} fills the whole {asked} order at {price}, over {levels}."
    else:
        filled = fmt_number(result.get("filled_size"), "size", cur.base_label)
        reason = (
            f"{where} fills only {filled} of the {asked} order (at {price}); nothing is visible beyond that."
        )
    return {"yes": yes, "reason": reason}
