"""A loopback HTTP server that replays recorded venue REST responses.

It serves the HTTP responses of cryptofeed captures (``../shared/data/cryptofeed/*.0.gz`` and
``*.http.*.gz``; lines ``<request url> -> <ts>: <body>``) so a real ccxt client can load markets and
fetch order books offline: point the client at it with ``point_exchange_at(exchange, base_url)``
(or ``settings.data_engine.rest_base_url``) and ``https://api.binance.com/api/v3/depth?symbol=X`` is
requested as ``<base_url>/api.binance.com/api/v3/depth?symbol=X``.

Matching: same host and path, and every recorded query parameter except ``limit`` equal to the
request's (so ``limit=100`` is answered with the recorded 1000-level snapshot). Unknown requests get
HTTP 404 with a JSON error.

Faults for reliability tests: ``fail_status`` answers every request with that HTTP status,
``delay_s`` delays every answer; ``requests`` logs what was asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from market_liquidity_monitor.ingest.replay import read_cryptofeed

_IGNORED_PARAMS = frozenset({"limit"})


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    host: str
    path: str
    params: tuple[tuple[str, str], ...]
    ts: float
    body: str


def read_capture(path: Path) -> list[RecordedResponse]:
    """The HTTP responses of one cryptofeed capture file (gzip or plain text), read by the replay
    reader (``ingest.replay.read_cryptofeed``: its ``rest`` records carry the request URL)."""
    out = []
    for rec in read_cryptofeed(path, venue=""):
        if rec.kind != "rest" or "://" not in rec.source:
            continue
        parts = urlsplit(rec.source)
        out.append(
            RecordedResponse(
                host=parts.netloc,
                path=parts.path,
                params=tuple(parse_qsl(parts.query)),
                ts=rec.ts_recv_ns / 1e9,
                body=rec.payload.decode(),
            )
        )
    return out


class RestReplayServer:
    """Serve recorded REST responses on ``127.0.0.1``. Use as an async context manager or
    ``start()``/``stop()``; ``start()`` again after ``stop()`` re-binds the same port."""

    def __init__(self, captures: Iterable[Path | RecordedResponse], host: str = "127.0.0.1", port: int = 0):
        self.responses: list[RecordedResponse] = []
        for item in captures:
            if isinstance(item, RecordedResponse):
                self.responses.append(item)
            else:
                self.responses.extend(read_capture(Path(item)))
        self.host = host
        self.port = port
        self.fail_status: int | None = None
        self.delay_s: float = 0.0
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def lookup(self, host: str, path: str, params: dict[str, str]) -> RecordedResponse | None:
        for rec in self.responses:
            if rec.host != host or rec.path != path:
                continue
            if all(params.get(k) == v for k, v in rec.params if k not in _IGNORED_PARAMS):
                return rec
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(str(request.rel_url))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_status is not None:
            return web.json_response({"code": -1, "msg": "injected fault"}, status=self.fail_status)
        host, _, path = request.path.lstrip("/").partition("/")
        rec = self.lookup(host, "/" + path, dict(request.query))
        if rec is None:
            return web.json_response(
                {"code": -1121, "msg": f"no recorded response for {request.rel_url}"}, status=404
            )
        return web.Response(text=rec.body, content_type="application/json")

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
