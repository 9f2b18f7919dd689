"""``Monitor``: the Python API for notebooks and scripts, a synchronous facade over the services.

    from market_liquidity_monitor import Monitor

    with Monitor.from_recordings("../shared/data") as m:
        impact = m.impact("BTC", "buy", size=5)           # services.ImpactAnswer
        print(impact.vwap, impact.slippage_bps)           # USDT per BTC, bps of mid
        m.compare("BTC", "buy", size=5).to_pandas()       # one row per venue

Every method calls the same service method as the chat tools, the REST routes and the CLI
(``services.Services``: ``liquidity``, ``trading``, ``health``, ``alert_answers``) and returns its
typed answer unchanged, so a notebook gets the numbers the app shows. Answers with a table or a
series have ``.to_pandas()`` (``services.tabular``).

The methods are plain (blocking) functions, usable from a script, a REPL or a Jupyter cell alike:
the services run on a private asyncio event loop in a daemon thread owned by the ``Monitor``, and
each call waits for its result there. Jupyter's own running loop is never touched (no
``nest_asyncio``), and the event loop of the caller, if any, is not blocked by anything but the
wait itself. From async code, call the methods from a worker thread
(``await asyncio.to_thread(m.impact, "BTC", "buy", 5)``), or await the service methods of a
``Services`` container built on your own loop.

Errors are the services' own: ``InvalidInputError`` (a bad argument, saying what is valid),
``UnknownVenueError`` / ``UnknownSymbolError``, ``BookNotReadyError``, ``NoHistoryError``,
``InsufficientLiquidityError`` — all subclasses of ``domain.errors.MLMError``.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import InvalidInputError

if TYPE_CHECKING:
    from market_liquidity_monitor.services import (
        BacktestAnswer,
        CompareAnswer,
        HealthAnswer,
        ImpactAnswer,
        MaxSizeAnswer,
        OrderBookAnswer,
        PairsAnswer,
        PriceHistoryAnswer,
        RouteAnswer,
        Services,
    )
    from market_liquidity_monitor.services.alerting import AlertListAnswer, LiquidityAlertsAnswer

__all__ = ["Monitor"]

T = TypeVar("T")


class _LoopThread:
    """An asyncio event loop running forever in a daemon thread; ``run(coro)`` waits for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="mlm-monitor-loop", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Awaitable[T]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("a Monitor method was called from inside its own event loop")
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return fut.result()
        except BaseException:  # KeyboardInterrupt in a notebook: stop the work, not just the wait
            fut.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


class Monitor:
    """Liquidity answers from recorded data (``from_recordings``) or live venues (``live``).

    Build with one of the two constructors; close with ``close()`` or a ``with`` block (closing
    twice is harmless; a closed monitor raises ``RuntimeError``). Units: ``size`` in base units of
    the asset (BTC of ``BTC/USDT``), ``notional`` in quote units (USDT), prices in quote per base,
    costs and slippage in bps of mid unless the field name says ``_quote``. ``symbol`` is an asset
    (``"BTC"``: its default quote, ``BTC/USDT``) or a unified symbol (``"ETH/USDT"``,
    ``"BTC/USDT:USDT"`` for the USD-M perpetual); ``venue`` a ccxt id (``binance``, ``okx``...),
    None for the default venue (``settings.agent.default_venue``)."""

    def __init__(self, settings: Settings, *, persist_alerts: bool = True) -> None:
        """Prefer ``from_recordings`` / ``live``. ``settings``: the full ``config.Settings``;
        ``persist_alerts``: keep alert rules in the history database (else in memory)."""
        from market_liquidity_monitor.services import Services

        self.settings = settings
        self._loop = _LoopThread()

        async def build() -> Services:  # built on its loop: anything it binds belongs there
            return Services.build(settings, persist_alerts=persist_alerts)

        try:
            self._services: Services | None = self._loop.run(build())
        except BaseException:
            self._loop.stop()
            raise
        self._finalizer = weakref.finalize(self, _close, self._services, self._loop)

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_recordings(
        cls,
        path: str | Path,
        *,
        home: str | Path | None = None,
        persist_alerts: bool = False,
        **settings: Any,
    ) -> Monitor:
        """Answer from the recordings under ``path`` (the ``../shared/data`` layout). Books are
        replayed lazily, on the first question about them (seconds per recording), and end at the
        end of their recording; candle files are imported into the history database (``home``:
        where its SQLite file lives, default ``settings.home_dir``) on the first candle question.
        ``settings``: other ``config.Settings`` fields (``venues=("binance", "okx")``...).
        Raises ``InvalidInputError`` when ``path`` is not a directory."""
        p = Path(path).expanduser()
        if not p.is_dir():
            raise InvalidInputError(f"{str(path)!r} is not a directory of recordings (e.g. ../shared/data)")
        if home is not None:
            settings["home_dir"] = Path(home).expanduser()
        return cls(Settings(data_dir=p.resolve(), **settings), persist_alerts=persist_alerts)

    @classmethod
    def live(
        cls, venues: Sequence[str] | None = None, *, persist_alerts: bool = True, **settings: Any
    ) -> Monitor:
        """Answer from the venues' live books and candles over ccxt REST (network needed; no
        WebSocket ingest: that is ``mlm up``). ``venues``: ccxt ids (default ``settings.venues``).
        ``settings``: other ``config.Settings`` fields. Raises ``InvalidInputError`` for an empty
        or non-string venue list."""
        if venues is not None:
            if isinstance(venues, str) or not venues or not all(isinstance(v, str) and v for v in venues):
                raise InvalidInputError(
                    f"venues must be a non-empty list of ccxt ids, e.g. ['binance', 'okx']; got {venues!r}"
                )
            settings["venues"] = tuple(venues)
        return cls(Settings(data_dir=None, **settings), persist_alerts=persist_alerts)

    # ---------------------------------------------------------------- lifecycle

    @property
    def services(self) -> Services:
        """The ``Services`` container behind this monitor (its coroutines run on ``self.run``)."""
        if self._services is None:
            raise RuntimeError("this Monitor is closed")
        return self._services

    @property
    def mode(self) -> str:
        """``"recorded"`` or ``"live"``."""
        return self.services.books.mode

    def run(self, fn: Callable[[Services], Awaitable[T]]) -> T:
        """Run ``fn(services)`` (a coroutine function) on the monitor's loop and return its result:
        any service method the facade does not wrap, e.g.
        ``m.run(lambda s: s.candles.coverage("binance", "BTC/USDT"))``."""
        services = self.services
        return self._loop.run(fn(services))

    def close(self) -> None:
        """Close the services (HTTP sessions, database, cache) and stop the loop thread."""
        if self._services is not None:
            self._services = None
            self._finalizer()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._services is None:
            return "Monitor(closed)"
        where = self.settings.data_dir or ", ".join(self.settings.venues)
        return f"Monitor({self.mode}: {where})"

    # ---------------------------------------------------------------- books

    def book(
        self, symbol: str, venue: str | None = None, *, levels: int = 20, window_bps: float | None = None
    ) -> OrderBookAnswer:
        """Top of book (best bid/ask, mid, spread_bps, microprice), depth and imbalance within each
        configured window (plus ``window_bps``) and the top ``levels`` per side (0..1000; prices
        quote, sizes base) of one book, with its provenance (``.book``: source, book_ts, integrity).
        ``.to_pandas()``: the levels (``table="depth"``: the depth windows).
        ``LiquidityService.order_book``."""
        return self.run(lambda s: s.liquidity.order_book(symbol, venue, window_bps, levels))

    def impact(
        self,
        symbol: str,
        side: str | None = None,
        size: float | None = None,
        notional: float | None = None,
        venue: str | None = None,
    ) -> ImpactAnswer:
        """Market impact of one taker order of ``size`` (base) or ``notional`` (quote) walked
        through the visible book: VWAP, ``slippage_bps`` vs mid, worst price, levels consumed,
        ``fully_filled``. ``side``: ``"buy"`` (default) or ``"sell"``. ``LiquidityService.impact``
        (``analytics.market_impact``)."""
        return self.run(lambda s: s.liquidity.impact(symbol, side, size=size, notional=notional, venue=venue))

    def max_size(
        self, symbol: str, side: str, max_slippage_bps: float, venue: str | None = None
    ) -> MaxSizeAnswer:
        """The largest taker order (``size`` base, ``notional`` quote) whose VWAP slippage vs mid
        stays within ``max_slippage_bps``, and the size resting within that many bps of mid
        (``size_within_price_move``). ``LiquidityService.max_size``."""
        return self.run(lambda s: s.liquidity.max_size(symbol, side, max_slippage_bps, venue))

    def compare(
        self,
        symbol: str,
        side: str | None = None,
        size: float | None = None,
        notional: float | None = None,
        *,
        venues: Sequence[str] | None = None,
        venue: str | None = None,
        window_bps: float | None = None,
        fees_bps: Mapping[str, float] | None = None,
    ) -> CompareAnswer:
        """The same taker order on every venue with a book of the asset (or ``venues``): cost_bps
        incl. the taker fee, VWAP, depth within ``window_bps``, rank, best venue, arbitrage checks;
        venues without a usable book in ``.unavailable`` with the reason. No size: a 10,000-quote
        reference order. ``.to_pandas()``: one row per venue (``table="unavailable"``: the venues
        left out). ``LiquidityService.compare``."""
        return self.run(
            lambda s: s.liquidity.compare(
                symbol,
                side,
                size=size,
                notional=notional,
                venues=venues,
                venue=venue,
                window_bps=window_bps,
                fees_bps=fees_bps,
            )
        )

    def route(
        self,
        symbol: str,
        side: str | None = None,
        size: float | None = None,
        notional: float | None = None,
        *,
        venues: Sequence[str] | None = None,
        exclude_venues: Sequence[str] | None = None,
        fees_bps: Mapping[str, float] | None = None,
    ) -> RouteAnswer:
        """Smart-order-routing simulation (nothing is sent): the split of one taker order across
        the venues' books that minimises its cost incl. fees, against the best single venue,
        pro-rata and equal splits; stale, crossed or unsynced books excluded with the reason.
        ``.to_pandas()``: one row per leg (``"baselines"``, ``"unavailable"``).
        ``LiquidityService.route``."""
        return self.run(
            lambda s: s.liquidity.route(
                symbol,
                side,
                size=size,
                notional=notional,
                venues=venues,
                exclude_venues=exclude_venues,
                fees_bps=fees_bps,
            )
        )

    def health(self, venue: str | None = None, venues: Sequence[str] | None = None) -> HealthAnswer:
        """Integrity of every book held (synced, stale, crossed, gaps, checksums) and each venue's
        REST circuit breaker. ``.to_pandas()``: one row per book. ``HealthService.venue_health``."""
        return self.run(lambda s: s.health.venue_health(venue, list(venues) if venues else None))

    # ---------------------------------------------------------------- candles

    def backtest(
        self,
        symbol: str,
        side: str | None = None,
        size: float | None = None,
        notional: float | None = None,
        lookback_days: float | None = None,
        timeframe: str | None = None,
        venue: str | None = None,
        *,
        schedule: str | None = None,
        at: str | None = None,
        slice_candles: int = 1,
        series: bool = True,
    ) -> BacktestAnswer:
        """One taker order of ``size`` (base) or ``notional`` (quote) over the last
        ``lookback_days`` (default 7) of candles on the asset's book model: ``.order`` (fills, cost
        vs arrival in quote and bps split into market move, impact and fee, P&L marked to the last
        close), ``.result`` (the same size at every candle: the cost curve), ``.model_info`` (how
        the book model was obtained, its validated error). ``schedule``: ``arrival`` (default),
        ``twap`` or ``vwap``; ``at``: an ISO UTC candle time for an arrival order. ``series``
        (default True here): keep the per-candle curve for ``.to_pandas()`` (``"slices"``: the
        order's child orders). ``TradingService.backtest``."""
        return self.run(
            lambda s: s.trading.backtest(
                symbol,
                side,
                size=size,
                notional=notional,
                lookback_days=lookback_days,
                timeframe=timeframe,
                venue=venue,
                schedule=schedule,
                at=at,
                slice_candles=slice_candles,
                series=series,
            )
        )

    def pairs(
        self,
        symbol_a: str,
        symbol_b: str,
        timeframe: str | None = None,
        lookback_days: float | None = None,
        venue: str | None = None,
        size: float | None = None,
        *,
        zscore_window: int = 48,
        corr_window: int = 48,
        series: bool = True,
    ) -> PairsAnswer:
        """Pairs statistics of two assets' closes (default 1h over 30 days): OLS and Huber hedge
        ratios, spread z-score, ADF and Engle-Granger tests, half-life, rolling correlation, and the
        round-trip taker cost of the spread trade on both real books (``size`` base units of a,
        default a 10,000-quote position). ``.to_pandas()``: spread, z-score and return correlation
        by UTC time (``series``, default True here). ``TradingService.pairs``."""
        return self.run(
            lambda s: s.trading.pairs(
                symbol_a,
                symbol_b,
                timeframe,
                lookback_days,
                venue,
                size,
                zscore_window=zscore_window,
                corr_window=corr_window,
                series=series,
            )
        )

    def price_history(
        self,
        symbol: str,
        lookback_days: float | None = None,
        venue: str | None = None,
        timeframe: str | None = None,
    ) -> PriceHistoryAnswer:
        """Return (%), OLS trend of ln(close) per day and annualised realised volatility over the
        last ``lookback_days`` (default 7), with the candle source. ``TradingService.price_history``."""
        return self.run(lambda s: s.trading.price_history(symbol, lookback_days, venue, timeframe))

    # ---------------------------------------------------------------- alerts

    def alerts(self) -> AlertListAnswer:
        """The alert rules (stored in the history database when ``persist_alerts``), each in one
        line with its recent firings. ``AlertAnswers.list``."""

        async def go(s: Services):
            await s.start()
            return await s.alert_answers.list()

        return self.run(go)

    def liquidity_alerts(
        self,
        symbol: str,
        venue: str | None = None,
        *,
        window_bps: float | None = None,
        drop_ratio: float | None = None,
        lookback_days: float | None = None,
    ) -> LiquidityAlertsAnswer:
        """Rule firings, liquidity crunches (depth within ``window_bps`` below ``drop_ratio`` x its
        rolling median) and feed anomalies of the asset's books. ``AlertAnswers.liquidity_alerts``."""

        async def go(s: Services):
            await s.start()
            return await s.alert_answers.liquidity_alerts(
                symbol, venue, window_bps=window_bps, drop_ratio=drop_ratio, lookback_days=lookback_days
            )

        return self.run(go)


def _close(services: Services, loop: _LoopThread) -> None:
    """Close ``services`` on ``loop``, then stop it (the ``Monitor``'s finalizer)."""
    try:
        if not loop.loop.is_closed() and loop.thread.is_alive():
            loop.run(services.close())
    finally:
        loop.stop()
