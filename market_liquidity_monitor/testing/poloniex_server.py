"""A loopback Poloniex (spot) stand-in speaking the venue's real protocols, for ccxt.pro tests.

Poloniex has no native adapter here, so its books come from ccxt.pro ``watch_order_book``
(``data_engine/pro.py``). This server lets the real ccxt.pro client run against it on 127.0.0.1:

- WebSocket ``/ws.poloniex.com/ws/public`` (the venue's ``wss://ws.poloniex.com/ws/public``):
  ``{"event": "subscribe", "channel": ["book_lv2"], "symbols": ["ETH_USDT"]}`` is acknowledged with
  ``{"event": "subscribe", "channel": "book_lv2", "symbols": [...]}``, then a ``snapshot`` of the
  top 20 levels and ``update`` messages whenever those 20 levels change: ``{"channel": "book_lv2",
  "action": "snapshot"|"update", "data": [{"symbol", "createTime", "asks": [[price, qty]], "bids",
  "lastId", "id", "ts"}]}``; a quantity ``"0"`` removes the level, ``lastId`` is the previous
  message's ``id``. ``{"event": "ping"}`` is answered ``{"event": "pong"}``. (Poloniex spot API
  docs, "WebSocket / Market Data / Book Level 2"; the message shapes ccxt 4.5.90
  ``ccxt/pro/poloniex.py`` parses.)
- REST ``/api.poloniex.com/markets`` (symbol list), ``/api.poloniex.com/v3/market/allInstruments``
  (futures list, empty here) and ``/api.poloniex.com/markets/{symbol}/orderBook?limit=N`` (flat
  ``[price, qty, price, qty, ...]`` arrays, ``time``/``ts`` in ms): what ccxt's ``load_markets``
  and ``fetch_order_book`` request (Poloniex spot API docs, "Reference Data" and "Market Data").
  Point ccxt at it with ``rest_base_url``/``pro_ws_base_url`` = ``server.base_url`` (the
  ``<base>/<host>/<path>`` scheme of ``data_engine.engine.point_exchange_at``).

The book is real: Binance spot ETHUSDT of ``../shared/data/hftbacktest/spot/ethusdt_20240808.gz``
(the 1000-level REST snapshot in the stream, then the ``depth@100ms`` diffs after it, applied by
Binance's rule: drop diffs with ``u <= lastUpdateId``), served as Poloniex ``ETH_USDT``. Each
recorded diff that changes the top 20 becomes one ``update`` with the levels that changed, entered
or left the top 20. Nothing is sent unprompted: ``publish(n)`` sends the next ``n`` updates, so a
test knows the exact book a client holds; ``sent`` keeps every book message sent (JSON, as sent).

``symbolTradeLimit`` of the market listing is Binance's ETHUSDT filters (tick 0.01, step 0.0001,
min notional 5) restated in Poloniex's shape; BTC_USDT is listed (not served) so that symbol
lookups have more than one market. ``ws_enabled = False`` closes the WebSocket connections and
refuses new ones (HTTP 503) while REST keeps answering; ``stop()``/``start()`` kill and restart
the whole server on the same port.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

TOP_LEVELS = 20
SYMBOL = "ETH_USDT"


def _norm(x: str) -> str:
    d = Decimal(x).normalize()
    return format(d, "f")


def _load_binance(path: Path) -> tuple[dict[str, dict[str, str]], list[tuple[int, list, list]]]:
    """(snapshot book {side: {price: qty}}, diffs [(event_ms, bids, asks)] after it)."""
    snap: dict[str, Any] | None = None
    diffs: list[tuple[int, list, list]] = []
    with gzip.open(path, "rt") as f:
        for line in f:
            _, _, body = line.partition(" ")
            if snap is None:
                if body.startswith('{"lastUpdateId"'):
                    snap = json.loads(body)
                continue
            if '"depthUpdate"' not in body:
                continue
            d = json.loads(body)["data"]
            if d["u"] <= snap["lastUpdateId"]:
                continue
            diffs.append((d["E"], d["b"], d["a"]))
    assert snap is not None, f"no REST snapshot in {path}"
    book = {
        "bids": {_norm(p): _norm(q) for p, q in snap["bids"]},
        "asks": {_norm(p): _norm(q) for p, q in snap["asks"]},
    }
    return book, diffs


def _top(side: dict[str, str], key: str, n: int = TOP_LEVELS) -> dict[str, str]:
    prices = sorted(side, key=Decimal, reverse=key == "bids")[:n]
    return {p: side[p] for p in prices}


class PoloniexServer:
    """See the module docstring. ``async with PoloniexServer(data_dir) as srv: srv.base_url``."""

    def __init__(self, data_dir: Path, port: int = 0):
        self._book, diffs = _load_binance(data_dir / "hftbacktest/spot/ethusdt_20240808.gz")
        self._pending = diffs
        self._next = 0
        self.port = port
        self.ws_enabled = True
        self.sent: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.subscriptions = 0
        self._id = 1000
        self._ts_ms = diffs[0][0] if diffs else 0
        self._clients: set[web.WebSocketResponse] = set()
        self._subscribed: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None

    @property
    def connections(self) -> int:
        """WebSocket connections open right now."""
        return sum(1 for ws in self._clients if not ws.closed)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws.poloniex.com/ws/public", self._ws)
        app.router.add_get("/api.poloniex.com/markets", self._markets)
        app.router.add_get("/api.poloniex.com/v3/market/allInstruments", self._swap_markets)
        app.router.add_get("/api.poloniex.com/markets/{symbol}/orderBook", self._order_book)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.drop_clients()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PoloniexServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def set_ws_enabled(self, enabled: bool) -> None:
        """Turn the WebSocket endpoint off (connections closed, new ones refused) or back on."""
        self.ws_enabled = enabled
        if not enabled:
            await self.drop_clients()

    async def drop_clients(self) -> None:
        for ws in list(self._clients):
            await ws.close()
        self._clients.clear()
        self._subscribed.clear()

    # -------------------------------------------------------------- the book
    def top(self) -> dict[str, dict[str, str]]:
        """The top 20 levels per side right now (what a new subscriber's snapshot carries)."""
        return {k: _top(self._book[k], k) for k in ("bids", "asks")}

    def _message(self, action: str, bids: list, asks: list) -> dict[str, Any]:
        last, self._id = self._id, self._id + 1
        return {
            "channel": "book_lv2",
            "data": [
                {
                    "symbol": SYMBOL,
                    "createTime": self._ts_ms,
                    "asks": asks,
                    "bids": bids,
                    "lastId": last,
                    "id": self._id,
                    "ts": self._ts_ms,
                }
            ],
            "action": action,
        }

    def _advance(self) -> dict[str, Any] | None:
        """Apply recorded diffs until the top 20 changes; the update message, or None at the end."""
        while self._next < len(self._pending):
            before = self.top()
            ts, bids, asks = self._pending[self._next]
            self._next += 1
            for side, levels in (("bids", bids), ("asks", asks)):
                for p, q in levels:
                    p, q = _norm(p), _norm(q)
                    if Decimal(q) == 0:
                        self._book[side].pop(p, None)
                    else:
                        self._book[side][p] = q
            after = self.top()
            changes = {}
            for side in ("bids", "asks"):
                b, a = before[side], after[side]
                changes[side] = [[p, q] for p, q in a.items() if b.get(p) != q] + [
                    [p, "0"] for p in b if p not in a
                ]
            if changes["bids"] or changes["asks"]:
                self._ts_ms = ts
                return self._message("update", changes["bids"], changes["asks"])
        return None

    async def publish(self, n: int = 1) -> int:
        """Send the next ``n`` updates to every subscriber; how many were sent."""
        done = 0
        for _ in range(n):
            msg = self._advance()
            if msg is None:
                break
            await self._send_all(msg)
            done += 1
        return done

    async def _send_all(self, msg: dict[str, Any]) -> None:
        self.sent.append(msg)
        text = json.dumps(msg)
        for ws in list(self._subscribed):
            if not ws.closed:
                await ws.send_str(text)

    # -------------------------------------------------------------- handlers
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        if not self.ws_enabled:
            return web.json_response({"message": "Service Unavailable"}, status=503)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._clients.add(ws)
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                msg = json.loads(frame.data)
                event = msg.get("event")
                if event == "ping":
                    await ws.send_str(json.dumps({"event": "pong"}))
                elif event == "subscribe" and msg.get("channel") == ["book_lv2"]:
                    symbols = msg.get("symbols") or []
                    if symbols != [SYMBOL]:
                        await ws.send_str(
                            json.dumps({"event": "error", "message": f"Invalid symbols value {symbols}"})
                        )
                        continue
                    await ws.send_str(
                        json.dumps({"event": "subscribe", "channel": "book_lv2", "symbols": symbols})
                    )
                    top = self.top()
                    snap = self._message(
                        "snapshot",
                        [[p, q] for p, q in top["bids"].items()],
                        [[p, q] for p, q in top["asks"].items()],
                    )
                    self.subscriptions += 1
                    self.sent.append(snap)
                    await ws.send_str(json.dumps(snap))
                    self._subscribed.add(ws)
                elif event == "unsubscribe":
                    self._subscribed.discard(ws)
                    await ws.send_str(
                        json.dumps(
                            {"event": "unsubscribe", "channel": "book_lv2", "symbols": msg.get("symbols")}
                        )
                    )
        finally:
            self._clients.discard(ws)
            self._subscribed.discard(ws)
        return ws

    async def _markets(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)

        def market(sym: str, base: str, price_scale: int, qty_scale: int) -> dict[str, Any]:
            return {
                "symbol": sym,
                "baseCurrencyName": base,
                "quoteCurrencyName": "USDT",
                "displayName": f"{base}/USDT",
                "state": "NORMAL",
                "visibleStartTime": 1659018816626,
                "tradableStartTime": 1659018816626,
                "symbolTradeLimit": {
                    "symbol": sym,
                    "priceScale": price_scale,
                    "quantityScale": qty_scale,
                    "amountScale": 2,
                    "minQuantity": "0.0001" if base == "ETH" else "0.00001",
                    "minAmount": "5",
                    "highestBid": "0",
                    "lowestAsk": "0",
                },
            }

        return web.json_response([market("ETH_USDT", "ETH", 2, 4), market("BTC_USDT", "BTC", 2, 5)])

    async def _swap_markets(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.json_response({"code": "200", "msg": "Success", "data": []})

    async def _order_book(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if request.match_info["symbol"] != SYMBOL:
            return web.json_response({"code": 21603, "message": "Symbol does not exist"}, status=400)
        limit = int(request.query.get("limit", "10"))
        flat = {
            k: [x for p, q in list(_top(self._book[k], k, limit).items()) for x in (p, q)] for k in self._book
        }
        return web.json_response(
            {
                "time": self._ts_ms,
                "scale": "-1",
                "asks": flat["asks"],
                "bids": flat["bids"],
                "ts": self._ts_ms,
            }
        )
