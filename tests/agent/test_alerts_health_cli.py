"""Fixes found running ``mlm ask`` one-shot on the recorded data.

- "alert me when BTC imbalance drops below -0.5" lost its minus sign (threshold 0.5).
- "Are any venue feeds stale?" answered "No books are loaded" because recordings load lazily.
- Alert rules created by ``mlm ask`` lived in an in-memory service and vanished with the process.
- "consume 1 price levels", "slippage vs the best bid: -0.00 bps", ``mlm export`` printing a repr.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market_liquidity_monitor.agent.parser import parse_query
from market_liquidity_monitor.cli import app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import discover
from market_liquidity_monitor.market_data import MarketData
from market_liquidity_monitor.venues.registry import AdapterRegistry
from tests.support import assistant_for

# ------------------------------------------------------------------ 1. signed thresholds


@pytest.mark.parametrize(
    ("question", "metric", "comparison", "threshold"),
    [
        ("alert me when BTC imbalance drops below -0.5", "imbalance", "below", -0.5),
        ("alert me when ETH imbalance falls under minus 0.3 on binance", "imbalance", "below", -0.3),
        ("notify me if the BTC z-score goes below -2", "zscore", "below", -2),
        ("alert me when BTC imbalance goes above 0.4", "imbalance", "above", 0.4),
        ("Alert me when the BTC spread on Binance goes above 5 bps", "spread_bps", "above", 5),
    ],
)
def test_alert_thresholds_keep_their_sign(question, metric, comparison, threshold):
    q = parse_query(question)
    assert q.capability == "alerts"
    assert q.extra["alert_action"] == "create"
    assert (q.extra["metric"], q.extra["comparison"], q.extra["threshold"]) == (metric, comparison, threshold)


def test_a_negative_order_size_is_still_refused_next_to_a_signed_threshold():
    assert parse_query("buy -0.5 BTC on binance").reason.startswith("invalid_size")
    assert parse_query("alert me when BTC imbalance drops below -0.5").capability == "alerts"


# ------------------------------------------------------------------ 2. venue health loads books


def _fresh_market(data_dir: Path, venue: str | None = None) -> MarketData:
    """Nothing loaded yet, as in a one-shot ``mlm ask`` (optionally only ``venue``'s recordings)."""
    if venue is None:
        return MarketData.from_recordings(Settings(), data_dir)
    registry = AdapterRegistry()
    groups = [g for g in discover(data_dir) if g.venue == venue]
    assert groups, f"no {venue} recordings in {data_dir}"
    return MarketData(Settings(), registry=registry, clock=ReplayClock(), groups=groups)


def _health_call(res) -> dict:
    (call,) = [c for c in res.tool_calls if c["tool"] == "venue_health"]
    return call


def _check_rows_match_the_store(market: MarketData, r: dict, venues: set[str]) -> None:
    held = [i for i in market.store.instruments() if i.venue in venues]
    assert held and r["books_total"] == len(held) == len(r["books"])
    assert {b["venue"] for b in r["books"]} == venues
    assert r["healthy"] + r["unhealthy"] == r["books_total"]
    by_name = {(i.venue, i.symbol): i for i in held}
    for b in r["books"]:
        q = market.quality(by_name[b["venue"], b["symbol"]])
        assert (b["stale"], b["synced"], b["crossed"], b["gaps"]) == (
            q["stale"],
            q["synced"],
            q["crossed"],
            q["gaps"],
        )


def test_health_question_loads_the_recordings_it_reports_on(data_dir):
    market = _fresh_market(data_dir, "bitfinex")  # a small venue: the whole load takes seconds
    assert market.store.instruments() == []
    res = asyncio.run(assistant_for(Settings(), market).ask("Are any venue feeds stale or disconnected?"))
    r = _health_call(res)["result"]
    _check_rows_match_the_store(market, r, {"bitfinex"})
    assert "No books are loaded" not in res.answer
    assert f"{r['healthy']} of {r['books_total']} books are healthy (recorded data)" in res.answer
    stale = [b for b in r["books"] if b["stale"]]
    assert stale, "the bitfinex captures hold at least one stale book"
    for b in stale:  # named in the answer with its age
        assert f"{b['venue']} {b['symbol']}: " in res.answer
        assert f"stale (last update {b['age_ms']} ms before now)" in res.answer
    assert res.grounding["grounded"], res.grounding


def test_health_question_about_one_venue_loads_and_reports_only_that_venue(data_dir):
    market = _fresh_market(data_dir)
    res = asyncio.run(assistant_for(Settings(), market).ask("any stale feeds on bitfinex?"))
    call = _health_call(res)
    assert call["args"] == {"venue": "bitfinex"}
    _check_rows_match_the_store(market, call["result"], {"bitfinex"})
    # only bitfinex's recordings were replayed, not the other venues' (lazy loading kept)
    assert {i.venue for i in market.store.instruments()} == {"bitfinex"}


# ------------------------------------------------------------------ 3. alert rules persist


def test_alert_rules_created_by_mlm_ask_persist_across_invocations(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_HOME_DIR", str(tmp_path))
    monkeypatch.delenv("MLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def ask(question: str) -> str:
        res = CliRunner().invoke(app, ["ask", question, "--data", str(data_dir)])
        assert res.exit_code == 0, res.output
        return " ".join(res.stdout.split())  # undo the console's line wrapping

    first = ask("Alert me when the BTC spread on Binance goes above 5 bps")
    assert re.search(r"Alert #1 set: BTC/USDT@binance spread_bps above 5\b", first), first
    assert (tmp_path / "mlm.sqlite3").is_file()
    second = ask("alert me when the BTC imbalance on binance drops below -0.5")
    assert re.search(
        r"Alert #2 set: BTC/USDT@binance imbalance (?:\(within \d+ bps\) )?below -0\.5\b", second
    ), second
    listed = ask("list my alerts")  # a third process: both rules come from the database
    assert "2 alert rule(s)" in listed, listed
    assert re.search(r"#1: BTC/USDT@binance spread_bps above 5\b", listed), listed
    assert re.search(r"#2: BTC/USDT@binance imbalance (?:\(within \d+ bps\) )?below -0\.5\b", listed), listed


# ------------------------------------------------------------------ 4. wording


def test_single_level_fill_reads_singular_and_a_rounded_zero_has_no_sign(recorded_market):
    res = asyncio.run(
        assistant_for(Settings(), recorded_market).ask(
            "How much slippage would a 0.001 BTC market sell cause on Binance?"
        )
    )
    (call,) = res.tool_calls
    r = call["result"]
    assert r["levels_consumed"] == 1 and round(r["slippage_vs_best_bps"], 2) == 0
    assert "consume 1 price level," in res.answer and "price levels" not in res.answer
    assert "slippage vs the best bid: 0.00 bps" in res.answer
    assert "-0.00" not in res.answer
    assert res.grounding["grounded"], res.grounding


def test_multi_level_fill_keeps_the_plural(recorded_market):
    res = asyncio.run(
        assistant_for(Settings(), recorded_market).ask(
            "How much slippage would a 5 BTC market buy cause on Binance?"
        )
    )
    n = res.tool_calls[0]["result"]["levels_consumed"]
    assert n > 1 and f"consume {n} price levels," in res.answer


def test_mlm_export_prints_a_readable_line(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_HOME_DIR", str(tmp_path))
    monkeypatch.delenv("MLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    candles = data_dir / "genetrader" / "binance" / "XRP_USDT-1h.feather"
    res = CliRunner().invoke(app, ["import", str(candles), "--candles-only"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "candles.csv"
    res = CliRunner().invoke(app, ["export", "candles", str(out), "--timeframe", "1h"])
    assert res.exit_code == 0, res.output
    assert "ExportResult(" not in res.output
    rows = sum(1 for _ in out.open()) - 1  # header line
    assert rows > 1
    assert f"wrote {rows:,} rows of candles as csv to {out}" in " ".join(res.output.split())
