"""The service layer: the one way every interface reaches books, fees, candles, answers, alerts and
health (../shared/DESIGN.md "The service layer"; docs/architecture.md).

Chat tools (``agent/``), REST routes and the WebSocket stream (``api/``), the CLI (``mlm ask``,
``mlm watch``, ``mlm up``), the MCP server and the Python API are thin adapters over a
``Services`` container built once per process by ``Services.build(settings)``:

- ``books`` (``BookService``): recorded / WebSocket / REST books, source-labelled;
- ``fees`` (``FeeService``): taker fees with their source;
- ``candles`` (``CandleService``): candle windows from storage, fetched through ccxt when missing;
- ``liquidity`` (``LiquidityService``): order book, impact, max size, compare, route;
- ``trading`` (``TradingService``): backtest, pairs, price history;
- ``alerts`` (``AlertService``): rules, events, crunches;
- ``health`` (``HealthService``): book integrity and circuit breakers;
- ``history`` (``HistoryService``): the liquidity history written while ingest runs, and its answers.

They return typed answers (pydantic models with units in their field names) that every interface
passes on unchanged, so the same question gets the same numbers everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.services.books import Book, BookProvenance, BookService, BookSource, Unavailable
from market_liquidity_monitor.services.candles import CandleService, CandleSource, default_pair
from market_liquidity_monitor.services.fees import FeeService, FeeUnknownError
from market_liquidity_monitor.services.health import HealthAnswer, HealthService
from market_liquidity_monitor.services.history import HistoryService, LiquidityHistoryAnswer
from market_liquidity_monitor.services.liquidity import (
    CompareAnswer,
    ImpactAnswer,
    LiquidityService,
    MaxSizeAnswer,
    OrderBookAnswer,
    RouteAnswer,
)
from market_liquidity_monitor.services.trading import (
    BacktestAnswer,
    PairsAnswer,
    PriceHistoryAnswer,
    TradingService,
)

if TYPE_CHECKING:
    from market_liquidity_monitor.alerts_service import AlertService
    from market_liquidity_monitor.market_data import MarketData

log = logging.getLogger(__name__)

__all__ = [
    "BacktestAnswer",
    "Book",
    "BookProvenance",
    "BookService",
    "BookSource",
    "CandleService",
    "CandleSource",
    "CompareAnswer",
    "FeeService",
    "FeeUnknownError",
    "HealthAnswer",
    "HealthService",
    "HistoryService",
    "ImpactAnswer",
    "LiquidityHistoryAnswer",
    "LiquidityService",
    "MaxSizeAnswer",
    "OrderBookAnswer",
    "PairsAnswer",
    "PriceHistoryAnswer",
    "RouteAnswer",
    "Services",
    "TradingService",
    "Unavailable",
    "build_market",
    "default_pair",
]


def build_market(settings: Settings) -> MarketData:
    """The recorded or live book store: every recording of ``settings.data_dir``, or an empty store
    that live ingest fills."""
    from market_liquidity_monitor.market_data import MarketData

    if settings.data_dir is not None:
        return MarketData.from_recordings(settings, settings.data_dir)
    return MarketData(settings)


@dataclass
class Services:
    """Every long-lived object of a process, built once (``Services.build``), started
    (``await start()``: stored alert rules loaded) and closed (``await close()``) together."""

    settings: Settings
    market: MarketData
    cache: Any
    engine: Any
    books: BookService
    fees: FeeService
    candles: CandleService
    liquidity: LiquidityService
    trading: TradingService
    health: HealthService
    history: HistoryService | None = None
    persist_alerts: bool = True
    defer_storage: bool = False
    alerts: AlertService | None = None
    alert_answers: Any = None
    _assistant: Any = field(default=None, repr=False)
    _started: bool = field(default=False, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        market: MarketData | None = None,
        *,
        engine: Any = None,
        cache: Any = None,
        persist_alerts: bool = True,
        defer_storage: bool = False,
    ) -> Services:
        """Build the container. ``market``: an already built book store (tests, ``mlm up``);
        ``engine``/``cache``: an existing ccxt ``DataEngine`` / cache (tests point them at loopback
        servers); ``persist_alerts``: keep alert rules in the history database (else in memory);
        ``defer_storage``: on recorded data, ``start()`` opens no database (``start``)."""
        from market_liquidity_monitor.data_engine.cache import build_cache
        from market_liquidity_monitor.data_engine.engine import DataEngine

        market = market or build_market(settings)
        cache = (
            cache if cache is not None else (engine.cache if engine is not None else build_cache(settings))
        )
        engine = engine if engine is not None else DataEngine(settings, cache)
        from market_liquidity_monitor.data_engine.pro import ProBookWatcher

        books = BookService(settings, market, engine, ProBookWatcher(settings, engine))
        fees = FeeService(settings, engine)
        candles = CandleService(settings, engine)
        return cls(
            settings=settings,
            market=market,
            cache=cache,
            engine=engine,
            books=books,
            fees=fees,
            candles=candles,
            liquidity=LiquidityService(settings, books, fees, engine),
            trading=TradingService(settings, books, fees, candles),
            health=HealthService(settings, books, engine),
            history=HistoryService(settings, market, candles),
            persist_alerts=persist_alerts,
            defer_storage=defer_storage,
        )

    async def start(self, *, watch_symbols: tuple[str, ...] = ()) -> None:
        """Build the alert service and load its stored rules (idempotent). Raises the storage error
        when the database is unreachable: the service is then built and loads its rules on first use.

        With ``defer_storage`` on recorded data (``mlm ask``: one question, then exit) nothing is
        opened here: the alert rules load with the first rule operation (or observation by
        ``AlertAnswers``) and the history database connects on first use
        (``HistoryService.bind_loop``), so an answer from restored checkpoints whose history rows
        are vouched for never imports SQLAlchemy nor opens the database."""
        if self._started:
            return
        from market_liquidity_monitor.alerts_service import AlertService

        candles = self.candles

        async def database():  # connected (and migrated) on use: a database down at start is retried
            return (await candles.history()).db

        from market_liquidity_monitor.services.alerting import AlertAnswers

        db = database if self.persist_alerts else None
        self.alerts = AlertService(self.market, db=db, settings=self.settings, watch_symbols=watch_symbols)
        self.alert_answers = AlertAnswers(self.alerts, self.books, self.history)
        self._started = True  # the service exists; its stored rules load now or on first use
        if self.defer_storage and self.market.is_recorded:
            if self.history is not None:
                self.history.bind_loop()
            return
        if self.history is not None:
            try:  # the liquidity history's writer runs while this process replays or ingests
                await self.history.start()
            except Exception as exc:
                log.warning("liquidity history: storage not available (%s); rows are buffered", exc)
        await self.alerts.start()

    @property
    def assistant(self) -> Any:
        """The assistant over these services (built on first use from ``settings.agent``)."""
        if self._assistant is None:
            from market_liquidity_monitor.agent.assistant import Assistant

            self._assistant = Assistant(self.settings, self)
        return self._assistant

    async def close(self) -> None:
        """Flush the liquidity history, close the ccxt.pro watches, the data engine's HTTP sessions,
        the history database and the cache (idempotent)."""
        if self.history is not None:
            try:
                await self.history.close()
            except Exception:  # storage down at shutdown: the writer counted what it dropped
                log.exception("closing the liquidity history failed")
        if self.books.pro is not None:
            await self.books.pro.close()
        await self.engine.close()
        await self.candles.close()
        close = getattr(self.cache, "close", None)
        if close is not None:
            await close()
