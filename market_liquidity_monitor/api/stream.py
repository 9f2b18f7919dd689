"""Live metrics over WebSocket: one producer, bounded per-client queues.

``StreamHub`` runs one producer task. Every ``1 / settings.analytics.tick_hz`` seconds it builds one
frame per subscribed ``(symbol, window_bps)`` (in a worker thread, from the books of every venue of
``settings.venues``), serialises it once and offers it to each subscriber's bounded queue with
``put_nowait``. A client that does not keep up skips frames (the oldest queued frame is dropped and
counted); one whose queue stays full for ``settings.api.ws_stall_timeout_s`` is disconnected. The
producer never awaits a client, so a stalled client never slows the others. Every
``settings.api.ws_heartbeat_s`` seconds a heartbeat frame goes to every client; alert events are
fanned out the same way as they fire.

Frames (JSON text, each under 2 KB; prices to 8 significant digits, spread_bps to 4):

- ``{"type": "hello", "symbol", "window_bps", "tick_hz", "heartbeat_s", "venues": [...]}`` once;
- ``{"type": "metrics", "seq", "ts", "symbol", "window_bps", "venues": [{"venue", "symbol",
  "book_ts", "mid", "spread_bps", "bid_depth_notional", "ask_depth_notional", "imbalance",
  "window_exceeds_visible_book", "share", ["excluded_from_shares"],
  "q": {"synced", "stale", "crossed", "age_ms", "resyncs"}}], "hhi", "effective_venues",
  "unavailable": {venue: reason}}``. ``*_depth_notional`` is quote units within ``window_bps`` of
  that venue's mid; ``imbalance = (bid_size - ask_size) / (bid_size + ask_size)`` within the window
  (base units, as ``analytics.imbalance``; in [-1, 1]);
  ``share`` is the venue's part of the summed depth, ``hhi = sum share^2`` (``analytics.venues``),
  over the books ``compare`` would count (a stale, crossed or non-contemporaneous book has ``share``
  null and ``excluded_from_shares`` saying why);
- ``{"type": "heartbeat", "ts", "seq", "clients"}`` every ``heartbeat_s``;
- ``{"type": "alert", "event": {...}}`` when an alert fires;
- ``{"type": "error", "detail"}`` then close, for a bad request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import socket
import struct
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from market_liquidity_monitor import analytics
from market_liquidity_monitor.analytics.venues import concentration_exclusions, herfindahl
from market_liquidity_monitor.api.status import Readiness
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import InvalidInputError, MLMError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.market_data import MarketData

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 2048
_CLOSE = object()  # queue sentinel: the hub asks the client's sender to stop


def parse_window(text: str | None, default: float) -> float:
    """``"50bps"``, ``"50"`` or ``"12.5bps"`` -> 50.0; ``InvalidInputError`` unless in (0, 10000]."""
    if text is None or text == "":
        return float(default)
    raw = text.strip().lower().removesuffix("bps").strip()
    try:
        w = float(raw)
    except ValueError:
        raise InvalidInputError(
            f"window must be a number of basis points like '50bps' or '50'; got {text!r}"
        ) from None
    if not math.isfinite(w) or not 0 < w <= 10_000:
        raise InvalidInputError(f"window must be in (0, 10000] bps; got {text!r}")
    return w


def _sig(x: float | None, digits: int = 8) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def build_metrics(
    market: MarketData,
    instruments: list[InstrumentId],
    window_bps: float,
    views: dict[InstrumentId, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str], float | None, dict[str, float]]:
    """Per-venue rows, unavailable venues (reason), HHI and venue shares of depth within the window.

    Shares and HHI leave out the books ``compare`` leaves out (``analytics.concentration_exclusions``:
    stale, crossed, not synced, or older than ``analytics.max_book_age_diff_ms`` behind the freshest);
    such a row has ``share`` null and ``excluded_from_shares`` the reason. ``window_exceeds_visible_book``
    says the window reaches past the venue's visible book on a side (its depth is a lower bound).

    ``views``: a per-tick cache ``{instrument: (view, top_of_book) | MLMError}`` shared by every
    (symbol, window) of one tick, so each book's view and top of book are built once per tick."""
    rows: list[dict[str, Any]] = []
    missing: dict[str, str] = {}
    depth: dict[str, float] = {}
    used_views: list[Any] = []
    views = {} if views is None else views
    for inst in instruments:
        try:
            got = views.get(inst)
            if got is None:
                try:
                    view = market.store.view(inst.venue, inst.symbol)
                    got = views[inst] = (view, analytics.top_of_book(view))
                except MLMError as exc:
                    got = views[inst] = exc
            if isinstance(got, MLMError):
                raise got
            view, top = got
            d = analytics.depth_within_bps(view, window_bps)
        except MLMError as exc:
            missing[inst.venue] = str(exc)[:120]
            continue
        except RuntimeError as exc:  # the store changed under us (a replay thread adding books)
            missing[inst.venue] = f"book busy: {exc}"[:120]
            continue
        bid, ask = d.bid_notional, d.ask_notional
        imb = analytics.imbalance_from_depth(view, d).imbalance
        q = view.quality
        depth[inst.venue] = bid + ask
        used_views.append(view)
        rows.append(
            {
                "venue": inst.venue,
                "symbol": inst.symbol,
                "book_ts": view.book_ts_iso,
                "mid": _sig(top.mid_price),
                "spread_bps": _sig(top.spread_bps, 4),
                "bid_depth_notional": round(bid, 2),
                "ask_depth_notional": round(ask, 2),
                "imbalance": None if imb is None else round(imb, 4),
                "window_exceeds_visible_book": bool(
                    d.bid_window_exceeds_visible_book or d.ask_window_exceeds_visible_book
                ),
                "q": {
                    "synced": bool(q.get("synced")),
                    "stale": bool(q.get("stale")),
                    "crossed": bool(q.get("crossed")),
                    "age_ms": None if q.get("age_ms") is None else round(q["age_ms"]),
                    "resyncs": q.get("resyncs", 0),
                },
            }
        )
    excluded = concentration_exclusions(used_views, market.settings.analytics.max_book_age_diff_ms)
    kept = {v: x for v, x in depth.items() if v not in excluded}
    hhi, shares = herfindahl(kept) if kept else (None, {})
    for r in rows:
        r["share"] = round(shares[r["venue"]], 4) if hhi is not None and r["venue"] in shares else None
        if r["venue"] in excluded:
            r["excluded_from_shares"] = excluded[r["venue"]][:80]
    return rows, missing, hhi, shares


@dataclass(eq=False)
class Client:
    """One WebSocket subscriber: its stream key and bounded queue of serialised frames."""

    id: int
    key: tuple[str, float]
    queue: asyncio.Queue
    full_since: float | None = None
    sent: int = 0
    skipped: int = 0
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    address: str | None = None
    kick_reason: str = ""

    def offer(self, frame: str, now: float) -> None:
        """Queue ``frame`` without waiting; when full, drop the oldest queued frame (a skip)."""
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.skipped += 1
            if self.full_since is None:
                self.full_since = now
        else:
            self.full_since = None
        self.queue.put_nowait(frame)


class StreamHub:
    """The producer and its subscribers. ``start()``/``stop()`` from the app's lifespan."""

    def __init__(self, settings: Settings, market: MarketData, readiness: Readiness, clock=time.monotonic):
        self.settings = settings
        self.market = market
        self.readiness = readiness
        self.clock = clock
        self.clients: dict[int, Client] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resolved: dict[str, tuple[list[InstrumentId], dict[str, str]]] = {}
        self.seq = 0
        self.frames_built = 0
        self.dropped_clients = 0
        self.last_tick_ms: float | None = None
        self.last_tick_views = 0  # book views built in the last tick (one per instrument, not per key)
        self.max_frame_bytes = 0
        self.refused_clients = 0

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="mlm-stream-producer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for c in list(self.clients.values()):
            self._kick(c)

    # ---------------------------------------------------------------- clients
    def resolve(self, symbol: str) -> tuple[list[InstrumentId], dict[str, str]]:
        """Instruments of ``symbol`` on each configured venue; venues without it -> reason.

        Raises ``InvalidInputError`` when no configured venue lists the symbol."""
        key = symbol.strip().upper()
        if key in self._resolved:
            return self._resolved[key]
        insts, missing = [], {}
        for venue in self.settings.venues:
            try:
                insts.append(self.market.resolve(key, venue))
            except MLMError as exc:
                missing[venue] = str(exc)[:120]
        if not insts:
            raise InvalidInputError(
                f"no configured venue ({', '.join(self.settings.venues)}) has a book for {symbol!r}: "
                + "; ".join(missing.values())
            )
        if not missing or self.market.is_recorded:  # live: retry venues whose feed has not synced yet
            self._resolved[key] = (insts, missing)
        return insts, missing

    def register(self, symbol: str, window_bps: float, address: str | None = None) -> Client:
        """A new subscriber of ``(symbol, window_bps)`` from client ``address`` (IP).

        Raises ``StreamLimitError`` (with the close code and the reason) beyond
        ``api.ws_max_clients`` clients, ``api.ws_max_clients_per_address`` from one address, or
        ``api.ws_max_streams`` distinct (symbol, window) streams (a window already streamed is
        always accepted: it costs nothing more per tick)."""
        api = self.settings.api
        key = (symbol.strip().upper(), window_bps)
        if len(self.clients) >= api.ws_max_clients:
            self.refused_clients += 1
            raise StreamLimitError(
                1013, f"too many WebSocket clients (max {api.ws_max_clients}); retry later"
            )
        if address is not None:
            held = sum(1 for c in self.clients.values() if c.address == address)
            if held >= api.ws_max_clients_per_address:
                self.refused_clients += 1
                raise StreamLimitError(
                    1008,
                    f"too many WebSocket connections from {address} (max {api.ws_max_clients_per_address} "
                    "per address, settings api.ws_max_clients_per_address)",
                )
        keys = {c.key for c in self.clients.values()}
        if key not in keys and len(keys) >= api.ws_max_streams:
            self.refused_clients += 1
            same = sorted(w for s, w in keys if s == key[0])
            raise StreamLimitError(
                1013,
                f"at most {api.ws_max_streams} distinct (symbol, window) streams at once (settings "
                f"api.ws_max_streams); windows streamed now for {key[0]}: "
                f"{', '.join(f'{w:g}' for w in same) or 'none'} bps; retry with one of them or later",
            )
        c = Client(next(self._ids), key, asyncio.Queue(maxsize=api.ws_client_queue), address=address)
        self.clients[c.id] = c
        return c

    def unregister(self, c: Client) -> None:
        self.clients.pop(c.id, None)

    def _kick(self, c: Client, reason: str = "server shutting down") -> None:
        c.kick_reason = c.kick_reason or reason
        c.kicked.set()
        with contextlib.suppress(asyncio.QueueFull):
            c.queue.put_nowait(_CLOSE)

    def stats(self) -> dict[str, Any]:
        cl = list(self.clients.values())
        return {
            "clients": len(cl),
            "max_clients": self.settings.api.ws_max_clients,
            "tick_hz": self.settings.analytics.tick_hz,
            "heartbeat_s": self.settings.api.ws_heartbeat_s,
            "frames_built": self.frames_built,
            "frames_skipped": sum(c.skipped for c in cl),
            "clients_lagging": sum(1 for c in cl if c.full_since is not None),
            "clients_dropped": self.dropped_clients,
            "clients_refused": self.refused_clients,
            "streams": len({c.key for c in cl}),
            "max_streams": self.settings.api.ws_max_streams,
            "last_tick_ms": self.last_tick_ms,
            "max_frame_bytes": self.max_frame_bytes,
        }

    # ---------------------------------------------------------------- producer
    def _frames(self, keys: set[tuple[str, float]]) -> dict[tuple[str, float], str]:
        """One serialised metrics frame per key (runs in a worker thread)."""
        out = {}
        ts = _now_iso()
        views: dict[InstrumentId, Any] = {}  # each book's view once per tick, whatever the windows
        for symbol, window in keys:
            insts, missing = self.resolve(symbol)
            ready = [i for i in insts if self.readiness.is_ready(i)]
            rows, unavailable, hhi, _ = build_metrics(self.market, ready, window, views)
            unavailable = {**missing, **unavailable}
            for i in insts:
                if i not in ready:
                    unavailable[i.venue] = "loading"
            frame = {
                "type": "metrics",
                "seq": self.seq,
                "ts": ts,
                "symbol": symbol,
                "window_bps": window,
                "venues": rows,
                "hhi": None if hhi is None else round(hhi, 4),
                "effective_venues": None if not hhi else round(1 / hhi, 3),
                "unavailable": {k: v[:80] for k, v in unavailable.items()},
            }
            text = dumps(frame)
            if len(text.encode()) > MAX_FRAME_BYTES:  # many venues: drop the reasons first
                frame["unavailable"] = {k: "" for k in unavailable}
                text = dumps(frame)
            self.max_frame_bytes = max(self.max_frame_bytes, len(text.encode()))
            out[(symbol, window)] = text
        self.last_tick_views = len(views)
        return out

    async def _run(self) -> None:
        """Tick at ``tick_hz`` and beat every ``ws_heartbeat_s`` on their own deadlines; a slow tick
        skips the missed ticks instead of bursting."""
        period = 1.0 / self.settings.analytics.tick_hz
        hb_every = self.settings.api.ws_heartbeat_s
        next_t = self.clock()
        next_hb = next_t + hb_every
        while True:
            try:
                now = self.clock()
                if now >= next_hb:
                    next_hb = max(next_hb + hb_every, now)
                    self._heartbeat(now)
                if now >= next_t:
                    next_t += period
                    if next_t < now:
                        next_t = now + period
                    await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop the stream
                log.exception("stream tick failed")
            await asyncio.sleep(max(0.0, min(next_t, next_hb) - self.clock()))

    def _heartbeat(self, now: float) -> None:
        hb = dumps({"type": "heartbeat", "ts": _now_iso(), "seq": self.seq, "clients": len(self.clients)})
        for c in list(self.clients.values()):
            if not c.kicked.is_set():
                c.offer(hb, now)

    async def _tick(self) -> None:
        self.seq += 1
        keys = {c.key for c in self.clients.values()}
        t0 = self.clock()
        frames = await asyncio.to_thread(self._frames, keys) if keys else {}
        now = self.clock()
        self.last_tick_ms = round((now - t0) * 1000, 2)
        self.frames_built += len(frames)
        stall_s = self.settings.api.ws_stall_timeout_s
        for c in list(self.clients.values()):
            if c.kicked.is_set():
                continue
            frame = frames.get(c.key)
            if frame is not None:
                c.offer(frame, now)
            if c.full_since is not None and now - c.full_since > stall_s:
                log.warning("dropping WebSocket client %d: queue full for %.0f s", c.id, stall_s)
                self.dropped_clients += 1
                self._kick(c, f"client too slow: its queue stayed full for {stall_s:g} s")

    # ---------------------------------------------------------------- alerts
    def publish(self, message: dict[str, Any]) -> None:
        """Fan an event (e.g. ``{"type": "alert", ...}``) out to every client; thread-safe."""
        text = dumps(message)
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fanout(text)
        else:
            loop.call_soon_threadsafe(self._fanout, text)

    def _fanout(self, text: str) -> None:
        now = self.clock()
        for c in list(self.clients.values()):
            if not c.kicked.is_set():
                c.offer(text, now)


class StreamLimitError(Exception):
    """A subscription the hub refuses: ``code`` (WebSocket close code) and ``reason``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _transport_of(ws: Any) -> Any:
    """The server's asyncio transport under an ASGI WebSocket, if it can be found, else None.

    ASGI has no "abort" message, and a peer that stopped reading blocks every send (uvicorn waits
    for the transport to become writable, close frames included), so the only way to drop it is
    to abort the TCP connection. uvicorn's protocol objects keep it as ``.transport``; the ASGI
    ``send`` callable is a bound method of that protocol, possibly wrapped in closures by
    middleware (Starlette's exception wrapper): follow ``__self__`` and closure cells a few levels."""
    todo, seen = [getattr(ws, "_send", None)], 0
    while todo and seen < 32:
        fn = todo.pop(0)
        seen += 1
        owner = getattr(fn, "__self__", None)
        transport = getattr(owner, "transport", None)
        if transport is not None and callable(getattr(transport, "abort", None)):
            return transport
        for cell in getattr(fn, "__closure__", None) or ():
            with contextlib.suppress(ValueError):  # an empty cell
                if callable(cell.cell_contents):
                    todo.append(cell.cell_contents)
    return None


async def close_client(ws: Any, code: int, reason: str, timeout_s: float = 1.0) -> bool:
    """Close ``ws`` with ``code``/``reason`` (the reason is cut to the 123 bytes a close frame
    holds, RFC 6455 section 5.5). A peer that does not take the close frame within ``timeout_s``
    (it stopped reading) has its TCP connection reset (``SO_LINGER`` 0, so the frames queued in the
    kernel are dropped too instead of lingering in an orphaned socket). True if it was reset."""
    reason = reason.encode()[:123].decode(errors="ignore")
    try:
        await asyncio.wait_for(ws.close(code=code, reason=reason), timeout=timeout_s)
        return False
    except Exception:  # TimeoutError (a peer that stopped reading), or the socket is gone
        transport = _transport_of(ws)
        if transport is None:
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:  # SO_LINGER 0: reset now, drop the unsent frames (no orphan socket)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return True


async def serve_client(ws, hub: StreamHub, symbol: str, window_bps: float) -> None:
    """Run one accepted WebSocket: a sender task draining the client's queue, and a receive loop
    that notices the client leaving. Returns when either ends or the hub kicks the client; a
    kicked client is closed (1013 with the reason) and, if it does not take the close frame
    because it stopped reading, its connection is aborted: it does not linger until a ping
    timeout. Refused subscriptions (``StreamLimitError``) get an error frame, then the close."""
    try:
        insts, missing = await asyncio.to_thread(hub.resolve, symbol)
    except InvalidInputError as exc:
        await ws.send_text(dumps({"type": "error", "detail": str(exc)}))
        await ws.close(code=1008)
        return
    address = ws.client.host if getattr(ws, "client", None) else None
    try:
        client = hub.register(symbol, window_bps, address)
    except StreamLimitError as exc:
        await ws.send_text(dumps({"type": "error", "detail": exc.reason}))
        await close_client(ws, exc.code, exc.reason)
        return
    s = hub.settings
    await ws.send_text(
        dumps(
            {
                "type": "hello",
                "symbol": client.key[0],
                "window_bps": window_bps,
                "tick_hz": s.analytics.tick_hz,
                "heartbeat_s": s.api.ws_heartbeat_s,
                "queue_frames": s.api.ws_client_queue,
                "venues": [{"venue": i.venue, "symbol": i.symbol} for i in insts],
                "unavailable": {k: v[:80] for k, v in missing.items()},
            }
        )
    )

    async def sender() -> None:
        while True:
            msg = await client.queue.get()
            if msg is _CLOSE:
                return
            await ws.send_text(msg)
            client.sent += 1

    async def receiver() -> None:
        while True:
            m = await ws.receive()
            if m["type"] == "websocket.disconnect":
                return

    tasks = [
        asyncio.create_task(sender()),
        asyncio.create_task(receiver()),
        asyncio.create_task(client.kicked.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.unregister(client)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        if client.kicked.is_set():
            await close_client(ws, 1013, client.kick_reason or "dropped by the server")
