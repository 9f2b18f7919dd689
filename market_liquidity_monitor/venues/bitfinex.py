"""Bitfinex WebSocket v2 (``book`` P0, ``trades``, ``ticker``) with the SEQ_ALL flag: pure translation.

Wire formats (real frames from ../shared/data/cryptofeed/BITFINEX.ws.11.0, README §4.1). Numbers
are JSON numbers; they are rendered with ``checksums.number_text`` (shortest round-trip text).

- events: ``{"event":"info","version":2,…}``, ``{"event":"conf","status":"OK","flags":65536}``,
  ``{"event":"subscribed","channel":"book","chanId":232957,"symbol":"tTESTBTC:TESTUSD","prec":"P0",
  "freq":"F0","len":"100","pair":"TESTBTC:TESTUSD"}`` (maps ``chanId`` -> channel and symbol)
- book snapshot ``[chanId, [[PRICE, COUNT, AMOUNT], …], SEQ]`` and update
  ``[chanId, [PRICE, COUNT, AMOUNT], SEQ]``, e.g. ``[225206,[215350,0,1],18]``: ``AMOUNT > 0`` bid,
  ``< 0`` ask; ``COUNT = 0`` deletes the price (``AMOUNT`` 1 = from the bids, -1 = from the asks)
- trades snapshot ``[chanId, [[ID, MTS, AMOUNT, PRICE], …], SEQ]`` (``AMOUNT > 0``: the taker
  bought), then ``[chanId, "te", [ID, MTS, AMOUNT, PRICE], SEQ]`` (``tu`` repeats ``te``: skipped)
- ticker ``[chanId, [BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, …, LAST_PRICE, VOLUME, HIGH, LOW], SEQ]``
- heartbeat ``[chanId, "hb", SEQ]`` (every 15 s per idle channel).

``SEQ`` (present because the client sent ``{"event":"conf","flags":65536}``) counts every frame
of the CONNECTION: +1 per frame across channels (0 breaks on the capture's 1,670 frames). A
skip means a frame of some channel was lost; the adapter then breaks the link of every book, so
each book resyncs (``book.rules.LinkedRule``: ``prev_sequence`` = SEQ of that channel's previous
frame, or -1 after a loss). Bitfinex also offers ``OB_CHECKSUM`` (flag 131072, CRC32 of the top
25 levels); the capture did not enable it and this adapter does not subscribe to it.
Symbols: ``tBTCUSD`` -> ``BTC/USD``; ``tTESTBTC:TESTUSD`` -> ``TESTBTC/TESTUSD``; Bitfinex codes
``UST`` -> ``USDT``, ``UDC`` -> ``USDC`` (ccxt ``commonCurrencies``).
"""

from __future__ import annotations

from typing import Any

import orjson

from market_liquidity_monitor.book.rules import LinkedRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.venues.base import AdapterBase, Event, KeepAlive, SnapshotRequest
from market_liquidity_monitor.venues.checksums import number_text

_MS = 1_000_000
_BROKEN = -1
SEQ_ALL = 65536
_TO_COMMON = {"UST": "USDT", "UDC": "USDC", "XCH": "XCHF"}
_FROM_COMMON = {v: k for k, v in _TO_COMMON.items()}


def _abs_text(x: Any) -> str:
    t = number_text(x)
    return t[1:] if t.startswith("-") else t


class Bitfinex(AdapterBase):
    """Bitfinex spot books (ccxt id ``bitfinex``). Stateful per connection: ``chanId`` map and
    the SEQ linkage; call ``reset_connection()`` on every new connection."""

    venue = "bitfinex"
    ws_url = "wss://api-pub.bitfinex.com/ws/2"
    rest_book_url = "https://api-pub.bitfinex.com/v2/book/{symbol}/P0"
    sequence_rule = LinkedRule()
    keepalive = KeepAlive(interval_s=None, silence_timeout_s=20.0)  # heartbeats every 15 s

    def __init__(self, book_len: int = 100) -> None:
        self.book_len = book_len
        super().__init__()
        self.connection_gaps = 0
        self.reset_connection()

    def reset_connection(self) -> None:
        self._channels: dict[int, tuple[str, InstrumentId]] = {}
        self._conn_seq: int | None = None
        self._link: dict[int, int] = {}

    # -------------------------------------------------------------- symbols

    def unified_symbol(self, venue_symbol: str) -> str:
        vs = venue_symbol[1:] if venue_symbol[:1] in ("t", "f") else venue_symbol
        vs = vs.upper()
        if ":" in vs:
            base, quote = vs.split(":", 1)
        elif len(vs) == 6:
            base, quote = vs[:3], vs[3:]
        else:
            raise UnknownSymbolError(venue_symbol, (), self.venue)
        return f"{_TO_COMMON.get(base, base)}/{_TO_COMMON.get(quote, quote)}"

    def venue_symbol(self, symbol: str) -> str:
        base, quote = symbol.split(":")[0].split("/")
        base, quote = _FROM_COMMON.get(base, base), _FROM_COMMON.get(quote, quote)
        return f"t{base}{quote}" if len(base) == 3 and len(quote) == 3 else f"t{base}:{quote}"

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        msgs: list[dict] = [{"event": "conf", "flags": SEQ_ALL}]
        for s in symbols:
            w = self.venue_symbol(s)
            msgs += [
                {
                    "event": "subscribe",
                    "channel": "book",
                    "symbol": w,
                    "prec": "P0",
                    "freq": "F0",
                    "len": str(self.book_len),
                },
                {"event": "subscribe", "channel": "trades", "symbol": w},
                {"event": "subscribe", "channel": "ticker", "symbol": w},
            ]
        return [orjson.dumps(m).decode() for m in msgs]

    def snapshot_request(self, symbol: str, limit: int = 100) -> SnapshotRequest | None:
        return None  # the book channel's first frame is the snapshot

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST ``GET /v2/book/{symbol}/P0`` body: ``[[PRICE, COUNT, AMOUNT], …]`` (no sequence)."""
        inst = self.instrument_for(symbol)
        bids, asks = self._levels(body)
        return L2Snapshot(inst, bids, asks, None, None, ts_recv_ns)

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame -> events; events/heartbeats -> []; bad frames counted in ``errors``."""
        try:
            if isinstance(msg, dict):
                return self._event(msg)
            if not isinstance(msg, list) or len(msg) < 2:
                self.errors.record("unknown", msg)
                return []
            seq = msg[-1] if len(msg) >= 3 and isinstance(msg[-1], int) else None
            if seq is not None:
                if self._conn_seq is not None and seq != self._conn_seq + 1:
                    self.connection_gaps += 1
                    for k in self._link:
                        self._link[k] = _BROKEN
                self._conn_seq = seq
            body = msg[1]
            if body == "hb" or body == "cs":
                return []  # heartbeats may arrive before the channel's "subscribed" event
            chan = self._channels.get(msg[0])
            if chan is None:
                self.errors.record("unknown", msg)
                return []
            kind, inst = chan
            if kind == "book":
                return [self._book(msg[0], inst, body, seq, ts_recv_ns)]
            if kind == "trades":
                if body == "te":
                    return [self._trade(inst, msg[2], ts_recv_ns)]
                if body == "tu":
                    return []  # repeats a "te" with the trade id filled in
                return [self._trade(inst, t, ts_recv_ns, recent=True) for t in body]
            if kind == "ticker":
                return [
                    BookTicker(
                        inst,
                        number_text(body[0]),
                        number_text(body[1]),
                        number_text(body[2]),
                        number_text(body[3]),
                        seq,
                        None,
                        ts_recv_ns,
                    )
                ]
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []

    def _event(self, msg: dict) -> list[Event]:
        ev = msg.get("event")
        if ev == "info" and "version" in msg:  # the first frame of every new connection
            self.reset_connection()
        elif ev == "subscribed":
            self._channels[msg["chanId"]] = (msg["channel"], self.instrument(msg["symbol"]))
            self._link.pop(msg["chanId"], None)
        elif ev == "unsubscribed":
            self._channels.pop(msg.get("chanId"), None)
        elif ev == "error":
            self.errors.record("unknown", msg)
        elif ev == "info" and "code" in msg:
            # 20051: reconnect; 20060/20061: maintenance start/end (resubscribe after).
            self.errors.record("unknown", msg)
        return []

    @staticmethod
    def _levels(rows: list) -> tuple[list, list]:
        bids, asks = [], []
        for price, count, amount in rows:
            p = number_text(price)
            if count == 0:
                (bids if amount > 0 else asks).append((p, "0"))
            elif amount > 0:
                bids.append((p, number_text(amount)))
            else:
                asks.append((p, _abs_text(amount)))
        return bids, asks

    def _book(self, chan_id: int, inst: InstrumentId, body: list, seq: int | None, ts_recv_ns: int) -> Event:
        if body and isinstance(body[0], list):  # snapshot
            bids, asks = self._levels(body)
            if seq is not None:
                self._link[chan_id] = seq
            return L2Snapshot(inst, bids, asks, seq, None, ts_recv_ns)
        if not body:  # an empty book snapshot
            if seq is not None:
                self._link[chan_id] = seq
            return L2Snapshot(inst, [], [], seq, None, ts_recv_ns)
        bids, asks = self._levels([body])
        prev = self._link.get(chan_id, _BROKEN) if seq is not None else None
        if seq is not None:
            self._link[chan_id] = seq
        return L2Delta(inst, bids, asks, seq, seq, prev, None, ts_recv_ns)

    def _trade(self, inst: InstrumentId, t: list, ts_recv_ns: int, recent: bool = False) -> Trade:
        tid, mts, amount, price = t[:4]
        return Trade(
            inst,
            number_text(price),
            _abs_text(amount),
            "buy" if amount > 0 else "sell",
            str(tid),
            int(mts) * _MS,
            ts_recv_ns,
            {"recent_on_subscribe": True} if recent else {},
        )


ADAPTERS = {"bitfinex": Bitfinex}
