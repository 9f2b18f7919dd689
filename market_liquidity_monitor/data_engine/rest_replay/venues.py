"""Per-venue REST behaviour of the stand-in: which endpoints answer from which recording, and each
venue's own error shapes (so the real ccxt client raises the exception class it raises live).

A venue is a set of hosts plus four error shapes (``not_found``, ``no_data``, ``server_error``,
``rate_limited``) and an optional ``route`` for endpoints that need more than "serve the recorded
body" (Binance depth/klines/trades/time, Bitstamp markets, Gate and KuCoin books). A request no
route answers is looked up among the recorded responses of its host (path and query, ``limit``
ignored); with no recording it gets the venue's ``not_found``.

Error bodies follow each venue's documented envelope; the texts are quoted from the venue's docs
or from ccxt 4.5.90's ``exceptions`` tables/comments where marked, otherwise they are the
stand-in's own words (never a number that looks like data).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from market_liquidity_monitor.data_engine.rest_replay.recordings import (
    BINANCE_COINM,
    BINANCE_SPOT,
    BINANCE_USDM,
    KLINE_INTERVAL_MS,
    CandleSeries,
    RecordedResponse,
    Recordings,
)

JSON = "application/json"
SOURCE_HEADER = "X-Replay-Source"
NOTE_HEADER = "X-Replay-Note"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, body bytes, content type, extra headers."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def json(obj: Any, status: int = 200, source: str | None = None, note: str | None = None) -> Reply:
        headers = []
        if source:
            headers.append((SOURCE_HEADER, source))
        if note:
            headers.append((NOTE_HEADER, note))
        body = json.dumps(obj, separators=(",", ":")).encode()
        return Reply(status, body, JSON, tuple(headers))

    @staticmethod
    def recorded(rec: RecordedResponse) -> Reply:
        return Reply(200, rec.body.encode(), JSON, ((SOURCE_HEADER, rec.source),))


@dataclass(frozen=True)
class Request:
    """What a route sees: the original host, path, query params (last value wins), HTTP method."""

    host: str
    path: str
    params: dict[str, str]
    method: str = "GET"


Route = Callable[[Recordings, Request], "Reply | None"]


@dataclass(frozen=True)
class Venue:
    """One venue's hosts, error shapes and special routes (``route`` returns None to fall back to
    the recorded-response lookup)."""

    name: str
    hosts: tuple[str, ...]
    not_found: Callable[[Request], Reply]
    server_error: Callable[[int], Reply]
    rate_limited: Callable[[], Reply]
    route: Route | None = None


def _note(text: str) -> tuple[tuple[str, str], ...]:
    return ((NOTE_HEADER, text),)


# -- number formatting --------------------------------------------------------------------------
def float_text(x: float) -> str:
    """A stored float as Binance writes numbers (a decimal string, never exponent notation): the
    shortest text that reads back as the same float (``numpy.format_float_positional``, unique)."""
    return np.format_float_positional(float(x), unique=True, trim="-")


def decimal_text(d: Decimal) -> str:
    """An exact Decimal as plain text without exponent or trailing zeros (``48.000012``)."""
    text = format(d.normalize(), "f")
    return text


def _int_param(req: Request, name: str) -> int | str | None:
    """The integer value of query parameter ``name``: None when absent, the raw text when it is not a
    non-negative integer (the caller answers the venue's error)."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 20:
        return raw
    return int(raw)


# =================================================================================================
# Binance (api.binance.com spot, fapi.binance.com USD-M, dapi.binance.com COIN-M)
# Error envelope {"code": <int>, "msg": <text>} (spot REST docs, "Error Codes"; codes and texts from
# binance-spot-api-docs errors.md: -1001, -1003, -1100, -1102, -1120, -1121).
# =================================================================================================
_BINANCE_PREFIX = {BINANCE_SPOT: "/api/v3", BINANCE_USDM: "/fapi/v1", BINANCE_COINM: "/dapi/v1"}
# Unknown paths get the nginx 404 page Binance's front end answers with (as reported in
# sammchardy/python-binance#1316); ccxt maps HTTP 404 to ExchangeNotAvailable.
_NGINX_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def binance_error(code: int, msg: str, status: int = 400, note: str | None = None) -> Reply:
    return Reply(status, json.dumps({"code": code, "msg": msg}).encode(), JSON, _note(note) if note else ())


def _binance_invalid_symbol(note: str) -> Reply:
    return binance_error(-1121, "Invalid symbol.", note=note)


def _binance_mandatory(name: str) -> Reply:
    return binance_error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _binance_illegal(name: str) -> Reply:
    return binance_error(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
    )


def _binance_route(rec: Recordings, req: Request) -> Reply | None:
    prefix = _BINANCE_PREFIX.get(req.host)
    if prefix is None or req.method != "GET" or not req.path.startswith(prefix + "/"):
        return None
    endpoint = req.path[len(prefix) :]
    if endpoint == "/ping":
        return Reply.json({})
    if endpoint == "/time":
        clock = rec.clock_ms(req.host)
        if clock is None:
            return None  # nothing to tell time from: the venue's 404
        return Reply.json({"serverTime": clock}, source="end of the newest recording served for this host")
    if endpoint == "/depth":
        return _binance_depth(rec, req)
    if endpoint == "/klines":
        return _binance_klines(rec, req)
    if endpoint == "/trades":
        return _binance_trades(rec, req)
    return None


def _binance_depth(rec: Recordings, req: Request) -> Reply:
    """``GET <prefix>/depth?symbol=&limit=``: the newest recorded snapshot of ``symbol`` (cryptofeed
    ``*.http`` capture or the hftbacktest 1000-level snapshot), top ``limit`` levels per side. Limit
    default 100 (spot) / 500 (futures), as the docs give; a limit above the recorded depth returns
    every recorded level."""
    symbol = req.params.get("symbol")
    if not symbol:
        return _binance_mandatory("symbol")
    limit = _int_param(req, "limit")
    if isinstance(limit, str) or limit == 0:
        return _binance_illegal("limit")
    if limit is None:
        limit = 100 if req.host == BINANCE_SPOT else 500
    candidates = []
    captured = rec.store.lookup(req.host, req.path, {"symbol": symbol}, ignore=frozenset({"limit"}))
    if captured is not None:
        candidates.append((captured.ts, json.loads(captured.body), captured.source))
    snap = rec.hft_depth(req.host, symbol)
    if snap is not None:
        candidates.append((snap.ts, snap.body, snap.source))
    if not candidates:
        return _binance_invalid_symbol(f"no depth snapshot of {symbol} is recorded for {req.host}")
    _ts, body, source = max(candidates, key=lambda c: c[0])
    out = dict(body)
    out["bids"] = body["bids"][:limit]
    out["asks"] = body["asks"][:limit]
    return Reply.json(out, source=source)


def _kline_row(series: CandleSeries, i: int) -> list[Any]:
    """Binance's 12-element kline array. Open time and O/H/L/C/volume from the file; close time =
    open + interval - 1 ms (Binance's convention, e.g. 1499040000000 -> 1499644799999 in the docs'
    example); quote volume, trade count, taker-buy volumes and the ignored field are not in the
    files and are served as null (ccxt's ``parse_ohlcv`` reads indices 0-5 only; index 7 for
    inverse markets, which have no recorded candles)."""
    o = int(series.open_ms[i])
    row = series.ohlcv[i]
    return [
        o,
        float_text(row[0]),
        float_text(row[1]),
        float_text(row[2]),
        float_text(row[3]),
        float_text(row[4]),
        o + series.interval_ms - 1,
        None,
        None,
        None,
        None,
        None,
    ]


def _binance_klines(rec: Recordings, req: Request) -> Reply:
    """``GET /api/v3/klines?symbol=&interval=&startTime=&endTime=&limit=`` from the recorded candle
    files (spot only: no USD-M/COIN-M candles are recorded). ``limit`` default 500, max 1000 (larger
    values are capped); rows oldest first; window rules in ``CandleSeries.window``."""
    symbol = req.params.get("symbol")
    if not symbol:
        return _binance_mandatory("symbol")
    interval = req.params.get("interval")
    if not interval:
        return _binance_mandatory("interval")
    if interval not in KLINE_INTERVAL_MS:
        return binance_error(-1120, "Invalid interval.")
    ints = {}
    for name in ("startTime", "endTime", "limit"):
        v = _int_param(req, name)
        if isinstance(v, str):
            return _binance_illegal(name)
        ints[name] = v
    limit = ints["limit"] or 500
    limit = min(limit, 1000)
    recorded = rec.candle_intervals(symbol) if req.host == BINANCE_SPOT else []
    if not recorded:
        return _binance_invalid_symbol(f"no candles of {symbol} are recorded for {req.host}")
    series = rec.candles(symbol, interval) if interval in recorded else None
    if series is None:
        return binance_error(
            -1120, "Invalid interval.", note=f"{symbol} candles are recorded at {', '.join(recorded)} only"
        )
    window = series.window(ints["startTime"], ints["endTime"], limit)
    rows = [_kline_row(series, i) for i in range(window.start, window.stop)]
    reply = Reply.json(rows, source=", ".join(series.sources))
    coverage = (
        f"recorded {symbol} {interval} candles open {int(series.open_ms[0])}..{int(series.open_ms[-1])} ms"
    )
    return Reply(reply.status, reply.body, reply.content_type, reply.headers + _note(coverage))


def _binance_trades(rec: Recordings, req: Request) -> Reply:
    """``GET <prefix>/trades?symbol=&limit=``: the latest ``limit`` (default 500, max 1000) recorded
    ``@trade`` messages, oldest first, in the REST shape of the host: spot ``{id, price, qty,
    quoteQty, time, isBuyerMaker, isBestMatch}``, USD-M without ``isBestMatch``, COIN-M with
    ``baseQty`` instead of ``quoteQty``. ``quoteQty`` = price * qty computed exactly with Decimal;
    COIN-M ``baseQty`` (qty * contract size / price, rounded by Binance in a way not documented) is
    null. Other parameters (``startTime``, ``fromId``) are ignored, as the endpoint has none."""
    symbol = req.params.get("symbol")
    if not symbol:
        return _binance_mandatory("symbol")
    limit = _int_param(req, "limit")
    if isinstance(limit, str) or limit == 0:
        return _binance_illegal("limit")
    limit = min(limit or 500, 1000)
    tape = rec.trades(req.host, symbol)
    if tape is None or not tape.trades:
        return _binance_invalid_symbol(f"no trades of {symbol} are recorded for {req.host}")
    out = []
    for t in tape.trades[-limit:]:
        row: dict[str, Any] = {"id": t.trade_id, "price": t.price, "qty": t.qty}
        if req.host == BINANCE_COINM:
            row["baseQty"] = None
        else:
            row["quoteQty"] = decimal_text(t.quote_qty)
        row["time"] = t.time_ms
        row["isBuyerMaker"] = t.buyer_maker
        if req.host == BINANCE_SPOT:
            row["isBestMatch"] = t.best_match
        out.append(row)
    return Reply.json(out, source=", ".join(tape.sources))


BINANCE = Venue(
    name="binance",
    hosts=(BINANCE_SPOT, BINANCE_USDM, BINANCE_COINM),
    not_found=lambda req: Reply(404, _NGINX_404, "text/html"),
    server_error=lambda status: binance_error(
        -1001, "Internal error; unable to process your request. Please try again.", status=status
    ),
    rate_limited=lambda: binance_error(-1003, "Too many requests queued.", status=429),
    route=_binance_route,
)


# =================================================================================================
# Bitstamp (www.bitstamp.net). Error envelope {"status": "error", "reason": ..., "response_code": ...}
# (Bitstamp API docs "Response codes"; ccxt bitstamp handle_errors reads status/reason/code).
# =================================================================================================
def _bitstamp_error(status: int, reason: str, response_code: str | None = None) -> Reply:
    body: dict[str, Any] = {"status": "error", "reason": reason}
    if response_code:
        body["response_code"] = response_code
    return Reply(status, json.dumps(body).encode(), JSON)


def bitstamp_markets_from_pairs_info(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``/api/v2/markets/`` entries derived field by field from recorded
    ``/api/v2/trading-pairs-info/`` entries: ``market_symbol`` = ``url_symbol``; ``base_currency`` /
    ``counter_currency`` = the two halves of ``name`` (``"BTC/USD"``); ``base_decimals``,
    ``counter_decimals``, ``trading``, ``instant_and_market_orders``, ``description`` copied;
    ``minimum_order_value`` = the amount of ``minimum_order`` (``"20.0 USD"`` -> ``"20.0"``, only when
    its currency is the counter currency); ``market_type`` = ``"SPOT"`` (the pairs-info endpoint
    listed spot pairs only). Fields the recording does not have (``instant_order_counter_decimals``)
    are left out. Entries whose ``name`` is not ``BASE/QUOTE`` are skipped."""
    out = []
    for p in pairs:
        name = str(p.get("name", ""))
        base, sep, quote = name.partition("/")
        if not sep or not base or not quote:
            continue
        entry: dict[str, Any] = {
            "name": name,
            "market_symbol": p.get("url_symbol"),
            "base_currency": base,
            "base_decimals": p.get("base_decimals"),
            "counter_currency": quote,
            "counter_decimals": p.get("counter_decimals"),
            "trading": p.get("trading"),
            "instant_and_market_orders": p.get("instant_and_market_orders"),
            "description": p.get("description"),
            "market_type": "SPOT",
        }
        amount, _, currency = str(p.get("minimum_order", "")).partition(" ")
        if amount and currency == quote:
            entry["minimum_order_value"] = amount
        out.append(entry)
    return out


def _bitstamp_route(rec: Recordings, req: Request) -> Reply | None:
    if req.method == "GET" and req.path.rstrip("/") == "/api/v2/markets":
        pairs = rec.store.lookup(req.host, "/api/v2/trading-pairs-info/", {})
        if pairs is None:
            return None
        return Reply.json(
            bitstamp_markets_from_pairs_info(json.loads(pairs.body)),
            source=f"{pairs.source} (derived from /api/v2/trading-pairs-info/)",
        )
    if req.method == "GET" and req.path.startswith("/api/v2/order_book/"):
        found = rec.store.lookup(req.host, req.path, {k: v for k, v in req.params.items() if k != "group"})
        if found is None:
            pair = req.path.rstrip("/").rsplit("/", 1)[-1]
            return Reply(
                404,
                json.dumps({"status": "error", "reason": "Not found"}).encode(),
                JSON,
                _note(f"no order book of {pair} is recorded"),
            )
        return Reply.recorded(found)
    return None


BITSTAMP = Venue(
    name="bitstamp",
    hosts=("www.bitstamp.net",),
    not_found=lambda req: _bitstamp_error(404, "Not found"),
    server_error=lambda status: _bitstamp_error(status, "Internal server error"),
    # "400.002 Request rejected due to exceeded rate limit." (Bitstamp API docs, Response codes)
    rate_limited=lambda: _bitstamp_error(429, "Request rejected due to exceeded rate limit.", "400.002"),
    route=_bitstamp_route,
)


# =================================================================================================
# Gate (api.gateio.ws, ccxt id "gate"). Error envelope {"label": ..., "message": ...} (Gate APIv4
# docs, "error handling"; ccxt gate handle_errors matches `label` exactly: INVALID_CURRENCY_PAIR ->
# BadSymbol, SERVER_ERROR -> ExchangeNotAvailable, TOO_MANY_REQUESTS -> RateLimitExceeded).
# =================================================================================================
def _gate_error(status: int, label: str, message: str, note: str | None = None) -> Reply:
    return Reply(
        status, json.dumps({"label": label, "message": message}).encode(), JSON, _note(note) if note else ()
    )


# Listings ccxt's gate load_markets fetches next to the recorded spot pairs; nothing of them was
# recorded, so they answer an empty list: the stand-in's Gate has spot markets only (no margin
# flags or leverage, no perpetual, delivery or option contracts).
_GATE_EMPTY = frozenset(
    {
        "/api/v4/margin/currency_pairs",
        "/api/v4/futures/usdt/contracts",
        "/api/v4/futures/btc/contracts",
        "/api/v4/delivery/usdt/contracts",
        "/api/v4/options/underlyings",
    }
)
EMPTY_NOTE = "empty listing: nothing of this kind was recorded"


def _gate_route(rec: Recordings, req: Request) -> Reply | None:
    if req.method != "GET":
        return None
    if req.path in _GATE_EMPTY:
        return Reply(200, b"[]", JSON, ((SOURCE_HEADER, "none"), (NOTE_HEADER, EMPTY_NOTE)))
    if req.path == "/api/v4/spot/order_book":
        pair = req.params.get("currency_pair")
        if not pair:
            return _gate_error(400, "MISSING_REQUIRED_PARAM", "Missing required parameter: currency_pair")
        limit = _int_param(req, "limit")
        if isinstance(limit, str):
            return _gate_error(400, "INVALID_PARAM_VALUE", f"Invalid limit: {limit}")
        limit = 10 if limit is None else limit  # Gate APIv4 docs: limit default 10
        found = rec.store.lookup(
            req.host, req.path, {"currency_pair": pair, "with_id": "true"}, frozenset({"limit"})
        )
        if found is None:
            return _gate_error(
                400,
                "INVALID_CURRENCY_PAIR",
                f"Invalid currency pair {pair}",
                note=f"no order book of {pair} is recorded",
            )
        body = json.loads(found.body)
        if req.params.get("with_id") != "true":
            body.pop("id", None)
        note = None
        if "current" not in body:
            # ccxt 4.5.90 requires `current` (response generation time, ms; Gate added it after
            # 2021): the capture's local receive time stands in for it, rounded down to the ms.
            body = {"current": int(found.ts * 1000), **body}
            note = "current = local receive time of the capture (not recorded in the 2021 response)"
        body["asks"] = body["asks"][:limit]
        body["bids"] = body["bids"][:limit]
        return Reply.json(body, source=found.source, note=note)
    return None


GATE = Venue(
    name="gate",
    hosts=("api.gateio.ws",),
    not_found=lambda req: _gate_error(404, "NOT_FOUND", f"{req.path} not found"),
    server_error=lambda status: _gate_error(status, "SERVER_ERROR", "Internal server error"),
    rate_limited=lambda: _gate_error(429, "TOO_MANY_REQUESTS", "Request Rate limit Exceeded"),
    route=_gate_route,
)


# =================================================================================================
# KuCoin (api.kucoin.com, api-futures.kucoin.com). Envelope {"code": "<6 digits>", "msg": ...}; the
# texts are those ccxt kucoin's exceptions table quotes: "Unsupported trading pair." (code 400100)
# -> BadSymbol; 404000 "Url Not Found" (KuCoin error-code table) -> NotSupported; 500000 "Internal
# Server Error" -> ExchangeNotAvailable; 429000 "Too many requests. System-level rate limit
# exceeded." -> RateLimitExceeded.
# =================================================================================================
def _kucoin_error(status: int, code: str, msg: str, note: str | None = None) -> Reply:
    return Reply(status, json.dumps({"code": code, "msg": msg}).encode(), JSON, _note(note) if note else ())


def _kucoin_route(rec: Recordings, req: Request) -> Reply | None:
    """KuCoin routes.

    * ``/api/v2/symbols`` (what ccxt 4.5.90 requests; ``options.versions`` maps ``symbols`` to v2)
      answers the recorded ``/api/v1/symbols`` body: per KuCoin's docs v2 has the same envelope and
      every v1 field with the same name and meaning, plus fields added later (``minFunds``,
      ``feeCategory``, maker/taker fee coefficients, ...) that the 2021 recording lacks; ccxt reads
      those as None.
    * ``/api/v1/market/orderbook/level2_20`` and ``level2_100`` (ccxt's public book path): the top 20
      / 100 levels of the recorded full book ``/api/v3/market/orderbook/level2``: the response shape
      is identical per KuCoin's docs (``{"code":"200000","data":{"time","sequence","bids","asks"}}``,
      levels ``[price, size]`` best first), the partial book being the full book cut at 20/100.
    * ``/api/v1/market/allTickers`` (ccxt reads taker/maker fee rates from it) and the futures
      ``/api/v1/contracts/active``: nothing recorded, answered as empty listings (no ticker fee
      rates, no futures markets).
    """
    if req.method != "GET":
        return None
    if req.host == "api.kucoin.com" and req.path == "/api/v2/symbols":
        found = rec.store.lookup(req.host, "/api/v1/symbols", req.params)
        if found is None:
            return None
        return Reply(
            200,
            found.body.encode(),
            JSON,
            ((SOURCE_HEADER, f"{found.source} (recorded as /api/v1/symbols)"),),
        )
    if req.host == "api.kucoin.com" and req.path == "/api/v1/market/allTickers":
        symbols = rec.store.lookup(req.host, "/api/v1/symbols", {})
        data: dict[str, Any] = {"ticker": []}
        if symbols is not None:
            data = {"time": int(symbols.ts * 1000), "ticker": []}
        return Reply(
            200,
            json.dumps({"code": "200000", "data": data}).encode(),
            JSON,
            ((SOURCE_HEADER, "none"), (NOTE_HEADER, EMPTY_NOTE)),
        )
    if req.host == "api-futures.kucoin.com" and req.path == "/api/v1/contracts/active":
        return Reply(
            200, b'{"code":"200000","data":[]}', JSON, ((SOURCE_HEADER, "none"), (NOTE_HEADER, EMPTY_NOTE))
        )
    if req.host == "api.kucoin.com" and req.path in (
        "/api/v1/market/orderbook/level2_20",
        "/api/v1/market/orderbook/level2_100",
    ):
        depth = 20 if req.path.endswith("_20") else 100
        symbol = req.params.get("symbol")
        if not symbol:
            return _kucoin_error(400, "400100", "symbol is required")
        found = rec.store.lookup(req.host, "/api/v3/market/orderbook/level2", {"symbol": symbol})
        if found is None:
            return _kucoin_error(
                400, "400100", "Unsupported trading pair.", note=f"no order book of {symbol} is recorded"
            )
        body = json.loads(found.body)
        data = dict(body["data"])
        data["bids"] = data["bids"][:depth]
        data["asks"] = data["asks"][:depth]
        return Reply.json({**body, "data": data}, source=f"{found.source} (recorded full book, top {depth})")
    return None


KUCOIN = Venue(
    name="kucoin",
    hosts=("api.kucoin.com", "api-futures.kucoin.com"),
    not_found=lambda req: _kucoin_error(404, "404000", "Url Not Found"),
    server_error=lambda status: _kucoin_error(status, "500000", "Internal Server Error"),
    rate_limited=lambda: _kucoin_error(429, "429000", "Too many requests. System-level rate limit exceeded."),
    route=_kucoin_route,
)


# =================================================================================================
# Venues served at their recorded paths only (ccxt 4.5.90 may call newer endpoints; those get the
# venue's not-found shape).
# =================================================================================================
def _j(status: int, obj: Any) -> Reply:
    return Reply(status, json.dumps(obj).encode(), JSON)


KRAKEN = Venue(
    # Kraken answers errors with HTTP 200 and {"error": ["<category>:<message>"]} (Kraken REST docs).
    name="kraken",
    hosts=("api.kraken.com",),
    not_found=lambda req: _j(200, {"error": ["EGeneral:Unknown method"]}),
    server_error=lambda status: _j(status, {"error": ["EService:Unavailable"]}),
    rate_limited=lambda: _j(429, {"error": ["EAPI:Rate limit exceeded"]}),
)
BYBIT = Venue(
    # v5 envelope {"retCode", "retMsg", "result", "retExtInfo"}; 10017 "Request path not found or
    # request method is invalid", 10016 "Service not available.", 10006 "Too many visits" (Bybit
    # error-code table).
    name="bybit",
    hosts=("api.bybit.com",),
    not_found=lambda req: _j(
        404,
        {
            "retCode": 10017,
            "retMsg": "Request path not found or request method is invalid",
            "result": {},
            "retExtInfo": {},
        },
    ),
    server_error=lambda status: _j(
        status, {"retCode": 10016, "retMsg": "Service not available.", "result": {}, "retExtInfo": {}}
    ),
    rate_limited=lambda: _j(
        429, {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}}
    ),
)
OKX = Venue(
    # {"code": "<n>", "msg", "data": []}; 51001 "Instrument ID does not exist" (ccxt okx: BadSymbol),
    # 50001 service unavailable, 50011 rate limit (OKX error-code table).
    name="okx",
    hosts=("www.okx.com",),
    not_found=lambda req: _j(
        200 if "instId" in req.params else 404,
        {"code": "51001", "msg": "Instrument ID does not exist", "data": []},
    ),
    server_error=lambda status: _j(
        status,
        {"code": "50001", "msg": "Service temporarily unavailable. Please try again later.", "data": []},
    ),
    rate_limited=lambda: _j(429, {"code": "50011", "msg": "Too Many Requests", "data": []}),
)
GEMINI = Venue(
    # {"result": "error", "reason": <reason>, "message": <text>} (Gemini REST docs, error codes:
    # EndpointNotFound, System, RateLimit).
    name="gemini",
    hosts=("api.gemini.com",),
    not_found=lambda req: _j(
        404,
        {
            "result": "error",
            "reason": "EndpointNotFound",
            "message": f"API entry point `{req.path}` not found",
        },
    ),
    server_error=lambda status: _j(
        status, {"result": "error", "reason": "System", "message": "Internal server error"}
    ),
    rate_limited=lambda: _j(
        429, {"result": "error", "reason": "RateLimit", "message": "Requests were made too frequently."}
    ),
)
BITFINEX = Venue(
    # ["error", <code>, <text>] (Bitfinex v2 docs, "Errors": 10020 request error, 11010 rate limit).
    name="bitfinex",
    hosts=("api-pub.bitfinex.com",),
    not_found=lambda req: _j(404, ["error", 10020, "request: invalid"]),
    server_error=lambda status: _j(status, ["error", 10000, "unknown error"]),
    rate_limited=lambda: _j(429, ["error", 11010, "ratelimit: error"]),
)
COINBASE = Venue(
    # {"message": <text>} (Coinbase Exchange docs, errors: 404 "NotFound").
    name="coinbase",
    hosts=("api.pro.coinbase.com", "api.exchange.coinbase.com"),
    not_found=lambda req: _j(404, {"message": "NotFound"}),
    server_error=lambda status: _j(status, {"message": "Internal server error"}),
    rate_limited=lambda: _j(429, {"message": "Public rate limit exceeded"}),
)

VENUES: tuple[Venue, ...] = (BINANCE, BITSTAMP, GATE, KUCOIN, KRAKEN, BYBIT, OKX, GEMINI, BITFINEX, COINBASE)
VENUE_BY_HOST: dict[str, Venue] = {h: v for v in VENUES for h in v.hosts}


def unknown_host(req: Request) -> Reply:
    """A host the stand-in knows no venue for: a plain 404 saying so."""
    return Reply(404, f"rest-replay: no venue and no recordings for host {req.host}".encode(), "text/plain")
