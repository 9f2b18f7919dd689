"""Errors raised by the ccxt data engine.

``VenueUnreachableError`` is the one result a caller (tool, API route) needs to handle for "the venue
did not answer": no network, DNS failure, timeout, HTTP 5xx/429, or the venue's circuit breaker is
open. It is raised fast (never a hang) and its message says which venue, why, and when a retry makes
sense.
"""

from __future__ import annotations

from market_liquidity_monitor.domain.errors import MLMError


class VenueUnreachableError(MLMError):
    """The venue could not be reached or did not answer in time.

    ``venue`` is the ccxt id, ``reason`` a short human-readable cause, ``retry_after_s`` how long the
    circuit breaker will keep rejecting calls (None when the breaker is not open).
    """

    def __init__(self, venue: str, reason: str, retry_after_s: float | None = None):
        self.venue = venue
        self.reason = reason
        self.retry_after_s = retry_after_s
        retry = f" Retry in {retry_after_s:.1f} s." if retry_after_s is not None else ""
        super().__init__(f"Venue {venue!r} unreachable: {reason}.{retry}")


class CircuitOpenError(VenueUnreachableError):
    """The venue's circuit breaker is open (or half-open with its single trial call in flight)."""


class VenueRateLimitedError(VenueUnreachableError):
    """The venue rate-limited us (HTTP 429 / ccxt ``DDoSProtection``): no request is sent to it
    until ``retry_after_s`` has passed (its ``Retry-After``, else the configured hold)."""


class VenueRequestError(MLMError):
    """The venue answered, but refused the request (bad parameters, unsupported call, auth needed).

    Such answers do not count against the venue's circuit breaker.
    """

    def __init__(self, venue: str, reason: str):
        self.venue = venue
        self.reason = reason
        super().__init__(f"Venue {venue!r} rejected the request: {reason}")
