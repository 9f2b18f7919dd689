"""Plotly figures of the frontend (pure: data in, ``go.Figure`` out; no Streamlit, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlm_ui.shapes import cumulative, is_number, threshold_periods

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
    base units, with the mid price as a dashed line. Hover shows the cumulative quote notional."""
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
                hovertemplate="%{x:,.2f}: %{y:,.4f} cumulative (%{customdata:,.0f} quote)<extra></extra>",
            )
        )
    mid = (book.get("top_of_book") or {}).get("mid_price")
    if is_number(mid):
        fig.add_vline(x=mid, line_dash="dash", line_color=MUTED, annotation_text=f"mid {mid:,.2f}")
    fig.update_xaxes(title_text=f"price ({book.get('symbol', '')})")
    fig.update_yaxes(title_text="cumulative size (base units)")
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
    """One bar per row; the bar whose ``x`` equals ``highlight`` is drawn in the accent colour."""
    rows = [r for r in rows if is_number(r.get(y_key))]
    xs = [str(r.get(x_key)) for r in rows]
    colors = [ACCENT if highlight is not None and r.get(x_key) == highlight else MUTED for r in rows]
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=[r[y_key] for r in rows],
            marker_color=colors,
            text=[f"{r[y_key]:,.2f}" for r in rows],
            textposition="outside",
        )
    )
    fig.update_yaxes(title_text=y_label or y_key)
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
) -> go.Figure:
    """Lines of ``left`` columns (left axis) and ``right`` columns (right axis) against ``t_key``;
    ``bands`` are shaded ``(start, end)`` spans (e.g. risk periods), ``hlines`` ``(y, label)``."""
    fig = make_subplots(specs=[[{"secondary_y": bool(right)}]])
    palette = [ACCENT, "#f59e0b", BID_COLOR, ASK_COLOR, "#7c3aed", MUTED]
    for i, col in enumerate([*left, *right]):
        pts = [r for r in rows if is_number(r.get(col))]
        fig.add_trace(
            go.Scatter(
                x=[r.get(t_key) for r in pts],
                y=[r[col] for r in pts],
                name=col,
                mode="lines+markers" if len(pts) < 60 else "lines",
                line={"color": palette[i % len(palette)]},
            ),
            secondary_y=col in right,
        )
    for start, end in bands:
        fig.add_vrect(x0=start, x1=end, fillcolor=ASK_COLOR, opacity=0.15, line_width=0)
    for y, label in hlines:
        fig.add_hline(y=y, line_dash="dot", line_color=MUTED, annotation_text=label)
    if left:
        fig.update_yaxes(title_text=", ".join(left), secondary_y=False)
    if right:
        fig.update_yaxes(title_text=", ".join(right), secondary_y=True)
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
    hlines = [(threshold, f"high risk > {threshold:g}")] if threshold is not None else []
    return timeseries_figure(rows, t_key, [v_key], title=title, bands=bands, hlines=hlines)


def shares_figure(shares: Mapping[str, float], title: str | None = None) -> go.Figure:
    """Venue shares of depth as a donut."""
    items = [(k, v) for k, v in shares.items() if is_number(v)]
    fig = go.Figure(go.Pie(labels=[k for k, _ in items], values=[v for _, v in items], hole=0.5, sort=False))
    fig.update_layout(hovermode="closest")
    return _layout(fig, title, height=320)


def by_venue_figure(
    rows: Sequence[Mapping[str, Any]], t_key: str, v_key: str, title: str | None = None
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
    fig.update_yaxes(title_text=v_key)
    return _layout(fig, title, height=300)
