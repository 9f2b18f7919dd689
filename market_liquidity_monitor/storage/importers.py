"""Load candle files and recorded trades into storage, idempotently.

Recognised files (symbol and timeframe come from the file name, freqtrade's convention
``<BASE>_<QUOTE>[_<SETTLE>]-<timeframe>[-futures].<ext>``: ``BTC_USDT-5m.feather`` -> ``BTC/USDT``, ``5m``;
``BTC_USDT_USDT-1h-futures.feather`` -> ``BTC/USDT:USDT``):

* candles, freqtrade JSON (``.json`` / ``.json.gz``): an array of ``[open_ms, open, high, low, close, volume]``;
* candles, Feather/Arrow IPC (``.feather``, ``.arrow``) and Parquet (``.parquet``): columns ``date``
  (or ``timestamp``/``time``/``ts``/``open_time``), ``open``, ``high``, ``low``, ``close``, ``volume``;
* candles, CSV (``.csv`` / ``.csv.gz``) with a header naming the same columns; the time column may be
  ISO text or epoch numbers (seconds, ms, us or ns, told apart by magnitude);
* trades, freqtrade (``<PAIR>-trades.json[.gz]|.feather|.parquet|.csv``): rows
  ``[timestamp_ms, id, type, side, price, amount, cost]`` (JSON) or those column names;
* trades from recordings in the ../shared/data layout (``hftbacktest/{spot,usdm,cm}/*.gz`` and the
  Binance ``cryptofeed/*.ws.*`` captures), decoded by the venue adapters (``venues``), found with
  ``ingest.replay.discover``.

The venue of a candle or trade file is its parent folder's name when that is a ccxt exchange id
(freqtrade's ``data/<exchange>/`` layout), else the ``venue`` argument; files with neither are
skipped with the reason. Rows are inserted in chunks with insert-or-ignore on the primary key, so
importing the same files twice adds nothing the second time.
"""

from __future__ import annotations

import gzip
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd

from market_liquidity_monitor.domain.errors import MLMError
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.models import trades as trades_table
from market_liquidity_monitor.storage.repositories import bulk_insert_ignore, insert_candles
from market_liquidity_monitor.storage.timeframes import timeframe_seconds

CHUNK_ROWS = 20_000

_NAME = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,2})-(?P<what>\d+[smhdwM]|trades)"
    r"(?:-(?P<kind>futures|spot|margin|mark|index|premiumIndex|funding_rate))?"
    r"\.(?P<ext>json|json\.gz|feather|arrow|parquet|csv|csv\.gz)$"
)
_TIME_COLUMNS = ("date", "timestamp", "time", "ts", "ts_ms", "open_time", "datetime")
_CANDLE_KINDS = (None, "futures", "spot", "margin")


class ImportFormatError(MLMError, ValueError):
    """A file could not be read as the candle or trade format its name announces."""


@dataclass(frozen=True, slots=True)
class ImportItem:
    """One unit of import: a candle file, a trade file, or a group of recording files."""

    kind: str  # "candles" | "trades" | "recording"
    paths: tuple[Path, ...]
    venue: str
    symbol: str | None = None
    timeframe: str | None = None
    group: Any = None  # ingest.replay.RecordingGroup for recordings

    @property
    def label(self) -> str:
        first = self.paths[0]
        name = (
            first.name
            if len(self.paths) == 1
            else f"{first.parent.name}/{first.name} (+{len(self.paths) - 1})"
        )
        what = self.timeframe or self.kind
        return f"{self.venue} {self.symbol or ''} {what} <- {name}".replace("  ", " ")


@dataclass(slots=True)
class ImportResult:
    item: ImportItem
    rows_read: int = 0
    rows_inserted: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class ImportReport:
    results: list[ImportResult] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_read(self) -> int:
        return sum(r.rows_read for r in self.results)

    @property
    def rows_inserted(self) -> int:
        return sum(r.rows_inserted for r in self.results)

    @property
    def errors(self) -> list[ImportResult]:
        return [r for r in self.results if r.error]

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


class ImportProgress(Protocol):
    """Progress hooks (the CLI shows a rich progress bar)."""

    def start_item(self, item: ImportItem, total_rows: int | None) -> None: ...

    def advance(self, rows: int) -> None: ...

    def end_item(self, result: ImportResult) -> None: ...


# -- file names and discovery -----------------------------------------------------------------
def parse_file_name(name: str) -> tuple[str, str] | None:
    """``("BTC/USDT", "5m")`` for ``BTC_USDT-5m.feather``, ``("BTC/USDT", "trades")`` for a trades
    file, None when the name does not follow the convention or names mark/index/funding candles."""
    m = _NAME.match(name)
    if not m:
        return None
    kind = m.group("kind")
    what = m.group("what")
    if what != "trades" and kind not in _CANDLE_KINDS:
        return None
    parts = m.group("pair").upper().split("_")
    symbol = f"{parts[0]}/{parts[1]}" + (f":{parts[2]}" if len(parts) == 3 else "")
    return symbol, what


def _is_ccxt_venue(name: str) -> bool:
    import ccxt

    return name in ccxt.exchanges


def discover(path: Path, venue: str | None = None) -> tuple[list[ImportItem], list[tuple[Path, str]]]:
    """Importable items under ``path`` (a file or a directory, searched recursively) and the files
    skipped, with the reason."""
    path = Path(path)
    items: list[ImportItem] = []
    skipped: list[tuple[Path, str]] = []
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    recording_files: set[Path] = set()
    if path.is_dir():
        for group in _recording_groups(path, skipped):
            items.append(ImportItem("recording", tuple(group.files), group.venue, group=group))
            recording_files.update(p.resolve() for p in group.files)
    for f in files:
        if f.resolve() in recording_files:
            continue
        parsed = parse_file_name(f.name)
        if parsed is None:
            if _NAME.match(f.name):
                skipped.append((f, "mark/index/funding-rate candles are not imported"))
            else:
                skipped.append((f, "not a recognised candle or trade file"))
            continue
        symbol, what = parsed
        file_venue = f.parent.name.lower() if _is_ccxt_venue(f.parent.name.lower()) else venue
        if file_venue is None:
            skipped.append(
                (f, "unknown venue: put it under a folder named after the ccxt venue id or pass venue")
            )
            continue
        if what == "trades":
            items.append(ImportItem("trades", (f,), file_venue, symbol))
        else:
            try:
                timeframe_seconds(what)
            except MLMError as exc:
                skipped.append((f, str(exc)))
                continue
            items.append(ImportItem("candles", (f,), file_venue, symbol, what))
    return items, skipped


def _recording_groups(path: Path, skipped: list[tuple[Path, str]]) -> list[Any]:
    """Recording groups (``ingest.replay.discover``) whose trades an adapter can decode."""
    from market_liquidity_monitor.ingest.replay import discover as discover_recordings
    from market_liquidity_monitor.venues.registry import AdapterRegistry

    registry = AdapterRegistry()
    groups = []
    for group in discover_recordings(path):
        if group.fmt not in RECORDING_FORMATS:
            continue  # e.g. order-book-only formats: reported as unrecognised files
        try:
            registry(group.venue)
        except MLMError as exc:
            skipped.extend((f, f"no adapter to decode {group.venue} trades: {exc}") for f in group.files)
            continue
        groups.append(group)
    return groups


# -- readers ----------------------------------------------------------------------------------
@dataclass(slots=True)
class CandleArrays:
    """Candles as numpy arrays, sorted by open time, duplicates removed."""

    ts_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ms)


def _open_text(path: Path) -> Any:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def to_epoch_ms(values: pd.Series) -> np.ndarray:
    """A time column -> int64 epoch milliseconds. Datetimes (naive = UTC) and ISO text are converted;
    numbers are read as seconds (< 1e11), ms (< 1e14), us (< 1e17) or ns by magnitude."""
    if pd.api.types.is_datetime64_any_dtype(values):
        s = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        return s.dt.as_unit("ns").astype("int64").to_numpy() // 1_000_000
    if pd.api.types.is_numeric_dtype(values):
        arr = values.to_numpy(dtype="float64")
        peak = np.nanmax(np.abs(arr)) if len(arr) else 0.0
        if peak < 1e11:
            return np.round(arr * 1000).astype("int64")
        if peak < 1e14:
            return arr.astype("int64")
        if peak < 1e17:
            return (arr // 1000).astype("int64")
        return values.to_numpy(dtype="int64") // 1_000_000
    return to_epoch_ms(pd.to_datetime(values, utc=True))


def _frame_columns(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    df = df.rename(columns={c: str(c).strip().lower() for c in df.columns})
    tcol = next((c for c in _TIME_COLUMNS if c in df.columns), None)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in df.columns]
    if tcol is None or missing:
        raise ImportFormatError(
            f"{path.name}: expected a time column ({', '.join(_TIME_COLUMNS)}) and open, high, low, close, volume;"
            f" got {', '.join(map(str, df.columns))}"
        )
    out = pd.DataFrame({"ts_ms": to_epoch_ms(df[tcol])})
    for c in ("open", "high", "low", "close", "volume"):
        out[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64")
    return out


def read_candles(path: Path) -> CandleArrays:
    """Read a candle file (format from its extension). Rows with a missing value are dropped; rows
    are sorted by open time and duplicate open times keep the last row. Raises ``ImportFormatError``."""
    name = path.name
    try:
        if name.endswith((".json", ".json.gz")):
            with _open_text(path) as fh:
                raw = orjson.loads(fh.read())
            if not isinstance(raw, list):
                raise ImportFormatError(f"{name}: expected a JSON array of [ms, o, h, l, c, v] rows")
            arr = np.asarray(raw, dtype="float64").reshape(-1, 6) if raw else np.empty((0, 6))
            df = pd.DataFrame(arr, columns=["ts_ms", "open", "high", "low", "close", "volume"])
            df["ts_ms"] = to_epoch_ms(df["ts_ms"])
        elif name.endswith((".feather", ".arrow")):
            df = _frame_columns(pd.read_feather(path), path)
        elif name.endswith(".parquet"):
            df = _frame_columns(pd.read_parquet(path), path)
        elif name.endswith((".csv", ".csv.gz")):
            df = _frame_columns(pd.read_csv(path), path)
        else:
            raise ImportFormatError(f"{name}: unsupported candle file type")
    except (ValueError, OSError, orjson.JSONDecodeError) as exc:
        if isinstance(exc, ImportFormatError):
            raise
        raise ImportFormatError(f"{name}: {exc}") from exc
    df = df.dropna().sort_values("ts_ms", kind="stable").drop_duplicates("ts_ms", keep="last")
    return CandleArrays(
        ts_ms=df["ts_ms"].to_numpy(dtype="int64"),
        open=df["open"].to_numpy(dtype="float64"),
        high=df["high"].to_numpy(dtype="float64"),
        low=df["low"].to_numpy(dtype="float64"),
        close=df["close"].to_numpy(dtype="float64"),
        volume=df["volume"].to_numpy(dtype="float64"),
    )


def read_trades_file(path: Path) -> pd.DataFrame:
    """A freqtrade-style trades file -> DataFrame ``trade_id, ts_event_ns, price, size, side``."""
    name = path.name
    cols = ["timestamp", "id", "type", "side", "price", "amount", "cost"]
    try:
        if name.endswith((".json", ".json.gz")):
            with _open_text(path) as fh:
                raw = orjson.loads(fh.read())
            df = pd.DataFrame([r[:7] for r in raw], columns=cols[: len(raw[0])] if raw else cols)
        elif name.endswith((".feather", ".arrow")):
            df = pd.read_feather(path)
        elif name.endswith(".parquet"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path)
    except (ValueError, OSError, orjson.JSONDecodeError) as exc:
        raise ImportFormatError(f"{name}: {exc}") from exc
    df = df.rename(columns={c: str(c).strip().lower() for c in df.columns})
    size_col = next((c for c in ("amount", "size", "qty", "quantity") if c in df.columns), None)
    tcol = next((c for c in _TIME_COLUMNS if c in df.columns), None)
    if size_col is None or tcol is None or "price" not in df.columns:
        raise ImportFormatError(
            f"{name}: expected timestamp, price and amount columns; got {', '.join(df.columns)}"
        )
    ts_ns = to_epoch_ms(df[tcol]).astype("int64") * 1_000_000
    ids = df["id"].astype(str) if "id" in df.columns else pd.Series(np.arange(len(df))).astype(str)
    ids = ids.where(
        ids.str.len() > 0, pd.Series(ts_ns).astype(str) + "-" + pd.Series(np.arange(len(df))).astype(str)
    )
    side = df["side"].astype(str).str.lower() if "side" in df.columns else pd.Series([None] * len(df))
    return pd.DataFrame(
        {
            "trade_id": ids.to_numpy(),
            "ts_event_ns": ts_ns,
            "price": pd.to_numeric(df["price"], errors="coerce").to_numpy("float64"),
            "size": pd.to_numeric(df[size_col], errors="coerce").to_numpy("float64"),
            "side": side.to_numpy(),
        }
    ).dropna(subset=["price", "size"])


RECORDING_FORMATS = ("hftbacktest", "cryptofeed")


def _gunzip_all(raw: bytes) -> bytes:
    """Decompress every gzip member of ``raw``; a truncated tail yields what could be decoded."""
    out = []
    while raw:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out.append(d.decompress(raw))
        raw = d.unused_data if d.eof else b""
    return b"".join(out)


def _hftbacktest_trade_frames(files: Iterable[Path]) -> Iterator[tuple[int, bytes]]:
    """(ts_recv_ns, payload) of the trade lines of hftbacktest files (``<ns> <json>`` per line); the
    other lines (depth, bookTicker: ~85 % of them) are skipped before any parsing. Each file is
    decompressed in one call (a few tens of MB at most); a truncated gzip tail ends the file."""
    for path in files:
        raw = path.read_bytes()
        data = _gunzip_all(raw) if path.name.endswith(".gz") else raw
        for line in data.split(b"\n"):
            if b"trade" not in line:
                continue
            sp = line.find(b" ")
            if sp > 0 and line[:sp].isdigit():
                yield int(line[:sp]), line[sp + 1 :]


def _ws_frames(group: Any) -> Iterator[tuple[int, bytes]]:
    for rec in group.records():
        if getattr(rec, "kind", None) == "ws":
            yield rec.ts_recv_ns, rec.payload


def iter_recorded_trades(group: Any, batch_rows: int = CHUNK_ROWS) -> Iterator[list[dict[str, Any]]]:
    """Trades of a recording group (``ingest.replay.RecordingGroup``) in row-dict batches, decoded by
    the venue's adapter (which keeps any per-connection state, e.g. Bitfinex channel ids, so every
    frame of a cryptofeed capture is fed to it). In hftbacktest files (Binance streams, mostly depth
    and bookTicker lines) lines without ``trade`` in them are skipped unparsed. A trade without an id gets
    a deterministic one from its time, price, size, side and occurrence, so re-imports stay idempotent."""
    from market_liquidity_monitor.domain.events import Trade
    from market_liquidity_monitor.venues.registry import AdapterRegistry

    adapter = AdapterRegistry()(group.venue)
    seen: dict[str, int] = {}
    batch: list[dict[str, Any]] = []
    frames = _hftbacktest_trade_frames(group.files) if group.fmt == "hftbacktest" else _ws_frames(group)
    for ts_recv_ns, payload in frames:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        for ev in adapter.parse_message(msg, ts_recv_ns):
            if not isinstance(ev, Trade):
                continue
            ts = ev.ts_event if ev.ts_event is not None else ev.ts_recv
            trade_id = ev.trade_id
            if not trade_id or trade_id == "None":
                key = f"{ts}:{ev.price}:{ev.size}:{ev.side}"
                seen[key] = seen.get(key, -1) + 1
                trade_id = f"{key}#{seen[key]}"[-64:]
            batch.append(
                {
                    "venue": ev.instrument.venue,
                    "symbol": ev.instrument.symbol,
                    "trade_id": trade_id,
                    "ts_event_ns": ts,
                    "ts_recv_ns": ev.ts_recv,
                    "price": float(ev.price),
                    "size": float(ev.size),
                    "side": ev.side or None,
                }
            )
            if len(batch) >= batch_rows:
                yield batch
                batch = []
    if batch:
        yield batch


# -- import -----------------------------------------------------------------------------------
async def import_candles_file(
    db: Database, item: ImportItem, progress: ImportProgress | None = None, chunk_rows: int = CHUNK_ROWS
) -> ImportResult:
    result = ImportResult(item)
    t0 = time.perf_counter()
    data = read_candles(item.paths[0])
    result.rows_read = len(data)
    if progress:
        progress.start_item(item, len(data))
    for start in range(0, len(data), chunk_rows):
        sl = slice(start, start + chunk_rows)
        async with db.begin() as conn:
            result.rows_inserted += await insert_candles(
                conn,
                item.venue,
                item.symbol or "",
                item.timeframe or "",
                data.ts_ms[sl].tolist(),
                data.open[sl].tolist(),
                data.high[sl].tolist(),
                data.low[sl].tolist(),
                data.close[sl].tolist(),
                data.volume[sl].tolist(),
            )
        if progress:
            progress.advance(len(data.ts_ms[sl]))
    result.seconds = time.perf_counter() - t0
    return result


async def _insert_trade_rows(db: Database, rows: list[dict[str, Any]]) -> int:
    cols = {c: [r[c] for r in rows] for c in rows[0]}
    async with db.begin() as conn:
        return await bulk_insert_ignore(conn, trades_table, cols)


async def import_trades_item(
    db: Database, item: ImportItem, progress: ImportProgress | None = None, chunk_rows: int = CHUNK_ROWS
) -> ImportResult:
    result = ImportResult(item)
    t0 = time.perf_counter()
    if item.kind == "recording":
        if progress:
            progress.start_item(item, None)
        for batch in iter_recorded_trades(item.group, chunk_rows):
            result.rows_read += len(batch)
            result.rows_inserted += await _insert_trade_rows(db, batch)
            if progress:
                progress.advance(len(batch))
    else:
        df = read_trades_file(item.paths[0])
        result.rows_read = len(df)
        if progress:
            progress.start_item(item, len(df))
        for start in range(0, len(df), chunk_rows):
            part = df.iloc[start : start + chunk_rows]
            n = len(part)
            cols = {
                "trade_id": part["trade_id"].tolist(),
                "ts_event_ns": part["ts_event_ns"].tolist(),
                "price": part["price"].tolist(),
                "size": part["size"].tolist(),
                "side": part["side"].tolist(),
            }
            async with db.begin() as conn:
                result.rows_inserted += await bulk_insert_ignore(
                    conn, trades_table, cols, constants={"venue": item.venue, "symbol": item.symbol}
                )
            if progress:
                progress.advance(n)
    result.seconds = time.perf_counter() - t0
    return result


async def import_path(
    db: Database,
    path: Path,
    *,
    venue: str | None = None,
    include_recordings: bool = True,
    progress: ImportProgress | None = None,
    on_item: Callable[[ImportResult], None] | None = None,
) -> ImportReport:
    """Import every recognised file under ``path`` (see the module doc). A file that fails is
    reported in its ``ImportResult.error`` and the others still load. Tables must exist (run the
    migrations first)."""
    t0 = time.perf_counter()
    items, skipped = discover(Path(path), venue)
    report = ImportReport(skipped=skipped)
    for item in items:
        if item.kind == "recording" and not include_recordings:
            continue
        try:
            if item.kind == "candles":
                result = await import_candles_file(db, item, progress)
            else:
                result = await import_trades_item(db, item, progress)
        except (ImportFormatError, MLMError, KeyError) as exc:
            result = ImportResult(item, error=str(exc))
        report.results.append(result)
        if progress:
            progress.end_item(result)
        if on_item:
            on_item(result)
    report.seconds = time.perf_counter() - t0
    return report
