"""Input forms shared by several pages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from mlm_ui.common import client, known_venues


def order_form(prefix: str, default_symbol: str = "BTC", default_size: float = 5.0) -> dict[str, Any] | None:
    """Symbol, side, size-or-notional and venues; the request body when submitted, else None."""
    api = client()
    with st.form(f"{prefix}_form"):
        c1, c2, c3, c4 = st.columns([2, 1, 1, 2])
        symbol = c1.text_input(
            "Symbol",
            default_symbol,
            help="Base asset (BTC) or unified symbol (BTC/USDT).",
            key=f"{prefix}_symbol",
        )
        side = c2.radio("Side", ["buy", "sell"], horizontal=True, key=f"{prefix}_side")
        unit = c3.radio(
            "Amount in",
            ["size", "notional"],
            format_func={"size": "base (size)", "notional": "quote (notional)"}.get,
            horizontal=True,
            help="size = base currency units (BTC for BTC/USDT); notional = quote currency (USDT)",
            key=f"{prefix}_unit",
        )
        amount = c4.number_input(
            "Amount",
            min_value=0.0,
            value=default_size,
            step=1.0,
            format="%.6g",
            key=f"{prefix}_amount",
            help="In base units when 'base (size)' is picked, in the quote currency otherwise.",
        )
        venues = st.multiselect(
            "Venues (all with a book if empty)",
            known_venues(api),
            default=[],
            key=f"{prefix}_venues",
            accept_new_options=True,
            help="Pick from the venues the API watches, or type another ccxt id (okx, kraken...).",
        )
        submitted = st.form_submit_button("Run", type="primary", key=f"{prefix}_submit")
    if not submitted:
        return None
    body: dict[str, Any] = {"symbol": symbol.strip(), "side": side, unit: amount}
    if venues:
        body["venues"] = venues
    return body
