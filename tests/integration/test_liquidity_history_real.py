"""Persisted liquidity history on the hftbacktest recordings (Binance spot / USD-M / COIN-M, BTC and
ETH, 2024-08-08 23:54 -> 2024-08-09 00:05 UTC).

Replaying them through the service container fills ~11 minutes of history (a row per book per
second of book time). The two questions of issue 14 are answered through the assistant (offline
model, tool ``liquidity_history``), REST (``GET /api/history/liquidity``) and the service, and the
numbers are recomputed independently:

- from the SQLite file with the standard library's ``sqlite3`` and plain SQL;
- one stored row against an independent Decimal reconstruction of the BTC/USDT book from the raw
  recording (REST snapshot + diff-depth updates, Binance's rules) at that row's time;
- the stored trades against the trade lines of the recording.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.services import Services

REPO = Path(__file__).resolve().parents[2]
DATA = (REPO / ".." / "shared" / "data").resolve()
SPOT_BTC = [DATA / "hftbacktest" / "spot" / f"btcusdt_2024080{d}.gz" for d in (8, 9)]

pytestmark = pytest.mark.skipif(not SPOT_BTC[0].is_file(), reason=f"recorded data not found: {DATA}")

Q_DEPTH = "How has BTC depth within 10 bps on Binance changed over the last hour?"
Q_SPREAD = "When was ETH's spread widest today?"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlm-history")
    settings = Settings(data_dir=DATA, home_dir=home)

    async def go():
        svc = Services.build(settings, persist_alerts=False)
        try:
            assistant = Assistant(settings, svc)
            depth_chat = await assistant.ask(Q_DEPTH)
            spread_chat = await assistant.ask(Q_SPREAD)
            depth = await svc.history.liquidity_history("BTC", "binance", "depth", 10, lookback_s=3600)
            spread = await svc.history.liquidity_history("ETH", None, "spread_bps", period="today")
            app = create_app(settings, services=svc)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    rest = await http.get(
                        "/api/history/liquidity",
                        params={"symbol": "BTC", "venue": "binance", "metric": "depth", "window_bps": 10,
                                "lookback_s": 3600},
                    )  # fmt: skip
                    bad = await http.get(
                        "/api/history/liquidity",
                        params={"symbol": "BTC", "venue": "binance", "window_bps": 7},
                    )
                    status = (await http.get("/api/status")).json()
                    scrape = await http.get("/metrics")
            result = {
                "depth_chat": depth_chat,
                "spread_chat": spread_chat,
                "depth": depth,
                "spread": spread,
                "rest": rest,
                "bad": bad,
                "status": status,
                "scrape": scrape,
            }
        finally:
            await svc.close()
        result["stats"] = svc.history.writer.stats()  # after the final flush of close()
        return result

    out = asyncio.run(go())
    out["db"] = home / "mlm.sqlite3"
    return out


@pytest.fixture(scope="module")
def db(run):
    conn = sqlite3.connect(run["db"])
    yield conn
    conn.close()


def test_replay_fills_about_eleven_minutes_of_history(run, db):
    rows = db.execute(
        "SELECT venue, symbol, COUNT(*), MIN(ts_ns), MAX(ts_ns) FROM book_metrics GROUP BY venue, symbol"
    ).fetchall()
    spans = {(v, s): (n, (hi - lo) / 1e9) for v, s, n, lo, hi in rows}
    n, span_s = spans[("binance", "BTC/USDT")]
    assert 600 <= span_s <= 700 and n >= 0.95 * span_s  # one row per second of book time, ~11 min
    assert spans[("binancecoinm", "ETH/USD:ETH")][1] >= 600
    # USD-M stops at 23:59:59 (its 2024-08-09 files are not in the set); replayed for the ETH question.
    assert 300 <= spans[("binanceusdm", "ETH/USDT:USDT")][1] < 360
    # Every row on the 1 s grid; a depth row per configured window; no drops or rejects.
    assert db.execute("SELECT COUNT(*) FROM book_metrics WHERE ts_ns % 1000000000 != 0").fetchone()[0] == 0
    total = db.execute("SELECT COUNT(*) FROM book_metrics").fetchone()[0]
    assert db.execute("SELECT COUNT(*) FROM book_metric_depths").fetchone()[0] == 4 * total
    st = run["stats"]
    assert st.dropped == 0 and st.rejected == 0 and st.buffered == 0
    # The writer's counters are in /api/status.
    assert run["status"]["writer"]["written"] >= total and run["status"]["writer"]["dropped"] == 0


def test_depth_question_answers_from_stored_rows(run, db):
    a = run["depth"]
    (s,) = a.series
    assert (s.venue, s.symbol, a.window_bps, a.metric) == ("binance", "BTC/USDT", 10.0, "depth")
    # Reference time: the end of the stored history of that book (the recording's end).
    end_ns = db.execute(
        "SELECT MAX(ts_ns) FROM book_metrics WHERE venue='binance' AND symbol='BTC/USDT'"
    ).fetchone()[0]
    start_ns = end_ns - 3600 * 10**9
    assert (a.end, a.start) == (_iso(end_ns), _iso(start_ns))
    assert a.source.reference_ts == _iso(end_ns) and "recording" in a.source.reference
    rows = db.execute(
        "SELECT m.ts_ns, d.bid_quote + d.ask_quote FROM book_metrics m JOIN book_metric_depths d"
        " ON d.venue = m.venue AND d.symbol = m.symbol AND d.ts_ns = m.ts_ns AND d.window_bps = 10.0"
        " WHERE m.venue = 'binance' AND m.symbol = 'BTC/USDT' AND m.ts_ns BETWEEN ? AND ? ORDER BY m.ts_ns",
        (start_ns, end_ns),
    ).fetchall()
    valid = [(t, v) for t, v in rows if v is not None]
    assert len(rows) == s.summary.points >= 600
    first, last = valid[0], valid[-1]
    hi = max(valid, key=lambda r: (r[1], -r[0]))
    lo = min(valid, key=lambda r: (r[1], r[0]))
    sm = s.summary
    assert sm.first == pytest.approx(first[1], rel=1e-12) and sm.first_ts == _iso(first[0])
    assert sm.last == pytest.approx(last[1], rel=1e-12) and sm.last_ts == _iso(last[0])
    assert sm.max == pytest.approx(hi[1], rel=1e-12) and sm.max_ts == _iso(hi[0])
    assert sm.min == pytest.approx(lo[1], rel=1e-12) and sm.min_ts == _iso(lo[0])
    assert sm.change == pytest.approx(last[1] - first[1], rel=1e-9)
    assert sm.change_pct == pytest.approx((last[1] / first[1] - 1) * 100, rel=1e-9)
    assert a.source.rows == 2 * len(rows) and a.source.tables == ["book_metrics", "book_metric_depths"]

    # REST returns the same answer; a window that was not recorded is refused saying which are.
    assert run["rest"].status_code == 200
    body = run["rest"].json()
    assert body["summary"] == json.loads(a.summary.model_dump_json())
    assert run["bad"].status_code == 422 and "10, 25, 50, 100" in run["bad"].text

    # The assistant routed the question to the tool and its answer states these numbers and times.
    chat = run["depth_chat"]
    (call,) = chat.tool_calls
    assert call["tool"] == "liquidity_history"
    assert call["args"] == {"symbol": "BTC", "venue": "binance", "metric": "depth", "window_bps": 10,
                            "lookback_s": 3600, "unit": "quote"}  # fmt: skip
    assert f"{sm.max:,.0f}" in chat.answer and sm.max_ts in chat.answer and _iso(end_ns) in chat.answer
    assert "recording" in chat.answer and "last 1 h" in chat.answer


def test_spread_widest_today_across_venues(run, db):
    a = run["spread"]
    eth = ("ETH/USDT", "ETH/USDT:USDT", "ETH/USD:ETH")
    end_ns = db.execute(
        f"SELECT MAX(ts_ns) FROM book_metrics WHERE symbol IN ({','.join('?' * len(eth))})", eth
    ).fetchone()[0]
    midnight_ns = end_ns // (86_400 * 10**9) * 86_400 * 10**9
    assert _iso(midnight_ns) == "2024-08-09T00:00:00.000Z"  # "today" of the recording's end
    venue, ts_ns, spread = db.execute(
        f"SELECT venue, ts_ns, spread_bps FROM book_metrics WHERE symbol IN ({','.join('?' * len(eth))})"
        " AND ts_ns BETWEEN ? AND ? AND spread_bps IS NOT NULL ORDER BY spread_bps DESC, ts_ns LIMIT 1",
        (*eth, midnight_ns, end_ns),
    ).fetchone()
    sm = a.summary
    assert (sm.max_venue, sm.max_ts) == (venue, _iso(ts_ns)) and sm.max == pytest.approx(spread, rel=1e-12)
    assert a.start == "2024-08-09T00:00:00.000Z" and a.end == _iso(end_ns)
    # USD-M ended before midnight: no sample today, and the answer says so.
    assert {s.venue for s in a.series} == {"binance", "binancecoinm"}
    assert any("binanceusdm" in n for n in a.notes)
    chat = run["spread_chat"]
    assert chat.tool_calls[0]["tool"] == "liquidity_history"
    assert chat.tool_calls[0]["args"]["period"] == "today"
    assert f"Widest: {spread:.4f} bps at {_iso(ts_ns)} on {venue}" in chat.answer
    assert "today (UTC): 2024-08-09T00:00:00.000Z" in chat.answer


def _decimal_book_at(t_ns: int) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    """The BTC/USDT spot book with every recorded event received before ``t_ns`` applied, in
    Decimal: the REST snapshot, then the diff-depth updates with ``u > lastUpdateId`` in file order
    (Binance "How to manage a local order book": a quantity of 0 removes the level)."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    last_id = None
    pending: list[dict] = []
    for path in SPOT_BTC:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                ns, _, payload = line.partition(" ")
                if int(ns) >= t_ns:
                    return bids, asks
                msg = json.loads(payload)
                if "lastUpdateId" in msg:
                    last_id = msg["lastUpdateId"]
                    bids = {Decimal(p): Decimal(q) for p, q in msg["bids"] if Decimal(q)}
                    asks = {Decimal(p): Decimal(q) for p, q in msg["asks"] if Decimal(q)}
                    updates, pending = pending, []
                elif msg.get("stream", "").endswith("@depth@100ms"):
                    if last_id is None:
                        pending.append(msg["data"])
                        continue
                    updates = [msg["data"]]
                else:
                    continue
                for u in updates:
                    if u["u"] <= last_id:
                        continue
                    for side, levels in ((bids, u["b"]), (asks, u["a"])):
                        for p, q in levels:
                            if Decimal(q):
                                side[Decimal(p)] = Decimal(q)
                            else:
                                side.pop(Decimal(p), None)
    return bids, asks


def test_one_row_equals_a_decimal_walk_of_the_raw_book(db):
    t_ns = 1_723_161_420 * 10**9  # 2024-08-08T23:57:00Z
    row = db.execute(
        "SELECT best_bid, best_ask, mid, spread_bps, microprice, synced FROM book_metrics"
        " WHERE venue='binance' AND symbol='BTC/USDT' AND ts_ns=?",
        (t_ns,),
    ).fetchone()
    assert row is not None and row[5] == 1
    bids, asks = _decimal_book_at(t_ns)
    bb, ba = max(bids), min(asks)
    mid = (bb + ba) / 2
    assert (row[0], row[1]) == (float(bb), float(ba)) and row[2] == float(mid)
    assert row[3] == pytest.approx(float((ba - bb) / mid * 10_000), rel=1e-12)
    micro = (bb * asks[ba] + ba * bids[bb]) / (bids[bb] + asks[ba])
    assert row[4] == pytest.approx(float(micro), rel=1e-12)
    for w in (10, 25, 50, 100):
        lo, hi = mid * (1 - Decimal(w) / 10_000), mid * (1 + Decimal(w) / 10_000)
        bid_base = sum((q for p, q in bids.items() if p >= lo), Decimal(0))
        bid_quote = sum((p * q for p, q in bids.items() if p >= lo), Decimal(0))
        ask_base = sum((q for p, q in asks.items() if p <= hi), Decimal(0))
        ask_quote = sum((p * q for p, q in asks.items() if p <= hi), Decimal(0))
        got = db.execute(
            "SELECT bid_base, bid_quote, ask_base, ask_quote, imbalance FROM book_metric_depths"
            " WHERE venue='binance' AND symbol='BTC/USDT' AND ts_ns=? AND window_bps=?",
            (t_ns, float(w)),
        ).fetchone()
        ref = (bid_base, bid_quote, ask_base, ask_quote, (bid_base - ask_base) / (bid_base + ask_base))
        for g, r in zip(got, ref, strict=True):
            assert g == pytest.approx(float(r), rel=1e-9)


def test_trades_of_the_recording_are_stored(db):
    ids = set()
    for path in SPOT_BTC:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                if "@trade" in line:
                    ids.add(str(json.loads(line.partition(" ")[2])["data"]["t"]))
    stored = {
        r[0] for r in db.execute("SELECT trade_id FROM trades WHERE venue='binance' AND symbol='BTC/USDT'")
    }
    assert stored == ids and len(ids) > 10_000


def test_metrics_endpoint_parses_and_reads_the_counters(run, db):
    from prometheus_client.parser import text_string_to_metric_families

    r = run["scrape"]
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    msgs = {
        (s.labels["venue"], s.labels["symbol"]): s.value
        for s in fams["mlm_book_messages"].samples
        if s.name == "mlm_book_messages_total"
    }
    # Every binance BTC/USDT event of the recording was routed (depth + bookTicker + trade lines,
    # less the REST snapshot line which is one event too): at least the trades stored.
    trades = db.execute("SELECT COUNT(*) FROM trades WHERE venue='binance' AND symbol='BTC/USDT'").fetchone()[
        0
    ]
    assert msgs[("binance", "BTC/USDT")] > trades
    written = next(s.value for s in fams["mlm_writer_written_rows"].samples if s.name.endswith("_total"))
    assert written == run["status"]["writer"]["written"] or written > 0
    assert "mlm_book_gaps" in fams and "mlm_ws_clients" in fams and "mlm_book_age_seconds" in fams
    # The requests made before the scrape are in the latency histogram, by route template.
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in fams["mlm_http_request_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts[("/api/history/liquidity", "2xx")] == 1 and counts[("/api/history/liquidity", "4xx")] == 1
    assert counts[("/api/status", "2xx")] == 1
