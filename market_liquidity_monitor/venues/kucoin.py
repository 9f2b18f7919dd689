"""KuCoin spot WebSocket (``/market/level2``, ``/market/match``, ``/market/ticker``) + REST level2.

Wire formats (real frames from ../shared/data/cryptofeed/KUCOIN.ws.1.0 and .http.0.0, README §4.1):

- level2 diff; each change is ``[price, size, sequence]``; ``["0","0",seq]`` only advances the
  sequence; size ``"0"`` deletes::

    {"data":{"sequenceStart":1612712745621,"symbol":"FET-BTC","changes":{"asks":[["0.0000078","0",
     "1612712745621"]],"bids":[]},"sequenceEnd":1612712745621},"subject":"trade.l2update",
     "topic":"/market/level2:FET-BTC","type":"message"}

- match (``side`` is the taker side; ``time`` in ns)::

    {"data":{"symbol":"DAPPT-BTC","sequence":"1612701563869","side":"buy","size":"81.8814",
     "price":"0.0000001117","time":"1619378327739050725","type":"match","tradeId":"6085c09769bc…",…},
     "subject":"trade.l3match","topic":"/market/match:DAPPT-BTC","type":"message"}

- ticker: ``{"data":{"sequence":"1613277183873","bestAsk":"242.951","bestAskSize":"4.51280965",
  "bestBid":"242.654","bestBidSize":"0.68148185","price":…,"size":…,"time":1619378326330},
  "subject":"trade.ticker","topic":"/market/ticker:BCHSV-USDT","type":"message"}``
- REST ``GET /api/v3/market/orderbook/level2?symbol=…`` (full depth; needs an API key today) or
  public ``/api/v1/market/orderbook/level2_{20,100}``:
  ``{"code":"200000","data":{"time":1619378326628,"sequence":"1613277183892","bids":[…],"asks":[…]}}``
- control: ``{"id":…,"type":"welcome"}``, ``{"id":"1","type":"ack"}``, ``{"type":"pong"}``.

Sync (KuCoin level2 "calibration procedure"; README §5.1; ``book.rules.KucoinRule``): buffer,
fetch the snapshot, drop ``sequenceEnd <= sequence``, first applied ``sequenceStart <= sequence+1
<= sequenceEnd``, then ``sequenceStart == previous sequenceEnd + 1``; a break -> new snapshot for
that symbol. Connection: POST ``/api/v1/bullet-public`` gives the endpoint, a token and
``pingInterval`` (18 s) / ``pingTimeout`` (10 s); the client sends ``{"id":…,"type":"ping"}``.
"""

from __future__ import annotations

from typing import Any

import orjson

from market_liquidity_monitor.book.rules import KucoinRule
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.venues.base import (
    AdapterBase,
    DelimitedSymbols,
    Event,
    KeepAlive,
    SnapshotRequest,
)

_MS = 1_000_000


class Kucoin(DelimitedSymbols, AdapterBase):
    """KuCoin spot books (ccxt id ``kucoin``). ``ws_url`` is the public endpoint; the runtime must
    append ``?token=…`` from ``bullet_request()`` (a token is valid for one connection)."""

    venue = "kucoin"
    symbol_delimiter = "-"
    ws_url = "wss://ws-api-spot.kucoin.com/"
    rest_base = "https://api.kucoin.com"
    sequence_rule = KucoinRule()
    keepalive = KeepAlive(interval_s=18.0, client_ping='{"id":"ping","type":"ping"}', silence_timeout_s=28.0)

    # ----------------------------------------------------------- connection

    def bullet_request(self) -> SnapshotRequest:
        """POST (not GET) ``/api/v1/bullet-public``: endpoint, token and ping timings."""
        return SnapshotRequest(f"{self.rest_base}/api/v1/bullet-public", {}, 10)

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        ids = ",".join(self.venue_symbol(s) for s in symbols)
        return [
            orjson.dumps(
                {
                    "id": i,
                    "type": "subscribe",
                    "topic": f"{t}:{ids}",
                    "privateChannel": False,
                    "response": True,
                }
            ).decode()
            for i, t in enumerate(("/market/level2", "/market/match", "/market/ticker"), 1)
        ]

    def snapshot_request(self, symbol: str, limit: int = 100) -> SnapshotRequest:
        """Public partial books (``level2_20``/``level2_100``, weight 2 [2ND: KuCoin "Public"
        pool]); deeper -> the full ``/api/v3`` book, which needs an API key (weight 3)."""
        sym = {"symbol": self.venue_symbol(symbol)}
        if limit <= 20:
            return SnapshotRequest(f"{self.rest_base}/api/v1/market/orderbook/level2_20", sym, 2)
        if limit <= 100:
            return SnapshotRequest(f"{self.rest_base}/api/v1/market/orderbook/level2_100", sym, 2)
        return SnapshotRequest(f"{self.rest_base}/api/v3/market/orderbook/level2", sym, 3)

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST level2 body -> ``L2Snapshot`` with ``sequence``."""
        d = body["data"]
        inst = self.instrument_for(symbol)
        ts = d.get("time")
        return L2Snapshot(
            inst, d["bids"], d["asks"], int(d["sequence"]), ts * _MS if ts else None, ts_recv_ns
        )

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame -> events; control frames and candles -> []; bad frames counted."""
        try:
            if not isinstance(msg, dict):
                self.errors.record("unknown", msg)
                return []
            t = msg.get("type")
            if t != "message":
                if t == "error":
                    self.errors.record("unknown", msg)
                return []  # welcome, ack, pong
            subject = msg.get("subject")
            d = msg["data"]
            if subject == "trade.l2update":
                ch = d["changes"]
                # ``["0","0",seq]`` entries only advance the sequence: not a level.
                bids = [lv for lv in ch.get("bids", ()) if lv[0] != "0"]
                asks = [lv for lv in ch.get("asks", ()) if lv[0] != "0"]
                ts = d.get("time")
                return [
                    L2Delta(
                        self.instrument(d["symbol"]),
                        bids,
                        asks,
                        int(d["sequenceStart"]),
                        int(d["sequenceEnd"]),
                        None,
                        ts * _MS if ts else None,
                        ts_recv_ns,
                    )
                ]
            if subject == "trade.l3match":
                return [
                    Trade(
                        self.instrument(d["symbol"]),
                        d["price"],
                        d["size"],
                        d["side"],
                        str(d["tradeId"]),
                        int(d["time"]),
                        ts_recv_ns,
                        {"sequence": d.get("sequence")},
                    )
                ]
            if subject == "trade.ticker":
                sym = msg["topic"].rpartition(":")[2]
                return [
                    BookTicker(
                        self.instrument(sym),
                        d["bestBid"],
                        d["bestBidSize"],
                        d["bestAsk"],
                        d["bestAskSize"],
                        int(d["sequence"]),
                        int(d["time"]) * _MS,
                        ts_recv_ns,
                    )
                ]
            if subject and subject.startswith("trade.candles"):
                return []
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []


ADAPTERS = {"kucoin": Kucoin}
