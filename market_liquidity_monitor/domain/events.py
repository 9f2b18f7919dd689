"""Normalized market events produced by venue adapters.

Prices and sizes stay as the wire's decimal strings here: the book parses each one exactly once,
with one rule, into integers (see ``market_liquidity_monitor.book.scaling``). Timestamps are
integers in nanoseconds since the Unix epoch: ``ts_event`` is the venue's time, ``ts_recv`` the
local receive time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from market_liquidity_monitor.domain.instrument import InstrumentId

# A level on the wire: (price, size) decimal strings; size "0" deletes the level.
WireLevel = tuple[str, str]


@dataclass(slots=True)
class L2Snapshot:
    """A full book image. ``sequence`` is the venue's update id for the image (Binance ``lastUpdateId``)."""

    instrument: InstrumentId
    bids: list[WireLevel]
    asks: list[WireLevel]
    sequence: int | None
    ts_event: int | None
    ts_recv: int
    checksum: int | None = None


@dataclass(slots=True)
class L2Delta:
    """An incremental book update with absolute sizes per level (size 0 deletes).

    ``first_sequence``/``last_sequence`` are the first and last update ids the event covers
    (Binance ``U``/``u``); ``prev_sequence`` is the last update id of the previous event where the
    venue sends it (Binance futures ``pu``).
    """

    instrument: InstrumentId
    bids: list[WireLevel]
    asks: list[WireLevel]
    first_sequence: int | None
    last_sequence: int | None
    prev_sequence: int | None
    ts_event: int | None
    ts_recv: int
    # Venue checksum of the book after this update (Kraken ``c``, OKX ``checksum``), if sent.
    checksum: int | None = None


@dataclass(slots=True)
class BookTicker:
    """Best bid/ask as pushed by the venue (Binance ``bookTicker``), with its update id."""

    instrument: InstrumentId
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str
    sequence: int | None
    ts_event: int | None
    ts_recv: int


@dataclass(slots=True)
class Trade:
    """A public trade. ``side`` is the taker side (``buy`` lifts the ask)."""

    instrument: InstrumentId
    price: str
    size: str
    side: str
    trade_id: str
    ts_event: int | None
    ts_recv: int
    extra: dict = field(default_factory=dict)
