"""Alerts: create, list and delete alert rules (POST/GET /api/alerts, DELETE /api/alerts/{id}) and
the recent triggers (GET /api/alerts/events).

The creation form is built from the API's own OpenAPI schema of ``POST /api/alerts`` when the API
publishes one, so it follows the API as it evolves; a generic rule form is the fallback."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st
from mlm_ui.alert_form import (
    APPLIES,
    COMPARISON_WORDS,
    EXAMPLE_THRESHOLD,
    FIELD_LABELS,
    METRIC_ORDER,
    REARM_WORDS,
    SIDE_WORDS,
    SOURCE_WORDS,
    applies,
    check_rule,
    metric_words,
    ordered_metrics,
    parse_number,
    rule_words,
    threshold_words,
)
from mlm_ui.common import client, known_venues, page_header, raw_json, show_failure, table
from mlm_ui.shapes import first_records, records, request_schema
from mlm_ui.units import Currencies, currencies

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


def rule_form(schema: dict[str, Any], venues: list[str]) -> tuple[dict[str, Any], Currencies, bool]:
    """The new-rule form (outside ``st.form``, so labels follow the metric and symbol chosen):
    ``(body, currencies, create pressed)``. Fields the API schema has and this form does not know
    get a generic input."""
    props: dict[str, Any] = schema["properties"]
    required = set(schema.get("required") or [])
    body: dict[str, Any] = {}
    c1, c2, c3, c4 = st.columns([2, 2, 3, 2])
    if "symbol" in props:
        body["symbol"] = c1.text_input(
            "Symbol",
            str(props["symbol"].get("default") or "BTC/USDT"),
            key="alert_f_symbol",
            help="Unified symbol (BTC/USDT); with a venue, the base asset (BTC) works.",
        ).strip()
    cur = currencies(body.get("symbol"))
    if "venue" in props:
        opts = ["", *venues]
        default = str(props["venue"].get("default") or "binance")
        body["venue"] = (
            c2.selectbox(
                "Venue",
                opts,
                index=opts.index(default) if default in opts else 0,
                format_func=lambda v: v or "every venue",
                key="alert_f_venue",
            )
            or None
        )
    metric = None
    if "metric" in props:
        options = ordered_metrics(_enum(props["metric"]) or list(METRIC_ORDER))
        metric = c3.selectbox(
            "Metric",
            options,
            index=0,
            format_func=lambda m: metric_words(str(m), cur),
            key="alert_f_metric",
            help="What the rule watches on the book.",
        )
        body["metric"] = metric
    if "comparison" in props:
        options = _enum(props["comparison"]) or list(COMPARISON_WORDS)
        body["comparison"] = c4.selectbox(
            "Condition",
            options,
            index=options.index("above") if "above" in options else 0,
            format_func=lambda c: COMPARISON_WORDS.get(str(c), str(c)),
            key="alert_f_comparison",
        )
    metric = str(metric or "")
    # The metric's parameters, then the threshold (its label names what it is compared with).
    params = [
        f
        for f in ("window_bps", "side", "lookback", "source", "period_s")
        if f in props and applies(f, metric)
    ]
    row = st.columns(max(4, len(params) + 1))
    for col, field in zip(row, params, strict=False):
        with col:
            if field == "window_bps":
                body[field] = st.selectbox(
                    FIELD_LABELS[field], [10.0, 25.0, 50.0, 100.0, 200.0], index=2, key="alert_f_window_bps",
                    format_func=lambda w: f"±{w:g} bps",
                )  # fmt: skip
            elif field == "side":
                body[field] = st.selectbox(
                    FIELD_LABELS[field],
                    ["both", "bid", "ask"],
                    format_func=SIDE_WORDS.get,
                    key="alert_f_side",
                )
            elif field == "lookback":
                body[field] = int(
                    st.number_input(
                        FIELD_LABELS[field], min_value=2 if metric == "zscore" else 1, max_value=4096, value=20,
                        step=1, key=f"alert_f_lookback_{metric}",
                    )
                )  # fmt: skip
            elif field == "source":
                body[field] = st.selectbox(
                    FIELD_LABELS[field],
                    list(SOURCE_WORDS),
                    format_func=SOURCE_WORDS.get,
                    key="alert_f_source",
                )
            elif field == "period_s":
                body[field] = float(
                    st.number_input(
                        FIELD_LABELS[field], min_value=1.0, value=60.0, step=10.0, key="alert_f_period_s"
                    )
                )
    if "threshold" in props:
        with row[len(params)]:
            text = st.text_input(
                f"Threshold: {threshold_words(metric, cur, body)}",
                "",
                placeholder=f"e.g. {EXAMPLE_THRESHOLD.get(metric, '5')}",
                key="alert_f_threshold",
                help="The rule fires when the metric meets the condition against this value.",
            )
            number = parse_number(text)
            body["threshold"] = number if number is not None else (text.strip() or None)
    with st.expander("More options (name, cooldown, re-arm)"):
        o1, o2, o3 = st.columns(3)
        if "name" in props:
            body["name"] = o1.text_input(FIELD_LABELS["name"], "", key="alert_f_name").strip() or None
        if "cooldown_s" in props:
            body["cooldown_s"] = float(
                o2.number_input(
                    FIELD_LABELS["cooldown_s"],
                    min_value=0.0,
                    value=float(props["cooldown_s"].get("default") or 300.0),
                    step=30.0,
                    key="alert_f_cooldown_s",
                )
            )
        if "rearm" in props:
            options = _enum(props["rearm"]) or list(REARM_WORDS)
            body["rearm"] = o3.selectbox(
                FIELD_LABELS["rearm"],
                options,
                format_func=lambda r: REARM_WORDS.get(str(r), str(r)),
                key="alert_f_rearm",
            )
        known = {
            "symbol",
            "venue",
            "metric",
            "comparison",
            "threshold",
            "name",
            "cooldown_s",
            "rearm",
            *APPLIES,
        }
        for name, prop in props.items():  # fields added to the API since this form was written
            if name not in known:
                body[name] = field_input(name, prop, name in required)
    pressed = st.button("Create rule", type="primary", key="alert_submit")
    return {k: v for k, v in body.items() if v is not None}, cur, pressed


page_header(
    "Alerts", "Rules on spread, depth, imbalance or price; the API evaluates them on every book update."
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
body, cur, created = rule_form(schema, known_venues(api))
st.caption(
    "Form fields from the API's OpenAPI schema."
    if from_api
    else "Generic rule form (the API publishes no schema)."
)
if created:
    problems = check_rule(body, cur)
    if problems:
        st.error("**The rule was not sent:** " + " ".join(problems), icon=":material/edit_note:")
    else:
        resp = api.create_alert(body)
        if resp.ok:
            made = resp.data if isinstance(resp.data, dict) else {}
            st.success(
                f"Rule {made.get('id', '')} created: {rule_words(made or body, cur)}",
                icon=":material/check_circle:",
            )
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
        table(
            rules,
            [
                "id",
                "venue",
                "symbol",
                "metric",
                "comparison",
                "threshold",
                "window_bps",
                "side",
                "cooldown_s",
                "enabled",
            ],
            download="alert-rules",
            display={
                "metric": lambda m: metric_words(str(m), Currencies()),
                "comparison": lambda c: COMPARISON_WORDS.get(str(c), c),
            },
        )
        for rule in rules:
            rid = alert_id(rule)
            if rid is None:
                continue
            c1, c2 = st.columns([6, 1])
            words = rule_words(rule, currencies(rule.get("symbol")))
            named = rule.get("name") and not str(rule["name"]).startswith(f"{rule.get('symbol')}@")
            c1.caption(f"Rule {rid}: {words}" + (f" (“{rule['name']}”)" if named else ""))
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
        table(
            rows,
            [
                "ts",
                "book_ts",
                "rule_id",
                "venue",
                "symbol",
                "metric",
                "comparison",
                "threshold",
                "value",
                "message",
            ],
            download="alert-events",
        )
    else:
        st.info("No alert has triggered yet.", icon=":material/notifications_off:")
    raw_json(events.data, "Raw JSON (events)")
