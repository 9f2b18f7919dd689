"""Analytics and history endpoints: compare, execute (simulated routing), backtest, pairs, candles,
trades, export. Thin adapters over the service layer (``services``): every answer is the same
typed answer the assistant's tools, the CLI and the MCP server return.

Errors: unknown venue/symbol 404 (with the valid ones), bad input 422 (what is wrong, what is valid),
no stored history 404 (what is stored), books not ready 503, execute while warming or with no usable
book 409 (the reasons).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from market_liquidity_monitor.api.deps import ServicesDep, SettingsDep, StatusDep
from market_liquidity_monitor.api.schemas import (
    BacktestRequest,
    CandlesResponse,
    CompareRequest,
    ExecuteRequest,
    TradesResponse,
)
from market_liquidity_monitor.domain.errors import InvalidInputError, UnknownSymbolError, UnknownVenueError
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.services import (
    BacktestAnswer,
    CompareAnswer,
    PairsAnswer,
    RouteAnswer,
    default_pair,
)
from market_liquidity_monitor.services.history import LiquidityHistoryAnswer
from market_liquidity_monitor.services.liquidity import NoUsableBookError
from market_liquidity_monitor.storage.export import export_chunks
from market_liquidity_monitor.storage.history import NoHistoryError, to_ms

router = APIRouter(prefix="/api")

#: ``as_of`` query parameter of the book endpoints (time travel on recorded data).
AsOfQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        description="Answer on the books as they were at this instant of the recording: ISO 8601 UTC "
        "(2024-08-08T23:58:30Z; no offset = UTC). Default: the latest books. Ranges: GET /api/timeline.",
    ),
]

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]


def _iso_ms(ms: int) -> str:
    return iso_ns(int(ms) * 1_000_000)


class _JsonBodies:
    """JSON bodies of answers, encoded once per answer object.

    ``LiquidityService`` returns the very same answer object while the books it read are unchanged
    (``services.liquidity._AnswerMemo``), so a dashboard polling a recorded book gets the same bytes
    without encoding 20 levels again. Encoded as FastAPI encodes a ``response_model`` (pydantic's
    JSON mode, by alias; non-finite floats as null); the route keeps ``response_model`` for its
    OpenAPI schema. The entry holds the answer, so its identity cannot be reused while remembered;
    FIFO beyond ``capacity``."""

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self._entries: dict[int, tuple[BaseModel, bytes]] = {}

    def response(self, answer: BaseModel) -> Response:
        hit = self._entries.get(id(answer))
        if hit is not None and hit[0] is answer:
            return Response(hit[1], media_type="application/json")
        body = answer.model_dump_json(by_alias=True).encode()
        if len(self._entries) >= self.capacity:
            del self._entries[next(iter(self._entries))]
        self._entries[id(answer)] = (answer, body)
        return Response(body, media_type="application/json")


#: ``answer_response(answer)``: the JSON response of a service answer (``_JsonBodies``).
answer_response = _JsonBodies().response


# ------------------------------------------------------------------------------------ compare


@router.post("/compare", response_model=CompareAnswer, tags=["analytics"])
async def compare(body: CompareRequest, services: ServicesDep, as_of: AsOfQuery = None) -> Response:
    """The same taker order on each venue's visible book: cost (slippage + taker fee, bps vs that
    venue's mid; each fee's source named), the best venue and why, cross-venue arbitrage checks
    (only between books whose timestamps are within ``analytics.max_book_age_diff_ms``), and
    liquidity concentration (venue shares of depth within ``window_bps``, HHI in [1/N, 1]). Each
    row carries its book's source (recording / ws / rest), time and quality. ``as_of``: every book
    at that instant of the recording (venues with no recorded book then are ``unavailable``).

    Errors: 404 unknown venue/symbol; 422 bad amount/window/fees/as_of, or no venue has a usable book.
    """
    answer = await services.liquidity.compare(
        body.symbol,
        body.side,
        size=body.size,
        notional=body.notional,
        venues=body.venues,
        window_bps=body.window_bps,
        fees_bps=body.fees_bps,
        as_of=as_of,
    )
    return answer_response(answer)


# ------------------------------------------------------------------------------------ timeline


@router.get("/timeline", tags=["analytics"])
async def timeline(services: ServicesDep) -> dict:
    """The instants each recorded book can be asked ``as_of`` (time sliders): ``mode``
    (``recorded``/``live``), ``time`` (``"book time, UTC"``: recording receive time) and
    ``books``: per book ``venue``, ``symbol``, ``market_type``, ``recording``, ``first_ts``/
    ``last_ts`` (ISO 8601 UTC; first synced book and last record) and the same in ns. Live data:
    ``books`` is empty (no past books kept)."""
    return {"mode": services.books.mode, "time": "book time, UTC", "books": await services.books.timeline()}


# ------------------------------------------------------------------------------------ execute


@router.post(
    "/execute",
    response_model=RouteAnswer,
    tags=["analytics"],
    responses={409: {"description": "Warming up, or no requested venue has a usable book (reasons given)."}},
)
async def execute(
    body: ExecuteRequest, services: ServicesDep, status: StatusDep, as_of: AsOfQuery = None
) -> RouteAnswer:
    """Smart order routing, **simulation only**: the least-cost split of one taker order across the
    venues' visible books (fee-adjusted greedy walk of the merged book, optimal for a linear taker
    cost), against three baselines (best single venue, pro-rata depth, equal split) with savings
    in bps and quote units.

    Books that are not synced, crossed, stale, behind an open circuit breaker, or more than
    ``analytics.stale_after_ms`` older than the freshest one are excluded and named in
    ``excluded`` with the reason. Refused with 409 while the system is warming (books not synced
    yet) or when no requested venue has a usable book (the reasons say which and why): a routing
    plan on such books is not one to act on. ``as_of``: on the books at that instant of the
    recording. Errors: 404 unknown venue/symbol; 422 bad input.
    """
    st = await asyncio.to_thread(status)
    if st["status"] == "warming":
        raise HTTPException(
            status_code=409,
            detail={
                "message": "execution simulation needs synced books; the system is still warming up",
                "status": st["status"],
                "reasons": st["reasons"],
            },
        )
    try:
        plan = await services.liquidity.route(
            body.symbol,
            body.side,
            size=body.size,
            notional=body.notional,
            venues=body.venues,
            fees_bps=body.fees_bps,
            as_of=as_of,
        )
    except NoUsableBookError as exc:
        raise HTTPException(
            status_code=409, detail={"message": str(exc), "status": st["status"], "reasons": exc.reasons}
        ) from None
    return plan.model_copy(update={"status": st["status"]})


# ------------------------------------------------------------------------------------ backtest


@router.post("/backtest", response_model=BacktestAnswer, tags=["analytics"])
async def backtest(body: BacktestRequest, services: ServicesDep) -> BacktestAnswer:
    """Execution backtest: the order of ``size`` base units simulated at every candle of the last
    ``lookback_days`` (ending at the last stored candle on recorded data, at the venue's clock live;
    missing candles are fetched with ccxt ``fetch_ohlcv`` live, and ``candles`` says what came from
    where) on a book model calibrated from the asset's real book when one exists (``model_info``).

    ``result``: slippage statistics in bps (avg/median/min/max, percentiles), high-risk (> 200 bps)
    and optimal (< 50 bps) interval counts, fill price and cost in quote units; ``result.series``:
    per interval ``ts`` (ISO UTC), ``slippage_bps``, ``fill_price``, ``high_risk``, ``optimal``,
    downsampled to at most 2,000 points by keeping the interval of maximum slippage of each bucket
    (``result.series.bucket_intervals`` intervals per point); ``result.risk_periods``: the
    contiguous runs of high-risk intervals of the full series.
    Errors: 404 no stored candles (lists what is stored); 422 bad input or too few candles.
    """
    return await services.trading.backtest(
        body.symbol, body.side, size=body.size, notional=body.notional, lookback_days=body.lookback_days,
        timeframe=body.timeframe, venue=body.venue, schedule=body.schedule, at=body.at, series=True,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ pairs


@router.get("/pairs", response_model=PairsAnswer, tags=["analytics"])
async def pairs(
    services: ServicesDep,
    symbol_a: Annotated[str, Query(min_length=1, max_length=40, description="First leg, e.g. ETH/USDT.")],
    symbol_b: Annotated[str, Query(min_length=1, max_length=40, description="Second leg, e.g. BTC/USDT.")],
    timeframe: Annotated[Timeframe | None, Query(description="Candle timeframe (default 1h).")] = None,
    lookback_days: Annotated[float, Query(gt=0, le=3650, description="Window in days.")] = 30.0,
    size: Annotated[
        float | None,
        Query(
            gt=0,
            le=1e9,
            description="Size of leg a (base units) for the round-trip cost; default 10,000 quote.",
        ),
    ] = None,
    venue: Annotated[
        str | None, Query(min_length=1, max_length=40, description="Venue of candles and books.")
    ] = None,
    zscore_window: Annotated[int, Query(ge=2, le=10_000, description="Points in the rolling z-score.")] = 48,
    corr_window: Annotated[
        int, Query(ge=2, le=10_000, description="Points in the rolling correlation.")
    ] = 48,
    max_points: Annotated[int, Query(ge=10, le=20_000, description="Most series points returned.")] = 2000,
) -> PairsAnswer:
    """Pair statistics of two assets' closes: OLS and Huber hedge ratios of log prices, the spread
    ``log a - beta log b - alpha`` and its rolling z-score, rolling return correlation, ADF on the
    spread, Engle-Granger cointegration, half-life of mean reversion (periods and hours), and the
    round-trip taker cost of trading the spread through both real books (each leg's taker fee
    from the same fee source as compare).

    Errors: 404 no stored candles; 422 the same asset twice, or too few overlapping points.
    """
    return await services.trading.pairs(
        symbol_a, symbol_b, timeframe, lookback_days, venue, size,
        zscore_window=zscore_window, corr_window=corr_window, series=True, max_points=max_points,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ history


@router.get("/history/coverage", tags=["history"])
async def history_coverage(
    services: ServicesDep,
    venue: Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[a-z0-9]+$")] = None,
    symbol: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
) -> list[dict]:
    """The stored candle series: ``[{venue, symbol, timeframe, first_ts_ms, last_ts_ms, count}]``
    (on recorded data the candle files are imported first). Filter by ``venue`` and/or ``symbol``."""
    h = services.candles
    await h.coverage(services.books.canonical(venue or services.settings.agent.default_venue), None)
    return await (await h.history()).coverage(venue, symbol.strip().upper() if symbol else None)


@router.get("/history/candles", response_model=CandlesResponse, tags=["history"])
async def history_candles(
    settings: SettingsDep,
    services: ServicesDep,
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
    history = services.candles
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


# Times are stored as int64 epoch nanoseconds (trades) and read into pandas: both end here.
_MIN_MS = pd.Timestamp.min.value // 1_000_000 + 1  # 1677-09-21T00:12:43.146Z
_MAX_MS = pd.Timestamp.max.value // 1_000_000  # 2262-04-11T23:47:16.854Z
_TIME_RANGE = "between 1677-09-22 and 2262-04-11 UTC"


def _time(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    v = value.strip()
    try:
        ms = to_ms(int(v)) if re.fullmatch(r"-?\d{1,19}", v) else to_ms(v)
    except (InvalidInputError, ValueError, OverflowError):  # pandas: OutOfBoundsDatetime, overflow
        raise InvalidInputError(
            f"{name}={value!r} is not a time: use ISO 8601 (2024-08-08T00:00:00Z) or epoch milliseconds, "
            f"{_TIME_RANGE}"
        ) from None
    if ms is None or not _MIN_MS <= ms <= _MAX_MS:
        raise InvalidInputError(f"{name}={value!r} is outside the supported times: {_TIME_RANGE}")
    return ms


@router.get("/history/liquidity", response_model=LiquidityHistoryAnswer, tags=["history"])
async def history_liquidity(
    services: ServicesDep,
    symbol: Annotated[str, Query(min_length=1, max_length=40, description="BTC, ETH/USDT, BTC/USDT:USDT...")],
    venue: Annotated[
        str | None, Query(min_length=1, max_length=40, description="ccxt id; every venue if omitted")
    ] = None,
    metric: Annotated[
        Literal["depth", "bid_depth", "ask_depth", "imbalance", "spread_bps", "mid", "microprice"],
        Query(description="What to chart"),
    ] = "depth",
    window_bps: Annotated[
        float | None, Query(gt=0, le=10_000, description="Depth window (recorded ones)")
    ] = None,
    unit: Annotated[
        Literal["quote", "base"], Query(description="Depth in quote (notional) or base units")
    ] = "quote",
    lookback_s: Annotated[
        float | None, Query(gt=0, description="Seconds before now (3600 = last hour)")
    ] = None,
    period: Annotated[Literal["today"] | None, Query(description="today = UTC midnight to now")] = None,
    start: Annotated[str | None, Query(max_length=40, description="ISO 8601 or epoch ms")] = None,
    end: Annotated[
        str | None, Query(max_length=40, description="ISO 8601 or epoch ms; now if omitted")
    ] = None,
    max_points: Annotated[int, Query(ge=10, le=10_000, description="Points returned per series")] = 600,
) -> LiquidityHistoryAnswer:
    """The stored liquidity history of one book (or of an asset on every venue): the series on the
    book-time axis, min/max and when, first/last and the change, and the stored rows it came from
    (``services.history.liquidity_history``). On recorded data "now" is the recording's end.
    Errors: 422 bad metric/window/time (the message lists what is valid), 404 unknown venue/symbol or nothing stored."""
    return await services.history.liquidity_history(
        symbol, venue, metric, window_bps, start=_time(start, "start"), end=_time(end, "end"),
        lookback_s=lookback_s, period=period, unit=unit, max_points=max_points,
    )  # fmt: skip


@router.get("/history/trades", response_model=TradesResponse, tags=["history"])
async def history_trades(
    services: ServicesDep,
    settings: SettingsDep,
    symbol: Annotated[str, Query(min_length=1, max_length=40, description="BTC/USDT, BTC/USDT:USDT...")],
    venue: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most recent trades returned.")] = 100,
) -> dict:
    """The latest trades of one instrument, newest last: from the book store (live feed or replayed
    recording, last 1000 per instrument), else from storage. Sizes base units, prices quote units.
    Errors: 404 unknown venue/symbol."""
    market = services.market
    venue_id = services.books.canonical(venue or settings.agent.default_venue)
    inst = await services.books.resolve(symbol, venue_id)
    await services.books.ensure_loaded([inst])
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
        h = await services.candles.history()
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


# Export ids: a ccxt venue id (lowercase letters and digits: "binance", "binanceusdm") and a base
# asset or ccxt unified symbol (BASE/QUOTE[:SETTLE][-EXPIRY[-STRIKE-C|P]], docs.ccxt.com "Market
# structure"). They only filter rows: no path or file name is ever built from them.
VENUE_ID_PATTERN = r"^[a-z0-9]{1,40}$"
UNIFIED_SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._]{0,19}(/[A-Za-z0-9._]{1,20}(:[A-Za-z0-9._]{1,20})?(-[A-Za-z0-9.]{1,20}){0,3})?$"


@router.get(
    "/export",
    tags=["history"],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
            "description": "The rows as a streamed CSV or Parquet download (columns in storage/export.py).",
        }
    },
)
async def export_file(
    settings: SettingsDep,
    services: ServicesDep,
    kind: Annotated[Literal["candles", "trades"], Query(description="What to export.")],
    symbol: Annotated[
        str,
        Query(min_length=1, max_length=40, pattern=UNIFIED_SYMBOL_PATTERN, description="BTC or BTC/USDT."),
    ],
    timeframe: Annotated[Timeframe | None, Query(description="Candle timeframe (candles only).")] = None,
    format: Annotated[Literal["csv", "parquet"], Query(description="File format.")] = "csv",
    venue: Annotated[
        str | None, Query(min_length=1, max_length=40, pattern=VENUE_ID_PATTERN, description="ccxt venue id.")
    ] = None,
    start: Annotated[str | None, Query(max_length=40, description="ISO 8601 UTC or epoch ms.")] = None,
    end: Annotated[
        str | None, Query(max_length=40, description="ISO 8601 UTC or epoch ms; exclusive.")
    ] = None,
) -> StreamingResponse:
    """Stored candles or trades as a download streamed from storage in bounded chunks (no file is
    written on the server). Candle columns: venue, symbol, timeframe, ts, ts_ms, open, high, low,
    close, volume; trade columns: venue, symbol, trade_id, ts, ts_event_ns, ts_recv_ns, price, size,
    side. Errors: 404 nothing stored; 422 bad venue id, symbol or time; 503 storage unavailable."""
    venue = (venue or settings.agent.default_venue).lower()
    pair = default_pair(symbol, settings)
    s_ms, e_ms = _time(start, "start"), _time(end, "end")
    history = services.candles
    cov = await history.coverage(venue, pair)
    if kind == "candles":
        stored = [c for c in cov if timeframe is None or c["timeframe"] == timeframe]
        if not stored:
            raise NoHistoryError(
                f"No {timeframe or ''} candles stored for {pair} on {venue}.".replace("  ", " "), cov
            )
    h = await history.history()
    chunks = export_chunks(
        h.db, kind, format, venue=venue, symbol=pair, timeframe=timeframe, start=s_ms, end=e_ms
    )
    first = await anext(chunks)  # storage errors before the first byte: a 503/404, not a cut stream

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    name = f"{kind}_{venue}_{pair.replace('/', '-').replace(':', '_')}{'_' + timeframe if timeframe else ''}.{format}"
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return StreamingResponse(
        body(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
