"""The replica side of the bus: rebuild every book from its latest image plus the stream.

``BookFollower`` reads every registered shard's stream (``Bus.read``) and feeds a replica
``BookStore`` whose books are kept by the existing ``BookSync`` with ``BusSequenceRule`` on the
bus ``seq``: a delta applies when its seq is the book's + 1; a delta already in the book is
dropped; any other seq is a gap (counted in the book's ``gaps``), the book is discarded and the
deltas are buffered until the next image of the book (checkpoint or reset) resyncs it (counted
in ``resyncs``). On start, each book begins from the image stored in the shard's image hash,
and the stream is read from the oldest of those images.

Staleness: each book's age is measured on its worker's clock as of the last heartbeat (the
recording's time on replayed data, wall time live), extrapolated by the wall time since that
heartbeat. A shard without a heartbeat for ``heartbeat_timeout_s`` is *down*: its books are
flagged stale (``BookEntry.feed_down``) at once. A heartbeat with a new epoch (the worker
restarted) discards that shard's books until the new worker's images resync them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from market_liquidity_monitor.book.sync import BinanceSpotRule, DeltaOutcome
from market_liquidity_monitor.bus import codec
from market_liquidity_monitor.bus.transport import Bus
from market_liquidity_monitor.domain.errors import UnknownVenueError
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.clock import Clock
from market_liquidity_monitor.ingest.store import BookStore

log = logging.getLogger(__name__)


class BusSequenceRule(BinanceSpotRule):
    """Binance spot's rule (``U <= last + 1 <= u``, then ``U == last + 1``) applied to the bus
    seq, carried as ``first_sequence == last_sequence == seq``: each message follows the last."""

    name = "bus"


class BusAdapter:
    """What the replica's ``BookStore`` needs per venue: the bus sequence rule, the venue's
    contract sizes (inverse books hold contracts, as on the worker), no checksum (the worker
    verified it)."""

    sequence_rule = BusSequenceRule()

    def __init__(self, venue: str, venue_adapter=None):
        self.venue = venue
        self._venue_adapter = venue_adapter

    def contract_size(self, symbol: str) -> float | None:
        return None if self._venue_adapter is None else self._venue_adapter.contract_size(symbol)

    def verify_checksum(self, book, expected: int) -> bool:
        return True


def bus_adapters(registry):
    """``adapter_for(venue)`` of a replica store: ``BusAdapter`` over the registry's adapter."""
    cache: dict[str, BusAdapter] = {}

    def get(venue: str) -> BusAdapter:
        a = cache.get(venue)
        if a is None:
            try:
                inner = registry(venue)
            except UnknownVenueError:
                inner = None
            a = cache[venue] = BusAdapter(venue, inner)
        return a

    return get


class ReplicaStore(BookStore):
    """The replica's ``BookStore``: the follower thread writes it while API requests read it, so
    every read that walks a book or the entries holds ``lock``, as does the follower for each
    message it applies (a reader waits for at most one message)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.lock = threading.RLock()

    def view(self, venue: str, symbol: str, max_levels: int | None = None):
        with self.lock:
            return super().view(venue, symbol, max_levels)

    def quality(self, e):
        with self.lock:
            return super().quality(e)

    def instruments(self):
        with self.lock:
            return super().instruments()

    def venues(self):
        with self.lock:
            return super().venues()

    def find(self, venue: str, symbol: str):
        with self.lock:
            return super().find(venue, symbol)


class WorkerClock(Clock):
    """A book's clock on its worker as of the last heartbeat, plus wall time since it arrived."""

    def __init__(self):
        self.worker_ns: int | None = None
        self.at_mono = time.monotonic()

    def set(self, worker_ns: int) -> None:
        self.worker_ns, self.at_mono = worker_ns, time.monotonic()

    def now_ns(self) -> int:
        if self.worker_ns is None:
            return time.time_ns()
        return self.worker_ns + int((time.monotonic() - self.at_mono) * 1e9)


@dataclass
class ShardState:
    shard: int
    epoch: int | None = None
    last_heartbeat_mono: float | None = None
    down: bool = False
    books: set[InstrumentId] = field(default_factory=set)


@dataclass(slots=True)
class FollowCounters:
    messages: int = 0
    deltas_applied: int = 0
    images_applied: int = 0
    images_skipped: int = 0
    gaps: int = 0
    invalidations: int = 0
    restarts: int = 0
    level_count_mismatches: int = 0
    decode_errors: int = 0
    read_errors: int = 0
    shards_down: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class BookFollower:
    """Keeps ``store`` (built with ``bus_adapters``) equal to the workers' books.

    ``run(stop_event)`` loops until the event is set; ``start()`` runs it in a daemon thread.
    ``on_applied(inst, t_in_ns)`` (optional) is called after each applied delta/image with the
    worker's frame-in time (benchmarks).
    """

    def __init__(
        self,
        bus: Bus,
        store: BookStore,
        *,
        heartbeat_timeout_s: float = 3.0,
        read_count: int = 1000,
        block_ms: int = 200,
        on_applied=None,
    ):
        self.bus = bus
        self.store = store
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.read_count = read_count
        self.block_ms = block_ms
        self.on_applied = on_applied
        self.counters = FollowCounters()
        self.shards: dict[int, ShardState] = {}
        self.positions: dict[int, str] = {}
        self._epochs: dict[InstrumentId, int] = {}
        self._clocks: dict[InstrumentId, WorkerClock] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_discover = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="mlm-bus-follow", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run(self, stop_event: threading.Event | None = None) -> None:
        stop = stop_event or self._stop
        while not stop.is_set() and not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # the bus is unreachable: retry; books go stale meanwhile
                self.counters.read_errors += 1
                log.warning("bus read failed: %s", exc)
                self.check_heartbeats()
                stop.wait(0.5)

    def poll(self) -> int:
        """Discover new shards (every 2 s), read one batch, apply it, check heartbeats.
        Returns the number of entries read."""
        now = time.monotonic()
        if now - self._last_discover > 2.0 or not self.positions:
            self.discover()
            self._last_discover = now
        if not self.positions:
            self._stop.wait(self.block_ms / 1000)
            return 0
        entries = self.bus.read(self.positions, self.block_ms, self.read_count)
        store_lock = getattr(self.store, "lock", None) or contextlib.nullcontext()
        for shard, entry_id, msg in entries:
            self.positions[shard] = entry_id
            with store_lock:
                self.apply(msg, shard)
        with store_lock:
            self.check_heartbeats()
        return len(entries)

    def discover(self) -> None:
        """Start following shards registered since the last call: their books start from the
        stored latest images; the stream is read from the oldest of them."""
        for shard in sorted(self.bus.shards()):
            if shard in self.positions:
                continue
            images = self.bus.latest_images(shard)
            store_lock = getattr(self.store, "lock", None) or contextlib.nullcontext()
            with store_lock:
                self.shards.setdefault(shard, ShardState(shard))
                start = None
                for _key, (entry_id, msg) in sorted(images.items()):
                    self.apply(msg, shard)
                    start = entry_id if start is None or _id_lt(entry_id, start) else start
                self.positions[shard] = start or "0"

    # ------------------------------------------------------------------ messages

    def apply(self, raw: bytes, shard: int) -> None:
        self.counters.messages += 1
        try:
            m = codec.loads(raw)
            kind = m[0]
        except Exception:
            self.counters.decode_errors += 1
            return
        if kind == codec.HEARTBEAT:
            self._heartbeat(shard, m[2], m[4])
            return
        inst = codec.key_inst(m[1])
        epoch, seq = m[2], m[3]
        st = self.shards.setdefault(shard, ShardState(shard))
        st.books.add(inst)
        e = self.store.entry(inst)
        if inst not in self._clocks:
            self._clocks[inst] = WorkerClock()
            self.store.set_clock(inst, self._clocks[inst])
        known = self._epochs.get(inst)
        if known != epoch:
            if known is not None and epoch < known:
                return  # a message of an older worker run, still in the stream: ignore
            if known is not None:
                self.counters.restarts += 1
                e.sync.invalidate()
            self._epochs[inst] = epoch
        if kind == codec.DELTA:
            d = L2Delta(inst, m[4], m[5], seq, seq, seq - 1, m[6], m[7])
            out = self.store.on_event(d)
            if out is DeltaOutcome.GAP:
                self.counters.gaps += 1
            elif out is DeltaOutcome.APPLIED:
                self._check_levels(e, m[9], m[10])
                self.counters.deltas_applied += 1
                if self.on_applied is not None:
                    self.on_applied(inst, m[8])
        elif kind == codec.IMAGE:
            book = e.book
            if book.quality.synced and book.sequence is not None and seq <= book.sequence:
                self.counters.images_skipped += 1  # a checkpoint of what the book already is
                return
            self.store.on_event(L2Snapshot(inst, m[4], m[5], seq, m[6], m[7]))
            if book.quality.synced:
                self.counters.images_applied += 1
                e.feed_down = False
                if self.on_applied is not None:
                    self.on_applied(inst, m[8])
        elif kind == codec.INVALID:
            if e.book.quality.synced:
                q = e.book.quality
                q.gaps += 1
                q.last_gap_ts_ns = m[4]
            e.sync.invalidate()
            self.counters.invalidations += 1
        else:
            self.counters.decode_errors += 1

    def _check_levels(self, e, n_bids: int, n_asks: int) -> None:
        """The worker's level counts after the delta: truncate a fixed-depth book the same way;
        any other difference means the replica diverged -> discard it, resync from an image."""
        book = e.book
        nb, na = book.level_count()
        if (nb, na) == (n_bids, n_asks):
            return
        if nb >= n_bids and na >= n_asks:
            book.truncate(max(n_bids, n_asks))
            if book.level_count() == (n_bids, n_asks):
                return
        self.counters.level_count_mismatches += 1
        q = book.quality
        q.gaps += 1
        q.last_gap_ts_ns = book.ts_recv_ns
        e.sync.invalidate()

    def _heartbeat(self, shard: int, epoch: int, clocks: dict) -> None:
        st = self.shards.setdefault(shard, ShardState(shard))
        if st.epoch is not None and epoch < st.epoch:
            return
        if st.epoch is not None and epoch != st.epoch:
            # The worker restarted: what we hold is of its previous run; its images resync it.
            for inst in st.books:
                if self._epochs.get(inst) != epoch:
                    self.store.entry(inst).sync.invalidate()
                    self._epochs[inst] = epoch
                    self.counters.restarts += 1
        st.epoch = epoch
        st.last_heartbeat_mono = time.monotonic()
        if st.down:
            st.down = False
        for key, now_ns in clocks.items():
            inst = codec.key_inst(key)
            c = self._clocks.get(inst)
            if c is None:
                c = self._clocks[inst] = WorkerClock()
                self.store.set_clock(inst, c)
            c.set(now_ns)
            if inst in st.books:
                self.store.entry(inst).feed_down = False

    def check_heartbeats(self) -> None:
        """Mark the books of shards silent for ``heartbeat_timeout_s`` stale (feed down)."""
        now = time.monotonic()
        for st in self.shards.values():
            if st.last_heartbeat_mono is None or st.down:
                continue
            if now - st.last_heartbeat_mono > self.heartbeat_timeout_s:
                st.down = True
                self.counters.shards_down += 1
                log.warning("bus shard %d: no heartbeat for %.1f s; its books are stale", st.shard,
                            now - st.last_heartbeat_mono)  # fmt: skip
                for inst in st.books:
                    self.store.entry(inst).feed_down = True

    def status(self) -> dict:
        """Counters, and per shard: epoch, seconds since its last heartbeat, down, books."""
        now = time.monotonic()
        shards = sorted(list(self.shards.values()), key=lambda s: s.shard)  # list(): one atomic copy
        return {
            **self.counters.as_dict(),
            "shards": [
                {
                    "shard": s.shard,
                    "epoch": s.epoch,
                    "heartbeat_age_s": None
                    if s.last_heartbeat_mono is None
                    else round(now - s.last_heartbeat_mono, 3),
                    "down": s.down,
                    "books": len(s.books),
                }
                for s in shards
            ],
        }


def _id_lt(a: str, b: str) -> bool:
    """Stream id order (``"ms-seq"`` in Redis, ``"n"`` in-process)."""
    pa = tuple(int(x) for x in a.split("-"))
    pb = tuple(int(x) for x in b.split("-"))
    return pa < pb
