"""Pairs: hedge ratio, spread, z-score, correlation and cointegration of two assets
(GET /api/pairs), with the round-trip cost of trading the pair when the API gives it."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.common import client, downloads, fmt, page_header, scalars_table, show_answer, table
from mlm_ui.files import safe_name
from mlm_ui.shapes import find_series, pick, records, time_key
from mlm_ui.units import Currencies, currencies, fmt_number, fmt_time

SERIES_KEYS = ("series", "points", "history", "rows", "data")
LEG_COLS = [
    "leg",
    "phase",
    "venue",
    "symbol",
    "side",
    "size",
    "vwap",
    "slippage_bps",
    "fee_bps",
    "cost_quote",
]


def render_pairs(data: dict[str, Any]) -> None:
    an = data.get("analysis") if isinstance(data.get("analysis"), dict) else data
    name_a, name_b = an.get("name_a") or data.get("symbol_a"), an.get("name_b") or data.get("symbol_b")
    stem = safe_name("pairs", data.get("venue"), name_a, name_b, data.get("timeframe"))
    m = st.columns(5)
    m[0].metric("Hedge ratio (OLS)", fmt(an.get("hedge_ratio_ols"), 4))
    m[1].metric("z-score (last)", fmt(an.get("zscore_last"), 2))
    m[2].metric("Return corr. (last)", fmt(an.get("return_corr_last"), 3))
    coint = an.get("coint") or {}
    m[3].metric("Cointegration p", fmt(coint.get("p_value"), 3), help="Engle-Granger; < 0.05 = cointegrated")
    hl = an.get("half_life") or {}
    m[4].metric("Half-life", fmt(hl.get("half_life_hours"), 1, " h"))
    st.caption(
        f"{an.get('name_a', '?')} vs {an.get('name_b', '?')} · {fmt(an.get('n_obs'), 0)} points · "
        f"{fmt_time(an.get('start'))} → {fmt_time(an.get('end'))} UTC"
    )
    if an.get("zscore_reason"):
        st.caption(f"z-score: {an['zscore_reason']}")
    rows = find_series(data, SERIES_KEYS)
    if rows:
        tk = time_key(rows)
        spread_col = next((k for k in ("spread", "log_spread", "spread_log") if k in rows[0]), None)
        z_col = next((k for k in ("zscore", "z", "z_score") if k in rows[0]), None)
        corr_col = next(
            (k for k in ("return_corr", "corr", "correlation", "rolling_corr") if k in rows[0]), None
        )
        if spread_col:
            st.plotly_chart(
                charts.timeseries_figure(
                    rows,
                    tk,
                    [spread_col],
                    title="Spread (log a - beta log b - alpha)",
                    names={spread_col: f"log spread {name_a} vs {name_b}"},
                    y_title="log spread (log price units)",
                ),
                key="pairs-spread",
            )
        if z_col:
            st.plotly_chart(
                charts.timeseries_figure(
                    rows,
                    tk,
                    [z_col],
                    title="Rolling z-score of the spread",
                    hlines=[(2.0, "+2"), (-2.0, "-2")],
                    names={z_col: f"z-score ({an.get('zscore_window', '?')} points)"},
                    y_title="z-score (standard deviations)",
                ),
                key="pairs-zscore",
            )
        if corr_col:
            st.plotly_chart(
                charts.timeseries_figure(
                    rows,
                    tk,
                    [corr_col],
                    title="Rolling return correlation",
                    names={corr_col: f"correlation ({an.get('corr_window', '?')} points)"},
                    y_title="correlation (-1 to 1)",
                    y_range=[-1.05, 1.05],
                ),
                key="pairs-corr",
            )
        downloads(rows, f"{stem}-series", key="pairs-series")
    else:
        st.info(
            "The API returned statistics only (no spread / z-score series to plot).",
            icon=":material/show_chart:",
        )
    cost = pick(data, "trade_cost", "cost")
    if not isinstance(cost, dict) and data.get("trade_cost_reason"):
        st.caption(f"Round-trip cost: {data['trade_cost_reason']}")
    if isinstance(cost, dict):
        legs = records(cost.get("legs")) or []
        flat_legs = [
            {**{k: v for k, v in leg.items() if k != "impact"}, **(leg.get("impact") or {})} for leg in legs
        ]
        quotes = {currencies(r.get("symbol")).quote for r in flat_legs} - {None}
        quote = quotes.pop() if len(quotes) == 1 else currencies(name_a).quote
        st.subheader("Round trip of the pair trade")
        c = st.columns(3)
        c[0].metric("Round-trip cost", fmt(cost.get("round_trip_cost_bps"), 2, " bps"))
        c[1].metric(
            f"Round-trip cost ({quote or 'quote'})", fmt_number(cost.get("round_trip_cost_quote"), "notional")
        )
        c[2].metric("Break-even z move", fmt(cost.get("breakeven_zscore_move"), 2))
        if flat_legs:
            table(flat_legs, LEG_COLS, cur=Currencies(None, quote), download=f"{stem}-legs")
            st.caption("Sizes are in each leg's base currency (the first part of its symbol).")
    with st.expander("Tests and all fields"):
        scalars_table(an, exclude=SERIES_KEYS)


page_header("Pairs", "Spread, z-score and correlation of two assets from candle history.")
with st.form("pairs_form"):
    c1, c2, c3, c4, c5 = st.columns(5)
    a = c1.text_input("Symbol A", "BTC/USDT", key="pairs_a")
    b = c2.text_input("Symbol B", "ETH/USDT", key="pairs_b")
    timeframe = c3.selectbox("Timeframe", ["auto", "1m", "5m", "15m", "1h", "4h", "1d"], key="pairs_tf")
    lookback = c4.number_input("Lookback (days)", min_value=0.1, value=7.0, key="pairs_lookback")
    size = c5.number_input(
        "Size of A (base, for costs)", min_value=0.0, value=1.0, format="%.6g", key="pairs_size"
    )
    submitted = st.form_submit_button("Analyse", type="primary", key="pairs_submit")
if submitted:
    params: dict[str, Any] = {"symbol_a": a.strip(), "symbol_b": b.strip(), "lookback_days": lookback}
    if timeframe != "auto":
        params["timeframe"] = timeframe
    if size > 0:
        params["size"] = size
    st.session_state["pairs_last"] = client().pairs(**params)
show_answer(
    st.session_state.get("pairs_last"),
    "Pairs analysis",
    render_pairs,
    "Pick two symbols and press **Analyse**.",
)
