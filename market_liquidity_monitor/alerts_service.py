"""AlertService: user alert rules evaluated as book data arrives, fired events stored and pushed.

It holds the rules (persisted through ``storage.repositories.AlertRepository`` when a ``Database``
is given, in memory otherwise), samples the books the rules watch from a ``BookStore`` (directly
or through ``MarketData``), evaluates them with :class:`~.analytics.alerts.AlertEvaluator`, stores
the events and hands each one to the subscribers (e.g. a WebSocket stream). It also keeps a
per-symbol history of depth, from which ``crunches()`` finds liquidity-crunch episodes.

Driving it:

- ``await observe()`` samples every watched book once, evaluates, stores and notifies; call it
  from a periodic tick (``await run()`` does that at ``settings.analytics.tick_hz``) or after book
  updates;
- ``sample()`` is the synchronous half (no I/O): sample and evaluate, queue the events; then
  ``await flush()`` stores and notifies. A replay loop (synchronous) calls ``sample()`` every N
  updates and flushes at the end.

One observation per book per call, stamped with that book's clock ("now": wall time live, the
recording's time on replay); a book whose timestamp and trades have not changed since its last
observation is not sampled again (no new information), and a book that is not synced is skipped.
``trade_volume`` is the summed size of the trades the store received for that book since its
previous observation (base units; contracts for inverse contracts). Call the service from the
event loop that owns the store (ingest mutates books on that loop).

Storage mapping: a rule is an ``alerts`` row; its comparison is kept in ``operator`` as ``>``
(above), ``<`` (below), ``x>`` (crosses_above), ``x<`` (crosses_below), ``x`` (crosses); its
metric parameters and ``rearm`` in ``params``. An event is an ``alert_events`` row with the full
event as ``payload`` and ``ts_ms`` = the observation time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from market_liquidity_monitor.analytics.alerts import (
    AlertEvaluator,
    AlertEvent,
    AlertRule,
    Comparison,
    LiquidityCrunchReport,
    Observation,
    depth_key,
    detect_liquidity_crunches,
    required_windows,
    sample_observation,
)
from market_liquidity_monitor.analytics.liquidity import check_window
from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
)
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.lazy import lazy_module
from market_liquidity_monitor.market_data import DepthHistory, MarketData

if TYPE_CHECKING:  # the storage layer (SQLAlchemy) loads when the rules are first read or written
    from market_liquidity_monitor.storage.db import Database
    from market_liquidity_monitor.storage.models import AlertEventRow, AlertRow

_repo = lazy_module("market_liquidity_monitor.storage.repositories")

log = logging.getLogger(__name__)


def _is_database(obj: Any) -> bool:
    """``isinstance(obj, storage.db.Database)`` without importing it: an instance exists only
    once its module is imported."""
    db_module = sys.modules.get("market_liquidity_monitor.storage.db")
    return db_module is not None and isinstance(obj, db_module.Database)


OPERATORS: dict[Comparison, str] = {
    Comparison.ABOVE: ">",
    Comparison.BELOW: "<",
    Comparison.CROSSES_ABOVE: "x>",
    Comparison.CROSSES_BELOW: "x<",
    Comparison.CROSSES: "x",
}
_COMPARISON_OF = {op: c for c, op in OPERATORS.items()}
MAX_PENDING = 10_000  # events held while the database is unreachable (oldest dropped beyond)

Subscriber = Callable[[AlertEvent], Any]  # may return an awaitable


def rule_from_row(row: AlertRow) -> AlertRule:
    """The ``AlertRule`` stored in ``row``; ``InvalidInputError`` if the row is not one we can evaluate."""
    comparison = _COMPARISON_OF.get(row.operator)
    if comparison is None:
        raise InvalidInputError(
            f"alert {row.id}: operator {row.operator!r} is not one of {', '.join(_COMPARISON_OF)}"
        )
    if row.symbol is None:
        raise InvalidInputError(f"alert {row.id}: no symbol")
    return AlertRule.from_dict(
        {
            **dict(row.params or {}),
            "id": row.id,
            "name": row.name,
            "venue": row.venue,
            "symbol": row.symbol,
            "metric": row.metric,
            "comparison": comparison,
            "threshold": row.threshold,
            "cooldown_s": row.cooldown_s,
            "enabled": row.enabled,
        }
    )


def _event_from_row(row: AlertEventRow) -> AlertEvent:
    data = dict(row.payload or {})
    data["id"] = row.id
    return AlertEvent.model_validate(data)


def _sample_book(
    book: L2Book, inst: InstrumentId, windows: list[float], volume: float, ts_ns: int, book_ts: int | None
) -> Observation:
    """``sample_observation`` on the live integer book (O(1) per tracked window, no float view).

    Same definitions and, for mid, spread_bps and which levels are in a window, the same values:
    mid and spread come from the exact integer best prices (int / int division is correctly
    rounded, as is the view path's exact-fraction arithmetic); depth from ``L2Book.depth``, the
    incremental exact window totals (the live book rounds a window to 0.01 bps). Spot/linear books only.
    """
    bid = book.best_bid_scaled()
    ask = book.best_ask_scaled()
    if bid is None or ask is None:
        raise BookNotReadyError(f"{inst}: a side of the book is empty")
    b, a = bid[0], ask[0]
    values: dict[str, float | None] = {
        "mid_price": (b + a) / (2 * 10**book.price_decimals),
        "spread_bps": 20_000 * (a - b) / (a + b),
    }
    for w in windows:
        book.track_window(w)  # idempotent: incremental from now on
        d = book.depth(w)
        values[depth_key("bid", "size", w)] = d["bid_size"]
        values[depth_key("ask", "size", w)] = d["ask_size"]
        values[depth_key("bid", "notional", w)] = d["bid_notional"]
        values[depth_key("ask", "notional", w)] = d["ask_notional"]
    values["trade_volume"] = volume
    return Observation(ts_ns, inst.venue, inst.symbol, values, book_ts)


def _same_condition(a: AlertRule, b: AlertRule) -> bool:
    """Whether two rules watch the same thing the same way (name, cooldown, re-arm and enabled aside)."""
    keys = (
        "venue",
        "symbol",
        "metric",
        "comparison",
        "threshold",
        "window_bps",
        "side",
        "lookback",
        "source",
        "period_s",
    )
    return all(getattr(a, k) == getattr(b, k) for k in keys)


@dataclass(slots=True)
class _Tick:
    ts_ns: int
    by_venue: dict[str, Observation]


class AlertService:
    """Alert rules, evaluation as data arrives, stored events, subscribers and crunch detection.

    ``market``: a ``MarketData`` (symbols typed by users are resolved per venue) or a bare
    ``BookStore``. ``db``: a migrated ``Database`` for persistence, an async callable returning one
    (called on each use, so a database that was down at start is connected once it is back; e.g.
    the API's ``HistoryService``), or None to keep everything in memory. ``history``: observations kept per book (default ``settings.analytics.alert_history``).
    ``windows_bps``: depth windows always sampled (default ``settings.analytics.depth_windows_bps``;
    rule windows are added). ``watch_symbols``: unified symbols sampled on every venue even
    without a rule (for ``crunches``). Call ``await start()`` once to load stored rules.

    Write-through: with a database, a rule change is committed first and applied in memory only
    once the commit succeeded; if the database is unreachable the error is raised and memory is
    unchanged. If the stored rules could not be loaded at ``start()`` (database down), every rule
    operation loads them first (and raises while it still cannot), and ``run()`` retries each round.
    """

    def __init__(
        self,
        market: MarketData | BookStore,
        *,
        db: Database | Callable[[], Awaitable[Database]] | None = None,
        settings: Settings | None = None,
        history: int | None = None,
        windows_bps: Iterable[float] | None = None,
        watch_symbols: Iterable[str] = (),
    ):
        self.settings = settings or (market.settings if isinstance(market, MarketData) else Settings())
        self.market = market if isinstance(market, MarketData) else None
        self.store: BookStore = market.store if isinstance(market, MarketData) else market
        self._db_source = db
        self.db: Database | None = db if _is_database(db) else None
        self.loaded = db is None  # stored rules loaded (nothing to load without a database)
        cfg = self.settings.analytics
        self.history = history if history is not None else cfg.alert_history
        self._base_windows = {
            check_window(w) for w in (windows_bps if windows_bps is not None else cfg.depth_windows_bps)
        }
        self.watch_symbols = {s.strip().upper() for s in watch_symbols}
        self._rules: dict[int, AlertRule] = {}
        self._next_id = 1
        self._evaluator = AlertEvaluator(history=self.history)
        self._last_book_ts: dict[InstrumentId, int | None] = {}
        self._last_trade_recv: dict[InstrumentId, int] = {}
        self._last_obs: dict[InstrumentId, Observation] = {}
        self._ticks: dict[str, deque[_Tick]] = {}
        self._pending: list[AlertEvent] = []
        self._recent: deque[AlertEvent] = deque(maxlen=1000)
        self._subscribers: list[Subscriber] = []
        self._lock = asyncio.Lock()
        self.dropped_events = 0
        self.skipped_not_ready = 0

    # ------------------------------------------------------------------------------ rules

    async def _database(self) -> Database:
        if self.db is None or not _is_database(self._db_source):
            self.db = await self._db_source()  # type: ignore[misc]
        return self.db

    async def start(self) -> None:
        """Load the stored rules (no-op without a database). Rows that cannot be evaluated are logged
        and skipped. Raises the storage error when the database is unreachable (nothing loaded)."""
        if self._db_source is None:
            return
        db = await self._database()
        async with db.session() as session:
            rows = await _repo.AlertRepository(session).list()
        rules = {}
        for row in rows:
            try:
                rules[row.id] = rule_from_row(row)
            except MLMError as exc:
                log.warning("skipping stored alert %s: %s", row.id, exc)
        self._rules = rules
        self.loaded = True
        self._refresh()

    async def ensure_loaded(self) -> None:
        """Load the stored rules unless they are (``start``); raises as ``start`` does."""
        if not self.loaded:
            await self.start()

    def _refresh(self) -> None:
        self._evaluator.set_rules(self._rules[k] for k in sorted(self._rules))

    @property
    def windows_bps(self) -> list[float]:
        """Depth windows sampled on every observation (settings + rules), ascending."""
        return sorted(self._base_windows | required_windows(self._rules.values()))

    async def create_rule(self, rule: AlertRule | Mapping[str, Any]) -> AlertRule:
        """Store a rule and start evaluating it; returns it with its ``id``.

        ``rule``: an ``AlertRule`` or a mapping of its fields (``AlertRule.from_dict``). With a
        ``MarketData`` and a venue, the symbol is resolved on that venue ("BTC" -> "BTC/USDT");
        without a venue it must be the unified symbol. Raises ``InvalidInputError`` (bad rule, a
        lookback the service's history cannot hold, or a rule identical to a stored one: same venue,
        symbol, metric, comparison, threshold and metric parameters; the message names its id),
        ``UnknownVenueError``/``UnknownSymbolError``.
        """
        if not isinstance(rule, AlertRule):
            rule = AlertRule.from_dict(rule)
        if self.market is not None and rule.venue is not None:
            inst = await asyncio.to_thread(self.market.resolve, rule.symbol, rule.venue)
            if inst.symbol != rule.symbol:
                auto_name = rule.name == rule.describe()[:128]
                rule = replace(rule, symbol=inst.symbol, name=None if auto_name else rule.name)
        elif self.market is not None:
            # Every venue: the unified symbol must have a book somewhere, or the rule can never fire.
            held = await asyncio.to_thread(self.market.instruments)
            if not any(i.symbol == rule.symbol for i in held):
                raise UnknownSymbolError(rule.symbol, sorted({i.symbol for i in held}))
        AlertEvaluator([rule], history=self.history)  # fails early if the history is too short
        await self.ensure_loaded()
        same = next((r for r in self._rules.values() if _same_condition(r, rule)), None)
        if same is not None:
            raise InvalidInputError(
                f"an identical rule already exists: id {same.id} ({same.describe()}); "
                "delete it or change the threshold, venue, metric or its parameters"
            )
        if self._db_source is not None:
            async with (await self._database()).session() as session:
                row = await _repo.AlertRepository(session).create(
                    name=rule.name,
                    metric=str(rule.metric),
                    operator=OPERATORS[rule.comparison],
                    threshold=rule.threshold,
                    venue=rule.venue,
                    symbol=rule.symbol,
                    cooldown_s=rule.cooldown_s,
                    enabled=rule.enabled,
                    params=rule.params(),
                )
                rule = replace(rule, id=row.id)
        else:
            rule = replace(rule, id=self._next_id)
            self._next_id += 1
        self._rules[rule.id] = rule
        self._refresh()
        # Evaluate the new rule on the books as they are now: forget when its books were last
        # sampled, so the next sample observes them again even if they have not changed since
        # (a recorded book never changes; a quiet live book may not for a while).
        for inst in list(self._last_book_ts):
            if inst.symbol == rule.symbol and rule.venue in (None, inst.venue):
                del self._last_book_ts[inst]
        return rule

    async def list_rules(self) -> list[AlertRule]:
        """Every rule, by id (the committed ones: memory mirrors the database)."""
        await self.ensure_loaded()
        return [self._rules[k] for k in sorted(self._rules)]

    async def get_rule(self, rule_id: int) -> AlertRule | None:
        await self.ensure_loaded()
        return self._rules.get(rule_id)

    async def delete_rule(self, rule_id: int) -> bool:
        """Delete a rule (and its stored events); False if there is no such rule. With a database
        the delete is committed before the rule leaves memory (a storage error leaves it in place)."""
        await self.ensure_loaded()
        if not 1 <= rule_id < 2**63:  # not a row id (SQLite and PostgreSQL ids are signed 64-bit)
            return False
        found = rule_id in self._rules
        if self._db_source is not None:
            async with (await self._database()).session() as session:
                found = await _repo.AlertRepository(session).delete(rule_id) or found
        self._rules.pop(rule_id, None)  # committed (or no database): now memory follows
        self._refresh()
        return found

    async def set_enabled(self, rule_id: int, enabled: bool) -> bool:
        """Enable or disable a rule; False if there is no such rule (committed before memory changes)."""
        await self.ensure_loaded()
        rule = self._rules.get(rule_id)
        if rule is None:
            return False
        if self._db_source is not None:
            async with (await self._database()).session() as session:
                await _repo.AlertRepository(session).set_enabled(rule_id, enabled)
        self._rules[rule_id] = replace(rule, enabled=enabled)
        self._refresh()
        return True

    # -------------------------------------------------------------------------- sampling

    def _targets(self) -> list[InstrumentId]:
        held = set(self.store.instruments())
        wanted: set[InstrumentId] = set()
        for r in self._rules.values():
            if not r.enabled:
                continue
            if r.venue is not None:
                wanted.add(InstrumentId(r.venue, r.symbol))
            else:
                wanted.update(i for i in held if i.symbol == r.symbol)
        wanted.update(i for i in held if i.symbol in self.watch_symbols)
        return sorted(wanted & held)

    def _trade_volume(self, inst: InstrumentId) -> tuple[float, bool]:
        entry = self.store.find(inst.venue, inst.symbol)
        last = self._last_trade_recv.get(inst)
        total, newest, new = 0.0, last, False
        for t in reversed(entry.trades):
            if last is not None and t.ts_recv <= last:
                break
            total += float(t.size)
            newest = t.ts_recv if newest is None else max(newest, t.ts_recv)
            new = True
        if newest is not None:
            self._last_trade_recv[inst] = newest
        return (total if last is not None else 0.0), new

    def sample(self, store: BookStore | None = None) -> list[AlertEvent]:
        """Sample every watched book once and evaluate the rules (no I/O); returns the new events.

        The events are also queued for ``flush()``. ``store`` defaults to the service's store.
        """
        if store is not None and store is not self.store:
            self.store = store
        windows = self.windows_bps
        fired: list[AlertEvent] = []
        ticks: dict[str, _Tick] = {}
        for inst in self._targets():
            obs = self._sample_one(inst, windows)
            if obs is not None:
                fired.extend(self._evaluator.update(obs))
                self._last_obs[inst] = obs
            last = self._last_obs.get(inst)
            if last is not None:
                tick = ticks.setdefault(inst.symbol, _Tick(last.ts_ns, {}))
                tick.ts_ns = max(tick.ts_ns, last.ts_ns)
                tick.by_venue[inst.venue] = last
        for symbol, tick in ticks.items():
            self._ticks.setdefault(symbol, deque(maxlen=self.history)).append(tick)
        self._queue(fired)
        return fired

    def _sample_one(self, inst: InstrumentId, windows: list[float]) -> Observation | None:
        entry = self.store.find(inst.venue, inst.symbol)
        book = entry.book
        if not book.quality.synced:
            self.skipped_not_ready += 1
            return None
        book_ts = book.ts_event_ns if book.ts_event_ns is not None else book.ts_recv_ns
        volume, new_trades = self._trade_volume(inst)
        if inst in self._last_book_ts and self._last_book_ts[inst] == book_ts and not new_trades:
            return None
        now = self.store.clock_of(inst).now_ns()
        prev = self._last_obs.get(inst)
        if prev is not None and now < prev.ts_ns:  # a clock never goes back; be safe anyway
            now = prev.ts_ns
        try:
            if book.contract_size:  # inverse: base-unit sizes need the float view
                obs = sample_observation(
                    self.store.view(inst.venue, inst.symbol), windows, trade_volume=volume, ts_ns=now
                )
            else:
                obs = _sample_book(book, inst, windows, volume, now, book_ts)
        except MLMError as exc:  # an empty side, or resyncing: nothing to measure now
            log.debug("%s: not sampled: %s", inst, exc)
            self.skipped_not_ready += 1
            return None
        self._last_book_ts[inst] = book_ts
        return obs

    def _queue(self, events: list[AlertEvent]) -> None:
        self._pending.extend(events)
        if len(self._pending) > MAX_PENDING:
            drop = len(self._pending) - MAX_PENDING
            self.dropped_events += drop
            log.warning("alert events: %d unsaved events dropped (database unreachable?)", drop)
            del self._pending[:drop]

    async def flush(self) -> list[AlertEvent]:
        """Store the queued events (with their ids) and hand each to the subscribers; returns them.

        If the database write fails the events stay queued for the next flush and the error is raised.
        """
        async with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return []
            if self._db_source is not None:
                try:
                    async with (await self._database()).session() as session:
                        repo = _repo.AlertRepository(session)
                        stored = []
                        for e in pending:
                            row = await repo.add_event(
                                e.rule_id,
                                message=e.message,
                                value=e.value,
                                venue=e.venue,
                                symbol=e.symbol,
                                payload=e.model_dump(mode="json", exclude={"id"}),
                                ts_ms=e.ts_ns // 1_000_000,
                            )
                            stored.append(e.model_copy(update={"id": row.id}))
                except BaseException:
                    self._pending[:0] = pending
                    raise
                pending = stored
            self._recent.extend(pending)
        for e in pending:
            await self._notify(e)
        return pending

    async def observe(self, store: BookStore | None = None) -> list[AlertEvent]:
        """``sample()`` then ``flush()``: the events fired by this observation, stored and pushed."""
        self.sample(store)
        return await self.flush()

    async def run(self, interval_s: float | None = None) -> None:
        """Observe every ``interval_s`` (default ``1 / settings.analytics.tick_hz``) until cancelled.

        A failed round (e.g. the database is down) is logged and retried at the next tick; its
        events stay queued. Cancellation is re-raised.
        """
        interval = interval_s if interval_s is not None else 1.0 / self.settings.analytics.tick_hz
        if interval <= 0:
            raise InvalidInputError(f"interval_s must be > 0 seconds; got {interval!r}")
        last_warning = -math.inf
        while True:
            try:
                if not self.loaded:  # the database was down at start: load once it is back
                    with contextlib.suppress(Exception):
                        await self.start()
                await self.observe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - last_warning >= 30:  # at most one line per 30 s of outage
                    log.warning("alert round failed (events kept for the next round): %s", exc)
                    last_warning = time.monotonic()
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------- subscribers

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every stored event (it may be async); returns an unsubscribe function.

        A subscriber that raises is logged and kept; it never stops the others.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    async def _notify(self, event: AlertEvent) -> None:
        for cb in list(self._subscribers):
            try:
                res = cb(event)
                if inspect.isawaitable(res):
                    await res
            except Exception as exc:
                log.warning("alert subscriber %r failed: %s", cb, exc)

    # ------------------------------------------------------------------------ queries

    async def recent_events(
        self, limit: int = 50, symbol: str | None = None, venue: str | None = None
    ) -> list[AlertEvent]:
        """The most recent events first (stored ones when a database is used), optionally of one symbol/venue.

        Raises ``InvalidInputError`` if ``limit`` is not in [1, 10000].
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInputError(f"limit must be an integer in [1, 10000]; got {limit!r}")
        sym = symbol.strip().upper() if symbol else None
        if self._db_source is not None:
            async with (await self._database()).session() as session:
                rows = await _repo.AlertRepository(session).events(limit=limit, symbol=sym, venue=venue)
            return [_event_from_row(r) for r in rows]
        out = [
            e
            for e in reversed(self._recent)
            if (sym is None or e.symbol == sym) and (venue is None or e.venue == venue)
        ]
        return sorted(out, key=lambda e: e.ts_ns, reverse=True)[:limit]

    def observations(self, venue: str, symbol: str) -> list[Observation]:
        """The retained observations of one book, oldest first."""
        return self._evaluator.series(venue, symbol.strip().upper())

    def crunches(
        self,
        symbol: str,
        window_bps: float,
        *,
        venue: str | None = None,
        unit: str = "notional",
        baseline_n: int = 60,
        drop_ratio: float = 0.5,
        recovery_ratio: float = 0.8,
        stored: dict[str, tuple[list[int], list[float | None]]] | None = None,
    ) -> LiquidityCrunchReport:
        """Liquidity-crunch episodes of ``symbol``'s depth within ``window_bps`` (bid + ask).

        ``stored``: per venue, ``(ts_ns, depth)`` read from the stored liquidity history
        (``HistoryService.depth_series``); when given with more than ``baseline_n`` points it is
        the series used (one venue; across venues as for the replay samples below).

        One point per ``sample()`` round (each venue's latest observation; the last ``history``
        rounds are kept). Across venues (``venue`` None): the summed depth of the rounds in which
        every venue of the symbol had been observed, with HHI per episode; one venue: its series.
        On recorded data, when the service has observed the symbol no more than ``baseline_n``
        times, the depth sampled during the replay is used instead (``MarketData.depth_history``:
        one point per sample, stamped with the book's receive time; across venues only over the
        time their recordings share, each venue's latest sample at each point).
        Definitions: ``analytics.alerts.detect_liquidity_crunches``. Raises ``InvalidInputError``
        for a symbol with no observation (listing those with one) or a window that is not sampled
        (listing the sampled windows).
        """
        sym = symbol.strip().upper()
        w = check_window(window_bps)
        if w not in self.windows_bps:
            raise InvalidInputError(
                f"depth within {w:g} bps is not sampled; sampled windows (bps): "
                f"{', '.join(f'{x:g}' for x in self.windows_bps)}"
            )
        params = {"baseline_n": baseline_n, "drop_ratio": drop_ratio, "recovery_ratio": recovery_ratio}
        if stored and all(len(ts) > baseline_n for ts, _ in stored.values()):
            return self._crunches_from_series(sym, dict(stored), w, unit, **params)
        ticks = list(self._ticks.get(sym, ()))
        if len(ticks) <= baseline_n:
            hist = self._replay_history(sym, venue)
            if hist:
                return self._crunches_from_history(
                    sym, hist, w, unit, baseline_n=baseline_n, drop_ratio=drop_ratio,
                    recovery_ratio=recovery_ratio,
                )  # fmt: skip
        if not ticks:
            raise InvalidInputError(
                f"no observation of {sym} yet; observed: {', '.join(sorted(self._ticks)) or 'none'} "
                "(add a rule on it or list it in watch_symbols)"
            )
        venues = sorted({v for t in ticks for v in t.by_venue})
        if venue is not None:
            if venue not in venues:
                raise InvalidInputError(
                    f"no observation of {sym} on {venue!r}; observed on: {', '.join(venues)}"
                )
            venues = [venue]
        keys = (depth_key("bid", unit, w), depth_key("ask", unit, w))
        rows = [t for t in ticks if all(v in t.by_venue for v in venues)]
        series: dict[str, list[float]] = {v: [] for v in venues}
        ts: list[int] = []
        for t in rows:
            vals = [[t.by_venue[v].values.get(k) for k in keys] for v in venues]
            if any(x is None for pair in vals for x in pair):
                continue
            ts.append(t.ts_ns)
            for v, (b, a) in zip(venues, vals, strict=True):
                series[v].append(b + a)
        return detect_liquidity_crunches(
            ts,
            venue_depth=series,
            baseline_n=baseline_n,
            drop_ratio=drop_ratio,
            recovery_ratio=recovery_ratio,
            window_bps=w,
            unit=unit,
        )

    def _replay_history(self, sym: str, venue: str | None) -> dict[str, DepthHistory]:
        """Per venue, the depth sampled while the recordings of ``sym``'s books replayed."""
        if self.market is None:
            return {}
        out = {}
        for inst in self.store.instruments():
            if inst.symbol == sym and (venue is None or inst.venue == venue):
                h = self.market.depth_history(inst)
                if h is not None:
                    out[inst.venue] = h
        return out

    def _crunches_from_history(
        self,
        sym: str,
        hist: dict[str, DepthHistory],
        w: float,
        unit: str,
        **params: Any,
    ) -> LiquidityCrunchReport:
        venues = sorted(hist)
        per: dict[str, tuple[list[int], list[float | None]]] = {}
        for v in venues:
            h = hist[v]
            if w not in h.windows_bps:
                raise InvalidInputError(
                    f"depth within {w:g} bps was not sampled during the replay of {v} {sym}; sampled "
                    f"windows (bps): {', '.join(f'{x:g}' for x in h.windows_bps)}"
                )
            per[v] = (list(h.ts_ns), h.series(w, unit))
        return self._crunches_from_series(sym, per, w, unit, **params)

    def _crunches_from_series(
        self,
        sym: str,
        per: dict[str, tuple[list[int], list[float | None]]],
        w: float,
        unit: str,
        **params: Any,
    ) -> LiquidityCrunchReport:
        """Crunches of per-venue ``(ts_ns, depth)`` series (None = no value at that time)."""
        venues = sorted(per)
        if len(venues) == 1:
            (v,) = venues
            ts, vals = per[v]
            keep = [i for i, x in enumerate(vals) if x is not None]
            series = {v: [vals[i] for i in keep]}
            ts = [ts[i] for i in keep]
        else:
            start = max(per[v][0][0] for v in venues)
            end = min(per[v][0][-1] for v in venues)
            if start > end:
                spans = "; ".join(f"{v} {iso_ns(per[v][0][0])}..{iso_ns(per[v][0][-1])}" for v in venues)
                raise InvalidInputError(
                    f"the {sym} books were recorded at different times ({spans}): their depth cannot "
                    "be summed; ask per venue"
                )
            # as-of merge: at each sample time in [start, end], every venue's latest sample
            events = sorted((t, v, x) for v in venues for t, x in zip(*per[v], strict=True) if t <= end)
            latest: dict[str, float | None] = {}
            ts, series = [], {v: [] for v in venues}
            for t, v, x in events:
                latest[v] = x
                if t < start or len(latest) < len(venues) or any(y is None for y in latest.values()):
                    continue
                ts.append(t)
                for u in venues:
                    series[u].append(latest[u])
        return detect_liquidity_crunches(ts, venue_depth=series, window_bps=w, unit=unit, **params)
