"""FastAPI application: ``create_app(settings)`` + lifespan that builds and closes every client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from market_liquidity_monitor import __version__, analytics
from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.api.schemas import ChatRequest, ChatResponse, HealthResponse, ImpactRequest
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.data_engine.cache import build_cache
from market_liquidity_monitor.data_engine.engine import DataEngine
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InsufficientLiquidityError,
    InvalidInputError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.history_service import HistoryService
from market_liquidity_monitor.market_data import MarketData


def get_market(request: Request) -> MarketData:
    return request.app.state.market


def get_assistant(request: Request) -> Assistant:
    return request.app.state.assistant


MarketDep = Annotated[MarketData, Depends(get_market)]
AssistantDep = Annotated[Assistant, Depends(get_assistant)]


def build_market(settings: Settings) -> MarketData:
    if settings.data_dir is not None:
        return MarketData.from_recordings(settings, settings.data_dir)
    return MarketData(settings)


def create_app(settings: Settings | None = None, market: MarketData | None = None) -> FastAPI:
    """The API app. With ``settings.data_dir`` set, everything runs on that recorded data."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        md = market or build_market(settings)
        engine = DataEngine(settings, build_cache(settings))
        history = HistoryService(settings)
        app.state.settings = settings
        app.state.market = md
        app.state.engine = engine
        app.state.assistant = Assistant(settings, md, history=history, engine=engine)
        try:
            yield
        finally:
            await engine.close()
            await history.close()
            await engine.cache.close()

    app = FastAPI(
        title="Market Liquidity Monitor",
        version=__version__,
        description="Liquidity analytics over real L2 order books, and an assistant that answers from them.",
        lifespan=lifespan,
    )

    @app.exception_handler(UnknownVenueError)
    @app.exception_handler(UnknownSymbolError)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            status_code=404, content={"detail": str(exc), "valid": getattr(exc, "valid", [])[:50]}
        )

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(BookNotReadyError)
    @app.exception_handler(InsufficientLiquidityError)
    async def _not_ready(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    # Sync endpoints run in FastAPI's threadpool, so a first request that replays a recording
    # does not block the event loop.
    @app.get("/api/health", response_model=HealthResponse, tags=["status"])
    def health(market: MarketDep, request: Request) -> HealthResponse:
        """Liveness: the process is up; books loaded; REST circuit breakers per venue."""
        return HealthResponse(
            status="ok",
            mode="recorded" if market.is_recorded else "live",
            books_loaded=len(market.store.instruments()),
            version=__version__,
            circuit_breakers=[h.to_dict() for h in request.app.state.engine.health()],
        )

    @app.post("/api/chat", response_model=ChatResponse, tags=["assistant"])
    async def chat(body: ChatRequest, assistant: AssistantDep) -> ChatResponse:
        """Ask the assistant. The answer's numbers come from the listed tool calls."""
        res = await assistant.ask(body.message, body.session_id)
        return ChatResponse(**res.as_dict())

    @app.get("/api/orderbook/{venue}/{symbol:path}", tags=["analytics"])
    def orderbook(
        venue: str,
        symbol: str,
        market: MarketDep,
        levels: Annotated[int, Query(ge=1, le=1000, description="Levels per side to return.")] = 20,
        window_bps: Annotated[float | None, Query(gt=0, le=10_000, description="Extra depth window.")] = None,
    ) -> dict:
        """Order-book summary (top of book, depth within bps windows, imbalance) and the top levels.

        ``symbol`` is a unified symbol (``BTC/USDT``; ``BTC-USDT`` also accepted) or a base asset.
        """
        inst = market.resolve(symbol.replace("-", "/") if "/" not in symbol else symbol, venue)
        view = market.view(inst)
        windows = sorted({*settings.analytics.depth_windows_bps, *([window_bps] if window_bps else [])})
        summary = analytics.book_summary(view, windows).model_dump(mode="json")
        summary["bids"] = [
            [float(p), float(s)]
            for p, s in zip(view.bid_prices[:levels], view.bid_sizes[:levels], strict=True)
        ]
        summary["asks"] = [
            [float(p), float(s)]
            for p, s in zip(view.ask_prices[:levels], view.ask_sizes[:levels], strict=True)
        ]
        return summary

    @app.post("/api/impact", tags=["analytics"])
    def impact(body: ImpactRequest, market: MarketDep) -> dict:
        """Market impact of a taker order walked through the visible book (VWAP, slippage_bps)."""
        inst = market.resolve(body.symbol, body.venue)
        view = market.view(inst)
        res = analytics.market_impact(view, body.side, size=body.size, notional=body.notional)
        out = res.model_dump(mode="json")
        out["quality"] = view.quality
        return out

    return app
