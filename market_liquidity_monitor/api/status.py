"""System status: is every watched book synced and fresh?

The watched instruments are ``settings.api.watch_symbols`` on every venue of ``settings.venues``
(``BTC/USDT`` resolves per venue, e.g. to ``BTC/USDT:USDT`` on ``binanceusdm``). Overall status:

- ``warming``: the books are still being loaded (recorded data replayed at start-up) or have not
  had their first snapshot yet (live feeds);
- ``live``: every watched instrument has a synced, fresh (``age_ms <= stale_after_ms``), uncrossed
  book;
- ``degraded``: warm-up is over and at least one does not; ``reasons`` says which and why.

On recorded data "fresh" is measured against the recording's own clock: a book whose capture ends
earlier than the others of the same session is stale (the Binance USD-M capture of ``../shared/data``
stops five minutes before spot and COIN-M, so the default venues give ``degraded``).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from market_liquidity_monitor.analytics.quality import BookProblem, book_problems
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.market_data import MarketData

log = logging.getLogger(__name__)


@dataclass
class Watch:
    """One watched (venue, symbol): the instrument it resolved to, or why it did not."""

    venue: str
    symbol: str
    instrument: InstrumentId | None = None
    error: str | None = None


@dataclass
class Readiness:
    """Which watched books are loaded, filled by the warm-up thread (recorded data) or taken from
    the store as feeds sync them (live). Thread-safe: the warm-up runs in its own thread."""

    settings: Settings
    market: MarketData
    watches: list[Watch] = field(default_factory=list)
    ready: set[InstrumentId] = field(default_factory=set)
    warming: bool = True
    started_s: float = field(default_factory=time.monotonic)
    finished_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """On recorded data, resolve the watch list and load those books in a background thread.
        Live: nothing to load; the watch list is resolved against the store at each ``snapshot()``."""
        if not self.market.is_recorded:
            self.warming = False  # nothing to load; pending books are found by snapshot()
            self._freeze_heap()
            return
        self._thread = threading.Thread(target=self._warm, name="mlm-warmup", daemon=True)
        self._thread.start()

    def _warm(self) -> None:
        try:
            for venue in self.settings.venues:
                for symbol in self.settings.api.watch_symbols:
                    w = Watch(venue, symbol)
                    try:
                        w.instrument = self.market.resolve(symbol, venue)
                        if self.market.is_recorded:
                            self.market.ensure_loaded(w.instrument)
                            self.mark_ready(w.instrument)
                    except MLMError as exc:
                        w.error = str(exc)
                    except Exception as exc:  # a broken recording must not kill the API
                        log.exception("warm-up of %s on %s failed", symbol, venue)
                        w.error = f"loading failed: {type(exc).__name__}"
                    with self._lock:
                        self.watches.append(w)
        finally:
            with self._lock:
                self.warming = False
                self.finished_s = time.monotonic()
            log.info("warm-up done in %.1f s", self.finished_s - self.started_s)
            self._freeze_heap()

    def _freeze_heap(self) -> None:
        """``gc.freeze()`` once start-up is over (``api.gc_freeze_after_warmup``): what is alive
        now (modules, settings, the loaded books) lives as long as the process, and a full
        collection no longer walks it. Python docs, ``gc.freeze``: "move all objects tracked by the
        garbage collector into a permanent generation, i.e. ignore them in all the future
        collections"."""
        if self.settings.api.gc_freeze_after_warmup:
            gc.freeze()
            log.debug("gc: %d objects frozen after start-up", gc.get_freeze_count())

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until warm-up is over (tests, CLI). True if it is."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.warming

    def mark_ready(self, inst: InstrumentId) -> None:
        with self._lock:
            self.ready.add(inst)

    def is_ready(self, inst: InstrumentId) -> bool:
        """A book that may be read without triggering (or racing) a replay."""
        if not self.market.is_recorded:
            return inst in set(self.market.store.instruments())
        with self._lock:
            return inst in self.ready

    def snapshot(self) -> tuple[bool, list[Watch]]:
        """``(warming, watches)``. Live: an instrument not in the store yet is pending (warming)."""
        if not self.market.is_recorded:
            watches, pending = [], False
            for venue in self.settings.venues:
                for symbol in self.settings.api.watch_symbols:
                    w = Watch(venue, symbol)
                    try:
                        w.instrument = self.market.resolve(symbol, venue)
                    except MLMError:
                        w.error = "waiting for the first snapshot"
                        pending = True
                    watches.append(w)
            return pending, watches
        with self._lock:
            return self.warming, list(self.watches)


def book_state(
    market: MarketData, inst: InstrumentId, store: Any = None, source: str | None = None
) -> dict[str, Any]:
    """Quality of one book as shown by /api/status, with ``ok`` and a ``problem`` sentence.
    ``store``: the ``BookStore`` holding it (default the market's); ``source``: recording/ws/ccxt_pro/rest."""
    store = store if store is not None else market.store
    e = store.find(inst.venue, inst.symbol)
    q = store.quality(e)
    stale_after = market.settings.analytics.stale_after_ms
    first = next(iter(book_problems(q)), None)  # the most severe present problem, if any
    problem = {
        None: None,
        BookProblem.NOT_SYNCED: f"not synced (waiting for a snapshot; gaps={q.get('gaps', 0)})",
        BookProblem.CROSSED: "crossed (best bid >= best ask)",
        BookProblem.STALE: f"stale: last update {q.get('age_ms')} ms ago (> {stale_after} ms)",
    }[first]
    return {
        "venue": inst.venue,
        "symbol": inst.symbol,
        "source": source or ("recording" if market.is_recorded else "ws"),
        "ok": problem is None,
        "problem": problem,
        "book_ts": e.book.view(1).book_ts_iso if q.get("synced") else None,
        "synced": bool(q.get("synced")),
        "stale": bool(q.get("stale")),
        "crossed": bool(q.get("crossed")),
        "age_ms": q.get("age_ms"),
        "resyncs": q.get("resyncs", 0),
        "gaps": q.get("gaps", 0),
        "checksum_failures": q.get("checksum_failures", 0),
        "messages": q.get("messages", 0),
    }


def compute_status(
    readiness: Readiness,
    *,
    breakers: list[dict[str, Any]],
    websocket: dict[str, Any],
    writer: dict[str, Any] | None,
    feeds: list[dict[str, Any]] | None = None,
    rest_books: Any = None,
    storage: dict[str, Any] | None = None,
    cache: Any = None,
    pro_books: Any = None,
    pro_watches: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The /api/status body (see ``StatusResponse`` for the shape).

    The overall status is judged on the watched books (``api.watch_symbols`` x ``venues``);
    ``books`` lists every book held (watched ones first, ``watched`` true), recorded/WebSocket books
    of ``readiness.market``, ccxt.pro books of ``pro_books`` and REST snapshots of ``rest_books``
    (``BookStore``s; ``pro_watches``: ``HealthService.pro_watches()``), and ``venues``
    every venue with a book or configured, so the app's pickers show everything that is loaded."""
    market = readiness.market
    warming, watches = readiness.snapshot()
    reasons: list[str] = []
    books: list[dict[str, Any]] = []
    pending = 0
    for w in watches:
        pro_row = _pro_row(market, pro_books, w) if w.instrument is None and not market.is_recorded else None
        if pro_row is not None:  # no native feed for it, but a ccxt.pro book: judged on that
            books.append(pro_row)
            if not pro_row["ok"]:
                reasons.append(f"{w.venue} {w.symbol}: {pro_row['problem']}")
            continue
        if w.instrument is None and not market.is_recorded:
            pending += 1
            books.append({"venue": w.venue, "symbol": w.symbol, "ok": False, "problem": w.error})
            continue
        if w.instrument is None:
            reasons.append(f"{w.symbol} on {w.venue}: {w.error}")
            books.append({"venue": w.venue, "symbol": w.symbol, "ok": False, "problem": w.error})
            continue
        if not readiness.is_ready(w.instrument) or (
            not market.is_recorded and not market.store.find(w.venue, w.instrument.symbol).book.quality.synced
        ):
            pending += 1
            books.append({"venue": w.venue, "symbol": w.instrument.symbol, "ok": False, "problem": "loading"})
            continue
        row = book_state(market, w.instrument)
        books.append(row)
        if not row["ok"]:
            reasons.append(f"{w.instrument}: {row['problem']}")
    if warming or (pending and not market.is_recorded):
        overall = "warming"
        reasons.insert(0, "loading books" if market.is_recorded else "waiting for the first snapshots")
    elif reasons or not watches:
        overall = "degraded"
        if not watches:
            reasons.append("no instrument is watched (settings.venues or api.watch_symbols is empty)")
    else:
        overall = "live"
    for b in books:
        b["watched"] = True
    seen = {(b["venue"], b["symbol"]) for b in books}
    stores = [(market.store, None)]
    if pro_books is not None:
        stores.append((pro_books, "ccxt_pro"))
    if rest_books is not None:
        stores.append((rest_books, "rest"))
    for store, source in stores:
        for inst in store.instruments():
            if (inst.venue, inst.symbol) in seen:
                continue
            seen.add((inst.venue, inst.symbol))
            try:
                row = book_state(market, inst, store, source)
            except MLMError as exc:  # removed while we looked: report it, do not fail the status
                row = {"venue": inst.venue, "symbol": inst.symbol, "ok": False, "problem": str(exc)}
            row["watched"] = False
            books.append(row)
    down = {(w["venue"], w["symbol"]): w for w in pro_watches or [] if w.get("state") != "watching"}
    for b in books:  # a ccxt.pro book whose watch dropped is not served: say so, whatever its age
        w = down.get((b["venue"], b["symbol"])) if b.get("source") == "ccxt_pro" else None
        if w is not None and b.get("ok"):
            b["ok"] = False
            b["problem"] = f"ccxt.pro watch {w['state']}: {w.get('last_error') or 'no book yet'}"
    by_venue: dict[str, dict[str, Any]] = {}
    venues = list(dict.fromkeys([*readiness.settings.venues, *sorted({b["venue"] for b in books})]))
    for venue in venues:
        vb = [b for b in books if b["venue"] == venue]
        conns = [f for f in feeds or [] if f.get("venue") == venue]
        if conns:
            up = sum(1 for f in conns if f.get("connected"))
            conn = "connected" if up == len(conns) else ("partial" if up else "disconnected")
        elif market.is_recorded:
            conn = "replay"
        elif any(w.get("venue") == venue and w.get("state") == "watching" for w in pro_watches or []):
            conn = "ccxt_pro"
        elif any(b.get("source") == "rest" for b in vb):
            conn = "rest"
        else:
            conn = "not_connected"
        by_venue[venue] = {
            "venue": venue,
            "connection": conn,
            "configured": venue in readiness.settings.venues,
            "books_ok": sum(1 for b in vb if b.get("ok")),
            "books_total": len(vb),
            "watched_total": sum(1 for b in vb if b.get("watched")),
        }
    return {
        "status": overall,
        "reasons": reasons,
        "mode": "recorded" if market.is_recorded else "live",
        "warmup_s": None
        if readiness.finished_s is None
        else round(readiness.finished_s - readiness.started_s, 3),
        "venues": list(by_venue.values()),
        "books": books,
        "books_total": len(books),
        "circuit_breakers": breakers,
        "ccxt_pro": list(pro_watches or []),
        "writer": writer,
        "websocket": websocket,
        "storage": storage,
        "cache": None if cache is None else _cache_state(cache),
        "recordings": _recordings_state(market) if market.is_recorded else None,
    }


def _recordings_state(market: Any) -> dict[str, Any]:
    rs = market.read_stats
    return {"corrupt_lines": rs.corrupt, "rejected_updates": rs.rejected, "files_with_problems": rs.report()}


def _pro_row(market: Any, pro_books: Any, w: Any) -> dict[str, Any] | None:
    """The /api/status row of a watched symbol held as a ccxt.pro book, or None."""
    if pro_books is None:
        return None
    try:
        e = pro_books.find(w.venue, w.symbol)
    except MLMError:
        return None
    return book_state(market, e.instrument, pro_books, "ccxt_pro")


def _cache_state(cache: Any) -> dict[str, Any]:
    """``data_engine.cache.CacheStatus`` as a dict: backend in use, configured, degraded, last_error."""
    return cache if isinstance(cache, dict) else dataclasses.asdict(cache)
