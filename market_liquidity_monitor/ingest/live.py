"""Live venue connections: WebSocket frames in, synced books in the ``BookStore`` out.

One ``VenueConnection`` serves one adapter and a list of symbols over one WebSocket:

1. connect to ``adapter.stream_url(symbols)`` (host overridable: ``ws_url``), send
   ``adapter.subscribe_messages(symbols)`` paced under the venue's incoming-message limit;
2. for every frame: stamp ``ts_recv`` from the injected ``Clock``, decode with orjson (or the
   adapter's ``decode_frame``: Kraken v2 numbers to ``Decimal``), hand
   ``adapter.parse_message`` events to the store. Undecodable frames, unknown frames and events the
   book cannot apply are counted and logged, never raised; an event that failed half-way through a
   book invalidates that book (resync);
3. whenever a book's ``sync.needs_snapshot`` is set (start, gap, reconnect, failed apply), fetch the
   REST snapshot (``adapter.snapshot_request``, host overridable: ``rest_base_url``) after its first
   delta is buffered (Binance "How to manage a local order book" steps 2-3), through the venue's
   weight bucket (``ratelimit.WeightLimiter``); HTTP 429/418 ``Retry-After`` blocks every caller of
   that bucket; a snapshot older than the buffer is refetched (``BookSync`` decides);
4. unplanned disconnects (closed socket, error, silence longer than
   ``keepalive.silence_timeout_s``) reconnect after capped exponential backoff with full jitter;
   the backoff resets once a connection has stayed up ``backoff_reset_after_s``. Every book is
   invalidated the moment its socket is lost (not synced, so not served, while the backoff wait,
   the connect and the subscribe pacing last; snapshot fetches of the lost stream are cancelled)
   and rebuilt from a snapshot plus the new stream's buffered deltas;
5. planned disconnects (``keepalive.max_connection_age_s``, the venue's shutdown notice such as
   Binance ``serverShutdown``) are make-before-break: a second connection is opened while the old
   one keeps feeding the books; its frames are held until, for every synced book, the new stream
   provably starts at or before the book's sequence (``pu``/``U-1 <= book.sequence``). Then the old
   socket is closed, the held frames are applied (duplicates of what the old stream delivered are
   skipped) and the books stay synced throughout. When the overlap cannot be proven (no sequence
   numbers, timeout, old socket died first) the books are resynced instead: never trusted blind.

Protocol-level pings are answered by the ``websockets`` library and never reach the reader, so
they do not count as data for the silence timeout; venues that want application pings
(``keepalive.client_ping``) get them every ``keepalive.interval_s``, and their short ``pong``
replies do not count either.

``FeedHandler`` runs several connections (symbol chunks, several venues) on one store, one httpx
client and one weight bucket per venue (budgets are per IP). Every loop re-raises
``CancelledError``. ``status()`` gives the counters for /api/status.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from market_liquidity_monitor.config import IngestSettings
from market_liquidity_monitor.domain.errors import BadUpdateError
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import Clock, WallClock
from market_liquidity_monitor.ingest.ratelimit import (
    RateLimiters,
    TokenBucket,
    WeightLimiter,
    ws_message_pacer,
)
from market_liquidity_monitor.ingest.store import BookEntry, BookStore
from market_liquidity_monitor.venues.base import Event, VenueAdapter

log = logging.getLogger(__name__)

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

# Planned-disconnect notices, as (field, value) pairs looked up in a frame and in its ``data``
# envelope. Binance: ``{"e":"serverShutdown","E":...}`` (VENUE_RULES.md §1); OKX: a ``notice``
# event with code 64008 before a restart (§5, 2ND). An adapter may instead define
# ``is_shutdown_notice(msg) -> bool``, which takes precedence.
SHUTDOWN_NOTICES: tuple[tuple[str, Any], ...] = (("e", "serverShutdown"), ("code", "64008"))


# ---------------------------------------------------------------------------------------- backoff


class Backoff:
    """Capped exponential backoff with full jitter.

    The n-th delay (n from 0) is ``rand() * min(max_s, initial_s * factor**n)``: "full jitter" from
    M. Brooker, *Exponential Backoff And Jitter*, AWS Architecture Blog (2015), which spreads
    reconnecting clients out instead of synchronising them. ``rand`` is injectable (tests pass a
    constant); ``reset()`` starts over from ``initial_s``.

    Raises ``ValueError`` unless ``0 < initial_s <= max_s`` and ``factor >= 1``.
    """

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        *,
        factor: float = 2.0,
        rand: Callable[[], float] = random.random,
    ):
        if not 0 < initial_s <= max_s or factor < 1:
            raise ValueError(
                f"need 0 < initial_s <= max_s and factor >= 1, got {initial_s}, {max_s}, {factor}"
            )
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self._rand = rand
        self.attempt = 0

    def cap(self, attempt: int | None = None) -> float:
        """The upper bound of the delay for ``attempt`` (default: the next one)."""
        n = self.attempt if attempt is None else attempt
        # Avoid float overflow for very long outages: the cap is reached after a few dozen tries.
        return self.max_s if n > 64 else min(self.max_s, self.initial_s * self.factor**n)

    def next_delay(self) -> float:
        """The next delay in seconds, in ``[0, cap]``; advances the attempt counter."""
        d = self._rand() * self.cap()
        self.attempt += 1
        return d

    def reset(self) -> None:
        self.attempt = 0


# ------------------------------------------------------------------------------------ frame sink


class FrameSink(Protocol):
    """Receives what the connection processed, in processing order (the recorder implements it)."""

    def on_open(self, ts_ns: int, url: str) -> None: ...

    def on_frame(self, ts_ns: int, payload: bytes) -> None: ...

    def on_rest(self, ts_ns: int, venue_symbol: str, body: bytes) -> None: ...

    def on_close(self, ts_ns: int, reason: str) -> None: ...


# --------------------------------------------------------------------------------------- state


class DisconnectReason(StrEnum):
    CLOSED = "closed"  # the peer closed, the network failed, or the socket errored
    SILENCE = "silence"  # no data for silence_timeout_s
    MAX_AGE = "max_age"  # planned: the venue's connection lifetime is about to end
    SHUTDOWN_NOTICE = "shutdown_notice"  # planned: the venue announced a restart
    RESUBSCRIBE = "resubscribe"  # a book needs a snapshot the venue only pushes on subscribe
    STOP = "stop"


@dataclass(slots=True)
class ConnectionCounters:
    """Per-connection counters (monotonic; ``status()`` adds gauges and per-book quality)."""

    connects: int = 0  # sockets opened (first, reconnects and handovers)
    connect_failures: int = 0
    reconnects: int = 0  # unplanned: a new socket after the previous one failed or went silent
    handovers: int = 0  # planned make-before-break switches completed
    handovers_unproven: int = 0  # ... of which the books had to be resynced (no overlap proof)
    handover_failures: int = 0  # new socket could not be opened or died before the switch
    silence_timeouts: int = 0
    shutdown_notices: int = 0
    messages: int = 0  # frames received (every kind)
    malformed_frames: int = 0  # not decodable JSON
    unhandled_frames: int = 0  # decodable, but no event (acks, pongs, unknown types)
    apply_errors: int = 0  # events a book could not apply (corrupted payload): book resynced
    handover_duplicates: int = 0  # events of the new stream already delivered by the old one
    invalidations: int = 0  # books discarded by the runtime for a resync
    snapshots_requested: int = 0
    snapshots_fetched: int = 0  # applied to a book
    snapshots_rejected: int = 0  # too old for the buffer, or superseded by a reconnect
    snapshot_failures: int = 0  # transport errors, timeouts, HTTP errors, bad bodies
    rate_limited: int = 0  # HTTP 429/418 answers
    rate_limit_waits: int = 0  # snapshot requests that waited for weight or a Retry-After
    rate_limit_wait_s: float = 0.0
    pings_sent: int = 0
    resubscribes: int = 0  # one book resubscribed on the open socket (pushed-snapshot venues)
    adapter_resets: int = 0  # adapter connection state forgotten on a new socket

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Link:
    """One open WebSocket and its tasks."""

    __slots__ = (
        "close_info",
        "first_delta",
        "id",
        "last_data",
        "messages",
        "notice",
        "opened",
        "pending",
        "ping_task",
        "reader",
        "sink",
        "url",
        "wake",
        "ws",
    )

    def __init__(self, ws: ClientConnection, link_id: int, url: str, now: float):
        self.ws = ws
        self.id = link_id
        self.url = url
        self.opened = now
        self.last_data = now
        self.messages = 0
        self.reader: asyncio.Task | None = None
        self.ping_task: asyncio.Task | None = None
        self.sink: Callable[[_Link, bytes, int], None] | None = None
        self.wake = asyncio.Event()
        self.notice = False
        self.close_info = ""
        # Handover: frames of the new link held until the switch: (ts_ns, raw, events | None).
        self.pending: deque | None = None
        self.first_delta: dict[InstrumentId, L2Delta] = {}


def _rebase(url: str, base: str | None) -> str:
    """Replace ``url``'s scheme and host with ``base``'s; a ``base`` with a path or query is used
    whole (a full URL override)."""
    if not base:
        return url
    b = urlsplit(base)
    if b.path not in ("", "/") or b.query:
        return base
    u = urlsplit(url)
    return urlunsplit((b.scheme, b.netloc, u.path, u.query, u.fragment))


def _retry_after_s(value: str | None, default: float) -> float:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); ``default`` when absent or bad."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


# ------------------------------------------------------------------------------------ connection


class VenueConnection:
    """One venue WebSocket (one adapter, a list of unified symbols) feeding a ``BookStore``.

    Args:
        adapter: the venue's ``VenueAdapter`` (pure translation).
        symbols: unified ccxt symbols (``BTC/USDT``); wire symbols (``BTCUSDT``) are accepted too.
        store: the ``BookStore`` to feed (its books for these symbols are owned by this connection).
        settings: ``IngestSettings`` (backoff, snapshot limit/timeout, handover timeout...).
        clock: stamps ``ts_recv`` of frames and snapshots (ns); defaults to the store's clock.
        http: a shared ``httpx.AsyncClient`` (one is created and closed otherwise).
        limiter: the venue's REST weight bucket (share one per venue per process: budgets are per IP).
        ws_url / rest_base_url: host overrides (``ws://127.0.0.1:PORT``): scheme and host replace the
            adapter's, path and query are kept; a URL with a path is used whole.
        sink: receives every processed frame and applied REST body (the recorder).
        sleep / rand: injected for backoff waits and jitter (tests).
        silence_timeout_s / max_connection_age_s / snapshot_limit: override the adapter's keepalive
            and the settings (tests use short ones).
        connect_kwargs: extra ``websockets.connect`` arguments (``ping_interval``, ``max_size``...).
    """

    def __init__(
        self,
        adapter: VenueAdapter,
        symbols: Iterable[str],
        store: BookStore,
        *,
        settings: IngestSettings | None = None,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        limiter: TokenBucket | None = None,
        ws_url: str | None = None,
        rest_base_url: str | None = None,
        sink: FrameSink | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        silence_timeout_s: float | None = None,
        max_connection_age_s: float | None = None,
        snapshot_limit: int | None = None,
        connect_kwargs: dict | None = None,
        name: str | None = None,
    ):
        self.adapter = adapter
        self.venue: str = adapter.venue
        self.symbols = [s if "/" in s else adapter.unified_symbol(s) for s in symbols]
        if not self.symbols:
            raise ValueError(f"{self.venue}: a connection needs at least one symbol")
        self.instruments = [InstrumentId(self.venue, s) for s in self.symbols]
        self.store = store
        self.settings = settings or IngestSettings()
        s = self.settings
        self.clock: Clock = clock or store.clock or WallClock()
        self._http = http
        self._owns_http = http is None
        self.limiter: TokenBucket = limiter or WeightLimiter.for_venue(
            self.venue, headroom=s.rest_weight_headroom
        )
        self._pacer = ws_message_pacer(self.venue)  # real time: it paces a real socket
        self.ws_url = _rebase(adapter.stream_url(self.symbols), ws_url or s.ws_base_url)
        self._rest_base = rest_base_url or s.rest_base_url
        self.sink = sink
        self._sleep = sleep
        ka = adapter.keepalive
        self.silence_timeout_s = silence_timeout_s if silence_timeout_s is not None else ka.silence_timeout_s
        self.max_connection_age_s = (
            max_connection_age_s if max_connection_age_s is not None else ka.max_connection_age_s
        )
        self.snapshot_limit = snapshot_limit or s.snapshot_limit
        self._connect_kwargs = dict(connect_kwargs or {})
        self.name = (
            name or f"{self.venue}:{','.join(self.symbols[:3])}{'...' if len(self.symbols) > 3 else ''}"
        )
        self._backoff = Backoff(s.backoff_initial_s, s.backoff_max_s, rand=rand)
        self._snap_rand = rand
        self.counters = ConnectionCounters()
        self._link: _Link | None = None
        self._links_opened = 0
        self._next_delay = 0.0
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._resubscribe = False
        self._fetching: dict[InstrumentId, asyncio.Task] = {}
        # Pushed-snapshot venues: books waiting for the snapshot a (re)subscription brings, with the
        # loop time it was asked for; after snapshot_timeout_s without it the socket is replaced.
        self._awaiting_push: dict[InstrumentId, float] = {}
        self._epoch: dict[InstrumentId, int] = {}
        self._bg: set[asyncio.Task] = set()
        self._entries: dict[InstrumentId, BookEntry] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown_check = getattr(adapter, "is_shutdown_notice", None) or _default_shutdown_notice
        # Frames are decoded with orjson unless the adapter brings its own decoder (Kraken v2:
        # JSON numbers with full precision -> Decimal, for the checksum). Either raises ValueError.
        self._loads: Callable[[bytes], Any] = getattr(adapter, "decode_frame", None) or orjson.loads
        self.last_error: str | None = None
        self.running = False

    # ------------------------------------------------------------------------------ public API

    async def run(self) -> None:
        """Connect and keep the books synced until ``stop()`` or cancellation (re-raised)."""
        self._loop = asyncio.get_running_loop()
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.snapshot_timeout_s)
        self.running = True
        for inst in self.instruments:
            self._entry(inst)
        link: _Link | None = None
        try:
            while not self._stopping:
                if link is None:
                    link = await self._connect_loop()
                    if link is None:
                        break  # stopped while waiting
                    self._start_primary(link)
                reason = await self._watch(link)
                if reason is DisconnectReason.STOP:
                    break
                if reason in (DisconnectReason.MAX_AGE, DisconnectReason.SHUTDOWN_NOTICE):
                    new = await self._handover(link, reason)
                    if new is not None:
                        link = new
                        continue
                    if link.reader is not None and not link.reader.done():
                        continue  # keep serving the old socket; the handover is retried later
                await self._drop(link, reason)
                link = None
        finally:
            self.running = False
            await self._cleanup()
            self._stopping = False
            self._stop_event.clear()

    def stop(self) -> None:
        """Ask ``run()`` to close the socket and return (also interrupts a backoff wait)."""
        self._stopping = True
        self._stop_event.set()
        if self._link is not None:
            self._link.wake.set()

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.reader is not None and not self._link.reader.done()

    def synced(self) -> bool:
        """True when every book of this connection is synced."""
        return all(self._entry(i).book.quality.synced for i in self.instruments)

    async def wait_synced(self, timeout: float | None = None, poll_s: float = 0.01) -> bool:
        """Wait until every book is synced (``False`` on timeout)."""
        try:
            async with asyncio.timeout(timeout):
                while not self.synced():
                    await asyncio.sleep(poll_s)
        except TimeoutError:
            return False
        return True

    def status(self) -> dict:
        """Connection state and counters, plus per-book quality (for /api/status)."""
        link = self._link
        now = self._loop.time() if self._loop else None
        books = {}
        for inst in self.instruments:
            e = self._entry(inst)
            q = self.store.quality(e)
            q["buffered_deltas"] = len(e.sync.buffer)
            q["snapshot_in_flight"] = inst in self._fetching
            books[inst.symbol] = q
        d = {
            "name": self.name,
            "venue": self.venue,
            "symbols": list(self.symbols),
            "url": self.ws_url,
            "running": self.running,
            "connected": self.connected,
            "connected_for_s": None if link is None or now is None else round(now - link.opened, 3),
            "last_message_age_ms": (
                None if link is None or now is None else round((now - link.last_data) * 1e3, 1)
            ),
            "backoff_attempt": self._backoff.attempt,
            "last_error": self.last_error,
            **self.counters.as_dict(),
            "parse_errors": {
                "malformed": self.adapter_errors("malformed"),
                "unknown": self.adapter_errors("unknown"),
            },
            "rate_limiter": self.limiter.status(),
            "books": books,
        }
        return d

    def adapter_errors(self, kind: str) -> int | None:
        errs = getattr(self.adapter, "errors", None)
        return None if errs is None else getattr(errs, kind, None)

    # --------------------------------------------------------------------------- connecting

    async def _connect_loop(self) -> _Link | None:
        """Open a socket, waiting the backoff delay first when the previous attempt failed."""
        while not self._stopping:
            if self._next_delay > 0:
                log.info(
                    "%s: reconnecting in %.2f s (attempt %d)",
                    self.name,
                    self._next_delay,
                    self._backoff.attempt,
                )
                await self._wait(self._next_delay)
                self._next_delay = 0.0
                if self._stopping:
                    return None
            try:
                return await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # OSError, InvalidHandshake, InvalidStatus, TimeoutError...
                self.counters.connect_failures += 1
                self.last_error = f"connect: {type(exc).__name__}: {exc}"
                self._next_delay = self._backoff.next_delay()
                log.warning(
                    "%s: connect to %s failed (%s: %s); retry in %.2f s",
                    self.name,
                    self.ws_url,
                    type(exc).__name__,
                    exc,
                    self._next_delay,
                )
        return None

    async def _wait(self, delay_s: float) -> None:
        """The injected sleep, cut short by ``stop()``."""
        if self._stopping:
            return
        sleeper = asyncio.ensure_future(self._sleep(delay_s))
        stopper = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, stopper):
                t.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    async def _open(self) -> _Link:
        kwargs = {"open_timeout": 10.0, "close_timeout": 2.0, "max_size": 2**24, **self._connect_kwargs}
        if urlsplit(self.ws_url).hostname in _LOOPBACK:
            kwargs.setdefault("proxy", None)
        ws = await connect(self.ws_url, **kwargs)
        self._links_opened += 1
        self.counters.connects += 1
        link = _Link(ws, self._links_opened, self.ws_url, self._loop.time())
        if self.sink is not None:
            self.sink.on_open(self.clock.now_ns(), self.ws_url)
        try:
            for text in self.adapter.subscribe_messages(self.symbols):
                await self._pacer.acquire()
                await ws.send(text)
        except BaseException:
            await self._close_ws(ws)
            raise
        ka = self.adapter.keepalive
        if ka.client_ping and ka.interval_s:
            link.ping_task = asyncio.create_task(self._ping_loop(link, ka.client_ping, ka.interval_s))
        log.info("%s: connected to %s (socket #%d)", self.name, self.ws_url, link.id)
        return link

    def _start_primary(self, link: _Link) -> None:
        """A fresh (not handed-over) socket: books are rebuilt from a snapshot, never trusted blind."""
        if link.id > 1:
            self.counters.reconnects += 1
        # Per-connection adapter state (Bitfinex/Coinbase Advanced connection-wide counters,
        # channel ids) belongs to the old socket.
        reset = getattr(self.adapter, "reset_connection", None)
        if reset is not None:
            reset()
            self.counters.adapter_resets += 1
        self._invalidate_all("new connection")
        self._awaiting_push.clear()
        if self.instruments and self.adapter.snapshot_request(self.symbols[0], self.snapshot_limit) is None:
            # The subscription just sent brings every book's snapshot: wait for it.
            now = self._loop.time()
            self._awaiting_push = dict.fromkeys(self.instruments, now)
        link.sink = self._on_frame
        link.reader = asyncio.create_task(self._read(link), name=f"{self.name}#{link.id}:reader")
        self._link = link

    async def _read(self, link: _Link) -> None:
        ws = link.ws
        loop_time = self._loop.time
        now_ns = self.clock.now_ns
        try:
            while True:
                raw = await ws.recv(decode=False)
                ts = now_ns()
                link.messages += 1
                if not (len(raw) < 64 and b"pong" in raw):  # keepalive replies are not data
                    link.last_data = loop_time()
                link.sink(link, raw, ts)
        except ConnectionClosed as exc:
            link.close_info = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in processing must not kill the connection silently
            link.close_info = f"reader error {type(exc).__name__}: {exc}"
            log.exception("%s: reader of socket #%d failed", self.name, link.id)
        finally:
            link.wake.set()

    async def _ping_loop(self, link: _Link, text: str, interval_s: float) -> None:
        try:
            while True:
                await asyncio.sleep(interval_s)
                await self._pacer.acquire()
                await link.ws.send(text)
                self.counters.pings_sent += 1
        except ConnectionClosed:
            return

    # ------------------------------------------------------------------------------ watching

    async def _watch(self, link: _Link) -> DisconnectReason:
        """Wait until the socket must be left, and say why. Also starts overdue snapshot fetches."""
        loop = self._loop
        while True:
            now = loop.time()
            deadline = min(link.last_data + self.silence_timeout_s, now + 1.0)
            if self.max_connection_age_s:
                deadline = min(deadline, link.opened + self.max_connection_age_s)
            try:
                async with asyncio.timeout(max(0.0, deadline - now)):
                    await link.wake.wait()
            except TimeoutError:
                pass
            link.wake.clear()
            now = loop.time()
            if self._stopping:
                return DisconnectReason.STOP
            if link.reader.done():
                return DisconnectReason.CLOSED
            if link.notice:
                link.notice = False
                return DisconnectReason.SHUTDOWN_NOTICE
            if self._resubscribe:
                self._resubscribe = False
                return DisconnectReason.RESUBSCRIBE
            if now - link.last_data >= self.silence_timeout_s:
                self.counters.silence_timeouts += 1
                log.warning(
                    "%s: no data for %.1f s on socket #%d; reconnecting",
                    self.name,
                    now - link.last_data,
                    link.id,
                )
                return DisconnectReason.SILENCE
            if self.max_connection_age_s and now - link.opened >= self.max_connection_age_s:
                return DisconnectReason.MAX_AGE
            # Books waiting for a snapshot without a buffered delta for over a second (quiet
            # symbol, or the stream ended): fetch anyway; BookSync rejects a snapshot that is too old.
            for inst in self.instruments:
                e = self._entry(inst)
                if e.sync.needs_snapshot and inst not in self._fetching:
                    self._want_snapshot(e)

    async def _drop(self, link: _Link, reason: DisconnectReason) -> None:
        """Leave a socket after an unplanned end; schedule the reconnect delay.

        The books lose their stream here: they are discarded at once (a frame still read from the
        old socket is ignored) instead of staying synced on a dead stream until the next socket
        is subscribed, and snapshot fetches started for the old stream are cancelled."""
        link.sink = self._discard
        self._invalidate_all(f"connection lost: {reason.value}")
        self._awaiting_push.clear()
        await self._cancel_fetches()
        # A silent peer may never answer a close handshake: don't wait for it.
        await self._stop_link(link, graceful=reason is not DisconnectReason.SILENCE)
        self._link = None
        up_for = self._loop.time() - link.opened
        if up_for >= self.settings.backoff_reset_after_s:
            self._backoff.reset()
        self._next_delay = self._backoff.next_delay()
        info = link.close_info or reason.value
        self.last_error = f"disconnect ({reason.value}): {info}"
        if self.sink is not None:
            self.sink.on_close(self.clock.now_ns(), f"{reason.value} {info}")
        log.warning(
            "%s: socket #%d lost after %.1f s (%s: %s)", self.name, link.id, up_for, reason.value, info
        )

    async def _stop_link(self, link: _Link, graceful: bool = True) -> None:
        """Close a socket. Graceful: keep reading (and ignoring) frames until the close handshake
        completes, so a peer still pushing data is not blocked by flow control on our side;
        otherwise (a silent or broken peer) abort the TCP connection at once."""
        if link.ping_task is not None and not link.ping_task.done():
            link.ping_task.cancel()
        reader_alive = link.reader is not None and not link.reader.done()
        if graceful and reader_alive:
            link.sink = self._discard
            await self._close_ws(link.ws)
        for t in (link.reader, link.ping_task):
            if t is not None and not t.done():
                t.cancel()
        for t in (link.reader, link.ping_task):
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        if graceful:
            await self._close_ws(link.ws)
        elif link.ws.transport is not None:
            link.ws.transport.abort()

    def _discard(self, link: _Link, raw: bytes, ts: int) -> None:
        """Sink of a socket being closed: its frames are no longer processed."""

    async def _close_ws(self, ws: ClientConnection) -> None:
        try:
            async with asyncio.timeout(2.0):
                await ws.close()
        except asyncio.CancelledError:
            raise
        except Exception:
            if ws.transport is not None:
                ws.transport.abort()

    # ------------------------------------------------------------------------------ handover

    async def _handover(self, old: _Link, reason: DisconnectReason) -> _Link | None:
        """Make-before-break: open the next socket while ``old`` keeps feeding the books."""
        log.info(
            "%s: planned reconnect (%s) of socket #%d: opening the next socket first",
            self.name,
            reason.value,
            old.id,
        )
        if reason is DisconnectReason.SHUTDOWN_NOTICE:
            self.counters.shutdown_notices += 1
        try:
            new = await self._open()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.counters.handover_failures += 1
            self.counters.connect_failures += 1
            self.last_error = f"handover connect: {type(exc).__name__}: {exc}"
            log.warning("%s: could not open the next socket (%s); staying on #%d", self.name, exc, old.id)
            self._postpone_handover(old)
            return None
        new.pending = deque()
        new.sink = self._hold_frame
        new.reader = asyncio.create_task(self._read(new), name=f"{self.name}#{new.id}:reader")
        deadline = self._loop.time() + self.settings.handover_timeout_s
        proven = False
        while True:
            proven = self._overlap_proven(new)
            if proven or old.reader.done() or self._stopping or self._loop.time() >= deadline:
                break
            if new.reader.done():
                self.counters.handover_failures += 1
                log.warning(
                    "%s: next socket #%d closed before the switch (%s); staying on #%d",
                    self.name,
                    new.id,
                    new.close_info,
                    old.id,
                )
                await self._stop_link(new)
                self._postpone_handover(old)
                return None
            await asyncio.sleep(0.005)
        # Switch: from here on the old socket's frames are ignored (it keeps being read until its
        # close handshake completes), and the held frames of the new one are applied.
        old.sink = self._discard
        self._spawn(self._stop_link(old))
        self._link = new
        if not proven:  # before the held frames, so they are buffered for the resync
            self.counters.handovers_unproven += 1
            self._invalidate_all("handover without a provable overlap")
        for ts, raw, events in new.pending:
            if self.sink is not None:
                self.sink.on_frame(ts, raw)
            if events:
                self._apply(events, dedupe=True)
        new.pending = None
        new.first_delta.clear()
        new.sink = self._on_frame
        self.counters.handovers += 1
        log.info(
            "%s: switched from socket #%d to #%d (%s)",
            self.name,
            old.id,
            new.id,
            "books continuous" if proven else "books resyncing",
        )
        return new

    def _postpone_handover(self, old: _Link) -> None:
        """Retry a failed planned switch after a backoff delay (at least 1 s) while ``old`` lasts."""
        if self.max_connection_age_s:
            retry = max(1.0, self._backoff.next_delay())
            old.opened = self._loop.time() - self.max_connection_age_s + retry

    def _overlap_proven(self, new: _Link) -> bool:
        """True when, for every synced book, the new stream starts at or before the book's sequence."""
        for inst in self.instruments:
            book = self._entry(inst).book
            if not book.quality.synced:
                continue  # resyncing anyway: its buffer takes the new stream
            d = new.first_delta.get(inst)
            if d is None or d.first_sequence is None or book.sequence is None:
                return False
            start = d.prev_sequence if d.prev_sequence is not None else d.first_sequence - 1
            if start > book.sequence:
                return False
        return True

    def _hold_frame(self, link: _Link, raw: bytes, ts: int) -> None:
        """Sink of a handover socket before the switch: decode now, apply at the switch."""
        self.counters.messages += 1
        events = self._decode(link, raw, ts)
        if events:
            for ev in events:
                if type(ev) is L2Delta and ev.instrument not in link.first_delta:
                    link.first_delta[ev.instrument] = ev
        link.pending.append((ts, raw, events))

    # ----------------------------------------------------------------------------- processing

    def _on_frame(self, link: _Link, raw: bytes, ts: int) -> None:
        self.counters.messages += 1
        if self.sink is not None:
            self.sink.on_frame(ts, raw)
        events = self._decode(link, raw, ts)
        if events:
            self._apply(events)

    def _decode(self, link: _Link, raw: bytes, ts: int) -> list[Event] | None:
        try:
            msg = self._loads(raw)
        except ValueError:  # orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError
            self.counters.malformed_frames += 1
            if self.counters.malformed_frames <= 5 or self.counters.malformed_frames % 1000 == 0:
                log.warning(
                    "%s: undecodable frame #%d on socket #%d (skipped): %r",
                    self.name,
                    self.counters.malformed_frames,
                    link.id,
                    bytes(raw[:120]),
                )
            return None
        try:
            events = self.adapter.parse_message(msg, ts)
        except Exception as exc:  # adapters count bad frames themselves; this guards the loop
            self.counters.malformed_frames += 1
            log.warning(
                "%s: adapter failed on a frame (%s: %s): %r",
                self.name,
                type(exc).__name__,
                exc,
                bytes(raw[:120]),
            )
            return None
        if not events:
            self.counters.unhandled_frames += 1
            if self._is_shutdown_notice(msg):
                log.warning(
                    "%s: venue announced a shutdown on socket #%d: %r", self.name, link.id, bytes(raw[:200])
                )
                link.notice = True
                link.wake.set()
        return events

    def _is_shutdown_notice(self, msg: Any) -> bool:
        try:
            return bool(self._shutdown_check(msg))
        except Exception:
            return False

    def _apply(self, events: list[Event], dedupe: bool = False) -> None:
        store = self.store
        for ev in events:
            if dedupe and self._duplicate(ev):
                self.counters.handover_duplicates += 1
                continue
            try:
                store.on_event(ev)
            except Exception as exc:
                # A level that does not parse (corrupted payload) may have left the book half-updated.
                self.counters.apply_errors += 1
                log.warning(
                    "%s %s: could not apply %s (%s: %s); resyncing the book",
                    self.venue,
                    ev.instrument.symbol,
                    type(ev).__name__,
                    type(exc).__name__,
                    exc,
                )
                self._invalidate(
                    ev.instrument, "apply error", was_synced=True if isinstance(exc, BadUpdateError) else None
                )
                self._want_snapshot(self._entry(ev.instrument))
                continue
            t = type(ev)
            if t is L2Delta or t is L2Snapshot:
                # A gap or a failed checksum (deltas and pushed snapshots) leaves needs_snapshot set.
                e = self._entry(ev.instrument)
                if e.sync.needs_snapshot:
                    if ev.instrument not in self._fetching:
                        self._want_snapshot(e)
                elif t is L2Snapshot:
                    self._awaiting_push.pop(ev.instrument, None)

    def _duplicate(self, ev: Event) -> bool:
        e = self._entry(ev.instrument)
        if isinstance(ev, L2Delta):
            seq = e.book.sequence
            return (
                e.book.quality.synced
                and ev.last_sequence is not None
                and seq is not None
                and ev.last_sequence <= seq
            )
        if isinstance(ev, BookTicker):
            t = e.ticker
            return (
                t is not None
                and t.sequence is not None
                and ev.sequence is not None
                and ev.sequence <= t.sequence
            )
        if isinstance(ev, Trade):
            return any(t.trade_id == ev.trade_id for t in list(e.trades)[-500:])
        return False

    def _entry(self, inst: InstrumentId) -> BookEntry:
        e = self._entries.get(inst)
        if e is None:
            e = self._entries[inst] = self.store.entry(inst)
        return e

    def _invalidate(self, inst: InstrumentId, why: str, *, was_synced: bool | None = None) -> None:
        """Discard a book: it waits for a snapshot, buffering the stream from here. ``was_synced``:
        whether it was synced before (the book store already discarded a book whose update it
        refused, ``BadUpdateError``); None = look at the book."""
        e = self._entry(inst)
        if was_synced is None:
            was_synced = e.book.quality.synced
        e.sync.invalidate()
        self._epoch[inst] = self._epoch.get(inst, 0) + 1
        if was_synced:
            self.counters.invalidations += 1
            log.info("%s %s: book discarded (%s); resync from a snapshot", self.venue, inst.symbol, why)

    def _invalidate_all(self, why: str) -> None:
        for inst in self.instruments:
            self._invalidate(inst, why)

    # ------------------------------------------------------------------------------ snapshots

    def _want_snapshot(self, e: BookEntry) -> None:
        inst = e.instrument
        if inst in self._fetching or self._stopping:
            return
        if self.adapter.snapshot_request(inst.symbol, self.snapshot_limit) is None:
            # The venue pushes its snapshot on subscribe. Resubscribe this one book on the open
            # socket when the adapter says how (``resubscribe_messages``); a fresh socket otherwise,
            # or when the pushed snapshot did not come within snapshot_timeout_s.
            asked = self._awaiting_push.get(inst)
            now = self._loop.time() if self._loop else 0.0
            if asked is not None and now - asked < self.settings.snapshot_timeout_s:
                return  # a snapshot is on its way
            resub = getattr(self.adapter, "resubscribe_messages", None)
            link = self._link
            if asked is None and resub is not None and link is not None and not link.reader.done():
                self._awaiting_push[inst] = now
                self.counters.resubscribes += 1
                log.warning(
                    "%s %s: book needs a snapshot (gaps=%d, checksum failures=%d); resubscribing it",
                    self.venue,
                    inst.symbol,
                    e.book.quality.gaps,
                    e.book.quality.checksum_failures,
                )
                self._spawn(self._send(link, resub(inst.symbol)))
                return
            if not self._resubscribe:
                log.warning(
                    "%s %s: book needs a snapshot the venue pushes on subscribe; resubscribing",
                    self.venue,
                    inst.symbol,
                )
                self._resubscribe = True
                if self._link is not None:
                    self._link.wake.set()
            return
        self._fetching[inst] = asyncio.create_task(
            self._snapshot_task(e), name=f"{self.name}:{inst.symbol}:snapshot"
        )

    async def _snapshot_task(self, e: BookEntry) -> None:
        inst = e.instrument
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s, rand=self._snap_rand)
        q = e.book.quality
        log.info(
            "%s %s: fetching a REST snapshot (gaps=%d, resyncs=%d, buffered=%d)",
            self.venue,
            inst.symbol,
            q.gaps,
            q.resyncs,
            len(e.sync.buffer),
        )
        try:
            while e.sync.needs_snapshot and not self._stopping:
                outcome = await self._fetch_snapshot(e)
                if outcome is True:
                    backoff.reset()
                elif outcome is None:  # failed: back off
                    await self._sleep(backoff.next_delay())
                else:  # rejected (too old / superseded): ask again, gently
                    await self._sleep(min(0.05, self.settings.backoff_initial_s))
        finally:
            if self._fetching.get(inst) is asyncio.current_task():
                del self._fetching[inst]

    async def _fetch_snapshot(self, e: BookEntry) -> bool | None:
        """One attempt: True applied, False rejected (retry now), None failed (back off)."""
        inst = e.instrument
        c = self.counters
        req = self.adapter.snapshot_request(inst.symbol, self.snapshot_limit)
        url = _rebase(req.url, self._rest_base)
        epoch = self._epoch.get(inst, 0)
        waited = await self.limiter.acquire(req.weight)
        if waited > 0:
            c.rate_limit_waits += 1
            c.rate_limit_wait_s += waited
            log.info("%s %s: waited %.2f s for REST weight %d", self.venue, inst.symbol, waited, req.weight)
        c.snapshots_requested += 1
        try:
            resp = await self._http.get(url, params=req.params, timeout=self.settings.snapshot_timeout_s)
        except httpx.HTTPError as exc:
            c.snapshot_failures += 1
            self.last_error = f"snapshot {inst.symbol}: {type(exc).__name__}: {exc}"
            log.warning(
                "%s %s: snapshot request failed (%s: %s)", self.venue, inst.symbol, type(exc).__name__, exc
            )
            return None
        if resp.status_code in (429, 418):
            c.rate_limited += 1
            retry = _retry_after_s(
                resp.headers.get("retry-after"), default=max(1.0, self.settings.backoff_max_s)
            )
            self.limiter.penalize(retry)
            self.last_error = f"snapshot {inst.symbol}: HTTP {resp.status_code}, Retry-After {retry:.1f} s"
            log.warning(
                "%s %s: HTTP %d (%s); every snapshot request of this venue waits %.1f s",
                self.venue,
                inst.symbol,
                resp.status_code,
                "rate limited" if resp.status_code == 429 else "IP banned",
                retry,
            )
            return False
        observe = getattr(self.limiter, "observe_headers", None)
        if observe is not None:
            observe(resp.headers)
        if resp.status_code != 200:
            c.snapshot_failures += 1
            self.last_error = f"snapshot {inst.symbol}: HTTP {resp.status_code}: {resp.text[:200]}"
            log.warning(
                "%s %s: snapshot HTTP %d: %s", self.venue, inst.symbol, resp.status_code, resp.text[:200]
            )
            return None
        body_bytes = resp.content
        try:
            body = orjson.loads(body_bytes)
        except orjson.JSONDecodeError:
            c.snapshot_failures += 1
            log.warning("%s %s: snapshot body is not JSON: %r", self.venue, inst.symbol, body_bytes[:120])
            return None
        if self._epoch.get(inst, 0) != epoch:
            c.snapshots_rejected += 1  # the book was reset while we waited: this image may predate it
            return False
        ts = self.clock.now_ns()
        venue_symbol = self.adapter.venue_symbol(inst.symbol)
        try:
            snap = self.adapter.parse_snapshot(body, venue_symbol, ts)
        except (KeyError, TypeError, ValueError) as exc:
            c.snapshot_failures += 1
            log.warning(
                "%s %s: snapshot body not understood (%s: %s)",
                self.venue,
                inst.symbol,
                type(exc).__name__,
                exc,
            )
            return None
        if self.sink is not None:
            self.sink.on_rest(ts, venue_symbol, body_bytes)
        try:
            self.store.on_event(snap)
        except Exception as exc:
            c.apply_errors += 1
            log.warning(
                "%s %s: snapshot could not be applied (%s: %s)",
                self.venue,
                inst.symbol,
                type(exc).__name__,
                exc,
            )
            self._invalidate(inst, "snapshot apply error")
            return None
        if e.sync.needs_snapshot:
            c.snapshots_rejected += 1
            log.info(
                "%s %s: snapshot lastUpdateId=%s is older than the buffered stream; fetching another",
                self.venue,
                inst.symbol,
                snap.sequence,
            )
            return False
        c.snapshots_fetched += 1
        log.info(
            "%s %s: book synced from snapshot %s (sequence now %s)",
            self.venue,
            inst.symbol,
            snap.sequence,
            e.book.sequence,
        )
        return True

    # ------------------------------------------------------------------------------- cleanup

    async def _send(self, link: _Link, frames: list[str]) -> None:
        """Send control frames on ``link`` through the message pacer (a closed socket is ignored:
        the reconnect resubscribes everything)."""
        try:
            for text in frames:
                await self._pacer.acquire()
                await link.ws.send(text)
        except ConnectionClosed:
            return

    def _spawn(self, coro) -> None:
        t = asyncio.create_task(coro)
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    async def _cancel_fetches(self) -> None:
        """Cancel every snapshot fetch in flight and wait for them to end."""
        tasks = list(self._fetching.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._fetching.clear()

    async def _cleanup(self) -> None:
        link, self._link = self._link, None
        await self._cancel_fetches()
        if link is not None:
            await self._stop_link(link)
            if self.sink is not None:
                self.sink.on_close(self.clock.now_ns(), "stop")
        for t in list(self._bg):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None


def _default_shutdown_notice(msg: Any) -> bool:
    if not isinstance(msg, dict):
        return False
    for d in (msg, msg.get("data")):
        if isinstance(d, dict):
            for k, v in SHUTDOWN_NOTICES:
                if d.get(k) == v:
                    return True
    return False


# ------------------------------------------------------------------------------------ handler


class FeedHandler:
    """Several ``VenueConnection``s on one ``BookStore``: one httpx client and one REST weight
    bucket per venue for all of them (venue budgets are per IP).

    ``adapter_for(venue)`` returns the venue's adapter (``AdapterRegistry``). Symbols of one venue
    are split into connections of at most ``max_symbols_per_connection`` (Binance allows 1024
    streams per connection; three streams per symbol). ``connection_kwargs`` go to every
    ``VenueConnection`` (``ws_url``, ``rest_base_url``, ``sink``, ``sleep``...).
    """

    def __init__(
        self,
        store: BookStore,
        adapter_for: Callable[[str], VenueAdapter],
        settings: IngestSettings | None = None,
        *,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        limiters: RateLimiters | None = None,
        max_symbols_per_connection: int = 200,
        **connection_kwargs,
    ):
        self.store = store
        self.adapter_for = adapter_for
        self.settings = settings or IngestSettings()
        self.clock = clock or store.clock
        self._http = http
        self._owns_http = http is None
        self.limiters = limiters or RateLimiters(headroom=self.settings.rest_weight_headroom)
        self.max_symbols_per_connection = max_symbols_per_connection
        self._kwargs = connection_kwargs
        self.connections: list[VenueConnection] = []
        self._run_task: asyncio.Task | None = None

    def add_feed(self, venue: str, symbols: Iterable[str], **kwargs) -> list[VenueConnection]:
        """Add connections for ``symbols`` of ``venue``; returns them. Call before ``run()``."""
        adapter = self.adapter_for(venue)
        symbols = list(dict.fromkeys(symbols))
        n = self.max_symbols_per_connection
        new = []
        for i in range(0, len(symbols), n):
            conn = VenueConnection(
                adapter,
                symbols[i : i + n],
                self.store,
                settings=self.settings,
                clock=self.clock,
                http=self._http,
                limiter=self.limiters(venue),
                **{**self._kwargs, **kwargs},
            )
            new.append(conn)
        self.connections.extend(new)
        return new

    async def run(self) -> None:
        """Run every connection until cancelled (re-raised) or ``stop()``."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.snapshot_timeout_s)
        for c in self.connections:
            c._http = self._http
            c._owns_http = False
        try:
            async with asyncio.TaskGroup() as tg:
                for c in self.connections:
                    tg.create_task(c.run(), name=c.name)
        finally:
            if self._owns_http and self._http is not None:
                await self._http.aclose()
                self._http = None

    def stop(self) -> None:
        for c in self.connections:
            c.stop()

    def status(self) -> dict:
        return {
            "connections": [c.status() for c in self.connections],
            "rate_limiters": self.limiters.status(),
        }


__all__ = [
    "SHUTDOWN_NOTICES",
    "Backoff",
    "ConnectionCounters",
    "DisconnectReason",
    "FeedHandler",
    "FrameSink",
    "VenueConnection",
]
