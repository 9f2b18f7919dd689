"""Alerts and liquidity crunches on a real recorded book: the hftbacktest Binance spot BTCUSDT capture
of 2024-08-08 23:54-23:59 UTC (REST snapshot + diff depth + trades), replayed through the same
adapters and BookStore a live feed uses, with the AlertService sampling the book every 2 depth
updates (about every 0.2 s of the recording).

Checks: the sampled depth equals the float analytics on the same book; the crunch detector's
episodes equal an independent pure-Python recomputation; a spread rule fires exactly when a
plain re-implementation of "above threshold, not within the cooldown" says so, and the cooldown
suppresses real repeats; events are stored, listed and pushed on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from market_liquidity_monitor.alerts_service import AlertService
from market_liquidity_monitor.analytics.alerts import AlertEvent, AlertRule, depth_key, evaluate_rules
from market_liquidity_monitor.analytics.liquidity import depth_within_bps, top_of_book
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import Replayer, read_hftbacktest
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.migrations import upgrade_async
from market_liquidity_monitor.venues.registry import AdapterRegistry

SAMPLE_EVERY = 2  # depth updates (REST snapshot included)
ONE_TICK_BPS = 0.002  # BTCUSDT tick 0.01 at ~61,000 USDT is 0.0016 bps: "spread wider than one tick"
COOLDOWN_S = 15.0
WINDOW_BPS = 10.0


def _records(data_dir: Path):
    return read_hftbacktest(data_dir / "hftbacktest" / "spot" / "btcusdt_20240808.gz", "binance", "BTCUSDT")


@dataclass
class Run:
    service: AlertService
    events: list[AlertEvent]
    checks: list[tuple[dict, dict]]  # (observation values, analytics on the same book)
    samples: int


@pytest.fixture(scope="module")
def spot_run(data_dir: Path) -> Run:
    reg = AdapterRegistry()
    clock = ReplayClock()
    store = BookStore(reg, windows_bps=(10, 25, 50, 100), clock=clock)
    service = AlertService(store, watch_symbols=["BTC/USDT"])
    spread_rule = AlertRule(
        symbol="BTC/USDT", venue="binance", metric="spread_bps", comparison="above",
        threshold=ONE_TICK_BPS, cooldown_s=COOLDOWN_S,
    )  # fmt: skip
    asyncio.run(service.create_rule(spread_rule))
    events: list[AlertEvent] = []
    checks: list[tuple[dict, dict]] = []
    n_depth = itertools.count(1)
    n_sample = itertools.count(1)

    def on_record(rec, evs) -> None:
        if not any(isinstance(e, L2Delta | L2Snapshot) for e in evs) or next(n_depth) % SAMPLE_EVERY:
            return
        events.extend(service.sample())
        if next(n_sample) % 97 == 0:  # an independent look at the same book now and then
            view = store.view("binance", "BTC/USDT")
            d = depth_within_bps(view, WINDOW_BPS)
            tob = top_of_book(view)
            obs = service.observations("binance", "BTC/USDT")[-1]
            checks.append((dict(obs.values), {"d": d, "tob": tob}))

    Replayer(store, reg, clock=clock).run(_records(data_dir), on_record=on_record)
    return Run(service, events, checks, next(n_sample) - 1)


def test_sampled_depth_matches_analytics_on_the_same_book(spot_run: Run) -> None:
    obs = spot_run.service.observations("binance", "BTC/USDT")
    assert len(obs) > 1000  # the book changes at every depth update: one observation per sample
    assert len(spot_run.checks) >= 10
    for values, ref in spot_run.checks:
        d, tob = ref["d"], ref["tob"]
        assert values["mid_price"] == tob.mid_price
        assert values["spread_bps"] == pytest.approx(tob.spread_bps, rel=1e-12)
        assert values[depth_key("bid", "size", WINDOW_BPS)] == pytest.approx(d.bid_size, rel=1e-9)
        assert values[depth_key("ask", "notional", WINDOW_BPS)] == pytest.approx(d.ask_notional, rel=1e-9)
        assert values[depth_key("bid", "notional", WINDOW_BPS)] > 0


def _reference_crunches(depth: list[float], n: int, drop: float, rec: float) -> list[tuple]:
    """Plain-Python crunch episodes (onset, trough, recovery, baseline), from the definition."""
    out, t = [], n
    while t < len(depth):
        if depth[t] < drop * statistics.median(depth[t - n : t]):
            base = statistics.median(depth[t - n : t])
            j = t + 1
            while j < len(depth) and depth[j] < rec * base:
                j += 1
            seg = depth[t:j]
            trough = t + seg.index(min(seg))
            out.append((t, trough, j if j < len(depth) else None, base))
            if j >= len(depth):
                break
            t = j
        else:
            t += 1
    return out


def test_crunch_episodes_match_independent_recomputation(spot_run: Run) -> None:
    svc = spot_run.service
    rep = svc.crunches("BTC/USDT", WINDOW_BPS, baseline_n=60, drop_ratio=0.6, recovery_ratio=0.8)
    obs = svc.observations("binance", "BTC/USDT")
    depth = [
        o.values[depth_key("bid", "notional", 10)] + o.values[depth_key("ask", "notional", 10)] for o in obs
    ]
    ref = _reference_crunches(depth, 60, 0.6, 0.8)
    assert rep.n_observations == len(depth) and rep.venues == ("binance",)
    assert len(rep.episodes) >= 1  # real drops of the 10 bps depth to < 60% of its rolling median
    got = [(e.onset_index, e.trough_index, e.recovery_index, e.baseline_depth) for e in rep.episodes]
    assert got == [(a, b, c, pytest.approx(base, rel=1e-12)) for a, b, c, base in ref]
    for e in rep.episodes:
        assert e.trough_depth == depth[e.trough_index]
        assert e.drop_pct == pytest.approx((1 - e.trough_depth / e.baseline_depth) * 100)
        assert e.drop_pct > 40 and e.onset_ts_ns <= e.trough_ts_ns
        assert e.hhi_onset == 1.0 and e.hhi_change == 0.0  # one venue holds all the depth
        if e.recovered:
            assert e.recovery_ts_ns > e.onset_ts_ns and e.duration_s > 0
    print(
        f"\n{len(rep.episodes)} crunch(es) of BTC/USDT depth within 10 bps on binance ({rep.first_ts}..{rep.last_ts}): "
        + "; ".join(
            f"{e.onset_ts} -{e.drop_pct:.1f}% of {e.baseline_depth / 1e6:.2f}M USDT" for e in rep.episodes
        )
    )


def test_spread_rule_fires_with_cooldown_on_real_data(spot_run: Run) -> None:
    obs = spot_run.service.observations("binance", "BTC/USDT")
    above = [o for o in obs if o.values["spread_bps"] > ONE_TICK_BPS]
    expected, last = [], None
    for o in above:
        if last is None or o.ts_ns - last >= COOLDOWN_S * 1e9:
            expected.append(o.ts_ns)
            last = o.ts_ns
    events = spot_run.events
    assert [e.ts_ns for e in events] == expected
    assert len(events) >= 2 and len(events) < len(above)  # fired, and the cooldown held real repeats back
    gaps = [b.ts_ns - a.ts_ns for a, b in itertools.pairwise(events)]
    assert min(gaps) >= COOLDOWN_S * 1e9
    for e in events:
        assert e.value > ONE_TICK_BPS and e.venue == "binance" and e.symbol == "BTC/USDT"
        assert e.book_ts is not None and "spread_bps" in e.message
    # evaluated as data arrived == evaluated afterwards over the whole series
    (rule,) = asyncio.run(spot_run.service.list_rules())
    assert [(e.ts_ns, e.value) for e in evaluate_rules([rule], obs)] == [(e.ts_ns, e.value) for e in events]
    # re-arming only after the spread is back to one tick gives at most as many events
    clear = AlertRule(**{**rule.to_dict(), "rearm": "clear", "cooldown_s": 0.0})
    assert 0 < len(evaluate_rules([clear], obs)) <= len(above)
    print(
        f"\nspread > 1 tick: {len(above)} observations, {len(events)} events with a {COOLDOWN_S:g} s cooldown"
    )


# ---------------------------------------------------------------- storage (SQLite, PostgreSQL)


async def _pg_url_or_skip() -> str:
    url = os.environ.get("MLM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("MLM_TEST_POSTGRES_URL not set")
    probe = Database(url)
    try:
        async with asyncio.timeout(5):
            async with probe.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {url} not reachable: {exc}")
    finally:
        await probe.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path):
    """A migrated database per test; PostgreSQL in its own schema, dropped afterwards."""
    if request.param == "sqlite":
        url, schema = f"sqlite+aiosqlite:///{(tmp_path / 'alerts.sqlite3').as_posix()}", None
    else:
        url, schema = await _pg_url_or_skip(), f"mlm_test_{uuid.uuid4().hex[:12]}"
    await upgrade_async(url, schema=schema)
    db = Database(url, schema=schema)
    try:
        yield db
    finally:
        if schema is not None:
            async with db.engine.begin() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await db.dispose()


async def test_rules_and_events_are_stored_and_pushed(database: Database, data_dir: Path) -> None:
    reg = AdapterRegistry()
    clock = ReplayClock()
    store = BookStore(reg, windows_bps=(10, 50), clock=clock)
    service = AlertService(store, db=database)
    await service.start()
    rule = await service.create_rule(
        {"symbol": "BTC/USDT", "metric": "depth_notional", "comparison": "above", "threshold": 1.0,
         "window_bps": 50, "side": "bid", "cooldown_s": 5.0}
    )  # fmt: skip
    other = await service.create_rule(
        {
            "symbol": "ETH/USDT",
            "venue": "binance",
            "metric": "spread_bps",
            "comparison": "above",
            "threshold": 0,
        }
    )
    assert rule.id is not None and other.id != rule.id
    pushed: list[AlertEvent] = []

    async def subscriber(e: AlertEvent) -> None:
        pushed.append(e)

    unsubscribe = service.subscribe(subscriber)
    # the first ~40 s of the recording (bid depth within 50 bps is always > 1 USDT: fires every 5 s)
    first_ts = next(_records(data_dir)).ts_recv_ns
    records = itertools.takewhile(lambda r: r.ts_recv_ns < first_ts + 40 * 10**9, _records(data_dir))
    n = itertools.count(1)

    def on_record(rec, evs) -> None:
        if any(isinstance(e, L2Delta | L2Snapshot) for e in evs) and next(n) % SAMPLE_EVERY == 0:
            service.sample()

    Replayer(store, reg, clock=clock).run(records, on_record=on_record)
    fired = await service.flush()
    assert 5 <= len(fired) <= 9  # about 35 s of synced book / 5 s cooldown
    assert all(e.id is not None and e.rule_id == rule.id for e in fired)
    assert [e.id for e in pushed] == [e.id for e in fired]
    recent = await service.recent_events(limit=3, symbol="btc/usdt")
    assert [e.id for e in recent] == [e.id for e in sorted(fired, key=lambda e: e.ts_ns, reverse=True)[:3]]
    assert recent[0] == next(e for e in fired if e.id == recent[0].id)  # the stored event is the fired one
    assert await service.recent_events(symbol="ETH/USDT") == []
    unsubscribe()
    # a new service on the same database finds the rules
    again = AlertService(store, db=database)
    await again.start()
    assert [r.to_dict() for r in await again.list_rules()] == [r.to_dict() for r in (rule, other)]
    assert await again.delete_rule(rule.id) and not await again.delete_rule(rule.id)
    assert await again.recent_events() == []  # events go with their rule
    assert [r.id for r in await again.list_rules()] == [other.id]


async def test_service_queries_and_errors_in_memory(spot_run: Run) -> None:
    svc = spot_run.service
    await svc.flush()  # the replay only sampled: store (here: keep in memory) what fired
    recent = await svc.recent_events(limit=2, symbol="BTC/USDT", venue="binance")
    assert [e.ts_ns for e in recent] == sorted((e.ts_ns for e in spot_run.events), reverse=True)[:2]
    assert await svc.recent_events(symbol="ETH/USDT") == []
    with pytest.raises(InvalidInputError, match="limit must be an integer in"):
        await svc.recent_events(limit=0)
    with pytest.raises(InvalidInputError, match="not sampled; sampled windows \\(bps\\): 10, 25, 50, 100"):
        svc.crunches("BTC/USDT", 33)
    with pytest.raises(InvalidInputError, match="no observation of ETH/USDT yet; observed: BTC/USDT"):
        svc.crunches("ETH/USDT", 10)
    with pytest.raises(InvalidInputError, match="observed on: binance"):
        svc.crunches("BTC/USDT", 10, venue="kraken")
    with pytest.raises(
        InvalidInputError, match="needs 5000 observations of history; this evaluator keeps 4096"
    ):
        await svc.create_rule(
            AlertRule(symbol="BTC/USDT", metric="zscore", comparison="above", threshold=3, lookback=5000)
        )


async def test_run_loop_pushes_once_per_new_observation_and_stops_on_cancel(spot_run: Run) -> None:
    """A periodic tick over a book that no longer changes: one observation, one event, then quiet."""
    svc = AlertService(spot_run.service.store)
    rule = await svc.create_rule(
        AlertRule(symbol="BTC/USDT", metric="mid_price", comparison="above", threshold=0, cooldown_s=0)
    )
    got: asyncio.Queue[AlertEvent] = asyncio.Queue()
    svc.subscribe(lambda e: (_ for _ in ()).throw(RuntimeError("a broken subscriber")))  # logged, not fatal
    svc.subscribe(got.put)
    task = asyncio.create_task(svc.run(interval_s=0.001))
    event = await asyncio.wait_for(got.get(), 30)
    for _ in range(20):  # let the loop tick a few more times
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (
        event.rule_id == rule.id
        and event.value == svc.observations("binance", "BTC/USDT")[-1].values["mid_price"]
    )
    assert got.empty() and len(svc.observations("binance", "BTC/USDT")) == 1
    assert await svc.set_enabled(rule.id, False) and not (await svc.get_rule(rule.id)).enabled
    assert not await svc.set_enabled(999, True)
