"""ccxt.pro order books for venues without a native WebSocket adapter.

``ProBookWatcher`` keeps one ``ccxt.pro`` exchange per venue and, per requested ``(venue, symbol)``,
a background task looping on ``watch_order_book(symbol)`` (the venue's default depth). Each time ccxt returns the book
(ccxt applied the venue's snapshot and deltas itself), the task notes the local receive time and
keeps ccxt's book object; ``snapshot()`` copies its top ``pro_book_levels`` levels per side into an
``L2Snapshot`` (decimal strings via ccxt's ``number_to_string``, as ``DataEngine.order_book``).
ccxt applies each message synchronously on the event loop, so the copy is the book after the
last message ccxt processed; ``ts_recv`` is when ccxt last returned it to the watch (a burst of
messages is returned once, so the age is never understated).

Such a book is *unverified*: ccxt.pro does not expose the venue's sequence ids or checksums to check
against, so only its freshness can be judged (``BookService`` feeds the snapshot to a ``BookStore``,
which reports the age and the stale flag).

Lifecycle (every number a setting of ``data_engine``):

- the first ``snapshot()`` of a book starts its watch and waits up to ``pro_first_book_timeout_s``
  for the first book; later calls never wait;
- a connection error or a venue error ends the current watch: the book is dropped at once (a caller
  gets None and the reason, never the old numbers) and the watch is retried after a capped,
  jittered exponential back-off (``pro_backoff_initial_s`` doubling up to ``pro_backoff_max_s``,
  each delay drawn uniformly from [delay/2, delay]; reset by the first book after a reconnect);
- a book nobody asked for during ``pro_idle_ttl_s`` stops being watched (``un_watch_order_book``
  where ccxt has it; a venue's exchange is closed with its last book);
- at most ``pro_max_books`` books are watched at once (beyond: None, and the reason);
- ``close()`` (called by ``Services.close``) cancels every watch and closes every exchange.

Markets come from the ``DataEngine`` (the same cached ccxt markets as REST, behind the venue's
breaker), so the ccxt.pro exchange opens only its WebSocket. ``pro_ws_base_url`` sends every
WebSocket URL of the venue to a loopback server (``wss://ws.poloniex.com/ws/public`` ->
``<base>/ws.poloniex.com/ws/public``, the scheme of ``engine.point_exchange_at``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.events import L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.venues.registry import ADAPTER_CLASSES

log = logging.getLogger(__name__)

__all__ = ["ProBookStatus", "ProBookWatcher", "backoff_delay_s", "default_pro_factory", "point_ws_at"]


def point_ws_at(exchange: Any, ws_urls: Any, base_url: str) -> None:
    """Set ``exchange.urls['api']['ws']`` from the original ``ws_urls`` rewritten to ``base_url``:
    ``wss://ws.poloniex.com/ws/public`` -> ``ws://127.0.0.1:N/ws.poloniex.com/ws/public``."""
    base = base_url.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]

    def rewrite(value: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            return f"{base}/{value.split('://', 1)[1]}"
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        return value

    exchange.urls["api"]["ws"] = rewrite(ws_urls)


def default_pro_factory(settings: Settings) -> Callable[[str], Any]:
    """Build ``ccxt.pro.<venue>`` with rate limiting, the request timeout and the URL overrides."""
    import ccxt.pro as ccxt_pro

    from market_liquidity_monitor.data_engine.engine import point_exchange_at

    cfg = settings.data_engine

    def make(venue: str) -> Any:
        cls = getattr(ccxt_pro, venue)
        exchange = cls({"enableRateLimit": True, "timeout": int(cfg.request_timeout_s * 1000)})
        ws_urls = copy.deepcopy(exchange.urls["api"].get("ws"))
        if cfg.rest_base_url:
            point_exchange_at(exchange, cfg.rest_base_url)
        if cfg.pro_ws_base_url and ws_urls:
            point_ws_at(exchange, ws_urls, cfg.pro_ws_base_url)
        elif ws_urls is not None:
            exchange.urls["api"]["ws"] = ws_urls
        return exchange

    return make


def backoff_delay_s(attempt: int, initial_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 = first retry): ``initial_s * 2**attempt``
    capped at ``max_s``, then drawn uniformly from [delay/2, delay] ("equal jitter", AWS
    Architecture Blog, "Exponential Backoff And Jitter", 2015) so watches that failed together do
    not reconnect together."""
    delay = min(max_s, initial_s * 2 ** min(attempt, 62))
    return (rng or random).uniform(delay / 2, delay)


@dataclass(frozen=True, slots=True)
class ProBookStatus:
    """One watched book, as ``/api/status`` and the health answer show it.

    ``state``: ``starting`` (no book yet), ``watching`` (a book is held), ``reconnecting`` (the last
    watch failed; retried in ``retry_in_s``); ``last_update_age_ms``: wall-clock ms since ccxt last
    returned the book (None before the first); ``updates``: books returned by ccxt; ``reconnects``:
    watches restarted after a failure; ``errors``: failures seen; ``last_error``: the latest, in words;
    ``idle_s``: seconds since someone last asked for the book."""

    venue: str
    symbol: str
    state: str
    last_update_age_ms: float | None
    updates: int
    reconnects: int
    errors: int
    last_error: str | None
    retry_in_s: float | None
    idle_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(slots=True)
class _Watch:
    inst: InstrumentId
    task: asyncio.Task | None = None
    book: Any = None  # ccxt's live order book object while the watch is healthy
    recv_ns: int | None = None
    updates: int = 0
    reconnects: int = 0
    errors: int = 0
    attempt: int = 0
    last_error: str | None = None
    retry_at: float | None = None
    last_asked: float = 0.0
    waiting: int = 0  # callers waiting for the first book (never reaped meanwhile)
    first: asyncio.Event = field(default_factory=asyncio.Event)


class ProBookWatcher:
    """ccxt.pro books (module docstring). ``engine``: the ``DataEngine`` whose markets the ccxt.pro
    exchanges reuse (None: ccxt.pro loads them itself); ``exchange_factory(venue)`` builds a ccxt.pro
    exchange (default: ``default_pro_factory``); ``clock``: monotonic seconds."""

    def __init__(
        self,
        settings: Settings,
        engine: Any = None,
        *,
        exchange_factory: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self._cfg = settings.data_engine
        self.engine = engine
        # built on the first watch: a process that never watches a book never imports ccxt.pro
        self._factory = exchange_factory
        self._clock = clock
        self._exchanges: dict[str, Any] = {}
        self._watches: dict[InstrumentId, _Watch] = {}
        self._reaper: asyncio.Task | None = None
        self._closed = False
        self._has_watch: dict[str, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ which venues
    def supports(self, venue: str) -> bool:
        """Whether ``venue``'s books may come from ccxt.pro: enabled, ccxt.pro has the venue with
        ``watchOrderBook``, no native adapter here, and listed in ``pro_venues`` when that is set."""
        if not self._cfg.pro_enabled or self._closed or venue in ADAPTER_CLASSES:
            return False
        if self._cfg.pro_venues and venue not in self._cfg.pro_venues:
            return False
        has = self._has_watch.get(venue)
        if has is None:
            import ccxt.pro as ccxt_pro

            cls = getattr(ccxt_pro, venue, None) if venue in ccxt_pro.exchanges else None
            has = self._has_watch[venue] = bool(cls is not None and cls().has.get("watchOrderBook"))
        return has

    def watched(self) -> list[InstrumentId]:
        return sorted(self._watches)

    # ------------------------------------------------------------------ books
    async def snapshot(self, inst: InstrumentId) -> tuple[L2Snapshot | None, str | None]:
        """The latest ccxt.pro book of ``inst`` and None, or None and why there is none (not
        started within ``pro_first_book_timeout_s``, reconnecting after an error, too many books).
        Starts the watch on first use. Never raises for venue trouble."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a new asyncio.run): the old tasks are gone
            if self._loop is not None:
                log.info("ccxt.pro: new event loop; dropping %d watches of the old one", len(self._watches))
            self._watches.clear()
            self._exchanges.clear()  # their sessions belong to the old loop
            self._reaper = None
            self._loop = loop
        w = self._watches.get(inst)
        if w is None:
            if len(self._watches) >= self._cfg.pro_max_books:
                return None, (
                    f"ccxt.pro: already watching the limit of {self._cfg.pro_max_books} books "
                    "(data_engine.pro_max_books)"
                )
            w = self._watches[inst] = _Watch(inst)
            w.last_asked = self._clock()
            w.task = asyncio.create_task(self._run(w), name=f"ccxt.pro {inst}")
            self._ensure_reaper()
            w.waiting += 1
            try:
                with contextlib.suppress(TimeoutError):  # asyncio.timeout: see storage/writer.py
                    async with asyncio.timeout(self._cfg.pro_first_book_timeout_s):
                        await w.first.wait()
            finally:
                w.waiting -= 1
        w.last_asked = self._clock()
        ob = w.book
        if ob is None:
            if w.last_error:
                retry = (
                    ""
                    if w.retry_at is None
                    else f"; retrying in {max(0.0, w.retry_at - self._clock()):.1f} s"
                )
                return None, f"ccxt.pro {inst.venue} {inst.symbol}: {w.last_error}{retry}"
            return None, (
                f"ccxt.pro {inst.venue} {inst.symbol}: no book within "
                f"{self._cfg.pro_first_book_timeout_s:g} s of subscribing"
            )
        from ccxt.base.decimal_to_precision import number_to_string  # ccxt only once a book is watched

        n2s, levels = number_to_string, self._cfg.pro_book_levels
        ts_ms, nonce = ob.get("timestamp"), ob.get("nonce")
        return (
            L2Snapshot(
                instrument=inst,
                bids=[(n2s(lv[0]), n2s(lv[1])) for lv in ob["bids"][:levels]],
                asks=[(n2s(lv[0]), n2s(lv[1])) for lv in ob["asks"][:levels]],
                sequence=int(nonce) if nonce is not None else None,
                ts_event=None if ts_ms is None else int(ts_ms) * 1_000_000,
                ts_recv=w.recv_ns,
            ),
            None,
        )

    async def _exchange(self, venue: str) -> Any:
        exchange = self._exchanges.get(venue)
        if exchange is None:
            if self._factory is None:
                self._factory = default_pro_factory(self.settings)
            exchange = self._exchanges[venue] = self._factory(venue)
            exchange.has["fetchCurrencies"] = False
        if not exchange.markets and self.engine is not None:
            exchange.set_markets(list((await self.engine.markets(venue)).values()))
        return exchange

    async def _run(self, w: _Watch) -> None:
        inst = w.inst
        while True:
            try:
                exchange = await self._exchange(inst.venue)
                # no limit: the venue's default depth (venues accept only their own limits)
                w.book = await exchange.watch_order_book(inst.symbol)
                w.recv_ns = time.time_ns()
                w.updates += 1
                w.attempt, w.retry_at = 0, None
                w.first.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost, venue error, bad message: drop and retry
                w.book = None
                w.errors += 1
                w.last_error = _short(exc)
                delay = backoff_delay_s(
                    w.attempt, self._cfg.pro_backoff_initial_s, self._cfg.pro_backoff_max_s
                )
                w.attempt += 1
                w.retry_at = self._clock() + delay
                w.first.set()  # a first caller waiting gets the reason now, not after the timeout
                log.warning("ccxt.pro %s: %s; retrying in %.2f s", inst, w.last_error, delay)
                await asyncio.sleep(delay)
                w.reconnects += 1

    # ------------------------------------------------------------------ idle books
    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_loop(), name="ccxt.pro idle reaper")

    async def _reap_loop(self) -> None:
        period = max(0.05, min(5.0, self._cfg.pro_idle_ttl_s / 4))
        while self._watches:
            await asyncio.sleep(period)
            await self.reap_idle()

    async def reap_idle(self) -> list[InstrumentId]:
        """Stop watching books nobody asked for during ``pro_idle_ttl_s``; the ones stopped."""
        now = self._clock()
        idle = [
            i
            for i, w in self._watches.items()
            if not w.waiting and now - w.last_asked > self._cfg.pro_idle_ttl_s
        ]
        for inst in idle:
            await self._stop(inst)
        return idle

    async def _stop(self, inst: InstrumentId) -> None:
        w = self._watches.pop(inst, None)
        if w is None:
            return
        if w.task is not None:
            w.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await w.task
        exchange = self._exchanges.get(inst.venue)
        if exchange is None:
            return
        if not any(i.venue == inst.venue for i in self._watches):
            self._exchanges.pop(inst.venue, None)
            with contextlib.suppress(Exception):
                await exchange.close()
        elif exchange.has.get("unWatchOrderBook"):
            with contextlib.suppress(Exception):
                await exchange.un_watch_order_book(inst.symbol)
        log.info("ccxt.pro %s: stopped watching (idle for %g s)", inst, self._cfg.pro_idle_ttl_s)

    # ------------------------------------------------------------------ status and lifecycle
    def status(self) -> list[ProBookStatus]:
        """One row per watched book, sorted by venue and symbol."""
        now, wall_ns = self._clock(), time.time_ns()
        out = []
        for inst in sorted(self._watches):
            w = self._watches[inst]
            state = "watching" if w.book is not None else ("reconnecting" if w.retry_at else "starting")
            out.append(
                ProBookStatus(
                    venue=inst.venue,
                    symbol=inst.symbol,
                    state=state,
                    last_update_age_ms=None if w.recv_ns is None else round((wall_ns - w.recv_ns) / 1e6, 1),
                    updates=w.updates,
                    reconnects=w.reconnects,
                    errors=w.errors,
                    last_error=w.last_error,
                    retry_in_s=None if w.retry_at is None else round(max(0.0, w.retry_at - now), 3),
                    idle_s=round(now - w.last_asked, 3),
                )
            )
        return out

    async def close(self) -> None:
        """Cancel every watch and close every ccxt.pro exchange. Safe to call twice."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reaper
        for inst in list(self._watches):
            w = self._watches.pop(inst)
            if w.task is not None:
                w.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w.task
        exchanges, self._exchanges = self._exchanges, {}
        for venue, exchange in exchanges.items():
            try:
                await exchange.close()
            except Exception as exc:  # shutting down: log and go on
                log.debug("closing ccxt.pro %s: %s", venue, exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    if not text:
        return name
    return (text if text.startswith(name) else f"{name}: {text}")[:300]
