"""Compare venues: the same order on each venue's book (POST /api/compare)."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.common import client, fmt, page_header, show_answer, table
from mlm_ui.files import safe_name
from mlm_ui.forms import order_form
from mlm_ui.shapes import (
    LEFT_OUT_LABELS,
    first_records,
    is_number,
    left_out_rows,
    numeric_columns,
    pick,
    records,
)
from mlm_ui.timetravel import time_slider
from mlm_ui.units import HELP, currencies, fmt_number, label, rows_currencies

COST_KEYS = ("cost_bps", "slippage_bps", "spread_bps")


def render_comparison(data: dict[str, Any]) -> None:
    found = first_records(data, ("venues", "rows", "results"))
    rows = found[1] if found else []
    cur = rows_currencies(rows, currencies(data.get("symbol")))
    best = pick(data, "best_venue")
    metric = next((k for k in (pick(data, "ranked_by"), *COST_KEYS) if k and any(k in r for r in rows)), None)
    stem = safe_name(
        "compare", data.get("symbol"), data.get("side"), data.get("size") or data.get("notional_requested")
    )
    m = st.columns(4)
    m[0].metric("Best venue", fmt(best))
    if best and metric:
        row = next((r for r in rows if r.get("venue") == best), {})
        m[1].metric(
            f"{label(metric).replace(' (bps)', '')} at {best}",
            fmt_number(row.get(metric), "bps"),
            help=HELP.get(metric),
        )
    m[2].metric("Venues compared", len(rows))
    if data.get("fees_assumed_zero") is not None:
        m[3].metric("Fees assumed zero", fmt(data.get("fees_assumed_zero")))
    reason = pick(data, "best_venue_reason")
    if reason:
        st.caption(f"Why: {reason}")
    if not rows:
        st.info("The API returned no venue rows.", icon=":material/inbox:")
    else:
        # A venue that cannot fill the whole order has a cost over what it could fill (6,023 bps
        # for a thin book), on another scale than the rest: it is named under the chart, and the
        # table keeps its row.
        full = [r for r in rows if r.get("fully_filled") is not False]
        partial = [r for r in rows if r.get("fully_filled") is False]
        if metric and full:
            st.plotly_chart(
                charts.bar_figure(
                    full,
                    "venue",
                    metric,
                    title=f"{label(metric)} by venue (full fills)",
                    highlight=best,
                    y_label=label(metric),
                ),
                key="cmp-bars",
            )
        if metric and partial:
            st.caption(
                "Not charted, they cannot fill the whole order (their cost is over what they could "
                "fill; see the table): "
                + "; ".join(f"{r.get('venue')} {fmt_number(r.get(metric), 'bps')}" for r in partial)
            )
        cols = [
            "venue",
            "symbol",
            "cost_bps",
            "slippage_bps",  # spread_bps (a few thousandths of a bps here) is in the downloads
            "fee_bps",
            "vwap_incl_fees",
            "cost_quote",
            "fully_filled",
            "book_ts",
        ]
        # Short headers so every column fits the page (the full meaning is in each header's tooltip).
        short = {"slippage_bps": "Slippage (bps)", "fully_filled": "Filled", "book_ts": "Book (UTC)"}
        table(rows, cols, cur=cur, download=f"{stem}-venues", labels=short)
        if cur.quote is None:
            st.caption("Prices and notionals are in each row's quote currency (the symbol's second part).")
    conc = data.get("concentration")
    if isinstance(conc, dict) and isinstance(conc.get("shares"), dict) and conc["shares"]:
        c1, c2 = st.columns([2, 3])
        c1.plotly_chart(
            charts.shares_figure(
                conc["shares"],
                f"Depth share ±{conc['window_bps']:g} bps"
                if is_number(conc.get("window_bps"))
                else "Depth share",
            ),
            key="cmp-shares",
        )
        c2.metric("HHI (0 to 1)", fmt_number(conc.get("hhi"), "ratio"))
        c2.metric("Effective venues", fmt_number(conc.get("effective_venue_count"), "ratio"))
    arb = records(data.get("arbitrage"))
    if arb:
        st.subheader("Cross-venue arbitrage check")
        table(
            arb,
            ["buy_venue", "sell_venue", "opportunity", "edge_bps", "contemporaneous", "ts_diff_ms", "reason"],
            cur=cur,
            download=f"{stem}-arbitrage",
        )
    left_out = left_out_rows(data.get("unavailable"), data.get("excluded"))
    if left_out:
        st.subheader("Venues left out")
        table(
            left_out,
            ["venue", "why", "reason"],
            download=f"{stem}-left-out",
            static=True,
            labels=LEFT_OUT_LABELS,
        )
    extra = [c for c in numeric_columns(rows) if c not in COST_KEYS]
    if rows and extra and not metric:
        st.caption("Numeric fields: " + ", ".join(label(c, cur) for c in extra))


page_header("Compare venues", "The same taker order walked through each venue's book: slippage, fees, depth.")
as_of = time_slider(
    client(),
    st.session_state.get("cmp_venues") or None,
    st.session_state.get("cmp_symbol") or "BTC",
    key="cmp_as_of",
)
body = order_form("cmp")
if body is not None:
    st.session_state["cmp_last"] = client().compare(body, as_of=as_of)
show_answer(
    st.session_state.get("cmp_last"), "Venue comparison", render_comparison, "Set an order and press **Run**."
)
