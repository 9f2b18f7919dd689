"""Observability: log lines that name the venue and instrument, secrets kept out of them, and
Logfire (OpenTelemetry) spans for API requests, agent runs and tool calls, httpx and SQLAlchemy.

Nothing leaves the process unless a Logfire token is configured
(``MLM_OBSERVABILITY__LOGFIRE_TOKEN``, or Logfire's own ``LOGFIRE_TOKEN``): Logfire is configured
with ``send_to_logfire="if-token-present"`` and no console output of its own. Spans are made only
when they have somewhere to go (``tracing_wanted``: a token, the console, an OTLP endpoint, span
processors passed in - tests read them with ``logfire.testing`` - or ``observability.tracing``);
otherwise nothing is configured or instrumented: spans that would be dropped cost ~0.3 ms of CPU
per API request and more per agent run.

- ``configure_logging(settings)``: one stderr handler on the root logger at ``settings.log_level``
  with ``InstrumentContextFilter`` (adds ``venue``/``symbol`` to every record and `` [venue
  symbol]`` to the line) and ``RedactSecretsFilter`` (replaces every configured secret value, and
  any ``?token=``/``api_key=``/``Bearer`` credential, by ``***``; uvicorn's access lines included
  when uvicorn runs with ``log_config=None``, as ``mlm serve`` and ``mlm up`` do). Idempotent: calling it again replaces the handler.
- ``log_context(venue=..., symbol=...)`` and ``instrument_logger(log, venue, symbol)`` attach the
  instrument to log records; a record whose arguments contain an ``InstrumentId`` gets it too.
- ``configure_observability(settings, app=None)``: Logfire + instrumentation; returns what was
  instrumented (an optional OpenTelemetry instrumentation package that is not installed is
  reported; without opentelemetry-instrumentation-fastapi, request spans come from FastAPI's own
  telemetry, or from a small span-per-request middleware on a FastAPI without it).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

from market_liquidity_monitor import __version__
from market_liquidity_monitor.config import Settings

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(instrument)s: %(message)s"
_HANDLER_MARK = "_mlm_handler"
# Secrets shorter than this are not redacted from text (a 1-3 character "secret" would shred
# every log line); settings validation is the place to refuse such values.
_MIN_SECRET_LEN = 4

_venue: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlm_log_venue", default=None)
_symbol: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlm_log_symbol", default=None)


# ------------------------------------------------------------------------------ venue / symbol


@contextlib.contextmanager
def log_context(venue: str | None = None, symbol: str | None = None) -> Iterator[None]:
    """Within the block (and tasks started in it), log records carry this venue and symbol."""
    tv, ts = _venue.set(venue), _symbol.set(symbol)
    try:
        yield
    finally:
        _venue.reset(tv)
        _symbol.reset(ts)


def instrument_logger(logger: logging.Logger, venue: str, symbol: str | None = None) -> logging.LoggerAdapter:
    """A logger whose records carry ``venue`` and ``symbol`` (``log.warning(...)`` as usual)."""
    return logging.LoggerAdapter(logger, {"venue": venue, "symbol": symbol})


def _instrument_in_args(args: Any) -> tuple[str, str] | None:
    items = args.values() if isinstance(args, dict) else args if isinstance(args, tuple) else ()
    for a in items:
        venue, symbol = getattr(a, "venue", None), getattr(a, "symbol", None)
        if isinstance(venue, str) and isinstance(symbol, str):
            return venue, symbol
    return None


class InstrumentContextFilter(logging.Filter):
    """Sets ``record.venue``, ``record.symbol`` and ``record.instrument`` (`` [binance BTC/USDT]``
    or ``""``) on every record, from, in order: the record's ``extra`` (``instrument_logger``), an
    ``InstrumentId`` among the message arguments, the enclosing ``log_context``. Never drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        venue = getattr(record, "venue", None)
        symbol = getattr(record, "symbol", None)
        if venue is None:
            found = _instrument_in_args(record.args)
            if found is not None:
                venue, symbol = found
            else:
                venue, symbol = _venue.get(), _symbol.get()
        record.venue, record.symbol = venue, symbol
        parts = [p for p in (venue, symbol) if p]
        record.instrument = f" [{' '.join(parts)}]" if parts else ""
        return True


# ------------------------------------------------------------------------------ secrets


def _walk_secrets(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk_secrets(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _walk_secrets(v)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold: ``SecretStr`` values (LLM key, API token, exchange keys,
    Logfire token) and the passwords inside ``database_url``/``redis_url``; longest first."""
    found = set(_walk_secrets(settings))
    for url in (settings.database_url, settings.redis_url):
        if url:
            with contextlib.suppress(ValueError):
                pw = urlsplit(url).password
                if pw:
                    found.update({pw, unquote(pw)})
    return sorted((s for s in found if len(s) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every occurrence of each of ``secrets`` replaced by ``***``."""
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


# Credentials carried in a URL's query or a header, whatever their value (a wrong token a client
# sent is still a credential attempt): ``?token=...``/``&api_key=...`` and ``Bearer ...``.
_CREDENTIAL_PARAMS = ("token", "access_token", "api_key", "apikey", "key", "secret", "password", "signature")
_QUERY_CREDENTIAL = re.compile(
    r"([?&;](?:" + "|".join(_CREDENTIAL_PARAMS) + r")=)[^&;#\s\"']+", re.IGNORECASE
)
_BEARER = re.compile(r"(\bBearer\s+)[^\s\"',;]+", re.IGNORECASE)


def redact_credentials(text: str) -> str:
    """``text`` with the value of every credential query parameter (``token``, ``api_key``, ...)
    and of every ``Bearer`` credential replaced by ``***``: ``/ws/stream?symbol=BTC&token=abc`` ->
    ``/ws/stream?symbol=BTC&token=***``."""
    if "=" in text:
        text = _QUERY_CREDENTIAL.sub(r"\1***", text)
    if "earer" in text:
        text = _BEARER.sub(r"\1***", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Replaces configured secret values, and the value of any credential in a URL query or a
    ``Bearer`` header (``redact_credentials``), in a record's message and traceback by ``***``.

    Defence in depth: secrets are ``SecretStr`` and never formatted on purpose, but a third-party
    library may put a URL with a password or a request header into an error message, and uvicorn's
    access log prints every request's query string (the WebSocket's ``?token=``).

    String arguments are cleaned in place, so formatters that unpack ``record.args`` (uvicorn's
    ``AccessFormatter``) keep working; a message still holding a secret after that is replaced by
    its cleaned text."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)

    def _clean(self, text: str) -> str:
        return redact_credentials(redact(text, self.secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._clean(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = self._clean(record.msg)
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string: leave the record to the handler's error path
            return True
        clean = self._clean(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (a CLI test runner swaps it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.setStream; ignored
        pass


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Root logger and its one handler (stderr by default, with the instrument and redaction
    filters) at ``settings.log_level``. The handler has the level too, so a library that sets its
    own loggers' levels (uvicorn, Alembic) prints nothing below it either. Replaces the handler of
    an earlier call; returns it.

    Raises ``ValueError`` for an unknown level name."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise ValueError(
            f"MLM_LOG_LEVEL={settings.log_level!r}: valid levels are DEBUG, INFO, WARNING, ERROR"
        )
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
            h.close()
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(InstrumentContextFilter())
    handler.addFilter(RedactSecretsFilter(secret_values(settings)))
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# ------------------------------------------------------------------------------ logfire


def logfire_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``logfire.configure``: send only if a token is present, no console
    output unless ``observability.logfire_console``, no source inspection, default scrubbing."""
    obs = settings.observability
    return {
        "send_to_logfire": "if-token-present",
        "token": obs.logfire_token.get_secret_value() if obs.logfire_token else None,
        "service_name": obs.service_name,
        "service_version": __version__,
        "environment": obs.environment,
        "console": None if obs.logfire_console else False,
        "inspect_arguments": False,
        "metrics": False,
    }


def tracing_wanted(settings: Settings, *, span_processors: bool = False) -> tuple[bool, str]:
    """Whether spans should be made at all, and why: ``observability.tracing`` when set, else
    only when they go somewhere (a Logfire token in the settings or ``LOGFIRE_TOKEN``, Logfire's
    console output, ``OTEL_EXPORTER_OTLP_ENDPOINT``, or span processors passed by the caller)."""
    obs = settings.observability
    if obs.tracing is not None:
        return obs.tracing, f"observability.tracing={str(obs.tracing).lower()}"
    for present, why in (
        (span_processors, "span processors given"),
        (obs.logfire_token is not None, "Logfire token set"),
        (bool(os.environ.get("LOGFIRE_TOKEN")), "LOGFIRE_TOKEN set"),
        (obs.logfire_console, "Logfire console on"),
        (bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")), "OTEL_EXPORTER_OTLP_ENDPOINT set"),
    ):
        if present:
            return True, why
    return False, "no token, console, OTLP endpoint or span processor: spans would be dropped"


def skip_logfire_import(settings: Settings) -> bool:
    """In a one-shot process that makes no spans (``tracing_wanted`` is False), keep ``logfire``
    from being imported at all; True if it is kept out.

    pydantic-ai imports ``logfire_api``, which imports ``logfire`` when it is installed and falls
    back to its own no-op stand-in when that import fails (logfire_api's documented purpose:
    instrumented libraries that run without Logfire). With no spans to make, ``logfire`` and what it
    imports (OpenTelemetry, requests...) are ~0.15 s of ``mlm ask``'s start for nothing, so this
    marks it unimportable (``sys.modules["logfire"] = None``, the import system's documented way to
    make an import fail). Only before anything imported it; ``runtime.fast_exit`` and every other
    ``import logfire`` here sit where tracing is wanted or under ``contextlib.suppress``. Pair with
    ``lazy.leave_out_logfire_pydantic_plugin`` before the settings are built. Not for long-lived
    processes (the API imports Logfire once; a later ``configure_observability`` may want it)."""
    if tracing_wanted(settings)[0] or "logfire" in sys.modules or "logfire_api" in sys.modules:
        return False
    sys.modules["logfire"] = None  # type: ignore[assignment]
    return True


def _try(what: str, fn, report: dict[str, Any]) -> bool:
    try:
        fn()
    except (ImportError, RuntimeError, ModuleNotFoundError) as exc:
        # logfire raises RuntimeError naming the missing ``logfire[...]`` extra.
        report[what] = False
        report.setdefault("missing", {})[what] = str(exc).splitlines()[0]
        log.debug("observability: %s not instrumented (%s)", what, exc)
        return False
    report[what] = True
    return True


def _request_span_middleware(app) -> None:
    """One span per HTTP request when opentelemetry-instrumentation-fastapi is not installed.

    Attributes: method, path (no query string: it may carry user input), status code. Headers
    are never recorded (the Authorization header carries the API token)."""
    import logfire

    @app.middleware("http")
    async def _logfire_request_span(request, call_next):
        route = request.scope.get("route")
        with logfire.span(
            "{http.method} {http.route}",
            **{"http.method": request.method, "http.route": getattr(route, "path", request.url.path)},
        ) as span:
            response = await call_next(request)
            route = request.scope.get("route")
            if route is not None:
                span.set_attribute("http.route", route.path)
            span.set_attribute("http.status_code", response.status_code)
            return response


def configure_observability(
    settings: Settings,
    app=None,
    *,
    configure: bool = True,
    additional_span_processors: Sequence[Any] = (),
    sqlalchemy_engine=None,
) -> dict[str, Any]:
    """Configure Logfire from ``settings`` and instrument what is available.

    ``app``: a FastAPI app to instrument (``logfire.instrument_fastapi`` when
    opentelemetry-instrumentation-fastapi is installed, else a span-per-request middleware; call
    before the app starts). ``configure=False`` keeps an existing Logfire configuration (tests
    that configured it themselves). ``additional_span_processors`` go to ``logfire.configure``
    (e.g. a ``SimpleSpanProcessor(TestExporter())``). ``sqlalchemy_engine``: instrument this one
    engine instead of every engine created afterwards.

    Returns a report (also kept in ``app.state.observability``): ``tracing`` (whether spans are
    made) and ``tracing_reason`` (``tracing_wanted``), ``send_to_logfire`` (True only with a
    token), and per integration (``fastapi``, ``pydantic_ai``, ``httpx``, ``sqlalchemy``) whether
    it is instrumented; ``missing`` names the package an integration lacks. With tracing off
    nothing is configured or instrumented (a later call that wants tracing still can).
    """
    wanted, why = tracing_wanted(settings, span_processors=bool(additional_span_processors) or not configure)
    report: dict[str, Any] = {"tracing": wanted, "tracing_reason": why}
    if not wanted:
        report["send_to_logfire"] = False
        if app is not None:
            app.state.observability = report
        log.debug("observability off: %s", why)
        return report
    import logfire

    opts = logfire_options(settings)
    report["send_to_logfire"] = bool(opts["token"])
    if configure:
        if additional_span_processors:
            opts["additional_span_processors"] = list(additional_span_processors)
        logfire.configure(**opts)
    _try("pydantic_ai", lambda: logfire.instrument_pydantic_ai(), report)
    _try("httpx", lambda: logfire.instrument_httpx(), report)
    _try(
        "sqlalchemy",
        lambda: (
            logfire.instrument_sqlalchemy(engine=sqlalchemy_engine)
            if sqlalchemy_engine is not None
            else logfire.instrument_sqlalchemy()
        ),
        report,
    )
    if app is not None and (getattr(app.state, "observability", None) or {}).get("fastapi"):
        report["fastapi"] = app.state.observability["fastapi"]  # instrumented once already
    elif app is not None and importlib.util.find_spec("fastapi.telemetry") is not None:
        # FastAPI >= 0.16x makes a server span per request itself, on the global tracer
        # provider that logfire.configure installed: instrumenting again would double them.
        report["fastapi"] = "native"
    elif app is not None and not _try(
        "fastapi", lambda: logfire.instrument_fastapi(app, capture_headers=False), report
    ):
        _request_span_middleware(app)
        report["fastapi"] = "middleware"
    if app is not None:
        app.state.observability = report
    log.debug("observability configured: %s", report)
    return report


__all__ = [
    "InstrumentContextFilter",
    "RedactSecretsFilter",
    "configure_logging",
    "configure_observability",
    "instrument_logger",
    "log_context",
    "logfire_options",
    "redact",
    "redact_credentials",
    "secret_values",
]
