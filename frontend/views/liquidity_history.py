"""Liquidity history: how a book's depth, spread, imbalance or price moved, from the rows stored
while ingest ran (GET /api/history/liquidity), one line per venue."""

from __future__ import annotations

from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.common import client, fmt, page_header, raw_json, show_failure, table
from mlm_ui.shapes import records

METRICS = ["depth", "bid_depth", "ask_depth", "imbalance", "spread_bps", "mid", "microprice"]
WINDOWS = [10.0, 25.0, 50.0, 100.0]
LOOKBACKS = {"Last 15 min": 900, "Last hour": 3600, "Last 24 h": 86_400, "Today (UTC)": None, "Everything": 0}

page_header(
    "Liquidity history",
    "Stored samples of each book (one per second of book time while ingest runs). On recorded data "
    '"now" is the end of the recording.',
)
api = client()
c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 1, 2])
symbol = c1.text_input("Symbol", "BTC", key="lh_symbol", help="Base asset (BTC) or pair (ETH/USDT).")
venue = c2.text_input("Venue", "binance", key="lh_venue", help="ccxt id; empty = every venue.")
metric = c3.selectbox("Metric", METRICS, key="lh_metric")
window_bps = c4.selectbox("Window (bps)", WINDOWS, index=0, key="lh_window", disabled="depth" not in metric
                          and metric != "imbalance")  # fmt: skip
span = c5.selectbox("Window", list(LOOKBACKS), index=1, key="lh_span")
if not symbol.strip():
    st.info("Enter a symbol.", icon=":material/touch_app:")
    st.stop()

params: dict[str, Any] = {"symbol": symbol.strip(), "metric": metric}
if venue.strip():
    params["venue"] = venue.strip()
if "depth" in metric or metric == "imbalance":
    params["window_bps"] = window_bps
look = LOOKBACKS[span]
if look is None:
    params["period"] = "today"
elif look:
    params["lookback_s"] = look
resp = api.liquidity_history(**params)
if not resp.ok:
    show_failure(resp, "Liquidity history")
    st.stop()
data = resp.data if isinstance(resp.data, dict) else {}
series = records(data.get("series")) or []
rows: list[dict[str, Any]] = []
columns: list[str] = []
for s in series:
    col = f"{s.get('venue')} {s.get('symbol')}"
    columns.append(col)
    for p in records(s.get("points")) or []:
        rows.append({"ts": p.get("ts"), col: p.get("value")})
rows.sort(key=lambda r: str(r.get("ts")))
summary = data.get("summary") or {}
unit = data.get("unit") or ""
m = st.columns(4)
m[0].metric("First", fmt(summary.get("first")), help=str(summary.get("first_ts")))
m[1].metric("Last", fmt(summary.get("last")), help=str(summary.get("last_ts")))
m[2].metric("Max", fmt(summary.get("max")), help=f"{summary.get('max_ts')} {summary.get('max_venue') or ''}")
m[3].metric("Min", fmt(summary.get("min")), help=f"{summary.get('min_ts')} {summary.get('min_venue') or ''}")
st.caption(f"{data.get('metric_description', '')} · {unit} · {data.get('window', '')}")
if rows:
    st.plotly_chart(
        charts.timeseries_figure(
            rows, "ts", columns, names={c: c for c in columns}, y_title=f"{metric} ({unit})"
        ),
        use_container_width=True,
        key="lh_chart",
    )
else:
    st.info("No stored sample in this window.", icon=":material/inbox:")
src = data.get("source") or {}
st.caption(
    f"Source: {src.get('rows')} stored rows of {' + '.join(src.get('tables') or [])} ({src.get('database')}), "
    f"book time {src.get('first_ts')} → {src.get('last_ts')}; now = {src.get('reference')} ({src.get('reference_ts')})."
)
table([{"venue": s.get("venue"), "symbol": s.get("symbol"), **(s.get("summary") or {})} for s in series],
      download="liquidity-history-summary")  # fmt: skip
for note in data.get("notes") or []:
    st.caption(note)
raw_json(data)
