"""The API's edge: what every HTTP request goes through before (and after) an endpoint.

``install_hardening(app, settings)`` installs, in one call:

- ``RequestGuard`` (pure ASGI middleware): a request body larger than ``settings.api.max_body_bytes``
  gets **413** (``Content-Length`` is checked first, then the bytes are counted as they stream in,
  so a chunked or lying body is cut off at the limit; nothing beyond the limit is buffered).
  A JSON body (``application/json``, ``*+json`` or no content type, as FastAPI decides) is decoded
  once here and refused with **422** naming the field when it holds a non-finite number (``NaN``,
  ``Infinity``, ``-Infinity``, or a literal such as ``1e999`` that overflows an IEEE 754 double:
  RFC 8259 section 6 has no such numbers), a NUL character (PostgreSQL text cannot store U+0000),
  an integer literal longer than Python's 4300-digit conversion limit, or nesting deeper than
  ``MAX_JSON_DEPTH``. A NUL in the path or a query parameter is a 422 as well.
- A ``RequestValidationError`` handler: 422 ``{"detail": [{"loc", "msg", "type"}, ...]}`` with at
  most ``MAX_ERRORS`` entries (``errors_total`` gives the full count), every ``loc`` element and
  ``msg`` cut to a bounded length, and neither ``input`` nor ``ctx``: the answer names the field and
  the rule, it never echoes what was sent (a 100 MB body used to come back as a 100 MB answer).
- Storage-outage handlers (``api.storage_health``): a database that is unreachable or does not
  answer within its timeout gives **503** with the reason, never a 500 or a hang.
- ``/docs`` (Swagger UI) and ``/redoc`` served with their JavaScript/CSS from the installed
  ``fastapi-offline`` package (FastAPI's self-hosting recipe: "Custom Docs UI Static Assets"), so they
  render without internet. Like FastAPI's own docs routes they are plain routes, outside the app's
  token dependency: they hold no data.

Error bodies of the guard use FastAPI's validation shape, so clients parse one format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from market_liquidity_monitor.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_ERRORS = 20  # validation errors listed in one 422 answer
MAX_LOC_CHARS = 64  # per ``loc`` element (a dict key or an unknown field name is user text)
MAX_MSG_CHARS = 300
MAX_JSON_DEPTH = 64  # nested arrays/objects; deeper bodies are refused before json.loads recurses
DOCS_STATIC_URL = "/static-offline-docs"


# ------------------------------------------------------------------------------ error bodies


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _loc_part(part: Any) -> str | int:
    return part if isinstance(part, int) and not isinstance(part, bool) else _cut(str(part), MAX_LOC_CHARS)


def error_entry(loc: list[Any] | tuple[Any, ...], msg: str, type_: str) -> dict[str, Any]:
    """One validation error in FastAPI's shape, without the input."""
    return {"loc": [_loc_part(p) for p in loc], "msg": _cut(str(msg), MAX_MSG_CHARS), "type": str(type_)}


def validation_body(errors: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """``{"detail": [...]}`` of at most ``MAX_ERRORS`` entries (``loc``, ``msg``, ``type`` only)."""
    shown = [error_entry(e.get("loc", ()), e.get("msg", ""), e.get("type", "value_error")) for e in errors]
    body: dict[str, Any] = {"detail": shown[:MAX_ERRORS]}
    if len(shown) > MAX_ERRORS:
        body["errors_total"] = len(shown)
    return body


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each field and rule, never the input (replaces FastAPI's default handler)."""
    return JSONResponse(status_code=422, content=validation_body(list(exc.errors())))


# ------------------------------------------------------------------------------ JSON body checks


class BodyProblem(ValueError):
    """A JSON body the API refuses: ``loc`` (``["body", ...]``), ``msg``, ``type``."""

    def __init__(self, loc: list[Any], msg: str, type_: str):
        super().__init__(msg)
        self.loc, self.msg, self.type = loc, msg, type_


_NON_FINITE_MSG = (
    "Input should be a finite number: NaN, Infinity and literals beyond the double range (1e999) "
    "are not valid here (RFC 8259 section 6)"
)
_NUL_MSG = "Text must not contain the NUL character (U+0000)"


def _max_depth(body: bytes) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_str = escaped = False
    for b in body:
        if in_str:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif b in (0x5D, 0x7D):
            depth -= 1
    return deepest


def check_json_body(body: bytes) -> None:
    """Raise ``BodyProblem`` for a body FastAPI would decode into something the API cannot handle.

    Malformed JSON is left to FastAPI (its ``json_invalid`` 422 goes through
    ``validation_error_handler``); only well-formed JSON is checked here."""
    if _max_depth(body) > MAX_JSON_DEPTH:
        raise BodyProblem(["body"], f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "json_too_deep")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        return
    except UnicodeDecodeError:
        return  # FastAPI answers json_invalid
    except ValueError as exc:  # an integer literal over sys.get_int_max_str_digits()
        raise BodyProblem(["body"], f"Number too long: {exc}"[:MAX_MSG_CHARS], "number_too_long") from None
    stack: list[tuple[Any, list[Any]]] = [(doc, ["body"])]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                raise BodyProblem(loc, _NON_FINITE_MSG, "finite_number")
        elif isinstance(value, str):
            if "\x00" in value:
                raise BodyProblem(loc, _NUL_MSG, "nul_character")
        elif isinstance(value, dict):
            for k, v in value.items():
                if "\x00" in k:
                    raise BodyProblem(
                        loc, "Keys must not contain the NUL character (U+0000)", "nul_character"
                    )
                stack.append((v, [*loc, k]))
        elif isinstance(value, list):
            stack.extend((v, [*loc, i]) for i, v in enumerate(value))


def _is_json(headers: dict[bytes, bytes]) -> bool:
    """FastAPI's rule (fastapi/routing.py): no content type, ``application/json`` or ``application/*+json``."""
    ctype = headers.get(b"content-type")
    if not ctype:
        return True
    mime = ctype.split(b";", 1)[0].strip().lower()
    if not mime.startswith(b"application/"):
        return False
    sub = mime[len(b"application/") :]
    return sub == b"json" or sub.endswith(b"+json")


def _nul_in_request(scope: Scope) -> list[Any] | None:
    if "\x00" in scope.get("path", ""):
        return ["path"]
    qs = scope.get("query_string", b"")
    if b"%00" in qs or b"\x00" in qs:
        for name, value in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return ["query", name.replace("\x00", "")]
        return ["query"]
    return None


# ------------------------------------------------------------------------------ the middleware


async def _send_json(send: Send, status: int, content: Any, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(content, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: body size limit, JSON body checks, NUL characters in path/query (module doc).

    ``max_body_bytes``: the largest body accepted (413 beyond, with the limit in the answer)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)

    def _too_large(self, got: str) -> dict[str, Any]:
        return {
            "detail": f"request body too large ({got}); the limit is {self.max_body_bytes} bytes "
            "(settings api.max_body_bytes)",
            "max_body_bytes": self.max_body_bytes,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nul = _nul_in_request(scope)
        if nul is not None:
            await _send_json(
                send, 422, validation_body([{"loc": nul, "msg": _NUL_MSG, "type": "nul_character"}])
            )
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                n = -1
            if n > self.max_body_bytes:
                await _send_json(
                    send, 413, self._too_large(f"Content-Length {n} bytes"), [(b"connection", b"close")]
                )
                return
        if (
            scope.get("method") in ("GET", "HEAD", "OPTIONS")
            and declared is None
            and b"transfer-encoding" not in headers
        ):
            await self.app(scope, receive, send)
            return
        # Read the body, counting bytes as they arrive; stop at the limit.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_json(
                    send, 413, self._too_large(f"more than {self.max_body_bytes} bytes streamed"),
                    [(b"connection", b"close")],
                )  # fmt: skip
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(headers):
            try:
                check_json_body(body)
            except BodyProblem as p:
                await _send_json(send, 422, validation_body([{"loc": p.loc, "msg": p.msg, "type": p.type}]))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)


# ------------------------------------------------------------------------------ offline docs


def install_offline_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with assets from the installed ``fastapi-offline`` package.

    The app must be built with ``docs_url=None, redoc_url=None``; the assets are served under
    ``DOCS_STATIC_URL`` (``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js``,
    ``favicon.png``)."""
    static = resources.files("fastapi_offline") / "static"
    app.mount(DOCS_STATIC_URL, StaticFiles(directory=str(static)), name="static-offline-docs")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth_url}",
            swagger_js_url=f"{root}{DOCS_STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route(oauth_url, oauth_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


# ------------------------------------------------------------------------------ install


def install_hardening(app: FastAPI, settings: Settings) -> None:
    """Install the request guard, the 422 handler, the storage-outage handlers and the offline docs.

    Call once in ``create_app``, before CORS is added (so CORS headers wrap the guard's answers)."""
    from market_liquidity_monitor.api.storage_health import install_storage_handlers

    app.add_middleware(RequestGuard, max_body_bytes=settings.api.max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    install_storage_handlers(app)
    install_offline_docs(app)


__all__ = [
    "MAX_ERRORS",
    "RequestGuard",
    "check_json_body",
    "install_hardening",
    "install_offline_docs",
    "validation_body",
    "validation_error_handler",
]
