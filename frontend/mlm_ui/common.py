"""Streamlit pieces shared by the pages: the client, error/empty states, raw JSON, tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from mlm_ui.client import ApiClient, ApiResponse
from mlm_ui.shapes import flat_scalars

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


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """Rows of dicts as a dataframe (nested values shown as text), chosen columns first."""
    if not rows:
        st.caption("No rows.")
        return
    df = pd.DataFrame([{k: _cell(v) for k, v in r.items()} for r in rows])
    if columns:
        first = [c for c in columns if c in df.columns]
        df = df[first + [c for c in df.columns if c not in first]]
    st.dataframe(df, hide_index=True)


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list | tuple):
        return str(v)
    return v


def scalars_table(data: Mapping[str, Any], exclude: Sequence[str] = ()) -> None:
    """A two-column field/value table of the scalar fields of ``data`` (one nesting level)."""
    flat = {k: v for k, v in flat_scalars(data).items() if k.split(".")[0] not in exclude}
    if flat:
        df = pd.DataFrame({"field": list(flat), "value": [str(v) for v in flat.values()]})
        st.dataframe(df, hide_index=True)


def fmt(x: Any, digits: int = 2, unit: str = "") -> str:
    """A number for a metric tile; ``—`` when missing."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | float):
        return f"{x:,.{digits}f}{unit}"
    return str(x)


def fmt_compact(x: Any, unit: str = "") -> str:
    """A large number for a metric tile: ``16.54M``; ``—`` when missing."""
    if not isinstance(x, int | float) or isinstance(x, bool):
        return "—"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:,.2f}{suffix}{unit}"
    return f"{x:,.2f}{unit}"


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
