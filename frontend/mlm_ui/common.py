"""Streamlit pieces shared by the pages: the client, error/empty states, raw JSON, tables."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from mlm_ui.client import ApiClient, ApiResponse
from mlm_ui.files import csv_bytes, frame, parquet_bytes, safe_name
from mlm_ui.shapes import flat_scalars
from mlm_ui.units import (
    HELP,
    Currencies,
    column_format,
    currencies,
    fmt_time,
    kind_of,
    label,
    rows_currencies,
    scalar_text,
)
from mlm_ui.units import fmt_compact as units_fmt_compact

DEFAULT_VENUES = ("binance", "binanceusdm", "binancecoinm")


def client() -> ApiClient:
    """The API client, configured from the environment on every rerun (cheap; no hidden state)."""
    return ApiClient.from_env()


def show_failure(resp: ApiResponse, what: str) -> None:
    """A clear message for a failed call: API down (with the URL tried), endpoint missing, or the
    API's own ``detail`` for a 4xx/5xx."""
    if resp.kind == "unreachable":
        st.error(
            f"**The API is not reachable** — tried `{resp.method} {resp.url}`: {resp.error}.  \n"
            "Start it with `mlm serve` (or `scripts/mlm serve --data ../shared/data`) or point "
            "`MLM_API_URL` at a running API.",
            icon=":material/power_off:",
        )
    elif resp.kind == "not_available":
        st.info(
            f"**{what} is not available on this API yet** — `{resp.method} {resp.url}` answered "
            f"{resp.status} ({resp.detail}). The page will work once the API serves it.",
            icon=":material/construction:",
        )
    else:
        st.error(
            f"**{what} failed** — the API answered {resp.status}: {resp.detail}", icon=":material/warning:"
        )
        if resp.data is not None:
            raw_json(resp.data, "Error response")


def show_answer(
    resp: ApiResponse | None,
    what: str,
    render: Callable[[dict[str, Any]], None],
    hint: str,
    on_failure: Callable[[ApiResponse], bool] | None = None,
) -> None:
    """A page's last answer: ``render`` it (and its raw JSON) when it is a JSON object, the raw
    body when it is something else, ``hint`` when nothing was asked yet. A failed call goes to
    ``on_failure`` first (True when it showed it), else ``show_failure``."""
    if resp is None:
        st.caption(hint)
    elif resp.ok and isinstance(resp.data, dict):
        render(resp.data)
        raw_json(resp.data)
    elif resp.ok:
        raw_json(resp.data, expanded=True)
    elif on_failure is None or not on_failure(resp):
        show_failure(resp, what)


def raw_json(data: Any, label: str = "Raw JSON", expanded: bool = False, in_expander: bool = True) -> None:
    """The raw API answer, folded away (``in_expander=False`` inside another expander, which
    Streamlit does not allow to nest)."""
    if in_expander:
        with st.expander(label, expanded=expanded):
            st.json(data, expanded=2)
    else:
        st.caption(label)
        st.json(data, expanded=False)


LONG_TEXT = frozenset({"reason", "problem", "message", "last_error", "book_warning", "model_source"})


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    download: str | None = None,
    cur: Currencies | None = None,
    labels: Mapping[str, str] | None = None,
    display: Mapping[str, Callable[[Any], Any]] | None = None,
    key: str | None = None,
    static: bool = False,
) -> None:
    """Rows of dicts as a dataframe: the ``columns`` given (all when None), each labelled in
    trader words with its unit (``units.FIELDS``; currencies from the rows' ``symbol`` column,
    else ``cur``), numbers with thousands separators, times as ``YYYY-MM-DD HH:MM:SS`` UTC,
    yes/no for flags; ``display`` maps a field to a function of its values (e.g. names in words).
    ``download`` (a file name stem) adds CSV and Parquet buttons with every field as the API
    gave it (also the ones not shown). ``static``: a plain table whose text wraps (for a few
    rows of long reasons) instead of the scrolling data grid."""
    if not rows:
        st.caption("No rows.")
        return
    full = frame(rows)
    shown = [c for c in columns if c in full.columns] if columns else list(full.columns)
    df = full[shown].copy()
    cur = rows_currencies(rows, cur)
    for col in df.columns:
        kind = kind_of(str(col))
        if display and col in display:
            df[col] = df[col].map(display[col])
        elif kind == "time":
            df[col] = df[col].map(fmt_time)
        elif kind == "bool" or pd.api.types.is_bool_dtype(df[col]):
            df[col] = df[col].map(
                lambda v: "—" if v is None or (isinstance(v, float) and pd.isna(v)) else fmt(v)
            )
    if static:
        st.table(
            df.rename(columns={c: (labels or {}).get(c) or label(str(c), cur) for c in df.columns}),
            border="horizontal",
            hide_index=True,
        )
    else:
        st.dataframe(df, hide_index=True, column_config=column_config(df, cur, labels), width="stretch")
    if download:
        downloads(full, download, key=key or download)
        hidden = len(full.columns) - len(shown)
        if hidden > 0:
            st.caption(f"{hidden} more field{'s' if hidden != 1 else ''} in the downloads.")


def column_config(
    df: pd.DataFrame, cur: Currencies, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Streamlit column configs of ``df``: a labelled, formatted column per API field."""
    config: dict[str, Any] = {}
    for col in df.columns:
        name = (labels or {}).get(col) or label(str(col), cur)
        kind = kind_of(str(col))
        series = df[col]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric:
            values = series.tolist()
            integral = all(
                float(v).is_integer() for v in values if isinstance(v, int | float) and not pd.isna(v)
            )
            if kind not in ("price", "size", "notional", "bps", "share", "ms", "s") and integral:
                kind = "count"
            fmt_ = column_format(kind if kind not in ("text", "time", "bool") else "ratio", values)
            config[col] = st.column_config.NumberColumn(name, format=fmt_, help=HELP.get(str(col)))
        else:
            config[col] = st.column_config.TextColumn(
                name, width="large" if col in LONG_TEXT else None, help=HELP.get(str(col))
            )
    return config


def downloads(data: pd.DataFrame | Sequence[Mapping[str, Any]], name: str, key: str | None = None) -> None:
    """CSV and Parquet download buttons of ``data`` (API field names, full precision); the
    files are built when a button is pressed."""
    df = data if isinstance(data, pd.DataFrame) else frame(data)
    stem = safe_name(name)
    key = safe_name(key or name)
    with st.container(horizontal=True, gap="small"):
        st.download_button(
            "CSV",
            data=lambda: csv_bytes(df),
            file_name=f"{stem}.csv",
            mime="text/csv",
            key=f"dl-csv-{key}",
            icon=":material/download:",
            on_click="ignore",
            help=f"{len(df):,} rows as CSV ({stem}.csv)",
        )
        st.download_button(
            "Parquet",
            data=lambda: parquet_bytes(df),
            file_name=f"{stem}.parquet",
            mime="application/vnd.apache.parquet",
            key=f"dl-parquet-{key}",
            icon=":material/download:",
            on_click="ignore",
            help=f"{len(df):,} rows as Parquet ({stem}.parquet)",
        )


def scalars_table(
    data: Mapping[str, Any], exclude: Sequence[str] = (), cur: Currencies | None = None
) -> None:
    """A two-column field/value table of the scalar fields of ``data`` (one nesting level),
    values formatted with their unit."""
    flat = {k: v for k, v in flat_scalars(data).items() if k.split(".")[0] not in exclude}
    if flat:
        cur = cur or currencies(data.get("symbol"))
        df = pd.DataFrame({"field": list(flat), "value": [scalar_text(k, v, cur) for k, v in flat.items()]})
        st.dataframe(
            df,
            hide_index=True,
            width="stretch",
            column_config={
                "field": st.column_config.TextColumn("Field"),
                "value": st.column_config.TextColumn("Value"),
            },
        )


def fmt(x: Any, digits: int = 2, unit: str = "") -> str:
    """A number for a metric tile with thousands separators; ``—`` when missing."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | float):
        return f"{x:,.{digits}f}{unit}"
    return str(x)


def fmt_compact(x: Any, unit: str = "") -> str:
    """A large number for a metric tile: ``16.54M`` (``16.54M USDT`` with a unit); ``—`` when missing."""
    return units_fmt_compact(x, unit.strip())


def api_mode(api: ApiClient, max_age_s: float = 30.0) -> str | None:
    """``recorded`` or ``live`` from ``GET /api/health`` (asked at most every ``max_age_s`` per
    session), None when the API does not answer."""
    key = f"_mode::{api.base_url}"
    cached = st.session_state.get(key)
    now = time.monotonic()
    if cached and now - cached[1] < max_age_s:
        return cached[0]
    resp = api.health()
    mode = resp.data.get("mode") if resp.ok and isinstance(resp.data, dict) else None
    if mode is not None:
        st.session_state[key] = (mode, now)
    return mode


RECORDED_NOTE = (
    ":orange-badge[:material/history: Recorded data] Books, trades and candles are replays of "
    "recordings, not a live market; every time shown is the recording's (UTC)."
)
LIVE_NOTE = ":green-badge[:material/sensors: Live data] Books stream from the venues."


def mode_banner(api: ApiClient) -> str | None:
    """One line at the top of every page saying whether the data is recorded or live."""
    mode = api_mode(api)
    if mode == "recorded":
        st.markdown(RECORDED_NOTE)
    elif mode == "live":
        st.markdown(LIVE_NOTE)
    return mode


def known_venues(api: ApiClient) -> list[str]:
    """Venues the API holds books for (from ``/api/status`` when it lists them), else the defaults."""
    key = f"_venues::{api.base_url}"
    if key in st.session_state:
        return st.session_state[key]
    venues: list[str] = []
    resp = api.status()
    if resp.ok:
        venues = _venues_in(resp.data)
    out = sorted(set(venues)) or list(DEFAULT_VENUES)
    if resp.ok:
        st.session_state[key] = out
    return out


def _venues_in(data: Any) -> list[str]:
    found: list[str] = []
    if isinstance(data, Mapping):
        v = data.get("venues")
        if isinstance(v, list):
            found += [x if isinstance(x, str) else str(x.get("venue")) for x in v if x]
        elif isinstance(v, Mapping):
            found += [str(k) for k in v]
        for key in ("books", "feeds", "instruments"):
            rows = data.get(key)
            if isinstance(rows, list):
                found += [str(r["venue"]) for r in rows if isinstance(r, Mapping) and r.get("venue")]
    return [f for f in found if f and f != "None"]


def page_header(title: str, caption: str) -> None:
    st.title(title)
    st.caption(caption)
