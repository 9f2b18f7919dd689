"""Export stored candles, trades and metrics to CSV or Parquet, streamed in chunks (bounded memory).

Columns:

* candles: ``venue, symbol, timeframe, ts, ts_ms, open, high, low, close, volume``
* trades: ``venue, symbol, trade_id, ts, ts_event_ns, ts_recv_ns, price, size, side``
* metrics: ``venue, symbol, name, ts, ts_ns, value``

``ts`` is the UTC time (ISO 8601 in CSV, a UTC timestamp column in Parquet); the integer columns keep
the exact stored epoch values. The format comes from ``fmt`` or the file extension (``.csv``,
``.parquet``/``.pq``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Select, select

from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.history import TimeLike, to_ms
from market_liquidity_monitor.storage.models import candles, metrics, trades

EXPORT_KINDS = ("candles", "trades", "metrics")
FORMATS = ("csv", "parquet")

_STR = pa.string()
_F64 = pa.float64()
_I64 = pa.int64()
PARQUET_SCHEMAS = {
    "candles": pa.schema(
        [("venue", _STR), ("symbol", _STR), ("timeframe", _STR), ("ts", pa.timestamp("ms", tz="UTC")),
         ("ts_ms", _I64), ("open", _F64), ("high", _F64), ("low", _F64), ("close", _F64), ("volume", _F64)]
    ),
    "trades": pa.schema(
        [("venue", _STR), ("symbol", _STR), ("trade_id", _STR), ("ts", pa.timestamp("ns", tz="UTC")),
         ("ts_event_ns", _I64), ("ts_recv_ns", _I64), ("price", _F64), ("size", _F64), ("side", _STR)]
    ),
    "metrics": pa.schema(
        [("venue", _STR), ("symbol", _STR), ("name", _STR), ("ts", pa.timestamp("ns", tz="UTC")),
         ("ts_ns", _I64), ("value", _F64)]
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExportResult:
    kind: str
    path: Path
    fmt: str
    rows: int


def export_format(path: Path, fmt: str | None = None) -> str:
    """``"csv"`` or ``"parquet"`` from ``fmt`` or the extension; ``InvalidInputError`` otherwise."""
    if fmt:
        fmt = fmt.lower()
    else:
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix)
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"Unknown export format for {path.name!r}: use .csv or .parquet (or fmt='csv'/'parquet')."
        )
    return fmt


def _query(
    kind: str,
    *,
    venue: str | None,
    symbol: str | None,
    timeframe: str | None,
    names: list[str] | None,
    start: TimeLike,
    end: TimeLike,
) -> tuple[Select[Any], str, int]:
    """(query, time column, time column's units per ms)."""
    start_ms, end_ms = to_ms(start), to_ms(end)
    if kind == "candles":
        t, tcol, per_ms = candles, "ts_ms", 1
        q = select(
            t.c.venue,
            t.c.symbol,
            t.c.timeframe,
            t.c.ts_ms,
            t.c.open,
            t.c.high,
            t.c.low,
            t.c.close,
            t.c.volume,
        )
        if timeframe:
            q = q.where(t.c.timeframe == timeframe)
        order = [t.c.venue, t.c.symbol, t.c.timeframe, t.c.ts_ms]
    elif kind == "trades":
        t, tcol, per_ms = trades, "ts_event_ns", 1_000_000
        q = select(
            t.c.venue,
            t.c.symbol,
            t.c.trade_id,
            t.c.ts_event_ns,
            t.c.ts_recv_ns,
            t.c.price,
            t.c.size,
            t.c.side,
        )
        order = [t.c.venue, t.c.symbol, t.c.ts_event_ns, t.c.trade_id]
    elif kind == "metrics":
        t, tcol, per_ms = metrics, "ts_ns", 1_000_000
        q = select(t.c.venue, t.c.symbol, t.c.name, t.c.ts_ns, t.c.value)
        if names:
            q = q.where(t.c.name.in_(names))
        order = [t.c.venue, t.c.symbol, t.c.name, t.c.ts_ns]
    else:
        raise InvalidInputError(f"Unknown export kind {kind!r}: valid kinds are {', '.join(EXPORT_KINDS)}.")
    if venue:
        q = q.where(t.c.venue == venue)
    if symbol:
        q = q.where(t.c.symbol == symbol)
    if start_ms is not None:
        q = q.where(t.c[tcol] >= start_ms * per_ms)
    if end_ms is not None:
        q = q.where(t.c[tcol] < end_ms * per_ms)
    return q.order_by(*order), tcol, per_ms


def _frame(rows: list[Any], columns: list[str], tcol: str, per_ms: int) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    unit = "ms" if per_ms == 1 else "ns"
    ts = pd.to_datetime(df[tcol].astype("int64"), unit=unit, utc=True)
    df.insert(df.columns.get_loc(tcol), "ts", ts)
    if "ts_recv_ns" in df.columns:
        df["ts_recv_ns"] = df["ts_recv_ns"].astype("Int64")  # nullable
    return df


async def export(
    db: Database,
    kind: str,
    path: Path,
    *,
    fmt: str | None = None,
    venue: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    names: list[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    chunk_rows: int = 100_000,
) -> ExportResult:
    """Write ``kind`` rows matching the filters to ``path`` (created or overwritten; parent folders
    created). ``names`` filters metric names, ``timeframe`` candle timeframes; ``[start, end)`` is on
    the row time. Returns the number of rows written (0 gives a file with the header only)."""
    path = Path(path)
    fmt = export_format(path, fmt)
    q, tcol, per_ms = _query(
        kind, venue=venue, symbol=symbol, timeframe=timeframe, names=names, start=start, end=end
    )
    columns = [c.name for c in q.selected_columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    rows_written = 0
    writer: pq.ParquetWriter | None = None
    first = True
    try:
        async with db.engine.connect() as conn:
            result = await conn.stream(q.execution_options(yield_per=chunk_rows))
            async for part in result.partitions(chunk_rows):
                df = _frame([tuple(r) for r in part], columns, tcol, per_ms)
                rows_written += len(df)
                if fmt == "csv":
                    df.to_csv(
                        path,
                        mode="w" if first else "a",
                        header=first,
                        index=False,
                        date_format="%Y-%m-%dT%H:%M:%S.%fZ",
                    )
                else:
                    table = pa.Table.from_pandas(df, schema=PARQUET_SCHEMAS[kind], preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(path, PARQUET_SCHEMAS[kind], compression="zstd")
                    writer.write_table(table)
                first = False
        if first:  # no rows: still write a file with the columns
            empty = _frame([], columns, tcol, per_ms)
            if fmt == "csv":
                empty.to_csv(path, index=False)
            else:
                pq.write_table(PARQUET_SCHEMAS[kind].empty_table(), path)
    finally:
        if writer is not None:
            writer.close()
    return ExportResult(kind=kind, path=path, fmt=fmt, rows=rows_written)
