"""OKX v5 public WebSocket (``books``, ``books5``, ``bbo-tbt``, ``trades``, ``tickers``): pure translation.

Wire formats (real frames from ../shared/data/cryptofeed/OKX.ws.1.0, README §4.1):

- order book (``books``: a 400-level ``snapshot`` first, then ``update``s; ``[px, sz, liquidated
  orders (deprecated), number of orders]``; size ``"0"`` deletes)::

    {"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{"asks":[
     ["30249.4","0","0","0"],["30261","4","0","1"]],"bids":[["30182.6","452","0","1"]],
     "ts":"1652459225464","checksum":-914047754}]}

  Since mid-2022 the book data also carries ``seqId``/``prevSeqId`` (snapshot ``prevSeqId = -1``);
  the 2022-05 capture has none (0 of 290 messages), so its integrity rests on the checksum.
- trades (``side`` is the taker side)::

    {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"338476356",
     "px":"30230","sz":"0.033","side":"sell","ts":"1652459233109"}]}

- tickers: ``{"arg":{"channel":"tickers","instId":…},"data":[{"instType":"FUTURES","instId":…,
  "last":…,"askPx":"30220.1","askSz":"3","bidPx":"30210.4","bidSz":"4",…,"ts":"1652459223003"}]}``
- control: ``{"event":"subscribe","arg":{…}}``, ``{"event":"error","code":"60012","msg":…}``,
  ``{"event":"notice","code":"64008",…}`` (server restart soon), and the text ``pong``.

Integrity (VENUE_RULES.md §5): ``checksum`` = signed CRC32 of up to 25 interleaved ``bid:ask``
levels with the ORIGINAL wire strings (``venues.checksums.okx_checksum``); it is verified on every
snapshot and update that carries one; ``0`` means "not provided" (OKX announced it will always be 0
from 2026-06-23 on). ``seqId``/``prevSeqId`` linkage (``book.rules.OkxRule``) is the primary
detector where present. Keepalive: send the text ``ping`` when nothing arrived for < 30 s.
Symbols: ``BTC-USDT`` -> ``BTC/USDT``; ``BTC-USDT-SWAP`` -> ``BTC/USDT:USDT``; ``UNI-USD-SWAP`` ->
``UNI/USD:UNI``; ``BTC-USD-220527`` -> ``BTC/USD:BTC-220527`` (ccxt's unified forms). Inverse
contracts: BTC 100 USD face value, others 10 USD (``ctVal`` in cryptofeed/OKX.0).
"""

from __future__ import annotations

from typing import Any

import orjson

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.rules import OkxRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.venues.base import AdapterBase, Event, KeepAlive, SnapshotRequest
from market_liquidity_monitor.venues.checksums import OKX_CHECKSUM_LEVELS, okx_checksum

_MS = 1_000_000
# Channels whose every push is a full image (no action field): ccxt okx.ts ``depths``.
_FULL_IMAGE_CHANNELS = {"books5", "bbo-tbt"}
_BOOK_CHANNELS = {"books", "books-l2-tbt", "books50-l2-tbt", *_FULL_IMAGE_CHANNELS}


def _norm(text: str) -> str:
    """A decimal string without trailing fractional zeros (the key ``_text`` produces)."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _text(value: int, decimals: int) -> str:
    """Non-negative scaled int -> decimal text without trailing zeros (``format_scaled``, faster)."""
    s = str(value)
    if not decimals:
        return s
    if len(s) <= decimals:
        s = "0" * (decimals + 1 - len(s)) + s
    return (s[:-decimals] + "." + s[-decimals:]).rstrip("0").rstrip(".")


class Okx(AdapterBase):
    """OKX v5 public market data (spot, swaps, futures; one adapter, ccxt id ``okx``)."""

    venue = "okx"
    ws_url = "wss://ws.okx.com:8443/ws/v5/public"
    rest_books_url = "https://www.okx.com/api/v5/market/books"
    sequence_rule = OkxRule()
    # "If no data for 30 s the connection breaks; set a timer N < 30 s and send 'ping'."
    keepalive = KeepAlive(interval_s=25.0, client_ping="ping", silence_timeout_s=30.0)
    book_channel = "books"

    def __init__(self, contract_sizes: dict[str, float] | None = None):
        self._contract_sizes = dict(contract_sizes or {})
        super().__init__()
        # Original wire strings of the levels per instrument and side (index 0 bids, 1 asks):
        # normalized price text -> (price, size) as received, for the checksum.
        self._wire: dict[InstrumentId, tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]] = {}
        self.checksum_string_fallbacks = 0  # levels checksummed from re-rendered ints (should stay 0)

    # -------------------------------------------------------------- symbols

    def unified_symbol(self, venue_symbol: str) -> str:
        parts = venue_symbol.upper().split("-")
        if len(parts) < 2:
            raise UnknownSymbolError(venue_symbol, (), self.venue)
        base, quote, rest = parts[0], parts[1], parts[2:]
        if not rest:
            return f"{base}/{quote}"
        settle = base if quote == "USD" else quote  # USD-margined contracts are inverse
        if rest == ["SWAP"]:
            return f"{base}/{quote}:{settle}"
        return f"{base}/{quote}:{settle}-{'-'.join(rest)}"  # futures 220527, options 220527-30000-C

    def venue_symbol(self, symbol: str) -> str:
        pair, _, contract = symbol.partition(":")
        base, quote = pair.split("/")
        if not contract:
            return f"{base}-{quote}"
        _settle, _, expiry = contract.partition("-")
        return f"{base}-{quote}-{expiry}" if expiry else f"{base}-{quote}-SWAP"

    def contract_size(self, symbol: str) -> float | None:
        """Inverse contracts (settled in the base coin): USD face value per contract (BTC 100,
        others 10). Linear swaps/futures are quoted in contracts of ``ctVal`` base units, which
        ``L2Book`` cannot express as a face value: None (sizes stay in contracts)."""
        pair, _, contract = symbol.partition(":")
        base = pair.split("/")[0]
        if contract.split("-")[0] != base:  # spot, or settled in the quote (linear)
            return None
        return self._contract_sizes.get(base, 100.0 if base == "BTC" else 10.0)

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        args = []
        for s in symbols:
            i = self.venue_symbol(s)
            args += [
                {"channel": self.book_channel, "instId": i},
                {"channel": "trades", "instId": i},
                {"channel": "tickers", "instId": i},
            ]
        return [orjson.dumps({"op": "subscribe", "args": args}).decode()]

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """Frames that make OKX push a fresh ``books`` snapshot for one instrument on the open
        socket: unsubscribe, then subscribe its book channel (the runtime sends them after a
        checksum failure or a ``prevSeqId`` break). OKX documents no per-book "resend snapshot"
        request; a new subscription starts with ``action: snapshot`` [DOC channel description;
        the unsubscribe-then-subscribe sequence is what ccxt users do after a ChecksumError: 2ND]."""
        arg = [{"channel": self.book_channel, "instId": self.venue_symbol(symbol)}]
        return [
            orjson.dumps({"op": "unsubscribe", "args": arg}).decode(),
            orjson.dumps({"op": "subscribe", "args": arg}).decode(),
        ]

    def reset_connection(self) -> None:
        """Forget the wire strings of every book (a new socket starts with new snapshots)."""
        self._wire.clear()

    def snapshot_request(self, symbol: str, limit: int = 400) -> SnapshotRequest | None:
        return None  # the books channel pushes its snapshot on the socket

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST ``GET /api/v5/market/books?instId=…&sz=…`` body -> ``L2Snapshot`` (no seqId)."""
        d = body["data"][0]
        inst = self.instrument_for(symbol)
        return L2Snapshot(inst, d["bids"], d["asks"], None, int(d["ts"]) * _MS, ts_recv_ns)

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame -> events; control frames -> []; bad frames counted in ``errors``."""
        try:
            if not isinstance(msg, dict):
                if msg != "pong":
                    self.errors.record("unknown", msg)
                return []
            arg = msg.get("arg")
            data = msg.get("data")
            if arg is None or data is None:
                if msg.get("event") == "error":
                    self.errors.record("unknown", msg)
                return []  # subscribe acks, notices
            channel = arg.get("channel")
            if channel in _BOOK_CHANNELS:
                inst = self.instrument(arg["instId"])
                action = "snapshot" if channel in _FULL_IMAGE_CHANNELS else msg.get("action")
                return [self._book(inst, d, action, ts_recv_ns) for d in data]
            if channel == "trades":
                return [self._trade(d, ts_recv_ns) for d in data]
            if channel == "tickers":
                return [self._ticker(d, ts_recv_ns) for d in data]
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []

    def _book(self, inst: InstrumentId, d: dict, action: str | None, ts_recv_ns: int) -> Event:
        bids, asks = d["bids"], d["asks"]
        checksum = d.get("checksum") or None  # 0 / absent: not provided
        seq = d.get("seqId")
        ts = int(d["ts"]) * _MS
        if action == "snapshot":
            wb: dict[str, tuple[str, str]] = {}
            wa: dict[str, tuple[str, str]] = {}
            for lv in bids:
                wb[_norm(lv[0])] = (lv[0], lv[1])
            for lv in asks:
                wa[_norm(lv[0])] = (lv[0], lv[1])
            self._wire[inst] = (wb, wa)
            return L2Snapshot(inst, bids, asks, seq, ts, ts_recv_ns, checksum)
        if action != "update":
            raise ValueError(f"unknown book action {action!r}")
        wire = self._wire.get(inst)
        if wire is not None:
            for side, levels in ((wire[0], bids), (wire[1], asks)):
                for lv in levels:
                    if float(lv[1]):
                        side[_norm(lv[0])] = (lv[0], lv[1])
                    else:
                        side.pop(_norm(lv[0]), None)
        return L2Delta(inst, bids, asks, seq, seq, d.get("prevSeqId"), ts, ts_recv_ns, checksum)

    def _trade(self, d: dict, ts_recv_ns: int) -> Trade:
        return Trade(
            self.instrument(d["instId"]),
            d["px"],
            d["sz"],
            d["side"],
            str(d["tradeId"]),
            int(d["ts"]) * _MS,
            ts_recv_ns,
        )

    def _ticker(self, d: dict, ts_recv_ns: int) -> BookTicker:
        return BookTicker(
            self.instrument(d["instId"]),
            d["bidPx"],
            d["bidSz"],
            d["askPx"],
            d["askSz"],
            None,
            int(d["ts"]) * _MS,
            ts_recv_ns,
        )

    # ------------------------------------------------------------ integrity

    def wire_levels(self, book: L2Book, depth: int = OKX_CHECKSUM_LEVELS) -> tuple[list, list]:
        """The book's top ``depth`` levels per side, best first, as the ORIGINAL wire strings.

        A level whose recorded strings do not match the book's exact value (possible only after
        a lost update) is re-rendered from the int and counted in ``checksum_string_fallbacks``;
        the checksum will then fail, as it should.
        """
        bids_i, asks_i = book.levels_scaled(depth)
        pd, sd = book.price_decimals, book.size_decimals
        wire = self._wire.get(book.instrument, ({}, {}))
        out = []
        for side, levels in ((wire[0], bids_i), (wire[1], asks_i)):
            rendered = []
            for p, s in levels:
                hit = side.get(_text(p, pd))
                if hit is None or _norm(hit[1]) != _text(s, sd):
                    self.checksum_string_fallbacks += 1
                    hit = (_text(p, pd), _text(s, sd))
                rendered.append(hit)
            out.append(rendered)
        return out[0], out[1]

    def verify_checksum(self, book: L2Book, expected: int) -> bool:
        """Signed CRC32 of the top 25 interleaved levels (original strings) == ``expected``."""
        bids, asks = self.wire_levels(book)
        return okx_checksum(bids, asks) == expected


ADAPTERS = {"okx": Okx}
