"""WebSocket abuse: a client that stops reading is really disconnected when the hub drops it
(not left to a ping timeout), one address cannot hold more than its share of connections, the
number of distinct (symbol, window) streams computed per tick is capped, and each book's view is
built once per tick whatever the number of windows."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time

import pytest
from starlette.websockets import WebSocketDisconnect

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.api.status import Readiness
from market_liquidity_monitor.api.stream import StreamHub
from tests.api.conftest import LIVE_VENUES, open_client, settings_for
from tests.api.uvicorn_server import UvicornThread


def _stalled_socket(port: int, query: str) -> socket.socket:
    """Completes the WebSocket handshake, then never reads (tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return s


def _closed_by_peer(s: socket.socket, within_s: float) -> bool:
    """Read whatever is buffered; True once the server has closed or aborted the connection."""
    s.settimeout(0.5)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if not s.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            continue
    return False


@pytest.mark.slow
def test_a_dropped_client_is_disconnected_at_once(data_dir, api_home, api_market):
    """uvicorn's keepalive pings are off (before, such a client stayed connected forever; with the
    default 20 s + 20 s pings, ~40 s). Large fan-out messages (the path alert events take) fill
    the loopback buffers in about a second, so the hub sees the stall quickly."""
    settings = settings_for(
        data_dir,
        api_home,
        venues=LIVE_VENUES,
        analytics={"tick_hz": 20.0},
        api={"ws_client_queue": 2, "ws_stall_timeout_s": 1.0, "ws_heartbeat_s": 60.0},
    )
    app = create_app(settings, market=api_market)
    with UvicornThread(app, ws_ping_interval=None) as srv:
        assert app.state.readiness.wait(600)
        s = _stalled_socket(srv.port, "symbol=BTC/USDT&window=50")
        hub = app.state.hub
        deadline = time.monotonic() + 60
        while hub.stats()["clients"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        big = {"type": "alert", "event": {"message": "x" * 200_000}}
        while hub.stats()["clients_dropped"] == 0 and time.monotonic() < deadline:
            hub.publish(big)
            time.sleep(0.05)
        assert hub.stats()["clients_dropped"] == 1, hub.stats()
        dropped_at = time.monotonic()
        time.sleep(2.5)  # still not reading: the close frame cannot go out, so the server resets
        # the server side is gone: the client gets a reset (the unsent frames are dropped) as
        # soon as it looks, instead of a connection that lives on
        assert _closed_by_peer(s, 3), "the dropped client is still connected"
        assert time.monotonic() - dropped_at < 6
        assert hub.stats()["clients"] == 0
        s.close()


@pytest.fixture(scope="module")
def limited(data_dir, api_home, api_market):
    s = settings_for(
        data_dir, api_home, venues=LIVE_VENUES, api={"ws_max_clients_per_address": 2, "ws_max_streams": 3}
    )
    c = open_client(s, api_market)
    yield c
    c.__exit__(None, None, None)


def _refused(client, url: str) -> tuple[dict, int, str]:
    with client.websocket_connect(url) as ws:
        frame = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    return frame, exc.value.code, exc.value.reason


def test_per_address_connection_limit_has_a_clear_close_reason(limited):
    with (
        limited.websocket_connect("/ws/stream?symbol=BTC/USDT&window=50") as a,
        limited.websocket_connect("/ws/stream?symbol=BTC/USDT&window=50") as b,
    ):
        assert a.receive_json()["type"] == b.receive_json()["type"] == "hello"
        frame, code, reason = _refused(limited, "/ws/stream?symbol=BTC/USDT&window=50")
        assert frame["type"] == "error" and code == 1008
        assert "too many WebSocket connections from testclient (max 2 per address" in frame["detail"]
        assert reason.startswith("too many WebSocket connections from testclient")
    # both left: the address may connect again
    with limited.websocket_connect("/ws/stream?symbol=BTC/USDT&window=50") as c:
        assert c.receive_json()["type"] == "hello"
    assert limited.app.state.hub.stats()["clients_refused"] >= 1


def test_distinct_streams_are_capped_and_the_error_lists_the_windows(data_dir, api_home, api_market):
    s = settings_for(data_dir, api_home, venues=LIVE_VENUES, api={"ws_max_streams": 2})
    client = open_client(s, api_market)
    try:
        with (
            client.websocket_connect("/ws/stream?symbol=BTC/USDT&window=10") as a,
            client.websocket_connect("/ws/stream?symbol=BTC/USDT&window=25") as b,
        ):
            assert a.receive_json()["type"] == b.receive_json()["type"] == "hello"
            frame, code, _ = _refused(client, "/ws/stream?symbol=BTC/USDT&window=33")
            assert frame["type"] == "error" and code == 1013
            assert "at most 2 distinct (symbol, window) streams" in frame["detail"]
            assert "windows streamed now for BTC/USDT: 10, 25 bps" in frame["detail"]
            # a window already streamed costs nothing more: accepted
            with client.websocket_connect("/ws/stream?symbol=BTC/USDT&window=25bps") as c:
                assert c.receive_json()["type"] == "hello"
    finally:
        client.__exit__(None, None, None)


async def test_each_book_view_is_built_once_per_tick(data_dir, api_home, api_market):
    settings = settings_for(data_dir, api_home, venues=LIVE_VENUES, api={"ws_max_streams": 64})
    readiness = Readiness(settings, api_market)
    readiness.start()
    await asyncio.to_thread(readiness.wait, 600)
    hub = StreamHub(settings, api_market, readiness)
    await asyncio.to_thread(hub.resolve, "BTC/USDT")
    for w in range(1, 41):  # 40 distinct windows of one symbol, 2 venues
        hub.register("BTC/USDT", float(w))
    frames = await asyncio.to_thread(hub._frames, {c.key for c in hub.clients.values()})
    assert len(frames) == 40
    assert hub.last_tick_views == 2  # one view per book, not 40 x 2
