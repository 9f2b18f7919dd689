"""Units and human number formats of the frontend (pure: no Streamlit, no I/O).

Every figure the app shows names its unit: prices in the quote currency per base unit, sizes in
base units (the base currency), notionals in the quote currency, costs in bps. The currencies
come from the ccxt unified symbol the API answers with (``BTC/USDT`` -> base BTC, quote USDT;
``BTC/USD:BTC`` -> base BTC, quote USD; ``BTC/USDT:USDT`` -> base BTC, quote USDT), see
https://docs.ccxt.com/#/README?id=contract-naming-conventions. Where rows mix quote currencies
(USDT spot next to a USD-quoted inverse perp), labels say "quote" and the symbol column names it.

``FIELDS`` maps the API's field names to a trader's label and a kind; the kind picks the number
format (``fmt_number``) and the dataframe column format (``column_format``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal[
    "price", "size", "notional", "bps", "ratio", "share", "count", "ms", "s", "time", "bool", "text"
]


@dataclass(frozen=True)
class Currencies:
    """Base and quote currency of a symbol (None when unknown)."""

    base: str | None = None
    quote: str | None = None

    @property
    def base_label(self) -> str:
        return self.base or "base"

    @property
    def quote_label(self) -> str:
        return self.quote or "quote"


def currencies(symbol: Any) -> Currencies:
    """The currencies of a ccxt unified symbol: ``BTC/USDT`` -> (BTC, USDT), ``BTC/USD:BTC`` ->
    (BTC, USD); a bare base asset (``BTC``) has no known quote."""
    if not isinstance(symbol, str) or not symbol.strip():
        return Currencies()
    s = symbol.strip().upper()
    base, sep, rest = s.partition("/")
    if not sep:
        return Currencies(base=base or None)
    quote = rest.split(":")[0].split("-")[0]
    return Currencies(base=base or None, quote=quote or None)


def common_currencies(symbols: Iterable[Any], fallback: Currencies | None = None) -> Currencies:
    """The base/quote shared by every symbol given (None for a side they disagree on); a side
    that no symbol names comes from ``fallback``."""
    found = [currencies(s) for s in symbols if isinstance(s, str) and s.strip()]
    fb = fallback or Currencies()
    bases = {c.base for c in found if c.base}
    quotes = {c.quote for c in found if c.quote}
    base = bases.pop() if len(bases) == 1 else (None if bases else fb.base)
    quote = quotes.pop() if len(quotes) == 1 else (None if quotes else fb.quote)
    return Currencies(base, quote)


# field -> (label template with {base}/{quote}, kind)
FIELDS: dict[str, tuple[str, Kind]] = {
    "venue": ("Venue", "text"),
    "symbol": ("Symbol", "text"),
    "side": ("Side", "text"),
    "name": ("Name", "text"),
    "reason": ("Reason", "text"),
    "phase": ("Phase", "text"),
    "leg": ("Leg", "text"),
    "buy_venue": ("Buy on", "text"),
    "sell_venue": ("Sell on", "text"),
    "metric": ("Metric", "text"),
    "comparison": ("Condition", "text"),
    "message": ("Message", "text"),
    "problem": ("Problem", "text"),
    "state": ("State", "text"),
    "last_error": ("Last error", "text"),
    "connection": ("Connection", "text"),
    "book_warning": ("Book warning", "text"),
    # prices: quote currency per base unit
    "mid_price": ("Mid ({quote})", "price"),
    "mid": ("Mid ({quote})", "price"),
    "microprice": ("Microprice ({quote})", "price"),
    "best_bid": ("Best bid ({quote})", "price"),
    "best_ask": ("Best ask ({quote})", "price"),
    "vwap": ("VWAP ({quote})", "price"),
    "vwap_incl_fees": ("VWAP + fees ({quote})", "price"),
    "avg_price": ("Avg price ({quote})", "price"),
    "avg_price_incl_fees": ("Avg price incl. fees ({quote})", "price"),
    "avg_fill_price": ("Avg fill price ({quote})", "price"),
    "fill_price": ("Fill price ({quote})", "price"),
    "best_price": ("Best price ({quote})", "price"),
    "best_price_incl_fees": ("Best price incl. fees ({quote})", "price"),
    "worst_price": ("Worst price ({quote})", "price"),
    "ask_incl_fee": ("Best ask incl. fee ({quote})", "price"),
    "bid_net_of_fee": ("Best bid net of fee ({quote})", "price"),
    "reference_mid": ("Reference mid ({quote})", "price"),
    "price": ("Price ({quote})", "price"),
    "open": ("Open ({quote})", "price"),
    "high": ("High ({quote})", "price"),
    "low": ("Low ({quote})", "price"),
    "close": ("Close ({quote})", "price"),
    # sizes: base units
    "size": ("Size ({base})", "size"),
    "filled_size": ("Filled size ({base})", "size"),
    "unfilled_size": ("Unfilled size ({base})", "size"),
    "total_size": ("Total size ({base})", "size"),
    "bid_size": ("Bid size ({base})", "size"),
    "ask_size": ("Ask size ({base})", "size"),
    "best_bid_size": ("Best bid size ({base})", "size"),
    "best_ask_size": ("Best ask size ({base})", "size"),
    "volume": ("Volume ({base})", "size"),
    # notionals: quote currency
    "notional": ("Notional ({quote})", "notional"),
    "filled_notional": ("Filled notional ({quote})", "notional"),
    "unfilled_notional": ("Unfilled notional ({quote})", "notional"),
    "total_notional": ("Total notional ({quote})", "notional"),
    "bid_notional": ("Bid notional ({quote})", "notional"),
    "ask_notional": ("Ask notional ({quote})", "notional"),
    "depth_notional": ("Depth ({quote})", "notional"),
    "depth_bid_notional": ("Bid depth ({quote})", "notional"),
    "depth_ask_notional": ("Ask depth ({quote})", "notional"),
    "fee_quote": ("Fee ({quote})", "notional"),
    "fees_quote": ("Fees ({quote})", "notional"),
    "total_quote": ("Total incl. fees ({quote})", "notional"),
    "cost_quote": ("Cost ({quote})", "notional"),
    "total_cost_quote": ("Total cost ({quote})", "notional"),
    "savings_quote": ("Routing saves ({quote})", "notional"),
    "profit_quote": ("Profit ({quote})", "notional"),
    "cost_vs_mid_quote": ("Cost vs mid ({quote})", "notional"),
    "round_trip_cost_quote": ("Round-trip cost ({quote})", "notional"),
    # basis points
    "spread_bps": ("Spread (bps)", "bps"),
    "slippage_bps": ("Slippage vs mid (bps)", "bps"),
    "impact_bps": ("Impact (bps)", "bps"),
    "cost_bps": ("Cost + fees (bps)", "bps"),
    "fee_bps": ("Fee (bps)", "bps"),
    "savings_bps": ("Routing saves (bps)", "bps"),
    "edge_bps": ("Edge after fees (bps)", "bps"),
    "window_bps": ("Window (± bps)", "bps"),
    "cost_vs_mid_bps": ("Cost vs mid (bps)", "bps"),
    "round_trip_cost_bps": ("Round-trip cost (bps)", "bps"),
    "max_slippage_bps": ("Max slippage (bps)", "bps"),
    "avg_slippage_bps": ("Avg slippage (bps)", "bps"),
    "median_slippage_bps": ("Median slippage (bps)", "bps"),
    "min_slippage_bps": ("Min slippage (bps)", "bps"),
    "high_risk_threshold_bps": ("High-risk threshold (bps)", "bps"),
    "optimal_threshold_bps": ("Optimal threshold (bps)", "bps"),
    "peak_slippage_bps": ("Peak slippage (bps)", "bps"),
    # pure numbers
    "imbalance": ("Imbalance (-1 to 1)", "ratio"),
    "hhi": ("HHI (0 to 1)", "ratio"),
    "zscore": ("z-score", "ratio"),
    "threshold": ("Threshold", "ratio"),
    "value": ("Value", "ratio"),
    "previous_value": ("Previous value", "ratio"),
    "spread": ("Spread (log)", "ratio"),
    "return_corr": ("Return correlation", "ratio"),
    "depth_share": ("Depth share", "share"),
    "share": ("Depth share", "share"),
    # counts and durations
    "levels_consumed": ("Levels consumed", "count"),
    "intervals": ("Intervals", "count"),
    "gaps": ("Gaps", "count"),
    "resyncs": ("Resyncs", "count"),
    "checksum_failures": ("Checksum failures", "count"),
    "messages": ("Messages", "count"),
    "books_ok": ("Books OK", "count"),
    "books_total": ("Books", "count"),
    "consecutive_failures": ("Consecutive failures", "count"),
    "id": ("Id", "count"),
    "rule_id": ("Rule id", "count"),
    "age_ms": ("Age (ms)", "ms"),
    "last_success_ms": ("Last success (epoch ms)", "count"),
    "last_failure_ms": ("Last failure (epoch ms)", "count"),
    "ts_ms": ("Time (epoch ms)", "count"),
    "first_ts_ms": ("First (epoch ms)", "count"),
    "last_ts_ms": ("Last (epoch ms)", "count"),
    "book_ts_ns": ("Book time (epoch ns)", "count"),
    "ts_event_ns": ("Event time (epoch ns)", "count"),
    "ts_diff_ms": ("Book time gap (ms)", "ms"),
    "retry_in_s": ("Retry in (s)", "s"),
    "cooldown_s": ("Cooldown (s)", "s"),
    # times (ISO 8601 UTC strings)
    "ts": ("Time (UTC)", "time"),
    "book_ts": ("Book time (UTC)", "time"),
    "start": ("Start (UTC)", "time"),
    "end": ("End (UTC)", "time"),
    "worst_interval": ("Worst interval (UTC)", "time"),
    # yes/no
    "fillable": ("Fillable", "bool"),
    "fully_filled": ("Fully filled", "bool"),
    "contemporaneous": ("Same moment", "bool"),
    "opportunity": ("Opportunity", "bool"),
    "enabled": ("Enabled", "bool"),
    "ok": ("OK", "bool"),
    "synced": ("Synced", "bool"),
    "stale": ("Stale", "bool"),
    "crossed": ("Crossed", "bool"),
    "high_risk": ("High risk", "bool"),
    "optimal": ("Optimal", "bool"),
}

# What a column means, shown as its header's tooltip.
HELP: dict[str, str] = {
    "cost_bps": "Slippage of the VWAP against the venue's own mid, plus the taker fee, in bps",
    "slippage_bps": "VWAP against the mid price, in bps (positive = worse than mid)",
    "spread_bps": "(best ask - best bid) / mid, in bps",
    "vwap_incl_fees": "Volume-weighted average fill price with the taker fee added (buy) or taken off (sell)",
    "imbalance": "(bid size - ask size) / (bid size + ask size) within the window",
    "edge_bps": "Sell price net of fee over buy price incl. fee, in bps (positive = an opportunity)",
    "savings_bps": "How much cheaper the routed plan is than this baseline, in bps",
    "depth_share": "This venue's share of the depth within the window across venues",
    "share": "This venue's share of the depth within the window across venues",
    "ts_diff_ms": "How far apart the two books' timestamps are",
}

_SUFFIX_KINDS: tuple[tuple[str, Kind, str], ...] = (
    ("_bps", "bps", " (bps)"),
    ("_ms", "ms", " (ms)"),
    ("_s", "s", " (s)"),
    ("_quote", "notional", " ({quote})"),
    ("_notional", "notional", " ({quote})"),
    ("_size", "size", " ({base})"),
    ("_price", "price", " ({quote})"),
    ("_ts", "time", " (UTC)"),
)


def field_info(field: str) -> tuple[str, Kind]:
    """``(label template, kind)`` of an API field: from ``FIELDS``, else from its unit suffix
    (``_bps``, ``_ms``, ``_quote``, ``_notional``, ``_size``, ``_price``), else text-like."""
    if field in FIELDS:
        return FIELDS[field]
    words = field.replace("_", " ").strip().capitalize()
    for suffix, kind, unit in _SUFFIX_KINDS:
        if field.endswith(suffix):
            stem = field[: -len(suffix)].replace("_", " ").strip().capitalize() or words
            return stem + unit, kind
    return words, "ratio"


def label(field: str, cur: Currencies | None = None) -> str:
    """The trader's label of an API field with its unit, e.g. ``vwap`` -> ``VWAP (USDT)``."""
    cur = cur or Currencies()
    template, _ = field_info(field)
    return template.format(base=cur.base_label, quote=cur.quote_label)


def kind_of(field: str) -> Kind:
    return field_info(field)[1]


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def price_decimals(x: float) -> int:
    """Decimals of a price: 2 at 1,000 and above, more for smaller prices (5-6 significant
    digits, at most 8): 61,602.01 / 2,345.67 / 0.091940."""
    if not is_number(x) or x == 0:
        return 2
    digits = math.floor(math.log10(abs(x))) + 1
    return min(8, max(2, 6 - digits))


def small_decimals(x: float, least: int = 2, most: int = 6) -> int:
    """Decimals that keep two significant digits of a small number (0.0016 -> 4), at least
    ``least``."""
    if not is_number(x) or x == 0 or abs(x) >= 1:
        return least
    return min(most, max(least, -math.floor(math.log10(abs(x))) + 1))


def fmt_compact(x: Any, unit: str = "") -> str:
    """A large number as ``16.54M`` (k, M, B, T), with `` unit`` when given; ``—`` if missing."""
    if not is_number(x):
        return "—"
    suffix = f" {unit}" if unit else ""
    for div, s in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:,.2f}{s}{suffix}"
    return f"{x:,.2f}{suffix}"


def fmt_number(x: Any, kind: Kind, unit: str = "") -> str:
    """``x`` formatted for its kind, with `` unit`` appended when given; ``—`` when missing.

    price: by magnitude (``price_decimals``); size: 4 decimals (2 at 1,000 and above);
    notional: no decimals at 1,000 and above, else 2; bps: 2 decimals, two significant digits
    below 0.1 bps; ratio: 3 decimals; share: a percentage; count: an integer; ms/s: 0 or 1
    decimal. Thousands separators throughout."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if not is_number(x):
        return str(x)
    suffix = f" {unit}" if unit else ""
    if isinstance(x, int) and kind in ("ratio", "count"):
        return f"{x:,}{suffix}"
    if kind == "price":
        return f"{x:,.{price_decimals(x)}f}{suffix}"
    if kind == "size":
        return f"{x:,.{2 if abs(x) >= 1000 else max(4, small_decimals(x, 4, 8))}f}{suffix}"
    if kind == "notional":
        return f"{x:,.{0 if abs(x) >= 1000 else 2}f}{suffix}"
    if kind == "bps":
        return f"{x:,.{small_decimals(x, 2, 6)}f} bps"
    if kind == "share":
        return f"{x * 100:.1f}%"
    if kind == "count":
        return f"{x:,.0f}{suffix}"
    if kind in ("ms", "s"):
        return f"{x:,.{0 if abs(x) >= 10 else 1}f} {kind}"
    return f"{x:,.{small_decimals(x, 3, 6)}f}{suffix}"


def fmt_amount(x: Any, unit: str = "") -> str:
    """An order amount as typed (``5``, ``0.5``, ``1,234.5``), with `` unit``; ``—`` if missing."""
    if not is_number(x):
        return "—"
    return f"{x:,.10g}" + (f" {unit}" if unit else "")


def fmt_time(iso: Any) -> str:
    """An ISO 8601 UTC time for reading: ``2024-08-09T00:05:05.809Z`` -> ``2024-08-09 00:05:05.809``
    (``.000`` and ``:00`` seconds dropped); other values as text."""
    if not isinstance(iso, str) or "T" not in iso:
        return "—" if iso is None else str(iso)
    text = iso.removesuffix("Z").removesuffix("+00:00").replace("T", " ")
    text = text.removesuffix(".000")
    return text.removesuffix(":00") if len(text) == 19 else text


def column_format(kind: Kind, values: Sequence[Any] = ()) -> str | None:
    """A printf-style format for a Streamlit ``NumberColumn`` of this kind (``%,`` = thousands
    separators), decimals picked from the column's values; None for non-number kinds."""
    nums = [abs(v) for v in values if is_number(v) and v != 0]
    typical = sorted(nums)[len(nums) // 2] if nums else 0.0
    smallest = min(nums) if nums else 0.0
    if kind == "price":
        return f"%,.{price_decimals(typical)}f"
    if kind == "size":
        return "%,.2f" if typical >= 1000 else f"%,.{max(4, small_decimals(smallest, 4, 8))}f"
    if kind == "notional":
        return "%,.0f" if typical >= 1000 else "%,.2f"
    if kind == "bps":
        return f"%,.{small_decimals(smallest, 2, 4)}f"
    if kind == "ratio":
        return f"%,.{small_decimals(smallest, 3, 6)}f"
    if kind == "share":
        return "percent"
    if kind == "count":
        return "%,d"
    if kind in ("ms", "s"):
        return "%,.0f" if typical >= 10 else "%,.1f"
    return None


def scalar_text(field: str, value: Any, cur: Currencies | None = None) -> str:
    """A scalar field's value as text with its unit (for field/value tables)."""
    cur = cur or Currencies()
    kind = kind_of(field.split(".")[-1])
    if kind in ("price", "notional"):
        return fmt_number(value, kind, cur.quote_label)
    if kind == "size":
        return fmt_number(value, kind, cur.base_label)
    return fmt_number(value, kind)


def rows_currencies(rows: Sequence[Mapping[str, Any]], fallback: Currencies | None = None) -> Currencies:
    """The currencies shared by the ``symbol`` column of ``rows`` (see ``common_currencies``)."""
    return common_currencies((r.get("symbol") for r in rows), fallback)
