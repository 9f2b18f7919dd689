"""PostgreSQL becomes unreachable mid-run (a TCP proxy in front of it is stopped): the ingest loop
keeps running unblocked, the writer buffers, and when the proxy comes back it catches up with no
row lost and none duplicated."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.engine import make_url

from market_liquidity_monitor.domain.events import Trade
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.storage.db import Database
from market_liquidity_monitor.storage.migrations import upgrade_async
from market_liquidity_monitor.storage.models import trades
from market_liquidity_monitor.storage.repositories import count_rows
from market_liquidity_monitor.storage.writer import StorageWriter


class TcpProxy:
    """A loopback TCP proxy; ``stop()`` refuses new connections and cuts the live ones."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for t in list(self._transports):
            t.abort()
        self._transports.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports.update((writer.transport, up_writer.transport))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._transports.discard(writer.transport)
        self._transports.discard(up_writer.transport)


async def test_ingest_keeps_running_through_a_postgres_outage_and_catches_up(pg_schema) -> None:
    target = make_url(pg_schema.url)
    await upgrade_async(pg_schema.url, schema=pg_schema.name)  # migrate directly, not via the proxy
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    db = Database(proxied, schema=pg_schema.name, connect_timeout_s=1)
    writer = StorageWriter(db, batch_size=200, flush_interval_s=0.05, max_buffer_rows=100_000,
                           retry_initial_s=0.05, retry_max_s=0.2)  # fmt: skip
    await writer.start()
    btc = InstrumentId("binance", "BTC/USDT")
    submitted = 0
    worst_tick_s = 0.0
    phase = "up"

    async def ingest(seconds: float) -> None:
        """The ingest loop: 50 trades every 10 ms; measures how long each tick's submits take."""
        nonlocal submitted, worst_tick_s
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            for _ in range(50):
                writer.submit_trade(
                    Trade(btc, "61837.63", "0.01", "buy", str(submitted), 10**18 + submitted, 10**18)
                )
                submitted += 1
            worst_tick_s = max(worst_tick_s, time.perf_counter() - t0)
            await asyncio.sleep(0.01)

    try:
        await ingest(0.4)
        await asyncio.sleep(0.2)
        assert writer.stats().written > 0 and writer.stats().db_available

        await proxy.stop()  # PostgreSQL unreachable from the writer
        phase = "down"
        await ingest(1.0)
        down = writer.stats()
        assert not down.db_available, down
        assert down.failed_attempts >= 1
        assert down.buffered > 0
        assert worst_tick_s < 0.25, f"ingest was blocked for {worst_tick_s:.3f} s"

        await proxy.start()  # same port: back
        phase = "recovering"
        await ingest(0.3)
        deadline = time.monotonic() + 10
        while writer.stats().buffered and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        final = await writer.stop(timeout_s=10)
        phase = "stopped"
    finally:
        if phase != "stopped":
            await writer.stop(timeout_s=1)
        await db.dispose()
        await proxy.stop()

    assert final.dropped == 0 and final.rejected == 0 and final.buffered == 0
    assert final.db_available
    direct = Database(pg_schema.url, schema=pg_schema.name)
    try:
        async with direct.engine.connect() as conn:
            assert await count_rows(conn, trades) == submitted  # no row lost, none duplicated
    finally:
        await direct.dispose()
    assert submitted > 5_000
