"""Hostile input at the API's edge: non-finite numbers, NUL characters, huge or deep bodies,
times outside pandas' range, 64-bit overflow. Every answer is a 4xx that names the field and the
rule, never a 500, never an echo of the input."""

from __future__ import annotations

import json
import select
import socket
import time

import pytest

from market_liquidity_monitor.api.app import create_app
from market_liquidity_monitor.api.hardening import MAX_ERRORS
from tests.api.conftest import LIVE_VENUES, settings_for
from tests.api.uvicorn_server import UvicornThread

JSON = {"content-type": "application/json"}

# (path, a valid body as JSON text with a ``%s`` where a number goes, the field's loc)
NUMBER_FIELDS = [
    (
        "/api/impact",
        '{"symbol": "BTC/USDT", "venue": "binance", "side": "buy", "size": %s}',
        ["body", "size"],
    ),
    ("/api/compare", '{"symbol": "BTC/USDT", "side": "buy", "size": %s}', ["body", "size"]),
    (
        "/api/compare",
        '{"symbol": "BTC/USDT", "side": "buy", "size": 1, "fees_bps": {"binance": %s}}',
        ["body", "fees_bps", "binance"],
    ),
    ("/api/execute", '{"symbol": "BTC", "side": "sell", "notional": %s}', ["body", "notional"]),
    (
        "/api/backtest",
        '{"symbol": "BTC", "side": "buy", "size": 1, "lookback_days": %s}',
        ["body", "lookback_days"],
    ),
    (
        "/api/alerts",
        '{"symbol": "BTC/USDT", "metric": "spread_bps", "comparison": "above", "threshold": %s}',
        ["body", "threshold"],
    ),
    ("/api/compare", '{"symbol": "BTC", "side": "buy", "size": 1, "venues": [%s]}', ["body", "venues", 0]),
]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
@pytest.mark.parametrize(
    ("path", "template", "loc"), NUMBER_FIELDS, ids=[f"{p}:{loc[-1]}" for p, _, loc in NUMBER_FIELDS]
)
def test_non_finite_numbers_are_a_422_naming_the_field(live_client, path, template, loc, literal):
    r = live_client.post(path, content=template % literal, headers=JSON)
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == loc and err["type"] == "finite_number" and "finite" in err["msg"]
    assert set(err) == {"loc", "msg", "type"}
    # the same body with a finite number is accepted by the edge (whatever the endpoint answers)
    ok = live_client.post(path, content=template % "1", headers=JSON)
    assert ok.status_code < 500 and not any(e.get("type") == "finite_number" for e in _errors(ok))


def _errors(r) -> list[dict]:
    d = r.json().get("detail") if r.headers.get("content-type", "").startswith("application/json") else None
    return d if isinstance(d, list) else []


def test_a_finite_body_still_works(live_client):
    """The guard re-serves the body it read: a normal request is answered from the real book."""
    r = live_client.post(
        "/api/impact", json={"symbol": "BTC/USDT", "venue": "binance", "side": "buy", "size": 0.5}
    )
    assert r.status_code == 200, r.text
    assert r.json()["filled_size"] == pytest.approx(0.5)


def test_nul_characters_are_refused_at_the_edge(live_client):
    r = live_client.post(
        "/api/impact", content='{"symbol": "BTC\\u0000", "side": "buy", "size": 1}', headers=JSON
    )
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "loc": ["body", "symbol"],
            "msg": "Text must not contain the NUL character (U+0000)",
            "type": "nul_character",
        }
    ]
    r = live_client.post(
        "/api/alerts",
        json={
            "symbol": "BTC/USDT",
            "metric": "spread_bps",
            "comparison": "above",
            "threshold": 1,
            "name": "a\x00b",
        },
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]
    r = live_client.get("/api/history/candles", params={"symbol": "BT\x00C"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "symbol"]
    r = live_client.get("/api/orderbook/binance/BTC%00USDT")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path"]


def test_a_422_names_the_field_and_never_echoes_the_input(live_client):
    big = "x" * 200_000
    r = live_client.post("/api/impact", json={"symbol": "BTC/USDT", "side": "buy", "size": big})
    assert r.status_code == 422
    assert len(r.content) < 1_000 and "xxxxxxxxxx" not in r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "size"] and set(err) == {"loc", "msg", "type"}
    # an unknown field whose name is huge: the loc is cut, the answer stays small
    r = live_client.post("/api/impact", json={"symbol": "BTC", "side": "buy", "size": 1, big: 1})
    assert r.status_code == 422 and len(r.content) < 1_000
    assert r.json()["detail"][0]["type"] == "extra_forbidden"


def test_a_422_lists_at_most_max_errors(live_client):
    fees = {f"v{i}": "not a number" for i in range(500)}
    r = live_client.post("/api/compare", json={"symbol": "BTC", "side": "buy", "size": 1, "fees_bps": fees})
    assert r.status_code == 422
    body = r.json()
    assert len(body["detail"]) == MAX_ERRORS and body["errors_total"] == 500
    assert all(e["loc"][:2] == ["body", "fees_bps"] for e in body["detail"])
    assert len(r.content) < 10_000


def test_deep_nesting_and_endless_integers_are_a_422(live_client):
    deep = '{"symbol": "BTC", "side": "buy", "size": 1, "venues": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = live_client.post("/api/compare", content=deep, headers=JSON)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_too_deep"
    long_int = '{"symbol": "BTC", "side": "buy", "size": 1' + "0" * 5000 + "}"
    r = live_client.post("/api/impact", content=long_int, headers=JSON)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "number_too_long"
    r = live_client.post("/api/impact", content='{"symbol": "BTC", "side": ', headers=JSON)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


def test_body_over_the_limit_is_413_with_the_limit(live_client):
    limit = live_client.app.state.settings.api.max_body_bytes
    r = live_client.post("/api/chat", content=b"{" + b" " * limit + b"}", headers=JSON)
    assert r.status_code == 413
    assert r.json()["max_body_bytes"] == limit and str(limit) in r.json()["detail"]


@pytest.mark.parametrize("param", ["start", "end"])
@pytest.mark.parametrize("path", ["/api/history/candles", "/api/export"])
def test_times_outside_pandas_range_are_a_422(live_client, path, param):
    base = {"symbol": "BTC", "kind": "candles"} if path == "/api/export" else {"symbol": "BTC"}
    for bad in ("-99999999999999", "99999999999999", "0001-01-01T00:00:00Z", "9999-12-31", "-1e20"):
        r = live_client.get(path, params={**base, param: bad})
        assert r.status_code == 422, (bad, r.text)
        assert "1677-09-22" in r.json()["detail"] and "2262-04-11" in r.json()["detail"]
    # -1 is a valid epoch-ms time (1969-12-31T23:59:59.999Z): not a 500
    r = live_client.get(path, params={**base, param: "-1"})
    assert r.status_code in (200, 404, 422) and r.status_code != 500, r.text


def test_start_minus_one_returns_the_stored_candles(live_client):
    r = live_client.get(
        "/api/history/candles", params={"symbol": "BTC", "timeframe": "1h", "start": "-1", "limit": 5}
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 5


def test_alert_id_beyond_int64_is_a_422_not_a_500(live_client):
    r = live_client.delete("/api/alerts/9223372036854775808")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "alert_id"]
    r = live_client.delete("/api/alerts/9223372036854775807")
    assert r.status_code == 404 and "existing ids" in r.json()["detail"]


# --------------------------------------------------------------------- a real server, a real stream


@pytest.fixture(scope="module")
def server(data_dir, api_home, api_market):
    app = create_app(
        settings_for(data_dir, api_home, venues=LIVE_VENUES, api={"max_body_bytes": 65_536}),
        market=api_market,
    )
    with UvicornThread(app) as srv:
        assert app.state.readiness.wait(600)
        yield srv


def _read_response(sock: socket.socket, timeout_s: float = 5.0) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(v)
            for k, v in (h.split(b":", 1) for h in head.split(b"\r\n")[1:])
            if k.strip().lower() == b"content-length"
        ),
        0,
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    """No Content-Length to trust: the server counts the chunks and answers 413 once past the
    limit, while the client is still sending (it never reads the 100 MB the client offers)."""
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(
        b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 16_384
    sent = 0
    answered = False
    try:
        while sent < 100_000_000:
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            if select.select([s], [], [], 0)[0]:
                answered = True
                break
            time.sleep(0.001)
    except (BrokenPipeError, ConnectionResetError):
        answered = True
    assert answered, "the server let the client stream 100 MB"
    assert sent < 4 * 65_536, f"the server read {sent} bytes before answering (limit 65536)"
    resp = _read_response(s)
    s.close()
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    body = json.loads(resp.partition(b"\r\n\r\n")[2])
    assert body["max_body_bytes"] == 65_536


def test_a_declared_huge_body_is_refused_before_it_is_sent(server):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(
        b"POST /api/impact HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    resp = _read_response(s)
    s.close()
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    assert b"104857600" in resp and b"65536" in resp


def test_non_finite_number_keeps_the_connection_usable(server):
    """Before: the 422 for NaN could not be rendered (NaN is not JSON), the server answered 500
    and dropped the connection. Now: 422, and the same keep-alive connection serves the next request."""
    import httpx

    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/api/impact", content='{"symbol": "BTC", "side": "buy", "size": NaN}', headers=JSON)
        assert r.status_code == 422
        r2 = c.post("/api/impact", json={"symbol": "BTC", "venue": "binance", "side": "buy", "size": 1})
        assert r2.status_code == 200
