"""Backtest: the same order simulated at each candle of a lookback window (POST /api/backtest):
slippage over time and the high-risk periods."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.common import (
    client,
    downloads,
    fmt,
    page_header,
    scalars_table,
    show_answer,
    show_failure,
    table,
)
from mlm_ui.files import safe_name
from mlm_ui.shapes import (
    TIMEFRAME_S,
    find_series,
    is_number,
    numeric_columns,
    period_bands,
    records,
    time_key,
)
from mlm_ui.units import currencies, fmt_amount, fmt_number, fmt_time, label

SERIES_KEYS = ("series", "intervals_detail", "points", "slippage_series", "rows", "data")
VALUE_KEYS = ("slippage_bps", "cost_bps", "impact_bps")


def price_context(answer: dict[str, Any], data: dict[str, Any]) -> None:
    """Closes over the backtest window (GET /api/history/candles) with the worst interval marked."""
    if not (data.get("start") and data.get("end") and answer.get("symbol")):
        return
    resp = client().candles(
        symbol=answer["symbol"],
        venue=answer.get("venue"),
        timeframe=answer.get("timeframe") or "1h",
        start=data["start"],
        end=data["end"],
    )
    if not resp.ok:
        show_failure(resp, "Candles of the window")
        return
    candles = records(resp.data.get("candles") if isinstance(resp.data, dict) else None)
    if not candles:
        return
    worst = data.get("worst_interval")
    fig = charts.timeseries_figure(
        candles,
        "ts",
        ["close"],
        title=f"{answer['symbol']} close over the window (worst interval marked)",
        cur=currencies(answer["symbol"]),
    )
    if worst:
        fig.add_vline(x=worst, line_dash="dash", line_color=charts.ASK_COLOR)
        fig.add_annotation(
            x=worst,
            yref="paper",
            y=0.98,
            yanchor="top",
            xanchor="left",
            showarrow=False,
            text=f" max slippage {fmt(data.get('max_slippage_bps'))} bps at {worst}",
        )
    st.plotly_chart(fig, key="bt-price")


def render_backtest(answer: dict[str, Any]) -> None:
    # The statistics may come at the top level or under "result" (with the book model beside).
    data = answer.get("result") if isinstance(answer.get("result"), dict) else answer
    cur = currencies(answer.get("symbol"))
    amount = (
        fmt_amount(data.get("size"), cur.base_label)
        if is_number(data.get("size"))
        else fmt_amount(data.get("notional"), cur.quote_label)
    )
    st.markdown(
        f"**{answer.get('symbol', '?')} on {answer.get('venue', '?')}** · {data.get('side', '?')} {amount} "
        f"at every `{answer.get('timeframe', '?')}` candle · lookback {fmt(answer.get('lookback_days'), 1)} days"
    )
    m = st.columns(5)
    bps = lambda x: fmt_number(x, "bps").removesuffix(" bps")  # noqa: E731
    m[0].metric("Avg slippage (bps)", bps(data.get("avg_slippage_bps")), help="vs mid, per interval")
    m[1].metric("Median (bps)", bps(data.get("median_slippage_bps")))
    m[2].metric(
        "Max (bps)",
        bps(data.get("max_slippage_bps")),
        help=f"worst at {fmt_time(data.get('worst_interval'))} UTC",
    )
    threshold = data.get("high_risk_threshold_bps")
    m[3].metric(
        "High-risk intervals",
        fmt(data.get("high_risk_intervals"), 0),
        help=f"intervals with slippage above {fmt(threshold, 0, ' bps')}",
    )
    m[4].metric("Intervals", fmt(data.get("intervals"), 0))
    st.caption(
        f"{fmt_time(data.get('start'))} → {fmt_time(data.get('end'))} UTC (candle times) · model: "
        f"{data.get('model_source', 'n/a')}"
        + (
            f" · {data['extrapolated_intervals']:,} intervals extrapolated"
            if data.get("extrapolated_intervals")
            else ""
        )
    )
    rows = find_series(data, SERIES_KEYS) or find_series(answer, SERIES_KEYS)
    # An empty list of risk periods is a real answer ("none"), not a missing field.
    periods = records(data.get("risk_periods")) or records(data.get("high_risk_periods")) or []
    stem = safe_name(
        "backtest",
        answer.get("venue"),
        answer.get("symbol"),
        data.get("side"),
        data.get("size"),
        answer.get("timeframe"),
    )
    if rows:
        tk = time_key(rows)
        vk = next((k for k in VALUE_KEYS if k in rows[0]), None) or (numeric_columns(rows, [tk]) or [None])[0]
        if tk and vk:
            # The API's risk periods come from every interval (the series may be downsampled);
            # each band runs to the end of its last candle.
            bands = (
                period_bands(periods, TIMEFRAME_S.get(str(answer.get("timeframe"))))
                if isinstance(data.get("risk_periods"), list)
                else None
            )
            st.plotly_chart(
                charts.risk_series_figure(
                    rows,
                    tk,
                    vk,
                    threshold if is_number(threshold) else None,
                    f"{label(vk, cur)} over time (high-risk periods shaded)",
                    bands=bands,
                ),
                key="bt-series",
            )
            bucket = data.get("series_bucket_intervals")
            if is_number(bucket) and bucket > 1:
                st.caption(
                    f"{len(rows):,} points: each the worst of {bucket:g} consecutive intervals "
                    f"({fmt(data.get('intervals'), 0)} in all); risk periods from every interval."
                )
            downloads(rows, f"{stem}-series", key="bt-series")
    else:
        st.info(
            "The API returns summary statistics only (no per-interval slippage series): below, the price "
            "over the same window with the worst interval marked.",
            icon=":material/show_chart:",
        )
        price_context(answer, data)
    if periods:
        st.subheader("Risk periods")
        table(periods, download=f"{stem}-risk-periods", cur=cur)
    elif is_number(threshold):
        st.caption(f"No interval above {threshold:g} bps (the high-risk threshold): no risk period to shade.")
    pct = data.get("slippage_bps_percentiles")
    if isinstance(pct, dict) and pct:
        st.plotly_chart(
            charts.bar_figure(
                [{"percentile": k, "slippage_bps": v} for k, v in pct.items()],
                "percentile",
                "slippage_bps",
                title="Slippage percentiles (bps)",
            ),
            key="bt-pct",
        )
    model = answer.get("model")
    if isinstance(model, dict) and model.get("model_source"):
        st.caption(f"Book model: {model['model_source']}")
    with st.expander("All fields"):
        scalars_table(data, exclude=SERIES_KEYS, cur=cur)


page_header(
    "Backtest",
    "How an order of this size would have fared at each candle of the lookback window (candle history "
    "+ a depth model calibrated on real books).",
)
with st.form("bt_form"):
    c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
    symbol = c1.text_input("Symbol", "BTC/USDT", key="bt_symbol")
    side = c2.radio("Side", ["buy", "sell"], horizontal=True, key="bt_side")
    size = c3.number_input(
        "Size (base units)",
        min_value=0.0,
        value=5.0,
        format="%.6g",
        key="bt_size",
        help="Order size in the base currency (BTC for BTC/USDT), simulated at every candle.",
    )
    lookback = c4.number_input("Lookback (days)", min_value=0.1, value=7.0, key="bt_lookback")
    timeframe = c5.selectbox("Timeframe", ["auto", "1m", "5m", "15m", "1h", "4h", "1d"], key="bt_tf")
    submitted = st.form_submit_button("Run backtest", type="primary", key="bt_submit")
if submitted:
    body: dict[str, Any] = {"symbol": symbol.strip(), "side": side, "size": size, "lookback_days": lookback}
    if timeframe != "auto":
        body["timeframe"] = timeframe
    st.session_state["bt_last"] = client().backtest(body)
show_answer(
    st.session_state.get("bt_last"),
    "The backtest",
    render_backtest,
    "Set an order and press **Run backtest**.",
)
