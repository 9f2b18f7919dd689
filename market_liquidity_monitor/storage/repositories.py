"""Reads and writes of the storage tables.

Bulk writes (candles, trades, book snapshots, metrics) go through ``bulk_insert_ignore``: rows whose
primary key already exists are skipped, so imports and writer retries are idempotent. It is
columnar and dialect-specific for speed:

* PostgreSQL: one ``INSERT ... SELECT FROM unnest($1::type[], ...) ON CONFLICT DO NOTHING`` per chunk
  over asyncpg (arrays travel in binary), returning the count of new rows;
* SQLite: ``INSERT ... ON CONFLICT DO NOTHING`` with ``executemany`` per chunk;
* anything else: SQLAlchemy Core ``insert`` with executemany (no ignore).

Alerts and chat sessions are small, row-at-a-time tables served by ``AlertRepository`` and
``ChatRepository`` over an ``AsyncSession``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from market_liquidity_monitor.storage.models import (
    AlertEventRow,
    AlertRow,
    ChatMessageRow,
    ChatSessionRow,
    book_snapshots,
    candle_fetches,
    candles,
    metrics,
    trades,
)

DEFAULT_CHUNK_ROWS = 20_000

Columns = Mapping[str, Sequence[Any]]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _pg_type(col: Any) -> tuple[str, bool]:
    """(PostgreSQL element type, is_json) of a column for the unnest path."""
    t = col.type
    if isinstance(t, JSON):
        return "text", True  # sent as JSON text, cast to jsonb in the SELECT
    if isinstance(t, BigInteger):
        return "int8", False
    if isinstance(t, Integer):
        return "int4", False
    if isinstance(t, Double):
        return "float8", False
    if isinstance(t, Boolean):
        return "bool", False
    if isinstance(t, String | Text):
        return "text", False
    raise TypeError(f"no unnest type for column {col.name} ({t!r})")


def _is_json(col: Any) -> bool:
    return isinstance(col.type, JSON)


def rows_to_columns(table: Table, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Row dicts -> ``{column: [values]}`` for ``table``'s columns present in the first row."""
    if not rows:
        return {}
    names = [c.name for c in table.columns if c.name in rows[0]]
    return {n: [r.get(n) for r in rows] for n in names}


async def bulk_insert_ignore(
    conn: AsyncConnection,
    table: Table,
    columns: Columns,
    *,
    constants: Mapping[str, Any] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> int:
    """Insert rows given column-wise (``{"ts_ms": [...], "open": [...], ...}``) plus ``constants``
    (``{"venue": "binance", ...}``, the same value in every row), skipping rows whose primary key
    exists. Runs in the caller's transaction. Returns the number of rows inserted (on SQLite and
    PostgreSQL; the row count sent on other databases)."""
    constants = dict(constants or {})
    names = list(columns)
    if not names:
        return 0
    n = len(columns[names[0]])
    if any(len(columns[c]) != n for c in names):
        raise ValueError("bulk_insert_ignore: all columns must have the same length")
    if n == 0:
        return 0
    const_names = list(constants)
    json_cols = {c.name for c in table.columns if _is_json(c)}
    for name in const_names:
        if name in json_cols and constants[name] is not None:
            constants[name] = orjson.dumps(constants[name]).decode()
    dialect = conn.dialect.name
    prep = conn.dialect.identifier_preparer
    all_names = const_names + names
    col_list = ", ".join(prep.quote(c) for c in all_names)
    inserted = 0

    def chunk_values(name: str, start: int) -> list[Any]:
        values = columns[name][start : start + chunk_rows]
        if name in json_cols:
            return [None if v is None else orjson.dumps(v).decode() for v in values]
        return values.tolist() if hasattr(values, "tolist") else list(values)  # numpy -> Python

    if dialect == "postgresql" and conn.dialect.driver == "asyncpg":
        selects = []
        for i, name in enumerate(const_names):
            t, is_json = _pg_type(table.c[name])
            selects.append(f"${i + 1}::{t}" + ("::jsonb" if is_json else ""))
        unnest = []
        for j, name in enumerate(names):
            t, is_json = _pg_type(table.c[name])
            unnest.append(f"${len(const_names) + j + 1}::{t}[]")
            selects.append(f"u.c{j}" + ("::jsonb" if is_json else ""))
        aliases = ", ".join(f"c{j}" for j in range(len(names)))
        sql = (
            f"WITH ins AS (INSERT INTO {prep.format_table(table)} ({col_list}) "
            f"SELECT {', '.join(selects)} FROM unnest({', '.join(unnest)}) AS u({aliases}) "
            f"ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM ins"
        )
        raw = await conn.get_raw_connection()
        apg = raw.driver_connection
        assert apg is not None
        const_args = [constants[c] for c in const_names]
        for start in range(0, n, chunk_rows):
            args = const_args + [chunk_values(name, start) for name in names]
            inserted += int(await apg.fetchval(sql, *args))
        return inserted
    if dialect == "sqlite":
        # ON CONFLICT DO NOTHING skips primary-key duplicates only (INSERT OR IGNORE would also
        # silently skip NOT NULL violations).
        sql = (
            f"INSERT INTO {prep.format_table(table)} ({col_list}) "
            f"VALUES ({', '.join('?' for _ in all_names)}) ON CONFLICT DO NOTHING"
        )
        for start in range(0, n, chunk_rows):
            k = min(chunk_rows, n - start)
            cols_chunk = [[constants[c]] * k for c in const_names] + [
                chunk_values(name, start) for name in names
            ]
            result = await conn.exec_driver_sql(sql, list(zip(*cols_chunk, strict=True)))
            inserted += max(result.rowcount, 0)
        return inserted
    for start in range(0, n, chunk_rows):
        chunk = [
            {**constants, **{name: columns[name][i] for name in names}}
            for i in range(start, min(n, start + chunk_rows))
        ]
        await conn.execute(table.insert(), chunk)
        inserted += len(chunk)
    return inserted


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """``bulk_insert_ignore`` for row dicts (all rows must have the same keys)."""
    return await bulk_insert_ignore(conn, table, rows_to_columns(table, rows))


# -- candles ----------------------------------------------------------------------------------
async def insert_candles(
    conn: AsyncConnection,
    venue: str,
    symbol: str,
    timeframe: str,
    ts_ms: Sequence[int],
    open_: Sequence[float],
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    volume: Sequence[float],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> int:
    """Insert candles of one (venue, symbol, timeframe), ignoring existing open times; returns the count inserted."""
    return await bulk_insert_ignore(
        conn,
        candles,
        {
            "ts_ms": ts_ms,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        },
        constants={"venue": venue, "symbol": symbol, "timeframe": timeframe},
        chunk_rows=chunk_rows,
    )


async def fetch_candles(
    conn: AsyncConnection,
    venue: str,
    symbol: str,
    timeframe: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int | None = None,
) -> list[tuple[int, float, float, float, float, float]]:
    """Candles ``(ts_ms, open, high, low, close, volume)`` with ``start_ms <= ts_ms < end_ms``, oldest first."""
    c = candles.c
    q = select(c.ts_ms, c.open, c.high, c.low, c.close, c.volume).where(
        c.venue == venue, c.symbol == symbol, c.timeframe == timeframe
    )
    if start_ms is not None:
        q = q.where(c.ts_ms >= start_ms)
    if end_ms is not None:
        q = q.where(c.ts_ms < end_ms)
    q = q.order_by(c.ts_ms)
    if limit is not None:
        q = q.limit(limit)
    result = await conn.execute(q)
    return [tuple(r) for r in result.all()]


async def count_candles(
    conn: AsyncConnection, venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int
) -> int:
    """Stored candles of one series with ``start_ms <= ts_ms < end_ms``."""
    c = candles.c
    q = (
        select(func.count())
        .select_from(candles)
        .where(c.venue == venue, c.symbol == symbol, c.timeframe == timeframe)
        .where(c.ts_ms >= start_ms, c.ts_ms < end_ms)
    )
    return int((await conn.execute(q)).scalar_one())


async def candle_coverage(
    conn: AsyncConnection, venue: str | None = None, symbol: str | None = None
) -> list[dict[str, Any]]:
    """Stored candle series: ``[{venue, symbol, timeframe, first_ts_ms, last_ts_ms, count}]``."""
    c = candles.c
    q = select(c.venue, c.symbol, c.timeframe, func.min(c.ts_ms), func.max(c.ts_ms), func.count()).group_by(
        c.venue, c.symbol, c.timeframe
    )
    if venue is not None:
        q = q.where(c.venue == venue)
    if symbol is not None:
        q = q.where(c.symbol == symbol)
    q = q.order_by(c.venue, c.symbol, c.timeframe)
    rows = (await conn.execute(q)).all()
    return [
        {"venue": v, "symbol": s, "timeframe": tf, "first_ts_ms": lo, "last_ts_ms": hi, "count": n}
        for v, s, tf, lo, hi, n in rows
    ]


async def record_candle_fetch(
    conn: AsyncConnection,
    venue: str,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    candles_returned: int,
) -> None:
    """Remember that ``[start_ms, end_ms)`` of a series was fetched from the venue (re-recording the
    same start keeps the first row: the span was fetched either way)."""
    await bulk_insert_ignore(
        conn,
        candle_fetches,
        {"start_ms": [int(start_ms)], "end_ms": [int(end_ms)], "candles": [int(candles_returned)]},
        constants={
            "venue": venue,
            "symbol": symbol,
            "timeframe": timeframe,
            "fetched_at_ms": _now_ms(),
        },
    )


async def candle_fetch_spans(
    conn: AsyncConnection, venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int
) -> list[tuple[int, int]]:
    """Fetched spans ``[(start_ms, end_ms), ...]`` of a series that overlap ``[start_ms, end_ms)``,
    by start."""
    f = candle_fetches.c
    q = (
        select(f.start_ms, f.end_ms)
        .where(f.venue == venue, f.symbol == symbol, f.timeframe == timeframe)
        .where(f.start_ms < end_ms, f.end_ms > start_ms)
        .order_by(f.start_ms)
    )
    return [(int(a), int(b)) for a, b in (await conn.execute(q)).all()]


async def count_rows(conn: AsyncConnection, table: Table, **where: Any) -> int:
    q = select(func.count()).select_from(table)
    for name, value in where.items():
        q = q.where(table.c[name] == value)
    return int((await conn.execute(q)).scalar_one())


# -- trades, book snapshots, metrics ----------------------------------------------------------
async def fetch_trades(
    conn: AsyncConnection,
    venue: str,
    symbol: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[tuple[int, float, float, str | None, str]]:
    """Trades ``(ts_event_ns, price, size, side, trade_id)`` in ``[start_ns, end_ns)``, oldest first."""
    t = trades.c
    q = select(t.ts_event_ns, t.price, t.size, t.side, t.trade_id).where(t.venue == venue, t.symbol == symbol)
    if start_ns is not None:
        q = q.where(t.ts_event_ns >= start_ns)
    if end_ns is not None:
        q = q.where(t.ts_event_ns < end_ns)
    q = q.order_by(t.ts_event_ns, t.trade_id)
    return [tuple(r) for r in (await conn.execute(q)).all()]


async def fetch_metrics(
    conn: AsyncConnection,
    venue: str | None = None,
    symbol: str | None = None,
    names: Sequence[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[tuple[str, str, str, int, float | None]]:
    """Metric rows ``(venue, symbol, name, ts_ns, value)`` ordered by time."""
    m = metrics.c
    q = select(m.venue, m.symbol, m.name, m.ts_ns, m.value)
    if venue is not None:
        q = q.where(m.venue == venue)
    if symbol is not None:
        q = q.where(m.symbol == symbol)
    if names:
        q = q.where(m.name.in_(list(names)))
    if start_ns is not None:
        q = q.where(m.ts_ns >= start_ns)
    if end_ns is not None:
        q = q.where(m.ts_ns < end_ns)
    q = q.order_by(m.ts_ns, m.venue, m.symbol, m.name)
    return [tuple(r) for r in (await conn.execute(q)).all()]


async def fetch_book_snapshots(
    conn: AsyncConnection,
    venue: str,
    symbol: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Stored book snapshots (dicts with the table's columns), oldest first."""
    b = book_snapshots.c
    q = select(book_snapshots).where(b.venue == venue, b.symbol == symbol)
    if start_ns is not None:
        q = q.where(b.ts_recv_ns >= start_ns)
    if end_ns is not None:
        q = q.where(b.ts_recv_ns < end_ns)
    q = q.order_by(b.ts_recv_ns)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]


# -- alerts -----------------------------------------------------------------------------------
class AlertRepository:
    """Alert rules and their events. Commits are the caller's (``Database.session()`` commits)."""

    def __init__(self, session: AsyncSession):
        self.session = session

    async def create(
        self,
        *,
        name: str,
        metric: str,
        operator: str,
        threshold: float,
        venue: str | None = None,
        symbol: str | None = None,
        cooldown_s: float = 300.0,
        enabled: bool = True,
        params: dict[str, Any] | None = None,
    ) -> AlertRow:
        now = _now_ms()
        row = AlertRow(
            name=name,
            venue=venue,
            symbol=symbol,
            metric=metric,
            operator=operator,
            threshold=threshold,
            cooldown_s=cooldown_s,
            enabled=enabled,
            params=params,
            created_at_ms=now,
            updated_at_ms=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, alert_id: int) -> AlertRow | None:
        return await self.session.get(AlertRow, alert_id)

    async def list(self, *, enabled_only: bool = False) -> list[AlertRow]:
        q = select(AlertRow).order_by(AlertRow.id)
        if enabled_only:
            q = q.where(AlertRow.enabled.is_(True))
        return list((await self.session.scalars(q)).all())

    async def set_enabled(self, alert_id: int, enabled: bool) -> bool:
        result = await self.session.execute(
            update(AlertRow).where(AlertRow.id == alert_id).values(enabled=enabled, updated_at_ms=_now_ms())
        )
        return result.rowcount > 0

    async def delete(self, alert_id: int) -> bool:
        result = await self.session.execute(delete(AlertRow).where(AlertRow.id == alert_id))
        return result.rowcount > 0

    async def add_event(
        self,
        alert_id: int,
        *,
        message: str,
        value: float | None = None,
        venue: str | None = None,
        symbol: str | None = None,
        payload: dict[str, Any] | None = None,
        ts_ms: int | None = None,
    ) -> AlertEventRow:
        row = AlertEventRow(
            alert_id=alert_id,
            ts_ms=ts_ms if ts_ms is not None else _now_ms(),
            venue=venue,
            symbol=symbol,
            value=value,
            message=message,
            payload=payload,
            acknowledged=False,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def events(
        self,
        alert_id: int | None = None,
        *,
        since_ms: int | None = None,
        limit: int = 100,
        symbol: str | None = None,
        venue: str | None = None,
    ) -> list[AlertEventRow]:
        """Most recent events first (by ``ts_ms``, then id), optionally of one alert, symbol or venue."""
        q = select(AlertEventRow).order_by(AlertEventRow.ts_ms.desc(), AlertEventRow.id.desc()).limit(limit)
        if alert_id is not None:
            q = q.where(AlertEventRow.alert_id == alert_id)
        if since_ms is not None:
            q = q.where(AlertEventRow.ts_ms >= since_ms)
        if symbol is not None:
            q = q.where(AlertEventRow.symbol == symbol)
        if venue is not None:
            q = q.where(AlertEventRow.venue == venue)
        return list((await self.session.scalars(q)).all())

    async def acknowledge(self, event_id: int) -> bool:
        result = await self.session.execute(
            update(AlertEventRow).where(AlertEventRow.id == event_id).values(acknowledged=True)
        )
        return result.rowcount > 0


# -- chat -------------------------------------------------------------------------------------
class ChatRepository:
    """Assistant conversations: sessions and their ordered messages."""

    def __init__(self, session: AsyncSession):
        self.session = session

    async def create_session(
        self, *, title: str | None = None, model: str | None = None, session_id: str | None = None
    ) -> ChatSessionRow:
        now = _now_ms()
        row = ChatSessionRow(
            id=session_id or str(uuid.uuid4()), title=title, model=model, created_at_ms=now, updated_at_ms=now
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get_session(self, session_id: str) -> ChatSessionRow | None:
        return await self.session.get(ChatSessionRow, session_id)

    async def list_sessions(self, limit: int = 50) -> list[ChatSessionRow]:
        q = select(ChatSessionRow).order_by(ChatSessionRow.updated_at_ms.desc()).limit(limit)
        return list((await self.session.scalars(q)).all())

    async def add_message(
        self, session_id: str, role: str, content: str, tool_calls: Any | None = None
    ) -> ChatMessageRow:
        """Append a message (``seq`` = previous max + 1) and bump the session's ``updated_at_ms``."""
        last = await self.session.scalar(
            select(func.max(ChatMessageRow.seq)).where(ChatMessageRow.session_id == session_id)
        )
        now = _now_ms()
        row = ChatMessageRow(
            session_id=session_id,
            seq=0 if last is None else last + 1,
            role=role,
            content=content,
            tool_calls=tool_calls,
            created_at_ms=now,
        )
        self.session.add(row)
        await self.session.execute(
            update(ChatSessionRow).where(ChatSessionRow.id == session_id).values(updated_at_ms=now)
        )
        await self.session.flush()
        return row

    async def messages(self, session_id: str) -> list[ChatMessageRow]:
        q = select(ChatMessageRow).where(ChatMessageRow.session_id == session_id).order_by(ChatMessageRow.seq)
        return list((await self.session.scalars(q)).all())

    async def delete_session(self, session_id: str) -> bool:
        result = await self.session.execute(delete(ChatSessionRow).where(ChatSessionRow.id == session_id))
        return result.rowcount > 0
