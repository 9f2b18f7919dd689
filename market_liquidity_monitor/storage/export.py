"""Export stored candles, trades and metrics to CSV or Parquet, streamed in chunks (bounded memory).

Columns:

* candles: ``venue, symbol, timeframe, ts, ts_ms, open, high, low, close, volume``
* trades: ``venue, symbol, trade_id, ts, ts_event_ns, ts_recv_ns, price, size, side``
* metrics: ``venue, symbol, name, ts, ts_ns, value``

``ts`` is the UTC time (ISO 8601 in CSV, a UTC timestamp column in Parquet); the integer columns keep
the exact stored epoch values. The format comes from ``fmt`` or the file extension (``.csv``,
``.parquet``/``.pq``).

``export`` writes a file the caller names (the CLI); ``export_chunks`` yields the same bytes chunk by
chunk for a streamed HTTP download (the API), with no file at all.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
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


class _Sink(io.RawIOBase):
    """A write-only file whose bytes are taken out chunk by chunk (a Parquet writer's target)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        data = bytes(b)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


class _Encoder:
    """Encodes frames of one export as CSV text or Parquet row groups, chunk by chunk."""

    def __init__(self, kind: str, fmt: str):
        self.kind, self.fmt = kind, fmt
        self.first = True
        self._sink: _Sink | None = None
        self._writer: pq.ParquetWriter | None = None

    def encode(self, df: pd.DataFrame) -> bytes:
        if self.fmt == "csv":
            text = df.to_csv(None, header=self.first, index=False, date_format=_CSV_DATE_FORMAT)
            self.first = False
            return text.encode()
        if self._writer is None:
            self._sink = _Sink()
            self._writer = pq.ParquetWriter(self._sink, PARQUET_SCHEMAS[self.kind], compression="zstd")
        if len(df):
            self._writer.write_table(
                pa.Table.from_pandas(df, schema=PARQUET_SCHEMAS[self.kind], preserve_index=False)
            )
        self.first = False
        return self._sink.take()

    def close(self) -> bytes:
        """The bytes that end the file (Parquet footer; nothing for CSV)."""
        if self._writer is None:
            return b""
        self._writer.close()
        self._writer = None
        return self._sink.take()


_CSV_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


async def export_chunks(
    db: Database,
    kind: str,
    fmt: str,
    *,
    venue: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    names: list[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    chunk_rows: int = 20_000,
) -> AsyncIterator[bytes]:
    """The export as a sequence of byte chunks (CSV text, or one Parquet row group per chunk),
    streamed from storage ``chunk_rows`` rows at a time: memory is bounded by one chunk, no file is
    written. Filters as for ``export``. Encoding runs in a worker thread (never on the event loop).

    A chunk is yielded per storage partition; the last one ends the file (the Parquet footer). An
    empty result still gives the header (CSV) or an empty Parquet file with the columns. Errors:
    ``InvalidInputError`` (unknown kind/format, bad time) before the first chunk; a storage error
    may surface from any chunk (the transfer is then cut short, which a chunked HTTP client sees)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown export format {fmt!r}: valid formats are {', '.join(FORMATS)}.")
    q, tcol, per_ms = _query(
        kind, venue=venue, symbol=symbol, timeframe=timeframe, names=names, start=start, end=end
    )
    columns = [c.name for c in q.selected_columns]
    enc = _Encoder(kind, fmt)

    def encode(rows: list[Any]) -> bytes:
        return enc.encode(_frame(rows, columns, tcol, per_ms))

    try:
        async with db.engine.connect() as conn:
            result = await conn.stream(q.execution_options(yield_per=chunk_rows))
            async for part in result.partitions(chunk_rows):
                yield await asyncio.to_thread(encode, [tuple(r) for r in part])
        if enc.first:  # no rows: still a file with the columns
            yield await asyncio.to_thread(encode, [])
        yield await asyncio.to_thread(enc.close)
    finally:
        enc.close()


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
    created): the CLI's ``mlm export``, where the path is the user's own. ``names`` filters metric
    names, ``timeframe`` candle timeframes; ``[start, end)`` is on the row time. Returns the number
    of rows written (0 gives a file with the header only). The API streams ``export_chunks`` instead:
    it never builds a path from request text."""
    path = Path(path)
    fmt = export_format(path, fmt)
    q, tcol, per_ms = _query(
        kind, venue=venue, symbol=symbol, timeframe=timeframe, names=names, start=start, end=end
    )
    columns = [c.name for c in q.selected_columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    rows_written = 0
    enc = _Encoder(kind, fmt)
    with path.open("wb") as out:
        try:
            async with db.engine.connect() as conn:
                result = await conn.stream(q.execution_options(yield_per=chunk_rows))
                async for part in result.partitions(chunk_rows):
                    df = _frame([tuple(r) for r in part], columns, tcol, per_ms)
                    rows_written += len(df)
                    out.write(enc.encode(df))
            if enc.first:
                out.write(enc.encode(_frame([], columns, tcol, per_ms)))
            out.write(enc.close())
        finally:
            enc.close()
    return ExportResult(kind=kind, path=path, fmt=fmt, rows=rows_written)
