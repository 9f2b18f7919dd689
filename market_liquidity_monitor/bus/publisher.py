"""The ingest side of the bus: a ``BookStore`` that publishes what it verified.

``PublishingStore`` is the worker's book store (``mlm ingest --shard I/N``): every event still goes
through ``BookStore.on_event`` (the venue's ``BookSync`` sequence rule, buffering, resync on a gap,
checksum verification), and only then is the outcome published to the shard's stream
(``bus.codec`` describes the messages):

- a delta that was applied and left the book synced -> ``d`` (the venue's levels, as sent);
- a venue snapshot that (re)built the book (buffered deltas replayed into it) -> ``s`` with a new
  seq (a *reset* image of the whole book);
- a book that lost sync (gap, failed checksum; also a live reconnect, found at the next tick) ->
  ``x``;
- every ``snapshot_interval_s``, a *checkpoint* ``s`` of every synced book (same seq), stored as
  the book's latest image: a replica that starts, or missed messages, rebuilds from it;
- every ``heartbeat_interval_s``, a heartbeat ``h`` with each book's clock.

A flusher thread sends what accumulated as one pipelined batch (one round trip per batch, not per
message); while a batch is in flight the next one accumulates.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from market_liquidity_monitor.bus import codec
from market_liquidity_monitor.bus.transport import Bus
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.store import BookStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PublishCounters:
    deltas: int = 0
    images: int = 0
    checkpoints: int = 0
    invalidations: int = 0
    heartbeats: int = 0
    metrics_frames: int = 0
    batches: int = 0
    publish_errors: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class PublishingStore(BookStore):
    """A ``BookStore`` whose verified book changes go to ``bus`` as shard ``shard`` of ``count``.

    ``start()`` registers the shard and starts the flusher and ticker threads; ``stop()`` flushes
    and stops them. ``on_event`` is serialised by a lock (replay threads of several timelines may
    share the store).
    """

    def __init__(
        self,
        adapter_for,
        bus: Bus,
        shard: int,
        count: int,
        *,
        snapshot_interval_s: float = 5.0,
        heartbeat_interval_s: float = 0.5,
        max_batch: int = 1000,
        metrics_interval_ms: int = 0,
        **store_kw,
    ):
        super().__init__(adapter_for, **store_kw)
        self.bus = bus
        self.shard = shard
        self.count = count
        self.epoch = time.time_ns()
        self.snapshot_interval_s = snapshot_interval_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.max_batch = max_batch
        # Metrics frames (``bus.metrics``): one per book per ``metrics_interval_ms`` of book time
        # (0 = none), on the bus's metrics stream, for the storage consumers.
        self.metrics_interval_ns = metrics_interval_ms * 1_000_000
        self._metrics_bucket: dict[InstrumentId, int] = {}
        self._pending_metrics: list[bytes] = []
        self.counters = PublishCounters()
        self.lock = threading.RLock()
        self._seq: dict[InstrumentId, int] = {}
        self._synced: dict[InstrumentId, bool] = {}
        self._snaps: dict[InstrumentId, int] = {}
        self._pending: list[bytes] = []
        self._pending_images: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, tick_thread: bool = True) -> None:
        """Register the shard; start the flusher thread and (``tick_thread``) the ticker thread.
        Without it the caller runs ``tick_loop_async`` in the event loop that feeds the store (the
        live runtime also changes books outside ``on_event``, in that loop)."""
        self.bus.register_shard(self.shard, self.count, self.epoch)
        loops = [(self._flush_loop, "mlm-bus-flush")]
        if tick_thread:
            loops.append((self._tick_loop, "mlm-bus-tick"))
        for target, name in loops:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout_s)
        self.flush()

    def flush(self) -> None:
        """Send everything pending now (batches of ``max_batch``), in this thread."""
        while self._pending or self._pending_metrics:
            self._flush()

    # ------------------------------------------------------------------ ingest path

    def on_event(self, ev):
        if not isinstance(ev, L2Delta | L2Snapshot):
            return super().on_event(ev)
        t_in = time.time_ns()
        with self.lock:
            e = self.entry(ev.instrument)
            snaps_before = e.sync.counters.snapshots_applied
            applied_before = e.sync.counters.deltas_applied
            out = super().on_event(ev)
            inst = ev.instrument
            synced = e.book.quality.synced
            if synced and e.sync.counters.snapshots_applied != snaps_before:
                self._image(inst, e, t_in, new_seq=True)
            elif synced and isinstance(ev, L2Delta) and e.sync.counters.deltas_applied != applied_before:
                seq = self._seq[inst] = self._seq.get(inst, 0) + 1
                nb, na = e.book.level_count()
                self._emit(
                    codec.dumps(
                        [codec.DELTA, codec.inst_key(inst), self.epoch, seq, ev.bids, ev.asks,
                         ev.ts_event, ev.ts_recv, t_in, nb, na]
                    )
                )  # fmt: skip
                self.counters.deltas += 1
            elif not synced and self._synced.get(inst):
                self._invalid(inst, ev.ts_recv)
            self._synced[inst] = synced
            if synced and self.metrics_interval_ns:
                self._maybe_metrics(inst, e)
            return out

    def _maybe_metrics(self, inst: InstrumentId, e) -> None:
        ts = e.book.ts_recv_ns
        if ts is None:
            return
        bucket = ts // self.metrics_interval_ns
        if self._metrics_bucket.get(inst) == bucket:
            return
        frame = metrics_frame(e.book, self._windows)
        if frame is None:
            return  # a side is empty: nothing to measure now (the next update tries again)
        self._metrics_bucket[inst] = bucket
        msg = codec.dumps([codec.METRICS, codec.inst_key(inst), self.epoch, ts, frame])
        with self._cond:
            self._pending_metrics.append(msg)
            self._cond.notify()
        self.counters.metrics_frames += 1

    def _image(self, inst: InstrumentId, e, t_in: int, *, new_seq: bool) -> bytes:
        if new_seq:
            self._seq[inst] = self._seq.get(inst, 0) + 1
        bids, asks = codec.book_wire_levels(e.book)
        key = codec.inst_key(inst)
        msg = codec.dumps(
            [codec.IMAGE, key, self.epoch, self._seq.get(inst, 0), bids, asks,
             e.book.ts_event_ns, e.book.ts_recv_ns, t_in]
        )  # fmt: skip
        self._emit(msg, key)
        if new_seq:
            self.counters.images += 1
        else:
            self.counters.checkpoints += 1
        self._synced[inst] = True
        return msg

    def _invalid(self, inst: InstrumentId, ts_recv: int | None) -> None:
        seq = self._seq[inst] = self._seq.get(inst, 0) + 1
        self._emit(codec.dumps([codec.INVALID, codec.inst_key(inst), self.epoch, seq, ts_recv]))
        self.counters.invalidations += 1
        self._synced[inst] = False

    def _emit(self, msg: bytes, image_key: str | None = None) -> None:
        with self._cond:
            self._pending.append(msg)
            if image_key is not None:
                self._pending_images[image_key] = msg
            self._cond.notify()

    # ------------------------------------------------------------------ threads

    def _flush(self) -> None:
        with self._cond:
            metrics, self._pending_metrics = self._pending_metrics, []
            batch, images = self._pending[: self.max_batch], {}
            del self._pending[: self.max_batch]
            if self._pending_images:
                ids = {id(m) for m in batch}
                images = {k: m for k, m in self._pending_images.items() if id(m) in ids}
                for k in images:
                    del self._pending_images[k]
        try:
            if metrics:
                self.bus.append_metrics(metrics)
            if not batch:
                return
            self.bus.publish(self.shard, batch, images)
            self.counters.batches += 1
        except Exception as exc:  # the bus is down: count, keep ingesting (replicas resync later)
            self.counters.publish_errors += 1
            log.warning("bus publish of %d messages failed: %s", len(batch), exc)

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._pending and not self._pending_metrics:
                    self._cond.wait(0.1)
            self._flush()

    def _tick_loop(self) -> None:
        next_checkpoint = time.monotonic() + self.snapshot_interval_s
        while not self._stop.wait(self.heartbeat_interval_s):
            try:
                self.tick(checkpoint=time.monotonic() >= next_checkpoint)
            except Exception:  # a tick must never kill the worker
                log.exception("bus tick failed")
            if time.monotonic() >= next_checkpoint:
                next_checkpoint = time.monotonic() + self.snapshot_interval_s

    async def tick_loop_async(self) -> None:
        """``tick`` every ``heartbeat_interval_s`` (a checkpoint every ``snapshot_interval_s``) in
        the running event loop, until ``stop()``."""
        import asyncio

        next_checkpoint = time.monotonic() + self.snapshot_interval_s
        while not self._stop.is_set():
            await asyncio.sleep(self.heartbeat_interval_s)
            checkpoint = time.monotonic() >= next_checkpoint
            try:
                self.tick(checkpoint=checkpoint)
            except Exception:
                log.exception("bus tick failed")
            if checkpoint:
                next_checkpoint = time.monotonic() + self.snapshot_interval_s

    def tick(self, *, checkpoint: bool = False) -> None:
        """Publish lost-sync marks found since the last tick (books invalidated outside
        ``on_event``), checkpoint images when ``checkpoint``, then a heartbeat."""
        t_in = time.time_ns()
        clocks = {}
        with self.lock:
            for inst in self.instruments():
                e = self.entry(inst)
                synced = e.book.quality.synced
                if not synced and self._synced.get(inst):
                    self._invalid(inst, e.book.ts_recv_ns)
                elif synced and checkpoint:
                    self._image(inst, e, t_in, new_seq=False)
                clocks[codec.inst_key(inst)] = self.clock_of(inst).now_ns()
        self._emit(codec.dumps([codec.HEARTBEAT, self.shard, self.epoch, t_in, clocks]))
        self.counters.heartbeats += 1

    def status(self) -> dict:
        with self._cond:
            backlog = len(self._pending)
        return {
            "shard": self.shard,
            "count": self.count,
            "epoch": self.epoch,
            "books": len(self.instruments()),
            "backlog": backlog,
            **self.counters.as_dict(),
        }


def metrics_frame(book, windows_bps) -> dict[str, float] | None:
    """The liquidity metrics of one synced book, ``{name: value}``: ``mid_price``, ``spread_bps``,
    ``microprice`` (``analytics.liquidity.top_of_book``) and, per depth window ``w`` bps,
    ``depth_{w}bps_bid_notional`` / ``depth_{w}bps_ask_notional`` (quote units,
    ``analytics.liquidity.depth_within_bps``). None when a side is empty."""
    from market_liquidity_monitor.analytics.liquidity import depth_within_bps, top_of_book
    from market_liquidity_monitor.domain.errors import MLMError

    try:
        view = book.view()
        top = top_of_book(view)
        out = {"mid_price": top.mid_price, "spread_bps": top.spread_bps, "microprice": top.microprice}
        for w in windows_bps:
            d = depth_within_bps(view, w)
            name = f"depth_{w:g}bps"
            out[f"{name}_bid_notional"] = d.bid_notional
            out[f"{name}_ask_notional"] = d.ask_notional
    except MLMError:
        return None
    return out
