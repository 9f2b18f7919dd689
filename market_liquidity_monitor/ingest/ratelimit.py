"""Weight-aware token buckets for venue REST budgets and outgoing WebSocket messages.

Venues meter REST calls by *weight* per IP, not by count (Binance ``GET /api/v3/depth``: weight 50
at ``limit=1000``, 250 at ``limit=5000``; budget 6000 per minute for spot, 2400 for USD-M/COIN-M —
../shared/VENUE_RULES.md §1-2). A resync storm (many books gapping at once after a reconnect) must
never exceed the budget, so every snapshot request first takes its weight from the venue's bucket.

Budget arithmetic. A token bucket of capacity ``B`` refilled at ``r`` per second can spend at most
``B + r * T`` in any interval of ``T`` seconds. Binance counts weight per fixed minute window, so
``WeightLimiter(budget)`` picks ``B + r * interval = headroom * limit``: with the defaults
(``burst_fraction=0.25``, ``headroom=0.9``) the spot bucket holds 1350 weight and refills 67.5/s, so no
60 s window — sliding or fixed — ever sees more than 5400 of the 6000 allowed.

Server feedback:

- ``penalize(retry_after_s)``: after HTTP 429/418 every caller waits until ``Retry-After`` has
  passed (Binance bans escalate from 2 min to 3 days for clients that ignore it).
- ``observe_used_weight(used, limit)``: Binance reports the IP's used weight in
  ``X-MBX-USED-WEIGHT-1M``; when another process on the same IP has used the budget the bucket is
  emptied, so the refill rate paces us from there.

Time is injected (``clock`` in seconds, ``sleep`` coroutine) so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WeightBudget:
    """A venue's REST budget: ``limit`` weight per ``interval_s`` seconds, per IP."""

    limit: int
    interval_s: float = 60.0
    # Response header carrying the used weight of the current window (None: venue sends none).
    used_weight_header: str | None = None


# Per-venue constants as data (hummingbot's habit). Sources: VENUE_RULES.md §1 (spot REQUEST_WEIGHT
# 6000/min, hummingbot binance_constants.py) and §2 (futures 2400/min, binance_perpetual_constants.py).
VENUE_REST_BUDGETS: dict[str, WeightBudget] = {
    "binance": WeightBudget(6000, 60.0, "x-mbx-used-weight-1m"),
    "binanceusdm": WeightBudget(2400, 60.0, "x-mbx-used-weight-1m"),
    "binancecoinm": WeightBudget(2400, 60.0, "x-mbx-used-weight-1m"),
}
# Unknown venues get a conservative budget (one weight-1 request per second on average).
DEFAULT_REST_BUDGET = WeightBudget(60, 60.0)

# Incoming-message limits the venue enforces on what a client sends on one WebSocket connection
# (Binance spot 5/s, futures 10/s, pings/pongs/control frames included: VENUE_RULES.md §1-2).
VENUE_WS_MESSAGES_PER_S: dict[str, float] = {"binance": 5.0, "binanceusdm": 10.0, "binancecoinm": 10.0}
DEFAULT_WS_MESSAGES_PER_S = 1.0

_EPS = 1e-6  # tokens: a wait computed as (need - tokens) / rate may land a hair short in float


@dataclass(slots=True)
class BucketStats:
    acquired: int = 0  # calls that got their weight
    acquired_weight: int = 0
    waits: int = 0  # calls that had to wait (budget or Retry-After)
    waited_s: float = 0.0
    penalties: int = 0  # Retry-After blocks applied (HTTP 429/418)
    drained: int = 0  # times the server's used-weight header emptied the bucket

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class TokenBucket:
    """A FIFO token bucket: ``await acquire(weight)`` returns once ``weight`` tokens were taken.

    ``capacity`` tokens at most, refilled continuously at ``refill_per_s``. A weight above the
    capacity waits for a full bucket and then leaves it in debt (negative tokens), so oversized
    requests are still bounded by the refill rate. Waiters are served in arrival order (one lock),
    so a large request is not starved by a stream of small ones.

    Raises ``ValueError`` for a non-positive capacity or rate, or a negative weight.
    """

    def __init__(
        self,
        capacity: float,
        refill_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        name: str = "",
    ):
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError(
                f"token bucket needs capacity > 0 and refill_per_s > 0, got {capacity}, {refill_per_s}"
            )
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(capacity)
        self._last = clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        self.stats = BucketStats()

    # ---------------------------------------------------------------- state

    def _refill(self) -> float:
        now = self._clock()
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.refill_per_s)
            self._last = now
        return now

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    @property
    def blocked_for_s(self) -> float:
        """Seconds left of a Retry-After block (0 when not blocked)."""
        return max(0.0, self._blocked_until - self._clock())

    # ------------------------------------------------------------------ API

    def try_acquire(self, weight: float = 1) -> bool:
        """Take ``weight`` now if available (and not blocked, and nobody is queued); never waits."""
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        now = self._refill()
        if (
            self._lock.locked()
            or now < self._blocked_until
            or self._tokens < min(weight, self.capacity) - _EPS
        ):
            return False
        self._take(weight)
        return True

    async def acquire(self, weight: float = 1) -> float:
        """Wait until ``weight`` tokens are available and take them. Returns the seconds waited."""
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        need = min(weight, self.capacity)
        waited = 0.0
        async with self._lock:
            while True:
                now = self._refill()
                if now < self._blocked_until:
                    delay = self._blocked_until - now
                elif self._tokens >= need - _EPS:  # tolerance: refill arithmetic is float
                    break
                else:
                    delay = (need - self._tokens) / self.refill_per_s
                waited += delay
                await self._sleep(delay)
            self._take(weight)
        if waited > 0:
            self.stats.waits += 1
            self.stats.waited_s += waited
        return waited

    def _take(self, weight: float) -> None:
        self._tokens -= weight
        self.stats.acquired += 1
        self.stats.acquired_weight += int(weight)

    def penalize(self, retry_after_s: float) -> None:
        """Block every caller for ``retry_after_s`` (an HTTP 429/418 ``Retry-After``) and empty the bucket."""
        now = self._refill()
        self._blocked_until = max(self._blocked_until, now + max(0.0, retry_after_s))
        self._tokens = min(self._tokens, 0.0)
        self.stats.penalties += 1

    def drain(self) -> None:
        """Empty the bucket (the venue says the budget is used up); refill paces from here."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)
        self.stats.drained += 1

    def status(self) -> dict:
        d = self.stats.as_dict()
        d.update(
            name=self.name,
            capacity=self.capacity,
            refill_per_s=self.refill_per_s,
            tokens=round(self.tokens, 3),
            blocked_for_s=round(self.blocked_for_s, 3),
        )
        return d


class WeightLimiter(TokenBucket):
    """A venue's REST weight bucket, sized from its ``WeightBudget`` (see the module docstring)."""

    def __init__(
        self,
        budget: WeightBudget,
        *,
        burst_fraction: float = 0.25,
        headroom: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        name: str = "",
    ):
        if not 0 < burst_fraction < 1 or not 0 < headroom <= 1:
            raise ValueError(
                f"need 0 < burst_fraction < 1 and 0 < headroom <= 1, got {burst_fraction}, {headroom}"
            )
        usable = budget.limit * headroom
        super().__init__(
            capacity=usable * burst_fraction,
            refill_per_s=usable * (1 - burst_fraction) / budget.interval_s,
            clock=clock,
            sleep=sleep,
            name=name,
        )
        self.budget = budget
        self.headroom = headroom
        self.last_used_weight: int | None = None

    @classmethod
    def for_venue(cls, venue: str, **kwargs) -> WeightLimiter:
        """The limiter for a ccxt venue id (``DEFAULT_REST_BUDGET`` for venues not in the table)."""
        return cls(VENUE_REST_BUDGETS.get(venue, DEFAULT_REST_BUDGET), name=venue, **kwargs)

    def observe_headers(self, headers) -> None:
        """Read the venue's used-weight header (if any) from a response's headers mapping."""
        h = self.budget.used_weight_header
        if h is None:
            return
        raw = headers.get(h)
        if raw is None:
            return
        try:
            used = int(raw)
        except ValueError:
            return
        self.observe_used_weight(used)

    def observe_used_weight(self, used: int) -> None:
        """The venue's count of weight used this window; at or above our headroom, empty the bucket."""
        self.last_used_weight = used
        if used >= self.budget.limit * self.headroom:
            log.warning(
                "%s: venue reports used weight %d of %d; pausing REST calls to the refill rate",
                self.name,
                used,
                self.budget.limit,
            )
            self.drain()

    def status(self) -> dict:
        d = super().status()
        d.update(
            limit=self.budget.limit, interval_s=self.budget.interval_s, last_used_weight=self.last_used_weight
        )
        return d


class RateLimiters:
    """One ``WeightLimiter`` per venue, shared by every connection of the process (budgets are per IP)."""

    def __init__(self, **limiter_kwargs):
        self._kwargs = limiter_kwargs
        self._by_venue: dict[str, WeightLimiter] = {}

    def __call__(self, venue: str) -> WeightLimiter:
        lim = self._by_venue.get(venue)
        if lim is None:
            lim = self._by_venue[venue] = WeightLimiter.for_venue(venue, **self._kwargs)
        return lim

    def status(self) -> dict[str, dict]:
        return {v: lim.status() for v, lim in sorted(self._by_venue.items())}


def ws_message_pacer(
    venue: str,
    *,
    fraction: float = 0.8,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> TokenBucket:
    """A bucket that spaces outgoing WebSocket messages evenly at ``fraction`` of the venue's limit
    (capacity 1: no bursts, since the venue counts per second and its own pongs count too)."""
    rate = VENUE_WS_MESSAGES_PER_S.get(venue, DEFAULT_WS_MESSAGES_PER_S) * fraction
    return TokenBucket(1, rate, clock=clock, sleep=sleep, name=f"{venue}:ws-out")
