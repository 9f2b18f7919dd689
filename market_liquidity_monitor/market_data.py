"""MarketData: the one door through which tools, the API and the CLI reach books.

It resolves what a user typed ("BTC" on "binance") to an instrument that has a book, makes sure
that book is loaded (replaying its recording on first use when running on recorded data), and
hands out ``BookView`` images with their quality. Live ingest fills the same ``BookStore``.

On recorded data it also samples each book while its recording replays (``depth_history``): every
``depth_sample_every`` depth updates of an instrument, the book's receive time and its depth
within the store's windows (the store's incremental window totals, not a view), so that
liquidity-crunch detection has a history although the replay runs in one go.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import MLMError, UnknownSymbolError, UnknownVenueError
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId, MarketType
from market_liquidity_monitor.ingest.checkpoint import (
    CheckpointCache,
    default_cache_dir,
    entry_state,
    recording_key,
    restore_entry,
)
from market_liquidity_monitor.ingest.clock import Clock, ReplayClock, WallClock
from market_liquidity_monitor.ingest.replay import FileProblems, ReadStats, RecordingGroup, Replayer, discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.ingest.timetravel import AsOfOutOfRangeError, Timeline, TimeRange
from market_liquidity_monitor.venues.registry import AdapterRegistry

log = logging.getLogger(__name__)

# Quote currencies preferred when the user names only a base asset, most liquid first.
QUOTE_PREFERENCE = ("USDT", "USD", "USDC", "FDUSD", "BUSD", "EUR", "GBP", "BTC", "ETH")
# Venues whose most liquid books are quoted in US dollars (fiat): USD first there (their USDT books
# are thin), e.g. Bitstamp ETH/USD vs ETH/USDT.
USD_FIRST_VENUES = frozenset({"bitstamp", "coinbase", "kraken", "gemini", "bitfinex"})
_USD_FIRST = ("USD", "USDT", "USDC", "EUR", "GBP", "BTC", "ETH")
# USD-like quotes are interchangeable for "ETH/USD"-style requests when the exact quote is absent.
USD_LIKE = ("USD", "USDT", "USDC", "FDUSD", "BUSD")
#: Depth updates (deltas and snapshots routed to an instrument) between two replay depth samples.
DEPTH_SAMPLE_EVERY = 2
#: Depth samples kept per instrument and recording (the oldest are dropped beyond).
DEPTH_HISTORY_MAX = 16_384


@dataclass(slots=True)
class DepthHistory:
    """Depth of one book sampled during the replay of one recording, oldest first.

    ``ts_ns``: the book's receive time at each sample (recording time, ns; non-decreasing).
    ``depth``: per sample, ``(bid_size, bid_notional, ask_size, ask_notional)`` within each of
    ``windows_bps`` (same order), floats; sizes in base units and notionals in quote units for
    spot/linear books; for inverse contracts the sizes are ``None`` and the notionals are
    contracts x contract size (quote currency). ``every``: depth updates between samples.
    """

    instrument: InstrumentId
    recording: str
    windows_bps: tuple[float, ...]
    every: int
    ts_ns: deque[int]
    depth: deque[tuple[tuple[float | None, float, float | None, float], ...]]

    def __len__(self) -> int:
        return len(self.ts_ns)

    def series(self, window_bps: float, unit: str = "notional") -> list[float | None]:
        """Bid + ask depth within ``window_bps`` at each sample (``unit``: notional or size).

        Raises ``ValueError`` for a window that was not sampled."""
        i = self.windows_bps.index(window_bps)
        if unit == "size":
            return [None if d[i][0] is None else d[i][0] + d[i][2] for d in self.depth]
        return [d[i][1] + d[i][3] for d in self.depth]


class ReplayWitness(Protocol):
    """What observes a replay besides the books (the liquidity-history recorder, whose rows go to
    the history database: ``HistoryService``), so that a checkpoint can stand in for the replay.

    ``begin()`` before a replay returns a token; ``end(token, instruments)`` after it returns a
    JSON-safe record of what the observer did for ``instruments`` (stored in the checkpoint) or
    None (nothing to vouch for: the checkpoint then has no record and is never restored while
    observed); ``accept(record)`` at restore time is True only when everything the replay wrote
    is stored, and then sets the observer's state as the replay left it; False: replay."""

    def begin(self) -> Any: ...

    def end(self, token: Any, instruments: Iterable[InstrumentId]) -> dict | None: ...

    def accept(self, record: dict) -> bool: ...


def session_of(group: RecordingGroup) -> str:
    """The timeline a recording belongs to: the hftbacktest set was recorded simultaneously (one
    timeline, one clock); every other capture has its own, so "now" for its books is its own end."""
    return "hftbacktest" if group.fmt == "hftbacktest" else group.name


def pick_instrument(
    sym: str, candidates: list[InstrumentId], default_venue: str, market: MarketType | None = None
) -> InstrumentId | None:
    """The instrument among ``candidates`` that the user symbol ``sym`` (upper case) means.

    An exact unified symbol wins (the default venue first). ``BASE/QUOTE`` prefers spot, then any
    market of that pair; a USD quote also matches USDT/USDC... books when no USD book exists. A bare
    base asset (``BTC``; ``XBT`` is BTC) prefers spot, the default venue, the quote order of
    ``QUOTE_PREFERENCE``, then perpetuals before dated futures. ``market`` restricts the market type.
    None when nothing matches.
    """
    if market is not None:
        candidates = [i for i in candidates if i.market_type is market]
    exact = [i for i in candidates if i.symbol == sym]
    if exact:
        return min(exact, key=lambda i: (i.venue != default_venue, i.venue))
    if "/" in sym:
        base, _, quote = sym.partition("/")
        quote = quote.split(":")[0]
        same = [
            i for i in candidates if i.base == base and i.quote == quote and i.market_type is MarketType.SPOT
        ]
        same = same or [i for i in candidates if i.base == base and i.quote == quote]
        if not same and quote in USD_LIKE:
            same = [i for i in candidates if i.base == base and i.quote in USD_LIKE]
        return _rank(same, default_venue)
    base = {"XBT": "BTC"}.get(sym, sym)
    return _rank([i for i in candidates if i.base == base], default_venue)


def _rank(items: list[InstrumentId], default_venue: str) -> InstrumentId | None:
    if not items:
        return None

    def key(i: InstrumentId):
        pref = _USD_FIRST if i.venue in USD_FIRST_VENUES else QUOTE_PREFERENCE
        q = pref.index(i.quote) if i.quote in pref else len(pref)
        settle = i.settle or ""
        return (
            i.market_type is not MarketType.SPOT,
            i.venue != default_venue,
            q,
            i.settle is not None,
            "-" in settle,  # dated futures (BTC/USD:BTC-220527) after perpetuals
            i.symbol,
        )

    return min(items, key=key)


class MarketData:
    """Books by instrument, loaded lazily from recordings or filled by live ingest.

    ``progress(group_name, records_done)`` is called while a recording loads (for a CLI progress bar).
    """

    def __init__(
        self,
        settings: Settings,
        store: BookStore | None = None,
        registry: AdapterRegistry | None = None,
        clock: Clock | None = None,
        groups: Iterable[RecordingGroup] = (),
    ):
        self.settings = settings
        self.registry = registry or AdapterRegistry()
        self.clock = clock or WallClock()
        self.store = store or BookStore(
            self.registry,
            windows_bps=settings.analytics.depth_windows_bps,
            clock=self.clock,
            stale_after_ms=settings.analytics.stale_after_ms,
            max_buffer=settings.ingest.max_buffered_deltas,
        )
        self._groups = list(groups)
        self._loaded: set[str] = set()
        self._all_discovered = False  # every group's instruments known (``discovered``)
        self._known: dict[InstrumentId, RecordingGroup] = {}
        self._instrument_list: tuple | None = None
        # resolve() answers per (symbol, venue, market), for the instrument set they were picked
        # from (it only grows): a compare resolved its symbol on every venue by scanning every
        # instrument, ~240 InstrumentId.base reads per request (bench_api compare: ~15% of its CPU).
        self._resolve_memo: tuple[tuple[int, int], dict] = ((-1, -1), {})
        self._lock = threading.RLock()
        self._session_clocks: dict[str, ReplayClock] = {}
        self.read_stats = ReadStats()
        self.progress: Callable[[str, int], None] | None = None
        self.depth_sample_every = DEPTH_SAMPLE_EVERY  # 0 turns replay sampling off
        self.depth_history_max = DEPTH_HISTORY_MAX
        self._depth: dict[InstrumentId, dict[str, DepthHistory]] = {}
        # Disk checkpoints of replayed state (fast starts; ingest/checkpoint.py), None = always replay.
        self.checkpoints: CheckpointCache | None = None
        # Time travel: per instrument, the instants its book can be rebuilt at; per recording, its
        # timeline of in-memory checkpoints (built on the first as_of question).
        self._ranges: dict[InstrumentId, TimeRange] = {}
        self._timelines: dict[str, Timeline] = {}
        self.replays = 0  # recordings replayed (not restored from a checkpoint) by this process
        self.restores = 0  # recordings restored from a disk checkpoint by this process
        # With a store observer (the liquidity-history recorder), a checkpoint is restored only
        # when this witness vouches that what the replay would write is stored (HistoryService).
        self.witness: ReplayWitness | None = None
        for g in self._groups:
            if g.venue_symbols:
                try:
                    adapter = self.registry(g.venue)
                except UnknownVenueError:
                    continue
                for vs in g.venue_symbols:
                    self._known[adapter.instrument(vs)] = g

    @classmethod
    def from_recordings(cls, settings: Settings, data_dir: Path) -> MarketData:
        """Run on recorded data: every recording under ``data_dir`` that an adapter can read.

        "Now" is the recording's time (a ``ReplayClock``), so book ages are measured against it.
        """
        registry = AdapterRegistry()
        groups = [g for g in discover(Path(data_dir)) if g.venue in registry.venues]
        md = cls(settings, registry=registry, clock=ReplayClock(), groups=groups)
        if settings.ingest.checkpoint_cache:
            md.checkpoints = CheckpointCache(settings.ingest.checkpoint_dir or default_cache_dir())
        return md

    # -------------------------------------------------------------- loading

    @property
    def is_recorded(self) -> bool:
        return bool(self._groups)

    @property
    def groups(self) -> list[RecordingGroup]:
        """The recordings this market runs on (those an adapter of its registry can read)."""
        return list(self._groups)

    def claim(self, groups: Iterable[RecordingGroup]) -> None:
        """Mark recordings as fed into the store by someone else (paced playback): they are then
        never loaded lazily, which would replay them into the same store a second time."""
        with self._lock:
            self._loaded.update(g.name for g in groups)

    def load_group(self, group: RecordingGroup) -> None:
        """Replay ``group`` into the store once (idempotent), or restore the state a previous
        process replayed from the disk checkpoint of the same files and settings."""
        with self._lock:
            if group.name in self._loaded:
                return
            clock = self._session_clocks.setdefault(session_of(group), ReplayClock())
            before = set(self.store.instruments())
            key = self._checkpoint_key(group)
            # A checkpoint holds the books' end state, not the frames: when something observes the
            # store's events (the liquidity-history recorder, which writes a metrics row per second
            # of book time), it is restored only if the witness (the history service) finds every
            # row the replay would write already stored; else the recording is replayed so that
            # the history is written.
            observed = self.store.observer is not None
            witness = self.witness if observed else None
            restorable = key is not None and (not observed or witness is not None)
            if not restorable or not self._restore_group(group, key, clock, before, witness):
                self._replay_group(group, clock, before, key, witness)
            if isinstance(self.clock, ReplayClock):
                self.clock.advance(clock.now_ns())
            self._loaded.add(group.name)

    def _checkpoint_params(self) -> dict:
        """The settings that shape a replayed state (part of the checkpoint key)."""
        a, i = self.settings.analytics, self.settings.ingest
        return {
            "windows_bps": [float(w) for w in a.depth_windows_bps],
            "stale_after_ms": a.stale_after_ms,
            "max_buffer": i.max_buffered_deltas,
            "depth_sample_every": self.depth_sample_every,
            "depth_history_max": self.depth_history_max,
        }

    def _checkpoint_key(self, group: RecordingGroup) -> str | None:
        if self.checkpoints is None:
            return None
        try:
            return recording_key(group, self._checkpoint_params())
        except OSError as exc:
            log.warning("cannot key a checkpoint of %s (%s): replaying it", group.name, exc)
            return None

    def _replay_group(
        self, group: RecordingGroup, clock: ReplayClock, before: set, key: str | None,
        witness: ReplayWitness | None = None,
    ) -> None:  # fmt: skip
        log.info("replaying recording %s (%d files)", group.name, len(group.files))
        read = ReadStats()
        rp = Replayer(self.store, self.registry, clock=clock, read_stats=read)
        cb = None
        if self.progress is not None:
            name, prog = group.name, self.progress

            def cb(n: int) -> None:
                prog(name, n)

        sampler = self._depth_sampler(group.name) if self.depth_sample_every > 0 else None
        store = self.store
        first_synced: dict[InstrumentId, int] = {}

        def on_record(rec, events) -> None:
            for ev in events:
                inst = ev.instrument
                if inst not in first_synced and store.entry(inst).book.quality.synced:
                    first_synced[inst] = rec.ts_recv_ns
            if sampler is not None:
                sampler(rec, events)

        token = witness.begin() if witness is not None else None
        try:
            rp.run(group.records(read), on_record=on_record, progress=cb)
        finally:
            record = witness.end(token, rp.spans) if witness is not None else None
        self.replays += 1
        self._add_read(read)
        touched = set(rp.spans)
        last = rp.stats.last_ts_ns
        for inst in set(self.store.instruments()) - before:
            self._known.setdefault(inst, group)
            self.store.set_clock(inst, clock)
        ranges = {i: TimeRange(i, group.name, t, last) for i, t in first_synced.items() if last is not None}
        for i, r in ranges.items():
            self._ranges.setdefault(i, r)
        if key is not None and not (touched & before):  # only a group's own books are checkpointed
            payload = self._group_payload(group, touched, last, read, ranges)
            if record is not None:
                payload["observer"] = record
            self.checkpoints.save(key, payload)

    def _add_read(self, read: ReadStats) -> None:
        rs = self.read_stats
        rs.lines += read.lines
        rs.records += read.records
        rs.corrupt += read.corrupt
        rs.rejected += read.rejected
        rs.corrupt_examples.extend(read.corrupt_examples[: max(0, 5 - len(rs.corrupt_examples))])
        for name, fp in read.files.items():  # damaged files of this group, reported per file
            mine = rs._file(name)
            mine.corrupt_lines += fp.corrupt_lines
            mine.rejected_updates += fp.rejected_updates
            mine.unreadable = mine.unreadable or fp.unreadable
            mine.examples.extend(fp.examples[: max(0, 3 - len(mine.examples))])

    def _group_payload(self, group, touched, last_ns: int | None, read: ReadStats, ranges) -> dict:
        """The checkpoint of one replayed group. ``clock_ns``: the group's own last receive time
        (not the session clock, which other recordings of the session may have moved further), so
        a restore moves the session clock exactly as replaying this group would."""
        depth = []
        for inst in sorted(touched):
            h = self._depth.get(inst, {}).get(group.name)
            if h is not None:
                depth.append([inst.venue, inst.symbol, list(h.ts_ns), [list(map(list, d)) for d in h.depth]])
        return {
            "group": group.name,
            "clock_ns": last_ns or 0,
            "entries": [entry_state(self.store.entry(i)) for i in sorted(touched)],
            "depth": depth,
            "ranges": [
                [r.instrument.venue, r.instrument.symbol, r.first_ns, r.last_ns] for r in ranges.values()
            ],
            "read": [
                read.lines,
                read.records,
                read.corrupt,
                read.corrupt_examples,
                read.rejected,
                read.report(),
            ],
        }

    def _restore_group(
        self, group: RecordingGroup, key: str, clock: ReplayClock, before: set,
        witness: ReplayWitness | None = None,
    ) -> bool:  # fmt: skip
        """Restore ``group`` from its disk checkpoint; False (replay instead) when there is none,
        it does not check out (counted as corrupt), or ``witness`` (the store's observer) does not
        accept the checkpoint's observer record (its rows are not all stored). Nothing is put into
        the store before every part of the file has been decoded into a scratch store and the
        witness accepted it."""
        payload = self.checkpoints.load(key)
        if payload is None:
            return False
        try:
            if payload["group"] != group.name:
                raise ValueError(f"checkpoint of {payload['group']!r}, not {group.name!r}")
            scratch = BookStore(
                self.registry,
                windows_bps=self.settings.analytics.depth_windows_bps,
                stale_after_ms=self.settings.analytics.stale_after_ms,
                max_buffer=self.settings.ingest.max_buffered_deltas,
            )
            entries = [restore_entry(scratch, d) for d in payload["entries"]]
            if any(e.instrument in before for e in entries):
                return False  # another recording already fed these books: replay to merge
            windows = tuple(float(w) for w in self.settings.analytics.depth_windows_bps)
            depth = {}
            for venue, symbol, ts, rows in payload["depth"]:
                inst = InstrumentId(venue, symbol)
                if len(ts) != len(rows):
                    raise ValueError(f"{inst}: depth history lengths differ")
                h = DepthHistory(inst, group.name, windows, self.depth_sample_every,
                                 deque(map(int, ts), maxlen=self.depth_history_max),
                                 deque((tuple(map(tuple, r)) for r in rows), maxlen=self.depth_history_max))  # fmt: skip
                if any(len(r) != len(windows) for r in h.depth):
                    raise ValueError(f"{inst}: depth history rows do not match the windows")
                depth[inst] = h
            ranges = {
                InstrumentId(v, s): TimeRange(InstrumentId(v, s), group.name, int(a), int(b))
                for v, s, a, b in payload["ranges"]
            }
            lines, records, corrupt, examples, rejected, report = payload["read"]
            restored_read = ReadStats(
                lines=int(lines),
                records=int(records),
                corrupt=int(corrupt),
                rejected=int(rejected),
                corrupt_examples=list(examples),
                files={
                    r["file"]: FileProblems(
                        corrupt_lines=int(r["corrupt_lines"]),
                        unreadable=r["unreadable"],
                        rejected_updates=int(r["rejected_updates"]),
                        examples=list(r["examples"]),
                    )
                    for r in report
                },
            )
            clock_ns = int(payload["clock_ns"])
            record = payload.get("observer")
            if record is not None and not isinstance(record, dict):
                raise TypeError("the observer record is not an object")
        except (KeyError, TypeError, ValueError) as exc:
            self.checkpoints.corrupt(key, f"{type(exc).__name__}: {exc}")
            return False
        if witness is not None and (record is None or not witness.accept(record)):
            self.checkpoints.unused()
            log.info("recording %s: its history rows are not all stored; replaying it", group.name)
            return False
        for e in entries:
            self.store._entries[e.instrument] = e
            self._known.setdefault(e.instrument, group)
            self.store.set_clock(e.instrument, clock)
        for inst, h in depth.items():
            self._depth.setdefault(inst, {})[group.name] = h
        for i, r in ranges.items():
            self._ranges.setdefault(i, r)
        self._add_read(restored_read)
        clock.advance(clock_ns)
        self.restores += 1
        log.info("restored recording %s from its checkpoint (no replay)", group.name)
        return True

    def _depth_sampler(self, recording: str) -> Callable:
        """The replay's ``on_record`` hook: every ``depth_sample_every`` depth events routed to an
        instrument, sample that book's depth if it is synced and changed since its last sample."""
        every, store = self.depth_sample_every, self.store
        windows = tuple(float(w) for w in self.settings.analytics.depth_windows_bps)
        counts: dict[InstrumentId, int] = {}
        series: dict[InstrumentId, DepthHistory] = {}
        maxlen = self.depth_history_max

        def sample(inst: InstrumentId) -> None:
            book = store.entry(inst).book
            if not book.quality.synced:
                return
            h = series.get(inst)
            if h is None:
                h = series[inst] = DepthHistory(
                    inst, recording, windows, every, deque(maxlen=maxlen), deque(maxlen=maxlen)
                )
                self._depth.setdefault(inst, {})[recording] = h
                for w in windows:
                    book.track_window(w)  # idempotent: the store tracks its windows already
            ts = book.ts_recv_ns
            if ts is None or (h.ts_ns and h.ts_ns[-1] == ts):
                return  # nothing applied since the last sample
            cs = book.contract_size
            try:
                depths = [book.depth(w) for w in windows]
            except MLMError:  # a side is empty: nothing to measure now
                return
            if cs:  # inverse: contracts x contract size (quote), no base size
                row = tuple((None, d["bid_size"] * cs, None, d["ask_size"] * cs) for d in depths)
            else:
                row = tuple(
                    (d["bid_size"], d["bid_notional"], d["ask_size"], d["ask_notional"]) for d in depths
                )
            h.ts_ns.append(ts)
            h.depth.append(row)

        def on_record(rec, events) -> None:
            for ev in events:
                if isinstance(ev, L2Delta | L2Snapshot):
                    inst = ev.instrument
                    n = counts.get(inst, 0) + 1
                    counts[inst] = n
                    if n % every == 0:
                        sample(inst)

        return on_record

    def depth_history(self, inst: InstrumentId) -> DepthHistory | None:
        """The depth sampled while ``inst``'s recording replayed (the recording with the most
        samples when several fed the book), or None (not recorded data, not loaded, never synced)."""
        found = [h for h in self._depth.get(inst, {}).values() if len(h)]
        return max(found, key=len) if found else None

    def _load_unknown_groups(self, venue: str | None = None) -> None:
        """Load groups whose instruments are not known from file names (small captures)."""
        if self._all_discovered:
            return
        for g in self._groups:
            if not g.venue_symbols and g.name not in self._loaded and (venue is None or g.venue == venue):
                self.load_group(g)

    def load_all(self) -> None:
        for g in self._groups:
            self.load_group(g)

    # ------------------------------------------------------------ discovery

    def instruments(self, venue: str | None = None) -> list[InstrumentId]:
        """Instruments that have (or will have, once loaded) a book."""
        self._load_unknown_groups(venue)
        # Both sources only grow (instruments are never removed): the sorted list is recomputed
        # when either grows, not on every question (bench_api: ~0.3 ms of each request).
        key = (len(self._known), self.store.count())
        cached = self._instrument_list
        if cached is None or cached[0] != key:
            everything = sorted(set(self._known) | set(self.store.instruments()))
            by_venue: dict[str, list[InstrumentId]] = {}
            for i in everything:
                by_venue.setdefault(i.venue, []).append(i)
            cached = self._instrument_list = (key, everything, by_venue)
        return list(cached[1]) if venue is None else list(cached[2].get(venue, ()))

    def venues(self) -> list[str]:
        """Venues with a book or a recording, without loading anything: every recording group
        names its venue, so no replay is needed to list them (a replay here ran on the API's
        event loop on the first cross-venue question: 2.9 s with every client waiting)."""
        return sorted(
            {g.venue for g in self._groups} | {i.venue for i in self._known} | set(self.store.venues())
        )

    def resolve(
        self, symbol: str, venue: str | None = None, market: MarketType | None = None
    ) -> InstrumentId:
        """Map a user symbol to an instrument with a book.

        ``symbol``: a base asset (``"BTC"``), a unified pair (``"ETH/USD"``, ``"BTC/USDT:USDT"``).
        ``venue``: a ccxt id; None picks the configured default venue if it lists the asset, else
        the first venue that does. A base asset prefers spot and the quote order of
        ``QUOTE_PREFERENCE``; a pair quoted in USD matches USDT/USDC books when no USD book exists.

        Raises ``UnknownVenueError`` / ``UnknownSymbolError`` naming the closest valid ones.
        """
        sym = symbol.strip().upper()
        if venue is not None:
            venue = venue.strip().lower()
        self._load_unknown_groups(venue)
        generation = self.instrument_generation()
        if self._resolve_memo[0] != generation:
            self._resolve_memo = (generation, {})
        memo = self._resolve_memo[1]
        hit = memo.get((sym, venue, market))
        if isinstance(hit, InstrumentId):
            return hit
        if hit is not None:  # a miss, remembered with the valid names (a compare asks every venue)
            raise UnknownSymbolError(symbol, hit, venue)
        if venue is not None:
            candidates = self.instruments(venue)
            if not candidates:
                raise UnknownVenueError(venue, self.venues())
        else:
            candidates = self.instruments()
        hit = self._pick(sym, candidates, market)
        if hit is None:
            # A base asset is compared with the assets there are (closest names first), a pair with
            # the pairs.
            valid = {i.symbol for i in candidates} if "/" in sym else {i.base for i in candidates}
            memo[(sym, venue, market)] = valid = sorted(valid)
            raise UnknownSymbolError(symbol, valid, venue)
        memo[(sym, venue, market)] = hit
        return hit

    def instrument_generation(self) -> tuple[int, int]:
        """Changes whenever the instrument set grows (it never shrinks): ``(instruments known from
        recordings, books held)``. What was resolved under one generation holds until it changes."""
        return (len(self._known), self.store.count())

    def _pick(
        self, sym: str, candidates: list[InstrumentId], market: MarketType | None
    ) -> InstrumentId | None:
        return pick_instrument(sym, candidates, self.settings.agent.default_venue, market)

    # ---------------------------------------------------------------- books

    def discovered(self, venue: str | None = None) -> bool:
        """True when every recording (of ``venue``) has its instruments known, so ``resolve`` and
        ``instruments`` do no file I/O."""
        if self._all_discovered:
            return True
        if all(g.venue_symbols or g.name in self._loaded for g in self._groups):
            self._all_discovered = True  # it stays so: groups are fixed, loaded groups stay loaded
            return True
        return venue is not None and all(
            g.venue_symbols or g.name in self._loaded for g in self._groups if g.venue == venue
        )

    def is_loaded(self, inst: InstrumentId) -> bool:
        """True when ``inst``'s recording group is loaded (a ``view`` of it does no file I/O)."""
        g = self._known.get(inst)
        return g is None or g.name in self._loaded

    def ensure_loaded(self, inst: InstrumentId) -> None:
        g = self._known.get(inst)
        if g is not None and g.name not in self._loaded:
            self.load_group(g)

    def view(self, inst: InstrumentId, max_levels: int | None = None) -> BookView:
        """A synced book image with its quality (``BookNotReadyError`` if it is resyncing)."""
        self.ensure_loaded(inst)
        return self.store.view(inst.venue, inst.symbol, max_levels)

    # ------------------------------------------------------------ time travel

    def time_range(self, inst: InstrumentId) -> TimeRange:
        """The instants ``inst``'s book can be rebuilt at (loads its recording). Raises
        ``AsOfOutOfRangeError`` when no recording ever synced it (live books: no recording)."""
        self.ensure_loaded(inst)
        r = self._ranges.get(inst)
        if r is None:
            raise AsOfOutOfRangeError(
                f"{inst}: no recording with a synced book of it, so it cannot be rebuilt at an earlier time"
            )
        return r

    def time_ranges(self) -> list[TimeRange]:
        """``TimeRange`` of every recorded instrument (loads every recording), by venue and symbol."""
        self.load_all()
        return [self._ranges[i] for i in sorted(self._ranges)]

    def timeline(self, group: RecordingGroup) -> Timeline:
        with self._lock:
            t = self._timelines.get(group.name)
            if t is None:
                a, i = self.settings.analytics, self.settings.ingest

                def store_factory(registry, clock) -> BookStore:
                    return BookStore(registry, windows_bps=a.depth_windows_bps, clock=clock,
                                     stale_after_ms=a.stale_after_ms, max_buffer=i.max_buffered_deltas)  # fmt: skip

                t = Timeline(
                    group, type(self.registry), store_factory, every_s=i.timetravel_checkpoint_every_s
                )
                self._timelines[group.name] = t
            return t

    def view_at(self, inst: InstrumentId, as_of_ns: int, max_levels: int | None = None) -> BookView:
        """``inst``'s book as it was at ``as_of_ns`` (ns since the epoch, UTC, recording time): every
        record received at or before it applied, rebuilt from the nearest in-memory checkpoint
        (``Timeline``). Its ``book_ts`` is its last update at or before ``as_of_ns`` and its age is
        measured against ``as_of_ns``. Raises ``AsOfOutOfRangeError`` naming the valid range,
        ``BookNotReadyError`` when the book was resyncing at that instant."""
        rng = self.time_range(inst)
        rng.check(as_of_ns)
        store = self.timeline(self._known[inst]).at(as_of_ns)
        return store.view(inst.venue, inst.symbol, max_levels)

    def quality(self, inst: InstrumentId) -> dict:
        self.ensure_loaded(inst)
        return self.store.quality(self.store.find(inst.venue, inst.symbol))
