"""Gemini v2 market data (``l2``): pure translation.

Wire formats (real frames from ../shared/data/cryptofeed/GEMINI.ws.1.0, README §4.1):

- the FIRST ``l2_updates`` per symbol is the whole book, and carries ``trades`` (the last 50) and
  ``auction_events``; every later one carries only ``changes`` (absolute sizes, ``"0"`` deletes)::

    {"type":"l2_updates","symbol":"ALCXUSD","changes":[["buy","302.75","0.00001"],…],
     "trades":[{"type":"trade","symbol":"ALCXUSD","event_id":45465785975,"timestamp":1624493651491,
     "price":"302.53","quantity":"0.992143","side":"buy"},…],"auction_events":[]}
    {"type":"l2_updates","symbol":"GRTUSD","changes":[["buy","0.609","0"]]}

- trade (``side`` is the taker side): ``{"type":"trade","symbol":"ANKRUSD","event_id":45465818387,
  "timestamp":1624493670759,"price":"0.07946","quantity":"1020.482111","side":"buy"}``
- ``{"type":"heartbeat","timestamp":1624493666869}`` every 5 s.

No sequence number on ``l2_updates`` (``NoSequenceRule``) and no checksum: integrity rests on TCP
delivery and a full book on every (re)subscription. A message with a ``trades`` key is treated as
a full book (this is also what arrives after a resubscribe). The v2 feed has no ticker channel.
Symbols: ``BTCGBP`` -> ``BTC/GBP`` (quote suffixes from Gemini's symbol list in GEMINI.0).
"""

from __future__ import annotations

from typing import Any

import orjson

from market_liquidity_monitor.book.sync import NoSequenceRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.venues.base import (
    AdapterBase,
    Event,
    KeepAlive,
    SnapshotRequest,
    split_quote_suffix,
)

_MS = 1_000_000
_QUOTES = ("GUSD", "USDT", "USDC", "DAI", "USD", "GBP", "EUR", "SGD", "BTC", "ETH", "LTC", "BCH", "FIL")


class Gemini(AdapterBase):
    """Gemini spot books, v2 market data (ccxt id ``gemini``)."""

    venue = "gemini"
    ws_url = "wss://api.gemini.com/v2/marketdata"
    sequence_rule = NoSequenceRule()
    keepalive = KeepAlive(interval_s=None, silence_timeout_s=12.0)  # heartbeat every 5 s

    # -------------------------------------------------------------- symbols

    def unified_symbol(self, venue_symbol: str) -> str:
        vs = venue_symbol.upper()
        split = split_quote_suffix(vs, _QUOTES)
        if split is None:
            raise UnknownSymbolError(vs, (), self.venue)
        return f"{split[0]}/{split[1]}"

    def venue_symbol(self, symbol: str) -> str:
        return symbol.split(":")[0].replace("/", "")

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        sub = {
            "type": "subscribe",
            "subscriptions": [{"name": "l2", "symbols": [self.venue_symbol(s) for s in symbols]}],
        }
        return [orjson.dumps(sub).decode()]

    def snapshot_request(self, symbol: str, limit: int = 1000) -> SnapshotRequest | None:
        return None  # the first l2_updates is the full book

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST ``GET /v1/book/{symbol}`` body: ``{"bids":[{"price","amount","timestamp"}],…}``."""
        inst = self.instrument_for(symbol)
        bids = [(lv["price"], lv["amount"]) for lv in body["bids"]]
        asks = [(lv["price"], lv["amount"]) for lv in body["asks"]]
        return L2Snapshot(inst, bids, asks, None, None, ts_recv_ns)

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame -> events; heartbeats -> []; bad frames counted in ``errors``."""
        try:
            if not isinstance(msg, dict):
                self.errors.record("unknown", msg)
                return []
            t = msg.get("type")
            if t == "l2_updates":
                inst = self.instrument(msg["symbol"])
                bids, asks = [], []
                for side, price, size in msg["changes"]:
                    (bids if side == "buy" else asks).append((price, size))
                if "trades" in msg:  # the full book (first message of a subscription)
                    out: list[Event] = [L2Snapshot(inst, bids, asks, None, None, ts_recv_ns)]
                    out += [self._trade(tr, ts_recv_ns, recent=True) for tr in msg["trades"]]
                    return out
                return [L2Delta(inst, bids, asks, None, None, None, None, ts_recv_ns)]
            if t == "trade":
                return [self._trade(msg, ts_recv_ns)]
            if t in ("heartbeat", "candles_1m_updates", "l2_subscription"):
                return []
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []

    def _trade(self, d: dict, ts_recv_ns: int, recent: bool = False) -> Trade:
        return Trade(
            self.instrument(d["symbol"]),
            d["price"],
            d["quantity"],
            d["side"],
            str(d["event_id"]),
            int(d["timestamp"]) * _MS,
            ts_recv_ns,
            {"recent_on_subscribe": True} if recent else {},
        )


ADAPTERS = {"gemini": Gemini}
