"""A loopback TCP proxy to make real network faults in front of PostgreSQL: ``stop()`` refuses
new connections and cuts the live ones (server gone), ``freeze()`` keeps every connection open but
forwards nothing (server hung: the client waits on a silent socket), ``thaw()`` resumes.

It runs its own event loop in a daemon thread, so sync tests (TestClient) and async tests alike
can drive it; every method is thread-safe and returns once the change is in effect."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int = 0):
        self.target = (target_host, target_port)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._flowing = asyncio.Event()
        self._call(self._set_flowing())

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _set_flowing(self) -> None:
        self._flowing.set()

    # ------------------------------------------------------------------ control
    def start(self) -> TcpProxy:
        """Listen (on ``port``; a free one the first time when 0)."""
        self._call(self._start())
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listener and abort every proxied connection."""
        self._call(self._stop())

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for t in list(self._transports):
            t.abort()
        self._transports.clear()

    def freeze(self) -> None:
        """Forward nothing (both directions, new connections included) until ``thaw()``."""
        self._call(self._freeze())

    async def _freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._call(self._set_flowing())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # ------------------------------------------------------------------ forwarding
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.add(writer.transport)
        await self._flowing.wait()  # frozen: the client's connect hangs after the TCP accept
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports.add(up_writer.transport)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._transports.discard(writer.transport)
        self._transports.discard(up_writer.transport)
