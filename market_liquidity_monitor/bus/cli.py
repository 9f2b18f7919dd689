"""``mlm ingest --shard I/N --bus URL [--data DIR] [--speed N]`` and the replica side of
``mlm serve --bus URL`` (``replica_market``)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

log = logging.getLogger(__name__)


def ingest_command(
    shard: Annotated[str, typer.Option("--shard", help="This worker's shard, I/N (0 <= I < N).")] = "0/1",
    bus: Annotated[
        str | None,
        typer.Option("--bus", help="Bus URL: redis://host:port/db (default MLM_REDIS_URL)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Replay the shard's recordings in this directory (../shared/data layout)."
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Replay: 0 = as fast as possible, 1 = recorded time, N = N x.")
    ] = 1.0,
) -> None:
    """Run one ingest worker: the books of this shard's venues, published on the bus (Redis Streams)."""
    import asyncio

    from market_liquidity_monitor.bus.transport import open_bus
    from market_liquidity_monitor.bus.worker import ShardWorker, parse_shard
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.observability import configure_logging

    try:
        index, count = parse_shard(shard)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    if not speed >= 0:
        raise typer.BadParameter(f"{speed}: valid speeds are 0, 1 or N > 0", param_hint="--speed")
    if data is not None and not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory", param_hint="--data")
    settings = Settings()
    url = bus or settings.redis_url
    if not url:
        raise typer.BadParameter("give --bus redis://host:port/db (or set MLM_REDIS_URL)", param_hint="--bus")
    try:
        b = open_bus(url, prefix=settings.bus.prefix, maxlen=settings.bus.stream_maxlen)
        b.shards()  # reachable?
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--bus") from None
    except Exception as exc:
        typer.echo(f"error: bus {url} unreachable: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    configure_logging(settings)
    worker = ShardWorker(settings, b, index, count, data_dir=data, speed=speed)
    stop = worker.stop_event
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("ingest shard %d/%d publishing to %s", index, count, url)
    try:
        if data is None:
            asyncio.run(worker.run_live())
        else:
            stop.wait()
    finally:
        worker.stop()
        b.close()
    import json
    import sys

    sys.stdout.write(
        json.dumps({"venues": worker.venues, "replayed": worker.replayed, **worker.store.status()}) + "\n"
    )


def consume_command(
    bus: Annotated[
        str | None, typer.Option("--bus", help="Bus URL: redis://host:port/db (default MLM_REDIS_URL).")
    ] = None,
    group: Annotated[
        str, typer.Option("--group", help="Consumer group (one per kind of consumer).")
    ] = "storage",
    consumer: Annotated[
        str,
        typer.Option("--consumer", help="This member's name in the group (unique, stable across restarts)."),
    ] = "storage-1",
) -> None:
    """Run one storage consumer: metrics frames from the bus into the database (consumer group)."""
    import asyncio
    import json
    import sys

    from market_liquidity_monitor.bus.consumer import MetricsConsumer
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.observability import configure_logging
    from market_liquidity_monitor.storage import migrations
    from market_liquidity_monitor.storage.db import Database
    from market_liquidity_monitor.storage.writer import StorageWriter

    settings = Settings()
    url = bus or settings.redis_url
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        raise typer.BadParameter("give --bus redis://host:port/db (or set MLM_REDIS_URL)", param_hint="--bus")
    for name, value in (("--group", group), ("--consumer", consumer)):
        if not value or len(value) > 64 or not value.replace("-", "").replace("_", "").isalnum():
            raise typer.BadParameter(f"{value!r}: 1-64 letters, digits, '-' or '_'", param_hint=name)
    configure_logging(settings)

    async def main() -> dict:
        await migrations.upgrade_async(settings.effective_database_url)
        db = Database.from_settings(settings)
        writer = StorageWriter.from_settings(settings, db)
        c = MetricsConsumer(url, writer, prefix=settings.bus.prefix, group=group, consumer=consumer,
                            claim_idle_ms=settings.bus.claim_idle_ms)  # fmt: skip
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await c.run(stop)
        finally:
            await c.close()
            await db.dispose()
        return {
            "consumer": consumer,
            "group": group,
            **c.counters.as_dict(),
            "writer": writer.stats().to_dict(),
        }

    sys.stdout.write(json.dumps(asyncio.run(main()), default=str) + "\n")


def replica_market(settings, url: str):
    """A ``MarketData`` whose store a ``BookFollower`` keeps from the bus, and the follower
    (started). Raises ``ValueError`` for a bad URL."""
    from market_liquidity_monitor.bus.follower import BookFollower, ReplicaStore, bus_adapters
    from market_liquidity_monitor.bus.transport import open_bus
    from market_liquidity_monitor.market_data import MarketData
    from market_liquidity_monitor.venues.registry import AdapterRegistry

    bus = open_bus(url, prefix=settings.bus.prefix, maxlen=settings.bus.stream_maxlen)
    registry = AdapterRegistry()
    store = ReplicaStore(
        bus_adapters(registry),
        windows_bps=settings.analytics.depth_windows_bps,
        stale_after_ms=settings.analytics.stale_after_ms,
        max_buffer=settings.ingest.max_buffered_deltas,
    )
    market = MarketData(settings, store=store, registry=registry)
    follower = BookFollower(bus, store, heartbeat_timeout_s=settings.bus.heartbeat_timeout_s)
    market.bus_follower = follower  # /api/status shows it
    follower.start()
    return market, follower


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
    app.command("consume")(consume_command)
