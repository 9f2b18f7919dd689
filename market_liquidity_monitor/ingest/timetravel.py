"""Time travel on recorded data: the books of one recording as they were at any instant.

``Timeline`` replays one ``RecordingGroup`` once into a private ``BookStore`` (its own adapter
registry, so adapters that keep per-connection state are copied with the books), keeping an
in-memory checkpoint of the whole replay state every ``every_s`` seconds of recording time: the
store's entries, the adapters and the replayer's source map, deep-copied, and the number of records
consumed. ``at(as_of_ns)`` restores the last checkpoint at or before ``as_of_ns`` and replays the
records after it up to and including ``as_of_ns`` (receive time), so the book is exactly the one a
full replay stopped at ``as_of_ns`` would hold, at the cost of at most ``every_s`` of data.

Times are receive times of the recording machine, ns since the Unix epoch (UTC), the same clock
the books' ``ts_recv_ns`` use; "now" in a rebuilt store is ``as_of_ns`` (book ages are measured
against it).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice, takewhile

from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import ReadStats, RecordingGroup, Replayer
from market_liquidity_monitor.ingest.store import BookStore

__all__ = ["AsOfOutOfRangeError", "TimeRange", "Timeline"]

#: Recording time between two in-memory checkpoints of a ``Timeline`` (seconds).
DEFAULT_CHECKPOINT_EVERY_S = 30.0
#: Rebuilt stores a timeline keeps (the most recently asked instants), so a slider that comes back
#: to an instant, or several questions at the same instant, do not replay again.
SEEK_CACHE = 8


class AsOfOutOfRangeError(InvalidInputError):
    """``as_of`` is outside the time a recording has a synced book of the instrument."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The instants a book can be rebuilt at: ``first_ns`` = the first time the book was synced
    (its first snapshot applied), ``last_ns`` = the last record of its recording (receive times,
    ns since the epoch, UTC)."""

    instrument: InstrumentId
    recording: str
    first_ns: int
    last_ns: int

    def check(self, as_of_ns: int) -> None:
        """Raise ``AsOfOutOfRangeError`` naming the valid range when ``as_of_ns`` is outside it."""
        if not self.first_ns <= as_of_ns <= self.last_ns:
            raise AsOfOutOfRangeError(
                f"as_of {iso_ns(as_of_ns)} is outside the recording of {self.instrument}: its book "
                f"can be rebuilt from {iso_ns(self.first_ns)} to {iso_ns(self.last_ns)} (book time, UTC)"
            )


@dataclass(frozen=True, slots=True)
class AsOf:
    """An instant asked for, absolute or relative to a book's recording (``resolve``).

    Exactly one form: ``ns`` (absolute, ns since the epoch, UTC); ``before_end_ns`` ("5 minutes
    before the end": the recording's last record minus this); ``month_day`` + ``time_ns`` (a date
    without a year, "23:58 on 8 Aug": the year of the recording that contains it); ``time_ns`` alone
    (a time of day, "at 23:58": the day of the recording that contains it). ``text``: as written
    in the canonical form (``2024-08-08T23:58:00Z``, ``end-300s``, ``--08-08T23:58:00Z``,
    ``T23:58:00Z``)."""

    text: str
    ns: int | None = None
    before_end_ns: int | None = None
    month_day: tuple[int, int] | None = None
    time_ns: int | None = None

    def resolve(self, rng: TimeRange) -> int:
        """The absolute instant (ns) this means for a book recorded over ``rng``. A date or time
        without a year or day that falls in none of the recording's days raises
        ``AsOfOutOfRangeError`` naming the range."""
        if self.ns is not None:
            return self.ns
        if self.before_end_ns is not None:
            return rng.last_ns - self.before_end_ns
        from datetime import UTC, datetime, timedelta

        first = datetime.fromtimestamp(rng.first_ns / 1e9, tz=UTC)
        last = datetime.fromtimestamp(rng.last_ns / 1e9, tz=UTC)
        days = []
        d = last.date()
        while d >= first.date() and len(days) < 400:
            days.append(d)
            d -= timedelta(days=1)
        epoch = datetime(1970, 1, 1, tzinfo=UTC).date()
        candidates = []
        for day in days:
            if self.month_day is not None and (day.month, day.day) != self.month_day:
                continue
            candidates.append((day - epoch).days * 86_400 * 1_000_000_000 + self.time_ns)
        for ns in candidates:  # latest day first
            if rng.first_ns <= ns <= rng.last_ns:
                return ns
        if candidates:
            return candidates[0]  # checked by the caller: out of range, with the range named
        raise AsOfOutOfRangeError(
            f"as_of {self.text} is on none of the days of the recording of {rng.instrument}: its book "
            f"can be rebuilt from {iso_ns(rng.first_ns)} to {iso_ns(rng.last_ns)} (book time, UTC)"
        )


@dataclass(slots=True)
class _Checkpoint:
    ts_ns: int  # receive time of the last record consumed (0 = before the first)
    position: int  # records consumed
    state: tuple  # deep copy of (store entries, adapters, replayer source map)


class Timeline:
    """Books of one recording at any instant (module docstring).

    ``registry_factory()`` returns a fresh adapter registry (``AdapterRegistry``); ``store_factory
    (registry, clock)`` a fresh ``BookStore`` configured like the main one. Thread-safe (one lock).
    """

    def __init__(
        self,
        group: RecordingGroup,
        registry_factory: Callable[[], object],
        store_factory: Callable[[object, ReplayClock], BookStore],
        every_s: float = DEFAULT_CHECKPOINT_EVERY_S,
    ):
        if not every_s > 0:
            raise ValueError(f"every_s must be > 0, got {every_s!r}")
        self.group = group
        self._registry_factory = registry_factory
        self._store_factory = store_factory
        self.every_ns = int(every_s * 1e9)
        self._checkpoints: list[_Checkpoint] = []
        self._ranges: dict[InstrumentId, TimeRange] = {}
        self._seeks: OrderedDict[int, BookStore] = OrderedDict()
        self._lock = threading.RLock()
        self.built = False
        self.seeks = 0  # rebuilds done (not answered from the seek cache)
        self.records_replayed = 0  # records replayed by seeks after their checkpoint

    @staticmethod
    def _snapshot(store: BookStore, registry, rp: Replayer) -> tuple:
        return copy.deepcopy((store._entries, registry._instances, rp._by_source))

    def build(self) -> None:
        """Replay the recording once, keeping the checkpoints and each instrument's range (idempotent)."""
        with self._lock:
            if self.built:
                return
            registry = self._registry_factory()
            clock = ReplayClock()
            store = self._store_factory(registry, clock)
            rp = Replayer(store, registry, clock=clock)
            cps = [_Checkpoint(0, 0, self._snapshot(store, registry, rp))]
            first_synced: dict[InstrumentId, int] = {}
            next_ts: list[int | None] = [None]
            every = self.every_ns

            def on_record(rec, events) -> None:
                ts = rec.ts_recv_ns
                for ev in events:
                    inst = ev.instrument
                    if inst not in first_synced and store.entry(inst).book.quality.synced:
                        first_synced[inst] = ts
                if next_ts[0] is None:
                    next_ts[0] = ts + every
                elif ts >= next_ts[0]:
                    cps.append(_Checkpoint(ts, rp.stats.records, self._snapshot(store, registry, rp)))
                    next_ts[0] = ts + every

            rp.run(self.group.records(ReadStats()), on_record=on_record)
            last = rp.stats.last_ts_ns
            self._checkpoints = cps
            self._ranges = {
                inst: TimeRange(inst, self.group.name, first, last)
                for inst, first in first_synced.items()
                if last is not None
            }
            self.built = True

    def ranges(self) -> dict[InstrumentId, TimeRange]:
        """Per instrument of the recording that was ever synced: its ``TimeRange`` (builds)."""
        self.build()
        return dict(self._ranges)

    def range_of(self, inst: InstrumentId) -> TimeRange:
        """The instrument's range; ``AsOfOutOfRangeError`` if this recording never synced its book."""
        self.build()
        r = self._ranges.get(inst)
        if r is None:
            raise AsOfOutOfRangeError(f"the recording {self.group.name} never had a synced book of {inst}")
        return r

    @property
    def checkpoints(self) -> int:
        return len(self._checkpoints)

    def at(self, as_of_ns: int) -> BookStore:
        """A store holding every book of the recording as it was at ``as_of_ns`` (records received
        at or before it applied), its clock at ``as_of_ns``. Do not modify it: it is cached."""
        self.build()
        with self._lock:
            hit = self._seeks.get(as_of_ns)
            if hit is not None:
                self._seeks.move_to_end(as_of_ns)
                return hit
            cp = self._checkpoints[0]
            for c in self._checkpoints:  # few dozen: a scan is fine
                if c.ts_ns <= as_of_ns:
                    cp = c
                else:
                    break
            registry = self._registry_factory()
            entries, adapters, by_source = copy.deepcopy(cp.state)
            registry._instances = adapters
            clock = ReplayClock(cp.ts_ns)
            store = self._store_factory(registry, clock)
            store._entries = entries
            rp = Replayer(store, registry, clock=clock)
            rp._by_source = by_source
            records = islice(self.group.records(ReadStats()), cp.position, None)
            rp.run(takewhile(lambda r: r.ts_recv_ns <= as_of_ns, records))
            clock.advance(as_of_ns)
            self.seeks += 1
            self.records_replayed += rp.stats.records
            self._seeks[as_of_ns] = store
            while len(self._seeks) > SEEK_CACHE:
                self._seeks.popitem(last=False)
            return store
