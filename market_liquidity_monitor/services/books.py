"""BookService: the one way to a book, from whichever source has it, labelled with that source.

For a ``(venue, symbol)`` the service picks, in order (../shared/DESIGN.md, "Book sources"):

1. **recording** (recorded mode, ``settings.data_dir`` set): the book rebuilt by replaying the
   venue's recording through its adapter and sequence/checksum rules (``MarketData``);
2. **ws**: a native WebSocket book kept by live ingest (``ingest/live.py``) in the same
   ``BookStore``, when it is synced and fresh; verified by the venue's sequence/checksum rules;
3. **ccxt_pro**: for a venue without a native adapter, a ccxt.pro ``watch_order_book`` book
   (``data_engine.pro.ProBookWatcher``), when it is held and fresh. Unverified: ccxt.pro applies
   the venue's updates itself and exposes no sequence ids or checksums to check;
4. **rest**: a ccxt REST ``fetch_order_book`` snapshot (``DataEngine.order_book``, behind the
   venue's circuit breaker), kept in its own ``BookStore`` and re-fetched after
   ``data_engine.rest_book_ttl_s``. Unverified: a REST snapshot carries no sequence chain or
   checksum to check.

Every ``Book`` carries a ``BookProvenance``: source, integrity (verified or not, and why), the
book's timestamp and age, its quality counters and a one-line warning when it should not be
trusted. Only a ``BookStore`` writes quality counters: REST snapshots go through one too.

Venue ids are ccxt's (``gate``; ``gateio`` is accepted as an alias). An unknown venue or symbol
raises ``UnknownVenueError`` / ``UnknownSymbolError`` naming the closest valid ones (from the
recordings, the live store, or the venue's ccxt markets).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from market_liquidity_monitor.analytics import BookProblem, book_problems
from market_liquidity_monitor.analytics.liquidity import Result, top_of_book
from market_liquidity_monitor.book.sync import NoSequenceRule
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.data_engine.errors import VenueUnreachableError
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.instrument import InstrumentId, MarketType
from market_liquidity_monitor.ingest.clock import WallClock, iso_ns
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.ingest.timetravel import AsOf, AsOfOutOfRangeError
from market_liquidity_monitor.market_data import USD_LIKE, MarketData, pick_instrument
from market_liquidity_monitor.venues.registry import canonical_venue

log = logging.getLogger(__name__)

__all__ = [
    "Book",
    "BookProvenance",
    "BookService",
    "BookSource",
    "Unavailable",
    "parse_as_of",
    "quality_warning",
    "quote_group",
]


class BookSource(StrEnum):
    """Where a book came from."""

    RECORDING = "recording"  # replayed from a recording through the venue adapter (verified)
    WS = "ws"  # native WebSocket feed kept live by ingest (verified)
    CCXT_PRO = "ccxt_pro"  # ccxt.pro watch_order_book (unverified)
    REST = "rest"  # ccxt REST fetch_order_book snapshot (unverified)


_VERIFIED = {
    BookSource.RECORDING: True,
    BookSource.WS: True,
    BookSource.CCXT_PRO: False,
    BookSource.REST: False,
}


class BookProvenance(Result):
    """Where one book comes from and whether to trust it.

    ``source``: see ``BookSource``; ``verified``: the book was checked against the venue's
    sequence rule (and checksum where the venue sends one) on every update; ``integrity``: that in
    words; ``book_ts``/``book_ts_ns``: the book's time (venue time when known, else receive time;
    ISO 8601 UTC / ns since the epoch); ``age_ms``: now minus the last update, on the book's clock
    (the recording's own time in recorded mode); ``quality``: the store's counters
    (``ingest.store.QUALITY_KEYS``); ``quality_warning``: the present trust problems and the
    integrity history in one line, or None.

    Time travel (a question ``as_of`` an instant of a recording): ``as_of`` is the instant asked
    (ISO 8601 UTC, recording time = the recorder's receive time); the book is the one rebuilt from
    every update received at or before it, ``book_received_ts`` the receive time of its last update
    (<= ``as_of``); ``book_ts`` stays the venue's time of that update, which can differ from the
    receive time by the venue-to-recorder clock offset; ``age_ms`` is measured against ``as_of``.
    Both None: the latest book.
    """

    venue: str
    symbol: str
    market_type: str
    source: BookSource
    verified: bool
    integrity: str
    book_ts: str | None
    book_ts_ns: int | None
    age_ms: float | None
    levels_bid: int
    levels_ask: int
    quality: dict[str, Any]
    quality_warning: str | None = None
    as_of: str | None = None
    book_received_ts: str | None = None


class Unavailable(Result):
    """A venue that could not give a usable book, and why: ``reason`` in words, ``kind`` one of
    ``no_symbol`` (the venue lists no such asset/pair), ``other_quote`` (only a book quoted in a
    currency not comparable with the request), ``not_ready`` (resyncing, or a side is empty),
    ``unreachable`` (REST fetch failed or circuit open), ``no_fee`` (taker fee unknown),
    ``no_data`` (no data for the venue), ``out_of_range`` (no recorded book at the ``as_of`` asked:
    the reason gives the venue's recorded range)."""

    venue: str
    reason: str
    kind: str = "not_ready"


@dataclass(frozen=True, slots=True)
class Book:
    """One book image (``view``, float arrays best first) and its ``provenance``."""

    view: BookView
    provenance: BookProvenance

    @property
    def instrument(self) -> InstrumentId:
        return self.view.instrument


def quality_warning(q: dict[str, Any]) -> str | None:
    """The book's present trust problems (``analytics.book_problems``) and its integrity history in
    one line (``"stale (last update 300012 ms before now); 2 sequence gaps (resynced 2 times)"``)."""
    problems = [
        f"stale (last update {q.get('age_ms')} ms before now)"
        if p is BookProblem.STALE
        else "crossed (best bid >= best ask)"
        if p is BookProblem.CROSSED
        else str(p)
        for p in book_problems(q)
    ]
    if q.get("checksum_failures"):
        problems.append(f"{q['checksum_failures']} checksum failures")
    if q.get("gaps"):
        problems.append(f"{q['gaps']} sequence gaps (resynced {q.get('resyncs', 0)} times)")
    return "; ".join(problems) or None


def quote_group(symbol: str) -> tuple[str, ...]:
    """Quote currencies whose prices are comparable with what the user asked for: USD-like
    (USD, USDT, USDC...) unless a pair with another quote was named (``"ETH/EUR"``: EUR only)."""
    if "/" in symbol:
        quote = symbol.upper().split("/")[1].split(":")[0]
        return USD_LIKE if quote in USD_LIKE else (quote,)
    return USD_LIKE


class _RestAdapter:
    """What a ``BookStore`` needs to hold REST snapshots of any ccxt venue: no sequence chain
    (each snapshot replaces the book), no checksum, and the contract size of inverse markets from
    ccxt's market metadata (sizes in contracts -> base units, as the native adapters do)."""

    sequence_rule = NoSequenceRule()

    def __init__(self, venue: str, contract_sizes: dict[str, float]):
        self.venue = venue
        self._contract_sizes = contract_sizes

    def contract_size(self, symbol: str) -> float | None:
        return self._contract_sizes.get(symbol)

    def verify_checksum(self, book: Any, expected: int) -> bool:
        return True


_RELATIVE_AS_OF = re.compile(r"^end(?:\s*-\s*(\d+(?:\.\d+)?)\s*s)?$", re.I)
_PARTIAL_AS_OF = re.compile(r"^(?:--(\d{2})-(\d{2}))?T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?Z?$", re.I)


def parse_as_of(value: datetime | str | int | None) -> AsOf | None:
    """An ``as_of`` instant (``ingest.timetravel.AsOf``), or None for "the latest book".

    ``value``: an aware ``datetime``; a naive one or an ISO 8601 string without an offset is read as
    UTC (``2024-08-08T23:58:30``, ``2024-08-08 23:58:30Z``, ``...+02:00``); an int is ns since the
    epoch. Relative to each book's recording: ``end`` (its last record), ``end-300s`` (300 s
    before it), ``--08-08T23:58:00Z`` (8 Aug 23:58 of the recording's year, ISO 8601 without a
    year), ``T23:58:00Z`` (23:58 on the recording's day). Raises ``InvalidInputError`` saying
    what is valid."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, AsOf):
        return value
    if isinstance(value, bool):
        raise InvalidInputError(f"as_of must be a UTC date-time (ISO 8601), got {value!r}")
    if isinstance(value, int):
        if not 0 <= value < 2**63:
            raise InvalidInputError(f"as_of in ns since the epoch must be in [0, 2**63), got {value}")
        return AsOf(iso_ns(value), ns=value)
    if isinstance(value, str):
        text = value.strip()
        if m := _RELATIVE_AS_OF.match(text):
            secs = float(m.group(1) or 0)
            return AsOf(f"end-{secs:g}s" if secs else "end", before_end_ns=round(secs * 1e9))
        if m := _PARTIAL_AS_OF.match(text):
            month, day, hh, mm, ss, frac = m.groups()
            if int(hh) > 23 or int(mm) > 59 or int(ss or 0) > 59 or (month and not (1 <= int(month) <= 12
                                                                                    and 1 <= int(day) <= 31)):  # fmt: skip
                raise InvalidInputError(f"as_of {text!r} is not a valid date/time of day")
            t_ns = ((int(hh) * 60 + int(mm)) * 60 + int(ss or 0)) * 1_000_000_000 + int(
                (frac or "0").ljust(9, "0")
            )
            md = (int(month), int(day)) if month else None
            return AsOf(text.upper().rstrip("Z") + "Z", month_day=md, time_ns=t_ns)
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        except ValueError:
            raise InvalidInputError(
                f"as_of {text[:40]!r} is not a date-time; give ISO 8601 UTC (2024-08-08T23:58:30Z), "
                "or relative to the recording: end, end-300s, --08-08T23:58:00Z, T23:58:00Z"
            ) from None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"as_of must be a UTC date-time (ISO 8601), got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    return AsOf(iso_ns(ns), ns=ns)


class BookService:
    """Books by instrument from every source (see the module docstring). Build once per process
    (``services.build_services``) and share; safe to use from one event loop.

    ``market``: the recorded/WebSocket books (``MarketData``); ``engine``: the ccxt
    ``DataEngine`` for REST books and markets (None: no REST fallback); ``pro``: the
    ``ProBookWatcher`` of ccxt.pro books (None: none).
    """

    def __init__(self, settings: Settings, market: MarketData, engine: Any = None, pro: Any = None):
        self.settings = settings
        self.market = market
        self.engine = engine
        self.pro = pro
        # ccxt.pro books: each copy the watcher hands out is fed as a snapshot (no sequence chain)
        self.pro_store = BookStore(
            self._rest_adapter,
            windows_bps=settings.analytics.depth_windows_bps,
            clock=WallClock(),
            stale_after_ms=settings.analytics.stale_after_ms,
        )
        self._rest_contract_sizes: dict[str, dict[str, float]] = {}
        self.rest_store = BookStore(
            self._rest_adapter,
            windows_bps=settings.analytics.depth_windows_bps,
            clock=WallClock(),
            stale_after_ms=settings.analytics.stale_after_ms,
        )
        self._rest_fetched_at: dict[InstrumentId, float] = {}
        self._rest_locks: dict[InstrumentId, asyncio.Lock] = {}
        # The last provenance built per (source, book, levels): see ``_provenance_of``.
        self._provenances: dict[tuple, tuple[Any, Any, tuple, BookProvenance]] = {}
        # _plan(): the resolution per (symbol, venues, strict) in recorded mode (see there).
        self._plans: dict[tuple, tuple[tuple[int, int], list]] = {}

    # ------------------------------------------------------------------ modes and listings

    @property
    def is_recorded(self) -> bool:
        return self.market.is_recorded

    @property
    def mode(self) -> str:
        return "recorded" if self.is_recorded else "live"

    def _rest_adapter(self, venue: str) -> _RestAdapter:
        return _RestAdapter(venue, self._rest_contract_sizes.setdefault(venue, {}))

    def known_venues(self) -> list[str]:
        """Venues with data, without loading anything: the recordings' venues (recorded mode) or the
        live store's plus the configured ones."""
        out = set(self.market.store.venues()) | {g.venue for g in self.market.groups}
        if not self.is_recorded:
            out |= {canonical_venue(v) for v in self.settings.venues}
        return sorted(out)

    def stream_venues(self) -> list[str]:
        """Venues with a recorded or WebSocket book (loaded or known from the recordings' names)."""
        return self.market.venues()

    def venues(self) -> list[str]:
        """Every venue a question may use by default: recorded/WebSocket venues, plus in live mode
        the configured ones (``settings.venues``; their books come over REST when no feed has them)."""
        out = set(self.stream_venues())
        if not self.is_recorded:
            out |= {canonical_venue(v) for v in self.settings.venues}
        return sorted(out)

    def loaded(self) -> list[InstrumentId]:
        """Every book held right now, by any source (recorded/WebSocket, ccxt.pro and REST stores)."""
        return sorted(
            set(self.market.store.instruments())
            | set(self.pro_store.instruments())
            | set(self.rest_store.instruments())
        )

    # ------------------------------------------------------------------ resolution

    def canonical(self, venue: str) -> str:
        return canonical_venue(venue)

    async def resolve(
        self, symbol: str, venue: str | None = None, market_type: MarketType | None = None
    ) -> InstrumentId:
        """The instrument a user means (``symbol``: ``BTC``, ``ETH/USD``, ``BTC/USDT:USDT``;
        ``venue``: a ccxt id or alias, None = the default venue if it lists the asset).

        Recorded mode: among the recorded instruments. Live: a WebSocket book if one exists, else
        the venue's ccxt markets (so any venue and symbol ccxt lists works). Raises
        ``UnknownVenueError`` / ``UnknownSymbolError`` naming the closest valid ones, and
        ``VenueUnreachableError`` when the venue's markets cannot be loaded.
        """
        venue = canonical_venue(venue) if venue else None
        if self.is_recorded or venue is None:
            try:
                # Every instrument (of the venue asked) known: no file I/O, no thread hop. Asking
                # for every venue's recordings made each single-venue question hop to a thread
                # while any other venue's small capture was still unread (bench_api orderbook).
                if self.market.discovered(venue):
                    return self.market.resolve(symbol, venue, market_type)
                return await asyncio.to_thread(self.market.resolve, symbol, venue, market_type)
            except (UnknownVenueError, UnknownSymbolError):
                if self.is_recorded or self.engine is None:
                    raise
                venue = venue or self.settings.agent.default_venue
        try:
            return await asyncio.to_thread(self.market.resolve, symbol, venue, market_type)
        except (UnknownVenueError, UnknownSymbolError):
            if self.engine is None:
                raise
        return await self._resolve_ccxt(symbol, venue, market_type)

    async def _resolve_ccxt(self, symbol: str, venue: str, market_type: MarketType | None) -> InstrumentId:
        markets = await self.engine.markets(venue)  # UnknownVenueError lists ccxt's venues
        candidates = [
            InstrumentId(venue, s)
            for s, m in markets.items()
            if m.get("active", True) is not False and m.get("type") in (None, "spot", "swap", "future")
        ]
        sym = symbol.strip().upper()
        hit = pick_instrument(sym, candidates, self.settings.agent.default_venue, market_type)
        if hit is None:
            valid = {i.symbol for i in candidates} if "/" in sym else {i.base for i in candidates}
            raise UnknownSymbolError(symbol, sorted(valid), venue)
        return hit

    # ------------------------------------------------------------------ books

    async def book(
        self, inst: InstrumentId, max_levels: int | None = None, as_of: datetime | str | int | None = None
    ) -> Book:
        """The book of ``inst`` from the best source available (module docstring), with its
        provenance. Raises ``BookNotReadyError`` (resyncing), ``UnknownSymbolError``,
        ``VenueUnreachableError`` (REST fallback failed; the breaker's state is in the message).

        ``as_of`` (``parse_as_of``): the book as it was at that instant of the recording, rebuilt
        by replaying from the nearest checkpoint (``MarketData.view_at``); ``AsOfOutOfRangeError``
        (an ``InvalidInputError``) names the valid range when the recording has no book then.
        Live data keeps no past books yet: ``InvalidInputError``."""
        spec = parse_as_of(as_of)
        if spec is not None:
            return await self._book_at(inst, max_levels, spec)
        if self.is_recorded:
            if self.market.is_loaded(inst):  # a cached float view: no I/O, no thread hop
                view = self.market.view(inst, max_levels)
            else:  # the first question of a book loads its recording (file I/O): off the loop
                view = await asyncio.to_thread(self.market.view, inst, max_levels)
            return Book(view, self._provenance_of(view, BookSource.RECORDING, max_levels))
        store = self.market.store
        try:
            view = store.view(inst.venue, inst.symbol, max_levels)
        except (UnknownVenueError, UnknownSymbolError, BookNotReadyError) as exc:
            if self.engine is None:
                raise
            ws_problem: str | None = str(exc) if isinstance(exc, BookNotReadyError) else None
        else:
            if not book_problems(view.quality) or self.engine is None:
                return Book(view, self._provenance_of(view, BookSource.WS, max_levels))
            ws_problem = quality_warning(view.quality)
        pro_problem: str | None = None
        if self.pro is not None and self.pro.supports(inst.venue):
            pro_book, pro_problem = await self._pro_book(inst, max_levels)
            if pro_book is not None:
                return pro_book
        try:
            view = await self._rest_view(inst, max_levels)
        except VenueUnreachableError as exc:
            if pro_problem:  # say why neither the ccxt.pro book nor REST could answer
                raise VenueUnreachableError(
                    exc.venue, f"{exc.reason}; {pro_problem}", exc.retry_after_s
                ) from exc
            raise
        book = Book(view, self._provenance_of(view, BookSource.REST, max_levels))
        if ws_problem or pro_problem:
            log.info(
                "%s: no usable streamed book (%s); answered from a REST snapshot",
                inst,
                ws_problem or pro_problem,
            )
        return book

    async def _pro_book(self, inst: InstrumentId, max_levels: int | None) -> tuple[Book | None, str | None]:
        """The ccxt.pro book of ``inst`` when it is held and fresh, else None and why."""
        snap, problem = await self.pro.snapshot(inst)
        if snap is None:
            return None, problem
        await self._note_contract_size(inst)
        self.pro_store.on_event(snap)  # each copy replaces the book (its ``messages``: copies taken)
        view = self.pro_store.view(inst.venue, inst.symbol, max_levels)
        if book_problems(view.quality):
            return None, f"ccxt.pro {inst.venue} {inst.symbol}: {quality_warning(view.quality)}"
        return Book(view, self._provenance_of(view, BookSource.CCXT_PRO, max_levels)), None

    async def _note_contract_size(self, inst: InstrumentId) -> None:
        """Keep the contract size of an inverse market (ccxt metadata) for the snapshot stores."""
        market = await self.engine.market(inst.venue, inst.symbol)
        if market.get("inverse") and market.get("contractSize"):
            self._rest_contract_sizes.setdefault(inst.venue, {})[inst.symbol] = float(market["contractSize"])

    def _check_time_travel(self) -> None:
        if not self.is_recorded:
            raise InvalidInputError(
                "as_of (a past instant) needs recorded data: run with --data (MLM_DATA_DIR); "
                "live books are answered as of now"
            )

    async def _book_at(self, inst: InstrumentId, max_levels: int | None, spec: AsOf) -> Book:
        self._check_time_travel()
        rng = await asyncio.to_thread(self.market.time_range, inst)
        as_of_ns = spec.resolve(rng)
        view = await asyncio.to_thread(self.market.view_at, inst, as_of_ns, max_levels)
        prov = self._provenance(view, BookSource.RECORDING)
        prov = prov.model_copy(
            update={"as_of": iso_ns(as_of_ns), "book_received_ts": iso_ns(view.ts_recv_ns)}
        )
        return Book(view, prov)

    async def _rest_view(self, inst: InstrumentId, max_levels: int | None) -> BookView:
        ttl = self.settings.data_engine.rest_book_ttl_s
        lock = self._rest_locks.setdefault(inst, asyncio.Lock())
        async with lock:
            fetched = self._rest_fetched_at.get(inst)
            if fetched is None or time.monotonic() - fetched > ttl:
                await self._note_contract_size(inst)
                snap = await self.engine.order_book(
                    inst.venue, inst.symbol, limit=self.settings.data_engine.rest_book_levels
                )
                self.rest_store.on_event(snap)
                self._rest_fetched_at[inst] = time.monotonic()
        return self.rest_store.view(inst.venue, inst.symbol, max_levels)

    def _provenance_of(self, view: BookView, source: BookSource, max_levels: int | None) -> BookProvenance:
        """``_provenance``, built once per book state: the same object again while the book store
        hands out the same arrays (they are replaced on every update, snapshot or resync) with
        equal quality counters (``age_ms`` included, so a live book's provenance is rebuilt as its
        clock moves; a recorded book's stays). The identity of a provenance therefore stands for
        the state of its book, and ``LiquidityService`` keys its answers on it. One entry per
        (source, book, levels): bounded by the books held. Time-travel books (``_book_at``) are
        rebuilt per question and do not come here."""
        key = (source, view.instrument, max_levels)
        q = tuple(view.quality.items())
        hit = self._provenances.get(key)
        if hit is not None and hit[0] is view.bid_prices and hit[1] is view.ask_prices and hit[2] == q:
            return hit[3]
        prov = self._provenance(view, source)
        self._provenances[key] = (view.bid_prices, view.ask_prices, q, prov)
        return prov

    def _provenance(self, view: BookView, source: BookSource) -> BookProvenance:
        q = dict(view.quality)
        inst = view.instrument
        if source is BookSource.REST:
            integrity = "unverified: a REST snapshot carries no sequence chain or checksum to check"
        elif source is BookSource.CCXT_PRO:
            integrity = "unverified: ccxt.pro applies the venue's updates itself; no checksum is checked here"
        else:
            rule = getattr(getattr(self.market.registry(inst.venue), "sequence_rule", None), "name", None)
            checks = (
                [f"sequence rule {rule}"] if rule and rule != "none" else ["no sequence ids on this feed"]
            )
            if q.get("checksums_verified"):
                checks.append(f"{q['checksums_verified']} checksums verified")
            integrity = "verified: " + ", ".join(checks)
        return BookProvenance(
            venue=inst.venue,
            symbol=inst.symbol,
            market_type=str(inst.market_type),
            source=source,
            verified=_VERIFIED[source],
            integrity=integrity,
            book_ts=view.book_ts_iso,
            book_ts_ns=view.book_ts_ns,
            age_ms=q.get("age_ms"),
            levels_bid=len(view.bid_prices),
            levels_ask=len(view.ask_prices),
            quality=q,
            quality_warning=quality_warning(q),
        )

    async def book_of(
        self, symbol: str, venue: str | None = None, as_of: datetime | str | int | None = None
    ) -> Book:
        """``resolve`` then ``book`` (``as_of``: see ``book``)."""
        return await self.book(await self.resolve(symbol, venue), as_of=as_of)

    async def books(
        self,
        symbol: str,
        venues: Sequence[str] | None = None,
        *,
        strict_venues: bool = True,
        as_of: datetime | str | int | None = None,
    ) -> tuple[list[Book], list[Unavailable]]:
        """One usable book of ``symbol`` per venue, quoted comparably (``quote_group``).

        ``venues``: ccxt ids (aliases accepted, no repeats); None = ``venues()``. With
        ``strict_venues`` an unknown venue id raises ``UnknownVenueError`` (closest valid ones
        named); every other problem (no such symbol there, another quote currency, book not synced,
        venue unreachable, no recorded book at ``as_of``) becomes an ``Unavailable`` row saying why.
        ``as_of``: every book at that instant (see ``book``).
        """
        spec = parse_as_of(as_of)
        if spec is not None:
            self._check_time_travel()
        if venues:
            wanted = [canonical_venue(v) for v in venues]
            repeated = sorted({v for v in wanted if wanted.count(v) > 1})
            if repeated:
                raise InvalidInputError(f"venues must not repeat; {', '.join(repeated)} given twice")
        else:
            wanted = self.venues()
        books: list[Book] = []
        missing: list[Unavailable] = []
        for step in await self._plan(symbol, wanted, strict_venues and bool(venues)):
            if isinstance(step, Unavailable):
                missing.append(step)
                continue
            try:
                book = await self.book(step, as_of=spec)
                top_of_book(book.view)  # both sides present
            except AsOfOutOfRangeError as exc:
                missing.append(Unavailable(venue=step.venue, reason=str(exc), kind="out_of_range"))
                continue
            except VenueUnreachableError as exc:
                missing.append(Unavailable(venue=step.venue, reason=f"{step}: {exc}", kind="unreachable"))
                continue
            except MLMError as exc:
                missing.append(Unavailable(venue=step.venue, reason=f"{step}: {exc}"))
                continue
            books.append(book)
        return books, missing

    async def _plan(self, symbol: str, wanted: list[str], strict: bool) -> list[InstrumentId | Unavailable]:
        """Per venue of ``wanted``, in order: the instrument of ``symbol`` there, or why there is
        none (an ``Unavailable``). ``strict``: an unknown venue raises ``UnknownVenueError``.

        Which venues list the symbol is fixed once every recording is known (recorded mode), so the
        plan is then remembered per instrument set (``MarketData.instrument_generation``) and only
        the books are read per question (a compare resolved 12 venues, building an error for each
        venue without the symbol, on every request). Live mode resolves every time."""
        cacheable = self.is_recorded and self.market.discovered()
        generation = self.market.instrument_generation()
        key = (symbol, tuple(wanted), strict)
        hit = self._plans.get(key) if cacheable else None
        if hit is not None and hit[0] == generation:
            return hit[1]
        group = quote_group(symbol)
        steps: list[InstrumentId | Unavailable] = []
        known = set(self.known_venues())
        for venue in wanted:
            if strict and venue not in known:
                await self._check_venue(venue)
            try:
                inst = await self.resolve(symbol, venue)
            except UnknownVenueError:
                if strict:
                    raise
                steps.append(Unavailable(venue=venue, reason=f"no data for {venue}", kind="no_data"))
                continue
            except UnknownSymbolError as exc:
                steps.append(Unavailable(venue=venue, reason=str(exc), kind="no_symbol"))
                continue
            except VenueUnreachableError as exc:
                steps.append(Unavailable(venue=venue, reason=str(exc), kind="unreachable"))
                continue
            except MLMError as exc:
                steps.append(Unavailable(venue=venue, reason=str(exc)))
                continue
            if inst.quote not in group:
                steps.append(
                    Unavailable(
                        venue=venue,
                        reason=f"{venue} has {inst.symbol} only, quoted in {inst.quote}: its prices are "
                        f"not comparable with books quoted in {'/'.join(group)}",
                        kind="other_quote",
                    )
                )
                continue
            steps.append(inst)
        if cacheable:
            if len(self._plans) >= 1024:  # symbols are user input: bound the memo
                self._plans.clear()
            self._plans[key] = (generation, steps)
        return steps

    async def _check_venue(self, venue: str) -> None:
        """Raise ``UnknownVenueError`` for a venue neither the data nor ccxt knows."""
        if self.is_recorded or self.engine is None:
            raise UnknownVenueError(venue, self.venues())
        self.engine.exchange(venue)  # raises UnknownVenueError listing ccxt's venues

    def assets_on_several_venues(self) -> str:
        """``"BTC (6 venues), ETH (5 venues)"``: bases with a USD-quoted book on two or more venues."""
        by_base: dict[str, set[str]] = {}
        for i in self.market.instruments():
            if i.quote in USD_LIKE:
                by_base.setdefault(i.base, set()).add(i.venue)
        ranked = sorted(((b, len(v)) for b, v in by_base.items() if len(v) >= 2), key=lambda x: (-x[1], x[0]))
        return ", ".join(f"{b} ({n} venues)" for b, n in ranked) or "none"

    # ------------------------------------------------------------------ time travel

    async def timeline(self) -> list[dict[str, Any]]:
        """Each recorded book's range for time travel, by venue and symbol: ``venue``, ``symbol``,
        ``market_type``, ``recording``, ``first_ts``/``last_ts`` (ISO 8601 UTC, recording time:
        the first synced book and the recording's last record) and ``first_ts_ns``/``last_ts_ns``.
        Empty on live data (no past books). Loads every recording (from checkpoints when cached)."""
        if not self.is_recorded:
            return []
        ranges = await asyncio.to_thread(self.market.time_ranges)
        return [
            {
                "venue": r.instrument.venue,
                "symbol": r.instrument.symbol,
                "market_type": str(r.instrument.market_type),
                "recording": r.recording,
                "first_ts": iso_ns(r.first_ns),
                "last_ts": iso_ns(r.last_ns),
                "first_ts_ns": r.first_ns,
                "last_ts_ns": r.last_ns,
            }
            for r in ranges
        ]

    # ------------------------------------------------------------------ quality

    def quality(self, inst: InstrumentId) -> dict[str, Any]:
        """The store's quality counters of a held book (recorded/WebSocket, then ccxt.pro, then REST)."""
        for store in (self.market.store, self.pro_store, self.rest_store):
            try:
                return store.quality(store.find(inst.venue, inst.symbol))
            except (UnknownVenueError, UnknownSymbolError):
                continue
        raise UnknownSymbolError(
            inst.symbol, [i.symbol for i in self.loaded() if i.venue == inst.venue], inst.venue
        )

    def source_of(self, inst: InstrumentId) -> BookSource:
        if inst in set(self.market.store.instruments()):
            return BookSource.RECORDING if self.is_recorded else BookSource.WS
        if inst in set(self.pro_store.instruments()):
            return BookSource.CCXT_PRO
        return BookSource.REST

    async def ensure_loaded(self, instruments: Iterable[InstrumentId]) -> None:
        """Replay the recordings of ``instruments`` now (recorded mode; no-op live)."""
        if self.is_recorded:
            for inst in instruments:
                await asyncio.to_thread(self.market.ensure_loaded, inst)

    async def load_all(self, venue: str | None = None) -> None:
        """Replay every recording (of ``venue``) now (recorded mode; no-op live)."""
        if not self.is_recorded:
            return
        if venue is None:
            await asyncio.to_thread(self.market.load_all)
        else:
            for inst in await asyncio.to_thread(self.market.instruments, venue):
                await asyncio.to_thread(self.market.ensure_loaded, inst)
