"""Live book: depth chart per venue (GET /api/orderbook/{venue}/{symbol}), top of book, depth
windows, and spread / imbalance over BOOK time (the book's own timestamp, ``book_ts``) from
polling the API: a poll that returns the same book adds no point, so a recorded book (which does
not move) has no history to draw, and the page says so."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from mlm_ui import charts
from mlm_ui.common import (
    api_mode,
    client,
    downloads,
    fmt_compact,
    known_venues,
    page_header,
    raw_json,
    show_failure,
    table,
)
from mlm_ui.files import safe_name
from mlm_ui.shapes import book_level_rows, book_point, stream_rows, window_row
from mlm_ui.timetravel import time_slider
from mlm_ui.units import currencies, fmt_number, fmt_time

MAX_POINTS = 500

page_header(
    "Live book",
    "Cumulative depth per venue, spread and imbalance over book time (polls the API).",
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
window = c4.selectbox(
    "Depth window",
    [10.0, 25.0, 50.0, 100.0],
    index=2,
    key="lb_window",
    format_func=lambda w: f"±{w:g} bps of mid",
)
a1, a2, a3 = st.columns([2, 2, 5])
auto = a1.toggle("Auto-refresh", value=False, key="lb_auto")
stream = a2.toggle(
    "Cross-venue stream",
    value=False,
    key="lb_stream",
    help="Metrics of every venue from WS /ws/stream (a short burst of frames per refresh).",
)
every = a3.select_slider("every (s)", [1, 2, 5, 10, 30], value=5, key="lb_every", disabled=not auto)
# Recorded data: rebuild the books to an instant of the recording (None = the latest books).
as_of = time_slider(api, venues or None, symbol, key="lb_as_of") if venues and symbol.strip() else None


def series_key(venue: str) -> str:
    """One series per venue, symbol, window and instant asked: a new window, or moving the time
    slider, starts a new series."""
    return f"{venue}|{symbol.strip().upper()}|{window:g}" + (f"|{as_of}" if as_of else "")


def live_books() -> None:
    if not venues:
        st.info("Pick at least one venue.", icon=":material/touch_app:")
        return
    if not symbol.strip():
        st.info("Enter a symbol.", icon=":material/touch_app:")
        return
    wanted = {series_key(v) for v in venues}
    series: dict[str, list[dict]] = {
        k: v for k, v in st.session_state.get("lb_series", {}).items() if k in wanted
    }
    st.session_state["lb_series"] = series
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    recorded = api_mode(api) == "recorded"
    st.button("Refresh now", key="lb_refresh")
    tabs = st.tabs(venues) if len(venues) > 1 else [st.container()]
    for venue, tab in zip(venues, tabs, strict=True):
        with tab:
            resp = api.orderbook(venue, symbol, levels=levels, window_bps=window, as_of=as_of)
            if not resp.ok:
                show_failure(resp, f"The {venue} order book")
                continue
            book = resp.data
            pair = book.get("symbol", symbol)
            cur = currencies(pair)
            tob = book.get("top_of_book") or {}
            imb = window_row(book, "imbalance", window) or {}
            depth = window_row(book, "depth", window) or {}
            pts = series.setdefault(series_key(venue), [])
            point = book_point(book, window, now)
            # A point per book state: polling an unchanged book (a recording at its end, a quiet
            # market) repeats the same book time and adds nothing.
            if not pts or pts[-1].get("book_ts") != point.get("book_ts"):
                pts.append(point)
            del pts[:-MAX_POINTS]

            st.markdown(
                f"**{pair} on {venue}** — book time `{fmt_time(book.get('book_ts'))}` UTC"
                + (" · :orange-badge[recorded book]" if recorded else "")
                + (
                    f" · last update received `{fmt_time(prov.get('book_received_ts'))}` UTC"
                    if (prov := book.get("book") or {}).get("as_of")
                    else ""
                )
            )
            spreads = [p["spread_bps"] for p in pts if p.get("spread_bps") is not None]
            imbalances = [p["imbalance"] for p in pts if p.get("imbalance") is not None]
            m = st.columns(3)
            m[0].metric(f"Mid ({cur.quote_label})", fmt_number(tob.get("mid_price"), "price"))
            m[1].metric(
                f"Best bid ({cur.quote_label})",
                fmt_number(tob.get("best_bid"), "price"),
                f"size {fmt_number(tob.get('best_bid_size'), 'size', cur.base_label)}",
                delta_color="off",
                delta_arrow="off",
            )
            m[2].metric(
                f"Best ask ({cur.quote_label})",
                fmt_number(tob.get("best_ask"), "price"),
                f"size {fmt_number(tob.get('best_ask_size'), 'size', cur.base_label)}",
                delta_color="off",
                delta_arrow="off",
            )
            m = st.columns(3)
            m[0].metric(
                "Spread (bps)",
                fmt_number(tob.get("spread_bps"), "bps").removesuffix(" bps"),
                chart_data=spreads if len(spreads) > 1 else None,
                help="(best ask - best bid) / mid, in basis points",
            )
            m[1].metric(
                f"Imbalance ±{window:g} bps (-1 to 1)",
                fmt_number(imb.get("imbalance"), "ratio"),
                chart_data=imbalances if len(imbalances) > 1 else None,
                help="(bid size - ask size) / (bid size + ask size) within the window",
            )
            m[2].metric(
                f"Depth ±{window:g} bps ({cur.quote_label})",
                fmt_compact((depth.get("bid_notional") or 0) + (depth.get("ask_notional") or 0)),
                help=f"bid + ask notional within ±{window:g} bps of mid, in {cur.quote_label}",
            )
            quality = book.get("quality") or {}
            if tob.get("crossed") or quality.get("crossed") or quality.get("stale"):
                st.warning(f"Book quality: {quality}", icon=":material/warning:")
            st.plotly_chart(
                charts.depth_figure(book, title=f"Cumulative depth — {pair} on {venue}"),
                key=f"lb-depth-{venue}",
            )
            downloads(  # the levels the depth chart plots
                book_level_rows(book),
                safe_name("book-levels", venue, pair, book.get("book_ts")),
                key=f"lb-lv-{venue}",
            )
            if len(pts) > 1:
                st.plotly_chart(
                    charts.timeseries_figure(
                        pts,
                        "book_ts",
                        ["spread_bps"],
                        ["imbalance"],
                        title=f"Spread and imbalance ±{window:g} bps over book time ({len(pts)} book states)",
                        names={"imbalance": f"Imbalance ±{window:g} bps (-1 to 1)"},
                        x_title="book time (UTC)",
                        y_range=charts.padded_range(spreads, floor_zero=True),
                        y2_range=[-1, 1],
                    ),
                    key=f"lb-ts-{venue}",
                )
                downloads(pts, safe_name("book-series", venue, pair, f"{window:g}bps"), key=f"lb-ts-{venue}")
            elif recorded:
                st.caption(
                    f"Recorded book: it stays at book time {book.get('book_ts')} between polls, so there is no "
                    "spread / imbalance history to draw. Play the recording at its own pace with "
                    "`mlm up --data ../shared/data --speed 1` to see it move."
                )
            else:
                st.caption(
                    "Spread and imbalance over book time appear once the book changes (refresh, or turn on "
                    "auto-refresh)."
                )
            with st.expander("Depth windows and imbalance"):
                table(
                    book.get("depth") or [],
                    ["window_bps", "bid_size", "bid_notional", "ask_size", "ask_notional"],
                    cur=cur,
                    download=safe_name("depth-windows", venue, pair, book.get("book_ts")),
                )
                table(
                    book.get("imbalance") or [],
                    ["window_bps", "imbalance", "bid_size", "ask_size"],
                    cur=cur,
                    download=safe_name("imbalance-windows", venue, pair, book.get("book_ts")),
                )
            raw_json(
                {k: v for k, v in book.items() if k not in ("bids", "asks")}, "Raw JSON (levels omitted)"
            )


def stream_section() -> None:
    """Spread, imbalance and depth share of every venue from ``WS /ws/stream`` frames."""
    frames, error, url = api.stream(symbol, window, seconds=1.2)
    key = f"{symbol.strip().upper()}|{window:g}"
    store: dict[str, list[dict]] = {
        k: v for k, v in st.session_state.get("lb_stream_rows", {}).items() if k == key
    }
    st.session_state["lb_stream_rows"] = store
    rows = store.setdefault(key, [])
    seen = {(r["venue"], r["book_ts"]) for r in rows}
    for r in stream_rows(frames):  # one row per venue and book state
        if (r["venue"], r["book_ts"]) not in seen:
            seen.add((r["venue"], r["book_ts"]))
            rows.append(r)
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
    m[0].metric(
        "HHI of depth",
        fmt_number(latest[0].get("hhi"), "ratio"),
        help="0 to 1; 1 = one venue holds all depth",
    )
    m[1].metric("Effective venues", fmt_number(latest[0].get("effective_venues"), "ratio"))
    m[2].metric("Book states kept", f"{len(rows):,}")
    if latest[0].get("unavailable"):
        st.caption(f"Unavailable: {latest[0]['unavailable']}")
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        charts.by_venue_figure(
            rows,
            "book_ts",
            "spread_bps",
            "Spread (bps) by venue",
            y_range=charts.padded_range([r.get("spread_bps") for r in rows], floor_zero=True),
        ),
        key="lb-ws-spread",
    )
    c2.plotly_chart(
        charts.by_venue_figure(rows, "book_ts", "imbalance", "Imbalance by venue", y_range=[-1, 1]),
        key="lb-ws-imb",
    )
    latest_rows = {r["venue"]: r for r in rows}  # each venue's last book state
    table(
        list(latest_rows.values()),
        ["venue", "symbol", "book_ts", "mid", "spread_bps", "imbalance", "depth_notional", "share"],
        download=safe_name("stream", symbol, f"{window:g}bps"),
    )


@st.fragment(run_every=every if auto else None)
def page_body() -> None:
    live_books()
    if stream:
        stream_section()


page_body()
