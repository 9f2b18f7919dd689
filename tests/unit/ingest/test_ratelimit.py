"""Token buckets on a fake clock: weights, FIFO order, Retry-After, used-weight feedback, and a
resync storm that must stay inside Binance's per-minute weight budget."""

from __future__ import annotations

import asyncio

import pytest

from market_liquidity_monitor.ingest.ratelimit import (
    VENUE_REST_BUDGETS,
    RateLimiters,
    TokenBucket,
    WeightBudget,
    WeightLimiter,
)


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s
        await asyncio.sleep(0)


async def test_bucket_spends_capacity_then_waits_for_refill():
    t = FakeTime()
    b = TokenBucket(100, 10, clock=t, sleep=t.sleep)
    assert await b.acquire(60) == 0
    assert await b.acquire(40) == 0
    # Empty: 25 tokens at 10/s take 2.5 s.
    assert await b.acquire(25) == pytest.approx(2.5)
    assert t.now == pytest.approx(1002.5)
    assert b.stats.waits == 1 and b.stats.acquired == 3 and b.stats.acquired_weight == 125
    assert not b.try_acquire(1)
    t.now += 0.1
    assert b.try_acquire(1)


async def test_bucket_refill_is_capped_at_capacity():
    t = FakeTime()
    b = TokenBucket(50, 5, clock=t, sleep=t.sleep)
    await b.acquire(50)
    t.now += 3600
    assert b.tokens == 50


async def test_oversized_weight_waits_for_full_bucket_then_goes_into_debt():
    t = FakeTime()
    b = TokenBucket(100, 10, clock=t, sleep=t.sleep)
    await b.acquire(80)
    assert await b.acquire(250) == pytest.approx(8.0)  # waits until full (100), takes 250
    assert b.tokens == pytest.approx(-150)
    assert await b.acquire(1) == pytest.approx(15.1)  # the debt is paid by the refill rate


async def test_waiters_are_served_in_arrival_order():
    t = FakeTime()
    b = TokenBucket(10, 1, clock=t, sleep=t.sleep)
    await b.acquire(10)
    order = []

    async def take(name, w):
        await b.acquire(w)
        order.append(name)

    await asyncio.gather(take("big", 8), take("small", 1), take("small2", 1))
    assert order == ["big", "small", "small2"]


async def test_retry_after_blocks_everyone_and_empties_the_bucket():
    t = FakeTime()
    b = TokenBucket(100, 10, clock=t, sleep=t.sleep)
    b.penalize(30)
    assert b.blocked_for_s == pytest.approx(30)
    assert not b.try_acquire(1)
    waited = await b.acquire(10)
    # 30 s blocked; the bucket was emptied, and refilled 300 -> capped at 100 meanwhile.
    assert waited == pytest.approx(30)
    assert b.stats.penalties == 1 and b.stats.waits == 1


async def test_used_weight_header_drains_the_bucket():
    t = FakeTime()
    lim = WeightLimiter(WeightBudget(6000, 60, "x-mbx-used-weight-1m"), clock=t, sleep=t.sleep)
    lim.observe_headers({"x-mbx-used-weight-1m": "120"})
    assert lim.tokens == lim.capacity and lim.last_used_weight == 120
    lim.observe_headers({"x-mbx-used-weight-1m": "5900"})  # another process used the budget
    assert lim.tokens == 0 and lim.stats.drained == 1
    lim.observe_headers({"x-mbx-used-weight-1m": "garbage"})
    assert lim.last_used_weight == 5900


def test_limiter_sizing_bounds_any_window_by_the_budget():
    lim = WeightLimiter(VENUE_REST_BUDGETS["binance"], burst_fraction=0.25, headroom=0.9)
    # capacity + refill * 60 s = 0.9 * 6000
    assert lim.capacity + lim.refill_per_s * 60 == pytest.approx(5400)
    assert WeightLimiter.for_venue("binanceusdm").budget.limit == 2400
    assert WeightLimiter.for_venue("some-new-venue").budget.limit == 60
    with pytest.raises(ValueError):
        WeightLimiter(WeightBudget(100), burst_fraction=1.5)
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


@pytest.mark.parametrize(("venue", "weight"), [("binance", 250), ("binance", 50), ("binanceusdm", 20)])
async def test_resync_storm_never_exceeds_the_venue_budget(venue, weight):
    """50 symbols gap at once and all request snapshots: in every 60 s window (sliding, so also every
    fixed minute) the weight sent stays within the budget, and every request is eventually served."""
    t = FakeTime()
    lim = WeightLimiter.for_venue(venue, clock=t, sleep=t.sleep)
    sent: list[float] = []

    async def snapshot():
        await lim.acquire(weight)
        sent.append(t.now)

    n = 50
    await asyncio.gather(*(snapshot() for _ in range(n)))
    assert len(sent) == n
    budget = VENUE_REST_BUDGETS[venue].limit
    for i, start in enumerate(sent):
        in_window = sum(1 for s in sent[i:] if s < start + 60.0)
        assert in_window * weight <= budget * 0.9 + 1e-6
    if n * weight > lim.capacity:
        assert lim.stats.waits > 0
        # Total time is what the refill rate dictates, not more.
        expected = (n * weight - lim.capacity) / lim.refill_per_s
        assert sent[-1] - 1000.0 == pytest.approx(expected, rel=1e-6)


def test_rate_limiters_share_one_bucket_per_venue():
    lims = RateLimiters()
    assert lims("binance") is lims("binance")
    assert lims("binance") is not lims("binanceusdm")
    assert set(lims.status()) == {"binance", "binanceusdm"}
