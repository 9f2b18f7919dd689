"""Book synchronisation: snapshot + buffered deltas + sequence rules + resync on a gap.

``BookSync`` is a pure state machine (no sockets, no timers): the ingest runtime feeds it deltas
and snapshots and reads ``needs_snapshot`` to know when to fetch a REST snapshot. Replay and live
feeds drive exactly the same code.

Sequence rules implemented here (sources quoted in ../shared/VENUE_RULES.md):

- ``BinanceSpotRule`` — Binance spot "How to manage a local order book correctly"
  (binance-spot-api-docs, web-socket-streams.md): drop events with ``u <= lastUpdateId``; the first
  applied event has ``U <= lastUpdateId + 1 <= u``; afterwards each event's ``U == previous u + 1``.
- ``BinanceFuturesRule`` — Binance USD-M/COIN-M "How to manage a local order book correctly":
  drop ``u < lastUpdateId``; first event ``U <= lastUpdateId <= u``; afterwards ``pu == previous u``.
- ``NoSequenceRule`` — venues whose deltas carry no sequence (Coinbase level2, Kraken): every
  delta after the snapshot is applied; integrity comes from checksums or resubscription.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot


class SyncState(StrEnum):
    WAITING_SNAPSHOT = "waiting_snapshot"
    SYNCED = "synced"


class DeltaOutcome(StrEnum):
    APPLIED = "applied"
    BUFFERED = "buffered"
    STALE = "stale"  # older than the book: dropped, harmless
    GAP = "gap"  # does not follow: book discarded, resync requested


class SequenceRule(Protocol):
    name: str

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        """True if the delta is already contained in the book (drop it)."""

    def is_first(self, delta: L2Delta, snapshot_sequence: int) -> bool:
        """True if the delta may be the first applied after a snapshot with this sequence."""

    def follows(self, delta: L2Delta, last_sequence: int) -> bool:
        """True if the delta directly follows the last applied delta."""


class BinanceSpotRule:
    name = "binance_spot"

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        return delta.last_sequence <= book_sequence

    def is_first(self, delta: L2Delta, snapshot_sequence: int) -> bool:
        return delta.first_sequence <= snapshot_sequence + 1 <= delta.last_sequence

    def follows(self, delta: L2Delta, last_sequence: int) -> bool:
        return delta.first_sequence == last_sequence + 1


class BinanceFuturesRule:
    name = "binance_futures"

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        return delta.last_sequence < book_sequence

    def is_first(self, delta: L2Delta, snapshot_sequence: int) -> bool:
        return delta.first_sequence <= snapshot_sequence <= delta.last_sequence

    def follows(self, delta: L2Delta, last_sequence: int) -> bool:
        return delta.prev_sequence == last_sequence


class NoSequenceRule:
    name = "none"

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        return False

    def is_first(self, delta: L2Delta, snapshot_sequence: int) -> bool:
        return True

    def follows(self, delta: L2Delta, last_sequence: int) -> bool:
        return True


@dataclass(slots=True)
class SyncCounters:
    deltas_applied: int = 0
    deltas_buffered: int = 0
    deltas_stale: int = 0
    snapshots_applied: int = 0
    snapshots_too_old: int = 0
    buffer_overflows: int = 0


class BookSync:
    """Keeps one ``L2Book`` in sync with a venue's snapshot + delta stream.

    - Before a snapshot, deltas are buffered (bounded by ``max_buffer``; on overflow the oldest
      are dropped and a fresh snapshot is requested).
    - ``on_snapshot`` applies the image, drops stale buffered deltas, checks the first-event rule
      and replays the rest. If the snapshot is older than every buffered delta (``lastUpdateId``
      below the first buffered ``U`` - 1), it is rejected and another is requested.
    - A delta that does not follow the last one is a gap: the book is cleared, the gap counted,
      ``needs_snapshot`` set, and the gapping delta becomes the start of the new buffer.
    """

    def __init__(self, book: L2Book, rule: SequenceRule, max_buffer: int = 10_000):
        self.book = book
        self.rule = rule
        self.state = SyncState.WAITING_SNAPSHOT
        self.buffer: deque[L2Delta] = deque(maxlen=max_buffer)
        self.counters = SyncCounters()
        self.needs_snapshot = True
        self._first_pending = True  # next applied delta must pass is_first()

    # ------------------------------------------------------------------ API

    def on_delta(self, delta: L2Delta) -> DeltaOutcome:
        if self.state is SyncState.WAITING_SNAPSHOT:
            if len(self.buffer) == self.buffer.maxlen:
                self.counters.buffer_overflows += 1
                self.needs_snapshot = True
            self.buffer.append(delta)
            self.counters.deltas_buffered += 1
            return DeltaOutcome.BUFFERED
        return self._apply(delta)

    def on_snapshot(self, snap: L2Snapshot) -> bool:
        """Apply a snapshot and replay buffered deltas. Returns False if the snapshot was too old."""
        seq = snap.sequence
        rule = self.rule
        if seq is None and self.buffer:
            # A snapshot without a sequence is pushed on the socket (Kraken, Coinbase Exchange,
            # Gemini): deltas buffered before it arrived before it, so it already contains them.
            # Replaying them would put older levels on top of the newer image.
            self.counters.deltas_stale += len(self.buffer)
            self.buffer.clear()
        if seq is not None and self.buffer and self.buffer[0].first_sequence is not None:
            # Binance step 4: "If the snapshot lastUpdateId is strictly less than the U of the first
            # buffered event, get a new snapshot" (for futures: < U is also too old, no +1).
            newest = self.buffer[-1]
            if not rule.is_stale(newest, seq) and not any(
                rule.is_first(d, seq) for d in self.buffer if not rule.is_stale(d, seq)
            ):
                self.counters.snapshots_too_old += 1
                self.needs_snapshot = True
                return False
        self.book.apply_snapshot(snap.bids, snap.asks, seq, snap.ts_event, snap.ts_recv)
        self.counters.snapshots_applied += 1
        if self.counters.snapshots_applied > 1:
            self.book.quality.resyncs += 1
        self.state = SyncState.SYNCED
        self.needs_snapshot = False
        self._first_pending = seq is not None
        buffered, self.buffer = list(self.buffer), deque(maxlen=self.buffer.maxlen)
        for d in buffered:
            if self._apply(d) is DeltaOutcome.GAP:
                # _apply moved the remaining stream into a new buffer; keep the rest after it.
                rest = buffered[buffered.index(d) + 1 :]
                self.buffer.extend(rest)
                break
        return True

    def invalidate(self) -> None:
        """Discard the book and anything buffered, and ask for a new snapshot (the book diverged:
        failed checksum, bad payload, or a broken connection)."""
        self.book.clear()
        self.state = SyncState.WAITING_SNAPSHOT
        self.needs_snapshot = True
        self.buffer.clear()

    # -------------------------------------------------------------- internals

    def _apply(self, delta: L2Delta) -> DeltaOutcome:
        book = self.book
        rule = self.rule
        if delta.last_sequence is not None and book.sequence is not None:
            if rule.is_stale(delta, book.sequence):
                self.counters.deltas_stale += 1
                return DeltaOutcome.STALE
            ok = (
                rule.is_first(delta, book.sequence)
                if self._first_pending
                else rule.follows(delta, book.sequence)
            )
            if not ok:
                return self._gap(delta)
        self._first_pending = False
        book.apply_levels(delta.bids, delta.asks, delta.last_sequence, delta.ts_event, delta.ts_recv)
        self.counters.deltas_applied += 1
        return DeltaOutcome.APPLIED

    def _gap(self, delta: L2Delta) -> DeltaOutcome:
        q = self.book.quality
        q.gaps += 1
        q.last_gap_ts_ns = delta.ts_recv
        self.invalidate()
        self.buffer.append(delta)
        return DeltaOutcome.GAP
