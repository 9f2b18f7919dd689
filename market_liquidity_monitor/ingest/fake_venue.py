"""A loopback fake Binance: real WebSocket + REST protocol, recorded frames, faults on demand.

``FakeBinanceVenue`` serves, on one ``127.0.0.1`` port (``websockets.serve`` answers plain HTTP
requests through ``process_request``):

- WebSocket ``/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/...`` (combined streams,
  frames ``{"stream":..,"data":..}``) and ``/ws/<stream>[/<stream>...]`` (raw payloads), plus the
  ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS`` methods; protocol pings every
  ``ping_interval_s`` (Binance: 20 s);
- REST ``GET /api/v3/depth?symbol=BTCUSDT&limit=1000`` (any path ending in ``/depth``) ->
  ``{"lastUpdateId":..,"bids":[[price,qty],..],"asks":..}`` with ``X-MBX-USED-WEIGHT-1M``; weight
  per the Binance table, and a per-minute weight budget answered with HTTP 429 + ``Retry-After``
  when exceeded (and 418 for a client that keeps calling while told to wait).

The stream is a recording (``RawRecord``s, e.g. the first N lines of
``hftbacktest/spot/btcusdt_20240808.gz``) played as one market: every connected client gets the
same frames from the current position (a new connection joins the live stream, like the venue).
Production is paced (``speed`` x recorded time, or ``max_rate_per_s``) or as fast as the slowest
client reads. While nobody is connected the market does not wait: the next client to join after an
absence starts ``frames_missed_on_rejoin`` frames later.

The depth endpoint serves a *correct* snapshot of the current position: the server keeps the true
book (the project's ``BookSync``/``L2Book``, exact ints) by applying every produced depth event to
the recorded REST snapshot — including the ones a fault kept from the clients — and renders its
levels back to decimal strings with the recording's number of decimals.

Faults (``inject(Fault.X)``), applied at the next eligible frame:

================  ==================================================================================
``DROP``          the next depth frame is not sent (a lost message)
``DUPLICATE``     the next depth frame is sent twice
``REORDER``       the next two depth frames are sent in swapped order
``GAP``           frames of every stream are withheld until ``n`` depth frames were: a sequence gap
``CORRUPT``       the next depth frame carries a corrupted price string. Binance has no checksum, so
                  this stands in for a checksum fault (the real CRC32 fault: ``fake_okx.FakeOkxVenue``)
``MALFORMED``     a truncated, undecodable JSON frame is sent before the next frame
``DISCONNECT``    every connection is dropped abruptly (TCP abort, no close frame)
``STALL``         connections stay open and answer/send pings, but get no more data
``SHUTDOWN``      Binance ``{"e":"serverShutdown","E":..}`` is sent, and the connections are closed
                  ``shutdown_grace_s`` later (new connections are served meanwhile)
``CHECKSUM``      not used here (Binance has no checksum): see ``fake_okx.FakeOkxVenue``
================  ==================================================================================

REST faults: ``slow_snapshots(delay_s, count)`` delays the next depth answers (the image is taken
when the request arrives, so it is older than the stream when it is delivered);
``rate_limit(count, retry_after_s, status=429)`` answers the next depth requests with 429/418.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.sync import BookSync
from market_liquidity_monitor.domain.events import L2Delta
from market_liquidity_monitor.ingest.replay import RawRecord
from market_liquidity_monitor.venues.registry import AdapterRegistry

log = logging.getLogger(__name__)


class Fault(StrEnum):
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    GAP = "gap"
    CORRUPT = "corrupt"
    MALFORMED = "malformed"
    DISCONNECT = "disconnect"
    STALL = "stall"
    SHUTDOWN = "server_shutdown"
    CHECKSUM = "checksum"  # checksum venues only (FakeOkxVenue): the next book update's checksum is wrong


_DEPTH_FAULTS = frozenset({Fault.DROP, Fault.DUPLICATE, Fault.REORDER, Fault.CORRUPT})


@dataclass(slots=True)
class _Frame:
    ts_ns: int
    text: str  # the recorded frame, sent as is on combined streams
    stream: str
    venue_symbol: str | None
    delta: L2Delta | None  # parsed depth event (None for tickers, trades)
    data_text: str | None = None  # raw-stream payload, rendered on first use


@dataclass(slots=True)
class _Client:
    conn: ServerConnection
    streams: set[str]
    combined: bool
    queue: asyncio.Queue
    active: bool = True
    sent: int = 0


@dataclass(slots=True)
class FakeVenueStats:
    connections: int = 0
    frames_produced: int = 0
    frames_sent: int = 0
    frames_withheld: int = 0  # produced but kept from clients by a fault or an absence
    faults_applied: list[str] = field(default_factory=list)
    depth_requests: int = 0
    depth_served: int = 0
    rate_limited_responses: int = 0
    slow_consumers_dropped: int = 0
    client_messages: list[tuple[float, str]] = field(default_factory=list)  # (monotonic s, text)


def render_scaled(value: int, decimals: int) -> str:
    """A scaled int back to the wire's decimal string: ``render_scaled(6183763000000, 8) == "61837.63000000"``."""
    if not decimals:
        return str(value)
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


class FakeBinanceVenue:
    """See the module docstring. Use ``async with FakeBinanceVenue(records) as venue:`` (or
    ``start()``/``stop()``), point a client at ``venue.ws_url`` and ``venue.rest_url``.

    Args:
        records: recorded ``RawRecord``s of one Binance market (``ws`` frames and ``rest``
            snapshots with their ``venue_symbol``), e.g. from ``read_hftbacktest``.
        venue: the ccxt venue id of the recording (adapter, weights, sync rule).
        speed: pace as ``speed`` x recorded time (``None``: as fast as clients read).
        max_rate_per_s: cap on frames per second (applied after ``speed``).
        frames_missed_on_rejoin: frames skipped when a client joins after nobody was connected.
        slow_consumer_timeout_s: a client whose queue stays full this long is disconnected.
        autostart: start producing as soon as a client connects (else call ``resume()``).
    """

    def __init__(
        self,
        records: Iterable[RawRecord],
        *,
        venue: str = "binance",
        speed: float | None = None,
        max_rate_per_s: float | None = None,
        frames_missed_on_rejoin: int = 30,
        ping_interval_s: float | None = 20.0,
        weight_limit_per_min: int = 6000,
        shutdown_grace_s: float = 0.5,
        queue_size: int = 256,
        slow_consumer_timeout_s: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
        autostart: bool = True,
    ):
        self.venue = venue
        self.adapter = AdapterRegistry()(venue)
        self.speed = speed
        self.max_rate_per_s = max_rate_per_s
        self.frames_missed_on_rejoin = frames_missed_on_rejoin
        self.ping_interval_s = ping_interval_s
        self.weight_limit_per_min = weight_limit_per_min
        self.shutdown_grace_s = shutdown_grace_s
        self.queue_size = queue_size
        self.slow_consumer_timeout_s = slow_consumer_timeout_s
        self.host = host
        self.port = port
        self.frames: list[_Frame] = []
        self.truth: dict[str, BookSync] = {}  # venue symbol -> true book
        self._load(records)
        self.position = 0  # frames produced so far
        self.stats = FakeVenueStats()
        self._faults: deque[tuple[Fault, int]] = deque()
        self._held: _Frame | None = None  # REORDER: the first frame of the swapped pair
        self._withhold = 0  # GAP: depth frames still to withhold
        self._clients: list[_Client] = []
        self._had_clients = False
        self._joined = asyncio.Event()
        self._running = asyncio.Event()
        if autostart:
            self._running.set()
        self._slow: deque[float] = deque()
        self._limited: deque[tuple[int, float]] = deque()
        self._weight_window = (0, 0)  # (minute, used weight)
        self._banned_until = 0.0
        self._server: Server | None = None
        self._producer: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.done = asyncio.Event()

    # ------------------------------------------------------------------------------ loading

    def _load(self, records: Iterable[RawRecord]) -> None:
        adapter = self.adapter
        snapshots: dict[str, RawRecord] = {}
        for rec in records:
            if rec.kind == "rest":
                if rec.venue_symbol and rec.venue_symbol not in snapshots:
                    snapshots[rec.venue_symbol] = rec
                continue
            if rec.kind != "ws":
                continue
            text = rec.payload.decode() if isinstance(rec.payload, bytes) else rec.payload
            msg = orjson.loads(text)
            stream = msg.get("stream", "")
            delta = None
            vs = None
            for ev in adapter.parse_message(msg, rec.ts_recv_ns):
                if isinstance(ev, L2Delta):
                    delta = ev
                vs = adapter.venue_symbol(ev.instrument.symbol)
            self.frames.append(_Frame(rec.ts_recv_ns, text, stream, vs, delta))
        if not snapshots:
            raise ValueError("the records hold no REST depth snapshot: the fake venue cannot serve /depth")
        for vs, rec in snapshots.items():
            body = orjson.loads(rec.payload)
            snap = adapter.parse_snapshot(body, vs, rec.ts_recv_ns)
            sync = BookSync(L2Book(snap.instrument), adapter.sequence_rule)
            sync.on_snapshot(snap)
            self.truth[vs] = sync

    @property
    def final_update_id(self) -> dict[str, int | None]:
        """Update id of each true book after the whole recording (what a correct client ends at)."""
        out = {}
        for vs, sync in self.truth.items():
            last = max(
                (f.delta.last_sequence for f in self.frames if f.delta and f.venue_symbol == vs), default=None
            )
            out[vs] = max(last or 0, sync.book.sequence or 0)
        return out

    def truth_book(self, venue_symbol: str | None = None) -> L2Book:
        vs = venue_symbol or next(iter(self.truth))
        return self.truth[vs].book

    # ------------------------------------------------------------------------------- control

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeBinanceVenue:
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=self.ping_interval_s,
            ping_timeout=None,
            compression=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._producer = asyncio.create_task(self._produce(), name="fake-venue:producer")
        log.info("fake %s venue on %s (%d frames)", self.venue, self.ws_url, len(self.frames))
        return self

    async def stop(self) -> None:
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()

    async def __aenter__(self) -> FakeBinanceVenue:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def inject(self, fault: Fault | str, n: int = 1) -> None:
        """Queue a fault for the next eligible frame; ``n`` = depth frames withheld for ``GAP``."""
        self._faults.append((Fault(fault), n))

    def slow_snapshots(self, delay_s: float, count: int = 1) -> None:
        """Delay the next ``count`` depth answers by ``delay_s`` (image taken on arrival)."""
        self._slow.extend([delay_s] * count)

    def rate_limit(self, count: int = 1, retry_after_s: float = 1.0, status: int = 429) -> None:
        """Answer the next ``count`` depth requests with ``status`` (429 or 418) and ``Retry-After``."""
        self._limited.extend([(status, retry_after_s)] * count)

    @property
    def active_clients(self) -> int:
        return sum(1 for c in self._clients if c.active)

    # ------------------------------------------------------------------------------ producing

    async def _produce(self) -> None:
        frames = self.frames
        next_t = None
        prev_ts = None
        try:
            while self.position < len(frames):
                await self._running.wait()
                if not self.active_clients:
                    self._joined.clear()
                    await self._joined.wait()
                    if self._had_clients and self.frames_missed_on_rejoin:
                        # The market moved on while nobody listened.
                        skip = min(self.frames_missed_on_rejoin, len(frames) - self.position)
                        for f in frames[self.position : self.position + skip]:
                            self._advance_truth(f)
                        self.position += skip
                        self.stats.frames_withheld += skip
                        next_t = None
                        continue
                    self._had_clients = True
                f = frames[self.position]
                # Pacing: recorded time x speed, then the rate cap; sleep only when ahead by > 1 ms.
                now = time.monotonic()
                if next_t is None:
                    next_t = now
                else:
                    step = 0.0
                    if self.speed and prev_ts is not None:
                        step = max(0.0, (f.ts_ns - prev_ts) / 1e9 / self.speed)
                    if self.max_rate_per_s:
                        step = max(step, 1.0 / self.max_rate_per_s)
                    next_t = max(next_t + step, now - 0.05)
                    if next_t - now > 0.001:
                        await asyncio.sleep(next_t - now)
                prev_ts = f.ts_ns
                self.position += 1
                self._advance_truth(f)
                await self._emit(f)
            self.done.set()
            log.info("fake %s venue: all %d frames produced", self.venue, len(frames))
        except asyncio.CancelledError:
            raise

    def _advance_truth(self, f: _Frame) -> None:
        self.stats.frames_produced += 1
        if f.delta is not None and f.venue_symbol in self.truth:
            self.truth[f.venue_symbol].on_delta(f.delta)

    async def _emit(self, f: _Frame) -> None:
        out = [f]
        if self._withhold:
            if f.delta is not None:
                self._withhold -= 1
            self.stats.frames_withheld += 1
            return
        if self._held is not None and f.delta is not None:
            out = [f, self._held]  # REORDER: the later frame first
            self._held = None
        elif self._faults:
            fault, n = self._faults[0]
            if fault in _DEPTH_FAULTS and (
                f.delta is None or (fault is Fault.CORRUPT and not (f.delta.bids or f.delta.asks))
            ):
                pass  # wait for a depth frame
            else:
                self._faults.popleft()
                self.stats.faults_applied.append(fault.value)
                log.info("fake venue: fault %s at frame %d", fault.value, self.position)
                if fault is Fault.DROP:
                    self.stats.frames_withheld += 1
                    return
                if fault is Fault.DUPLICATE:
                    out = [f, f]
                elif fault is Fault.REORDER:
                    self._held = f
                    return
                elif fault is Fault.GAP:
                    # Withhold every frame until ``n`` depth frames have been withheld.
                    self._withhold = max(1, n)
                    return await self._emit(f)
                elif fault is Fault.CORRUPT:
                    out = [_corrupted(f)]
                elif fault is Fault.MALFORMED:
                    cut = f.text[: max(1, len(f.text) // 2)]
                    out = [_Frame(f.ts_ns, cut, f.stream, f.venue_symbol, None), f]
                elif fault is Fault.DISCONNECT:
                    for c in list(self._clients):
                        self._drop_client(c, abort=True)
                    self.stats.frames_withheld += 1
                    return
                elif fault is Fault.STALL:
                    for c in self._clients:
                        c.active = False  # kept open (pings flow), no more data
                    self.stats.frames_withheld += 1
                    return
                elif fault is Fault.SHUTDOWN:
                    notice = orjson.dumps({"e": "serverShutdown", "E": f.ts_ns // 1_000_000}).decode()
                    for c in list(self._clients):
                        if c.active:
                            await c.queue.put(notice)
                            self._spawn(self._close_later(c, self.shutdown_grace_s))
        for c in list(self._clients):
            if not c.active:
                continue
            for fr in out:
                if fr.stream in c.streams and not await self._put(
                    c, fr.text if c.combined else _data_text(fr)
                ):
                    break

    async def _put(self, c: _Client, text: str) -> bool:
        """Queue a frame for a client; one that reads nothing for ``slow_consumer_timeout_s`` is
        disconnected (venues drop slow consumers, e.g. Coinbase ``ErrSlowConsume``) so it cannot
        stall the market for everyone."""
        try:
            c.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            pass
        try:
            async with asyncio.timeout(self.slow_consumer_timeout_s):
                await c.queue.put(text)
            return True
        except TimeoutError:
            self.stats.slow_consumers_dropped += 1
            log.warning(
                "fake venue: dropping a client that read nothing for %.1f s", self.slow_consumer_timeout_s
            )
            self._drop_client(c, abort=True)
            return False

    # ----------------------------------------------------------------------------- WebSocket

    async def _handler(self, conn: ServerConnection) -> None:
        parts = urlsplit(conn.request.path)
        if parts.path.rstrip("/") == "/stream":
            streams = set(filter(None, (parse_qs(parts.query).get("streams") or [""])[0].split("/")))
            combined = True
        elif parts.path.startswith("/ws"):
            streams = set(filter(None, parts.path[3:].strip("/").split("/")))
            combined = False
        else:
            await conn.close(1008, "unknown path")
            return
        client = _Client(conn, streams, combined, asyncio.Queue(self.queue_size))
        self._clients.append(client)
        self.stats.connections += 1
        self._joined.set()
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for msg in conn:
                self._on_client_message(client, msg)
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._drop_client(client, abort=False)

    async def _send_loop(self, c: _Client) -> None:
        try:
            while True:
                text = await c.queue.get()
                await c.conn.send(text)
                c.sent += 1
                self.stats.frames_sent += 1
        except ConnectionClosed:
            pass

    def _on_client_message(self, c: _Client, msg: str | bytes) -> None:
        text = msg.decode() if isinstance(msg, bytes) else msg
        self.stats.client_messages.append((time.monotonic(), text[:200]))
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(req, dict) or "method" not in req:
            return
        method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
        if method == "SUBSCRIBE":
            c.streams.update(params)
            reply = {"result": None, "id": rid}
        elif method == "UNSUBSCRIBE":
            c.streams.difference_update(params)
            reply = {"result": None, "id": rid}
        elif method == "LIST_SUBSCRIPTIONS":
            reply = {"result": sorted(c.streams), "id": rid}
        else:
            reply = {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": rid}
        with contextlib.suppress(asyncio.QueueFull):
            c.queue.put_nowait(orjson.dumps(reply).decode())

    def _drop_client(self, c: _Client, abort: bool) -> None:
        c.active = False
        if c in self._clients:
            self._clients.remove(c)
        while not c.queue.empty():  # unblock a producer waiting on this queue
            c.queue.get_nowait()
        if abort and c.conn.transport is not None:
            c.conn.transport.abort()

    async def _close_later(self, c: _Client, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._drop_client(c, abort=False)
        with contextlib.suppress(Exception):
            await c.conn.close(1001, "server shutdown")

    def _spawn(self, coro) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------------------------- REST

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        parts = urlsplit(request.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if not parts.path.endswith("/depth"):
            return _json(404, {"code": -1000, "msg": f"fake venue: unknown endpoint {parts.path}"})
        self.stats.depth_requests += 1
        now = time.time()
        if now < self._banned_until:
            self.stats.rate_limited_responses += 1
            return _json(
                418,
                {"code": -1003, "msg": "Way too many requests; IP banned."},
                {"Retry-After": str(max(1, round(self._banned_until - now)))},
            )
        if self._limited:
            status, retry = self._limited.popleft()
            self.stats.rate_limited_responses += 1
            if status == 418:
                self._banned_until = now + retry
            return _json(
                status, {"code": -1003, "msg": "Too many requests."}, {"Retry-After": _fmt_retry(retry)}
            )
        vs = (q.get("symbol") or "").upper()
        sync = self.truth.get(vs)
        if sync is None:
            return _json(400, {"code": -1121, "msg": "Invalid symbol."})
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 5000:
            return _json(400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
        weight = self.adapter.snapshot_request(self.adapter.unified_symbol(vs), limit).weight
        minute = int(now // 60)
        m, used = self._weight_window
        used = (used if m == minute else 0) + weight
        self._weight_window = (minute, used)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if used > self.weight_limit_per_min:
            self.stats.rate_limited_responses += 1
            return _json(
                429,
                {"code": -1003, "msg": "Too much request weight used."},
                {**headers, "Retry-After": str(max(1, int(60 - now % 60)))},
            )
        body = self._depth_body(sync, limit)  # the image at arrival time
        if self._slow:
            await asyncio.sleep(self._slow.popleft())
        self.stats.depth_served += 1
        return _raw_json(200, body, headers)

    def _depth_body(self, sync: BookSync, limit: int) -> bytes:
        book = sync.book
        bids, asks = book.levels_scaled(limit)
        pd, sd = book.price_decimals or 0, book.size_decimals or 0
        return orjson.dumps(
            {
                "lastUpdateId": book.sequence,
                "bids": [[render_scaled(p, pd), render_scaled(s, sd)] for p, s in bids],
                "asks": [[render_scaled(p, pd), render_scaled(s, sd)] for p, s in asks],
            }
        )


def _corrupted(f: _Frame) -> _Frame:
    """The frame with its first price string made unparseable (``61837.63`` -> ``6183?.63``)."""
    msg = orjson.loads(f.text)
    d = msg["data"]
    side = d["b"] if d.get("b") else d["a"]
    p = side[0][0]
    side[0][0] = p[:3] + "?" + p[4:]
    return _Frame(f.ts_ns, orjson.dumps(msg).decode(), f.stream, f.venue_symbol, None)


def _data_text(f: _Frame) -> str:
    if f.data_text is None:
        try:
            f.data_text = orjson.dumps(orjson.loads(f.text)["data"]).decode()
        except (orjson.JSONDecodeError, KeyError, TypeError):
            f.data_text = f.text
    return f.data_text


def _fmt_retry(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _raw_json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    h = Headers(
        [("Connection", "close"), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    for k, v in (headers or {}).items():
        h[k] = v
    return Response(status, HTTPStatus(status).phrase, h, body)


def _json(status: int, obj, headers: dict[str, str] | None = None) -> Response:
    return _raw_json(status, orjson.dumps(obj), headers)
