"""BookStore: one synced L2 book per instrument, with its quality, last ticker and recent trades.

Analytics read books only through the store, which refuses to hand out a book that is not synced
and reports staleness relative to the injected clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import NoReturn

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.sync import BookSync, DeltaOutcome
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import (
    BadUpdateError,
    BookNotReadyError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.events import BookTicker, L2Delta, L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import Clock, WallClock
from market_liquidity_monitor.venues.base import Event

QUALITY_KEYS = (
    "synced",
    "resyncs",
    "gaps",
    "last_gap_ts_ns",
    "checksums_verified",
    "checksum_failures",
    "crossed",
    "crossed_episodes",
    "stale",
    "stale_episodes",
    "rejected_updates",
    "age_ms",
    "stale_after_ms",
    "sequence",
    "messages",
    "updates_applied",
)


@dataclass(slots=True)
class BookEntry:
    instrument: InstrumentId
    book: L2Book
    sync: BookSync
    ticker: BookTicker | None = None
    trades: deque = field(default_factory=lambda: deque(maxlen=1000))
    messages: int = 0
    checksum_failed: bool = False
    # The feed that keeps this book is known to be down (a bus replica whose worker stopped
    # sending heartbeats, ``bus/follower.py``): the book is stale whatever its age says.
    feed_down: bool = False


class BookStore:
    """Routes normalized events to per-instrument ``BookSync`` state machines.

    ``adapter_for(venue)`` must return the venue's adapter (its sequence rule, contract sizes and
    checksum). ``windows_bps`` are tracked incrementally on every book.
    """

    def __init__(
        self,
        adapter_for,
        windows_bps: Iterable[float] = (),
        clock: Clock | None = None,
        stale_after_ms: int = 10_000,
        max_buffer: int = 10_000,
    ):
        self._adapter_for = adapter_for
        self._windows = tuple(windows_bps)
        self._entries: dict[InstrumentId, BookEntry] = {}
        self._views: dict[tuple[InstrumentId, int | None], tuple[tuple, BookView]] = {}
        self.clock = clock or WallClock()
        # Recorded data: books from different captures live on different timelines, each with
        # its own replay clock ("now" = the end of that capture).
        self._clocks: dict[InstrumentId, Clock] = {}
        self.stale_after_ns = stale_after_ms * 1_000_000
        self._max_buffer = max_buffer
        # Called with each event before it is routed (the liquidity recorder samples the book as it
        # stood just before, ingest/liquidity_recorder.py); None = nothing is called.
        self.observer = None

    # --------------------------------------------------------------- routing

    def entry(self, inst: InstrumentId) -> BookEntry:
        e = self._entries.get(inst)
        if e is None:
            adapter = self._adapter_for(inst.venue)
            book = L2Book(inst, contract_size=adapter.contract_size(inst.symbol))
            for w in self._windows:
                book.track_window(w)
            e = BookEntry(inst, book, BookSync(book, adapter.sequence_rule, self._max_buffer))
            self._entries[inst] = e
        return e

    def on_event(self, ev: Event) -> DeltaOutcome | None:
        """Route one normalized event to its instrument's entry.

        Deltas and snapshots go through ``BookSync`` (sequence rule, buffering, gap -> resync),
        then the venue checksum is verified when the event carries one. Returns the delta's
        ``DeltaOutcome`` (None for other events).
        """
        obs = self.observer
        if obs is not None:
            obs(ev)
        e = self.entry(ev.instrument)
        e.messages += 1
        if isinstance(ev, L2Delta):
            before = e.book.ts_recv_ns
            try:
                out = e.sync.on_delta(ev)
            except (ValueError, TypeError, IndexError, ArithmeticError, AttributeError) as exc:
                self._reject(e, ev, exc)
            if out is DeltaOutcome.APPLIED:
                self._updated(e, before)
                if ev.checksum is not None:
                    self._verify(e, ev.checksum, ev.ts_recv)
            return out
        if isinstance(ev, L2Snapshot):
            before = e.book.ts_recv_ns
            try:
                e.sync.on_snapshot(ev)
            except (ValueError, TypeError, IndexError, ArithmeticError, AttributeError) as exc:
                self._reject(e, ev, exc)
            if e.book.ts_recv_ns != before:
                self._updated(e, before)
            if ev.checksum is not None and e.book.quality.synced:
                self._verify(e, ev.checksum, ev.ts_recv)
            return None
        if isinstance(ev, BookTicker):
            e.ticker = ev
        elif isinstance(ev, Trade):
            e.trades.append(ev)
        return None

    def _reject(self, e: BookEntry, ev: Event, exc: BaseException) -> NoReturn:
        """An update or snapshot whose levels cannot be applied (NaN/Infinity, a negative size, a
        level that is not ``[price, size]``): it may have left the book half-updated, so the book is
        discarded and waits for a new snapshot (not a sequence gap), the rejection is counted in its quality,
        and ``BadUpdateError`` tells the caller (live: fetch a snapshot; replay: count per file)."""
        e.book.quality.rejected_updates += 1
        e.sync.invalidate()
        raise BadUpdateError(
            f"{e.instrument}: {type(ev).__name__} not applied ({type(exc).__name__}: {exc}); "
            "book discarded until the next snapshot"
        ) from exc

    def _updated(self, e: BookEntry, before_ns: int | None) -> None:
        """A book update ended any stale episode. An update arriving more than ``stale_after_ms``
        after the previous one closes an episode nobody observed (counted once)."""
        q = e.book.quality
        now = e.book.ts_recv_ns
        if (
            not q.stale
            and before_ns is not None
            and now is not None
            and now - before_ns > self.stale_after_ns
        ):
            q.stale_episodes += 1
        q.stale = False

    def _verify(self, e: BookEntry, checksum: int, ts_recv: int) -> None:
        adapter = self._adapter_for(e.instrument.venue)
        q = e.book.quality
        if adapter.verify_checksum(e.book, checksum):
            q.checksums_verified += 1
            return
        q.checksum_failures += 1
        q.last_gap_ts_ns = ts_recv
        # A failed checksum means the book diverged: discard it and wait for a new snapshot.
        e.sync.invalidate()

    # ---------------------------------------------------------------- access

    def instruments(self) -> list[InstrumentId]:
        return sorted(self._entries)

    def count(self) -> int:
        """Number of books held (books are never removed)."""
        return len(self._entries)

    def venues(self) -> list[str]:
        return sorted({i.venue for i in self._entries})

    def find(self, venue: str, symbol: str) -> BookEntry:
        """The entry for ``venue``/``symbol``; raises ``UnknownVenueError``/``UnknownSymbolError``
        naming the closest valid ones."""
        inst = InstrumentId(venue, symbol)
        e = self._entries.get(inst)
        if e is not None:  # the hot path of every book question: no scan of the other books
            return e
        venues = self.venues()
        if venue not in venues:
            raise UnknownVenueError(venue, venues)
        raise UnknownSymbolError(symbol, [i.symbol for i in self._entries if i.venue == venue], venue)

    def set_clock(self, inst: InstrumentId, clock: Clock) -> None:
        """Measure this instrument's book age against ``clock`` instead of the store's clock."""
        self._clocks[inst] = clock

    def clock_of(self, inst: InstrumentId) -> Clock:
        return self._clocks.get(inst, self.clock)

    def age_ms(self, e: BookEntry) -> float | None:
        ts = e.book.ts_recv_ns
        return None if ts is None else (self.clock_of(e.instrument).now_ns() - ts) / 1e6

    def refresh_stale(self, e: BookEntry, now_ns: int | None = None) -> bool:
        """Update the book's ``stale`` flag: stale = no book update (delta or snapshot applied)
        for more than ``stale_after_ms`` before ``now_ns`` (default: the book's clock), or its
        feed is known to be down (``BookEntry.feed_down``); tickers, trades, heartbeats and pings
        do not count. A new stale episode is counted when the flag
        turns on. Returns the flag."""
        q = e.book.quality
        ts = e.book.ts_recv_ns
        if now_ns is None:
            now_ns = self.clock_of(e.instrument).now_ns()
        stale = (ts is not None and now_ns - ts > self.stale_after_ns) or e.feed_down
        if stale and not q.stale:
            q.stale_episodes += 1
        q.stale = stale
        return stale

    def quality(self, e: BookEntry) -> dict:
        """The book's integrity as a stable dict (keys: ``QUALITY_KEYS``, in that order).

        ``synced``; ``resyncs``, ``gaps``, ``checksums_verified``, ``checksum_failures``,
        ``crossed_episodes``, ``stale_episodes``, ``rejected_updates`` (updates whose levels could
        not be applied: NaN, negative size, malformed) (counters, only grow); ``last_gap_ts_ns`` (ns
        since the epoch, or None); ``crossed``, ``stale`` (flags, now); ``age_ms`` (ms since the
        last book update against the book's clock, None before any); ``stale_after_ms``;
        ``sequence`` (venue update id or None); ``messages`` (events routed to the instrument);
        ``updates_applied`` (deltas applied). Calling it refreshes the stale flag.
        """
        self.refresh_stale(e)
        q = e.book.quality
        age = self.age_ms(e)
        d = q.as_dict()
        d["age_ms"] = None if age is None else round(age, 1)
        d["stale_after_ms"] = self.stale_after_ns // 1_000_000
        d["sequence"] = e.book.sequence
        d["messages"] = e.messages
        d["updates_applied"] = e.sync.counters.deltas_applied
        return d

    def view(self, venue: str, symbol: str, max_levels: int | None = None) -> BookView:
        """A float view of a synced book; raises ``BookNotReadyError`` if it is resyncing."""
        e = self.find(venue, symbol)
        if not e.book.quality.synced:
            raise BookNotReadyError(
                f"{e.instrument}: book is not synced (waiting for a snapshot; gaps={e.book.quality.gaps}"
                + (
                    f", rejected updates={e.book.quality.rejected_updates}"
                    if e.book.quality.rejected_updates
                    else ""
                )
                + ")"
            )
        b = e.book
        # The float view only changes with the book: reuse it until an update, a snapshot or a
        # resync touches the book (profile of the API: building it was ~20% of request CPU).
        key = (id(b), b.updates_applied, b.sequence, b.ts_event_ns, b.ts_recv_ns, b.level_count(),
               b.quality.resyncs, b.price_decimals, b.size_decimals)  # fmt: skip
        cached = self._views.get((e.instrument, max_levels))
        if cached is None or cached[0] != key:
            cached = (key, b.view(max_levels))
            self._views[(e.instrument, max_levels)] = cached
        # quality (age_ms...) is of now: a fresh frozen view sharing the cached arrays (read-only)
        return replace(cached[1], quality=self.quality(e))
