"""``mlm record`` and ``mlm replay``: capture a live venue feed, and replay recordings with stats.

- ``mlm record --venue V --symbol S [--symbol S2 ...] --out FILE [--duration-s N]`` runs the real
  live client (``ingest.live.VenueConnection``) and writes every processed frame and REST snapshot
  with its receive time (``ingest.recorder``; gzip members flushed every
  ``MLM_INGEST__RECORD_FLUSH_INTERVAL_S``, 1 s, so a crash loses at most the last second).
  Ctrl-C stops it cleanly.
- ``mlm replay FILE|DIR... [--speed 0|1|N] [--stats] [--json]`` reads our recordings and the
  layouts of ../shared/data (hftbacktest, cryptofeed, Bybit v5 zip, Tardis ``incremental_book_L2``
  and ``book_snapshot_N`` CSVs; ``replay.detect_format``), merges every file in receive-time order,
  replays through the venue adapters into a ``BookStore`` as fast as possible (``--speed 0``) or
  at 1x/Nx recorded time, and prints per instrument: messages, book updates applied, gaps,
  resyncs, checksums verified and failed, crossed and stale episodes, first and last timestamp.

Heavy imports happen inside the commands, so ``mlm --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

_STAT_COLUMNS = (
    ("messages", "msgs"),
    ("updates_applied", "updates"),
    ("snapshots", "snaps"),
    ("gaps", "gaps"),
    ("resyncs", "resyncs"),
    ("checksums_verified", "cks ok"),
    ("checksum_failures", "cks bad"),
    ("crossed_episodes", "crossed"),
    ("stale_episodes", "stale"),
)


def record_command(
    venue: Annotated[str, typer.Option("--venue", help="ccxt venue id (binance, okx, kraken, ...).")],
    symbol: Annotated[
        list[str], typer.Option("--symbol", help="Unified (BTC/USDT) or wire (BTCUSDT) symbol; repeatable.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file; gzip members when it ends in .gz.")],
    duration_s: Annotated[
        float | None, typer.Option("--duration-s", help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    ws_url: Annotated[
        str | None, typer.Option("--ws-url", help="WebSocket host override, e.g. ws://127.0.0.1:9000.")
    ] = None,
    rest_url: Annotated[str | None, typer.Option("--rest-url", help="REST host override.")] = None,
    fsync: Annotated[bool, typer.Option("--fsync", help="fsync the file after every flush.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object.")] = False,
) -> None:
    """Record a live venue feed (raw frames + REST snapshots, receive timestamps) to a file."""
    import asyncio
    import contextlib
    import signal

    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.domain.errors import UnknownVenueError
    from market_liquidity_monitor.ingest.recorder import record
    from market_liquidity_monitor.venues.registry import AdapterRegistry

    registry = AdapterRegistry()
    try:
        adapter = registry(venue)
    except UnknownVenueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--venue") from None
    if not symbol:
        raise typer.BadParameter("give at least one --symbol (e.g. BTC/USDT)", param_hint="--symbol")
    if duration_s is not None and not duration_s > 0:
        raise typer.BadParameter(f"must be > 0 seconds, got {duration_s}", param_hint="--duration-s")
    if not out.parent.is_dir():
        raise typer.BadParameter(f"directory {out.parent} does not exist", param_hint="--out")
    for s in symbol:
        try:
            adapter.venue_symbol(s) if "/" in s else adapter.unified_symbol(s)
        except (KeyError, ValueError, IndexError) as exc:
            raise typer.BadParameter(
                f"{s!r} is not a {venue} symbol ({exc}); use the unified form BASE/QUOTE",
                param_hint="--symbol",
            ) from None
    settings = Settings()
    err = Console(stderr=True)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, Windows
            loop.add_signal_handler(signal.SIGINT, stop.set)
        return await record(
            adapter,
            symbol,
            out,
            duration_s,
            settings=settings,
            stop=stop,
            fsync=fsync,
            ws_url=ws_url,
            rest_base_url=rest_url,
        )

    if not as_json:
        err.print(f"recording {venue} {', '.join(symbol)} to {out} (Ctrl-C stops)")
    result = asyncio.run(main())
    conn = result.connection
    books = conn.get("books", {})
    summary = {
        "out": str(result.path),
        "venue": venue,
        "symbols": list(books),
        "writer": result.writer,
        "connection": {k: v for k, v in conn.items() if k not in ("books", "rate_limiter")},
        "books": books,
    }
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        return
    w = result.writer
    err.print(
        f"wrote {w['ws_frames']:,} frames and {w['rest_bodies']} snapshots to {result.path} "
        f"({w['bytes_written']:,} bytes, {w['members']} members); reconnects={conn['reconnects']}"
    )
    for sym, q in books.items():
        err.print(
            f"  {sym}: synced={q['synced']} gaps={q['gaps']} resyncs={q['resyncs']} "
            f"checksums={q['checksums_verified']}/{q['checksum_failures']} sequence={q['sequence']}"
        )


def replay_command(
    files: Annotated[
        list[Path], typer.Argument(help="Recording files (any supported layout) or data directories.")
    ],
    speed: Annotated[
        float, typer.Option("--speed", help="0 = as fast as possible, 1 = recorded time, N = N x faster.")
    ] = 0.0,
    stats: Annotated[bool, typer.Option("--stats", help="Print the per-instrument statistics.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    venue: Annotated[
        str | None,
        typer.Option(
            "--venue", help="Venue of files whose path does not say (hftbacktest outside spot/usdm/cm)."
        ),
    ] = None,
    stale_after_ms: Annotated[
        int | None,
        typer.Option("--stale-after-ms", help="A book is stale after this long without an update."),
    ] = None,
) -> None:
    """Replay recordings through the venue adapters and print per-instrument book statistics."""
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.ingest.clock import ReplayClock, iso_ns
    from market_liquidity_monitor.ingest.replay import ReadStats, Replayer, read_paths, with_fallback
    from market_liquidity_monitor.ingest.store import BookStore
    from market_liquidity_monitor.venues.registry import AdapterRegistry

    if not files:
        raise typer.BadParameter("give at least one file or directory", param_hint="FILES")
    if not speed >= 0:
        raise typer.BadParameter(
            f"{speed}: valid speeds are 0 (as fast as possible), 1 (recorded time) or N > 0 (N x faster)",
            param_hint="--speed",
        )
    settings = Settings()
    stale_ms = settings.analytics.stale_after_ms if stale_after_ms is None else stale_after_ms
    if stale_ms <= 0:
        raise typer.BadParameter(f"must be > 0 ms, got {stale_ms}", param_hint="--stale-after-ms")
    adapter_for = with_fallback(AdapterRegistry())
    clock = ReplayClock()
    store = BookStore(
        adapter_for, clock=clock, stale_after_ms=stale_ms, max_buffer=settings.ingest.max_buffered_deltas
    )
    read_stats = ReadStats()
    try:
        records = read_paths(files, read_stats, venue=venue)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILES") from None
    replayer = Replayer(store, adapter_for, clock=clock, read_stats=read_stats)
    try:
        st = replayer.run(records, speed=speed)
    except KeyboardInterrupt:
        st = replayer.stats
        st.stopped = True
    rows = replayer.instrument_stats()
    summary = {
        "files": [str(f) for f in files],
        "speed": speed,
        "records": st.records,
        "events": st.events,
        "undecodable": st.undecodable,
        "corrupt_lines": read_stats.corrupt,
        "rejected_updates": st.rejected_updates,
        "files_with_problems": read_stats.report(),
        "connection_breaks": st.connection_breaks,
        "stopped": st.stopped,
        "first_ts": iso_ns(st.first_ts_ns),
        "last_ts": iso_ns(st.last_ts_ns),
        "wall_s": round(st.wall_s, 3),
        "msgs_per_s": round(st.records / st.wall_s) if st.wall_s > 0 else None,
        "instruments": len(rows),
        "stale_after_ms": stale_ms,
    }
    if stats:
        summary["per_instrument"] = rows
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        return
    out = Console()
    out.print(
        f"{st.records:,} records, {st.events:,} events, {len(rows)} instruments in {st.wall_s:.2f} s "
        f"({summary['msgs_per_s'] or 0:,} msg/s); {summary['first_ts']} -> {summary['last_ts']}; "
        f"corrupt lines {read_stats.corrupt}, undecodable {st.undecodable}, "
        f"rejected updates {st.rejected_updates}, "
        f"connection breaks {st.connection_breaks}" + (" (stopped)" if st.stopped else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if not stats:
        return
    head = f"{'venue':12} {'symbol':24}" + "".join(f" {t:>8}" for _, t in _STAT_COLUMNS)
    out.print(f"{head} {'end':20} {'first':24} {'last':24}", markup=False, highlight=False, soft_wrap=True)
    for r in rows:
        flags = ",".join(f for f in ("synced", "crossed", "stale") if r[f]) or "-"
        cells = "".join(f" {r[k]:>8,}" for k, _ in _STAT_COLUMNS)
        out.print(
            f"{r['venue']:12} {r['symbol']:24}{cells} {flags:20} {r['first_ts']:24} {r['last_ts']:24}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add ``record`` and ``replay`` as top-level commands of the ``mlm`` app."""
    app.command("record")(record_command)
    app.command("replay")(replay_command)
