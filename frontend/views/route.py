"""Route an order: a smart-order-routing split across venues against baselines (POST /api/execute)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.client import ApiResponse
from mlm_ui.common import client, fmt, page_header, raw_json, show_answer, table
from mlm_ui.forms import order_form
from mlm_ui.shapes import is_number, pick, records

CHILD_COLS = [
    "venue",
    "symbol",
    "size",
    "notional",
    "vwap",
    "fee_bps",
    "fee_quote",
    "total_quote",
    "levels_consumed",
]
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
    m = st.columns(4)
    m[0].metric("Fully filled", fmt(pick(data, "fully_filled", default=pick(plan, "fillable"))))
    m[1].metric("Avg price incl. fees", fmt(pick(plan, "avg_price_incl_fees", "avg_price")))
    m[2].metric("Cost vs mid", fmt(data.get("cost_vs_mid_bps"), 2, " bps"))
    m[3].metric("Reference mid", fmt(data.get("reference_mid")))
    if data.get("reason") or pick(plan, "reason"):
        st.warning(pick(data, "reason", default=pick(plan, "reason")), icon=":material/warning:")
    children = records(pick(plan, "children")) or records(data.get("children"))
    st.subheader("Routed plan")
    if children:
        c1, c2 = st.columns([3, 2])
        with c1:
            table(children, CHILD_COLS)
        c2.plotly_chart(
            charts.shares_figure({str(c.get("venue")): c.get("size") for c in children}, "Size per venue"),
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
                    baselines,
                    "name",
                    "savings_bps",
                    title="Savings of the routed plan (bps; positive = routing is cheaper)",
                ),
                key="route-baselines",
            )
        table(baselines, BASE_COLS)
    excluded = data.get("excluded")
    if excluded:
        st.caption("Venues left out:")
        st.json(excluded, expanded=False)
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
body = order_form("route")
if body is not None:
    st.session_state["route_last"] = client().execute(body)
show_answer(
    st.session_state.get("route_last"),
    "Order routing",
    render_routing,
    "Set an order and press **Run**.",
    on_failure=explain_409,
)
