"""Compare venues: the same order on each venue's book (POST /api/compare)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.common import client, fmt, page_header, show_answer, table
from mlm_ui.forms import order_form
from mlm_ui.shapes import first_records, numeric_columns, pick, records

COST_KEYS = ("cost_bps", "slippage_bps", "spread_bps")


def render_comparison(data: dict[str, Any]) -> None:
    found = first_records(data, ("venues", "rows", "results"))
    rows = found[1] if found else []
    best = pick(data, "best_venue")
    metric = next((k for k in (pick(data, "ranked_by"), *COST_KEYS) if k and any(k in r for r in rows)), None)
    m = st.columns(4)
    m[0].metric("Best venue", fmt(best))
    if best and metric:
        row = next((r for r in rows if r.get("venue") == best), {})
        m[1].metric(f"Best {metric}", fmt(row.get(metric), 2, " bps"))
    m[2].metric("Venues compared", len(rows))
    if data.get("fees_assumed_zero") is not None:
        m[3].metric("Fees assumed zero", fmt(data.get("fees_assumed_zero")))
    reason = pick(data, "best_venue_reason")
    if reason:
        st.caption(f"Why: {reason}")
    if not rows:
        st.info("The API returned no venue rows.", icon=":material/inbox:")
    else:
        if metric:
            st.plotly_chart(
                charts.bar_figure(rows, "venue", metric, title=f"{metric} by venue", highlight=best),
                key="cmp-bars",
            )
        cols = [
            "venue",
            "symbol",
            *COST_KEYS,
            "vwap",
            "vwap_incl_fees",
            "fee_bps",
            "filled_size",
            "fully_filled",
        ]
        table(rows, cols)
    conc = data.get("concentration")
    if isinstance(conc, dict) and isinstance(conc.get("shares"), dict) and conc["shares"]:
        c1, c2 = st.columns([2, 3])
        c1.plotly_chart(
            charts.shares_figure(conc["shares"], f"Depth share ±{conc.get('window_bps', '?')} bps"),
            key="cmp-shares",
        )
        c2.metric("HHI", fmt(conc.get("hhi"), 3))
        c2.metric("Effective venues", fmt(conc.get("effective_venue_count"), 2))
    arb = records(data.get("arbitrage"))
    if arb:
        st.subheader("Cross-venue arbitrage check")
        table(arb, ["buy_venue", "sell_venue", "opportunity", "edge_bps", "contemporaneous", "ts_diff_ms"])
    missing = pick(data, "unavailable", "excluded")
    if missing:
        st.caption("Left out:")
        st.json(missing, expanded=False)
    extra = [c for c in numeric_columns(rows) if c not in COST_KEYS]
    if rows and extra and not metric:
        st.caption("Numeric fields: " + ", ".join(extra))


page_header("Compare venues", "The same taker order walked through each venue's book: slippage, fees, depth.")
body = order_form("cmp")
if body is not None:
    st.session_state["cmp_last"] = client().compare(body)
show_answer(
    st.session_state.get("cmp_last"), "Venue comparison", render_comparison, "Set an order and press **Run**."
)
