"""Circuit breaker lifecycle on an injected clock: closed -> open -> half-open (one trial) -> closed/open."""

from __future__ import annotations

import asyncio

import pytest

from market_liquidity_monitor.data_engine.breaker import BreakerState, CircuitBreaker, Outcome
from market_liquidity_monitor.data_engine.errors import CircuitOpenError, VenueUnreachableError


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def make(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("binance", failure_threshold=5, reset_timeout_s=30.0, clock=clock)


def fail(breaker: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        breaker.acquire().failure(ConnectionError("refused"))


def test_opens_after_five_consecutive_failures_and_rejects_fast() -> None:
    clock = FakeClock()
    br = make(clock)
    fail(br, 4)
    assert br.state is BreakerState.CLOSED
    assert br.consecutive_failures == 4
    fail(br)
    assert br.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        br.acquire()
    err = info.value
    assert isinstance(err, VenueUnreachableError)
    assert err.venue == "binance"
    assert err.retry_after_s == pytest.approx(30.0)
    assert "unreachable" in str(err) and "5 consecutive failures" in str(err) and "refused" in str(err)
    clock.advance(29.9)
    with pytest.raises(CircuitOpenError):
        br.acquire()
    assert br.status().retry_in_s == pytest.approx(0.1)


def test_success_resets_the_count() -> None:
    br = make(FakeClock())
    fail(br, 4)
    br.acquire().success()
    assert br.consecutive_failures == 0
    fail(br, 4)
    assert br.state is BreakerState.CLOSED


def test_neutral_errors_do_not_reset_the_count_of_a_flapping_venue() -> None:
    br = make(FakeClock())
    for _ in range(4):
        fail(br)
        br.acquire().release()  # e.g. BadSymbol: the venue answered, but this says nothing about health
    assert br.consecutive_failures == 4
    assert br.state is BreakerState.CLOSED
    fail(br)
    assert br.state is BreakerState.OPEN


def test_half_open_after_timeout_allows_exactly_one_trial() -> None:
    clock = FakeClock()
    br = make(clock)
    fail(br, 5)
    clock.advance(30.0)
    assert br.state is BreakerState.HALF_OPEN
    trial = br.acquire()
    assert trial.trial
    # While the trial is in flight every other call is rejected at once.
    for _ in range(3):
        with pytest.raises(CircuitOpenError) as info:
            br.acquire()
        assert "trial call is in flight" in str(info.value)
    assert br.status().trial_in_flight
    trial.success()
    assert br.state is BreakerState.CLOSED
    assert br.consecutive_failures == 0
    assert not br.acquire().trial


def test_failed_trial_reopens_for_another_full_timeout() -> None:
    clock = FakeClock()
    br = make(clock)
    fail(br, 5)
    assert br.times_opened == 1
    clock.advance(31.0)
    br.acquire().failure(TimeoutError("no answer"))
    assert br.state is BreakerState.OPEN
    assert br.times_opened == 2
    assert br.consecutive_failures == 6
    clock.advance(29.0)
    with pytest.raises(CircuitOpenError):
        br.acquire()
    clock.advance(1.0)
    assert br.acquire().trial


def test_neutral_or_cancelled_trial_frees_the_slot_and_stays_half_open() -> None:
    clock = FakeClock()
    br = make(clock)
    fail(br, 5)
    clock.advance(30.0)
    br.acquire().release()
    assert br.state is BreakerState.HALF_OPEN
    assert br.consecutive_failures == 5  # not reset by a neutral answer
    second = br.acquire()
    assert second.trial
    second.success()
    assert br.state is BreakerState.CLOSED


def test_stale_results_from_before_the_outage_do_not_close_an_open_breaker() -> None:
    clock = FakeClock()
    br = make(clock)
    slow = br.acquire()  # started while closed
    fail(br, 5)
    assert br.state is BreakerState.OPEN
    slow.success()  # a late answer from before the breaker opened
    assert br.state is BreakerState.OPEN
    assert br.last_success_at == clock()
    clock.advance(30.0)
    trial = br.acquire()
    late = slow  # already reported: further reports are ignored
    late.failure("ignored")
    trial.success()
    assert br.state is BreakerState.CLOSED


def test_permit_reports_only_once() -> None:
    br = make(FakeClock())
    p = br.acquire()
    p.failure("x")
    p.failure("x")
    p.success()
    assert br.consecutive_failures == 1
    assert br.total_failures == 1


async def test_call_classifies_and_releases_on_cancel() -> None:
    clock = FakeClock()
    br = make(clock)

    async def boom() -> None:
        raise ConnectionError("down")

    async def bad_request() -> None:
        raise ValueError("bad symbol")

    def classify(exc: BaseException) -> Outcome:
        return Outcome.NEUTRAL if isinstance(exc, ValueError) else Outcome.FAILURE

    for _ in range(4):
        with pytest.raises(ConnectionError):
            await br.call(boom, classify)
        with pytest.raises(ValueError):
            await br.call(bad_request, classify)
    assert br.consecutive_failures == 4
    with pytest.raises(ConnectionError):
        await br.call(boom, classify)
    assert br.state is BreakerState.OPEN

    clock.advance(30.0)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(br.call(hang, classify))
    await started.wait()
    with pytest.raises(CircuitOpenError):
        await br.call(boom, classify)  # the hanging trial holds the slot
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert br.state is BreakerState.HALF_OPEN

    async def ok() -> str:
        return "ok"

    assert await br.call(ok, classify) == "ok"
    assert br.state is BreakerState.CLOSED


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", reset_timeout_s=-1)


def test_different_failure_kinds_count_together() -> None:
    # A venue failing in varied ways (timeout, 503, refused, 429) is still failing consecutively.
    br = make(FakeClock())
    for exc in (TimeoutError("t"), RuntimeError("HTTP 503"), ConnectionRefusedError(), RuntimeError("429")):
        br.acquire().failure(exc)
        br.acquire().release()
    assert br.consecutive_failures == 4
    br.acquire().failure(TimeoutError("again"))
    assert br.state is BreakerState.OPEN
    assert br.last_error == "TimeoutError: again"
