"""The small interface every venue adapter implements (pure translation, no I/O).

An adapter turns one raw frame (already JSON-decoded, or raw text) into normalized events, says
how to subscribe, how to request a REST snapshot, which sequence rule its book follows, and how to
verify its checksum. Sockets, timers, retries and rate limiting live in ``ingest``, never here
(cryptofeed's and nautilus_trader's split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.sync import SequenceRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId

Event = L2Snapshot | L2Delta | BookTicker | Trade


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """A REST depth snapshot request: GET ``url`` with ``params``; ``weight`` counts against the
    venue's request-weight budget (Binance: /api/v3/depth limit 1000 -> 50)."""

    url: str
    params: dict[str, Any]
    weight: int = 1


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Venue keepalive rules. ``client_ping`` is a text frame to send every ``interval_s`` when the
    venue wants application-level pings (OKX ``"ping"``, Bybit ``{"op":"ping"}``); None = rely on
    WebSocket protocol pings (Binance answers its server pings automatically)."""

    interval_s: float | None = None
    client_ping: str | None = None
    # Reconnect when no message at all arrives for this long (a silent connection).
    silence_timeout_s: float = 30.0
    # Planned connection lifetime (Binance: 24 h); the runtime reconnects before it ends.
    max_connection_age_s: float | None = None


@dataclass(slots=True)
class ParseErrors:
    """Counters of frames an adapter could not use; a bad frame is counted, never raised."""

    malformed: int = 0
    unknown: int = 0
    examples: list[str] = field(default_factory=list)

    def record(self, kind: str, raw: Any) -> None:
        if kind == "malformed":
            self.malformed += 1
        else:
            self.unknown += 1
        if len(self.examples) < 5:
            self.examples.append(str(raw)[:200])


@runtime_checkable
class VenueAdapter(Protocol):
    venue: str  # ccxt id
    ws_url: str
    sequence_rule: SequenceRule
    keepalive: KeepAlive

    def venue_symbol(self, symbol: str) -> str:
        """Unified ccxt symbol -> wire symbol (``BTC/USDT`` -> ``BTCUSDT``)."""

    def unified_symbol(self, venue_symbol: str) -> str:
        """Wire symbol -> unified ccxt symbol."""

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Text frames to send after connecting (may be empty when the URL carries the streams)."""

    def stream_url(self, symbols: list[str]) -> str:
        """The WebSocket URL to connect to for these symbols."""

    def snapshot_request(self, symbol: str, limit: int = 1000) -> SnapshotRequest | None:
        """REST snapshot request, or None for venues that push the snapshot on the socket."""

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """Parse a REST snapshot response body (decoded JSON)."""

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """Decoded WebSocket frame -> events. Unknown or control frames -> []."""

    def verify_checksum(self, book: L2Book, expected: int) -> bool:
        """True if the book's state matches the venue checksum (venues without one: always True)."""


class AdapterBase:
    """What most adapters share: the parse-error counters, a cached wire-symbol -> ``InstrumentId``
    map, and the defaults of a spot venue without checksum whose URL names no streams. Subclasses
    set ``venue`` and ``ws_url`` and implement the symbol mapping and parsing."""

    venue: str
    ws_url: str

    def __init__(self) -> None:
        self.errors = ParseErrors()
        self._instrument_cache: dict[str, InstrumentId] = {}

    def instrument(self, venue_symbol: str) -> InstrumentId:
        inst = self._instrument_cache.get(venue_symbol)
        if inst is None:
            inst = self._instrument_cache[venue_symbol] = InstrumentId(
                self.venue, self.unified_symbol(venue_symbol)
            )
        return inst

    def instrument_for(self, symbol: str) -> InstrumentId:
        """The ``InstrumentId`` of a symbol given in unified (``BTC/USDT``) or wire form."""
        return self.instrument(self.venue_symbol(symbol) if "/" in symbol else symbol)

    def contract_size(self, symbol: str) -> float | None:
        return None  # spot / linear: sizes are base units

    def stream_url(self, symbols: list[str]) -> str:
        return self.ws_url  # streams are chosen by subscribe messages

    def verify_checksum(self, book: L2Book, expected: int) -> bool:
        return True  # no checksum on this venue


class DelimitedSymbols:
    """``BASE<delimiter>QUOTE`` wire symbols (Coinbase/KuCoin ``BTC-USD``, Gate.io ``BTC_USDC``).
    ``split_last`` splits at the last delimiter (Gate.io bases may contain ``_``)."""

    venue: str
    symbol_delimiter: str = "-"
    split_last: bool = False

    def unified_symbol(self, venue_symbol: str) -> str:
        vs = venue_symbol.upper()
        base, sep, quote = (
            vs.rpartition(self.symbol_delimiter) if self.split_last else vs.partition(self.symbol_delimiter)
        )
        if not sep or not base or not quote:
            raise UnknownSymbolError(venue_symbol, (), self.venue)
        return f"{base}/{quote}"

    def venue_symbol(self, symbol: str) -> str:
        return symbol.split(":")[0].replace("/", self.symbol_delimiter)


def split_quote_suffix(venue_symbol: str, quotes: tuple[str, ...]) -> tuple[str, str] | None:
    """Split a concatenated wire symbol (``BTCUSDT``) by the first quote in ``quotes`` (list them
    longest first) that ends it and leaves a non-empty base; None when none fits."""
    for q in quotes:
        if venue_symbol.endswith(q) and len(venue_symbol) > len(q):
            return venue_symbol[: -len(q)], q
    return None
