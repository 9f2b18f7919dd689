"""Bitstamp v2 WebSocket (``diff_order_book_{pair}``, ``live_trades_{pair}``) + REST order book.

Wire formats (real frames from ../shared/data/cryptofeed/BITSTAMP.ws.1.0 and .http.0.0, README §4.1):

- diff (absolute sizes, ``0`` deletes; no update id)::

    {"data":{"timestamp":"1641343699","microtimestamp":"1641343699802982","bids":[["0.88427","0.00000"]],
     "asks":[]},"channel":"diff_order_book_usdteur","event":"data"}

- trade (``type`` 0 = buy, 1 = sell, the taker side)::

    {"data":{"id":216000477,"timestamp":"1641343699","amount":0.0792,"amount_str":"0.07920000",
     "price":3805.44,"price_str":"3805.44","type":0,"microtimestamp":"1641343699596000",…},
     "channel":"live_trades_ethusd","event":"trade"}

- REST ``GET https://www.bitstamp.net/api/v2/order_book/{pair}``:
  ``{"timestamp": "1641343695", "microtimestamp": "1641343695572693", "bids": [[p, q], …], "asks": …}``
- control: ``{"event":"bts:subscription_succeeded","channel":…,"data":{}}``,
  ``{"event":"bts:request_reconnect",…}`` (reconnect now), ``{"event":"bts:heartbeat",…}``.

Sync (README §5.1, ``book.rules.BitstampRule``): subscribe, buffer diffs, fetch the REST snapshot,
apply only diffs whose ``microtimestamp`` is later than the snapshot's. There is no id to detect a
lost diff; a reconnect means a new snapshot. REST limit: 8000 requests / 10 min per IP [2ND:
Bitstamp API docs "Request limits"].
"""

from __future__ import annotations

from typing import Any

import orjson

from market_liquidity_monitor.book.rules import BitstampRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.venues.base import (
    AdapterBase,
    Event,
    KeepAlive,
    SnapshotRequest,
    split_quote_suffix,
)

_US = 1_000  # µs -> ns
_QUOTES = ("usdt", "usdc", "pax", "usd", "eur", "gbp", "btc", "eth")


class Bitstamp(AdapterBase):
    """Bitstamp spot books (ccxt id ``bitstamp``)."""

    venue = "bitstamp"
    ws_url = "wss://ws.bitstamp.net"
    rest_book_url = "https://www.bitstamp.net/api/v2/order_book/{pair}"
    sequence_rule = BitstampRule()
    keepalive = KeepAlive(interval_s=None, silence_timeout_s=30.0)

    def __init__(self) -> None:
        super().__init__()
        self.reconnect_requests = 0

    # -------------------------------------------------------------- symbols

    def unified_symbol(self, venue_symbol: str) -> str:
        split = split_quote_suffix(venue_symbol.lower(), _QUOTES)
        if split is None:
            raise UnknownSymbolError(venue_symbol, (), self.venue)
        return f"{split[0].upper()}/{split[1].upper()}"

    def venue_symbol(self, symbol: str) -> str:
        return symbol.split(":")[0].replace("/", "").lower()

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        out = []
        for s in symbols:
            p = self.venue_symbol(s)
            for ch in (f"diff_order_book_{p}", f"live_trades_{p}"):
                out.append(orjson.dumps({"event": "bts:subscribe", "data": {"channel": ch}}).decode())
        return out

    def snapshot_request(self, symbol: str, limit: int = 1000) -> SnapshotRequest:
        """Full book (``group=1``: aggregated by price); ``limit`` is not a Bitstamp parameter."""
        return SnapshotRequest(self.rest_book_url.format(pair=self.venue_symbol(symbol)), {"group": 1}, 1)

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST order book -> ``L2Snapshot`` with ``sequence = microtimestamp`` (µs)."""
        inst = self.instrument_for(symbol)
        us = int(body["microtimestamp"])
        return L2Snapshot(inst, body["bids"], body["asks"], us, us * _US, ts_recv_ns)

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame -> events; control frames -> []; bad frames counted in ``errors``."""
        try:
            if not isinstance(msg, dict):
                self.errors.record("unknown", msg)
                return []
            event = msg.get("event")
            channel = msg.get("channel", "")
            if event == "data" and channel.startswith("diff_order_book_"):
                d = msg["data"]
                us = int(d["microtimestamp"])
                inst = self.instrument(channel[len("diff_order_book_") :])
                return [L2Delta(inst, d["bids"], d["asks"], us, us, None, us * _US, ts_recv_ns)]
            if event == "trade" and channel.startswith("live_trades_"):
                d = msg["data"]
                inst = self.instrument(channel[len("live_trades_") :])
                return [
                    Trade(
                        inst,
                        d["price_str"],
                        d["amount_str"],
                        "buy" if d["type"] == 0 else "sell",
                        str(d["id"]),
                        int(d["microtimestamp"]) * _US,
                        ts_recv_ns,
                    )
                ]
            if event == "bts:request_reconnect":
                self.reconnect_requests += 1
                return []
            if event in ("bts:subscription_succeeded", "bts:unsubscription_succeeded", "bts:heartbeat"):
                return []
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []


ADAPTERS = {"bitstamp": Bitstamp}
