"""The liquidity recorder: a metrics row per book at a fixed cadence of book time, for the history.

``LiquidityRecorder`` is the ``BookStore.observer``: it sees every event just *before* the store
routes it, live or replayed (``mlm up``, ``mlm up --data``, the lazy replay of ``mlm ask --data``).
Time is the book's clock: the events' receive time (``ts_recv``; on recorded data the recording's
clock, live the wall clock at receipt).

Sampling rule (per instrument): the cadence grid is ``T = k * interval`` (ns since the epoch). When
an event for the instrument arrives at ``t`` and the latest grid point ``T <= t`` is later than the
last one sampled, the book is sampled at ``T`` *before* the event is applied, so the row is the book
exactly as it stood at ``T`` (every event up to ``T`` applied, none after). A book that got no
event for several grid points gets one row, at the latest of them (its ``age_ms`` says how old the
book was then). ``tick(now_ns)`` samples the books that got no event (live: quiet books, whose row
then shows ``stale``).

Each sample gives one ``book_metrics`` row and one ``book_metric_depths`` row per configured window
(``analytics.depth_windows_bps``): mid, spread_bps and microprice by ``analytics.top_of_book``;
depth per side in base and quote units by the definition of ``analytics.depth_within_bps`` (bounds
inclusive, ``mid * (1 -/+ w/1e4)``) from the book's exact incremental window totals; imbalance by
``analytics.imbalance_value`` of the base sizes (formulas and sources in ``analytics/liquidity.py``). A book that is not
synced gets a row with its flags and no figures (None: "could not be computed", never a number).

Flags: ``synced`` (the book follows its venue's sequence rule since its last snapshot), ``stale``
(no book update for more than ``stale_after_ms`` before ``T``), ``crossed``, ``unverified`` (the
feed has no sequence ids and no checksum was verified: its book cannot be checked).

Also, every ``snapshot_interval_s`` of book time, the top ``snapshot_levels`` levels of a synced
book (``book_snapshots``, exact decimal strings), and every public trade (``trades``).

Rows go to ``sink.submit(table, row)``: the ``StorageWriter`` (batched, bounded, drop counts), or
anything with that method (a bus publisher whose consumer calls the writer's ``submit``).

Replays restored from a checkpoint (``MarketData`` with ``HistoryService`` as its replay witness):
``start_tally()`` counts, per book, the rows submitted while a recording replays (``RowTally``);
``book_state`` / ``resume_book`` read and set a book's sampling state (last grid step, last
snapshot time), so a restore leaves the recorder exactly as the replay would have.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from market_liquidity_monitor.analytics.liquidity import imbalance_value, top_of_book
from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.domain.events import Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.ingest.store import BookEntry, BookStore
from market_liquidity_monitor.storage.writer import book_snapshot_row, trade_row

log = logging.getLogger(__name__)


class RowSink(Protocol):
    def submit(self, table: str, row: dict[str, Any]) -> None: ...


class RowTally:
    """Rows submitted per book since ``LiquidityRecorder.start_tally`` (until ``stop_tally``).

    ``metrics[inst]``: ``[rows, first ts_ns, last ts_ns]`` of ``book_metrics`` (each with one
    ``book_metric_depths`` row per window); ``snapshots[inst]``: the same for ``book_snapshots``
    (``ts_recv_ns``); ``trades[inst]``: ``[first ts_event_ns, last ts_event_ns]`` and
    ``trade_ids[inst]`` the distinct trade ids (the ``trades`` key: a repeated id is one row).
    """

    __slots__ = ("metrics", "snapshots", "trade_ids", "trades")

    def __init__(self) -> None:
        self.metrics: dict[InstrumentId, list[int]] = {}
        self.snapshots: dict[InstrumentId, list[int]] = {}
        self.trades: dict[InstrumentId, list[int]] = {}
        self.trade_ids: dict[InstrumentId, set[str]] = {}

    @staticmethod
    def _span(d: dict[InstrumentId, list[int]], inst: InstrumentId, ts: int) -> None:
        c = d.get(inst)
        if c is None:
            d[inst] = [1, ts, ts]
        else:
            c[0] += 1
            c[1] = min(c[1], ts)
            c[2] = max(c[2], ts)

    def metric(self, inst: InstrumentId, ts_ns: int) -> None:
        self._span(self.metrics, inst, ts_ns)

    def snapshot(self, inst: InstrumentId, ts_ns: int) -> None:
        self._span(self.snapshots, inst, ts_ns)

    def trade(self, inst: InstrumentId, row: dict[str, Any]) -> None:
        self.trade_ids.setdefault(inst, set()).add(row["trade_id"])
        ts = row["ts_event_ns"]
        c = self.trades.get(inst)
        if c is None:
            self.trades[inst] = [ts, ts]
        else:
            c[0], c[1] = min(c[0], ts), max(c[1], ts)


def _dec(v: int, decimals: int) -> str:
    return str(Decimal(v).scaleb(-decimals))


class LiquidityRecorder:
    """Samples every book of ``store`` at ``interval_s`` of book time into ``sink`` (module doc).

    ``windows_bps``: depth windows (each 0 < w <= 10000); ``snapshot_interval_s`` (0 = none) and
    ``snapshot_levels``: periodic top-N book snapshots; ``record_trades``: queue every trade.
    Raises ``ValueError`` for a non-positive interval or no window.
    """

    def __init__(
        self,
        store: BookStore,
        sink: RowSink,
        *,
        windows_bps: tuple[float, ...],
        interval_s: float = 1.0,
        snapshot_interval_s: float = 60.0,
        snapshot_levels: int = 20,
        record_trades: bool = True,
        adapter_for: Any = None,
    ):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        if not windows_bps:
            raise ValueError("windows_bps must name at least one window")
        self.store = store
        self.sink = sink
        self.windows_bps = tuple(float(w) for w in windows_bps)
        self.interval_ns = round(interval_s * 1e9)
        self.snapshot_interval_ns = round(snapshot_interval_s * 1e9)
        self.snapshot_levels = snapshot_levels
        self.record_trades = record_trades
        self._adapter_for = adapter_for
        self._last_step: dict[InstrumentId, int] = {}
        self._last_snapshot_ns: dict[InstrumentId, int] = {}
        self._unverified_rule: dict[str, bool] = {}
        self._tallies: list[RowTally] = []
        self.samples = 0
        self.trades = 0
        self.snapshots = 0

    def attach(self) -> LiquidityRecorder:
        """Become the store's observer (the store then calls ``observe`` for each event)."""
        self.store.observer = self.observe
        return self

    def detach(self) -> None:
        if self.store.observer == self.observe:
            self.store.observer = None

    @property
    def params(self) -> dict[str, Any]:
        """The settings that decide which rows a replay writes (JSON-safe; part of a checkpoint's
        history record: rows written under other settings are not the rows a replay would write)."""
        return {
            "windows_bps": list(self.windows_bps),
            "interval_ns": self.interval_ns,
            "snapshot_interval_ns": self.snapshot_interval_ns,
            "snapshot_levels": self.snapshot_levels,
            "record_trades": self.record_trades,
        }

    def start_tally(self) -> RowTally:
        """Count the rows submitted from now on, per book, until ``stop_tally``."""
        t = RowTally()
        self._tallies.append(t)
        return t

    def stop_tally(self, tally: RowTally) -> None:
        if tally in self._tallies:
            self._tallies.remove(tally)

    def book_state(self, inst: InstrumentId) -> tuple[int, int | None] | None:
        """``(last grid step sampled, last snapshot ts_ns or None)`` of ``inst``; None when the
        recorder never saw an event of it."""
        step = self._last_step.get(inst)
        return None if step is None else (step, self._last_snapshot_ns.get(inst))

    def resume_book(self, inst: InstrumentId, step: int, last_snapshot_ns: int | None) -> None:
        """Set ``inst``'s sampling state as a replay left it (``book_state`` of that replay).
        Raises ``ValueError`` when the recorder has seen ``inst`` already."""
        if inst in self._last_step:
            raise ValueError(f"{inst}: the recorder has sampled this book already")
        self._last_step[inst] = int(step)
        if last_snapshot_ns is not None:
            self._last_snapshot_ns[inst] = int(last_snapshot_ns)

    # ------------------------------------------------------------------ hooks

    def observe(self, ev: Any) -> None:
        """The ``BookStore.observer``: sample ``ev``'s book if a grid point passed, queue a trade."""
        inst = ev.instrument
        step = ev.ts_recv // self.interval_ns
        last = self._last_step.get(inst)
        if last is None:
            self._last_step[inst] = step  # the first event: nothing to sample before it
        elif step > last:
            self._last_step[inst] = step
            self._sample_safely(inst, step * self.interval_ns)
        if self.record_trades and isinstance(ev, Trade):
            row = trade_row(ev)
            self.sink.submit("trades", row)
            self.trades += 1
            for t in self._tallies:
                t.trade(inst, row)

    def tick(self, now_ns: int) -> int:
        """Sample, at the latest grid point ``<= now_ns``, every known book not sampled there yet
        (live: books that got no event). Returns the rows written."""
        step = now_ns // self.interval_ns
        n = 0
        for inst, last in list(self._last_step.items()):
            if step > last:
                self._last_step[inst] = step
                self._sample_safely(inst, step * self.interval_ns)
                n += 1
        return n

    # --------------------------------------------------------------- measuring

    def _sample_safely(self, inst: InstrumentId, t_ns: int) -> None:
        try:
            self._sample(inst, t_ns)
        except Exception:  # a measuring bug must never stop ingest
            log.exception("liquidity recorder: sampling %s at %d failed", inst, t_ns)

    def _unverified(self, e: BookEntry) -> bool:
        venue = e.instrument.venue
        no_rule = self._unverified_rule.get(venue)
        if no_rule is None:
            rule = getattr(getattr(e.sync, "rule", None), "name", None)
            if rule is None and self._adapter_for is not None:
                rule = getattr(getattr(self._adapter_for(venue), "sequence_rule", None), "name", None)
            no_rule = self._unverified_rule[venue] = rule in (None, "none")
        return no_rule and e.book.quality.checksums_verified == 0

    def _depths(self, book: Any) -> list[tuple[float, float, float, float]]:
        """``(bid_base, bid_quote, ask_base, ask_quote)`` per window. Linear books: the book's exact
        incremental window totals (``L2Book.depth``, the level set of ``depth_within_bps``).
        Inverse books (sizes in contracts): the base-unit view (contracts x contract size / price)
        summed over the same level counts, as ``depth_within_bps`` sums it."""
        if not book.contract_size:
            out = []
            for w in self.windows_bps:
                d = book.depth(w)
                out.append((d["bid_size"], d["bid_notional"], d["ask_size"], d["ask_notional"]))
            return out
        counts = [book.levels_within(w) for w in self.windows_bps]
        v = book.view(max(max(c) for c in counts) + 1)
        return [
            (
                float(np.sum(v.bid_sizes[:nb])),
                float(np.dot(v.bid_prices[:nb], v.bid_sizes[:nb])),
                float(np.sum(v.ask_sizes[:na])),
                float(np.dot(v.ask_prices[:na], v.ask_sizes[:na])),
            )
            for nb, na in counts
        ]

    def _sample(self, inst: InstrumentId, t_ns: int) -> None:
        e = self.store.entry(inst)
        book = e.book
        q = book.quality
        ts_recv = book.ts_recv_ns
        age_ms = None if ts_recv is None else (t_ns - ts_recv) / 1e6
        row: dict[str, Any] = {
            "venue": inst.venue,
            "symbol": inst.symbol,
            "ts_ns": t_ns,
            "book_ts_recv_ns": ts_recv,
            "book_ts_event_ns": book.ts_event_ns,
            "sequence": book.sequence,
            "best_bid": None,
            "best_bid_size": None,
            "best_ask": None,
            "best_ask_size": None,
            "mid": None,
            "spread_bps": None,
            "microprice": None,
            "age_ms": age_ms,
            "synced": bool(q.synced),
            "stale": ts_recv is None or t_ns - ts_recv > self.store.stale_after_ns,
            "crossed": bool(q.crossed),
            "unverified": self._unverified(e),
            "gaps": int(q.gaps),
            "resyncs": int(q.resyncs),
        }
        depths: list[tuple[float, float, float, float]] | None = None
        if q.synced:
            try:
                top = top_of_book(book.view(1))
                depths = self._depths(book)
            except MLMError:  # a side is empty: no mid, nothing to measure
                depths = None
        if depths is not None:
            row.update(
                best_bid=top.best_bid,
                best_bid_size=top.best_bid_size,
                best_ask=top.best_ask,
                best_ask_size=top.best_ask_size,
                mid=top.mid_price,
                spread_bps=top.spread_bps,
                microprice=top.microprice,
            )
        sink = self.sink
        sink.submit("book_metrics", row)
        for i, w in enumerate(self.windows_bps):
            bid_base, bid_quote, ask_base, ask_quote = depths[i] if depths is not None else (None,) * 4
            sink.submit(
                "book_metric_depths",
                {
                    "venue": inst.venue,
                    "symbol": inst.symbol,
                    "ts_ns": t_ns,
                    "window_bps": w,
                    "bid_base": bid_base,
                    "bid_quote": bid_quote,
                    "ask_base": ask_base,
                    "ask_quote": ask_quote,
                    "imbalance": None if depths is None else imbalance_value(bid_base, ask_base),
                },
            )
        self.samples += 1
        for t in self._tallies:
            t.metric(inst, t_ns)
        if depths is not None and self.snapshot_interval_ns > 0:
            last = self._last_snapshot_ns.get(inst)
            if last is None or t_ns - last >= self.snapshot_interval_ns:
                self._last_snapshot_ns[inst] = t_ns
                bids, asks = book.levels_scaled(self.snapshot_levels)
                pd, sd = book.price_decimals, book.size_decimals
                sink.submit(
                    "book_snapshots",
                    book_snapshot_row(
                        inst,
                        [(_dec(p, pd), _dec(s, sd)) for p, s in bids],
                        [(_dec(p, pd), _dec(s, sd)) for p, s in asks],
                        t_ns,  # the sample time: the book as it stood then
                        self.snapshot_levels,
                        ts_event_ns=book.ts_event_ns,
                        sequence=book.sequence,
                    ),
                )
                self.snapshots += 1
                for t in self._tallies:
                    t.snapshot(inst, t_ns)
