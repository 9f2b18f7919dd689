"""Plotly figures of the frontend (pure: data in, ``go.Figure`` out; no Streamlit, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlm_ui.shapes import cumulative, is_number, threshold_periods
from mlm_ui.units import Currencies, currencies, fmt_number, kind_of, label

BID_COLOR = "#16a34a"
ASK_COLOR = "#dc2626"
ACCENT = "#2563eb"
MUTED = "#6b7280"


def _layout(fig: go.Figure, title: str | None, height: int = 380) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        hovermode="x unified",
    )
    return fig


def depth_figure(book: Mapping[str, Any], title: str | None = None) -> go.Figure:
    """Cumulative depth of an ``/api/orderbook`` answer: bids (left of mid) and asks (right), in
    base units, with the mid price as a dashed line. Hover shows the cumulative quote notional.
    Axes name the currencies of the book's symbol (price in quote per base, size in base)."""
    cur = currencies(book.get("symbol"))
    fig = go.Figure()
    for side, color, name in (("bids", BID_COLOR, "Bids"), ("asks", ASK_COLOR, "Asks")):
        prices, cum, notional = cumulative(book.get(side) or [])
        if not prices:
            continue
        fig.add_trace(
            go.Scatter(
                x=prices,
                y=cum,
                name=name,
                mode="lines",
                line={"shape": "hv" if side == "asks" else "vh", "color": color},
                fill="tozeroy",
                customdata=notional,
                hovertemplate=f"%{{x:,.2f}} {cur.quote_label}: %{{y:,.4f}} {cur.base_label} cumulative "
                f"(%{{customdata:,.0f}} {cur.quote_label})<extra></extra>",
            )
        )
    mid = (book.get("top_of_book") or {}).get("mid_price")
    if is_number(mid):
        fig.add_vline(
            x=mid,
            line_dash="dash",
            line_color=MUTED,
            annotation_text=f"mid {fmt_number(mid, 'price', cur.quote_label)}",
        )
    fig.update_xaxes(title_text=f"price ({cur.quote_label} per {cur.base_label})", tickformat=",")
    fig.update_yaxes(title_text=f"cumulative size ({cur.base_label})", tickformat=",")
    return _layout(fig, title)


def impact_curve_figure(
    points: Sequence[Mapping[str, Any]],
    x_key: str = "size",
    title: str | None = None,
    highlight_x: float | None = None,
    x_label: str = "order size (base units)",
) -> go.Figure:
    """Slippage vs mid (bps) against order size; ``highlight_x`` marks the size that was asked."""
    pts = [p for p in points if is_number(p.get(x_key)) and is_number(p.get("slippage_bps"))]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p[x_key] for p in pts],
            y=[p["slippage_bps"] for p in pts],
            mode="lines+markers",
            name="slippage vs mid (bps)",
            line={"color": ACCENT},
            hovertemplate="%{x:,.4g}: %{y:.2f} bps<extra></extra>",
        )
    )
    partial = [p for p in pts if p.get("fully_filled") is False]
    if partial:
        fig.add_trace(
            go.Scatter(
                x=[p[x_key] for p in partial],
                y=[p["slippage_bps"] for p in partial],
                mode="markers",
                name="book exhausted (partial fill)",
                marker={"color": ASK_COLOR, "symbol": "x", "size": 10},
            )
        )
    if highlight_x is not None:
        hit = [p for p in pts if p[x_key] == highlight_x]
        if hit:
            fig.add_trace(
                go.Scatter(
                    x=[highlight_x],
                    y=[hit[0]["slippage_bps"]],
                    mode="markers+text",
                    text=[f"{hit[0]['slippage_bps']:.2f} bps"],
                    textposition="top left",
                    name="your order",
                    marker={"color": "#f59e0b", "size": 13},
                )
            )
    fig.update_xaxes(title_text=x_label)
    fig.update_yaxes(title_text="slippage vs mid (bps)")
    return _layout(fig, title)


def bar_figure(
    rows: Sequence[Mapping[str, Any]],
    x_key: str,
    y_key: str,
    title: str | None = None,
    highlight: Any = None,
    y_label: str | None = None,
) -> go.Figure:
    """One bar per row; the bar whose ``x`` equals ``highlight`` is drawn in the accent colour.
    The y axis is ``y_label`` or the trader's label of ``y_key`` (with its unit)."""
    rows = [r for r in rows if is_number(r.get(y_key))]
    xs = [str(r.get(x_key)) for r in rows]
    colors = [ACCENT if highlight is not None and r.get(x_key) == highlight else MUTED for r in rows]
    kind = kind_of(y_key)
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=[r[y_key] for r in rows],
            marker_color=colors,
            text=[fmt_number(r[y_key], kind) for r in rows],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_yaxes(title_text=y_label or label(y_key), tickformat=",")
    fig.update_layout(hovermode="closest")
    return _layout(fig, title)


def timeseries_figure(
    rows: Sequence[Mapping[str, Any]],
    t_key: str,
    left: Sequence[str],
    right: Sequence[str] = (),
    title: str | None = None,
    bands: Sequence[tuple[Any, Any]] = (),
    hlines: Sequence[tuple[float, str]] = (),
    names: Mapping[str, str] | None = None,
    cur: Currencies | None = None,
    x_title: str = "time (UTC)",
    y_title: str | None = None,
    y2_title: str | None = None,
    y_range: Sequence[float] | None = None,
    y2_range: Sequence[float] | None = None,
) -> go.Figure:
    """Lines of ``left`` columns (left axis) and ``right`` columns (right axis) against ``t_key``;
    ``bands`` are shaded ``(start, end)`` spans (e.g. risk periods), ``hlines`` ``(y, label)``.
    Lines and axes carry the trader's label of each column (``names`` to override; units from
    ``cur``), the time axis ``x_title``."""
    fig = make_subplots(specs=[[{"secondary_y": bool(right)}]])
    palette = [ACCENT, "#f59e0b", BID_COLOR, ASK_COLOR, "#7c3aed", MUTED]
    names = {c: (names or {}).get(c) or label(c, cur) for c in [*left, *right]}
    for i, col in enumerate([*left, *right]):
        pts = [r for r in rows if is_number(r.get(col))]
        fig.add_trace(
            go.Scatter(
                x=[r.get(t_key) for r in pts],
                y=[r[col] for r in pts],
                name=names[col],
                mode="lines+markers" if len(pts) < 60 else "lines",
                line={"color": palette[i % len(palette)]},
            ),
            secondary_y=col in right,
        )
    for start, end in bands:
        fig.add_vrect(x0=start, x1=end, fillcolor=ASK_COLOR, opacity=0.15, line_width=0)
    for y, text in hlines:
        fig.add_hline(y=y, line_dash="dot", line_color=MUTED, annotation_text=text)
    if left:
        fig.update_yaxes(
            title_text=y_title or ", ".join(names[c] for c in left),
            secondary_y=False,
            tickformat=",",
            **({"range": list(y_range)} if y_range else {}),
        )
    if right:
        fig.update_yaxes(
            title_text=y2_title or ", ".join(names[c] for c in right),
            secondary_y=True,
            showgrid=False,
            **({"range": list(y2_range)} if y2_range else {}),
        )
    fig.update_xaxes(title_text=x_title)
    return _layout(fig, title)


def risk_series_figure(
    rows: Sequence[Mapping[str, Any]],
    t_key: str,
    v_key: str,
    threshold: float | None,
    title: str | None,
    bands: Sequence[tuple[Any, Any]] | None = None,
) -> go.Figure:
    """``v_key`` over time with risk periods shaded: ``bands`` ``(start, end)`` when given (e.g. the
    API's own risk periods, computed on the full series), else the runs of ``rows`` above ``threshold``."""
    if bands is None:
        bands = threshold_periods(rows, t_key, v_key, threshold) if threshold is not None else []
    unit = " bps" if v_key.endswith("_bps") else ""
    values = [r[v_key] for r in rows if is_number(r.get(v_key))]
    peak = max(values, default=None)
    if threshold is None or peak is None or peak >= threshold / 2:
        hlines = [(threshold, f"high risk > {threshold:g}{unit}")] if threshold is not None else []
        return timeseries_figure(rows, t_key, [v_key], title=title, bands=bands, hlines=hlines)
    # The threshold far above every value would flatten the series into a line at zero: keep the
    # axis on the data and say where the threshold is.
    fig = timeseries_figure(
        rows, t_key, [v_key], title=title, bands=bands, y_range=padded_range(values, floor_zero=True)
    )
    fig.add_annotation(
        xref="paper",
        yref="paper",
        x=1,
        y=1,
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        text=f"high-risk threshold {threshold:g}{unit}: above every value",
        font={"color": MUTED, "size": 11},
    )
    return fig


def shares_figure(shares: Mapping[str, float], title: str | None = None) -> go.Figure:
    """Venue shares of depth as a donut."""
    items = [(k, v) for k, v in shares.items() if is_number(v)]
    fig = go.Figure(go.Pie(labels=[k for k, _ in items], values=[v for _, v in items], hole=0.5, sort=False))
    _layout(fig, title, height=340)
    fig.update_layout(
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.05, "x": 0.5, "xanchor": "center"},
    )
    return fig


def by_venue_figure(
    rows: Sequence[Mapping[str, Any]],
    t_key: str,
    v_key: str,
    title: str | None = None,
    x_title: str = "book time (UTC)",
    y_range: Sequence[float] | None = None,
) -> go.Figure:
    """One line per venue of ``v_key`` over ``t_key`` (rows carry a ``venue`` column)."""
    fig = go.Figure()
    venues = list(dict.fromkeys(str(r.get("venue")) for r in rows))
    for venue in venues:
        pts = [r for r in rows if str(r.get("venue")) == venue and is_number(r.get(v_key))]
        fig.add_trace(
            go.Scatter(
                x=[r.get(t_key) for r in pts],
                y=[r[v_key] for r in pts],
                name=venue,
                mode="lines+markers" if len(pts) < 60 else "lines",
            )
        )
    fig.update_yaxes(title_text=label(v_key), **({"range": list(y_range)} if y_range else {}))
    fig.update_xaxes(title_text=x_title)
    return _layout(fig, title, height=300)


def padded_range(values: Sequence[Any], floor_zero: bool = False, least: float = 0.0) -> list[float] | None:
    """An axis range around ``values`` with 15% headroom (at least ``least`` wide): plotly's own
    autorange spans -0.5..1 around a constant series, which hides a 0.04 bps spread."""
    nums = [float(v) for v in values if is_number(v)]
    if not nums:
        return None
    lo, hi = min(nums), max(nums)
    pad = max((hi - lo) * 0.15, abs(hi) * 0.15, least / 2, 1e-12)
    lo, hi = lo - pad, hi + pad
    if floor_zero:
        lo = max(0.0, lo) if min(nums) >= 0 else lo
    return [lo, hi]


def candles_figure(
    candles: Sequence[Mapping[str, Any]], symbol: str, title: str | None = None, height: int = 560
) -> go.Figure:
    """OHLC candlesticks (``ts`` open time, UTC) with volume bars beneath, from
    ``GET /api/history/candles`` rows; price in the quote currency, volume in the base currency."""
    cur = currencies(symbol)
    rows = [c for c in candles if all(is_number(c.get(k)) for k in ("open", "high", "low", "close"))]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=[0.75, 0.25])
    xs = [c.get("ts") for c in rows]
    fig.add_trace(
        go.Candlestick(
            x=xs,
            open=[c["open"] for c in rows],
            high=[c["high"] for c in rows],
            low=[c["low"] for c in rows],
            close=[c["close"] for c in rows],
            name=f"price ({cur.quote_label})",
            increasing_line_color=BID_COLOR,
            decreasing_line_color=ASK_COLOR,
        ),
        row=1,
        col=1,
    )
    up = [is_number(c.get("close")) and c["close"] >= c["open"] for c in rows]
    fig.add_trace(
        go.Bar(
            x=xs,
            y=[c.get("volume") for c in rows],
            name=f"volume ({cur.base_label})",
            marker_color=[BID_COLOR if u else ASK_COLOR for u in up],
            opacity=0.6,
            hovertemplate=f"%{{x}}: %{{y:,.4f}} {cur.base_label}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_layout(xaxis_rangeslider_visible=False)
    fig.update_yaxes(title_text=f"price ({cur.quote_label})", tickformat=",", row=1, col=1)
    fig.update_yaxes(title_text=f"volume ({cur.base_label})", tickformat=",", row=2, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    return _layout(fig, title, height=height)
