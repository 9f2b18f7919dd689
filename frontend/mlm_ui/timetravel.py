"""The time slider of the book pages (Live book, Compare, Route): book time, UTC.

On recorded data the API rebuilds every book to any instant of its recording (``as_of``); the
slider spans the instants all the selected books share (``GET /api/timeline``), and its right end
is the latest book (no ``as_of`` sent). Live data keeps no past books: no slider.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import streamlit as st

from mlm_ui.client import ApiClient


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def timeline(api: ApiClient, max_age_s: float = 60.0) -> list[dict]:
    """The recorded books' ranges (``GET /api/timeline``), asked at most every ``max_age_s``."""
    key = f"_timeline::{api.base_url}"
    cached = st.session_state.get(key)
    if cached and time.monotonic() - cached[1] < max_age_s:
        return cached[0]
    resp = api.timeline()
    books = resp.data.get("books", []) if resp.ok and isinstance(resp.data, dict) else []
    st.session_state[key] = (books, time.monotonic())
    return books


def _matches(row: dict, symbol: str) -> bool:
    s = symbol.strip().upper()
    return row["symbol"] == s or row["symbol"].split("/")[0] == s


def shared_range(
    books: list[dict], venues: list[str] | None, symbol: str
) -> tuple[datetime, datetime] | None:
    """The instants every selected venue has a recorded ``symbol`` book at (naive UTC datetimes),
    or None. ``venues`` None = any venue."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for row in books:
        if (venues is None or row["venue"] in venues) and _matches(row, symbol):
            lo, hi = _parse(row["first_ts"]), _parse(row["last_ts"])
            old = spans.get(row["venue"])
            spans[row["venue"]] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    if not spans:
        return None
    if venues is None:  # any venue: the latest recording wins
        return max(spans.values(), key=lambda r: r[1])
    lo = max(r[0] for r in spans.values())
    hi = min(r[1] for r in spans.values())
    return (lo, hi) if lo < hi else None


def time_slider(api: ApiClient, venues: list[str] | None, symbol: str, key: str) -> str | None:
    """A "Book time (UTC)" slider over the selected books' shared recorded range; returns the
    ``as_of`` to send (ISO 8601 UTC), or None for the latest book (slider at its right end, live
    data, or no shared range; the page then says why)."""
    books = timeline(api)
    if not books:
        return None
    rng = shared_range(books, venues, symbol)
    if rng is None:
        st.caption(
            f"Time travel: no instant where every selected venue has a recorded {symbol} book; "
            "showing the latest books."
        )
        return None
    lo, hi = rng
    lo_s = lo.replace(microsecond=0) + timedelta(seconds=1)  # whole seconds inside the range
    hi_s = hi.replace(microsecond=0)
    if hi_s <= lo_s:
        return None
    when = st.slider(
        "Book time (UTC)",
        min_value=lo_s,
        max_value=hi_s,
        value=hi_s,
        step=timedelta(seconds=1),
        format="YYYY-MM-DD HH:mm:ss",
        key=key,
        help="Rebuild the recorded books to this instant (the books' own time, UTC). "
        "Right end: the latest book.",
    )
    if when >= hi_s:
        st.caption(
            f"Latest recorded books (recorded {lo_s:%Y-%m-%d %H:%M:%S} to {hi:%Y-%m-%d %H:%M:%S} UTC)."
        )
        return None
    st.caption(f":orange-badge[time travel] Books rebuilt to {when:%Y-%m-%d %H:%M:%S} UTC.")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
