"""Live book: depth chart per venue (GET /api/orderbook/{venue}/{symbol}), top of book, depth
windows, and spread / imbalance over time from polling the API."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from mlm_ui import charts
from mlm_ui.common import client, fmt, fmt_compact, known_venues, page_header, raw_json, show_failure, table
from mlm_ui.shapes import book_point, stream_rows, window_row

MAX_POINTS = 500

page_header(
    "Live book",
    "Cumulative depth per venue, spread and imbalance over time (polls the API; on recorded data the "
    "book is the recording's).",
)
api = client()

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
venues = c1.multiselect("Venues", known_venues(api), default=["binance"], key="lb_venues")
symbol = c2.text_input(
    "Symbol",
    "BTC/USDT",
    key="lb_symbol",
    help="Unified symbol (BTC/USDT, BTC/USDT:USDT) or a base asset (BTC).",
)
levels = c3.select_slider("Levels per side", [20, 50, 100, 200, 500, 1000], value=200, key="lb_levels")
window = c4.selectbox("Window (bps)", [10.0, 25.0, 50.0, 100.0], index=2, key="lb_window")
a1, a2, a3 = st.columns([2, 2, 5])
auto = a1.toggle("Auto-refresh", value=False, key="lb_auto")
stream = a2.toggle(
    "Cross-venue stream",
    value=False,
    key="lb_stream",
    help="Metrics of every venue from WS /ws/stream (a short burst of frames per refresh).",
)
every = a3.select_slider("every (s)", [1, 2, 5, 10, 30], value=5, key="lb_every", disabled=not auto)


def live_books() -> None:
    if not venues:
        st.info("Pick at least one venue.", icon=":material/touch_app:")
        return
    if not symbol.strip():
        st.info("Enter a symbol.", icon=":material/touch_app:")
        return
    series: dict[str, list[dict]] = st.session_state.setdefault("lb_series", {})
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    st.button("Refresh now", key="lb_refresh")
    tabs = st.tabs(venues) if len(venues) > 1 else [st.container()]
    for venue, tab in zip(venues, tabs, strict=True):
        with tab:
            resp = api.orderbook(venue, symbol, levels=levels, window_bps=window)
            if not resp.ok:
                show_failure(resp, f"The {venue} order book")
                continue
            book = resp.data
            tob = book.get("top_of_book") or {}
            imb = window_row(book, "imbalance", window) or {}
            depth = window_row(book, "depth", window) or {}
            key = f"{venue}|{book.get('symbol', symbol)}"
            pts = series.setdefault(key, [])
            pts.append(book_point(book, window, now))
            del pts[:-MAX_POINTS]

            st.markdown(f"**{book.get('symbol', symbol)} on {venue}** — book time `{book.get('book_ts')}`")
            spreads = [p["spread_bps"] for p in pts if p.get("spread_bps") is not None]
            imbalances = [p["imbalance"] for p in pts if p.get("imbalance") is not None]
            m = st.columns(6)
            m[0].metric("Mid", fmt(tob.get("mid_price")))
            m[1].metric(
                "Spread",
                fmt(tob.get("spread_bps"), 3, " bps"),
                chart_data=spreads if len(spreads) > 1 else None,
            )
            m[2].metric(
                "Best bid",
                fmt(tob.get("best_bid")),
                f"size {fmt(tob.get('best_bid_size'), 4)}",
                delta_color="off",
                delta_arrow="off",
            )
            m[3].metric(
                "Best ask",
                fmt(tob.get("best_ask")),
                f"size {fmt(tob.get('best_ask_size'), 4)}",
                delta_color="off",
                delta_arrow="off",
            )
            m[4].metric(
                f"Imbalance ±{window:g} bps",
                fmt(imb.get("imbalance"), 3),
                chart_data=imbalances if len(imbalances) > 1 else None,
                help="(bid size - ask size) / (bid size + ask size) within the window, in [-1, 1]",
            )
            m[5].metric(
                f"Depth ±{window:g} bps",
                fmt_compact((depth.get("bid_notional") or 0) + (depth.get("ask_notional") or 0)),
                help="bid + ask notional within the window (quote units)",
            )
            quality = book.get("quality") or {}
            if tob.get("crossed") or quality.get("crossed") or quality.get("stale"):
                st.warning(f"Book quality: {quality}", icon=":material/warning:")
            st.plotly_chart(
                charts.depth_figure(book, title=f"Cumulative depth — {book.get('symbol')} on {venue}"),
                key=f"lb-depth-{venue}",
            )
            if len(pts) > 1:
                st.plotly_chart(
                    charts.timeseries_figure(
                        pts,
                        "fetched_at",
                        ["spread_bps"],
                        ["imbalance"],
                        title=f"Spread and imbalance ±{window:g} bps over time ({len(pts)} polls)",
                    ),
                    key=f"lb-ts-{venue}",
                )
            else:
                st.caption(
                    "Spread and imbalance over time appear after the next refresh (or turn on auto-refresh)."
                )
            with st.expander("Depth windows and imbalance"):
                table(
                    book.get("depth") or [],
                    ["window_bps", "bid_size", "bid_notional", "ask_size", "ask_notional"],
                )
                table(book.get("imbalance") or [], ["window_bps", "imbalance", "bid_size", "ask_size"])
            raw_json(
                {k: v for k, v in book.items() if k not in ("bids", "asks")}, "Raw JSON (levels omitted)"
            )


def stream_section() -> None:
    """Spread, imbalance and depth share of every venue from ``WS /ws/stream`` frames."""
    frames, error, url = api.stream(symbol, window, seconds=1.2)
    store: dict[str, list[dict]] = st.session_state.setdefault("lb_stream_rows", {})
    rows = store.setdefault(f"{symbol}|{window:g}", [])
    rows.extend(stream_rows(frames))
    del rows[: max(0, len(rows) - MAX_POINTS * 3)]
    st.subheader(f"Cross-venue stream — {symbol} ±{window:g} bps")
    if error:
        st.error(f"**The stream failed** — `{url}`: {error}", icon=":material/power_off:")
    if not rows:
        if not error:
            st.info(f"No metrics frame from `{url}` yet.", icon=":material/hourglass_empty:")
        return
    latest = [m for m in frames if m.get("type") == "metrics"][-1:] or [{}]
    m = st.columns(3)
    m[0].metric("HHI of depth", fmt(latest[0].get("hhi"), 3))
    m[1].metric("Effective venues", fmt(latest[0].get("effective_venues"), 2))
    m[2].metric("Frames kept", len({r["seq"] for r in rows}))
    if latest[0].get("unavailable"):
        st.caption(f"Unavailable: {latest[0]['unavailable']}")
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        charts.by_venue_figure(rows, "ts", "spread_bps", "Spread (bps) by venue"), key="lb-ws-spread"
    )
    c2.plotly_chart(charts.by_venue_figure(rows, "ts", "imbalance", "Imbalance by venue"), key="lb-ws-imb")
    last_seq = rows[-1]["seq"]
    table(
        [r for r in rows if r["seq"] == last_seq],
        ["venue", "symbol", "mid", "spread_bps", "imbalance", "share"],
    )


@st.fragment(run_every=every if auto else None)
def page_body() -> None:
    live_books()
    if stream:
        stream_section()


page_body()
