"""The loopback HTTP server of the REST stand-in, its fault injection and its coverage report.

See ``market_liquidity_monitor.data_engine.replay_server`` for what is served and how to use it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from market_liquidity_monitor.data_engine.rest_replay.recordings import (
    BINANCE_COINM,
    BINANCE_SPOT,
    BINANCE_USDM,
    RecordedResponse,
    Recordings,
    norm_path,
)
from market_liquidity_monitor.data_engine.rest_replay.venues import (
    VENUE_BY_HOST,
    Reply,
    Request,
    Venue,
    unknown_host,
)

log = logging.getLogger(__name__)

# A response body that is not JSON, for "the venue returned garbage" tests (an HTML error page
# served with status 200, as proxies and maintenance pages do).
DEFAULT_GARBAGE = b"<html><body><h1>Service temporarily unavailable</h1>not json \x00\xff</body></html>"


@dataclass
class Fault:
    """What to do instead of answering normally (checked in this order):

    ``delay_s`` wait before answering (any answer); ``garbage`` answer 200 with this non-JSON body;
    ``retry_after_s`` answer 429 with ``Retry-After: <ceil seconds>`` and the venue's rate-limit
    body; ``status`` answer that HTTP status with the venue's error body (its server-error shape,
    or its rate-limit shape for 429)."""

    status: int | None = None
    delay_s: float = 0.0
    retry_after_s: float | None = None
    garbage: bytes | None = None

    def active(self) -> bool:
        return bool(
            self.status is not None
            or self.delay_s
            or self.retry_after_s is not None
            or self.garbage is not None
        )


class RestReplayServer:
    """Serve recorded venue REST responses on a loopback port, in each venue's native format.

    ``RestReplayServer.from_data_dir(dir)`` serves a ``../shared/data``-layout directory (see
    ``replay_server`` for the coverage); ``RestReplayServer(captures)`` serves only the given
    cryptofeed capture files / ``RecordedResponse``s. Use as an async context manager or
    ``start()``/``stop()``; ``start()`` again after ``stop()`` re-binds the same port.

    Faults: ``fail_status``, ``delay_s``, ``retry_after_s``, ``garbage_body`` apply to every host;
    ``host_faults[host] = Fault(...)`` replaces them for one host (fail one venue while others
    answer). ``requests`` logs every request as ``/<host>/<path>?<query>``.
    """

    def __init__(
        self,
        captures: Iterable[Path | RecordedResponse] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        recordings: Recordings | None = None,
    ):
        self.recordings = recordings if recordings is not None else Recordings.from_captures(captures)
        self.host = host
        self.port = port
        self.fail_status: int | None = None
        self.delay_s: float = 0.0
        self.retry_after_s: float | None = None
        self.garbage_body: bytes | None = None
        self.host_faults: dict[str, Fault] = {}
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None

    @classmethod
    def from_data_dir(cls, data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> RestReplayServer:
        """A server over a ``../shared/data``-layout directory. Raises ``FileNotFoundError``."""
        return cls(host=host, port=port, recordings=Recordings.scan(Path(data_dir)))

    @property
    def responses(self) -> list[RecordedResponse]:
        return self.recordings.store.responses()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def lookup(self, host: str, path: str, params: dict[str, str]) -> RecordedResponse | None:
        """The newest recorded response for this host, path and query (``limit`` ignored)."""
        return self.recordings.store.lookup(host, path, params, ignore=frozenset({"limit"}))

    def fault_for(self, host: str) -> Fault:
        if host in self.host_faults:
            return self.host_faults[host]
        return Fault(self.fail_status, self.delay_s, self.retry_after_s, self.garbage_body)

    def clear_faults(self) -> None:
        self.fail_status = None
        self.delay_s = 0.0
        self.retry_after_s = None
        self.garbage_body = None
        self.host_faults.clear()

    # -- request handling ----------------------------------------------------------------------
    def answer(self, req: Request) -> Reply:
        """The normal (fault-free) answer to one request. May read recording files: call it from a
        worker thread."""
        venue = VENUE_BY_HOST.get(req.host)
        if venue is None:
            rec = self.lookup(req.host, req.path, req.params)
            return Reply.recorded(rec) if rec is not None else unknown_host(req)
        if venue.route is not None:
            reply = venue.route(self.recordings, req)
            if reply is not None:
                return reply
        rec = self.lookup(req.host, req.path, req.params) if req.method == "GET" else None
        if rec is not None:
            return Reply.recorded(rec)
        return venue.not_found(req)

    @staticmethod
    def _faulted(venue: Venue | None, fault: Fault) -> Reply | None:
        if fault.garbage is not None:
            return Reply(200, fault.garbage, "application/json")
        if fault.retry_after_s is not None:
            base = venue.rate_limited() if venue else Reply(429, b"rate limited", "text/plain")
            retry = str(max(0, math.ceil(fault.retry_after_s)))
            return Reply(429, base.body, base.content_type, (*base.headers, ("Retry-After", retry)))
        if fault.status is not None:
            if venue is None:
                return Reply(fault.status, b"injected fault", "text/plain")
            base = venue.rate_limited() if fault.status == 429 else venue.server_error(fault.status)
            return Reply(fault.status, base.body, base.content_type, base.headers)
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(str(request.rel_url))
        host, _, path = request.path.lstrip("/").partition("/")
        req = Request(host=host, path="/" + path, params=dict(request.query), method=request.method)
        fault = self.fault_for(host)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        venue = VENUE_BY_HOST.get(host)
        reply = self._faulted(venue, fault) if fault.active() else None
        if reply is None:
            try:
                reply = await asyncio.to_thread(self.answer, req)
            except Exception as exc:  # a bug or an unreadable recording: a 500, logged, never a crash
                log.exception("rest-replay: answering %s failed", request.rel_url)
                reply = venue.server_error(500) if venue else Reply(500, b"", "text/plain")
                reply = Reply(500, reply.body, reply.content_type, (("X-Replay-Error", type(exc).__name__),))
        return web.Response(
            status=reply.status,
            body=reply.body,
            headers={"Content-Type": reply.content_type, **dict(reply.headers)},
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> RestReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# -- coverage -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One served endpoint: venue, host, endpoint (``{x}`` for a path parameter), what it serves."""

    venue: str
    host: str
    endpoint: str
    serves: str


_PATH_TEMPLATES = (("/api/v2/order_book/", "{pair}/"), ("/v1/symbols/details/", "{symbol}"))
_SYMBOL_PARAMS = ("symbol", "currency_pair", "instType", "uly")


def coverage(rec: Recordings) -> list[CoverageRow]:
    """What a stand-in over ``rec`` answers from recordings, per venue and endpoint (endpoints not
    listed get the venue's not-found error). Uses only the index: no file is read."""
    rows: list[CoverageRow] = []

    def venue_of(host: str) -> str:
        v = VENUE_BY_HOST.get(host)
        return v.name if v else "?"

    # recorded responses, grouped by endpoint
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rec.store.responses():
        path, key = norm_path(r.path), None
        for prefix, tail in _PATH_TEMPLATES:
            if path.startswith(prefix):
                key = path[len(prefix) :]
                path = prefix + tail
        params = dict(r.params)
        key = key or ",".join(params[p] for p in _SYMBOL_PARAMS if p in params)
        groups.setdefault((r.host, path), [])
        if key and key not in groups[(r.host, path)]:
            groups[(r.host, path)].append(key)
    for (host, path), keys in sorted(groups.items()):
        detail = (
            f"recorded ({len(keys)}: {', '.join(sorted(keys)[:12])}{', ...' if len(keys) > 12 else ''})"
            if keys
            else "recorded"
        )
        rows.append(CoverageRow(venue_of(host), host, path, detail))

    hft_symbols: dict[str, list[str]] = {}
    for host, sym in rec.hft_files:
        hft_symbols.setdefault(host, []).append(sym)
    prefixes = {BINANCE_SPOT: "/api/v3", BINANCE_USDM: "/fapi/v1", BINANCE_COINM: "/dapi/v1"}
    for host, prefix in prefixes.items():
        syms = sorted(hft_symbols.get(host, []))
        if syms:
            rows.append(
                CoverageRow(
                    "binance", host, f"{prefix}/depth", f"hftbacktest 1000-level snapshot: {', '.join(syms)}"
                )
            )
            rows.append(
                CoverageRow("binance", host, f"{prefix}/trades", f"hftbacktest @trade: {', '.join(syms)}")
            )
        if host == BINANCE_SPOT and rec.candle_files:
            by_sym: dict[str, list[str]] = {}
            for sym, tf in rec.candle_files:
                by_sym.setdefault(sym, []).append(tf)
            text = "; ".join(f"{s} {'/'.join(rec.candle_intervals(s))}" for s in sorted(by_sym))
            rows.append(CoverageRow("binance", host, f"{prefix}/klines", f"candle files: {text}"))
            rows.append(
                CoverageRow("binance", host, f"{prefix}/time", "serverTime = end of the newest candle")
            )
        elif syms:
            rows.append(
                CoverageRow(
                    "binance", host, f"{prefix}/time", "serverTime = newest recorded trade/snapshot time"
                )
            )
        if rec.store.responses(host) or syms:
            rows.append(CoverageRow("binance", host, f"{prefix}/ping", "{}"))
    hosts = set(rec.store.hosts())
    if "www.bitstamp.net" in hosts and rec.store.lookup(
        "www.bitstamp.net", "/api/v2/trading-pairs-info/", {}
    ):
        rows.append(
            CoverageRow(
                "bitstamp", "www.bitstamp.net", "/api/v2/markets/", "derived from recorded trading-pairs-info"
            )
        )
    if "api.gateio.ws" in hosts:
        rows.append(
            CoverageRow(
                "gate", "api.gateio.ws", "margin, futures, delivery, options listings", "empty (not recorded)"
            )
        )
    if "api.kucoin.com" in hosts:
        if rec.store.lookup("api.kucoin.com", "/api/v1/symbols", {}):
            rows.append(
                CoverageRow("kucoin", "api.kucoin.com", "/api/v2/symbols", "recorded /api/v1/symbols body")
            )
        rows.append(
            CoverageRow(
                "kucoin",
                "api.kucoin.com",
                "/api/v1/market/orderbook/level2_{20,100}",
                "top of the recorded v3 full book",
            )
        )
        rows.append(
            CoverageRow("kucoin", "api.kucoin.com", "/api/v1/market/allTickers", "empty (not recorded)")
        )
        rows.append(
            CoverageRow(
                "kucoin", "api-futures.kucoin.com", "/api/v1/contracts/active", "empty (not recorded)"
            )
        )
    order = {v: i for i, v in enumerate(["binance", "bitstamp", "gate", "kucoin"])}
    rows.sort(key=lambda r: (order.get(r.venue, 9), r.venue, r.host, r.endpoint))
    return rows
