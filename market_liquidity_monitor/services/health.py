"""HealthService: the integrity of every book held and the state of each venue's REST access.

``venue_health`` answers "are any feeds stale or disconnected?" for the assistant, the API and
the CLI: one row per book held (recorded/WebSocket books, ccxt.pro books and REST snapshots alike,
with the same quality fields), each venue's circuit breaker, and each ccxt.pro watch (state, last
update age, reconnects, errors: ``data_engine.pro.ProBookStatus``). ``/api/status`` (readiness of the watched books)
is ``api.status.compute_status``; it lists the same book rows for every book held.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from market_liquidity_monitor.analytics.liquidity import Result
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import UnknownVenueError
from market_liquidity_monitor.services.books import BookService, quality_warning
from market_liquidity_monitor.services.tabular import Tabular

__all__ = ["BookHealth", "HealthAnswer", "HealthService"]


class BookHealth(Result):
    """One held book's integrity (the store's counters, ``ingest.store.QUALITY_KEYS``), its source
    and a one-line warning when it should not be trusted. ``age_ms``: since the last book update on
    the book's clock; counters (gaps, resyncs, checksums, episodes) only grow."""

    venue: str
    symbol: str
    source: str
    warning: str | None
    synced: bool
    stale: bool
    crossed: bool
    age_ms: float | None
    stale_after_ms: int | None = None
    gaps: int = 0
    resyncs: int = 0
    last_gap_ts_ns: int | None = None
    checksums_verified: int = 0
    checksum_failures: int = 0
    crossed_episodes: int = 0
    stale_episodes: int = 0
    updates_applied: int = 0
    messages: int = 0
    sequence: int | None = None


class HealthAnswer(Tabular, Result):
    """Every book held (of the venues asked about), the REST circuit breakers and the ccxt.pro watches.

    ``healthy``/``unhealthy``: books without / with a warning (stale, crossed, not synced, checksum
    failures or gaps in their history); ``open_breakers``: venues whose breaker is not closed;
    ``ccxt_pro``: one row per ccxt.pro watch (``ProBookStatus``: venue, symbol, state
    starting/watching/reconnecting, last_update_age_ms, updates, reconnects, errors, last_error,
    retry_in_s, idle_s)."""

    mode: str
    venues_asked: list[str]
    books: list[BookHealth]
    books_total: int
    healthy: int
    unhealthy: int
    circuit_breakers: list[dict[str, Any]]
    open_breakers: list[str]
    ccxt_pro: list[dict[str, Any]] = Field(default_factory=list)


class HealthService:
    def __init__(self, settings: Settings, books: BookService, engine: Any = None):
        self.settings = settings
        self.books = books
        self.engine = engine

    def pro_watches(self) -> list[dict[str, Any]]:
        """The ccxt.pro watches (``ProBookWatcher.status``) as dicts; [] without a watcher."""
        pro = getattr(self.books, "pro", None)
        return [w.to_dict() for w in pro.status()] if pro is not None else []

    def breakers(self) -> list[dict[str, Any]]:
        return [h.to_dict() for h in self.engine.health()] if self.engine is not None else []

    async def venue_health(self, venue: str | None = None, venues: list[str] | None = None) -> HealthAnswer:
        """Health of the books of ``venue``/``venues`` (None: every venue). On recorded data the
        recordings asked about are replayed first, so the report covers every recorded book, not
        only those loaded so far. Raises ``UnknownVenueError`` for a venue nobody knows."""
        asked = [self.books.canonical(v) for v in ([venue] if venue else []) + list(venues or [])]
        known = set(self.books.known_venues()) | {h["venue"] for h in self.breakers()}
        for v in asked:
            if v not in known:
                if self.books.is_recorded or self.engine is None:
                    raise UnknownVenueError(v, sorted(known))
                self.engine.exchange(v)  # a ccxt venue without a book yet is fine; unknown raises
        if self.books.is_recorded:
            if asked:
                for v in asked:
                    await self.books.load_all(v)
            else:
                await self.books.load_all()
        down = {(w["venue"], w["symbol"]): w for w in self.pro_watches() if w["state"] != "watching"}
        rows = []
        for inst in self.books.loaded():
            if asked and inst.venue not in asked:
                continue
            q = self.books.quality(inst)
            known = {k: q[k] for k in BookHealth.model_fields if k in q}
            source = str(self.books.source_of(inst))
            warning = quality_warning(q)
            w = down.get((inst.venue, inst.symbol)) if source == "ccxt_pro" else None
            if w is not None:  # the watch dropped: its last book is not served, whatever its age
                dropped = f"ccxt.pro watch {w['state']}: {w.get('last_error') or 'no book yet'}"
                warning = f"{dropped}; {warning}" if warning else dropped
            rows.append(
                BookHealth(
                    venue=inst.venue,
                    symbol=inst.symbol,
                    source=source,
                    warning=warning,
                    **known,
                )
            )
        breakers = [b for b in self.breakers() if not asked or b.get("venue") in asked]
        return HealthAnswer(
            mode=self.books.mode,
            venues_asked=asked,
            books=rows,
            books_total=len(rows),
            healthy=sum(1 for r in rows if r.warning is None),
            unhealthy=sum(1 for r in rows if r.warning is not None),
            circuit_breakers=breakers,
            open_breakers=[b["venue"] for b in breakers if b.get("state") != "closed"],
            ccxt_pro=[w for w in self.pro_watches() if not asked or w["venue"] in asked],
        )
