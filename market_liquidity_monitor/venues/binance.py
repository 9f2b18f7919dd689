"""Binance spot, USD-M futures and COIN-M futures: pure translation of wire frames.

Wire formats (real frames from ../shared/data/hftbacktest, see its README §4.2):

- spot diff depth::

    {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161276318,"s":"BTCUSDT",
     "U":50093247956,"u":50093247956,"b":[["61828.09000000","3.61811000"]],"a":[]}}

- USD-M / COIN-M diff depth add ``T`` (transaction time) and ``pu`` (previous event's ``u``);
  COIN-M adds ``ps`` (pair) and its quantities are contracts::

    {"stream":"btcusd_perp@depth@0ms","data":{"e":"depthUpdate","E":1723161600819,"T":1723161600805,
     "s":"BTCUSD_PERP","ps":"BTCUSD","U":1007202244821,"u":1007202244822,"pu":1007202244644,
     "b":[["5000.0","2"]],"a":[]}}

- bookTicker (spot has no ``e``/``E``)::

    {"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000",
     "B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}

- trade: ``{"e":"trade","E":…,"s":"BTCUSDT","t":3735683259,"p":"61837.63","q":"0.02","T":…,"m":true}``
  (``m`` = buyer is maker, so the taker sold); aggTrade has ``a`` instead of ``t``.
- REST depth snapshot: ``{"lastUpdateId":…,("E":…,"T":…,)"bids":[[p,q],…],"asks":[[p,q],…]}``.

Sync rules: spot ``BinanceSpotRule``, futures ``BinanceFuturesRule`` (``book.sync``). Keepalive and
limits from the Binance docs (VENUE_RULES.md §1-2): server pings every 20 s (spot) / 3 min
(futures), answered by the WebSocket library's automatic pong; connections live 24 h; REST depth
weight 50 at limit 1000 (spot) / 20 (futures).
"""

from __future__ import annotations

from typing import Any

from market_liquidity_monitor.book.sync import BinanceFuturesRule, BinanceSpotRule, SequenceRule
from market_liquidity_monitor.domain.errors import UnknownSymbolError
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.venues.base import (
    AdapterBase,
    Event,
    KeepAlive,
    SnapshotRequest,
    split_quote_suffix,
)

# Quote assets tried longest-first when splitting a spot wire symbol without exchangeInfo.
_QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "TRY", "EUR", "GBP", "BRL", "AUD",
    "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "RUB", "UAH", "ZAR", "IDRT", "NGN", "BIDR", "PLN", "RON",
    "ARS", "JPY", "MXN", "COP", "CZK", "USD",
)  # fmt: skip

_MS = 1_000_000  # ms -> ns


class _BinanceBase(AdapterBase):
    venue: str
    ws_url: str
    rest_depth_url: str
    sequence_rule: SequenceRule
    keepalive = KeepAlive(interval_s=None, silence_timeout_s=30.0, max_connection_age_s=23.5 * 3600)
    depth_suffix = "depth@100ms"

    def __init__(
        self, symbol_map: dict[str, str] | None = None, contract_sizes: dict[str, float] | None = None
    ):
        # wire symbol -> unified symbol, e.g. from exchangeInfo; filled lazily by heuristics.
        self._to_unified: dict[str, str] = dict(symbol_map or {})
        self._to_wire: dict[str, str] = {v: k for k, v in self._to_unified.items()}
        self._contract_sizes = dict(contract_sizes or {})
        super().__init__()

    # -------------------------------------------------------------- symbols

    def unified_symbol(self, venue_symbol: str) -> str:
        vs = venue_symbol.upper()
        hit = self._to_unified.get(vs)
        if hit is None:
            hit = self._guess_unified(vs)
            self._to_unified[vs] = hit
            self._to_wire[hit] = vs
        return hit

    def venue_symbol(self, symbol: str) -> str:
        hit = self._to_wire.get(symbol)
        if hit is None:
            hit = self._guess_wire(symbol)
            self._to_wire[symbol] = hit
            self._to_unified[hit] = symbol
        return hit

    def _guess_unified(self, vs: str) -> str:
        split = split_quote_suffix(vs, _QUOTES)
        if split is None:
            raise UnknownSymbolError(vs, self._to_unified.values(), self.venue)
        return f"{split[0]}/{split[1]}"

    def _guess_wire(self, symbol: str) -> str:
        return symbol.split(":")[0].replace("/", "")

    # ----------------------------------------------------------- connection

    def stream_names(self, symbols: list[str]) -> list[str]:
        out = []
        for s in symbols:
            w = self.venue_symbol(s).lower()
            out += [f"{w}@{self.depth_suffix}", f"{w}@bookTicker", f"{w}@trade"]
        return out

    def stream_url(self, symbols: list[str]) -> str:
        return f"{self.ws_url}/stream?streams={'/'.join(self.stream_names(symbols))}"

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        return []  # streams are named in the combined-stream URL

    def snapshot_request(self, symbol: str, limit: int = 1000) -> SnapshotRequest:
        return SnapshotRequest(
            self.rest_depth_url, {"symbol": self.venue_symbol(symbol), "limit": limit}, self._weight(limit)
        )

    def _weight(self, limit: int) -> int:
        raise NotImplementedError  # per market, from the Binance docs

    # -------------------------------------------------------------- parsing

    def parse_snapshot(self, body: Any, symbol: str, ts_recv_ns: int) -> L2Snapshot:
        """REST ``/depth`` body -> ``L2Snapshot`` (``symbol`` unified or wire form)."""
        inst = self.instrument_for(symbol)
        ts = body.get("E")
        return L2Snapshot(
            instrument=inst,
            bids=body["bids"],
            asks=body["asks"],
            sequence=int(body["lastUpdateId"]),
            ts_event=ts * _MS if ts else None,
            ts_recv=ts_recv_ns,
        )

    def parse_message(self, msg: Any, ts_recv_ns: int) -> list[Event]:
        """A decoded frame (combined-stream envelope or bare payload) -> events; bad frames counted."""
        try:
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(data, dict):
                self.errors.record("unknown", msg)
                return []
            e = data.get("e")
            if e == "depthUpdate":
                return [self._delta(data, ts_recv_ns)]
            if e == "bookTicker" or (e is None and "u" in data and "b" in data and "A" in data):
                return [self._ticker(data, ts_recv_ns)]
            if e in ("trade", "aggTrade"):
                return [self._trade(data, ts_recv_ns)]
            if "lastUpdateId" in data:
                return []  # a REST snapshot needs its symbol: use parse_snapshot
            self.errors.record("unknown", msg)
            return []
        except (KeyError, TypeError, ValueError):
            self.errors.record("malformed", msg)
            return []

    def _delta(self, d: dict, ts_recv_ns: int) -> L2Delta:
        ts = d.get("T") or d["E"]
        return L2Delta(
            self.instrument(d["s"]), d["b"], d["a"], d["U"], d["u"], d.get("pu"), ts * _MS, ts_recv_ns
        )

    def _ticker(self, d: dict, ts_recv_ns: int) -> BookTicker:
        ts = d.get("T") or d.get("E")
        return BookTicker(
            self.instrument(d["s"]),
            d["b"],
            d["B"],
            d["a"],
            d["A"],
            d["u"],
            ts * _MS if ts else None,
            ts_recv_ns,
        )

    def _trade(self, d: dict, ts_recv_ns: int) -> Trade:
        return Trade(
            instrument=self.instrument(d["s"]),
            price=d["p"],
            size=d["q"],
            side="sell" if d["m"] else "buy",
            trade_id=str(d.get("t", d.get("a"))),
            ts_event=d["T"] * _MS,
            ts_recv=ts_recv_ns,
        )


class BinanceSpot(_BinanceBase):
    venue = "binance"
    ws_url = "wss://stream.binance.com:9443"
    rest_depth_url = "https://api.binance.com/api/v3/depth"
    sequence_rule = BinanceSpotRule()

    def _weight(self, limit: int) -> int:
        # GET /api/v3/depth weight by limit: 1-100 -> 5, 101-500 -> 25, 501-1000 -> 50, 1001-5000 -> 250.
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class _BinanceFutures(_BinanceBase):
    sequence_rule = BinanceFuturesRule()

    def _weight(self, limit: int) -> int:
        # GET /fapi/v1/depth and /dapi/v1/depth: 5-50 -> 2, 100 -> 5, 500 -> 10, 1000 -> 20.
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


class BinanceUsdm(_BinanceFutures):
    venue = "binanceusdm"
    ws_url = "wss://fstream.binance.com"
    rest_depth_url = "https://fapi.binance.com/fapi/v1/depth"

    def _guess_unified(self, vs: str) -> str:
        spot = super()._guess_unified(vs.split("_")[0])
        return f"{spot}:{spot.split('/')[1]}"


class BinanceCoinm(_BinanceFutures):
    """COIN-M inverse contracts: sizes are contracts of ``contract_size`` USD face value each
    (BTC 100 USD, others 10 USD per Binance's contract specifications)."""

    venue = "binancecoinm"
    ws_url = "wss://dstream.binance.com"
    rest_depth_url = "https://dapi.binance.com/dapi/v1/depth"

    def _guess_unified(self, vs: str) -> str:
        pair, _, expiry = vs.partition("_")  # BTCUSD_PERP, BTCUSD_211231
        if not pair.endswith("USD"):
            raise UnknownSymbolError(vs, self._to_unified.values(), self.venue)
        base = pair[:-3]
        sym = f"{base}/USD:{base}"
        return sym if expiry in ("PERP", "") else f"{sym}-{expiry}"

    def _guess_wire(self, symbol: str) -> str:
        pair, _, settle = symbol.partition(":")
        base, quote = pair.split("/")
        _, _, expiry = settle.partition("-")
        return f"{base}{quote}_{expiry or 'PERP'}"

    def contract_size(self, symbol: str) -> float:
        base = symbol.split("/")[0]
        return self._contract_sizes.get(base, 100.0 if base == "BTC" else 10.0)


ADAPTERS: dict[str, type[_BinanceBase]] = {
    "binance": BinanceSpot,
    "binanceusdm": BinanceUsdm,
    "binancecoinm": BinanceCoinm,
}
