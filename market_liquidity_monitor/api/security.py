"""Bearer-token authentication and CORS.

When ``settings.api.token`` is set, every ``/api/*`` endpoint needs ``Authorization: Bearer <token>``
and the WebSocket needs that header or ``?token=<token>``; otherwise the answer is 401 (the
WebSocket handshake is refused with HTTP 401). ``/docs`` and ``/openapi.json`` stay public: they
hold no data. The token is compared in constant time and never echoed. CORS allows the origins of
``settings.api.cors_origins`` (none by default); CORS preflight requests need no token.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from market_liquidity_monitor.config import Settings

_HINT = "send the API token as 'Authorization: Bearer <token>' (WebSocket: that header or ?token=<token>)"


def _bearer(conn: HTTPConnection) -> str | None:
    auth = conn.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def token_problem(conn: HTTPConnection, settings: Settings, allow_query: bool = False) -> str | None:
    """Why ``conn`` is not authorized (None when it is, or when no token is configured)."""
    if settings.api.token is None:
        return None
    given = _bearer(conn)
    if given is None and allow_query:
        given = conn.query_params.get("token")
    if given is None:
        return f"missing API token: {_HINT}"
    expected = settings.api.token.get_secret_value()
    if not secrets.compare_digest(given.encode(), expected.encode()):
        return f"invalid API token: {_HINT}"
    return None


async def require_token(conn: HTTPConnection) -> None:
    """App-wide dependency: 401 unless the request carries the configured token.

    WebSocket routes check the token themselves (``check_websocket``), so they are skipped here.
    """
    if conn.scope["type"] != "http":
        return
    problem = token_problem(conn, conn.app.state.settings)
    if problem is not None:
        raise HTTPException(status_code=401, detail=problem, headers={"WWW-Authenticate": "Bearer"})


async def check_websocket(ws: WebSocket, settings: Settings) -> bool:
    """True if the WebSocket may be accepted; otherwise refuse the handshake (HTTP 401 where the
    server supports denial responses, close code 1008 otherwise) and return False."""
    problem = token_problem(ws, settings, allow_query=True)
    if problem is None:
        return True
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(
            JSONResponse({"detail": problem}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        )
    else:
        await ws.close(code=1008, reason="unauthorized")
    return False


def add_cors(app: FastAPI, settings: Settings) -> None:
    """CORS for ``settings.api.cors_origins`` (nothing is added when the list is empty)."""
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_credentials=False,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
