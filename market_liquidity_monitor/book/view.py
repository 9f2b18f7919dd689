"""An immutable, analytics-friendly image of one book at one instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns


@dataclass(frozen=True, slots=True)
class BookView:
    """Both sides of an L2 book as float arrays, best level first.

    - ``bid_prices`` descending, ``ask_prices`` ascending (quote currency per base unit);
    - ``bid_sizes``/``ask_sizes`` in base units (for inverse contracts the adapter converts
      contracts to base units before they reach analytics, see ``size_multiplier``);
    - ``ts_event_ns``: venue time of the last applied update (ns since epoch), ``ts_recv_ns`` local.

    Floats are fine here: the view is for statistics and display; the live book keeps exact ints.
    """

    instrument: InstrumentId
    bid_prices: np.ndarray
    bid_sizes: np.ndarray
    ask_prices: np.ndarray
    ask_sizes: np.ndarray
    ts_event_ns: int | None = None
    ts_recv_ns: int | None = None
    sequence: int | None = None
    quality: dict = field(default_factory=dict)

    @property
    def book_ts_ns(self) -> int | None:
        """The book's timestamp: venue time when known, else local receive time."""
        return self.ts_event_ns if self.ts_event_ns is not None else self.ts_recv_ns

    @property
    def book_ts(self) -> datetime | None:
        ts = self.book_ts_ns
        return None if ts is None else datetime.fromtimestamp(ts / 1e9, tz=UTC)

    @property
    def book_ts_iso(self) -> str | None:
        return iso_ns(self.book_ts_ns)

    @classmethod
    def from_levels(
        cls,
        instrument: InstrumentId,
        bids: list[tuple[float, float]],
        asks: list[tuple[float, float]],
        ts_event_ns: int | None = None,
        ts_recv_ns: int | None = None,
        sequence: int | None = None,
    ) -> BookView:
        """Build a view from (price, size) pairs in any order (sorted here; zero sizes dropped)."""
        b = sorted(((float(p), float(s)) for p, s in bids if float(s) > 0), key=lambda x: -x[0])
        a = sorted(((float(p), float(s)) for p, s in asks if float(s) > 0), key=lambda x: x[0])
        return cls(
            instrument=instrument,
            bid_prices=np.array([p for p, _ in b], dtype=float),
            bid_sizes=np.array([s for _, s in b], dtype=float),
            ask_prices=np.array([p for p, _ in a], dtype=float),
            ask_sizes=np.array([s for _, s in a], dtype=float),
            ts_event_ns=ts_event_ns,
            ts_recv_ns=ts_recv_ns,
            sequence=sequence,
        )
