"""The API over PostgreSQL through real network faults (a loopback TCP proxy we control, in front
of the test server): down at start, cut at run time, frozen at run time. The API starts and
serves books, database endpoints answer 503 with a reason within the configured timeout,
/api/status reports the storage state, and an alert rule change that storage did not commit
changes nothing in memory (it does not come back, nor disappear, on restart)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData
from tests.integration.storage.conftest import _pg_admin_connect, pg_url_or_skip
from tests.integration.storage.tcp_proxy import TcpProxy

VENUES = ("binance", "binancecoinm")
TIMEOUT_S = 1.0
RULE = {
    "symbol": "BTC/USDT",
    "venue": "binance",
    "metric": "spread_bps",
    "comparison": "above",
    "threshold": 50,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def market(data_dir) -> MarketData:
    return MarketData.from_recordings(Settings(data_dir=data_dir, venues=VENUES), data_dir)


@pytest.fixture
def pg_database():
    """A throwaway database on the test server: (host, port, name); dropped afterwards."""
    url = asyncio.run(pg_url_or_skip())
    name = f"mlm_outage_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await _pg_admin_connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    u = make_url(url)
    try:
        yield u, name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _settings(data_dir, tmp_path, url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        home_dir=tmp_path,
        venues=VENUES,
        database_url=url,
        api={
            "db_connect_timeout_s": TIMEOUT_S,
            "db_statement_timeout_s": TIMEOUT_S,
            "db_probe_interval_s": 0.4,
        },
    )


def _open(settings: Settings, market: MarketData) -> TestClient:
    app = create_app(settings, market=market)
    c = TestClient(app, raise_server_exceptions=False)
    c.__enter__()
    assert app.state.readiness.wait(600)
    return c


def _wait_storage(c: TestClient, state: str, timeout_s: float = 15) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = c.get("/api/status").json()["storage"]
        if st["state"] == state:
            return st
        time.sleep(0.1)
    pytest.fail(f"storage did not become {state!r}: {st}")


def _timed(fn, *args, **kw):
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


def test_api_starts_and_serves_books_with_postgres_down_then_reconnects(
    data_dir, tmp_path, market, pg_database
):
    u, name = pg_database
    port = _free_port()  # nothing listens here yet
    url = u.set(host="127.0.0.1", port=port, database=name).render_as_string(hide_password=False)
    c = _open(_settings(data_dir, tmp_path, url), market)
    proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432, port=port)
    try:
        r = c.get("/api/orderbook/binance/BTC/USDT", params={"levels": 5})
        assert r.status_code == 200 and len(r.json()["bids"]) == 5  # books without the database
        for method, path in (("get", "/api/alerts"), ("post", "/api/alerts"), ("get", "/api/alerts/events")):
            r = getattr(c, method)(path, **({"json": RULE} if method == "post" else {}))
            assert r.status_code == 503, (path, r.text)
            assert r.json()["detail"].startswith("storage unavailable: ") and "Connect call failed" in r.text
            assert r.headers["retry-after"]
        r = c.get("/api/history/candles", params={"symbol": "BTC"})
        assert r.status_code == 503
        st = c.get("/api/status").json()["storage"]
        assert (
            st["backend"] == "postgresql"
            and st["state"] == "down"
            and "Connect call failed" in st["last_error"]
        )
        assert c.get("/api/status").json()["cache"] == {
            "backend": "memory", "configured": "memory", "degraded": False,
            "entries_in_memory": 0, "last_error": None, "redis_failures": 0,
        }  # fmt: skip

        proxy.start()  # the database is reachable now: reconnect (and migrate) on use
        st = _wait_storage(c, "ok")
        assert (
            st["last_error"].startswith("ConnectionRefusedError") or "Connect call failed" in st["last_error"]
        )
        r = c.post("/api/alerts", json=RULE)
        assert r.status_code == 201, r.text
        assert [a["id"] for a in c.get("/api/alerts").json()] == [r.json()["id"]]
    finally:
        c.__exit__(None, None, None)
        proxy.close()


def test_outage_at_run_time_is_503_and_memory_follows_storage(data_dir, tmp_path, market, pg_database):
    u, name = pg_database
    proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432).start()
    url = u.set(host="127.0.0.1", port=proxy.port, database=name).render_as_string(hide_password=False)
    settings = _settings(data_dir, tmp_path, url)
    c = _open(settings, market)
    try:
        _wait_storage(c, "ok")
        keep = c.post("/api/alerts", json=RULE).json()["id"]
        other = c.post("/api/alerts", json={**RULE, "threshold": 60}).json()["id"]

        # 1. frozen: the server accepts but never answers. 503 within the timeout, not a hang.
        proxy.freeze()
        r, took = _timed(c.delete, f"/api/alerts/{keep}")
        assert r.status_code == 503, r.text
        assert "did not answer in time" in r.json()["detail"] or "timeout" in r.json()["detail"].lower()
        assert took < 4 * TIMEOUT_S + 2, f"DELETE hung for {took:.1f} s"
        r, took = _timed(c.get, "/api/alerts/events")
        assert r.status_code == 503 and took < 4 * TIMEOUT_S + 2
        assert [a["id"] for a in c.get("/api/alerts").json()] == [keep, other]  # nothing changed in memory
        assert c.get("/api/orderbook/binance/BTC/USDT").status_code == 200
        assert _wait_storage(c, "down")["last_error"]

        # 2. gone: connections cut, new ones refused
        proxy.thaw()
        proxy.stop()
        r = c.delete(f"/api/alerts/{keep}")
        assert r.status_code == 503 and r.json()["detail"].startswith("storage unavailable: ")
        r = c.post("/api/alerts", json={**RULE, "threshold": 70})
        assert r.status_code == 503
        assert [a["id"] for a in c.get("/api/alerts").json()] == [keep, other]

        # 3. back: the delete of `other` is committed, then memory follows
        proxy.start()
        _wait_storage(c, "ok")
        deadline = time.monotonic() + 10
        while (r := c.delete(f"/api/alerts/{other}")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)  # pooled connections cut by the outage are replaced on checkout
        assert r.status_code == 204, r.text
        assert [a["id"] for a in c.get("/api/alerts").json()] == [keep]
    finally:
        c.__exit__(None, None, None)

    # restart on the same database: exactly the committed rules
    c = _open(settings, market)
    try:
        assert [a["id"] for a in c.get("/api/alerts").json()] == [keep]
    finally:
        c.__exit__(None, None, None)
        proxy.close()


def test_nul_in_alert_name_on_postgres_is_a_422(data_dir, tmp_path, market, pg_database):
    """PostgreSQL text cannot hold U+0000 (asyncpg raises): refused at the edge, nothing stored."""
    u, name = pg_database
    url = u.set(database=name).render_as_string(hide_password=False)
    c = _open(_settings(data_dir, tmp_path, url), market)
    try:
        r = c.post("/api/alerts", json={**RULE, "name": "spread\x00alarm"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
        assert c.get("/api/alerts").json() == []
    finally:
        c.__exit__(None, None, None)
