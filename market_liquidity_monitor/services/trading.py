"""TradingService: answers over candle history — execution backtests, pairs statistics and price
history — computed once for every interface.

Candles come from ``CandleService`` (storage first; live, the missing span through ccxt), books
from ``BookService``, fees from ``FeeService``; the statistics are pure ``analytics`` functions run
in a worker thread (statsmodels/pandas work never blocks the event loop). Every answer names its
candle source (``CandleSource``) and, where books are used, their provenance.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import timedelta
from typing import Any

from pydantic import Field

from market_liquidity_monitor import analytics
from market_liquidity_monitor.analytics import backtest as bt
from market_liquidity_monitor.analytics import pairs as pairs_mod
from market_liquidity_monitor.analytics.backtest import BacktestResult, OrderBacktest
from market_liquidity_monitor.analytics.calibration import DepthModel, ModelValidation, conditions_at
from market_liquidity_monitor.analytics.liquidity import Result
from market_liquidity_monitor.analytics.pairs import PairAnalysis, PairTradeCost
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import (
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
)
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.lazy import lazy_module
from market_liquidity_monitor.services.books import BookProvenance, BookService
from market_liquidity_monitor.services.candles import CandleService, CandleSource, default_pair
from market_liquidity_monitor.services.fees import FeeService, FeeUnknownError
from market_liquidity_monitor.services.liquidity import check_amount, parse_side
from market_liquidity_monitor.services.tabular import Tabular
from market_liquidity_monitor.storage.history import (
    InsufficientHistoryError,
    realised_volatility_of,
    trend_of_candles,
    volatility_of_candles,
)
from market_liquidity_monitor.storage.timeframes import timeframe_ms

pd = lazy_module("pandas")  # imported on first use: a book question never needs it

log = logging.getLogger(__name__)

__all__ = [
    "BACKTEST_DEFAULT_LOOKBACK_DAYS",
    "PAIRS_DEFAULT_LOOKBACK_DAYS",
    "PAIRS_DEFAULT_TIMEFRAME",
    "PAIR_REFERENCE_NOTIONAL_QUOTE",
    "BacktestAnswer",
    "BookModelInfo",
    "PairsAnswer",
    "PriceHistoryAnswer",
    "TradingService",
    "check_lookback",
]

#: Execution backtests look back this many days when the question names no window.
BACKTEST_DEFAULT_LOOKBACK_DAYS = 7.0
#: Pairs statistics look back this many days when the question names no window.
PAIRS_DEFAULT_LOOKBACK_DAYS = 30.0
#: Candle timeframe for pairs statistics when the question names none.
PAIRS_DEFAULT_TIMEFRAME = "1h"
#: Pair-trade cost is shown for a reference position of this many quote units of leg a when the
#: question names no size.
PAIR_REFERENCE_NOTIONAL_QUOTE = 10_000.0
#: Price history looks back this many days when the question names no window.
HISTORY_DEFAULT_LOOKBACK_DAYS = 7.0
#: Most series points a backtest or pairs answer returns (downsampled beyond).
MAX_SERIES_POINTS = 2000
_ATR_WINDOW = 14
# Candles read before the window so Wilder's ATR (EWM, alpha 1/14) has converged: 0.93^150 < 2e-5.
_ATR_WARMUP = 150


def check_lookback(days: float | None, default: float) -> float:
    """``days`` (or ``default``) as a float in (0, 3650]; ``InvalidInputError`` otherwise."""
    value = default if days is None else days
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value <= 3650):
        raise InvalidInputError(f"lookback_days must be a number in (0, 3650], got {days!r}")
    return float(value)


def _same_asset(a: str, b: str) -> bool:
    return a.split("/")[0] == b.split("/")[0]


# ----------------------------------------------------------------------------- answers


class BookModelInfo(Result):
    """How the backtest's book model was obtained and how far it is from real books: ``calibrated``
    on the asset's own recorded books, or scaled from another asset's (``scaled_from``); ``error``:
    the validated error that applies to this use (out of sample, or the cross-asset scaling error)."""

    calibrated: bool
    note: str
    calibrated_on: str
    scaled_from: str | None = None
    n_books: int
    books_start: str | None = None
    books_end: str | None = None
    error: ModelValidation | None = None


class BacktestResultSeries(BacktestResult):
    """``BacktestResult`` whose per-interval series is one record per point (``ts`` ISO UTC,
    ``slippage_bps``, ``fill_price``, ``high_risk``, ``optimal``), at most ``MAX_SERIES_POINTS``
    (the interval of maximum slippage of each bucket of ``series_bucket_intervals`` intervals)."""

    series: list[dict[str, Any]] | None = None  # type: ignore[assignment]
    series_bucket_intervals: int | None = None


class BacktestAnswer(Tabular, Result):
    """What one order would have done over the last ``lookback_days`` (``order``,
    ``analytics.backtest.backtest_order``: fills on the modelled book, cost vs the arrival price
    split into market move, impact and fee, P&L marked to the window's last close, the model's
    validated error) and, as context, the same size as a separate order at every candle
    (``result``: the cost curve; its per-interval ``series`` when asked). ``candles`` says where the
    candles came from, ``model_info`` how the book model was obtained."""

    venue: str
    symbol: str
    timeframe: str
    lookback_days: float
    candles: CandleSource
    order: OrderBacktest
    result: BacktestResultSeries
    model: DepthModel
    model_info: BookModelInfo
    realised_vol_period_pct: float | None
    realised_vol_annualised_pct: float | None
    realised_vol_returns: int


class PairSeries(Result):
    """Columnar series of a pair (last ``max_points`` points): ``ts`` ISO UTC, ``spread`` (log
    units), ``zscore``, ``return_corr`` (None where undefined)."""

    ts: list[str]
    spread: list[float | None]
    zscore: list[float | None]
    return_corr: list[float | None]


class PairsAnswer(Tabular, Result):
    """Pairs statistics (``analytics.pairs.analyze_pair``) of two assets' closes, their candle
    sources, and the round-trip taker cost of the spread trade on both real books with each leg's
    taker fee (``trade_cost``; None with ``trade_cost_reason`` when it cannot be computed)."""

    venue: str
    symbol_a: str
    symbol_b: str
    timeframe: str
    lookback_days: float
    candles: list[CandleSource]
    analysis: PairAnalysis
    series: PairSeries | None = None
    trade_cost: PairTradeCost | None = None
    trade_cost_reason: str | None = None
    trade_cost_books: list[BookProvenance] = Field(default_factory=list)
    trade_cost_fee_sources: dict[str, str] = Field(default_factory=dict)
    size_a_defaulted: bool = False
    reference_notional_quote: float | None = None


class PriceHistoryAnswer(Result):
    """Trend and realised volatility of one asset over a window (``storage.history`` formulas)."""

    venue: str
    symbol: str
    timeframe: str
    lookback_days: float
    window_start: str
    window_end: str
    candles: CandleSource
    volatility: dict[str, Any]
    trend: dict[str, Any]


# ----------------------------------------------------------------------------- service


class TradingService:
    """Backtests, pairs and price history (module docstring)."""

    def __init__(self, settings: Settings, books: BookService, fees: FeeService, candles: CandleService):
        self.settings = settings
        self.books = books
        self.fees = fees
        self.candles = candles
        self._model_set = None
        self._model_lock = asyncio.Lock()

    def _venue(self, venue: str | None) -> str:
        return self.books.canonical(venue or self.settings.agent.default_venue)

    # ---------------------------------------------------------------- price history

    async def price_history(
        self,
        symbol: str,
        lookback_days: float | None = None,
        venue: str | None = None,
        timeframe: str | None = None,
    ) -> PriceHistoryAnswer:
        """Return %, OLS slope of ln(close) per day and annualised realised volatility over the last
        ``lookback_days`` (default 7). Raises ``NoHistoryError``, ``InsufficientHistoryError``,
        ``InvalidInputError``."""
        days = check_lookback(lookback_days, HISTORY_DEFAULT_LOOKBACK_DAYS)
        venue = self._venue(venue)
        pair = default_pair(symbol, self.settings)
        c = await self.candles.load(venue, pair, days, timeframe)
        df = c.frame.reset_index()
        df.attrs.update(c.frame.attrs)
        vol, trend = await asyncio.to_thread(lambda: (volatility_of_candles(df), trend_of_candles(df)))
        return PriceHistoryAnswer(
            venue=venue,
            symbol=pair,
            timeframe=c.window.timeframe,
            lookback_days=days,
            window_start=iso_ns(vol.start_ms * 1_000_000),
            window_end=iso_ns(vol.end_ms * 1_000_000),
            candles=c.source,
            volatility=vol.to_dict(),
            trend=trend.to_dict(),
        )

    # ---------------------------------------------------------------- backtest

    async def backtest(
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
        series: bool = False,
        max_points: int = MAX_SERIES_POINTS,
    ) -> BacktestAnswer:
        """One taker order of ``size`` (base) or ``notional`` (quote) over the last ``lookback_days``
        (default 7) of candles (``analytics.backtest.backtest_order``): sent at once at the window's
        start (``schedule`` ``arrival``, the default; ``at`` another candle time) or spread over the
        window (``twap``: equal slices every ``slice_candles`` candles; ``vwap``: slices in
        proportion to each candle's volume), on the book model of the asset (calibrated on its
        recorded books, else scaled from a calibrated asset, with the validated error that applies),
        with the venue's taker fee (``FeeService``, source named). ``series``: add the per-interval
        cost curve (at most ``max_points``). Raises ``NoHistoryError``, ``InvalidInputError``."""
        side_e, _ = parse_side(side)
        check_amount(size, notional)
        days = check_lookback(lookback_days, BACKTEST_DEFAULT_LOOKBACK_DAYS)
        venue = self._venue(venue)
        pair = default_pair(symbol, self.settings)
        sched = (schedule or "arrival").strip().lower()
        w = await self.candles.window(venue, pair, days, timeframe, latest_capture=True)
        step_s = timeframe_ms(w.timeframe) / 1000
        # trailing 24 h of candles before the window (the model's market conditions) and the ATR warm-up
        warmup = math.ceil(86_400 / step_s) + _ATR_WARMUP
        c = await self.candles.load(venue, pair, days, w.timeframe, extra_candles=warmup, latest_capture=True)
        frame = c.frame[["open", "high", "low", "close", "volume"]]
        tf = c.window.timeframe
        fee = await self.fees.taker_fee(InstrumentId(venue, pair))
        model = await self._model_for(venue, pair, frame, days)

        def run():
            order = bt.backtest_order(
                frame,
                model,
                side_e,
                size=size,
                notional=notional,
                fee_bps=fee.fee_bps,
                fee_source=fee.source,
                schedule=sched,
                at=at,
                slice_candles=slice_candles,
                lookback=timedelta(days=days),
                symbol=pair,
                atr_window=_ATR_WINDOW,
            )
            curve = order.cost_curve
            shown = (
                bt.downsample_series(curve.series, max_points)
                if series and curve.series is not None
                else None
            )
            result = BacktestResultSeries(
                **curve.model_dump(exclude={"series"}),
                series=shown.records() if shown is not None else None,
                series_bucket_intervals=shown.bucket_intervals if shown is not None else None,
            )
            order = order.model_copy(update={"cost_curve": curve.model_copy(update={"series": None})})
            window = frame[frame.index >= pd.Timestamp(order.start)]
            try:
                vp, va, n = realised_volatility_of(window["close"].to_numpy(), tf)
                vol = (vp * 100, va * 100, n)
            except (InsufficientHistoryError, InvalidInputError):
                vol = (None, None, 0)
            return order, result, vol

        order, result, (vol_p, vol_a, n_ret) = await asyncio.to_thread(run)
        return BacktestAnswer(
            venue=venue,
            symbol=pair,
            timeframe=tf,
            lookback_days=days,
            candles=c.source,
            order=order,
            result=result,
            model=model,
            model_info=BookModelInfo(
                calibrated=model.scaled_from is None,
                note=model.model_source,
                calibrated_on=model.calibrated_on,
                scaled_from=model.scaled_from,
                n_books=model.n_books,
                books_start=model.books_start,
                books_end=model.books_end,
                error=model.error,
            ),
            realised_vol_period_pct=vol_p,
            realised_vol_annualised_pct=vol_a,
            realised_vol_returns=n_ret,
        )

    async def _model_for(self, venue: str, pair: str, frame: pd.DataFrame, days: float) -> DepthModel:
        """The book model of ``pair``: on recorded data, the model set calibrated on the recorded
        books (``ingest.book_samples.recorded_model_set``, built once per process: the asset's own
        model, or the nearest calibrated asset scaled, with its validated error); otherwise the
        frozen recorded reference model (``analytics.backtest.DEFAULT_BOOK_MODEL``, calibrated on
        the Binance ETH/USDT books, with its validated scaling error)."""
        if self.settings.data_dir is not None and venue == "binance":
            ms = await self._recorded_models()
            if ms is not None and ms.models:
                start = frame.index[-1] - pd.Timedelta(days=days)
                try:
                    conditions = conditions_at(frame, start)
                except InvalidInputError:
                    conditions = None
                try:
                    return ms.model_for(pair, conditions)
                except InvalidInputError:
                    pass
        return bt.DEFAULT_BOOK_MODEL

    async def _recorded_models(self):
        if self._model_set is None:
            async with self._model_lock:
                if self._model_set is None:
                    from market_liquidity_monitor.ingest.book_samples import recorded_model_set

                    try:
                        self._model_set = await asyncio.to_thread(recorded_model_set, self.settings.data_dir)
                    except Exception as exc:  # no spot recordings, or broken ones: fall back to the reference
                        log.warning("no book models from the recordings (%s); using the reference model", exc)
                        self._model_set = False
        return self._model_set or None

    # ---------------------------------------------------------------- pairs

    async def pairs(
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
        series: bool = False,
        max_points: int = MAX_SERIES_POINTS,
    ) -> PairsAnswer:
        """Hedge ratios (OLS, Huber), spread z-score, ADF, Engle-Granger, rolling correlation and
        half-life of two assets over the last ``lookback_days`` (default 30) of ``timeframe``
        (default 1h) closes ending at their last common candle; plus the round-trip taker cost of
        the spread trade (``size`` base units of a, default a 10,000-quote position) on both real
        books with each leg's taker fee. Raises ``InvalidInputError`` (same asset twice, bad
        arguments, too few points), ``NoHistoryError``."""
        check_amount(size, None, required=False)
        days = check_lookback(lookback_days, PAIRS_DEFAULT_LOOKBACK_DAYS)
        venue = self._venue(venue)
        pa, pb = default_pair(symbol_a, self.settings), default_pair(symbol_b, self.settings)
        if _same_asset(pa, pb):
            raise InvalidInputError(
                f"a pair needs two different assets; {symbol_a!r} and {symbol_b!r} are both {pa.split('/')[0]}"
            )
        tf = timeframe or PAIRS_DEFAULT_TIMEFRAME
        for name, w in (("zscore_window", zscore_window), ("corr_window", corr_window)):
            if isinstance(w, bool) or not isinstance(w, int) or not 2 <= w <= 10_000:
                raise InvalidInputError(f"{name} must be an integer in [2, 10000], got {w!r}")
        wa = await self.candles.window(venue, pa, days, tf, latest_capture=True)
        wb = await self.candles.window(venue, pb, days, tf, latest_capture=True)
        last = min(wa.last_ts_ms, wb.last_ts_ms)
        ca_ = await self.candles.candles(wa.ending_at(last))
        cb_ = await self.candles.candles(wb.ending_at(last))
        end = pd.Timestamp(last, unit="ms", tz="UTC")
        start = end - pd.Timedelta(days=days)
        fa, fb = ca_.frame, cb_.frame
        ca = fa["close"][(fa.index > start) & (fa.index <= end)]
        cb = fb["close"][(fb.index > start) & (fb.index <= end)]

        def run():
            stats = pairs_mod.analyze_pair(ca, cb, zscore_window, corr_window, name_a=pa, name_b=pb)
            ser = None
            if series:
                s = pairs_mod.pair_series(ca, cb, zscore_window, corr_window).tail(max_points)
                ser = PairSeries(
                    ts=[t.isoformat().replace("+00:00", "Z") for t in s.index],
                    spread=[_clean(x) for x in s["spread"]],
                    zscore=[_clean(x) for x in s["zscore"]],
                    return_corr=[_clean(x) for x in s["return_corr"]],
                )
            return stats, ser

        try:
            stats, ser = await asyncio.to_thread(run)
        except InsufficientHistoryError as exc:
            raise InvalidInputError(f"{pa} vs {pb} ({tf}, last {days:g} days): {exc}") from exc
        cost = await self._pair_cost(pa, pb, venue, stats, size)
        return PairsAnswer(
            venue=venue,
            symbol_a=pa,
            symbol_b=pb,
            timeframe=tf,
            lookback_days=days,
            candles=[ca_.source, cb_.source],
            analysis=stats,
            series=ser,
            **cost,
        )

    async def _pair_cost(self, pa: str, pb: str, venue: str, stats: PairAnalysis, size: float | None) -> dict:
        books = []
        for pair in (pa, pb):
            try:
                inst = await self.books.resolve(pair, venue)
                if inst.symbol != pair:
                    raise UnknownSymbolError(pair, [], venue)
                books.append(await self.books.book(inst))
            except MLMError:
                return {"trade_cost_reason": f"no usable order book of {pair} on {venue} for the trade cost"}
        ba, bb = books
        try:
            fee_a = await self.fees.taker_fee(ba.instrument)
            fee_b = await self.fees.taker_fee(bb.instrument)
        except FeeUnknownError as exc:
            return {"trade_cost_reason": str(exc)}
        mid_a = float(analytics.top_of_book(ba.view).mid_price)
        size_a = size if size is not None else PAIR_REFERENCE_NOTIONAL_QUOTE / mid_a
        z = stats.zscore_last
        direction = "short_spread" if (z is not None and z > 0) else "long_spread"
        try:
            cost = pairs_mod.pair_trade_cost(
                ba.view,
                bb.view,
                size_a,
                stats.hedge_ratio_ols,
                direction=direction,
                fees_bps_a=fee_a.fee_bps,
                fees_bps_b=fee_b.fee_bps,
                spread_std=stats.spread_std,
            )
        except MLMError as exc:
            return {"trade_cost_reason": str(exc)}
        return {
            "trade_cost": cost,
            "trade_cost_books": [ba.provenance, bb.provenance],
            "trade_cost_fee_sources": {pa: fee_a.source, pb: fee_b.source},
            "size_a_defaulted": size is None,
            "reference_notional_quote": PAIR_REFERENCE_NOTIONAL_QUOTE if size is None else None,
        }


def _clean(x: Any) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x
