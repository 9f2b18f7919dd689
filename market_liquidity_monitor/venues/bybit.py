"""Bybit v5 public WebSocket and the legacy pre-v5 ``orderBookL2_25`` feed: pure translation.

v5 wire formats (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook; real frames
from ../shared/data/nautilus_trader/bybit/xrpusdt-ob500.data.zip, README §4.5)::

    {"topic":"orderbook.500.XRPUSDT","type":"snapshot","ts":1733011200691,"data":{"s":"XRPUSDT",
     "b":[["1.9531","6203"],…],"a":[…],"u":20254869,"seq":130020238981},"cts":1733011200589}

``type`` ``snapshot`` or ``delta`` (size ``"0"`` deletes); ``u`` is "always in sequence"; ``u = 1``
is a snapshot after a service restart ("overwrite your local orderbook"); a new snapshot resets the
book; ``seq`` is the cross sequence. Trades ``publicTrade.{symbol}``: ``data:[{"T":ms,"s":…,
"S":"Buy"|"Sell" (taker),"v":size,"p":price,"i":trade id}]``. Tickers ``tickers.{symbol}``:
``data:{"symbol":…,"bid1Price","bid1Size","ask1Price","ask1Size",…}`` (linear/inverse deltas send
only the changed fields: merged here per symbol).

Legacy wire formats (real frames from ../shared/data/cryptofeed/BYBIT.ws.25.0 / .26.0, README §4.1)::

    {"topic":"orderBookL2_25.ADAUSDT","type":"delta","data":{"delete":[],"update":[{"price":"1.3876",
     "symbol":"ADAUSDT","id":"13876","side":"Sell","size":1}],"insert":[]},"cross_seq":"916955516",
     "timestamp_e6":"1618677795082338"}

Levels are keyed by ``id`` (the price is also sent; an ``id -> price`` map covers deletes without
one); the snapshot is ``data.order_book`` on USDT linear (``realtime_public``, string
``cross_seq``) and the ``data`` list itself on inverse (``realtime``, numeric fields). Sizes are
JSON numbers (floats such as ``29.180002``) rendered with ``checksums.number_text``. ``cross_seq``
is strictly increasing per symbol but not contiguous: order is checked, loss is not visible.

Keepalive: ``{"op":"ping"}`` every 20 s (hummingbot ``WS_HEARTBEAT_TIME_INTERVAL`` [2ND]); the
server cuts a connection after 10 min without ping-pong or data. Symbols: ``ETHUSDT`` linear ->
``ETH/USDT:USDT``; ``BTCUSD`` inverse -> ``BTC/USD:BTC`` (sizes are USD contracts of 1 USD:
``contract_size = 1.0`` so base = size / price); spot category ``BTCUSDT`` -> ``BTC/USDT``.
"""

from __future__ import annotations

from typing import Any

import orjson

from market_liquidity_monitor.book.rules import BybitRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.venues.base import (
    AdapterBase,
    Event,
    KeepAlive,
    SnapshotRequest,
    split_quote_suffix,
)
from market_liquidity_monitor.venues.checksums import number_text

_MS = 1_000_000
_QUOTES = ("USDT", "USDC", "BTC", "ETH", "EUR", "BRL", "DAI", "USD")
_CATEGORIES = ("linear", "inverse", "spot")


class Bybit(AdapterBase):
    """Bybit public market data (ccxt id ``bybit``). ``category`` picks the v5 endpoint and how a
    bare wire symbol is read (``linear``: ``ETHUSDT`` is the USDT perp; a ``…USD`` symbol is always
    the inverse perp); ``spot`` reads ``BTCUSDT`` as spot."""

    venue = "bybit"
    rest_depth_url = "https://api.bybit.com/v5/market/orderbook"
    sequence_rule = BybitRule()
    keepalive = KeepAlive(interval_s=20.0, client_ping='{"op":"ping"}', silence_timeout_s=30.0)

    def __init__(self, category: str = "linear", depth: int = 50):
        if category not in _CATEGORIES:
            raise ValueError(f"Bybit category must be one of {', '.join(_CATEGORIES)}, got {category!r}")
        self.category = category
        self.depth = depth
        self.ws_url = f"wss://stream.bybit.com/v5/public/{category}"
        super().__init__()
        self._level_price: dict[tuple[str, str], str] = {}  # legacy (symbol, id) -> price
        self._tickers: dict[str, dict] = {}  # v5 ticker state per symbol (deltas are partial)

    # -------------------------------------------------------------- symbols

    def unified_symbol(self, venue_symbol: str) -> str:
        vs = venue_symbol.upper()
        if self.category == "spot":
            split = split_quote_suffix(vs, _QUOTES)
            if split is None:
                raise UnknownSymbolError(vs, (), self.venue)
            return f"{split[0]}/{split[1]}"
        if vs.endswith("PERP") and len(vs) > 4:  # v5 USDC perpetuals: BTCPERP
            return f"{vs[:-4]}/USDC:USDC"
        for q in ("USDT", "USDC"):
            if vs.endswith(q) and len(vs) > len(q):
                return f"{vs[: -len(q)]}/{q}:{q}"
        if vs.endswith("USD") and len(vs) > 3:
            base = vs[:-3]
            return f"{base}/USD:{base}"
        raise UnknownSymbolError(vs, (), self.venue)

    def venue_symbol(self, symbol: str) -> str:
        pair, _, settle = symbol.partition(":")
        base, quote = pair.split("/")
        if settle == "USDC" and quote == "USDC":
            return f"{base}PERP"
        return f"{base}{quote}"

    def contract_size(self, symbol: str) -> float | None:
        """Inverse perps: sizes are USD contracts of 1 USD face value -> 1.0; others None."""
        pair, _, contract = symbol.partition(":")
        return 1.0 if contract and contract.split("-")[0] == pair.split("/")[0] else None

    # ----------------------------------------------------------- connection

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """One subscribe per symbol (spot allows at most 10 args per request)."""
        out = []
        for s in symbols:
            w = self.venue_symbol(s)
            args = [f"orderbook.{self.depth}.{w}", f"publicTrade.{w}", f"tickers.{w}"]
            out.append(orjson.dumps({"op": "subscribe", "args": args}).decode())
        return out

    def snapshot_request(self, symbol: str, limit: int = 200) -> SnapshotRequest | None:
        return None  # the orderbook topic pushes its snapshot on the socket

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST ``GET /v5/market/orderbook`` body (``result: {s, b, a, ts, u, seq}``)."""
        r = body["result"]
        return L2Snapshot(
            self.instrument(r["s"]), r["b"], r["a"], int(r["u"]), int(r["ts"]) * _MS, ts_recv_ns
        )

    # -------------------------------------------------------------- parsing

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame (v5 or legacy) -> events; acks and pongs -> []; bad frames counted."""
        try:
            if not isinstance(msg, dict):
                self.errors.record("unknown", msg)
                return []
            topic = msg.get("topic")
            if topic is None:
                if msg.get("success") is False or msg.get("ret_msg") not in (None, "", "pong", "subscribe"):
                    self.errors.record("unknown", msg)
                return []  # {"success":true,"op":"subscribe"…}, {"op":"pong"…}
            kind = topic.partition(".")[0]
            if kind == "orderbook":
                return [self._v5_book(msg, ts_recv_ns)]
            if kind == "publicTrade":
                return [self._v5_trade(t, ts_recv_ns) for t in msg["data"]]
            if kind == "tickers":
                t = self._v5_ticker(msg, ts_recv_ns)
                return [t] if t is not None else []
            if kind.startswith("orderBookL2"):
                return [self._legacy_book(msg, ts_recv_ns)]
            if kind == "trade":
                return [self._legacy_trade(t, ts_recv_ns) for t in msg["data"]]
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError, IndexError):
            self.errors.record("malformed", msg)
            return []

    # v5 ---------------------------------------------------------------------

    def _v5_book(self, msg: dict, ts_recv_ns: int) -> Event:
        d = msg["data"]
        inst = self.instrument(d["s"])
        u = int(d["u"])
        ts = int(msg.get("cts") or msg["ts"]) * _MS
        if msg["type"] == "snapshot" or u == 1:  # u=1: service restart, "overwrite your local orderbook"
            return L2Snapshot(inst, d["b"], d["a"], u, ts, ts_recv_ns)
        return L2Delta(inst, d["b"], d["a"], u, u, None, ts, ts_recv_ns)

    def _v5_trade(self, t: dict, ts_recv_ns: int) -> Trade:
        return Trade(
            self.instrument(t["s"]),
            t["p"],
            t["v"],
            t["S"].lower(),
            str(t["i"]),
            int(t["T"]) * _MS,
            ts_recv_ns,
            {"block_trade": t.get("BT", False)},
        )

    def _v5_ticker(self, msg: dict, ts_recv_ns: int) -> BookTicker | None:
        d = msg["data"]
        sym = d["symbol"]
        state = self._tickers.setdefault(sym, {})
        if msg.get("type") == "snapshot":
            state.clear()
        state.update({k: v for k, v in d.items() if v not in (None, "")})
        if "bid1Price" not in state or "ask1Price" not in state:
            return None
        return BookTicker(
            self.instrument(sym),
            state["bid1Price"],
            state.get("bid1Size"),
            state["ask1Price"],
            state.get("ask1Size"),
            msg.get("cs"),
            int(msg["ts"]) * _MS,
            ts_recv_ns,
        )

    # legacy -----------------------------------------------------------------

    def _legacy_book(self, msg: dict, ts_recv_ns: int) -> Event:
        sym = msg["topic"].partition(".")[2]
        inst = self.instrument(sym)
        cross_seq = int(msg["cross_seq"])
        ts = int(msg["timestamp_e6"]) * 1000
        data = msg["data"]
        prices = self._level_price
        if msg["type"] == "snapshot":
            rows = data["order_book"] if isinstance(data, dict) else data
            bids, asks = [], []
            for r in rows:
                price = r["price"]
                prices[(sym, str(r["id"]))] = price
                (bids if r["side"] == "Buy" else asks).append([price, number_text(r["size"])])
            return L2Snapshot(inst, bids, asks, cross_seq, ts, ts_recv_ns)
        bids, asks = [], []
        for r in data.get("delete", ()):
            key = (sym, str(r["id"]))
            price = r.get("price") or prices[key]
            prices.pop(key, None)
            (bids if r["side"] == "Buy" else asks).append([price, "0"])
        for group in ("update", "insert"):
            for r in data.get(group, ()):
                key = (sym, str(r["id"]))
                price = r.get("price") or prices[key]
                prices[key] = price
                (bids if r["side"] == "Buy" else asks).append([price, number_text(r["size"])])
        return L2Delta(inst, bids, asks, None, cross_seq, None, ts, ts_recv_ns)

    def _legacy_trade(self, t: dict, ts_recv_ns: int) -> Trade:
        return Trade(
            self.instrument(t["symbol"]),
            number_text(t["price"]),
            number_text(t["size"]),
            t["side"].lower(),
            str(t["trade_id"]),
            int(t["trade_time_ms"]) * _MS,
            ts_recv_ns,
        )


ADAPTERS = {"bybit": Bybit}
