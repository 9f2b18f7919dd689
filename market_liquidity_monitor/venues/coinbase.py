"""Coinbase: Exchange feed (``level2``/``level2_batch``, the capture) and Advanced Trade (``level2``).

Coinbase Exchange (``wss://ws-feed.exchange.coinbase.com``; the capture used the Coinbase Pro
host, same format). Real frames from ../shared/data/cryptofeed/COINBASE.ws.28.0 (README §4.1)::

    {"type":"snapshot","product_id":"BAND-GBP","asks":[["14.8024","12.77"],…],"bids":[…]}
    {"type":"l2update","product_id":"SKL-USD","changes":[["buy","0.7898","0.0"]],
     "time":"2021-04-17T16:43:41.785392Z"}
    {"type":"match","trade_id":280232,"maker_order_id":…,"taker_order_id":…,"side":"sell",
     "size":"985","price":"0.00001305","product_id":"SKL-BTC","sequence":177100030,"time":…}
    {"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775",…,
     "best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":…,"trade_id":881613,…}

``l2update`` has no sequence field (VENUE_RULES.md §3): loss cannot be detected from the payload;
integrity = Coinbase's delivery guarantee + resubscribe (a new ``snapshot``) on reconnect. In
``match`` the ``side`` is the MAKER's side (Coinbase Exchange docs), so the taker side is the
opposite. ``level2`` needs authentication since 2023; ``level2_batch`` is the public variant
(same schema, 50 ms batches). Subscribe within 5 s of connecting or be disconnected; the
``heartbeat`` channel sends 1 message/s per product.

Coinbase Advanced Trade (``wss://advanced-trade-ws.coinbase.com``), documented schema only
(docs.cdp.coinbase.com …/websocket/level2; no recording)::

    {"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",
     "sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid",
     "event_time":"1970-01-01T00:00:00Z","price_level":"21921.73","new_quantity":"0.06317902"},…]}]}

``new_quantity`` is absolute (``"0"`` removes); ``side`` ``bid``/``offer``. ``sequence_num``
counts the messages of the connection [2ND: connection-wide], so each book's frames are linked to
that book's previous frame (``prev_sequence``) and every link is broken when ``sequence_num``
skips (``book.rules.LinkedRule``): each book then resyncs on its next update. Channels close
after 60-90 s without updates unless ``heartbeats`` is subscribed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from market_liquidity_monitor.book.rules import LinkedRule
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.venues.base import (
    AdapterBase,
    DelimitedSymbols,
    Event,
    KeepAlive,
    SnapshotRequest,
)

_BROKEN = -1  # a link that can never match a sequence_num: forces a resync of that book
_FEEDS = ("advanced", "exchange")


def iso_ns(text: str) -> int:
    """RFC 3339 (``…T16:43:41.785392Z``, any fraction length) -> ns since the epoch, exactly."""
    head, dot, frac = text.rstrip("Z").partition(".")
    if not dot:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return int(dt.timestamp()) * 1_000_000_000
    frac, _, tz = frac.partition("+")  # "+00:00" suffix, if any
    dt = datetime.fromisoformat(head + ("+" + tz if tz else "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


class Coinbase(DelimitedSymbols, AdapterBase):
    """Coinbase spot books (ccxt id ``coinbase``). ``feed="advanced"`` (Advanced Trade, ccxt's
    ``coinbase`` API) or ``feed="exchange"`` (Coinbase Exchange ``level2_batch``). ``parse_message``
    understands both formats whatever ``feed`` is, so recordings of either replay through it."""

    venue = "coinbase"
    symbol_delimiter = "-"
    sequence_rule = LinkedRule()
    # Both feeds send heartbeats every second once subscribed (Advanced Trade closes channels after
    # 60-90 s idle; Exchange wants the subscribe within 5 s).
    keepalive = KeepAlive(interval_s=None, silence_timeout_s=10.0)

    def __init__(self, feed: str = "advanced"):
        if feed not in _FEEDS:
            raise ValueError(f"Coinbase feed must be one of {', '.join(_FEEDS)}, got {feed!r}")
        self.feed = feed
        if feed == "advanced":
            self.ws_url = "wss://advanced-trade-ws.coinbase.com"
        else:
            self.ws_url = "wss://ws-feed.exchange.coinbase.com"
        super().__init__()
        self.connection_gaps = 0
        self.reset_connection()

    def reset_connection(self) -> None:
        """Forget the connection's ``sequence_num`` state (call on every new connection)."""
        self._conn_seq: int | None = None
        self._link: dict[str, int] = {}

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        ids = [self.venue_symbol(s) for s in symbols]
        if self.feed == "exchange":
            msgs = [
                {
                    "type": "subscribe",
                    "product_ids": ids,
                    "channels": ["level2_batch", "matches", "ticker", "heartbeat"],
                }
            ]
        else:  # one channel per subscribe message
            msgs = [
                {"type": "subscribe", "product_ids": ids, "channel": c}
                for c in ("heartbeats", "level2", "market_trades", "ticker")
            ]
        return [orjson.dumps(m).decode() for m in msgs]

    def snapshot_request(self, symbol: str, limit: int = 1000) -> SnapshotRequest | None:
        return None  # the level2 channel pushes its snapshot on the socket

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST ``GET /products/{id}/book?level=2`` body. Its ``sequence`` cannot be linked to
        ``l2update`` (which has none), so the snapshot carries no sequence."""
        inst = self.instrument_for(symbol)
        return L2Snapshot(inst, body["bids"], body["asks"], None, None, ts_recv_ns)

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame of either feed -> events; bad frames counted in ``errors``."""
        try:
            if not isinstance(msg, dict):
                self.errors.record("unknown", msg)
                return []
            if "channel" in msg and "events" in msg:
                return self._advanced(msg, ts_recv_ns)
            t = msg.get("type")
            if t == "l2update":
                bids, asks = [], []
                for side, price, size in msg["changes"]:
                    (bids if side == "buy" else asks).append((price, size))
                return [
                    L2Delta(
                        self.instrument(msg["product_id"]),
                        bids,
                        asks,
                        None,
                        None,
                        None,
                        iso_ns(msg["time"]) if "time" in msg else None,
                        ts_recv_ns,
                    )
                ]
            if t == "snapshot":
                return [
                    L2Snapshot(
                        self.instrument(msg["product_id"]), msg["bids"], msg["asks"], None, None, ts_recv_ns
                    )
                ]
            if t in ("match", "last_match"):
                taker = "buy" if msg["side"] == "sell" else "sell"  # ``side`` is the maker's
                return [
                    Trade(
                        self.instrument(msg["product_id"]),
                        msg["price"],
                        msg["size"],
                        taker,
                        str(msg["trade_id"]),
                        iso_ns(msg["time"]),
                        ts_recv_ns,
                        {"sequence": msg.get("sequence"), "last_match": t == "last_match"},
                    )
                ]
            if t == "ticker":
                return [
                    BookTicker(
                        self.instrument(msg["product_id"]),
                        msg["best_bid"],
                        msg.get("best_bid_size"),
                        msg["best_ask"],
                        msg.get("best_ask_size"),
                        msg.get("sequence"),
                        iso_ns(msg["time"]) if "time" in msg else None,
                        ts_recv_ns,
                    )
                ]
            if t in ("subscriptions", "heartbeat"):
                return []
            self.errors.record("unknown", msg)  # includes {"type":"error",…}
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []

    def _advanced(self, msg: dict, ts_recv_ns: int) -> list[Event]:
        seq = msg.get("sequence_num")
        if seq is not None:
            if seq == 0:  # a new connection starts counting at 0
                self._conn_seq = None
            if self._conn_seq is not None and seq != self._conn_seq + 1:
                self.connection_gaps += 1
                for k in self._link:
                    self._link[k] = _BROKEN
            self._conn_seq = seq
        channel = msg["channel"]
        ts = iso_ns(msg["timestamp"]) if msg.get("timestamp") else None
        out: list[Event] = []
        if channel == "l2_data":
            for ev in msg["events"]:
                pid = ev["product_id"]
                inst = self.instrument(pid)
                bids, asks = [], []
                for u in ev["updates"]:
                    (bids if u["side"] == "bid" else asks).append((u["price_level"], u["new_quantity"]))
                if ev["type"] == "snapshot":
                    out.append(L2Snapshot(inst, bids, asks, seq, ts, ts_recv_ns))
                else:
                    prev = self._link.get(pid, _BROKEN)
                    out.append(L2Delta(inst, bids, asks, seq, seq, prev, ts, ts_recv_ns))
                if seq is not None:
                    self._link[pid] = seq
        elif channel == "market_trades":
            for ev in msg["events"]:
                for t in ev["trades"]:
                    out.append(
                        Trade(
                            self.instrument(t["product_id"]),
                            t["price"],
                            t["size"],
                            t["side"].lower(),
                            str(t["trade_id"]),
                            iso_ns(t["time"]),
                            ts_recv_ns,
                        )
                    )
        elif channel == "ticker":
            for ev in msg["events"]:
                for t in ev["tickers"]:
                    out.append(
                        BookTicker(
                            self.instrument(t["product_id"]),
                            t["best_bid"],
                            t.get("best_bid_quantity"),
                            t["best_ask"],
                            t.get("best_ask_quantity"),
                            seq,
                            ts,
                            ts_recv_ns,
                        )
                    )
        elif channel not in ("heartbeats", "subscriptions"):
            self.errors.record("unknown", msg)
        return out


ADAPTERS = {"coinbase": Coinbase}
