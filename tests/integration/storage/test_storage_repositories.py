"""Bulk insert-or-ignore, reads, alerts and chat repositories on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.models import book_snapshots, candles, metrics, trades
from market_liquidity_monitor.storage.repositories import (
    AlertRepository,
    ChatRepository,
    bulk_insert_ignore,
    candle_coverage,
    count_rows,
    fetch_book_snapshots,
    fetch_candles,
    fetch_metrics,
    fetch_trades,
    insert_candles,
    insert_rows,
)


async def test_candles_insert_ignore_is_idempotent(db: Database) -> None:
    ts = [1_700_000_000_000 + i * 60_000 for i in range(1000)]
    o = [100.0 + i for i in range(1000)]
    async with db.begin() as conn:
        n = await insert_candles(
            conn, "binance", "BTC/USDT", "1m", ts, o, o, o, o, [1.0] * 1000, chunk_rows=300
        )
    assert n == 1000
    async with db.begin() as conn:
        ts2, o2 = [*ts[500:], ts[-1] + 60_000], [*o[500:], 0.0]
        again = await insert_candles(conn, "binance", "BTC/USDT", "1m", ts2, o2, o2, o2, o2, [1.0] * 501)
    assert again == 1  # only the new candle
    async with db.engine.connect() as conn:
        rows = await fetch_candles(conn, "binance", "BTC/USDT", "1m", ts[10], ts[20])
        assert [r[0] for r in rows] == ts[10:20]
        assert rows[0][1] == 110.0
        cov = await candle_coverage(conn)
        assert cov == [
            {"venue": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "first_ts_ms": ts[0],
             "last_ts_ms": ts[-1] + 60_000, "count": 1001}
        ]  # fmt: skip
        assert await count_rows(conn, candles, venue="binance") == 1001


async def test_trades_snapshots_and_metrics_round_trip(db: Database) -> None:
    trade_rows = [
        {"venue": "binance", "symbol": "BTC/USDT", "trade_id": str(i), "ts_event_ns": 10**18 + i * 10**6,
         "ts_recv_ns": None, "price": 61837.63 + i, "size": 0.02, "side": "buy" if i % 2 else "sell"}
        for i in range(50)
    ]  # fmt: skip
    snap = {
        "venue": "binance", "symbol": "BTC/USDT", "ts_recv_ns": 10**18, "ts_event_ns": None, "sequence": 5,
        "depth": 2, "best_bid": 61837.63, "best_ask": 61837.64,
        "bids": [["61837.63000000", "3.78826000"], ["61837.62", "1"]], "asks": [["61837.64", "1.54698"]],
    }  # fmt: skip
    async with db.begin() as conn:
        assert await insert_rows(conn, trades, trade_rows) == 50
        assert await insert_rows(conn, trades, trade_rows) == 0
        assert await insert_rows(conn, book_snapshots, [snap]) == 1
        assert await insert_rows(conn, book_snapshots, [snap]) == 0
        assert await bulk_insert_ignore(
            conn, metrics, {"ts_ns": [1, 2, 3], "value": [1.5, None, 2.5]},
            constants={"venue": "all", "symbol": "BTC/USDT", "name": "venue_hhi"},
        ) == 3  # fmt: skip
    async with db.engine.connect() as conn:
        got = await fetch_trades(conn, "binance", "BTC/USDT", 10**18 + 10 * 10**6, 10**18 + 12 * 10**6)
        assert got == [
            (10**18 + 10 * 10**6, 61847.63, 0.02, "sell", "10"),
            (10**18 + 11 * 10**6, 61848.63, 0.02, "buy", "11"),
        ]
        (stored,) = await fetch_book_snapshots(conn, "binance", "BTC/USDT")
        assert stored["bids"] == snap["bids"]  # exact wire strings kept
        assert stored["sequence"] == 5
        m = await fetch_metrics(conn, symbol="BTC/USDT", names=["venue_hhi"])
        assert [(r[3], r[4]) for r in m] == [(1, 1.5), (2, None), (3, 2.5)]


async def test_alerts_and_events(db: Database) -> None:
    async with db.session() as s:
        repo = AlertRepository(s)
        alert = await repo.create(name="thin book", metric="depth_50bps_bid", operator="<", threshold=250_000,
                                  venue="binance", symbol="BTC/USDT", params={"window_bps": 50})  # fmt: skip
        await repo.add_event(alert.id, message="depth 120k < 250k", value=120_000.0, ts_ms=1000)
        await repo.add_event(alert.id, message="depth 90k < 250k", value=90_000.0, ts_ms=2000)
        alert_id = alert.id
    async with db.session() as s:
        repo = AlertRepository(s)
        (a,) = await repo.list(enabled_only=True)
        assert a.params == {"window_bps": 50} and a.threshold == 250_000
        events = await repo.events(alert_id)
        assert [e.value for e in events] == [90_000.0, 120_000.0]
        assert await repo.acknowledge(events[0].id)
        assert await repo.set_enabled(alert_id, False)
        assert await repo.list(enabled_only=True) == []
    async with db.session() as s:
        assert await AlertRepository(s).delete(alert_id)
    async with db.session() as s:
        assert await AlertRepository(s).events() == []  # cascaded


async def test_chat_sessions_and_messages(db: Database) -> None:
    async with db.session() as s:
        repo = ChatRepository(s)
        session = await repo.create_session(title="ETH liquidity", model="offline")
        await repo.add_message(session.id, "user", "Is there enough liquidity to sell 10 ETH?")
        await repo.add_message(
            session.id, "assistant", "Yes...", tool_calls=[{"tool": "depth", "out": "Out[0]"}]
        )
        sid = session.id
    async with db.session() as s:
        repo = ChatRepository(s)
        msgs = await repo.messages(sid)
        assert [(m.seq, m.role) for m in msgs] == [(0, "user"), (1, "assistant")]
        assert msgs[1].tool_calls == [{"tool": "depth", "out": "Out[0]"}]
        assert [x.id for x in await repo.list_sessions()] == [sid]
    with pytest.raises(IntegrityError):
        async with db.session() as s:
            await ChatRepository(s).add_message("no-such-session", "user", "hi")
    async with db.session() as s:
        assert await ChatRepository(s).delete_session(sid)
        assert await ChatRepository(s).messages(sid) == []
