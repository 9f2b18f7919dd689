"""A small, defensive HTTP client of the Market Liquidity Monitor API.

Every call returns an ``ApiResponse`` instead of raising, so each page can show the right state:

- ``ok``             2xx; ``data`` is the parsed JSON body;
- ``unreachable``    no answer (connection refused, DNS, timeout); ``error`` says why, ``url`` is
                     the URL tried;
- ``not_available``  the API has no such endpoint (FastAPI's bare ``404 Not Found`` or a 405):
                     an older API, or one being extended;
- ``http_error``     any other 4xx/5xx; ``detail`` is the API's own ``detail`` text.

Configuration (environment): ``MLM_API_URL`` (default ``http://127.0.0.1:8000``) and the optional
``MLM_API__TOKEN``, sent as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

DEFAULT_API_URL = "http://127.0.0.1:8000"
# Seconds. A first question on recorded data replays a recording (about a second per instrument),
# and an LLM-backed assistant can take a while: generous read timeout, short connect timeout.
DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 3.0

Kind = Literal["ok", "unreachable", "not_available", "http_error"]


@dataclass(frozen=True)
class ApiResponse:
    """The outcome of one API call (see the module docstring for ``kind``)."""

    kind: Kind
    method: str
    url: str
    status: int | None = None  # None when the API did not answer
    data: Any = None  # parsed JSON body (also for errors, when it is JSON)
    error: str | None = None  # why the call failed, in words
    elapsed_ms: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def detail(self) -> str | None:
        """The API's ``detail`` (FastAPI's error field), flattened to one readable string."""
        return format_detail(self.data.get("detail")) if isinstance(self.data, dict) else self.error


def format_detail(detail: Any) -> str:
    """FastAPI error ``detail`` as text: a string as is; a validation error list as
    ``"body.size: Input should be greater than 0; ..."``."""
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        msg = detail.get("message") or detail.get("msg") or detail.get("detail")
        reasons = detail.get("reasons")
        parts = [str(msg)] if msg else []
        if isinstance(reasons, list) and reasons:
            parts.append("reasons: " + "; ".join(str(r) for r in reasons))
        return " — ".join(parts) if parts else str(detail)
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body") or "request"
                parts.append(f"{loc}: {item.get('msg', item)}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def _is_missing_route(status: int, data: Any) -> bool:
    # A route FastAPI does not know answers exactly {"detail": "Not Found"} (or 405 for a known
    # path without that method). An app-level 404 (unknown venue/symbol) carries a real message.
    if status == 405:
        return True
    return status == 404 and isinstance(data, dict) and data.get("detail") == "Not Found"


def _to_response(method: str, path: str, r: httpx.Response, t0: float) -> ApiResponse:
    """An ``ApiResponse`` of an answered (and read) request."""
    try:
        data = r.json() if r.content else None
    except ValueError:
        data = {"detail": r.text[:2000]}
    common = {
        "method": method,
        "url": str(r.request.url),
        "status": r.status_code,
        "data": data,
        "elapsed_ms": (time.perf_counter() - t0) * 1000,
        "headers": dict(r.headers),
    }
    if r.is_success:
        return ApiResponse("ok", **common)
    if _is_missing_route(r.status_code, data):
        return ApiResponse("not_available", error=f"{method} {path} is not served by this API", **common)
    msg = format_detail(data.get("detail")) if isinstance(data, dict) else str(data)
    return ApiResponse("http_error", error=f"HTTP {r.status_code}: {msg}", **common)


@dataclass(frozen=True)
class ChatEvent:
    """One server-sent event of ``POST /api/chat`` with ``stream=true``: ``event`` is ``tool_call``,
    ``tool_result``, ``chunk``, ``done`` or ``error`` (the API's), or ``failure`` (the request itself
    failed; ``response`` says how, as any other call's ``ApiResponse``)."""

    event: str
    data: dict[str, Any] = field(default_factory=dict)
    response: ApiResponse | None = None


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """``(event, data)`` pairs of a ``text/event-stream`` (WHATWG HTML "server-sent events": an
    event ends at a blank line; ``data`` lines are joined with newlines; ``:`` lines are comments)."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)


def quote_symbol(symbol: str) -> str:
    """A unified symbol for a path segment: ``BTC/USDT`` stays readable (the API's orderbook route
    takes the rest of the path), other reserved characters are escaped."""
    return quote(symbol.strip(), safe="/:")


class ApiClient:
    """Synchronous client; one ``httpx.Client`` per call keeps Streamlit reruns and threads simple."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        token: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        self.timeout = httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S)
        self._transport = transport

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ApiClient:
        env = os.environ if environ is None else environ
        return cls(
            base_url=(env.get("MLM_API_URL") or DEFAULT_API_URL).strip(),
            token=(env.get("MLM_API__TOKEN") or "").strip() or None,
        )

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> ApiResponse:
        url = self.url(path)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        t0 = time.perf_counter()
        try:
            with httpx.Client(timeout=self.timeout, transport=self._transport) as http:
                r = http.request(method, url, params=clean or None, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            return ApiResponse("unreachable", method, url, error=f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return ApiResponse("unreachable", method, url, error=f"{type(exc).__name__}: {exc}")
        return _to_response(method, path, r, t0)

    def get(self, path: str, **params: Any) -> ApiResponse:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> ApiResponse:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> ApiResponse:
        return self.request("DELETE", path)

    # ------------------------------------------------------------- the API's endpoints

    def health(self) -> ApiResponse:
        return self.get("/api/health")

    def status(self) -> ApiResponse:
        return self.get("/api/status")

    def openapi(self) -> ApiResponse:
        return self.get("/openapi.json")

    def orderbook(self, venue: str, symbol: str, levels: int = 20, window_bps: float | None = None):
        return self.get(
            f"/api/orderbook/{quote(venue.strip(), safe='')}/{quote_symbol(symbol)}",
            levels=levels,
            window_bps=window_bps,
        )

    def impact(self, body: dict[str, Any]) -> ApiResponse:
        return self.post("/api/impact", body)

    def compare(self, body: dict[str, Any]) -> ApiResponse:
        return self.post("/api/compare", body)

    def execute(self, body: dict[str, Any]) -> ApiResponse:
        return self.post("/api/execute", body)

    def backtest(self, body: dict[str, Any]) -> ApiResponse:
        return self.post("/api/backtest", body)

    def pairs(self, **params: Any) -> ApiResponse:
        return self.get("/api/pairs", **params)

    def candles(self, **params: Any) -> ApiResponse:
        return self.get("/api/history/candles", **params)

    def liquidity_history(self, **params: Any) -> ApiResponse:
        return self.get("/api/history/liquidity", **params)

    def chat(self, message: str, session_id: str | None = None) -> ApiResponse:
        body: dict[str, Any] = {"message": message}
        if session_id:
            body["session_id"] = session_id
        return self.post("/api/chat", body)

    def chat_stream(self, message: str, session_id: str | None = None) -> Iterator[ChatEvent]:
        """``POST /api/chat`` with ``stream=true``: its events as they arrive (httpx streaming; the
        read timeout applies between two events). A request that fails ends the iteration with one
        ``ChatEvent("failure", response=...)`` (unreachable, HTTP error, a stream cut off before
        ``done``); the API's own ``error`` event is passed on as it came."""
        body: dict[str, Any] = {"message": message, "stream": True}
        if session_id:
            body["session_id"] = session_id
        url = self.url("/api/chat")
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        t0 = time.perf_counter()
        done = False
        try:
            with (
                httpx.Client(timeout=self.timeout, transport=self._transport) as http,
                http.stream("POST", url, json=body, headers=headers) as r,
            ):
                if not r.is_success:
                    r.read()
                    yield ChatEvent("failure", response=_to_response("POST", "/api/chat", r, t0))
                    return
                for event, raw in parse_sse(r.iter_lines()):
                    try:
                        data = json.loads(raw)
                    except ValueError:
                        data = {"text": raw}
                    done = done or event in ("done", "error")
                    yield ChatEvent(event, data if isinstance(data, dict) else {"value": data})
        except httpx.TimeoutException as exc:
            err = f"timed out ({type(exc).__name__})"
            yield ChatEvent("failure", response=ApiResponse("unreachable", "POST", url, error=err))
            return
        except httpx.HTTPError as exc:
            err = f"{type(exc).__name__}: {exc}"
            yield ChatEvent("failure", response=ApiResponse("unreachable", "POST", url, error=err))
            return
        if not done:
            err = "the answer stream ended before its done event"
            yield ChatEvent("failure", response=ApiResponse("unreachable", "POST", url, error=err))

    def alerts(self) -> ApiResponse:
        return self.get("/api/alerts")

    def create_alert(self, body: dict[str, Any]) -> ApiResponse:
        return self.post("/api/alerts", body)

    def delete_alert(self, alert_id: Any) -> ApiResponse:
        return self.delete(f"/api/alerts/{quote(str(alert_id), safe='')}")

    def alert_events(self, limit: int | None = None) -> ApiResponse:
        return self.get("/api/alerts/events", limit=limit)

    # ------------------------------------------------------------- WebSocket

    def ws_url(self, path: str, **params: Any) -> str:
        base = (
            "ws" + self.base_url.removeprefix("http") if self.base_url.startswith("http") else self.base_url
        )
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"{base}/{path.lstrip('/')}" + (f"?{query}" if query else "")

    def stream(
        self, symbol: str, window_bps: float, seconds: float = 1.5, max_frames: int = 20
    ) -> tuple[list[dict[str, Any]], str | None, str]:
        """Frames of ``WS /ws/stream`` read for about ``seconds`` (a short burst per Streamlit run):
        ``(frames, error, url)``; ``error`` is None when the connection worked."""
        url = self.ws_url("/ws/stream", symbol=symbol.strip(), window=f"{window_bps:g}bps")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        try:
            with ws_connect(
                url, additional_headers=headers, open_timeout=CONNECT_TIMEOUT_S, proxy=None
            ) as ws:
                while len(frames) < max_frames:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        raw = ws.recv(timeout=left)
                    except TimeoutError:
                        break
                    frame = json.loads(raw)
                    frames.append(frame)
                    if frame.get("type") == "error":
                        return frames, str(frame.get("detail")), url
        except (OSError, WebSocketException, ValueError) as exc:
            return frames, f"{type(exc).__name__}: {exc}", url
        return frames, None, url
