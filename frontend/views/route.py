"""Route an order: a smart-order-routing split across venues against baselines (POST /api/execute)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.client import ApiResponse
from mlm_ui.common import client, fmt, page_header, raw_json, show_answer, table
from mlm_ui.files import safe_name
from mlm_ui.forms import order_form
from mlm_ui.shapes import LEFT_OUT_LABELS, is_number, left_out_rows, pick, records
from mlm_ui.timetravel import time_slider
from mlm_ui.units import currencies, fmt_number, rows_currencies

CHILD_COLS = [
    "venue",
    "symbol",
    "size",
    "vwap",
    "fee_bps",
    "fee_quote",
    "total_quote",
    "levels_consumed",
    "book_ts",
]
BASELINE_WORDS = {
    "routed": "Routed plan",
    "best_single_venue": "Best single venue",
    "pro_rata_depth": "Pro rata by depth",
    "equal_split": "Equal split",
}
BASE_COLS = [
    "name",
    "fillable",
    "avg_price_incl_fees",
    "total_quote",
    "savings_bps",
    "savings_quote",
    "reason",
]


def render_routing(data: dict[str, Any]) -> None:
    plan = data.get("routed") if isinstance(data.get("routed"), dict) else pick(data, "plan", default={})
    children = records(pick(plan, "children")) or records(data.get("children")) or []
    venues_used = records(data.get("venues")) or []
    # The plan's prices are in the quote currency of its books (USDT spot, USD inverse perps).
    cur = rows_currencies(children or venues_used, currencies(data.get("symbol")))
    stem = safe_name(
        "route", data.get("symbol"), data.get("side"), data.get("size") or data.get("notional_requested")
    )
    m = st.columns(4)
    m[0].metric("Fully filled", fmt(pick(data, "fully_filled", default=pick(plan, "fillable"))))
    m[1].metric(
        f"Avg price incl. fees ({cur.quote_label})",
        fmt_number(pick(plan, "avg_price_incl_fees", "avg_price"), "price"),
    )
    m[2].metric(
        "Cost vs mid",
        fmt_number(data.get("cost_vs_mid_bps"), "bps"),
        help=f"{fmt_number(data.get('cost_vs_mid_quote'), 'notional', cur.quote_label)} against the reference mid",
    )
    m[3].metric(f"Reference mid ({cur.quote_label})", fmt_number(data.get("reference_mid"), "price"))
    if data.get("reason") or pick(plan, "reason"):
        st.warning(pick(data, "reason", default=pick(plan, "reason")), icon=":material/warning:")
    st.subheader("Routed plan")
    if children:
        table(children, CHILD_COLS, cur=cur, download=f"{stem}-plan")
        if len(children) == 1:
            st.caption(
                f"The whole order goes to **{children[0].get('venue')}**: no split was cheaper after fees "
                "(see the baselines below)."
            )
        else:
            c1, _ = st.columns([2, 3])
            c1.plotly_chart(
                charts.shares_figure(
                    {str(c.get("venue")): c.get("size") for c in children},
                    f"Size per venue ({cur.base_label})",
                ),
                key="route-split",
            )
    else:
        st.caption("No child orders in the answer.")
    baselines = records(data.get("baselines"))
    if baselines:
        st.subheader("Against the baselines")
        if any(is_number(b.get("savings_bps")) for b in baselines):
            st.plotly_chart(
                charts.bar_figure(
                    [{**b, "name": BASELINE_WORDS.get(str(b.get("name")), b.get("name"))} for b in baselines],
                    "name",
                    "savings_bps",
                    title="Savings of the routed plan against each baseline (bps; positive = routing is cheaper)",
                    y_label="savings of the routed plan (bps)",
                ),
                key="route-baselines",
            )
        table(
            baselines,
            BASE_COLS,
            cur=cur,
            download=f"{stem}-baselines",
            display={"name": lambda n: BASELINE_WORDS.get(str(n), n)},
        )
    # Books dropped by the routing checks (stale, crossed, not contemporaneous, at your request)
    # and venues with no usable book of the asset at all.
    left_out = left_out_rows(data.get("excluded"), data.get("unavailable"))
    if left_out:
        st.subheader("Venues left out")
        table(
            left_out,
            ["venue", "why", "reason"],
            download=f"{stem}-left-out",
            static=True,
            labels=LEFT_OUT_LABELS,
        )
    if data.get("fees_assumed_zero"):
        st.caption("No fee table was configured: fees assumed zero.")


def explain_409(resp: ApiResponse) -> bool:
    """A 409 (the API is not live) is an expected state of this page, not a failure."""
    if resp.status != 409:
        return False
    st.warning(
        f"**Not executed** — the API answered 409: {resp.detail}  \n"
        "Order execution needs the API in live mode; on recorded data use *Compare venues* to see "
        "the cost of the same order on each venue.",
        icon=":material/pause_circle:",
    )
    raw_json(resp.data, "Response")
    return True


page_header(
    "Route an order",
    "Split a taker order across venues (smart order routing) and compare with the best single venue, "
    "pro-rata-by-depth and equal-split baselines.",
)
as_of = time_slider(
    client(),
    st.session_state.get("route_venues") or None,
    st.session_state.get("route_symbol") or "BTC",
    key="route_as_of",
)
body = order_form("route")
if body is not None:
    st.session_state["route_last"] = client().execute(body, as_of=as_of)
show_answer(
    st.session_state.get("route_last"),
    "Order routing",
    render_routing,
    "Set an order and press **Run**.",
    on_failure=explain_409,
)
