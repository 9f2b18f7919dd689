"""Kraken spot WebSocket v1 (the capture) and v2 (``book``, ``trade``, ``ticker``): pure translation.

v1 wire formats (real frames from ../shared/data/cryptofeed/KRAKEN.ws.48-50.0, README §4.1):

- book snapshot (keys ``as``/``bs``; levels ``[price, volume, timestamp]``)::

    [1360,{"as":[["0.000022900","13355.87450757","1618678123.481570"],…],"bs":[…]},"book-1000","KSM/XBT"]

- book update: ``a`` and/or ``b``, possibly in two dicts; ``c`` (checksum) in the last dict; an
  optional 4th level element ``"r"`` marks a republish; volume ``0`` deletes::

    [1920,{"a":[["0.042990","364630.28272081","1618678145.920470"]]},
     {"b":[["0.042990","0.00000000","1618678145.920708"]],"c":"4105471083"},"book-1000","SC/EUR"]

- trade: ``[993,[["354.55000000","1.25690315","1618678145.715785","b","m",""]],"trade","XMR/USD"]``
  (price, volume, time, side ``b``/``s`` of the taker, order type, misc)
- ticker: ``[1668,{"a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"],…},
  "ticker","WAVES/EUR"]`` (``a``/``b`` = price, whole-lot volume, lot volume)
- events: ``{"event":"heartbeat"}``, ``{"event":"systemStatus",…}``,
  ``{"channelID":1664,"channelName":"book-1000","event":"subscriptionStatus","pair":"WAVES/EUR",…}``.

v2 (documented schema, https://docs.kraken.com/api/docs/websocket-v2/book; no v2 recording):
``{"channel":"book","type":"snapshot"|"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,
"qty":0.10000000}],"asks":[…],"checksum":3310070434,"timestamp":"2023-10-06T17:35:55.440295Z"}]}``.
Prices and quantities are JSON numbers "containing full precision": pass the raw text (``str``/
``bytes``) to ``parse_message`` so it is decoded with ``parse_float=Decimal`` and trailing zeros
survive (``0.00100000`` must checksum as ``100000``). A frame already decoded to floats can only be
checksummed if the pair's precisions are known (``precisions=``); otherwise its checksum is
dropped and counted in ``unverifiable_checksums``.

Book maintenance (docs.kraken.com book-checksum v1/v2, VENUE_RULES.md §4): apply every level of a
message in array order, then truncate to the subscribed depth (parsed from ``book-1000``: "you will
not receive qty 0 for levels that fall out of scope"), then verify the CRC32 of the top 10 asks
(low->high) + top 10 bids (high->low), digits without ``.`` and leading zeros, unsigned. v1 sends
``c`` on updates only; v2 on snapshots and updates. No sequence numbers exist (v1 or v2): the
checksum is the only loss detector (``NoSequenceRule``), and it only sees the top 10 levels. Repair
(``resubscribe_messages``): unsubscribe + subscribe that one book on the open socket, which pushes a
fresh snapshot; the other books are untouched. Keepalive: Kraken sends a heartbeat ~1/s
when idle; treat 5 s of silence as a dead connection (Kraken's reconnection guide).
Symbols: v1 writes ``XBT/CHF`` (-> ``BTC/CHF``) and ``XDG`` for DOGE; v2 writes ``BTC/USD``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.scaling import wire_decimals
from market_liquidity_monitor.book.sync import NoSequenceRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.venues.base import AdapterBase, Event, KeepAlive, SnapshotRequest
from market_liquidity_monitor.venues.checksums import (
    KRAKEN_CHECKSUM_LEVELS,
    fixed_text,
    kraken_checksum_scaled,
    number_text,
)

# v1 asset codes -> ccxt common codes (ccxt kraken ``commonCurrencies``: XBT -> BTC, XDG -> DOGE).
_V1_TO_COMMON = {"XBT": "BTC", "XDG": "DOGE"}
_COMMON_TO_V1 = {v: k for k, v in _V1_TO_COMMON.items()}


def _sec_text_ns(text: str) -> int:
    """``"1618678137.640504"`` (seconds, up to 9 decimals) -> ns, exactly."""
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def _iso_ns(text: str) -> int:
    """RFC 3339 ``2023-10-06T17:35:55.440295Z`` -> ns since the epoch (µs resolution kept)."""
    from datetime import datetime

    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


class Kraken(AdapterBase):
    """Kraken spot market data, WS v1 (``version=1``, the recorded API) or v2 (``version=2``).

    ``precisions`` maps a unified symbol to ``(price_decimals, qty_decimals)`` (REST AssetPairs
    ``pair_decimals``/``lot_decimals``, or the v2 ``instrument`` channel); only needed for v2 frames
    that were decoded to floats.
    """

    venue = "kraken"
    rest_depth_url = "https://api.kraken.com/0/public/Depth"
    sequence_rule = NoSequenceRule()
    keepalive = KeepAlive(interval_s=None, client_ping=None, silence_timeout_s=5.0)

    def __init__(
        self, version: int = 1, depth: int = 1000, precisions: dict[str, tuple[int, int]] | None = None
    ):
        if version not in (1, 2):
            raise ValueError(f"Kraken WS version must be 1 or 2, got {version!r}")
        if depth not in (10, 25, 100, 500, 1000):
            raise ValueError(f"Kraken book depth must be one of 10, 25, 100, 500, 1000, got {depth!r}")
        self.version = version
        self.depth = depth
        self.ws_url = "wss://ws.kraken.com" if version == 1 else "wss://ws.kraken.com/v2"
        self.precisions = dict(precisions or {})
        super().__init__()
        self.unverifiable_checksums = 0
        self._depth: dict[InstrumentId, int] = {}  # subscribed depth per book
        self._wire_dec: dict[InstrumentId, tuple[int, int]] = {}  # decimals Kraken writes per book

    # -------------------------------------------------------------- symbols

    def unified_symbol(self, venue_symbol: str) -> str:
        base, sep, quote = venue_symbol.upper().partition("/")
        if not sep:
            raise UnknownSymbolError(venue_symbol, (), self.venue)
        return f"{_V1_TO_COMMON.get(base, base)}/{_V1_TO_COMMON.get(quote, quote)}"

    def venue_symbol(self, symbol: str) -> str:
        base, quote = symbol.split(":")[0].split("/")
        if self.version == 2:
            return f"{base}/{quote}"
        return f"{_COMMON_TO_V1.get(base, base)}/{_COMMON_TO_V1.get(quote, quote)}"

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        pairs = [self.venue_symbol(s) for s in symbols]
        if self.version == 1:
            subs = [{"name": "book", "depth": self.depth}, {"name": "trade"}, {"name": "ticker"}]
            msgs = [{"event": "subscribe", "pair": pairs, "subscription": s} for s in subs]
        else:
            msgs = [
                {"method": "subscribe", "params": {"channel": "book", "symbol": pairs, "depth": self.depth}},
                {"method": "subscribe", "params": {"channel": "trade", "symbol": pairs}},
                {"method": "subscribe", "params": {"channel": "ticker", "symbol": pairs}},
            ]
        return [orjson.dumps(m).decode() for m in msgs]

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """Frames that make Kraken push a fresh book snapshot for one pair on the open socket:
        unsubscribe, then subscribe its ``book`` channel at the same depth (the runtime sends them
        after a checksum failure). Neither v1 nor v2 has a per-book "resend snapshot" request; a
        subscription starts with a snapshot ("the first message is a snapshot of the current book,
        subsequent messages are updates" [DOC websocket-v2/book]; v1 likewise)."""
        pair = [self.venue_symbol(symbol)]
        if self.version == 1:
            sub = {"name": "book", "depth": self.depth}
            msgs = [{"event": op, "pair": pair, "subscription": sub} for op in ("unsubscribe", "subscribe")]
        else:
            params = {"channel": "book", "symbol": pair, "depth": self.depth}
            msgs = [{"method": op, "params": params} for op in ("unsubscribe", "subscribe")]
        return [orjson.dumps(m).decode() for m in msgs]

    def reset_connection(self) -> None:
        """Forget per-book wire state (subscribed depth, wire decimals): a new socket starts with
        new snapshots, which set them again."""
        self._depth.clear()
        self._wire_dec.clear()

    def decode_frame(self, raw: bytes | str) -> Any:
        """The live runtime's decoder for this adapter. v2 numbers carry full precision, so they
        are decoded to ``Decimal`` (orjson would give floats and lose trailing zeros the checksum
        needs); v1 sends strings, orjson is exact. Raises ``ValueError`` for undecodable frames."""
        if self.version == 2:
            return json.loads(raw, parse_float=Decimal)
        return orjson.loads(raw)

    def snapshot_request(self, symbol: str, limit: int = 1000) -> SnapshotRequest | None:
        return None  # the book channel pushes its snapshot on the socket

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST ``GET /0/public/Depth?pair=…&count=…`` body (``result`` keyed by the REST pair name)."""
        (book,) = body["result"].values()
        inst = self.instrument(self.venue_symbol(symbol) if ":" not in symbol and "/" in symbol else symbol)
        return L2Snapshot(inst, book["bids"], book["asks"], None, None, ts_recv_ns)

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A frame (decoded JSON, or raw ``str``/``bytes`` for exact v2 numbers) -> events."""
        try:
            if isinstance(msg, (bytes, bytearray, str)):
                msg = json.loads(msg, parse_float=Decimal)
            if isinstance(msg, list):
                return self._v1(msg, ts_recv_ns)
            if isinstance(msg, dict):
                if "channel" in msg and "data" in msg:
                    return self._v2(msg, ts_recv_ns)
                if msg.get("status") == "error" or msg.get("error"):
                    self.errors.record("unknown", msg)
                return []  # heartbeat, systemStatus, subscriptionStatus, pong, method acks
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError, IndexError, ArithmeticError):
            self.errors.record("malformed", msg)
            return []

    # v1 ---------------------------------------------------------------------

    def _v1(self, msg: list, ts_recv_ns: int) -> list[Event]:
        name = msg[-2]
        if not isinstance(name, str):
            self.errors.record("unknown", msg)
            return []
        inst = self.instrument(msg[-1])
        if name.startswith("book"):
            return [self._v1_book(inst, name, msg[1:-2], ts_recv_ns)]
        if name == "trade":
            return [
                Trade(
                    inst,
                    t[0],
                    t[1],
                    "buy" if t[3] == "b" else "sell",
                    f"{t[2]}:{i}",
                    _sec_text_ns(t[2]),
                    ts_recv_ns,
                    {"order_type": t[4]},
                )
                for i, t in enumerate(msg[1])
            ]
        if name == "ticker":
            d = msg[1]
            return [BookTicker(inst, d["b"][0], d["b"][2], d["a"][0], d["a"][2], None, None, ts_recv_ns)]
        self.errors.record("unknown", msg)
        return []

    def _v1_book(self, inst: InstrumentId, name: str, parts: list, ts_recv_ns: int) -> Event:
        _, _, depth = name.partition("-")
        self._depth[inst] = int(depth) if depth else 10
        first = parts[0]
        if "as" in first or "bs" in first:
            asks, bids = first.get("as", []), first.get("bs", [])
            lv = (asks or bids or [None])[0]
            if lv is not None:
                self._wire_dec[inst] = (wire_decimals(lv[0]), wire_decimals(lv[1]))
            ts = max((_sec_text_ns(x[2]) for x in (*asks[:1], *bids[:1])), default=None)
            return L2Snapshot(inst, bids, asks, None, ts, ts_recv_ns)
        asks: list = []
        bids: list = []
        checksum = None
        for part in parts:
            if "a" in part:
                asks = asks + part["a"] if asks else part["a"]
            if "b" in part:
                bids = bids + part["b"] if bids else part["b"]
            if "c" in part:
                checksum = int(part["c"])
        last = (bids or asks)[-1]
        return L2Delta(inst, bids, asks, None, None, None, _sec_text_ns(last[2]), ts_recv_ns, checksum)

    # v2 ---------------------------------------------------------------------

    def _v2(self, msg: dict, ts_recv_ns: int) -> list[Event]:
        channel = msg["channel"]
        if channel == "book":
            return [self._v2_book(d, msg["type"], ts_recv_ns) for d in msg["data"]]
        if channel == "trade":
            return [
                Trade(
                    self.instrument(d["symbol"]),
                    number_text(d["price"]),
                    number_text(d["qty"]),
                    d["side"],
                    str(d["trade_id"]),
                    _iso_ns(d["timestamp"]),
                    ts_recv_ns,
                    {"order_type": d.get("ord_type")},
                )
                for d in msg["data"]
            ]
        if channel == "ticker":
            return [
                BookTicker(
                    self.instrument(d["symbol"]),
                    number_text(d["bid"]),
                    number_text(d["bid_qty"]),
                    number_text(d["ask"]),
                    number_text(d["ask_qty"]),
                    None,
                    None,
                    ts_recv_ns,
                )
                for d in msg["data"]
            ]
        if channel in ("heartbeat", "status", "instrument"):
            return []
        self.errors.record("unknown", msg)
        return []

    def _v2_book(self, d: dict, kind: str, ts_recv_ns: int) -> Event:
        inst = self.instrument(d["symbol"])
        self._depth[inst] = self.depth
        exact = all(
            not isinstance(lv["price"], float) and not isinstance(lv["qty"], float)
            for lv in (*d.get("bids", ()), *d.get("asks", ()))
        )
        prec = self.precisions.get(inst.symbol)
        if exact:
            render = lambda lv: [number_text(lv["price"]), number_text(lv["qty"])]  # noqa: E731
        elif prec is not None:
            render = lambda lv: [fixed_text(lv["price"], prec[0]), fixed_text(lv["qty"], prec[1])]  # noqa: E731
        else:
            render = lambda lv: [number_text(lv["price"]), number_text(lv["qty"])]  # noqa: E731
        bids = [render(lv) for lv in d.get("bids", ())]
        asks = [render(lv) for lv in d.get("asks", ())]
        checksum = d.get("checksum")
        if checksum is not None and not exact and prec is None:
            self.unverifiable_checksums += 1  # trailing zeros lost by a float decoder
            checksum = None
        ts = _iso_ns(d["timestamp"]) if d.get("timestamp") else None
        if kind == "snapshot":
            if exact or prec is not None:
                lv = (asks or bids or [None])[0]
                if lv is not None:
                    self._wire_dec[inst] = prec or (wire_decimals(lv[0]), wire_decimals(lv[1]))
            return L2Snapshot(inst, bids, asks, None, ts, ts_recv_ns, checksum)
        return L2Delta(inst, bids, asks, None, None, None, ts, ts_recv_ns, checksum)

    # ------------------------------------------------------------ integrity

    def verify_checksum(self, book: L2Book, expected: int) -> bool:
        """Truncate the book to its subscribed depth, then compare Kraken's CRC32 of the top 10.

        Both steps are Kraken's book-maintenance rule for every update (docs.kraken.com
        book-checksum v1/v2); every v1 update and every v2 message carries ``c``/``checksum``, so
        this runs after every applied update.
        """
        depth = self._depth.get(book.instrument)
        if depth is not None:
            book.truncate(depth)
        bids, asks = book.levels_scaled(KRAKEN_CHECKSUM_LEVELS)
        pdec, sdec = self._wire_dec.get(book.instrument, (book.price_decimals, book.size_decimals))
        return (
            kraken_checksum_scaled(
                asks, bids, max(0, book.price_decimals - pdec), max(0, book.size_decimals - sdec)
            )
            == expected
        )


ADAPTERS = {"kraken": Kraken}
