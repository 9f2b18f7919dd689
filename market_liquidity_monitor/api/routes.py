"""Analytics and history endpoints: compare, execute (simulated routing), backtest, pairs, candles,
trades, export. Thin: resolve instruments, read books/candles, call one analytics function, shape.

Errors: unknown venue/symbol 404 (with the valid ones), bad input 422 (what is wrong, what is valid),
no stored history 404 (what is stored), books not ready 503, execute while the status is not
``live`` 409 (the reasons).
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from market_liquidity_monitor.analytics.backtest import (
    DEFAULT_BOOK_MODEL,
    atr_bps,
    backtest_execution,
    calibrate_book_model,
    downsample_series,
)
from market_liquidity_monitor.analytics.pairs import analyze_pair, pair_series, pair_trade_cost
from market_liquidity_monitor.analytics.routing import route_order, routing_exclusions
from market_liquidity_monitor.analytics.venues import compare_venues, taker_fees_for
from market_liquidity_monitor.api.deps import HistoryDep, MarketDep, SettingsDep, StatusDep
from market_liquidity_monitor.api.schemas import (
    BacktestRequest,
    BacktestResponse,
    CandlesResponse,
    CompareRequest,
    CompareResponse,
    ExecuteRequest,
    ExecuteResponse,
    PairsResponse,
    TradesResponse,
)
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.history_service import HistoryService, default_pair
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.storage.export import export as export_rows
from market_liquidity_monitor.storage.history import NoHistoryError, to_ms
from market_liquidity_monitor.storage.timeframes import timeframe_ms

router = APIRouter(prefix="/api")

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
_ATR_WINDOW = 14
# Candles read before the window so Wilder's ATR (EWM, alpha 1/14) has converged: 0.93^150 < 2e-5.
_ATR_WARMUP = 150


# ------------------------------------------------------------------------------------ helpers


def _books(
    market: MarketData, settings: Settings, symbol: str, venues: list[str] | None
) -> tuple[list[BookView], dict[str, str]]:
    """One synced book of ``symbol`` per venue (default: the configured venues) and, for venues
    that have none, the reason. An unknown venue named explicitly is a 404."""
    wanted = [v.strip().lower() for v in venues] if venues else list(settings.venues)
    if len(set(wanted)) != len(wanted):
        raise InvalidInputError(f"venues must not repeat; got {wanted}")
    views, missing = [], {}
    for venue in wanted:
        try:
            inst = market.resolve(symbol, venue)
            views.append(market.view(inst))
        except UnknownVenueError:
            if venues:
                raise
            missing[venue] = "no data for this venue"
        except (UnknownSymbolError, BookNotReadyError) as exc:
            missing[venue] = str(exc)
    if not views:
        detail = "; ".join(f"{v}: {r}" for v, r in missing.items())
        raise (
            UnknownSymbolError(symbol, [], None)
            if not detail
            else InvalidInputError(f"no venue has a usable book for {symbol!r}: {detail}")
        )
    return views, missing


def _fees(
    body_fees: dict[str, float] | None, views: list[BookView], settings: Settings
) -> tuple[dict[str, float], dict[str, str]]:
    """Taker fee (bps) per venue of ``views`` and where each came from: the request's ``fees_bps``
    first, then ``analytics.taker_fee_bps`` and the published base-tier schedule
    (``analytics.venues.taker_fee``). 422 for a negative or unknown-venue fee in the request."""
    given = {k.strip().lower(): float(v) for k, v in (body_fees or {}).items()}
    used = {v.instrument.venue for v in views}
    unknown = sorted(set(given) - used)
    if unknown:
        raise InvalidInputError(
            f"fees_bps names venues without a book in this request: {unknown}; venues used: {sorted(used)}"
        )
    if any(f < 0 or not math.isfinite(f) for f in given.values()):
        raise InvalidInputError(f"fees_bps must be finite and >= 0 bps; got {given}")
    table = taker_fees_for(views, overrides=settings.analytics.taker_fee_bps)
    fees, sources = {}, {}
    for venue, fee in table.items():
        if venue in given:
            fees[venue], sources[venue] = given[venue], "request fees_bps"
        else:
            fees[venue], sources[venue] = float(fee.fee_bps), fee.source
    return fees, sources


def _iso_ms(ms: int) -> str:
    return iso_ns(int(ms) * 1_000_000)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ------------------------------------------------------------------------------------ compare


@router.post("/compare", response_model=CompareResponse, tags=["analytics"])
def compare(body: CompareRequest, market: MarketDep, settings: SettingsDep) -> dict:
    """The same taker order on each venue's visible book: cost (slippage + fee, bps vs that venue's
    mid), the best venue and why, cross-venue arbitrage checks (only between books whose timestamps
    are within ``analytics.max_book_age_diff_ms``), and liquidity concentration (venue shares of
    depth within ``window_bps``, HHI in [1/N, 1]).

    Errors: 404 unknown venue/symbol; 422 bad amount/window/fees, or no venue has a usable book.
    """
    views, missing = _books(market, settings, body.symbol, body.venues)
    fees, fee_sources = _fees(body.fees_bps, views, settings)
    res = compare_venues(
        views,
        body.side,
        size=body.size,
        notional=body.notional,
        fees_bps=fees,
        window_bps=body.window_bps,
        max_book_age_diff_ms=settings.analytics.max_book_age_diff_ms,
    )
    out = res.model_dump(mode="json")
    out["symbol"] = body.symbol
    out["fee_sources"] = fee_sources
    out["unavailable"] = [{"venue": v, "reason": r} for v, r in missing.items()]
    return out


# ------------------------------------------------------------------------------------ execute


@router.post(
    "/execute",
    response_model=ExecuteResponse,
    tags=["analytics"],
    responses={409: {"description": "The system status is not live (books warming, stale or unsynced)."}},
)
def execute(body: ExecuteRequest, market: MarketDep, settings: SettingsDep, status: StatusDep) -> dict:
    """Smart order routing, **simulation only**: the least-cost split of one taker order across the
    venues' visible books (fee-adjusted greedy walk of the merged book, optimal for a linear taker
    cost), against three baselines (best single venue, pro-rata depth, equal split) with savings
    in bps and quote units.

    Books that are not synced, crossed, stale, behind an open circuit breaker, or more than
    ``analytics.stale_after_ms`` older than the freshest one are excluded and named in
    ``excluded`` with the reason. Refused with 409 while the system is warming (books not synced
    yet) or when no requested venue has a usable book (the reasons say which and why): a routing
    plan on such books is not one to act on. Errors: 404 unknown venue/symbol; 422 bad input.
    """
    st = status()
    if st["status"] == "warming":
        raise HTTPException(
            status_code=409,
            detail={
                "message": "execution simulation needs synced books; the system is still warming up",
                "status": st["status"],
                "reasons": st["reasons"],
            },
        )
    views, missing = _books(market, settings, body.symbol, body.venues)
    open_venues = {b["venue"] for b in st.get("circuit_breakers", []) if str(b.get("state")) != "closed"}
    excluded = routing_exclusions(
        views, max_age_diff_ms=settings.analytics.stale_after_ms, open_venues=open_venues
    )
    used = [v for v in views if v.instrument.venue not in excluded]
    if not used:
        reasons = [f"{v}: {r}" for v, r in {**missing, **excluded}.items()]
        raise HTTPException(
            status_code=409,
            detail={
                "message": f"no venue has a synced, fresh book of {body.symbol} to route across",
                "status": st["status"],
                "reasons": reasons,
            },
        )
    fees, fee_sources = _fees(body.fees_bps, used, settings)
    res = route_order(used, body.side, size=body.size, notional=body.notional, fees_bps=fees)
    out = res.model_dump(mode="json")
    out["excluded"] = {**missing, **excluded, **out["excluded"]}
    out["fee_sources"] = fee_sources
    return {"simulation": True, "symbol": body.symbol, "status": st["status"], **out}


# ------------------------------------------------------------------------------------ backtest


# Points of the per-interval series in a backtest answer (~120 bytes of JSON each).
BACKTEST_MAX_POINTS = 2000


@router.post("/backtest", response_model=BacktestResponse, tags=["analytics"])
async def backtest(
    body: BacktestRequest, market: MarketDep, settings: SettingsDep, history: HistoryDep
) -> dict:
    """Execution backtest: the order of ``size`` base units simulated at every candle of the last
    ``lookback_days`` (ending at the last stored candle) on a book model calibrated from the
    asset's real book (reference volume and ATR from the candle holding the book's timestamp);
    when no real book or no candle covers it, the documented default model (``model_source`` says so).

    Result: slippage statistics in bps (avg/median/min/max, percentiles), high-risk (> 200 bps) and
    optimal (< 50 bps) interval counts, fill price and cost in quote units; ``result.series``: one
    record per interval (``ts`` ISO UTC, ``slippage_bps``, ``fill_price``, ``high_risk``,
    ``optimal``), downsampled to at most ``BACKTEST_MAX_POINTS`` points by keeping the interval of
    maximum slippage of each bucket of consecutive intervals (``result.series_bucket_intervals``
    intervals per point, 1 = every interval); ``result.risk_periods``: the contiguous runs of
    high-risk intervals of the full series (start, end, intervals, max_slippage_bps).
    Errors: 404 no stored candles (lists what is stored); 422 bad input or too few candles.
    """
    venue = (body.venue or settings.agent.default_venue).lower()
    pair = default_pair(body.symbol, settings)
    window = await history.window(venue, pair, body.lookback_days, body.timeframe, extra_candles=_ATR_WARMUP)
    df, tf = await history.candles(window), window.timeframe
    candles = df.set_index("ts")[["open", "high", "low", "close", "volume"]]
    model = await asyncio.to_thread(_book_model, market, history, venue, pair, candles, tf)
    if model is None:
        model = await _model_from_stored(market, history, venue, pair, tf)
    res = backtest_execution(
        candles, model, body.side, size=body.size, lookback=pd.Timedelta(days=body.lookback_days), series=True
    )
    shown = downsample_series(res.series, BACKTEST_MAX_POINTS)
    result = res.model_dump(mode="json", exclude={"series"})
    result["series"] = shown.records()
    result["series_bucket_intervals"] = shown.bucket_intervals
    return {
        "venue": venue,
        "symbol": pair,
        "timeframe": tf,
        "lookback_days": body.lookback_days,
        "result": result,
        "model": model.model_dump(mode="json"),
    }


def _real_view(market: MarketData, venue: str, pair: str) -> BookView | None:
    try:
        return market.view(market.resolve(pair, venue))
    except MLMError:
        return None


def _book_model(market, history, venue, pair, candles: pd.DataFrame, tf: str):
    """Calibrated model when the window's candles cover the book's timestamp, else None."""
    view = _real_view(market, venue, pair)
    if view is None or view.book_ts_ns is None:
        return None
    at = pd.Timestamp(
        view.book_ts_ns // timeframe_ms(tf) // 1_000_000 * timeframe_ms(tf), unit="ms", tz="UTC"
    )
    if at not in candles.index:
        return None
    atr = atr_bps(candles, _ATR_WINDOW)
    vol = float(candles.loc[at, "volume"])
    if vol <= 0 or not np.isfinite(atr.loc[at]):
        return None
    return calibrate_book_model([view], ref_volume=vol, ref_atr_bps=float(atr.loc[at]))


async def _model_from_stored(market, history: HistoryService, venue: str, pair: str, tf: str):
    """Calibrate against the stored candle that holds the real book's time (outside the window)."""
    view = await asyncio.to_thread(_real_view, market, venue, pair)
    if view is None or view.book_ts_ns is None:
        return DEFAULT_BOOK_MODEL
    step = timeframe_ms(tf)
    at_ms = view.book_ts_ns // 1_000_000 // step * step
    h = await history.history()
    try:
        df = await h.candles(pair, venue, tf, at_ms - _ATR_WARMUP * step, at_ms + step)
    except NoHistoryError:
        return DEFAULT_BOOK_MODEL
    c = df.set_index("ts")[["open", "high", "low", "close", "volume"]]
    model = _book_model(market, history, venue, pair, c, tf) if len(c) > _ATR_WINDOW else None
    return model or DEFAULT_BOOK_MODEL


# ------------------------------------------------------------------------------------ pairs


@router.get("/pairs", response_model=PairsResponse, tags=["analytics"])
async def pairs(
    market: MarketDep,
    settings: SettingsDep,
    history: HistoryDep,
    symbol_a: Annotated[str, Query(min_length=1, max_length=40, description="First leg, e.g. BTC/USDT.")],
    symbol_b: Annotated[str, Query(min_length=1, max_length=40, description="Second leg, e.g. ETH/USDT.")],
    timeframe: Annotated[
        Timeframe | None, Query(description="Candle timeframe (default by lookback).")
    ] = None,
    lookback_days: Annotated[float, Query(gt=0, le=3650, description="Window in days.")] = 30.0,
    size: Annotated[
        float | None, Query(gt=0, le=1e9, description="Size of leg a (base units) for the round-trip cost.")
    ] = None,
    venue: Annotated[
        str | None, Query(min_length=1, max_length=40, description="Venue of candles and books.")
    ] = None,
    zscore_window: Annotated[int, Query(ge=2, le=10_000, description="Points in the rolling z-score.")] = 48,
    corr_window: Annotated[
        int, Query(ge=2, le=10_000, description="Points in the rolling correlation.")
    ] = 48,
    max_points: Annotated[int, Query(ge=10, le=20_000, description="Most series points returned.")] = 2000,
) -> dict:
    """Pair statistics of two assets' closes: OLS and Huber hedge ratios of log prices, the spread
    ``log a - beta log b - alpha`` and its rolling z-score, rolling return correlation, ADF on the
    spread, Engle-Granger cointegration, half-life of mean reversion (periods and hours), and with
    ``size`` the round-trip taker cost of trading the spread through both real books.

    Errors: 404 no stored candles; 422 too few overlapping points (the message gives both counts).
    """
    if symbol_a.strip().upper() == symbol_b.strip().upper():
        raise InvalidInputError("symbol_a and symbol_b must be different assets")
    venue = (venue or settings.agent.default_venue).lower()
    pa, pb = default_pair(symbol_a, settings), default_pair(symbol_b, settings)
    window_a = await history.window(venue, pa, lookback_days, timeframe)
    tf = window_a.timeframe
    df_a = await history.candles(window_a)
    df_b = await history.candles(await history.window(venue, pb, lookback_days, tf))
    ca, cb = df_a.set_index("ts")["close"], df_b.set_index("ts")["close"]
    analysis = analyze_pair(ca, cb, zscore_window, corr_window, name_a=pa, name_b=pb)
    ser = pair_series(ca, cb, zscore_window, corr_window).tail(max_points)
    out = {
        "venue": venue,
        "symbol_a": pa,
        "symbol_b": pb,
        "timeframe": tf,
        "lookback_days": lookback_days,
        "analysis": analysis.model_dump(mode="json"),
        "series": {
            "ts": [t.isoformat().replace("+00:00", "Z") for t in ser.index],
            "spread": [_clean(float(x)) for x in ser["spread"]],
            "zscore": [_clean(float(x)) for x in ser["zscore"]],
            "return_corr": [_clean(float(x)) for x in ser["return_corr"]],
        },
        "trade_cost": None,
        "trade_cost_reason": None
        if size is not None
        else "give size (base units of a) for the round-trip cost",
    }
    if size is not None:
        va = await asyncio.to_thread(_real_view, market, venue, pa)
        vb = await asyncio.to_thread(_real_view, market, venue, pb)
        if va is None or vb is None:
            out["trade_cost_reason"] = f"no synced book of {pa if va is None else pb} on {venue}"
        else:
            cost = pair_trade_cost(va, vb, size, analysis.hedge_ratio_ols, spread_std=analysis.spread_std)
            out["trade_cost"] = cost.model_dump(mode="json")
    return out


# ------------------------------------------------------------------------------------ history


@router.get("/history/candles", response_model=CandlesResponse, tags=["history"])
async def history_candles(
    settings: SettingsDep,
    history: HistoryDep,
    symbol: Annotated[str, Query(min_length=1, max_length=40, description="BTC or BTC/USDT.")],
    timeframe: Annotated[
        Timeframe, Query(description="Candle timeframe; resampled from a finer stored one.")
    ] = "1h",
    start: Annotated[
        str | None, Query(max_length=40, description="ISO 8601 UTC or epoch ms; inclusive.")
    ] = None,
    end: Annotated[
        str | None, Query(max_length=40, description="ISO 8601 UTC or epoch ms; exclusive.")
    ] = None,
    venue: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=50_000, description="Most candles returned (the latest).")] = 5000,
) -> dict:
    """Stored OHLCV candles in ``[start, end)``, oldest first (volume in base units). Without
    ``start`` the latest ``limit`` candles. Errors: 404 nothing stored (lists what is); 422 bad time."""
    venue = (venue or settings.agent.default_venue).lower()
    pair = default_pair(symbol, settings)
    s_ms, e_ms = _time(start, "start"), _time(end, "end")
    if s_ms is not None and e_ms is not None and e_ms <= s_ms:
        raise InvalidInputError(f"end ({end}) must be after start ({start})")
    await history.coverage(venue, pair)  # imports the recorded candle files on first use
    h = await history.history()
    df = await h.candles(pair, venue, timeframe, s_ms, e_ms)
    df = df.tail(limit)
    rows = [
        {
            "ts": _iso_ms(r.ts_ms),
            "ts_ms": int(r.ts_ms),
            "open": r.open,
            "high": r.high,
            "low": r.low,
            "close": r.close,
            "volume": r.volume,
        }
        for r in df.itertuples(index=False)
    ]
    return {
        "venue": venue,
        "symbol": pair,
        "timeframe": timeframe,
        "source_timeframe": df.attrs.get("source_timeframe", timeframe),
        "count": len(rows),
        "candles": rows,
    }


def _time(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    v = value.strip()
    try:
        ms = to_ms(int(v)) if v.isdigit() else to_ms(v)
    except InvalidInputError:
        raise InvalidInputError(
            f"{name}={value!r} is not a time: use ISO 8601 (2024-08-08T00:00:00Z) or epoch milliseconds"
        ) from None
    if ms is None or not -62_135_596_800_000 <= ms <= 253_402_300_799_000:
        raise InvalidInputError(f"{name}={value!r} is outside years 1-9999")
    return ms


@router.get("/history/trades", response_model=TradesResponse, tags=["history"])
async def history_trades(
    market: MarketDep,
    settings: SettingsDep,
    history: HistoryDep,
    symbol: Annotated[str, Query(min_length=1, max_length=40, description="BTC/USDT, BTC/USDT:USDT...")],
    venue: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most recent trades returned.")] = 100,
) -> dict:
    """The latest trades of one instrument, newest last: from the book store (live feed or replayed
    recording, last 1000 per instrument), else from storage. Sizes base units, prices quote units.
    Errors: 404 unknown venue/symbol."""
    venue_id = (venue or settings.agent.default_venue).lower()
    inst = await asyncio.to_thread(market.resolve, symbol, venue_id)
    await asyncio.to_thread(market.ensure_loaded, inst)
    try:
        entry = market.store.find(inst.venue, inst.symbol)
        recent = list(entry.trades)[-limit:]
    except (UnknownVenueError, UnknownSymbolError):
        recent = []
    if recent:
        cs = market.store.entry(inst).book.contract_size  # inverse: size is in contracts
        rows = [
            {
                "ts": iso_ns(t.ts_event or t.ts_recv),
                "ts_event_ns": t.ts_event,
                "price": float(t.price),
                "size": float(t.size) * cs / float(t.price) if cs else float(t.size),
                "side": str(t.side),
                "trade_id": str(t.trade_id),
            }
            for t in recent
        ]
        source = "book_store"
    else:
        h = await history.history()
        df = (await h.trades(inst.symbol, inst.venue)).tail(limit)
        rows = [
            {
                "ts": iso_ns(int(r.ts_event_ns)),
                "ts_event_ns": int(r.ts_event_ns),
                "price": float(r.price),
                "size": float(r.size),
                "side": r.side,
                "trade_id": None if r.trade_id is None else str(r.trade_id),
            }
            for r in df.itertuples(index=False)
        ]
        source = "storage"
    return {"venue": inst.venue, "symbol": inst.symbol, "source": source, "count": len(rows), "trades": rows}


# ------------------------------------------------------------------------------------ export


@router.get(
    "/export",
    tags=["history"],
    response_class=FileResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
            "description": "The rows as a CSV or Parquet file (columns in storage/export.py).",
        }
    },
)
async def export_file(
    settings: SettingsDep,
    history: HistoryDep,
    kind: Annotated[Literal["candles", "trades"], Query(description="What to export.")],
    symbol: Annotated[str, Query(min_length=1, max_length=40, description="BTC or BTC/USDT.")],
    timeframe: Annotated[Timeframe | None, Query(description="Candle timeframe (candles only).")] = None,
    format: Annotated[Literal["csv", "parquet"], Query(description="File format.")] = "csv",
    venue: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    start: Annotated[str | None, Query(max_length=40, description="ISO 8601 UTC or epoch ms.")] = None,
    end: Annotated[
        str | None, Query(max_length=40, description="ISO 8601 UTC or epoch ms; exclusive.")
    ] = None,
) -> FileResponse:
    """Stored candles or trades as a file (streamed from storage in chunks). Candle columns: venue,
    symbol, timeframe, ts, ts_ms, open, high, low, close, volume; trade columns: venue, symbol,
    trade_id, ts, ts_event_ns, ts_recv_ns, price, size, side. Errors: 404 nothing stored; 422 bad time."""
    venue = (venue or settings.agent.default_venue).lower()
    pair = default_pair(symbol, settings)
    s_ms, e_ms = _time(start, "start"), _time(end, "end")
    cov = await history.coverage(venue, pair)
    if kind == "candles":
        stored = [c for c in cov if timeframe is None or c["timeframe"] == timeframe]
        if not stored:
            raise NoHistoryError(
                f"No {timeframe or ''} candles stored for {pair} on {venue}.".replace("  ", " "), cov
            )
    h = await history.history()
    tmp = Path(tempfile.mkdtemp(prefix="mlm-export-"))
    name = f"{kind}_{venue}_{pair.replace('/', '-').replace(':', '_')}{'_' + timeframe if timeframe else ''}.{format}"
    path = tmp / name
    res = await export_rows(
        h.db, kind, path, fmt=format, venue=venue, symbol=pair, timeframe=timeframe, start=s_ms, end=e_ms
    )

    def cleanup() -> None:
        path.unlink(missing_ok=True)
        tmp.rmdir()

    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return FileResponse(
        path,
        media_type=media,
        filename=name,
        headers={"X-Row-Count": str(res.rows)},
        background=BackgroundTask(cleanup),
    )
