"""Health: the API's liveness (GET /api/health) and the state of every feed and book (GET /api/status)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st
from mlm_ui.common import client, fmt, page_header, raw_json, scalars_table, show_failure, table
from mlm_ui.shapes import records

BOOK_COLS = [
    "venue",
    "symbol",
    "ok",
    "problem",
    "synced",
    "stale",
    "crossed",
    "age_ms",
    "gaps",
    "resyncs",
    "checksum_failures",
]


def render_health(data: Mapping[str, Any]) -> None:
    m = st.columns(4)
    m[0].metric("Status", fmt(data.get("status")))
    m[1].metric("Mode", fmt(data.get("mode")))
    m[2].metric("Books loaded", fmt(data.get("books_loaded"), 0))
    m[3].metric("Version", fmt(data.get("version")))
    breakers = records(data.get("circuit_breakers"))
    if breakers:
        st.markdown("**REST circuit breakers**")
        opened = [b.get("venue") for b in breakers if b.get("state") not in (None, "closed")]
        if opened:
            st.warning(f"Open circuit breakers: {', '.join(map(str, opened))}", icon=":material/warning:")
        table(
            breakers,
            ["venue", "state", "consecutive_failures", "last_error", "retry_in_s"],
            download="circuit-breakers",
        )


def render_status(data: Any) -> None:
    if not isinstance(data, Mapping):
        st.json(data)
        return
    state = data.get("status")
    if state is not None:
        c = st.columns(3)
        c[0].metric("System status", fmt(state))
        c[1].metric("Mode", fmt(data.get("mode")))
        c[2].metric(
            "Warm-up", fmt(data.get("warmup_s"), 1, " s"), help="seconds the watched books took to load"
        )
        reasons = data.get("reasons") or []
        if state != "live" and reasons:
            st.warning(f"Status **{state}**: " + "; ".join(map(str, reasons)), icon=":material/warning:")
        elif state == "live":
            st.success("Every watched book is synced and fresh.", icon=":material/check_circle:")
    shown = False
    for key, value in data.items():
        if key == "circuit_breakers":  # shown with the health answer above
            continue
        rows = records(value)
        if rows:
            st.markdown(f"**{key.replace('_', ' ').capitalize()}** ({len(rows)})")
            table(rows, BOOK_COLS, download=f"status-{key}")
            shown = True
        elif isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            st.markdown(f"**{key.replace('_', ' ').capitalize()}**")
            table([{"name": k, **v} for k, v in value.items()], download=f"status-{key}")
            shown = True
    scalars_table(
        data, exclude=[k for k, v in data.items() if isinstance(v, list) or k in ("status", "mode")]
    )
    if not shown:
        st.caption("No per-feed rows in the status answer.")


page_header("Health", "Is the API up, which books does it hold, and are the venues' feeds healthy?")
api = client()
st.button("Refresh", key="health_refresh")

st.subheader("API health")
health = api.health()
if health.ok and isinstance(health.data, Mapping):
    render_health(health.data)
    if health.elapsed_ms is not None:
        st.caption(f"`GET {health.url}` answered in {health.elapsed_ms:.0f} ms")
    raw_json(health.data, "Raw JSON (health)")
else:
    show_failure(health, "Health")

st.subheader("Feeds and books")
if health.kind == "unreachable":
    st.caption("Skipped: the API is not reachable.")
else:
    status = api.status()
    if status.ok:
        render_status(status.data)
        raw_json(status.data, "Raw JSON (status)")
    else:
        show_failure(status, "Status")
