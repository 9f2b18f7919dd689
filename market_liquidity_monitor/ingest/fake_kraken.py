"""A loopback fake Kraken spot WebSocket v2: the recorded v1 capture replayed as v2 frames, with faults.

``FakeKrakenVenue`` serves ``ws://127.0.0.1:PORT/v2`` speaking Kraken's v2 protocol
(https://docs.kraken.com/api/docs/websocket-v2/book , .../heartbeat , .../ping ; VENUE_RULES.md §4):

- on connect ``{"channel":"status","type":"update","data":[{"api_version":"v2","system":"online",…}]}``;
- ``{"method":"subscribe","params":{"channel":"book","symbol":["BTC/CHF",…],"depth":1000}}`` -> one
  ``{"method":"subscribe","result":{"channel":"book","symbol":…,"depth":1000,"snapshot":true},
  "success":true,…}`` ack per symbol, then a ``"type":"snapshot"`` of the **current true book**
  with its CRC32 ``checksum`` (top 10 asks low->high + top 10 bids high->low, digits without ``.``
  and leading zeros, unsigned: ``venues.checksums.kraken_checksum_strings``); ``trade`` and
  ``ticker`` are acked the same way (no snapshot);
- ``{"method":"unsubscribe","params":{…}}`` -> ``{"method":"unsubscribe","result":{…},"success":true}``;
  no more frames of that channel and symbol;
- ``{"method":"ping","req_id":N}`` -> ``{"method":"pong","req_id":N,…}``;
- ``{"channel":"heartbeat"}`` after ``heartbeat_s`` (1 s, Kraken's rate) without another frame;
- a subscription the recording cannot serve (unknown symbol or channel, a book depth other than the
  recorded one) -> ``{"method":…,"success":false,"error":…,"symbol":…}``.

The recording is Kraken's v1 API (``cryptofeed/KRAKEN.ws.48-50.0``: ``book-1000``, ``trade``,
``ticker`` of 10 pairs); no v2 capture exists. Each recorded v1 book update becomes one v2
``"type":"update"`` with the same levels, byte for byte as JSON numbers (v2 sends "full precision"
numbers: ``0.042990``, ``364630.28272081``), the level's newest timestamp in RFC 3339, and the
**recorded** checksum: v1 and v2 share the checksum algorithm and formatting, so Kraken's own v1
checksum is the v2 checksum of the same book. Symbols are written the v2 way (``XBT`` -> ``BTC``,
``XDG`` -> ``DOGE``). v1 trades carry no trade id: ``trade_id`` is a per-symbol counter here.
Tickers keep the fields v1 has (bid/ask with lot volume, last, 24 h volume, vwap, low, high, change).

The true book of each pair starts from the recorded snapshot and follows every produced update
(also those a fault kept from the clients), truncated to the subscribed depth after each message
("you will not receive qty 0 for levels that fall out of scope"); a snapshot served on subscribe
is that book, so a client that resubscribes continues exactly where the recording goes. Production
runs at most ``max_rate_per_s`` frames/s and starts when the first client subscribed to a book.

Faults (``inject(Fault.X, symbol=..., skip=0)``), applied at the next book update of ``symbol``
(any pair when None), after ``skip`` such updates:

==============  ===================================================================================
``CHECKSUM``    the update is sent with ``checksum`` + 1 (book content intact): checksum failure
``DROP``        the update is not sent. Only updates that change the top 10 levels count (their
                recorded checksum differs from the previous one): a lost update deeper in the book
                is invisible to Kraken's checksum, which is the protocol's limit, not a test case
``DISCONNECT``  every connection is aborted (TCP reset, no close frame) instead of sending it
==============  ===================================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter

import orjson

from market_liquidity_monitor.ingest.fake_okx import LoopbackVenue, WireBook, _Client, _Frame
from market_liquidity_monitor.ingest.fake_venue import Fault
from market_liquidity_monitor.ingest.replay import RawRecord
from market_liquidity_monitor.venues.checksums import kraken_checksum_strings
from market_liquidity_monitor.venues.kraken import Kraken

log = logging.getLogger(__name__)

_CHANNELS = ("book", "trade", "ticker")


def _rfc3339(sec_text: str) -> str:
    """v1 ``"1618678145.920470"`` (seconds) -> v2 ``"2021-04-17T16:49:05.920470Z"`` (µs, exact)."""
    whole, _, frac = sec_text.partition(".")
    day = datetime.fromtimestamp(int(whole), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{(frac + '000000')[:6]}Z"


def _levels_json(levels: Iterable) -> str:
    """``[[price, qty, …], …]`` wire strings -> v2 ``[{"price":0.042990,"qty":1.5},…]`` (the
    strings written as JSON numbers, digits unchanged)."""
    return "[" + ",".join(f'{{"price":{lv[0]},"qty":{lv[1]}}}' for lv in levels) + "]"


def _book_text(kind: str, symbol: str, bids, asks, checksum: int, ts: str | None) -> str:
    ts_part = f',"timestamp":"{ts}"' if ts else ""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":{_levels_json(bids)},'
        f'"asks":{_levels_json(asks)},"checksum":{checksum}{ts_part}}}]}}'
    )


class _KrakenBook(WireBook):
    """One pair's book as ``(price, qty)`` wire strings, keyed by exact price, truncated to ``depth``."""

    _keep = itemgetter(0, 1)

    def __init__(self, depth: int, bids: list, asks: list):
        super().__init__()
        self.depth = depth
        self.apply({"bids": bids, "asks": asks})

    def apply(self, update: dict) -> None:
        """Apply every level in array order (qty 0 deletes), then truncate to the depth."""
        super().apply(update)
        for side, reverse in ((self.bids, True), (self.asks, False)):
            if len(side) > self.depth:
                for p in sorted(side, reverse=reverse)[self.depth :]:
                    del side[p]

    def checksum(self) -> int:
        bids, asks = self.levels()
        return kraken_checksum_strings(asks, bids)


class FakeKrakenVenue(LoopbackVenue):
    """See the module docstring. ``async with FakeKrakenVenue(records) as venue:``; point a
    ``Kraken(version=2, depth=venue.depth)`` connection's ``ws_url`` at ``venue.ws_url``.
    ``records``: records of the Kraken v1 capture (``discover(data_dir, ["kraken"])`` group, or
    ``read_paths`` of the ``KRAKEN.ws.*`` files). Raises ``ValueError`` when they hold no book
    snapshot."""

    path = "/v2"
    heartbeat_text = '{"channel":"heartbeat"}'

    def __init__(
        self,
        records: Iterable[RawRecord],
        *,
        max_rate_per_s: float | None = None,
        heartbeat_s: float | None = 1.0,
        queue_size: int = 1024,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(
            max_rate_per_s=max_rate_per_s,
            queue_size=queue_size,
            host=host,
            port=port,
            heartbeat_s=heartbeat_s,
        )
        self.truth: dict[str, _KrakenBook] = {}
        self.depth: int | None = None
        self._v1 = Kraken(version=1)
        self._load(records)

    # ----------------------------------------------------------------------------- loading

    def _load(self, records: Iterable[RawRecord]) -> None:
        last_checksum: dict[str, int] = {}
        trade_ids: dict[str, int] = {}
        for rec in records:
            if rec.kind != "ws":
                continue
            try:
                msg = orjson.loads(rec.payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(msg, list) or len(msg) < 4 or not isinstance(msg[-2], str):
                continue  # events: heartbeat, systemStatus, subscriptionStatus
            name, symbol = msg[-2], self._v1.unified_symbol(msg[-1])
            if name.startswith("book"):
                self._load_book(name, symbol, msg[1:-2], last_checksum)
            elif name == "trade":
                data = []
                for t in msg[1]:
                    trade_ids[symbol] = trade_ids.get(symbol, 0) + 1
                    data.append(
                        f'{{"symbol":"{symbol}","side":"{"buy" if t[3] == "b" else "sell"}",'
                        f'"price":{t[0]},"qty":{t[1]},"ord_type":"{"market" if t[4] == "m" else "limit"}",'
                        f'"trade_id":{trade_ids[symbol]},"timestamp":"{_rfc3339(t[2])}"}}'
                    )
                text = f'{{"channel":"trade","type":"update","data":[{",".join(data)}]}}'
                self.frames.append(_Frame(text, ("trade", symbol), None))
            elif name == "ticker":
                d = msg[1]
                last, opened = Decimal(d["c"][0]), Decimal(d["o"][1])
                change = last - opened
                pct = (change / opened * 100).quantize(Decimal("0.01")) if opened else Decimal(0)
                text = (
                    f'{{"channel":"ticker","type":"update","data":[{{"symbol":"{symbol}",'
                    f'"bid":{d["b"][0]},"bid_qty":{d["b"][2]},"ask":{d["a"][0]},"ask_qty":{d["a"][2]},'
                    f'"last":{d["c"][0]},"volume":{d["v"][1]},"vwap":{d["p"][1]},"low":{d["l"][1]},'
                    f'"high":{d["h"][1]},"change":{change},"change_pct":{pct}}}]}}'
                )
                self.frames.append(_Frame(text, ("ticker", symbol), None))
        if not self.truth:
            raise ValueError("the records hold no Kraken book snapshot: the fake venue cannot serve books")

    def _load_book(self, name: str, symbol: str, parts: list, last_checksum: dict[str, int]) -> None:
        depth = int(name.partition("-")[2] or 10)
        if self.depth is None:
            self.depth = depth
        elif depth != self.depth:
            raise ValueError(f"the records mix book depths {self.depth} and {depth}")
        first = parts[0]
        if "as" in first or "bs" in first:
            if symbol not in self.truth:
                book = self.truth[symbol] = _KrakenBook(depth, first.get("bs", []), first.get("as", []))
                last_checksum[symbol] = book.checksum()
            return  # clients get snapshots on subscribe
        if symbol not in self.truth:
            return  # an update before its book's snapshot
        bids: list = []
        asks: list = []
        checksum = None
        for part in parts:
            asks += part.get("a", [])
            bids += part.get("b", [])
            if "c" in part:
                checksum = int(part["c"])
        if checksum is None:
            return  # every recorded v1 update carries "c"; one without cannot be served as v2
        ts = _rfc3339(max((lv[2] for lv in bids + asks), key=Decimal))
        update = {
            "bids": bids,
            "asks": asks,
            "checksum": checksum,
            "ts": ts,
            "top_changed": checksum != last_checksum[symbol],
        }
        last_checksum[symbol] = checksum
        text = _book_text("update", symbol, bids, asks, checksum, ts)
        self.frames.append(_Frame(text, ("book", symbol), update))

    # ----------------------------------------------------------------------------- control

    def inject(self, fault: Fault | str, symbol: str | None = None, *, skip: int = 0) -> None:
        """Queue ``CHECKSUM``, ``DROP`` or ``DISCONNECT`` for the next book update of ``symbol``
        (v2 form, ``BTC/CHF``; any pair when None), after ``skip`` of them (``DROP``: of those that
        change the top 10). Raises ``ValueError`` for other faults, unknown symbols, ``skip < 0``."""
        self._queue_fault(fault, symbol, skip)

    def truth_levels(self, symbol: str) -> tuple[list, list]:
        """The venue's current book of ``symbol``: bids high -> low, asks low -> high (wire strings)."""
        return self.truth[symbol].levels()

    def _eligible(self, f: _Frame, fault: Fault) -> bool:
        return fault is not Fault.DROP or f.update["top_changed"]

    def _corrupt(self, f: _Frame) -> str:
        u = f.update
        bad = (u["checksum"] + 1) % 2**32
        return _book_text("update", f.key[1], u["bids"], u["asks"], bad, u["ts"])

    # ---------------------------------------------------------------------------- WebSocket

    async def _on_open(self, c: _Client) -> None:
        status = {
            "channel": "status",
            "type": "update",
            "data": [
                {
                    "api_version": "v2",
                    "connection_id": self.stats.connections,
                    "system": "online",
                    "version": "2.0.0",
                }
            ],
        }
        await c.queue.put(orjson.dumps(status).decode())

    async def _on_message(self, c: _Client, text: str) -> None:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        try:
            req = orjson.loads(text)
            method = req["method"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            err = {"error": "Malformed request", "success": False, "time_in": now, "time_out": now}
            await c.queue.put(orjson.dumps(err).decode())
            return
        req_id = {"req_id": req["req_id"]} if "req_id" in req else {}
        if method == "ping":
            self.stats.pings += 1
            await c.queue.put(
                orjson.dumps({"method": "pong", **req_id, "time_in": now, "time_out": now}).decode()
            )
            return
        params = req.get("params") or {}
        channel, symbols = params.get("channel"), params.get("symbol") or []
        for symbol in symbols:
            error = None
            if method not in ("subscribe", "unsubscribe"):
                error = f"Unsupported method {method!r}"
            elif channel not in _CHANNELS:
                error = f"Channel {channel!r} is not replayed (recorded: {', '.join(_CHANNELS)})"
            elif symbol not in self.truth:
                error = f"Currency pair not supported {symbol}"
            elif channel == "book" and params.get("depth", 10) != self.depth:
                error = f"Depth {params.get('depth', 10)}: the recording is book-{self.depth}"
            reply: dict = {"method": method, **req_id, "time_in": now, "time_out": now}
            if error is not None:
                reply |= {"success": False, "error": error, "symbol": symbol}
                await c.queue.put(orjson.dumps(reply).decode())
                continue
            result: dict = {"channel": channel, "symbol": symbol}
            if channel == "book":
                result["depth"] = self.depth
            key = (channel, symbol)
            if method == "unsubscribe":
                self.stats.unsubscribes += 1
                c.subs.discard(key)
                await c.queue.put(orjson.dumps({**reply, "result": result, "success": True}).decode())
                continue
            self.stats.subscribes += 1
            c.subs.add(key)
            result["snapshot"] = True
            await c.queue.put(orjson.dumps({**reply, "result": result, "success": True}).decode())
            if channel == "book":
                book = self.truth[symbol]
                bids, asks = book.levels()
                await c.queue.put(_book_text("snapshot", symbol, bids, asks, book.checksum(), None))
                self.stats.snapshots_served += 1
                self._subscribed.set()


__all__ = ["FakeKrakenVenue"]
