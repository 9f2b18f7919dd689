"""Gate.io v4 spot WebSocket (``spot.order_book_update``, ``spot.trades``, ``spot.tickers``,
``spot.book_ticker``) + REST order book with id.

Wire formats (real frames from ../shared/data/cryptofeed/GATEIO.ws.1.0 and .http.0.0, README §4.1):

- book diff (absolute sizes, ``"0"`` deletes; ``U``/``u`` first/last update id)::

    {"time":1619093558,"channel":"spot.order_book_update","event":"update","result":{"t":1619093558472,
     "e":"depthUpdate","E":1619093558,"s":"NANO_USDT","U":8008158,"u":8008158,"b":[["8.6867","0"]],"a":[]}}

- trade (``side`` is the taker side)::

    {"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":816995772,
     "create_time":1619093543,"create_time_ms":"1619093543708.2642","side":"sell",
     "currency_pair":"DIS_USDT","amount":"0.2010000000","price":"121.5800000000"}}

- tickers (no sizes): ``{"channel":"spot.tickers","event":"update","result":{"currency_pair":"NEO_BTC",
  "last":…,"lowest_ask":"0.0018734","highest_bid":"0.0018697",…}}``; ``spot.book_ticker`` (sizes):
  ``{"result":{"t":…,"u":…,"s":"BTC_USDT","b":"19177.79","B":"0.0003341504","a":"19179.38","A":"0.09"}}``
- REST ``GET /api/v4/spot/order_book?currency_pair=…&limit=100&with_id=true``:
  ``{"id":2691446,"current":…,"update":…,"asks":[…],"bids":[…]}``
- acks: ``{"time":…,"channel":…,"event":"subscribe","result":{"status":"success"}}``.

Sync (Gate.io "how to maintain a local order book"; README §5.1; ``book.rules.GateioRule``):
buffer, fetch the snapshot with ``with_id=true``, drop ``u <= id``, first ``U <= id + 1 <= u``,
then ``U == previous u + 1``; a break -> new snapshot for that pair. Keepalive: application
``spot.ping`` (answered by ``spot.pong``) [2ND: Gate.io WS v4 docs]. REST public rate limit:
200 requests / 10 s per endpoint [2ND].
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from market_liquidity_monitor.book.rules import GateioRule
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.venues.base import (
    AdapterBase,
    DelimitedSymbols,
    Event,
    KeepAlive,
    SnapshotRequest,
)

_MS = 1_000_000


class Gateio(DelimitedSymbols, AdapterBase):
    """Gate.io spot books (ccxt id ``gate``; ``gateio`` is an alias, see ``registry.VENUE_ALIASES``)."""

    venue = "gate"
    symbol_delimiter = "_"
    split_last = True
    ws_url = "wss://api.gateio.ws/ws/v4/"
    rest_book_url = "https://api.gateio.ws/api/v4/spot/order_book"
    sequence_rule = GateioRule()
    keepalive = KeepAlive(interval_s=15.0, client_ping='{"channel":"spot.ping"}', silence_timeout_s=30.0)

    def __init__(self, update_speed: str = "100ms", clock=time.time) -> None:
        self.update_speed = update_speed
        self._clock = clock  # injectable: the subscribe frames carry the current time in seconds
        super().__init__()

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        now = int(self._clock())
        pairs = [self.venue_symbol(s) for s in symbols]
        msgs = [
            {
                "time": now,
                "channel": "spot.order_book_update",
                "event": "subscribe",
                "payload": [p, self.update_speed],
            }
            for p in pairs
        ]
        msgs += [
            {"time": now, "channel": ch, "event": "subscribe", "payload": pairs}
            for ch in ("spot.trades", "spot.book_ticker")
        ]
        return [orjson.dumps(m).decode() for m in msgs]

    def snapshot_request(self, symbol: str, limit: int = 100) -> SnapshotRequest:
        return SnapshotRequest(
            self.rest_book_url,
            {"currency_pair": self.venue_symbol(symbol), "limit": limit, "with_id": "true"},
            1,
        )

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST order book (``with_id=true``) -> ``L2Snapshot`` with ``sequence = id``."""
        inst = self.instrument_for(symbol)
        ts = body.get("current")
        return L2Snapshot(
            inst, body["bids"], body["asks"], int(body["id"]), ts * _MS if ts else None, ts_recv_ns
        )

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame -> events; acks, pongs, candles -> []; bad frames counted."""
        try:
            if not isinstance(msg, dict):
                self.errors.record("unknown", msg)
                return []
            if msg.get("error"):
                self.errors.record("unknown", msg)
                return []
            channel = msg.get("channel")
            if msg.get("event") != "update":
                return []  # subscribe acks, spot.pong
            r = msg["result"]
            if channel == "spot.order_book_update":
                return [
                    L2Delta(
                        self.instrument(r["s"]),
                        r["b"],
                        r["a"],
                        int(r["U"]),
                        int(r["u"]),
                        None,
                        int(r["t"]) * _MS,
                        ts_recv_ns,
                    )
                ]
            if channel == "spot.trades":
                ms, _, frac = str(r["create_time_ms"]).partition(".")
                ts = int(ms) * _MS + int((frac + "000000")[:6])
                return [
                    Trade(
                        self.instrument(r["currency_pair"]),
                        r["price"],
                        r["amount"],
                        r["side"],
                        str(r["id"]),
                        ts,
                        ts_recv_ns,
                    )
                ]
            if channel == "spot.book_ticker":
                return [
                    BookTicker(
                        self.instrument(r["s"]),
                        r["b"],
                        r["B"],
                        r["a"],
                        r["A"],
                        r.get("u"),
                        int(r["t"]) * _MS,
                        ts_recv_ns,
                    )
                ]
            if channel == "spot.tickers":  # best prices without sizes
                return [
                    BookTicker(
                        self.instrument(r["currency_pair"]),
                        r["highest_bid"],
                        None,
                        r["lowest_ask"],
                        None,
                        None,
                        None,
                        ts_recv_ns,
                    )
                ]
            if channel == "spot.candlesticks":
                return []
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []


ADAPTERS = {"gate": Gateio}
