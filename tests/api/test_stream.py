"""The WebSocket stream under load: 200 clients against a real uvicorn server on a loopback port,
on the recorded books, one client that never reads. And the hub's bounded queues on their own."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import socket
import threading
import time

import pytest
import uvicorn
from websockets.asyncio.client import connect

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.api.status import Readiness
from market_liquidity_monitor.api.stream import StreamHub
from tests.api.conftest import LIVE_VENUES, settings_for

N_CLIENTS = 200
RUN_S = 11.0  # long enough for two heartbeats at the default 5 s


class _Server:
    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 600
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


def _stalled_socket(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads (tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            "GET /ws/stream?symbol=BTC/USDT&window=50bps HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return s


@pytest.mark.slow
async def test_200_clients_get_frames_at_tick_rate_while_one_stalls(data_dir, api_home, api_market):
    settings = settings_for(data_dir, api_home, venues=LIVE_VENUES)  # default tick_hz 2, heartbeat 5 s
    app = create_app(settings, market=api_market)
    with _Server(app) as srv:
        await asyncio.to_thread(app.state.readiness.wait, 600)
        stalled = _stalled_socket(srv.port)
        url = f"ws://127.0.0.1:{srv.port}/ws/stream?symbol=BTC/USDT&window=50bps"
        log: list[list[tuple[float, str, int]]] = [[] for _ in range(N_CLIENTS - 1)]
        hellos: list[dict] = []

        async def reader(i: int, conns: list) -> None:
            async with connect(url, max_size=2**16) as ws:
                hellos.append(json.loads(await ws.recv()))
                conns.append(ws)
                deadline = time.monotonic() + RUN_S
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        msg = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    log[i].append((time.monotonic(), json.loads(msg)["type"], len(msg.encode())))

        async def mid_run() -> dict:
            await asyncio.sleep(RUN_S / 2)
            return app.state.hub.stats()

        conns: list = []
        *_, stats = await asyncio.gather(*(reader(i, conns) for i in range(N_CLIENTS - 1)), mid_run())
        deadline = time.monotonic() + 10  # the server notices the readers' close handshakes
        while app.state.hub.stats()["clients"] > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        end_stats = app.state.hub.stats()
        stalled.close()

    tick_hz = settings.analytics.tick_hz
    assert all(h["tick_hz"] == tick_hz and h["heartbeat_s"] == 5.0 for h in hellos)  # the defaults
    assert stats["clients"] == N_CLIENTS  # all connected at mid-run, the stalled one included
    assert end_stats["clients"] == 1  # the readers left; the stalled client is still held, not waited for
    rates, sizes, hb_gaps = [], [], []
    for entries in log:
        metrics = [t for t, kind, _ in entries if kind == "metrics"]
        beats = [t for t, kind, _ in entries if kind == "heartbeat"]
        sizes += [n for _, _, n in entries]
        assert len(metrics) >= (RUN_S - 1) * tick_hz
        rates.append((len(metrics) - 1) / (metrics[-1] - metrics[0]))
        assert len(beats) >= 2, "a heartbeat every 5 s"
        hb_gaps += [b - a for a, b in itertools.pairwise(beats)]
    print(
        f"\n{N_CLIENTS} clients: rate min {min(rates):.3f} / mean {sum(rates) / len(rates):.3f} Hz "
        f"(tick {tick_hz} Hz); frame size max {max(sizes)} B; heartbeat gap "
        f"{min(hb_gaps):.2f}-{max(hb_gaps):.2f} s; hub {stats}"
    )
    assert max(sizes) < 2048
    assert all(abs(r - tick_hz) / tick_hz < 0.15 for r in rates), (min(rates), max(rates))
    assert all(abs(g - 5.0) < 0.75 for g in hb_gaps)


async def test_hub_bounded_queue_skips_then_drops_a_stalled_client(data_dir, api_home, api_market):
    """Real hub on the real books at 4 Hz: a client whose queue is never drained keeps at most
    ``ws_client_queue`` frames, skips the rest, and is disconnected after ``ws_stall_timeout_s``;
    the drained client receives every frame meanwhile."""
    settings = settings_for(
        data_dir,
        api_home,
        venues=LIVE_VENUES,
        analytics={"tick_hz": 4.0},
        api={"ws_client_queue": 3, "ws_stall_timeout_s": 1.0, "ws_heartbeat_s": 60.0},
    )
    readiness = Readiness(settings, api_market)
    readiness.start()
    await asyncio.to_thread(readiness.wait, 600)
    hub = StreamHub(settings, api_market, readiness)
    await asyncio.to_thread(hub.resolve, "BTC/USDT")
    fast, slow = hub.register("BTC/USDT", 50.0), hub.register("BTC/USDT", 50.0)
    got: list[str] = []

    async def drain() -> None:
        while True:
            got.append(await fast.queue.get())

    await hub.start()
    t = asyncio.create_task(drain())
    await asyncio.sleep(2.6)
    fast_kicked = fast.kicked.is_set()
    await hub.stop()
    t.cancel()
    assert slow.kicked.is_set() and hub.dropped_clients == 1
    assert slow.queue.qsize() <= 3 and slow.skipped >= 3
    assert fast.skipped == 0 and not fast_kicked
    seqs = [json.loads(m)["seq"] for m in got if m.startswith("{")]
    assert len(seqs) >= 9 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
