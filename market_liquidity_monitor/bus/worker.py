"""``mlm ingest --shard I/N``: one ingest worker of a scaled-out deployment.

A worker owns the venues of its shard (``shard_venues``: the sorted venue list dealt round-robin,
so a venue — and its REST rate budget — lives in exactly one process), keeps their books in a
``PublishingStore`` and publishes them on the bus. With recorded data (``data_dir``) it replays
the shard's recordings (one thread per timeline, as ``mlm up --data --speed N``); otherwise it runs
the live feeds of ``settings.venues`` x ``api.watch_symbols`` of its venues.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from market_liquidity_monitor.bus.publisher import PublishingStore
from market_liquidity_monitor.bus.transport import Bus
from market_liquidity_monitor.config import Settings

log = logging.getLogger(__name__)

_SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"0/2" -> (0, 2)``. Raises ``ValueError`` unless it is ``I/N`` with ``0 <= I < N``."""
    m = _SHARD.match(text.strip())
    if not m or not int(m.group(1)) < int(m.group(2)):
        raise ValueError(f"{text!r}: a shard is I/N with 0 <= I < N, e.g. 0/2 and 1/2 for two workers")
    return int(m.group(1)), int(m.group(2))


def shard_venues(venues: Iterable[str], shard: int, count: int) -> list[str]:
    """The venues of shard ``shard`` of ``count``: the sorted distinct venues, dealt round-robin
    (``["binance", "kraken", "okx"]``, 2 shards -> 0: binance, okx; 1: kraken)."""
    ordered = sorted(set(venues))
    return [v for i, v in enumerate(ordered) if i % count == shard]


@dataclass
class ShardWorker:
    """The worker's store, what it ingests and its threads. ``run()`` blocks until ``stop``."""

    settings: Settings
    bus: Bus
    shard: int
    count: int
    data_dir: Path | None = None
    speed: float = 0.0
    venues: list[str] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    replay_done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        from market_liquidity_monitor.venues.registry import AdapterRegistry

        self.registry = AdapterRegistry()
        b = self.settings.bus
        self.store = PublishingStore(
            self.registry,
            self.bus,
            self.shard,
            self.count,
            snapshot_interval_s=b.snapshot_interval_s,
            heartbeat_interval_s=b.heartbeat_interval_s,
            metrics_interval_ms=b.metrics_interval_ms,
            windows_bps=self.settings.analytics.depth_windows_bps,
            stale_after_ms=self.settings.analytics.stale_after_ms,
            max_buffer=self.settings.ingest.max_buffered_deltas,
        )
        self._threads: list[threading.Thread] = []
        self.replayed: list[str] = []

    def groups(self):
        """The recordings of this shard's venues (``data_dir`` set)."""
        from market_liquidity_monitor.ingest.replay import discover

        groups = [g for g in discover(Path(self.data_dir)) if g.venue in self.registry.venues]
        self.venues = shard_venues([g.venue for g in groups], self.shard, self.count)
        return [g for g in groups if g.venue in self.venues]

    def start(self) -> None:
        # Live, books also change outside on_event (reconnects) in the feed's event loop: the
        # ticks run there too (run_live), not in a thread.
        self.store.start(tick_thread=self.data_dir is not None)
        if self.data_dir is not None:
            self._start_replay()

    def _start_replay(self) -> None:
        from market_liquidity_monitor.market_data import session_of

        sessions: dict[str, list] = {}
        for g in self.groups():
            sessions.setdefault(session_of(g), []).append(g)
        log.info("shard %d/%d: venues %s, %d timelines", self.shard, self.count, self.venues, len(sessions))
        for name, gs in sessions.items():
            t = threading.Thread(
                target=self._play, args=(name, gs), name=f"mlm-shard-play-{name}", daemon=True
            )
            self._threads.append(t)
            t.start()
        if not sessions:
            self.replay_done.set()

    def _play(self, name: str, groups: list) -> None:
        from market_liquidity_monitor.ingest.clock import ReplayClock
        from market_liquidity_monitor.ingest.replay import ReadStats, Replayer, merge

        store, clock, seen = self.store, ReplayClock(), set()

        def on_record(rec, events) -> None:
            for ev in events:
                if ev.instrument not in seen:
                    seen.add(ev.instrument)
                    store.set_clock(ev.instrument, clock)

        try:
            records = merge(*(g.records(ReadStats()) for g in groups))
            Replayer(store, self.registry, clock=clock).run(
                records, on_record=on_record, speed=self.speed, stop_event=self.stop_event
            )
            self.replayed.append(name)
        except Exception:
            log.exception("shard %d: replay of %s failed", self.shard, name)
        finally:
            if all(not t.is_alive() or t is threading.current_thread() for t in self._threads):
                self.replay_done.set()

    async def run_live(self) -> None:
        """The live feeds of this shard's venues into the store, until ``stop_event``."""
        from market_liquidity_monitor.ingest.live import FeedHandler
        from market_liquidity_monitor.runtime import live_feeds

        feeds = live_feeds(self.settings)
        self.venues = shard_venues(feeds, self.shard, self.count)
        feed = FeedHandler(self.store, self.registry, self.settings.ingest, clock=self.store.clock)
        for venue in self.venues:
            feed.add_feed(venue, feeds[venue])
        task = asyncio.create_task(feed.run())
        ticks = asyncio.create_task(self.store.tick_loop_async())
        while not self.stop_event.is_set():
            await asyncio.sleep(0.2)
            if task.done():
                break
        for t in (task, ticks):
            t.cancel()
        await asyncio.gather(task, ticks, return_exceptions=True)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(5)
        self.store.stop()
