"""Alerts: create, list and delete alert rules (POST/GET /api/alerts, DELETE /api/alerts/{id}) and
the recent triggers (GET /api/alerts/events).

The creation form is built from the API's own OpenAPI schema of ``POST /api/alerts`` when the API
publishes one, so it follows the API as it evolves; a generic rule form is the fallback."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st
from mlm_ui.common import client, page_header, raw_json, show_failure, table
from mlm_ui.shapes import first_records, records, request_schema

# The rule fields of the alert engine (analytics/alerts.py), used when the API publishes no schema.
FALLBACK_SCHEMA: dict[str, Any] = {
    "required": ["symbol", "metric", "comparison", "threshold"],
    "properties": {
        "name": {"type": "string"},
        "venue": {"type": "string", "default": "binance"},
        "symbol": {"type": "string", "default": "BTC/USDT"},
        "metric": {
            "enum": [
                "spread_bps",
                "depth_notional",
                "depth_size",
                "imbalance",
                "mid_price",
                "zscore",
                "volume",
                "volatility",
            ],
            "default": "spread_bps",
        },
        "comparison": {
            "enum": ["above", "below", "crosses_above", "crosses_below", "crosses"],
            "default": "above",
        },
        "threshold": {"type": "number", "default": 5.0},
        "window_bps": {"type": "number", "description": "Depth window for depth/imbalance metrics."},
        "cooldown_s": {"type": "number", "default": 300.0},
    },
}


def _enum(prop: dict[str, Any]) -> list[Any] | None:
    if prop.get("enum"):
        return list(prop["enum"])
    opts = [o for o in [*prop.get("anyOf", []), *prop.get("oneOf", [])] if o.get("type") != "null"]
    if opts and all("const" in o or o.get("enum") for o in opts):
        return [v for o in opts for v in ([o["const"]] if "const" in o else o["enum"])]
    return None


def _type(prop: dict[str, Any]) -> str:
    if prop.get("type"):
        return prop["type"] if isinstance(prop["type"], str) else next(t for t in prop["type"] if t != "null")
    for o in prop.get("anyOf", []):
        if o.get("type") and o["type"] != "null":
            return o["type"]
    return "string"


def field_input(name: str, prop: dict[str, Any], required: bool) -> Any:
    """One input for a JSON-schema property; returns None for an optional field left empty."""
    label = name + ("" if required else " (optional)")
    helptext = prop.get("description")
    default = prop.get("default")
    key = f"alert_f_{name}"
    options = _enum(prop)
    if options:
        opts = options if required else ["", *options]
        index = opts.index(default) if default in opts else 0
        v = st.selectbox(label, opts, index=index, help=helptext, key=key)
        return v if v != "" else None
    t = _type(prop)
    if t == "boolean":
        return st.checkbox(label, value=bool(default), help=helptext, key=key)
    if t in ("number", "integer"):
        text = st.text_input(label, "" if default is None else str(default), help=helptext, key=key)
        if not text.strip():
            return None
        try:
            return int(text) if t == "integer" else float(text)
        except ValueError:
            return text  # the API answers 422 with its own message
    if t in ("array", "object"):
        text = st.text_input(
            label + " (JSON)", "" if default is None else str(default), help=helptext, key=key
        )
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            return text
    v = st.text_input(label, "" if default is None else str(default), help=helptext, key=key)
    return v if v.strip() else None


def alert_id(rule: dict[str, Any]) -> Any:
    return next((rule[k] for k in ("id", "alert_id", "rule_id") if rule.get(k) is not None), None)


page_header(
    "Alerts", "Rules on spread, depth, imbalance or slippage; the API evaluates them on every book update."
)
api = client()
listing = api.alerts()
if listing.kind in ("unreachable", "not_available"):
    show_failure(listing, "Alerts")
    st.stop()

spec = api.openapi()
schema = request_schema(spec.data, "/api/alerts", "post") if spec.ok else None
from_api = bool(schema and schema.get("properties"))
schema = schema if from_api else FALLBACK_SCHEMA

st.subheader("New rule")
with st.form("alert_form"):
    required = set(schema.get("required") or [])
    props = schema["properties"]
    cols = st.columns(min(4, max(1, len(props))))
    values = {}
    for i, (name, prop) in enumerate(props.items()):
        with cols[i % len(cols)]:
            values[name] = field_input(name, prop, name in required)
    created = st.form_submit_button("Create rule", type="primary", key="alert_submit")
st.caption(
    "Form fields from the API's OpenAPI schema."
    if from_api
    else "Generic rule form (the API publishes no schema)."
)
if created:
    resp = api.create_alert({k: v for k, v in values.items() if v is not None})
    if resp.ok:
        st.success(f"Rule created: `{resp.data}`", icon=":material/check_circle:")
        listing = api.alerts()
    else:
        show_failure(resp, "Creating the rule")

st.subheader("Rules")
if not listing.ok:
    show_failure(listing, "Listing the rules")
else:
    found = (
        first_records(listing.data, ("alerts", "rules", "items")) if isinstance(listing.data, dict) else None
    )
    rules = records(listing.data) or (found[1] if found else [])
    if not rules:
        st.info("No alert rules yet.", icon=":material/notifications_off:")
    else:
        table(rules, ["id", "name", "venue", "symbol", "metric", "comparison", "threshold", "enabled"])
        for rule in rules:
            rid = alert_id(rule)
            if rid is None:
                continue
            c1, c2 = st.columns([6, 1])
            c1.caption(" · ".join(f"{k}={v}" for k, v in rule.items() if not isinstance(v, dict | list)))
            if c2.button("Delete", key=f"del_{rid}"):
                d = api.delete_alert(rid)
                if d.ok:
                    st.success(f"Deleted rule {rid}.")
                    st.rerun()
                else:
                    show_failure(d, f"Deleting rule {rid}")
    raw_json(listing.data, "Raw JSON (rules)")

st.subheader("Recent triggers")
events = api.alert_events()
if not events.ok:
    show_failure(events, "Alert events")
else:
    found = (
        first_records(events.data, ("events", "items", "triggers")) if isinstance(events.data, dict) else None
    )
    rows = records(events.data) or (found[1] if found else [])
    if rows:
        table(rows)
    else:
        st.info("No alert has triggered yet.", icon=":material/notifications_off:")
    raw_json(events.data, "Raw JSON (events)")
