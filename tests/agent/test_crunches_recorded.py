"""Liquidity crunches on recorded data: the books are sampled while their recordings replay
(``MarketData.depth_history``) and stored in the liquidity history; the assistant's answer reports
what ``analytics.alerts.detect_liquidity_crunches`` finds on the stored history (checked against
the rows read back with plain SQL).

Cross-check: an independent replay of the Binance spot BTCUSDT recording (its own store, sampled
every 2 depth updates with the float analytics on a full book view, not the incremental window
totals) gives the same series, and the detector on it gives the episodes the service reports.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path

import pytest

from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.agent.offline import answer_liquidity_alerts
from market_liquidity_monitor.alerts_service import AlertService
from market_liquidity_monitor.analytics.alerts import detect_liquidity_crunches
from market_liquidity_monitor.analytics.liquidity import depth_within_bps
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.domain.time import iso_ns
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import Replayer, discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.market_data import DEPTH_SAMPLE_EVERY, MarketData
from market_liquidity_monitor.services.alerting import CrunchScan, LiquidityAlertsAnswer
from market_liquidity_monitor.venues.registry import AdapterRegistry
from tests.support import assistant_for

SPOT = InstrumentId("binance", "BTC/USDT")


@pytest.fixture(scope="module")
def independent(data_dir: Path) -> dict[float, tuple[list[int], list[float]]]:
    """Bid + ask notional within 10 and 50 bps, sampled by hand from a replay of the same files."""
    (group,) = [g for g in discover(data_dir) if g.name == "hftbacktest/spot/btcusdt"]
    reg = AdapterRegistry()
    store = BookStore(reg, windows_bps=(), clock=ReplayClock())
    out: dict[float, tuple[list[int], list[float]]] = {10.0: ([], []), 50.0: ([], [])}
    n = itertools.count(1)
    last: list[int | None] = [None]

    def on_record(rec, evs) -> None:
        for ev in evs:
            if not isinstance(ev, L2Delta | L2Snapshot) or next(n) % DEPTH_SAMPLE_EVERY:
                continue
            book = store.entry(ev.instrument).book
            if not book.quality.synced or book.ts_recv_ns == last[0]:
                continue
            view = store.view("binance", "BTC/USDT")
            last[0] = book.ts_recv_ns
            for w, (ts, depth) in out.items():
                d = depth_within_bps(view, w)
                ts.append(book.ts_recv_ns)
                depth.append(d.bid_notional + d.ask_notional)

    Replayer(store, reg, clock=ReplayClock()).run(group.records(), on_record=on_record)
    return out


@pytest.fixture(scope="module")
def assistant(data_dir: Path, tmp_path_factory) -> Assistant:
    settings = Settings(home_dir=tmp_path_factory.mktemp("mlm-crunch-home"))
    return assistant_for(settings, MarketData.from_recordings(settings, data_dir))


def _stored_depth(assistant: Assistant, window_bps: float) -> tuple[list[int], list[float]]:
    """Bid + ask notional within ``window_bps`` of binance BTC/USDT, read with plain SQL from the
    liquidity history the replay stored (ingest/liquidity_recorder.py)."""
    path = assistant.services.settings.home_dir / "mlm.sqlite3"
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT ts_ns, bid_quote + ask_quote FROM book_metric_depths WHERE venue = 'binance'"
            " AND symbol = 'BTC/USDT' AND window_bps = ? AND bid_quote IS NOT NULL ORDER BY ts_ns",
            (float(window_bps),),
        ).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def test_replay_history_equals_independent_sampling(assistant: Assistant, independent) -> None:
    market = assistant.services.market
    market.ensure_loaded(SPOT)
    hist = market.depth_history(SPOT)
    assert hist is not None and hist.every == DEPTH_SAMPLE_EVERY
    ts, depth = independent[10.0]
    assert len(hist) == len(ts) > 1000
    assert list(hist.ts_ns) == ts
    assert hist.series(10.0) == pytest.approx(depth, rel=1e-9)
    assert hist.series(50.0) == pytest.approx(independent[50.0][1], rel=1e-9)


def test_ask_reports_no_crunch_at_defaults_honestly(assistant: Assistant, independent) -> None:
    res = asyncio.run(assistant.ask("Any liquidity crunches on BTC?"))
    (call,) = [c for c in res.tool_calls if c["tool"] == "liquidity_alerts"]
    r = call["result"]
    # Crunch detection reads the stored liquidity history (one row per second of book time).
    ts, depth = _stored_depth(assistant, r["window_bps"])
    ref = detect_liquidity_crunches(ts, depth, drop_ratio=r["drop_ratio"])
    (row,) = [c for c in r["crunches"] if c.get("venue") == "binance" and c["symbol"] == "BTC/USDT"]
    assert row["stored_history"]["table"] == "book_metric_depths" and row["sampled_during_replay"] is None
    assert row["report"]["first_ts"] == iso_ns(ts[0]) and row["report"]["last_ts"] == iso_ns(ts[-1])
    rep = row["report"]
    assert row["available"] and rep["n_observations"] == len(ts) > ref.baseline_n
    assert len(rep["episodes"]) == len(ref.episodes)
    assert "not possible yet" not in res.answer.split("binance BTC/USDT")[0]
    line = next(x for x in res.answer.splitlines() if "in binance BTC/USDT" in x)
    assert f"depth within {r['window_bps']:g} bps" in line and f"below {r['drop_ratio']:g} x" in line
    assert rep["first_ts"] in line and rep["last_ts"] in line
    if not ref.episodes:  # the recorded 50 bps depth never halves
        assert line.startswith("- No liquidity crunch found in binance BTC/USDT at ")
    assert res.grounding["grounded"], res.grounding


def test_crunches_at_10_bps_match_detector_and_are_answered(assistant: Assistant, independent) -> None:
    svc = AlertService(assistant.services.market)  # a fresh service: no observation of its own
    assistant.services.market.ensure_loaded(SPOT)
    rep = svc.crunches("BTC/USDT", 10, venue="binance", drop_ratio=0.6)
    ts, depth = independent[10.0]
    ref = detect_liquidity_crunches(ts, venue_depth={"binance": depth}, drop_ratio=0.6, window_bps=10)
    assert len(ref.episodes) >= 1  # real drops of the 10 bps depth below 0.6 x its rolling median
    key = [(e.onset_ts_ns, e.trough_ts_ns, e.recovery_ts_ns) for e in ref.episodes]
    assert [(e.onset_ts_ns, e.trough_ts_ns, e.recovery_ts_ns) for e in rep.episodes] == key
    for got, want in zip(rep.episodes, ref.episodes, strict=True):
        assert got.drop_pct == pytest.approx(want.drop_pct, rel=1e-9)
    # the answer writer renders every episode with its book times
    result = LiquidityAlertsAnswer(
        symbol="BTC", window_bps=10.0, drop_ratio=0.6, books=[], books_observed=1, book_anomalies=0,
        events=[], events_total=0, crunch_episodes=len(rep.episodes), observations_per_book={},
        rules_total=0, unavailable=[],
        crunches=[CrunchScan(symbol="BTC/USDT", venue="binance", available=True, report=rep.model_dump(mode="json"))],
    )  # fmt: skip
    text = answer_liquidity_alerts(result, {})
    assert f"{len(ref.episodes)} liquidity crunch(es) in binance BTC/USDT" in text
    for e in rep.episodes:
        assert f"onset {e.onset_ts}, trough" in text and f"at {e.trough_ts}" in text
        assert f"{e.drop_pct:.1f}% below" in text
        if e.recovered:
            assert f"recovered at {e.recovery_ts}" in text
