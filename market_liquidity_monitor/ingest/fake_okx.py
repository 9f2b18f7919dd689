"""A loopback fake OKX v5 public WebSocket: recorded frames, snapshots on subscribe, CRC32 faults.

``FakeOkxVenue`` serves ``ws://127.0.0.1:PORT/ws/v5/public`` speaking the OKX protocol as the
recorded capture shows it (../shared/data/cryptofeed/OKX.ws.1.0, README §4.1):

- ``{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},...]}`` -> one
  ``{"event":"subscribe","arg":{...}}`` ack per arg; a ``books`` subscription is followed by an
  ``action: snapshot`` of the **current true book** with its signed CRC32 ``checksum``
  (``venues.checksums.okx_checksum`` over the top 25 levels' original strings);
- ``{"op":"unsubscribe","args":[...]}`` -> ``{"event":"unsubscribe","arg":{...}}``; no more frames
  of that channel;
- the text ``ping`` -> ``pong`` (OKX keepalive);
- recorded ``books`` updates, ``trades`` and ``tickers`` frames go to the clients subscribed to
  their ``(channel, instId)``, byte for byte as recorded (so their checksums are OKX's own).

The true book of each instrument starts from the recorded snapshot (its original strings) and
follows every produced update, also those a fault kept from the clients; a snapshot served on
subscribe is that book, so a client that resubscribes after a checksum failure continues exactly
where the recording goes. Production is as fast as the slowest client reads, or capped at
``max_rate_per_s``; it starts when the first client subscribed to a book.

Faults (``inject(Fault.X, inst_id=...)``), applied at the next book update of ``inst_id`` (any
instrument when None):

==============  ===================================================================================
``CHECKSUM``    the update is sent with its ``checksum`` + 1 (book content intact): checksum failure
``DROP``        the update is not sent: the book diverges, the next update's checksum fails
``DISCONNECT``  every connection is aborted (TCP reset, no close frame) instead of sending it
==============  ===================================================================================

``LoopbackVenue`` holds what the push-snapshot fakes share (server lifecycle, one send queue per
client, production at a capped rate with faults, aborts, idle heartbeats); ``FakeKrakenVenue``
(``fake_kraken.py``) builds on it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from market_liquidity_monitor.ingest.fake_venue import Fault
from market_liquidity_monitor.ingest.replay import RawRecord
from market_liquidity_monitor.venues.checksums import OKX_CHECKSUM_LEVELS, okx_checksum

log = logging.getLogger(__name__)

_FAULTS = frozenset({Fault.CHECKSUM, Fault.DROP, Fault.DISCONNECT})


@dataclass(slots=True)
class _Frame:
    text: str
    key: tuple[str, str]  # (channel, instId)
    update: dict | None  # the book update's data[0] (None for trades/tickers)


@dataclass(slots=True)
class _Client:
    conn: ServerConnection
    queue: asyncio.Queue
    subs: set[tuple[str, str]] = field(default_factory=set)
    active: bool = True
    last_sent: float = 0.0  # loop time of the last frame sent (idle heartbeats)
    sent: int = 0  # frames sent on this connection


@dataclass(slots=True)
class FakeVenueStats:
    connections: int = 0
    frames_produced: int = 0
    frames_sent: int = 0  # every frame sent: data, acks, snapshots, pongs, heartbeats
    snapshots_served: int = 0
    subscribes: int = 0
    unsubscribes: int = 0
    pings: int = 0
    heartbeats: int = 0
    faults_applied: list[str] = field(default_factory=list)


class WireBook:
    """A book as original wire levels, keyed by exact price (``Decimal``); ``_keep`` picks what
    of a ``[price, size, ...]`` level is kept (here all of it)."""

    _keep: Callable[[Sequence[str]], Sequence[str]] = list

    def __init__(self) -> None:
        self.bids: dict[Decimal, Sequence[str]] = {}
        self.asks: dict[Decimal, Sequence[str]] = {}

    def apply(self, data: dict) -> None:
        """Apply ``data["bids"]``/``data["asks"]`` levels in array order (size 0 deletes)."""
        for side, levels in ((self.bids, data.get("bids", ())), (self.asks, data.get("asks", ()))):
            for lv in levels:
                p = Decimal(lv[0])
                if Decimal(lv[1]) == 0:
                    side.pop(p, None)
                else:
                    side[p] = self._keep(lv)

    def levels(self) -> tuple[list, list]:
        """Bids high -> low, asks low -> high, original strings."""
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)]
        asks = [self.asks[p] for p in sorted(self.asks)]
        return bids, asks


class _TrueBook(WireBook):
    """One OKX instrument's book as original wire levels, with the ``ts`` of its last update."""

    def __init__(self, data: dict):
        super().__init__()
        self.ts = data.get("ts", "0")
        self.apply(data)

    def apply(self, data: dict) -> None:
        super().apply(data)
        self.ts = data.get("ts", self.ts)

    def snapshot_data(self) -> dict:
        bids, asks = self.levels()
        n = OKX_CHECKSUM_LEVELS
        checksum = okx_checksum([lv[:2] for lv in bids[:n]], [lv[:2] for lv in asks[:n]])
        return {"asks": asks, "bids": bids, "ts": self.ts, "checksum": checksum}


class LoopbackVenue:
    """Shared machinery of the loopback venues that push a book snapshot on subscribe.

    A subclass loads ``self.frames`` (``_Frame``: wire text, ``(channel, instrument)`` key, and for
    a book update the payload its true book applies) and ``self.truth`` (instrument -> true book
    with ``apply(update)``), sets ``path`` and speaks its protocol in ``_on_message`` (and
    ``_on_open``). Here: the server, one send queue per client, production of the frames at most
    ``max_rate_per_s`` (starting when ``_subscribed`` is set), faults (``_queue_fault``; a fault
    hits the next book update of its instrument that ``_eligible`` accepts, after ``skip`` such
    updates; ``_corrupt`` renders ``CHECKSUM``), aborts, and ``heartbeat_text`` after
    ``heartbeat_s`` without a frame to a client (None: no heartbeats).
    """

    path = "/"
    heartbeat_text: str | None = None

    def __init__(
        self,
        *,
        max_rate_per_s: float | None,
        queue_size: int,
        host: str,
        port: int,
        heartbeat_s: float | None = None,
    ):
        self.max_rate_per_s = max_rate_per_s
        self.queue_size = queue_size
        self.host = host
        self.port = port
        self.heartbeat_s = heartbeat_s
        self.frames: list[_Frame] = []
        self.truth: dict = {}
        self.position = 0
        self.stats = FakeVenueStats()
        self._faults: deque[list] = deque()  # [fault, instrument | None, updates still to skip]
        self._clients: list[_Client] = []
        self._subscribed = asyncio.Event()
        self._server: Server | None = None
        self._tasks: list[asyncio.Task] = []
        self.done = asyncio.Event()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"

    def _queue_fault(self, fault: Fault | str, inst: str | None, skip: int = 0) -> None:
        fault = Fault(fault)
        if fault not in _FAULTS:
            raise ValueError(f"{fault.value}: this fake venue supports {sorted(f.value for f in _FAULTS)}")
        if inst is not None and inst not in self.truth:
            raise ValueError(f"{inst!r} is not in the recording; valid: {sorted(self.truth)}")
        if skip < 0:
            raise ValueError(f"skip must be >= 0, got {skip}")
        self._faults.append([fault, inst, skip])

    async def start(self):
        self._server = await serve(self._handler, self.host, self.port, ping_interval=None, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        name = type(self).__name__
        self._tasks.append(asyncio.create_task(self._produce(), name=f"{name}:producer"))
        if self.heartbeat_s and self.heartbeat_text:
            self._tasks.append(asyncio.create_task(self._heartbeats(), name=f"{name}:heartbeat"))
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # ---------------------------------------------------------------------------- producing

    async def _produce(self) -> None:
        await self._subscribed.wait()
        step = 1.0 / self.max_rate_per_s if self.max_rate_per_s else 0.0
        for f in self.frames:
            if step:
                await asyncio.sleep(step)
            self.position += 1
            self.stats.frames_produced += 1
            text = f.text
            if f.update is not None:
                fault = self._take_fault(f)
                self.truth[f.key[1]].apply(f.update)
                if fault is Fault.DROP:
                    continue
                if fault is Fault.DISCONNECT:
                    for c in list(self._clients):
                        self._drop(c, abort=True)
                    continue
                if fault is Fault.CHECKSUM:
                    text = self._corrupt(f)
            for c in list(self._clients):
                if c.active and f.key in c.subs:
                    await c.queue.put(text)
        self.done.set()

    def _eligible(self, f: _Frame, fault: Fault) -> bool:
        """May the queued ``fault`` hit this book update? (every update here)"""
        return True

    def _corrupt(self, f: _Frame) -> str:
        raise NotImplementedError

    def _take_fault(self, f: _Frame) -> Fault | None:
        if not self._faults:
            return None
        pending = self._faults[0]
        inst = f.key[1]
        if pending[1] not in (None, inst) or not self._eligible(f, pending[0]):
            return None
        if pending[2] > 0:
            pending[2] -= 1
            return None
        self._faults.popleft()
        fault = pending[0]
        self.stats.faults_applied.append(fault.value)
        log.info("%s: fault %s on %s at frame %d", type(self).__name__, fault.value, inst, self.position)
        return fault

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat_s / 4)
            now = loop.time()
            for c in list(self._clients):
                if c.active and c.queue.empty() and now - c.last_sent >= self.heartbeat_s:
                    c.last_sent = now
                    self.stats.heartbeats += 1
                    await c.queue.put(self.heartbeat_text)

    # ---------------------------------------------------------------------------- WebSocket

    async def _handler(self, conn: ServerConnection) -> None:
        if conn.request.path.rstrip("/") != self.path.rstrip("/"):
            await conn.close(1008, "unknown path")
            return
        client = _Client(conn, asyncio.Queue(self.queue_size), last_sent=asyncio.get_running_loop().time())
        self._clients.append(client)
        self.stats.connections += 1
        sender = asyncio.create_task(self._send_loop(client))
        try:
            await self._on_open(client)
            async for msg in conn:
                await self._on_message(client, msg if isinstance(msg, str) else msg.decode())
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._drop(client, abort=False)

    async def _send_loop(self, c: _Client) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                text = await c.queue.get()
                await c.conn.send(text)
                c.last_sent = loop.time()
                c.sent += 1
                self.stats.frames_sent += 1
        except ConnectionClosed:
            pass

    async def _on_open(self, c: _Client) -> None:
        """Frames a venue sends on connect (none here)."""

    async def _on_message(self, c: _Client, text: str) -> None:
        raise NotImplementedError

    def _drop(self, c: _Client, abort: bool) -> None:
        c.active = False
        if c in self._clients:
            self._clients.remove(c)
        while not c.queue.empty():
            c.queue.get_nowait()
        if abort and c.conn.transport is not None:
            c.conn.transport.abort()


class FakeOkxVenue(LoopbackVenue):
    """See the module docstring. ``async with FakeOkxVenue(records) as venue:``; point the client's
    ``ws_url`` at ``venue.ws_url``. ``records``: ``ws`` records of an OKX capture (``read_cryptofeed``
    of ``cryptofeed/OKX.ws.1.0.gz``). Raises ``ValueError`` when the records hold no book snapshot."""

    path = "/ws/v5/public"

    def __init__(
        self,
        records: Iterable[RawRecord],
        *,
        max_rate_per_s: float | None = None,
        queue_size: int = 1024,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(max_rate_per_s=max_rate_per_s, queue_size=queue_size, host=host, port=port)
        self.truth: dict[str, _TrueBook] = {}
        self._load(records)

    def _load(self, records: Iterable[RawRecord]) -> None:
        for rec in records:
            if rec.kind != "ws":
                continue
            try:
                msg = orjson.loads(rec.payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(msg, dict) or "arg" not in msg or "data" not in msg:
                continue  # acks, pongs
            arg = msg["arg"]
            key = (arg.get("channel", ""), arg.get("instId", ""))
            text = rec.payload.decode() if isinstance(rec.payload, bytes) else rec.payload
            if key[0] == "books":
                data = msg["data"][0]
                if msg.get("action") == "snapshot":
                    if key[1] not in self.truth:
                        self.truth[key[1]] = _TrueBook(data)
                    continue  # clients get snapshots on subscribe
                if key[1] not in self.truth:
                    continue  # an update before its book's snapshot
                self.frames.append(_Frame(text, key, data))
            else:
                self.frames.append(_Frame(text, key, None))
        if not self.truth:
            raise ValueError("the records hold no OKX books snapshot: the fake venue cannot serve books")
        self._initial = {i: _TrueBook(b.snapshot_data()) for i, b in self.truth.items()}

    # ----------------------------------------------------------------------------- control

    def inject(self, fault: Fault | str, inst_id: str | None = None, *, skip: int = 0) -> None:
        """Queue ``CHECKSUM``, ``DROP`` or ``DISCONNECT`` for the next book update of ``inst_id``
        (any instrument when None), after ``skip`` of them. Raises ``ValueError`` for other faults
        or unknown instruments."""
        self._queue_fault(fault, inst_id, skip)

    def reference_levels(self, inst_id: str) -> tuple[list, list]:
        """The true book after the whole recording (original strings), replayed offline."""
        book = _TrueBook(self._initial[inst_id].snapshot_data())
        for f in self.frames:
            if f.update is not None and f.key[1] == inst_id:
                book.apply(f.update)
        return book.levels()

    def _corrupt(self, f: _Frame) -> str:
        msg = orjson.loads(f.text)
        msg["data"][0]["checksum"] = int(msg["data"][0].get("checksum") or 0) + 1
        return orjson.dumps(msg).decode()

    # ---------------------------------------------------------------------------- WebSocket

    async def _on_message(self, c: _Client, text: str) -> None:
        if text == "ping":
            self.stats.pings += 1
            await c.queue.put("pong")
            return
        try:
            req = orjson.loads(text)
            op, args = req["op"], req["args"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await c.queue.put(
                orjson.dumps({"event": "error", "code": "60012", "msg": "Invalid request"}).decode()
            )
            return
        for arg in args:
            key = (arg.get("channel", ""), arg.get("instId", ""))
            if op == "subscribe":
                self.stats.subscribes += 1
                c.subs.add(key)
                await c.queue.put(orjson.dumps({"event": "subscribe", "arg": arg}).decode())
                if key[0] == "books" and key[1] in self.truth:
                    data = self.truth[key[1]].snapshot_data()
                    snap = {"arg": arg, "action": "snapshot", "data": [data]}
                    await c.queue.put(orjson.dumps(snap).decode())
                    self.stats.snapshots_served += 1
                    self._subscribed.set()
            elif op == "unsubscribe":
                self.stats.unsubscribes += 1
                c.subs.discard(key)
                await c.queue.put(orjson.dumps({"event": "unsubscribe", "arg": arg}).decode())
