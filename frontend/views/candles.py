"""Candles: stored OHLCV history as candlesticks with volume bars (GET /api/history/candles)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import streamlit as st
from mlm_ui import charts
from mlm_ui.client import ApiResponse
from mlm_ui.common import client, downloads, fmt, page_header, raw_json, show_failure, table
from mlm_ui.files import frame, safe_name
from mlm_ui.shapes import TIMEFRAME_S, is_number, records
from mlm_ui.units import currencies, fmt_number, fmt_time

TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
# Most candles asked for in one call (the API allows 50,000): a chart of more is slow in a browser.
MAX_CANDLES = 20_000
CANDLE_COLS = ["ts", "open", "high", "low", "close", "volume"]


def _iso(d: date) -> str:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _ts(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def show_stored(resp: ApiResponse) -> bool:
    """A 404 with the API's list of stored series: say so and show that list as a table."""
    available = records(resp.data.get("available")) if isinstance(resp.data, dict) else None
    if resp.status != 404 or not available:
        return False
    st.warning(
        f"**No candles for this choice.** {str(resp.detail).split(' Stored:')[0]} Stored series:",
        icon=":material/search_off:",
    )
    rows = [
        {
            "venue": a.get("venue"),
            "symbol": a.get("symbol"),
            "timeframe": a.get("timeframe"),
            "start": datetime.fromtimestamp(a["first_ts_ms"] / 1000, UTC).isoformat().replace("+00:00", "Z")
            if is_number(a.get("first_ts_ms"))
            else None,
            "end": datetime.fromtimestamp(a["last_ts_ms"] / 1000, UTC).isoformat().replace("+00:00", "Z")
            if is_number(a.get("last_ts_ms"))
            else None,
            "candles": a.get("count"),
        }
        for a in available
    ]
    table(rows, labels={"timeframe": "Timeframe", "candles": "Candles"}, download="stored-candle-series")
    return True


page_header(
    "Candles",
    "OHLCV candle history stored by the API: candlesticks with volume, times in UTC (candle open time).",
)
api = client()
c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 2, 2])
symbol = c1.text_input(
    "Symbol", "BTC/USDT", key="cd_symbol", help="Unified symbol (BTC/USDT) or base asset (BTC)."
)
venue = c2.text_input(
    "Venue", "binance", key="cd_venue", help="ccxt id of the venue whose candles are stored."
)
timeframe = c3.selectbox("Timeframe", TIMEFRAMES, index=TIMEFRAMES.index("1h"), key="cd_tf")
window = c4.radio("Window", ["Latest", "Between dates"], horizontal=True, key="cd_window")
lookback = c5.number_input(
    "Lookback (days)",
    min_value=0.01,
    max_value=3650.0,
    value=14.0,
    key="cd_lookback",
    disabled=window != "Latest",
    help="Days ending at the last stored candle.",
)

if not symbol.strip():
    st.info("Enter a symbol.", icon=":material/touch_app:")
    st.stop()

base_params: dict[str, Any] = {
    "symbol": symbol.strip(),
    "venue": venue.strip() or None,
    "timeframe": timeframe,
}
# The last stored candle anchors both windows (recorded history ends long before today).
last = api.candles(**base_params, limit=1)
if not last.ok:
    if not show_stored(last):
        show_failure(last, "Candle history")
    st.stop()
last_rows = records(last.data.get("candles")) or []
last_ts = _ts(last_rows[-1]["ts"]) if last_rows else None
if last_ts is None:
    st.info("The API has no candle for this choice.", icon=":material/inbox:")
    raw_json(last.data)
    st.stop()

if window == "Latest":
    # ``lookback`` days of candles ending with the last one: the first opens one step later.
    step_s = TIMEFRAME_S.get(timeframe, 0)
    start_dt = last_ts - timedelta(days=float(lookback)) + timedelta(seconds=step_s)
    params = {**base_params, "start": start_dt.isoformat().replace("+00:00", "Z")}
else:
    d1, d2 = st.columns(2)
    first_day = d1.date_input(
        "From (UTC date)", (last_ts - timedelta(days=7)).date(), key="cd_from", max_value=last_ts.date()
    )
    last_day = d2.date_input("To (UTC date, inclusive)", last_ts.date(), key="cd_to")
    if last_day < first_day:
        st.error(
            f"**To ({last_day}) is before From ({first_day})**: pick a later To date.",
            icon=":material/event_busy:",
        )
        st.stop()
    params = {**base_params, "start": _iso(first_day), "end": _iso(last_day + timedelta(days=1))}

resp = api.candles(**params, limit=MAX_CANDLES)
if not resp.ok:
    if not show_stored(resp):
        show_failure(resp, "Candle history")
    st.stop()
data = resp.data if isinstance(resp.data, dict) else {}
candles = records(data.get("candles")) or []
pair = str(data.get("symbol") or symbol)
cur = currencies(pair)
if not candles:
    st.info(
        f"No {timeframe} candles of {pair} on {data.get('venue', venue)} in {params.get('start')} → "
        f"{params.get('end', 'the last candle')}.",
        icon=":material/inbox:",
    )
    raw_json(data)
    st.stop()

first_c, last_c = candles[0], candles[-1]
closes = [c["close"] for c in candles if is_number(c.get("close"))]
change_pct = (closes[-1] / closes[0] - 1) * 100 if len(closes) > 1 and closes[0] else None
m = st.columns(5)
m[0].metric(
    f"Last close ({cur.quote_label})", fmt_number(last_c.get("close"), "price"), help=f"at {last_c.get('ts')}"
)
m[1].metric("Change over the window", fmt(change_pct, 2, "%"), help="last close / first close - 1")
m[2].metric(f"High ({cur.quote_label})", fmt_number(max(c["high"] for c in candles), "price"))
m[3].metric(f"Low ({cur.quote_label})", fmt_number(min(c["low"] for c in candles), "price"))
m[4].metric(
    f"Volume ({cur.base_label})",
    fmt_number(sum(c["volume"] for c in candles if is_number(c.get("volume"))), "notional"),
    help="Sum of the candles' volume, base units",
)
source_tf = data.get("source_timeframe")
resampled = f" (resampled from stored {source_tf})" if source_tf and source_tf != timeframe else ""
truncated = len(candles) >= MAX_CANDLES
st.caption(
    f"{len(candles):,} {timeframe} candles{resampled} of {pair} on {data.get('venue', venue)}: "
    f"{fmt_time(first_c.get('ts'))} → {fmt_time(last_c.get('ts'))} UTC (open times)"
    + (f"; the latest {MAX_CANDLES:,} of the window (pick a coarser timeframe for more)" if truncated else "")
)
st.plotly_chart(
    charts.candles_figure(candles, pair, title=f"{pair} on {data.get('venue', venue)} — {timeframe} candles"),
    key="cd-chart",
)
stem = safe_name("candles", data.get("venue", venue), pair, timeframe, first_c.get("ts"), last_c.get("ts"))
downloads(frame(candles, CANDLE_COLS), stem, key="cd-candles")
with st.expander(f"Candles as a table ({len(candles):,} rows)"):
    table(candles, CANDLE_COLS, cur=cur)
raw_json({k: v for k, v in data.items() if k != "candles"}, "Raw JSON (candles omitted)")
