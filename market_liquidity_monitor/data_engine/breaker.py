"""A per-venue circuit breaker: closed -> open -> half-open -> closed.

Rules (DESIGN.md, "The data engine"):

* **closed**: calls pass. Each *failure* adds one to ``consecutive_failures``; a *success* resets it
  to 0. At ``failure_threshold`` (default 5) consecutive failures the breaker opens.
* **open**: calls are rejected at once with ``CircuitOpenError`` (no network I/O), until
  ``reset_timeout_s`` (default 30 s) has passed since it opened.
* **half-open**: exactly one *trial* call is let through; every other call is rejected while it is
  in flight. Trial success -> closed (count reset). Trial failure -> open again for another
  ``reset_timeout_s``. A trial that ends *neutrally* (see below) or is cancelled frees the slot and
  the breaker stays half-open, so the next call becomes the trial.

Outcomes are classified by the caller: a **failure** says the venue is unhealthy (network error,
timeout, HTTP 5xx, rate limited); a **neutral** outcome says the venue answered but refused the
request (bad symbol, unsupported call). Neutral outcomes neither count nor reset the failure count,
so a flapping venue cannot keep its breaker closed by interleaving such errors between failures; only
a real success resets it.

Calls that started under an earlier state (e.g. in flight when the breaker opened) are "stale":
their successes and failures are counted in the statistics but do not move the state machine, so
late answers from before the outage cannot close an open breaker behind the trial rule's back.

Time comes from an injected ``clock`` (seconds, monotonic), so the lifecycle is tested without
sleeping (hummingbot's injectable time hooks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from market_liquidity_monitor.data_engine.errors import CircuitOpenError

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """A read-only view of a breaker for health reports. Times are ``clock`` seconds."""

    name: str
    state: BreakerState
    consecutive_failures: int
    total_failures: int
    times_opened: int
    last_error: str | None
    last_failure_at: float | None
    last_success_at: float | None
    # Seconds until an open breaker lets a trial call through (0.0 when it would now); None otherwise.
    retry_in_s: float | None
    trial_in_flight: bool


class Permit:
    """The right to make one call. Report exactly one outcome: ``success()``, ``failure(exc)`` or
    ``release()`` (neutral / cancelled); later reports are ignored."""

    __slots__ = ("_breaker", "_done", "epoch", "trial")

    def __init__(self, breaker: CircuitBreaker, epoch: int, trial: bool):
        self._breaker = breaker
        self._done = False
        self.epoch = epoch
        self.trial = trial

    def success(self) -> None:
        if not self._done:
            self._done = True
            self._breaker._record(self, Outcome.SUCCESS, None)

    def failure(self, error: BaseException | str | None = None) -> None:
        if not self._done:
            self._done = True
            self._breaker._record(self, Outcome.FAILURE, error)

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._breaker._record(self, Outcome.NEUTRAL, None)


def _always_failure(_exc: BaseException) -> Outcome:
    return Outcome.FAILURE


class CircuitBreaker:
    """Circuit breaker for one venue. Not thread-safe; use from one event loop."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_timeout_s < 0:
            raise ValueError(f"reset_timeout_s must be >= 0, got {reset_timeout_s}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        # Bumped on every state change; permits from an older epoch are stale.
        self._epoch = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self.consecutive_failures = 0
        self.total_failures = 0
        self.times_opened = 0
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self.last_success_at: float | None = None

    # -- state -------------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose timeout has elapsed reports ``HALF_OPEN``."""
        if self._state is BreakerState.OPEN and self._retry_in() <= 0.0:
            return BreakerState.HALF_OPEN
        return self._state

    def _retry_in(self) -> float:
        assert self._opened_at is not None
        return max(0.0, self._opened_at + self.reset_timeout_s - self._clock())

    def status(self) -> BreakerStatus:
        state = self.state
        return BreakerStatus(
            name=self.name,
            state=state,
            consecutive_failures=self.consecutive_failures,
            total_failures=self.total_failures,
            times_opened=self.times_opened,
            last_error=self.last_error,
            last_failure_at=self.last_failure_at,
            last_success_at=self.last_success_at,
            retry_in_s=self._retry_in() if self._state is BreakerState.OPEN else None,
            trial_in_flight=self._trial_in_flight,
        )

    def _transition(self, state: BreakerState) -> None:
        self._state = state
        self._epoch += 1
        if state is BreakerState.OPEN:
            self._opened_at = self._clock()
            self.times_opened += 1
            self._trial_in_flight = False
        elif state is BreakerState.CLOSED:
            self._opened_at = None
            self._trial_in_flight = False
            self.consecutive_failures = 0

    # -- calls -------------------------------------------------------------------------------
    def acquire(self) -> Permit:
        """Return a ``Permit`` for one call, or raise ``CircuitOpenError`` at once."""
        if self._state is BreakerState.CLOSED:
            return Permit(self, self._epoch, trial=False)
        if self._state is BreakerState.OPEN:
            retry_in = self._retry_in()
            if retry_in > 0.0:
                raise CircuitOpenError(
                    self.name,
                    f"circuit open after {self.consecutive_failures} consecutive failures"
                    f" (last error: {self.last_error})",
                    retry_after_s=retry_in,
                )
            self._transition(BreakerState.HALF_OPEN)
        # HALF_OPEN: a single trial at a time.
        if self._trial_in_flight:
            raise CircuitOpenError(
                self.name,
                f"circuit half-open, a trial call is in flight (last error: {self.last_error})",
                retry_after_s=None,
            )
        self._trial_in_flight = True
        return Permit(self, self._epoch, trial=True)

    def _record(self, permit: Permit, outcome: Outcome, error: BaseException | str | None) -> None:
        now = self._clock()
        if outcome is Outcome.SUCCESS:
            self.last_success_at = now
        elif outcome is Outcome.FAILURE:
            self.total_failures += 1
            self.last_failure_at = now
            self.last_error = _describe(error)

        if permit.epoch != self._epoch:
            return  # stale permit: started before the last state change; statistics only

        if self._state is BreakerState.CLOSED:
            if outcome is Outcome.SUCCESS:
                self.consecutive_failures = 0
            elif outcome is Outcome.FAILURE:
                self._count_failure()
            return

        if self._state is BreakerState.HALF_OPEN and permit.trial:
            self._trial_in_flight = False
            if outcome is Outcome.SUCCESS:
                self._transition(BreakerState.CLOSED)
            elif outcome is Outcome.FAILURE:
                self.consecutive_failures += 1
                self._transition(BreakerState.OPEN)
            # NEUTRAL: stay half-open; the next call becomes the trial.

    def _count_failure(self) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.failure_threshold:
            self._transition(BreakerState.OPEN)

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        classify: Callable[[BaseException], Outcome] = _always_failure,
    ) -> T:
        """Run ``fn()`` under the breaker. Exceptions are re-raised after being classified;
        cancellation frees a trial slot without counting."""
        permit = self.acquire()
        try:
            result = await fn()
        except asyncio.CancelledError:
            permit.release()
            raise
        except BaseException as exc:
            outcome = classify(exc)
            if outcome is Outcome.FAILURE:
                permit.failure(exc)
            elif outcome is Outcome.SUCCESS:
                permit.success()
            else:
                permit.release()
            raise
        permit.success()
        return result


def _describe(error: BaseException | str | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, str):
        return error
    text = str(error).strip() or type(error).__name__
    name = type(error).__name__
    text = text if text.startswith(name) else f"{name}: {text}"
    return text[:300]
