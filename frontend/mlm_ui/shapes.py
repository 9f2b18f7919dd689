"""Pure helpers that find things in API responses whose exact shape may evolve.

The API is extended while the frontend is written against it, so pages look for what they need
(a list of records, a time column, a number) instead of assuming one schema, and show the raw
JSON beside it. Nothing here imports Streamlit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

TIME_KEYS = ("ts", "time", "timestamp", "t", "start", "date", "datetime", "ts_event", "book_ts", "open_time")


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def records(x: Any) -> list[dict[str, Any]] | None:
    """``x`` as a non-empty list of dicts, else None."""
    if isinstance(x, list) and x and all(isinstance(r, dict) for r in x):
        return x
    return None


def first_records(data: Any, keys: Sequence[str]) -> tuple[str, list[dict[str, Any]]] | None:
    """The first of ``data[key]`` (for ``key`` in order) that is a list of dicts, with its key."""
    if not isinstance(data, Mapping):
        return None
    for k in keys:
        rows = records(data.get(k))
        if rows is not None:
            return k, rows
    return None


def time_key(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The column of ``rows`` that holds a time (by name), if any."""
    if not rows:
        return None
    cols = rows[0].keys()
    for k in TIME_KEYS:
        if k in cols:
            return k
    return next((k for k in cols if k.endswith(("_ts", "_time", "_at"))), None)


def columnar_to_records(data: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """``{"ts": [...], "spread": [...]}`` (equal-length lists) as records, else None."""
    lists = {k: v for k, v in data.items() if isinstance(v, list) and v}
    if len(lists) < 2:
        return None
    n = {len(v) for v in lists.values()}
    if len(n) != 1:
        return None
    size = n.pop()
    return [{k: v[i] for k, v in lists.items()} for i in range(size)]


def find_series(data: Any, preferred: Sequence[str] = ()) -> list[dict[str, Any]] | None:
    """A time series somewhere in ``data``: a list of records with a time column, searched at the
    top level (``preferred`` keys first) and one level down; columnar dicts are accepted too."""
    if records(data) is not None and time_key(data):
        return data
    if not isinstance(data, Mapping):
        return None
    keys = [*preferred, *(k for k in data if k not in preferred)]
    for k in keys:
        v = data.get(k)
        rows = records(v)
        if rows is not None and time_key(rows):
            return rows
        if isinstance(v, Mapping):
            rows = columnar_to_records(v)
            if rows is not None and time_key(rows):
                return rows
            for sub in v.values():
                rows = records(sub)
                if rows is not None and time_key(rows):
                    return rows
    return None


def numeric_columns(rows: Sequence[Mapping[str, Any]], exclude: Iterable[str] = ()) -> list[str]:
    """Columns of ``rows`` whose values are numbers in at least one row (booleans excluded)."""
    skip = set(exclude)
    cols: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in skip and k not in cols and is_number(v):
                cols.append(k)
    return cols


def pick(data: Any, *keys: str, default: Any = None) -> Any:
    """The first key of ``keys`` present (and not None) in ``data``."""
    if isinstance(data, Mapping):
        for k in keys:
            if data.get(k) is not None:
                return data[k]
    return default


def flat_scalars(data: Mapping[str, Any], prefix: str = "", depth: int = 1) -> dict[str, Any]:
    """Scalar fields of ``data`` (and of nested dicts up to ``depth`` levels) as ``a.b`` keys."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and depth > 0:
            out.update(flat_scalars(v, f"{name}.", depth - 1))
        elif v is None or isinstance(v, str | int | float | bool):
            out[name] = v
    return out


def threshold_periods(
    rows: Sequence[Mapping[str, Any]], t_key: str, v_key: str, threshold: float
) -> list[tuple[Any, Any]]:
    """Contiguous runs of rows with ``row[v_key] > threshold`` as ``(first_t, last_t)`` pairs."""
    out: list[tuple[Any, Any]] = []
    start = prev = None
    for r in rows:
        v = r.get(v_key)
        above = is_number(v) and v > threshold
        if above and start is None:
            start = r.get(t_key)
        if not above and start is not None:
            out.append((start, prev))
            start = None
        prev = r.get(t_key)
    if start is not None:
        out.append((start, prev))
    return out


TIMEFRAME_S = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14_400, "1d": 86_400}


def period_bands(periods: Sequence[Mapping[str, Any]], step_s: float | None = None) -> list[tuple[str, str]]:
    """``[{"start", "end", ...}]`` (ISO times of a run's first and last interval, as the backtest's
    ``risk_periods``) as shaded ``(start, end)`` spans; with ``step_s`` (the candle length) the span
    reaches the end of the last interval, so a one-interval period is visible too. Entries
    without both times are skipped."""
    out = []
    for p in periods:
        start, end = p.get("start"), p.get("end")
        if not (isinstance(start, str) and isinstance(end, str)):
            continue
        if step_s:
            try:
                t = datetime.fromisoformat(end.replace("Z", "+00:00")) + timedelta(seconds=step_s)
            except ValueError:
                pass
            else:
                end = t.isoformat().replace("+00:00", "Z") if end.endswith("Z") else t.isoformat()
        out.append((start, end))
    return out


def cumulative(levels: Sequence[Sequence[float]]) -> tuple[list[float], list[float], list[float]]:
    """``[[price, size], ...]`` (best first) as prices, cumulative size and cumulative notional."""
    prices, cum, cum_notional = [], [], []
    total = notional = 0.0
    for lvl in levels:
        if len(lvl) < 2 or not (is_number(lvl[0]) and is_number(lvl[1])):
            continue
        p, s = float(lvl[0]), float(lvl[1])
        total += s
        notional += p * s
        prices.append(p)
        cum.append(total)
        cum_notional.append(notional)
    return prices, cum, cum_notional


def book_level_rows(book: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The levels of an ``/api/orderbook`` answer (``bids`` / ``asks``, best first) as one row per
    level, bids then asks — ``side``, ``level`` (1 = best), ``price`` (quote per base), ``size``
    (base), ``cum_size`` (base) and ``cum_notional`` (quote) from the best level out: the data of
    the depth chart (``cumulative``), for its downloads."""
    rows: list[dict[str, Any]] = []
    for side in ("bids", "asks"):
        levels = [
            lvl for lvl in book.get(side) or [] if len(lvl) >= 2 and is_number(lvl[0]) and is_number(lvl[1])
        ]
        _, cum, cum_notional = cumulative(levels)
        for n, (lvl, c, cn) in enumerate(zip(levels, cum, cum_notional, strict=True), 1):
            rows.append(
                {
                    "side": side[:-1],
                    "level": n,
                    "price": float(lvl[0]),
                    "size": float(lvl[1]),
                    "cum_size": c,
                    "cum_notional": cn,
                }
            )
    return rows


def window_row(book: Mapping[str, Any], key: str, window_bps: float | None) -> dict[str, Any] | None:
    """The entry of ``book[key]`` (``depth`` or ``imbalance``) for ``window_bps``, else the first."""
    rows = records(book.get(key)) or []
    for r in rows:
        if window_bps is not None and r.get("window_bps") == window_bps:
            return r
    return rows[0] if rows else None


def book_point(book: Mapping[str, Any], window_bps: float | None, fetched_at: str) -> dict[str, Any]:
    """One point of the live-book time series from an ``/api/orderbook`` answer."""
    tob = book.get("top_of_book") or {}
    imb = window_row(book, "imbalance", window_bps) or {}
    depth = window_row(book, "depth", window_bps) or {}
    return {
        "fetched_at": fetched_at,
        "book_ts": book.get("book_ts"),
        "mid_price": tob.get("mid_price"),
        "spread_bps": tob.get("spread_bps"),
        "imbalance": imb.get("imbalance"),
        "window_bps": imb.get("window_bps"),
        "depth_notional": (depth.get("bid_notional") or 0) + (depth.get("ask_notional") or 0)
        if depth
        else None,
    }


def resolve_ref(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (``#/components/schemas/X``) and an ``allOf``/``anyOf``/``oneOf`` with one
    non-null member; the outer schema's own keys (default, description, title) are kept."""
    out: dict[str, Any] = dict(schema) if isinstance(schema, Mapping) else {}
    for _ in range(10):
        if "$ref" in out:
            node: Any = spec
            for part in str(out.pop("$ref")).lstrip("#/").split("/"):
                node = node.get(part, {}) if isinstance(node, Mapping) else {}
            out = {**(node if isinstance(node, Mapping) else {}), **out}
            continue
        for comb in ("allOf", "anyOf", "oneOf"):
            opts = [o for o in out.get(comb, []) if isinstance(o, Mapping) and o.get("type") != "null"]
            if comb in out and len(opts) == 1:
                rest = {k: v for k, v in out.items() if k != comb}
                out = {**opts[0], **rest}
                break
        else:
            return out
    return out


def request_schema(spec: Any, path: str, method: str = "post") -> dict[str, Any] | None:
    """The JSON schema of an endpoint's request body in an OpenAPI document, refs resolved."""
    if not isinstance(spec, Mapping):
        return None
    op = (spec.get("paths", {}).get(path) or {}).get(method.lower())
    if not op:
        return None
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if not body:
        return None
    schema = resolve_ref(spec, body)
    props = {k: resolve_ref(spec, v) for k, v in (schema.get("properties") or {}).items()}
    schema["properties"] = props
    return schema


def has_path(spec: Any, path: str, method: str | None = None) -> bool:
    if not isinstance(spec, Mapping):
        return False
    item = spec.get("paths", {}).get(path)
    return bool(item) and (method is None or method.lower() in item)


def stream_rows(frames: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``metrics`` frames of ``WS /ws/stream`` as one row per (frame, venue)."""
    rows = []
    for f in frames:
        if f.get("type") != "metrics":
            continue
        for v in f.get("venues") or []:
            if not isinstance(v, Mapping):
                continue
            bid, ask = v.get("bid_depth_notional"), v.get("ask_depth_notional")
            rows.append(
                {
                    "ts": f.get("ts"),
                    "seq": f.get("seq"),
                    "venue": v.get("venue"),
                    "symbol": v.get("symbol"),
                    "book_ts": v.get("book_ts"),
                    "mid": v.get("mid"),
                    "spread_bps": v.get("spread_bps"),
                    "imbalance": v.get("imbalance"),
                    "depth_notional": bid + ask if is_number(bid) and is_number(ask) else None,
                    "share": v.get("share"),
                }
            )
    return rows


#: ``Unavailable.kind`` of the API in words (``services.books.Unavailable``).
LEFT_OUT_WORDS = {
    "no_symbol": "no such market",
    "other_quote": "other quote currency",
    "not_ready": "book not ready",
    "unreachable": "unreachable",
    "no_fee": "taker fee unknown",
    "no_data": "no data",
    "excluded": "excluded from routing",
}


#: Column headers of the left-out table.
LEFT_OUT_LABELS = {"venue": "Venue", "why": "Left out because", "reason": "Details"}


def left_out_rows(*sources: Any) -> list[dict[str, str]]:
    """Venues left out of an answer, one row each (``venue``, ``why`` in words, ``reason``), from
    any mix of the API's shapes: a list of ``{venue, reason, kind}`` (``unavailable``) or a
    ``{venue: reason}`` dict (``excluded``: books dropped by the routing checks). A venue given
    twice keeps its first row."""
    rows: dict[str, dict[str, str]] = {}
    for src in sources:
        if isinstance(src, Mapping):
            items = [{"venue": v, "reason": r, "kind": "excluded"} for v, r in src.items()]
        elif isinstance(src, list):
            items = [i if isinstance(i, Mapping) else {"venue": str(i)} for i in src]
        else:
            continue
        for item in items:
            venue = str(item.get("venue") or "?")
            reason = item.get("reason")
            kind = str(item.get("kind") or "")
            rows.setdefault(
                venue,
                {
                    "venue": venue,
                    "why": LEFT_OUT_WORDS.get(kind, kind.replace("_", " ")),
                    "reason": reason if isinstance(reason, str) else json.dumps(reason, default=str),
                },
            )
    return list(rows.values())
