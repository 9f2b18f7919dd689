"""The ccxt data engine: markets, fees, order books, OHLCV and trades over ccxt's async REST clients.

One ``ccxt.async_support`` exchange object per venue, created on first use and reused (its HTTP
session, rate-limit throttle and loaded markets live in it). Every network call goes through the
venue's ``CircuitBreaker`` and an ``asyncio`` timeout, so with no network a call fails fast with
``VenueUnreachableError`` instead of hanging; after ``breaker_failure_threshold`` consecutive failures
calls are rejected without touching the network until the breaker's half-open trial succeeds.

Markets (with precision and fee schedules) are loaded once per venue, kept in the exchange object
and in the shared ``Cache`` (Redis or in-process) for ``cache_ttl_s``; OHLCV answers are cached for
the same TTL. Order books and trades are never cached. Venue rate limits are respected by ccxt's
built-in throttle (``enableRateLimit``); a venue that still answers 429 (ccxt ``DDoSProtection`` /
``RateLimitExceeded``) is held: no request goes to it until its ``Retry-After`` (seconds or an HTTP
date, RFC 9110 section 10.2.3; ``rate_limit_hold_s`` when absent, at most ``rate_limit_max_hold_s``)
has passed, and calls meanwhile raise ``VenueRateLimitedError`` at once. Other venues are unaffected.

Numbers: ccxt parses wire decimals to float. ``order_book`` and ``trades`` turn them back into
decimal strings with ccxt's ``number_to_string``; for venue prices and sizes (at most 15 significant
digits) this round-trips exactly, so the book layer keys levels the same way as for WebSocket data.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.data_engine.breaker import BreakerState, CircuitBreaker, Outcome
from market_liquidity_monitor.data_engine.cache import Cache
from market_liquidity_monitor.data_engine.errors import (
    VenueRateLimitedError,
    VenueRequestError,
    VenueUnreachableError,
)
from market_liquidity_monitor.domain.errors import (
    InvalidInputError,
    MLMError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.events import L2Snapshot, Trade
from market_liquidity_monitor.domain.instrument import InstrumentId

log = logging.getLogger(__name__)

T = TypeVar("T")
ExchangeFactory = Callable[[str], Any]

# ccxt loads every exchange class on import (seconds): it is imported on first use, so processes
# that never call a venue (``mlm --help``, ``mlm ask`` on recorded data) do not pay for it.


def _ccxt_async():
    import ccxt.async_support

    return ccxt.async_support


def _ccxt_errors():
    from ccxt.base import errors

    return errors


def _number_to_string(x):
    from ccxt.base.decimal_to_precision import number_to_string

    return number_to_string(x)


@functools.cache
def _neutral_ccxt_errors() -> tuple[type[BaseException], ...]:
    """ccxt errors that mean "the venue answered and refused this request": they say nothing about
    the venue's health, so they neither count against nor reset its breaker."""
    e = _ccxt_errors()
    return (
        e.BadRequest,  # includes BadSymbol
        e.AuthenticationError,  # includes PermissionDenied
        e.ArgumentsRequired,
        e.NotSupported,
        e.OperationRejected,
        e.InvalidOrder,
        e.InsufficientFunds,
    )


def classify_error(exc: BaseException) -> Outcome:
    """Breaker outcome of an exception raised by a ccxt call.

    Failure: timeouts, OS/socket errors, ccxt ``NetworkError`` (incl. ``RequestTimeout``,
    ``ExchangeNotAvailable``, ``DDoSProtection``, ``RateLimitExceeded``), ``BadResponse`` and any other
    ``ExchangeError``. Neutral: the request was refused (``BadRequest``/``BadSymbol``, auth,
    ``NotSupported``...), our own ``MLMError``s, and programming errors.
    """
    if isinstance(exc, MLMError):
        return Outcome.NEUTRAL
    if "ccxt" in sys.modules:  # an exception can only be a ccxt error once ccxt is imported
        ccxt_errors = _ccxt_errors()
        if isinstance(exc, _neutral_ccxt_errors()):
            return Outcome.NEUTRAL
        if isinstance(exc, ccxt_errors.OperationFailed | ccxt_errors.ExchangeError):
            return Outcome.FAILURE
    if isinstance(exc, TimeoutError | OSError):
        return Outcome.FAILURE
    return Outcome.NEUTRAL


@dataclass(frozen=True, slots=True)
class VenueHealth:
    """Health of one venue's REST access, as shown by ``/api/health`` and to the assistant.

    ``last_success_ms``/``last_failure_ms`` are wall-clock Unix milliseconds; ``retry_in_s`` is the time
    until an open breaker allows its trial call (None unless open); ``rate_limited_for_s`` the time
    until a venue that answered 429 is asked again (None unless held).
    """

    venue: str
    state: BreakerState
    consecutive_failures: int
    last_error: str | None
    last_success_ms: int | None
    last_failure_ms: int | None
    retry_in_s: float | None
    markets_loaded: bool
    rate_limited_for_s: float | None = None  # seconds no request is sent after a 429 (None: not held)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d


def point_exchange_at(exchange: Any, base_url: str) -> None:
    """Rewrite every REST URL of a ccxt exchange to go through ``base_url``.

    ``https://api.binance.com/api/v3`` becomes ``<base_url>/api.binance.com/api/v3``: a loopback
    ``RestReplayServer`` maps the first path segment back to the original host.
    """
    base = base_url.rstrip("/")

    def rewrite(value: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            return f"{base}/{value.split('://', 1)[1]}"
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        return value

    exchange.urls["api"] = rewrite(exchange.urls["api"])


def reject_non_json_success(exchange: Any) -> None:
    """Make ``exchange`` raise ccxt ``BadResponse`` for a 2xx answer whose body is not JSON.

    ccxt 4.5.90 hands such a body (a proxy or maintenance page served with 200) to the parser,
    which turns it into an empty order book or list without an error; as ``BadResponse`` it is a
    failure of the venue (counted by its breaker). Error statuses keep ccxt's own handling.
    """
    original = exchange.on_rest_response

    def on_rest_response(code, reason, url, method, response_headers, response_body, *rest):
        body = original(code, reason, url, method, response_headers, response_body, *rest)
        if 200 <= int(code) < 300 and body and body.lstrip()[:1] not in ("{", "["):
            raise _ccxt_errors().BadResponse(
                f"{exchange.id} {method} {url}: 200 with a non-JSON body: {body[:80]!r}"
            )
        return body

    exchange.on_rest_response = on_rest_response


def note_rate_limits(exchange: Any) -> None:
    """Mark ``exchange`` when a response has HTTP status 429, keeping its ``Retry-After``
    (``exchange.mlm_rate_limited``, read and cleared by ``DataEngine``). ccxt does not always say
    "rate limit" itself: 4.5.90 turns Bitstamp's 429 body (``{"status": "error", "reason":
    "Request rejected due to exceeded rate limit."}``) into a plain ``ExchangeError``."""
    original = exchange.on_rest_response

    def on_rest_response(code, reason, url, method, response_headers, response_body, *rest):
        if int(code) == 429:
            headers = response_headers or {}
            exchange.mlm_rate_limited = (
                next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None) or ""
            )
        return original(code, reason, url, method, response_headers, response_body, *rest)

    exchange.on_rest_response = on_rest_response


def default_exchange_factory(settings: Settings) -> ExchangeFactory:
    """Build ``ccxt.async_support.<venue>`` with rate limiting on and the configured timeout.

    ``load_markets`` skips ``fetch_currencies`` (``has["fetchCurrencies"] = False``): the product
    uses markets, precision and fees, not currency/network metadata, and ccxt fills ``currencies``
    from the markets. Non-JSON 2xx bodies raise ``BadResponse`` (``reject_non_json_success``); 429
    answers are marked for the rate-limit hold (``note_rate_limits``).
    """
    cfg = settings.data_engine

    def make(venue: str) -> Any:
        ccxt_async = _ccxt_async()
        cls = getattr(ccxt_async, venue, None)
        if venue not in ccxt_async.exchanges or cls is None:
            raise UnknownVenueError(venue, ccxt_async.exchanges)
        exchange = cls(
            {
                "enableRateLimit": True,
                "timeout": int(cfg.request_timeout_s * 1000),
                "has": {"fetchCurrencies": False},
            }
        )
        reject_non_json_success(exchange)
        note_rate_limits(exchange)
        if cfg.rest_base_url:
            point_exchange_at(exchange, cfg.rest_base_url)
        return exchange

    return make


def trades_params(exchange: Any, market: dict[str, Any]) -> dict[str, Any]:
    """ccxt ``fetch_trades`` params so that every venue returns individual trades.

    Binance (spot, USD-M, COIN-M): ccxt defaults to aggregate trades (``/aggTrades``: fills of one
    taker order at one price merged under an aggregate id); the WebSocket path records ``@trade``
    (one message per fill, trade ids), so REST uses the recent-trades list (``/api/v3/trades``,
    ``/fapi/v1/trades``, ``/dapi/v1/trades``) for the same granularity and ids.
    """
    if isinstance(exchange, _ccxt_async().binance) and not market.get("option"):
        api = "fapiPublic" if market.get("linear") else "dapiPublic" if market.get("inverse") else "public"
        return {"fetchTradesMethod": f"{api}GetTrades"}
    return {}


class DataEngine:
    """ccxt REST access for every venue, with a circuit breaker per venue and a shared cache.

    ``clock`` (monotonic seconds) drives the breakers and TTLs; ``wall_clock`` (Unix seconds) stamps
    health reports and ``ts_recv``. ``exchange_factory(venue)`` builds a ccxt exchange (tests point it
    at a loopback server). Build once, pass it in, ``await close()`` at shutdown.
    """

    def __init__(
        self,
        settings: Settings,
        cache: Cache,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], float] = time.time,
        exchange_factory: ExchangeFactory | None = None,
    ):
        self.settings = settings
        self.cache = cache
        self._cfg = settings.data_engine
        self._clock = clock
        self._wall_clock = wall_clock
        self._factory = exchange_factory or default_exchange_factory(settings)
        self._exchanges: dict[str, Any] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._market_locks: dict[str, asyncio.Lock] = {}
        self._markets_loaded_at: dict[str, float] = {}
        self._last_success_ms: dict[str, int] = {}
        self._last_failure_ms: dict[str, int] = {}
        self._time_offsets: dict[str, tuple[int, float]] = {}  # venue -> (server - wall ms, when)
        self._held_until: dict[str, tuple[float, str]] = {}  # venue -> (monotonic end, why)

    # -- plumbing ----------------------------------------------------------------------------
    def exchange(self, venue: str) -> Any:
        """The one ccxt exchange object of ``venue`` (created on first use). Raises ``UnknownVenueError``."""
        exchange = self._exchanges.get(venue)
        if exchange is None:
            exchange = self._factory(venue)
            self._exchanges[venue] = exchange
        return exchange

    def breaker(self, venue: str) -> CircuitBreaker:
        breaker = self._breakers.get(venue)
        if breaker is None:
            breaker = CircuitBreaker(
                venue,
                failure_threshold=self._cfg.breaker_failure_threshold,
                reset_timeout_s=self._cfg.breaker_reset_s,
                clock=self._clock,
            )
            self._breakers[venue] = breaker
        return breaker

    async def _call(self, venue: str, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one venue request under the rate-limit hold, the breaker and the request timeout;
        translate errors."""
        held = self._held_until.get(venue)
        if held is not None:
            left = held[0] - self._clock()
            if left > 0:
                raise VenueRateLimitedError(
                    venue, f"{what} not sent: {held[1]}; requests held for {left:.1f} s more", left
                )
            del self._held_until[venue]
        permit = self.breaker(venue).acquire()  # CircuitOpenError (a VenueUnreachableError) at once
        timeout_s = self._cfg.request_timeout_s
        try:
            result = await asyncio.wait_for(fn(), timeout=timeout_s)
        except asyncio.CancelledError:
            permit.release()
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and not str(exc):
                exc = TimeoutError(f"no answer within {timeout_s:g} s")
            if classify_error(exc) is Outcome.FAILURE:
                permit.failure(exc)
                self._last_failure_ms[venue] = int(self._wall_clock() * 1000)
                log.warning("%s %s failed: %s", venue, what, _short(exc))
                marked = getattr(self._exchanges.get(venue), "mlm_rate_limited", None)
                if marked is not None or isinstance(
                    exc, _ccxt_errors().DDoSProtection
                ):  # 429 / RateLimitExceeded
                    hold_s, why = self._hold(venue, marked)
                    raise VenueRateLimitedError(
                        venue, f"{what} failed: rate limited by the venue ({why}): {_short(exc)}", hold_s
                    ) from exc
                raise VenueUnreachableError(venue, f"{what} failed: {_short(exc)}") from exc
            permit.release()
            if isinstance(exc, MLMError):
                raise
            raise VenueRequestError(venue, f"{what}: {_short(exc)}") from exc
        permit.success()
        self._last_success_ms[venue] = int(self._wall_clock() * 1000)
        return result

    def _hold(self, venue: str, marked: str | None) -> tuple[float, str]:
        """Hold ``venue`` after a 429: for its ``Retry-After`` (seconds or HTTP date; ``marked`` by
        ``note_rate_limits``, else the last response headers), else ``rate_limit_hold_s``; capped
        at ``rate_limit_max_hold_s``."""
        exchange = self._exchanges.get(venue)
        if marked is not None:
            exchange.mlm_rate_limited = None
            raw = marked or None
        else:
            headers = getattr(exchange, "last_response_headers", None) or {}
            raw = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
        hold_s = retry_after_seconds(raw, self._wall_clock())
        why = f"HTTP 429, Retry-After {raw}" if hold_s is not None else "HTTP 429, no Retry-After"
        if hold_s is None:
            hold_s = self._cfg.rate_limit_hold_s
        hold_s = min(max(hold_s, 0.0), self._cfg.rate_limit_max_hold_s)
        self._held_until[venue] = (self._clock() + hold_s, f"rate limited by the venue ({why})")
        return hold_s, why

    def rate_limit_hold_s(self, venue: str) -> float | None:
        """Seconds until ``venue`` may be asked again after a 429, or None when it is not held."""
        held = self._held_until.get(venue)
        left = None if held is None else held[0] - self._clock()
        return None if left is None or left <= 0 else left

    # -- markets and fees --------------------------------------------------------------------
    async def markets(self, venue: str) -> dict[str, dict[str, Any]]:
        """ccxt unified markets of ``venue``: ``{symbol: market}`` with precision, limits, fees.

        Loaded once and kept for ``cache_ttl_s`` (in the exchange object and the shared cache). When a
        refresh fails but older markets are held, the older markets are returned (they rarely change).
        Raises ``UnknownVenueError`` or ``VenueUnreachableError``.
        """
        exchange = self.exchange(venue)
        lock = self._market_locks.setdefault(venue, asyncio.Lock())
        async with lock:
            loaded_at = self._markets_loaded_at.get(venue)
            if (
                exchange.markets
                and loaded_at is not None
                and self._clock() - loaded_at < self._cfg.cache_ttl_s
            ):
                return exchange.markets
            key = f"markets:{venue}"
            cached = await self.cache.get(key)
            if cached:
                exchange.set_markets(cached)
                self._markets_loaded_at[venue] = self._clock()
                return exchange.markets
            try:
                await self._call(venue, "load_markets", lambda: exchange.load_markets(reload=True))
            except VenueUnreachableError:
                if exchange.markets:
                    log.warning(
                        "%s: serving markets loaded %.0f s ago", venue, self._clock() - (loaded_at or 0)
                    )
                    return exchange.markets
                raise
            self._markets_loaded_at[venue] = self._clock()
            await self.cache.set(key, list(exchange.markets.values()), self._cfg.cache_ttl_s)
            return exchange.markets

    async def market(self, venue: str, symbol: str) -> dict[str, Any]:
        """One market; raises ``UnknownSymbolError`` (with close matches) when the venue lists no such symbol."""
        markets = await self.markets(venue)
        market = markets.get(symbol)
        if market is None:
            raise UnknownSymbolError(symbol, markets.keys(), venue)
        return market

    async def fee_schedule(self, venue: str, symbol: str) -> dict[str, Any]:
        """Public trading fees for ``symbol``: ``{"taker_bps", "maker_bps", "source", ...}``.

        From ccxt's market metadata (``market["taker"]``/``["maker"]``, fractions -> bps); these are the
        venue's public base-tier rates, not an account's. Falls back to the exchange-wide
        ``fees["trading"]``. A rate ccxt does not know is ``None`` (never 0).
        """
        exchange = self.exchange(venue)
        market = await self.market(venue, symbol)
        taker, maker = market.get("taker"), market.get("maker")
        source = f"ccxt {venue} market metadata of {symbol} (public base-tier rates, not account-specific)"
        from_market = not (taker is None and maker is None)
        if not from_market:
            trading = (exchange.fees or {}).get("trading", {})
            taker, maker = trading.get("taker"), trading.get("maker")
            source = f"ccxt {venue} exchange-wide default trading fees"
        return {
            "venue": venue,
            "symbol": symbol,
            "taker_bps": None if taker is None else round(float(taker) * 10_000, 6),
            "maker_bps": None if maker is None else round(float(maker) * 10_000, 6),
            "source": source,
            "from_market": from_market,
            "percentage": market.get("percentage", True),
            "tier_based": market.get("tierBased"),
        }

    # -- time ---------------------------------------------------------------------------------
    def has_venue_clock(self, venue: str) -> bool:
        """Whether the venue publishes its server time (ccxt ``fetchTime``)."""
        return bool((self.exchange(venue).has or {}).get("fetchTime"))

    async def venue_time_ms(self, venue: str) -> int:
        """The venue's "now" in epoch ms: its server time (ccxt ``fetch_time``), re-read at most every
        ``cache_ttl_s`` and carried forward on the wall clock in between; the wall clock for a venue
        without ``fetchTime`` or while its time cannot be fetched. On a real venue this is the wall
        clock within network delay; on a recorded stand-in (``mlm rest-replay``) it is the recording's time.
        """
        wall_ms = int(self._wall_clock() * 1000)
        if not self.has_venue_clock(venue):
            return wall_ms
        cached = self._time_offsets.get(venue)
        if cached is not None and self._clock() - cached[1] < self._cfg.cache_ttl_s:
            return wall_ms + cached[0]
        exchange = self.exchange(venue)
        try:
            server_ms = await self._call(venue, "fetch_time", exchange.fetch_time)
        except (VenueUnreachableError, VenueRequestError) as exc:
            log.info("%s: no server time (%s); using the wall clock", venue, exc)
            return wall_ms if cached is None else wall_ms + cached[0]
        offset = int(server_ms) - int(self._wall_clock() * 1000)
        self._time_offsets[venue] = (offset, self._clock())
        return int(server_ms)

    # -- market data -------------------------------------------------------------------------
    async def order_book(self, venue: str, symbol: str, limit: int = 100) -> L2Snapshot:
        """A REST L2 snapshot, top ``limit`` levels per side, best first.

        Returns an ``L2Snapshot`` with decimal-string levels; ``sequence`` is the venue's update id
        (Binance ``lastUpdateId``) when given, ``ts_event`` the venue time in ns when given,
        ``ts_recv`` the local receive time in ns. Raises ``UnknownSymbolError``, ``InvalidInputError``
        (limit < 1), ``VenueUnreachableError``.
        """
        if limit < 1:
            raise InvalidInputError(f"Invalid limit {limit}: must be >= 1.")
        exchange = self.exchange(venue)
        await self.market(venue, symbol)
        book = await self._call(
            venue, f"fetch_order_book({symbol})", lambda: exchange.fetch_order_book(symbol, limit)
        )
        ts_recv = int(self._wall_clock() * 1e9)
        n2s = _number_to_string
        ts_ms = book.get("timestamp")
        nonce = book.get("nonce")
        return L2Snapshot(
            instrument=InstrumentId(venue, symbol),
            bids=[(n2s(p), n2s(s)) for p, s, *_ in book["bids"][:limit]],
            asks=[(n2s(p), n2s(s)) for p, s, *_ in book["asks"][:limit]],
            sequence=int(nonce) if nonce is not None else None,
            ts_event=int(ts_ms) * 1_000_000 if ts_ms is not None else None,
            ts_recv=ts_recv,
        )

    async def ohlcv(
        self,
        venue: str,
        symbol: str,
        timeframe: str = "1m",
        since_ms: int | None = None,
        limit: int | None = 500,
    ) -> list[list[float]]:
        """Candles ``[[open_time_ms, open, high, low, close, volume], ...]`` oldest first.

        Cached for ``cache_ttl_s`` per (venue, symbol, timeframe, since_ms, limit). Raises
        ``InvalidInputError`` for a timeframe the venue does not offer (listing the valid ones),
        ``UnknownSymbolError``, ``VenueUnreachableError``.
        """
        exchange = self.exchange(venue)
        timeframes = exchange.timeframes or {}
        if timeframes and timeframe not in timeframes:
            raise InvalidInputError(
                f"Invalid timeframe {timeframe!r} for {venue}: valid timeframes are {', '.join(timeframes)}."
            )
        await self.market(venue, symbol)
        key = f"ohlcv:{venue}:{symbol}:{timeframe}:{since_ms}:{limit}"
        cached = await self.cache.get(key)
        if cached is not None:
            return cached
        rows = await self._call(
            venue,
            f"fetch_ohlcv({symbol}, {timeframe})",
            lambda: exchange.fetch_ohlcv(symbol, timeframe, since_ms, limit),
        )
        rows = [list(r) for r in rows]
        await self.cache.set(key, rows, self._cfg.cache_ttl_s)
        return rows

    async def trades(
        self, venue: str, symbol: str, since_ms: int | None = None, limit: int | None = 500
    ) -> list[Trade]:
        """Recent public trades (oldest first) as domain ``Trade``s (taker side, decimal strings,
        ``ts_event`` in ns), individual fills on every venue (``trades_params``). Never cached.
        Raises ``UnknownSymbolError``, ``VenueUnreachableError``."""
        exchange = self.exchange(venue)
        extra = trades_params(exchange, await self.market(venue, symbol))
        kwargs = {"params": extra} if extra else {}
        raw = await self._call(
            venue, f"fetch_trades({symbol})", lambda: exchange.fetch_trades(symbol, since_ms, limit, **kwargs)
        )
        ts_recv = int(self._wall_clock() * 1e9)
        n2s = _number_to_string
        instrument = InstrumentId(venue, symbol)
        out = []
        for t in raw:
            ts = t.get("timestamp")
            out.append(
                Trade(
                    instrument=instrument,
                    price=n2s(t["price"]),
                    size=n2s(t["amount"]),
                    side=str(t.get("side") or ""),
                    trade_id=str(t.get("id") or ""),
                    ts_event=int(ts) * 1_000_000 if ts is not None else None,
                    ts_recv=ts_recv,
                )
            )
        return out

    # -- health and lifecycle ----------------------------------------------------------------
    def health(self) -> list[VenueHealth]:
        """Breaker state of every configured or used venue, sorted by venue."""
        venues = sorted(set(self.settings.venues) | set(self._breakers) | set(self._exchanges))
        out = []
        for venue in venues:
            status = self.breaker(venue).status()
            exchange = self._exchanges.get(venue)
            out.append(
                VenueHealth(
                    venue=venue,
                    state=status.state,
                    consecutive_failures=status.consecutive_failures,
                    last_error=status.last_error,
                    last_success_ms=self._last_success_ms.get(venue),
                    last_failure_ms=self._last_failure_ms.get(venue),
                    retry_in_s=None if status.retry_in_s is None else round(status.retry_in_s, 3),
                    markets_loaded=bool(exchange is not None and exchange.markets),
                    rate_limited_for_s=None if (h := self.rate_limit_hold_s(venue)) is None else round(h, 3),
                )
            )
        return out

    async def close(self) -> None:
        """Close every exchange's HTTP session. Safe to call twice."""
        exchanges, self._exchanges = self._exchanges, {}
        for venue, exchange in exchanges.items():
            try:
                await exchange.close()
            except Exception as exc:  # shutting down: log and go on
                log.debug("closing %s: %s", venue, exc)


def retry_after_seconds(value: Any, now_s: float) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` value: delay-seconds or an HTTP-date
    (RFC 9110 section 10.2.3), relative to ``now_s`` (Unix seconds). None when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now_s)
    except (TypeError, ValueError, IndexError):
        return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    if not text:
        return name
    return (text if text.startswith(name) else f"{name}: {text}")[:300]
