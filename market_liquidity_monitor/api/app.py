"""FastAPI application: ``create_app(settings)`` + lifespan that builds and closes every client.

Endpoints (OpenAPI at ``/docs``): ``GET /api/health``, ``GET /api/status``, ``POST /api/chat``,
``GET /api/orderbook/{venue}/{symbol}``, ``POST /api/impact``, ``POST /api/compare``,
``POST /api/execute``, ``POST /api/backtest``, ``GET /api/pairs``, ``GET /api/history/candles``,
``GET /api/history/trades``, ``GET /api/export``, the alert endpoints (``api/alerts.py``) and the
WebSocket ``/ws/stream`` (``api/stream.py``). With ``settings.api.token`` set, every ``/api``
endpoint and the WebSocket need it (``api/security.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from market_liquidity_monitor import __version__
from market_liquidity_monitor.agent.assistant import ModelProviderError
from market_liquidity_monitor.api import routes
from market_liquidity_monitor.api.alerts import router as alerts_router
from market_liquidity_monitor.api.alerts import start_alerts
from market_liquidity_monitor.api.chat import chat_response
from market_liquidity_monitor.api.deps import AssistantDep, EngineDep, MarketDep, ServicesDep, StatusDep
from market_liquidity_monitor.api.hardening import install_hardening
from market_liquidity_monitor.api.routes import AsOfQuery, answer_response
from market_liquidity_monitor.api.schemas import (
    ChatRequest,
    ChatResponse,
    HealthResponse,
    ImpactRequest,
    StatusResponse,
)
from market_liquidity_monitor.api.security import add_cors, check_websocket, require_token
from market_liquidity_monitor.api.status import Readiness, compute_status
from market_liquidity_monitor.api.storage_health import StorageMonitor
from market_liquidity_monitor.api.stream import StreamHub, parse_window, serve_client
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.data_engine.errors import VenueRequestError, VenueUnreachableError
from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InsufficientLiquidityError,
    InvalidInputError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.observability import configure_observability, redact, secret_values
from market_liquidity_monitor.services import ImpactAnswer, OrderBookAnswer, Services, build_market
from market_liquidity_monitor.storage.history import InsufficientHistoryError, NoHistoryError

log = logging.getLogger(__name__)


def _writer_stats(app: FastAPI) -> dict[str, Any] | None:
    writer = getattr(app.state, "writer", None)
    if writer is None:
        return None
    d = writer.stats().to_dict()
    cap = getattr(writer, "max_buffer_rows", None)
    d["max_buffer_rows"] = cap
    d["buffer_use_pct"] = None if not cap else round(100.0 * d["buffered"] / cap, 2)
    return d


def _feeds(app: FastAPI) -> list[dict[str, Any]] | None:
    feed = getattr(app.state, "feed", None)
    if feed is None:
        return None
    try:
        return [
            {"venue": c.get("venue"), "connected": c.get("connected")} for c in feed.status()["connections"]
        ]
    except Exception:  # a feed in an odd state must not break /api/status
        log.exception("feed status failed")
        return None


def _with_bus(market: MarketData, status: dict[str, Any]) -> dict[str, Any]:
    """``status`` plus the bus follower's counters when this process is an API replica."""
    follower = getattr(market, "bus_follower", None)
    if follower is not None:
        status["bus"] = follower.status()
    return status


def create_app(
    settings: Settings | None = None, market: MarketData | None = None, services: Services | None = None
) -> FastAPI:
    """The API app. With ``settings.data_dir`` set, everything runs on that recorded data.

    ``market``: an already built ``MarketData`` to serve (tests, ``mlm up``); ``services``: an
    already built service container (then owned by the caller, not closed here); else built here.
    """
    settings = settings or Settings()
    secrets = secret_values(settings)  # kept out of every error detail, as out of the logs

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or Services.build(settings, market=market or build_market(settings))
        md, engine = svc.market, svc.engine
        readiness = Readiness(settings, md)
        hub = StreamHub(settings, md, readiness)
        app.state.settings = settings
        app.state.services = svc
        app.state.market = md
        app.state.engine = engine
        app.state.history = svc.candles
        app.state.readiness = readiness
        app.state.hub = hub
        app.state.storage = storage = StorageMonitor(settings, svc.candles)
        app.state.writer = svc.history.writer if svc.history is not None else None
        app.state.assistant = svc.assistant
        app.state.status = lambda: _with_bus(
            md,
            compute_status(
                readiness,
                breakers=[h.to_dict() for h in engine.health()],
                websocket=hub.stats(),
                writer=_writer_stats(app),
                feeds=_feeds(app),
                rest_books=svc.books.rest_store,
                pro_books=svc.books.pro_store,
                pro_watches=svc.health.pro_watches(),
                storage=storage.snapshot(),
                cache=engine.cache.status(),
            ),
        )
        if svc.history is not None:
            # Before the first book loads (readiness warm-up, stream hub): the history service,
            # the market's replay witness, can then let a recording be restored from its
            # checkpoint when its rows are stored, instead of replaying it.
            try:  # the liquidity history's writer: rows buffer (bounded) until the database answers
                await svc.history.start()
            except Exception as exc:
                log.warning("liquidity history: storage not available at start (%s); rows are buffered", exc)
        readiness.start()
        await hub.start()
        await storage.start()
        alerts_stop = await start_alerts(app, svc, hub)
        try:
            yield
        finally:
            await alerts_stop()
            await storage.stop()
            await hub.stop()
            if services is None:
                await svc.close()

    app = FastAPI(
        title="Market Liquidity Monitor",
        version=__version__,
        description=(
            "Liquidity analytics over real L2 order books (spread, depth within bps windows, imbalance, "
            "market impact, venue comparison, simulated smart order routing, execution backtests, pairs "
            "statistics), candle history, alerts, a live metrics WebSocket (`/ws/stream`) and an "
            "assistant that answers from tool results. Sizes are base units, notionals quote units, "
            "`_bps` basis points, times ISO 8601 UTC. With an API token configured, send "
            "`Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        dependencies=[Depends(require_token)],
        docs_url=None,  # served offline by install_hardening (api/hardening.py)
        redoc_url=None,
    )
    app.state.settings = settings
    install_hardening(app, settings)  # body limit, JSON checks, 422/503 handlers, offline docs
    add_cors(app, settings)
    configure_observability(settings, app)  # spans only when they go somewhere (a token, console, OTLP)

    def _json(status: int, detail: Any, **extra: Any) -> JSONResponse:
        if isinstance(detail, str):
            detail = redact(detail, secrets)
        return JSONResponse(status_code=status, content={"detail": detail, **extra})

    @app.exception_handler(UnknownVenueError)
    @app.exception_handler(UnknownSymbolError)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return _json(404, str(exc), valid=getattr(exc, "valid", [])[:50])

    @app.exception_handler(NoHistoryError)
    async def _no_history(request: Request, exc: NoHistoryError) -> JSONResponse:
        return _json(404, str(exc), available=exc.available[:50])

    @app.exception_handler(InvalidInputError)
    @app.exception_handler(InsufficientHistoryError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        return _json(422, str(exc))

    @app.exception_handler(BookNotReadyError)
    @app.exception_handler(ModelProviderError)  # the LLM provider is unreachable or refused: /api/chat
    @app.exception_handler(InsufficientLiquidityError)
    @app.exception_handler(VenueUnreachableError)
    async def _not_ready(request: Request, exc: Exception) -> JSONResponse:
        return _json(503, str(exc))

    @app.exception_handler(VenueRequestError)
    async def _venue_refused(request: Request, exc: Exception) -> JSONResponse:
        return _json(502, str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # Never echo an unexpected exception: it may carry a URL, a key or a path.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _json(500, "internal error; the server log has the details")

    # Sync endpoints run in FastAPI's threadpool, so a first request that replays a recording
    # does not block the event loop.
    from market_liquidity_monitor.api.prometheus import LatencyMiddleware, metrics_registry, render

    prom, latency = metrics_registry(lambda: app.state)
    app.add_middleware(LatencyMiddleware, histogram=latency)

    @app.get("/metrics", tags=["status"], include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics (api/prometheus.py), read from the process's counters at scrape time."""
        body, ctype = render(prom)
        return Response(content=body, media_type=ctype)

    @app.get("/api/health", response_model=HealthResponse, tags=["status"])
    def health(market: MarketDep, engine: EngineDep) -> HealthResponse:
        """Liveness: the process is up; books loaded; REST circuit breakers per venue."""
        return HealthResponse(
            status="ok",
            mode="recorded" if market.is_recorded else "live",
            books_loaded=len(market.store.instruments()),
            version=__version__,
            circuit_breakers=[h.to_dict() for h in engine.health()],
        )

    @app.get("/api/status", response_model=StatusResponse, tags=["status"])
    def status(status: StatusDep, assistant: AssistantDep) -> dict:
        """Readiness of the system: ``warming`` while the watched books (``api.watch_symbols`` on
        every venue of ``venues``) load or await their first snapshot, ``live`` once each is synced
        and fresh, ``degraded`` (with ``reasons``) when some are not. Also per-venue connection
        state, per-book quality, REST circuit breakers, storage-writer buffer use and the
        WebSocket stream's client count and dropped frames, and the assistant's model (``model``:
        configured vs effective, and why a configured provider fell back to the offline model)."""
        return {**status(), "model": assistant.model_status()}

    @app.post(
        "/api/chat",
        response_model=ChatResponse,
        tags=["assistant"],
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE with stream=true"}
        },
    )
    async def chat(body: ChatRequest, assistant: AssistantDep, request: Request):
        """Ask the assistant. The answer's numbers come from the listed tool calls.

        ``stream=true``: ``text/event-stream`` with the events as they happen: ``event: tool_call``
        (``{"name", "args"}``), ``event: tool_result`` (``{"name", "ok", "summary"}``), ``event: chunk``
        (``{"text"}``, the answer as the model writes it), then ``event: done`` (``{"answer",
        "tool_calls", "session_id", "grounding"}``, the JSON mode's body; its ``answer`` is final).
        A limit or timeout that stops the run is an answer saying so (200). A client that disconnects
        cancels the run. Errors: 503 when the LLM provider is unreachable or refuses the request and
        the offline model may not answer (the model, its base URL and what to do; never the key).
        """
        return await chat_response(request, assistant, body.message, body.session_id, body.stream)

    @app.get("/api/orderbook/{venue}/{symbol:path}", response_model=OrderBookAnswer, tags=["analytics"])
    async def orderbook(
        venue: str,
        symbol: str,
        services: ServicesDep,
        levels: Annotated[int, Query(ge=1, le=1000, description="Levels per side to return.")] = 20,
        window_bps: Annotated[float | None, Query(gt=0, le=10_000, description="Extra depth window.")] = None,
        as_of: AsOfQuery = None,
    ) -> Response:
        """Order-book summary (top of book, depth within bps windows, imbalance), the book's source
        (recording / ws / rest), time and quality, and the top levels.

        ``symbol`` is a unified symbol (``BTC/USDT``; ``BTC-USDT`` also accepted) or a base asset.
        ``bids``/``asks``: ``[[price, size], ...]`` best first (quote units, base units).
        ``as_of``: the book rebuilt to that instant of the recording (``book.as_of``,
        ``book.book_ts``); 422 with the valid range outside it (``GET /api/timeline``).
        Errors: 404 unknown venue/symbol (lists the valid ones); 503 book not synced.
        """
        sym = symbol.replace("-", "/") if "/" not in symbol else symbol
        answer = await services.liquidity.order_book(sym, venue, window_bps, levels=levels, as_of=as_of)
        return answer_response(answer)

    @app.post("/api/impact", response_model=ImpactAnswer, tags=["analytics"])
    async def impact(body: ImpactRequest, services: ServicesDep, as_of: AsOfQuery = None) -> Response:
        """Market impact of a taker order walked through the visible book (VWAP, slippage_bps), with
        the book's source, time and quality (``as_of``: on the book at that instant of the recording).
        Errors: 404 unknown venue/symbol; 422 bad amount or as_of; 503 book not synced or its side empty."""
        answer = await services.liquidity.impact(
            body.symbol, body.side, body.size, body.notional, body.venue, as_of=as_of
        )
        return answer_response(answer)

    app.include_router(routes.router)
    app.include_router(alerts_router)

    @app.websocket("/ws/stream")
    async def ws_stream(ws: WebSocket, symbol: str = "BTC/USDT", window: str | None = None) -> None:
        """Live metrics frames at ``analytics.tick_hz`` (see ``api/stream.py`` for the frames)."""
        if not await check_websocket(ws, settings):
            return
        try:
            w = parse_window(window, settings.analytics.default_window_bps)
        except InvalidInputError as exc:
            await ws.accept()
            await ws.send_text(json.dumps({"type": "error", "detail": str(exc)}))
            await ws.close(code=1008)
            return
        if len(symbol) > 40 or not symbol.strip():
            await ws.accept()
            await ws.send_text(json.dumps({"type": "error", "detail": "symbol must be 1-40 characters"}))
            await ws.close(code=1008)
            return
        await ws.accept()
        with contextlib.suppress(Exception):
            await serve_client(ws, ws.app.state.hub, symbol, w)

    return app


__all__ = ["build_market", "create_app"]  # build_market: re-exported from services
