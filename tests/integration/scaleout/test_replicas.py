"""Scale-out on Redis Streams with real processes: a throwaway ``redis-server``, 2 ingest workers
(``mlm ingest --shard I/2 --data``) replaying four cryptofeed captures as fast as possible, and 2
API replicas (``mlm serve --bus``) that hold no ingest.

Reference: the same captures replayed in this test through the single-process path (``Replayer``
into one ``BookStore``). Every replica's book of every instrument, fetched over its REST API, must
equal the reference level by level; killing a worker must make its books stale on both replicas
(and only its books); restarting it must resync them to the reference again. The replicas start
while (or after) the workers replay, so they begin from the stored latest images plus the stream.
"""

from __future__ import annotations

import os
import signal
import time
from urllib.parse import quote

import httpx
import pytest

from market_liquidity_monitor.ingest.replay import ReadStats, Replayer, discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

from .conftest import free_port

pytestmark = pytest.mark.timeout(240)


def reference_books(data_dir, quality: dict | None = None) -> dict[tuple[str, str], tuple[list, list]]:
    """Single-process replay: ``{(venue, symbol): (bids, asks)}`` as float ``[price, size]``;
    ``quality`` gets each book's ``(gaps, resyncs)``."""
    reg = AdapterRegistry()
    store = BookStore(reg)
    for g in discover(data_dir):
        Replayer(store, reg).run(g.records(ReadStats()))
    out = {}
    for inst in store.instruments():
        v = store.view(inst.venue, inst.symbol)
        bids = [[float(p), float(s)] for p, s in zip(v.bid_prices, v.bid_sizes, strict=True)]
        asks = [[float(p), float(s)] for p, s in zip(v.ask_prices, v.ask_sizes, strict=True)]
        out[(inst.venue, inst.symbol)] = (bids, asks)
        if quality is not None:
            q = store.entry(inst).book.quality
            quality[(inst.venue, inst.symbol)] = (q.gaps, q.resyncs)
    return out


def replica_books(client: httpx.Client, keys) -> dict[tuple[str, str], tuple[list, list] | str]:
    out = {}
    for venue, symbol in keys:
        r = client.get(f"/api/orderbook/{venue}/{quote(symbol, safe='/:')}", params={"levels": 1000})
        out[(venue, symbol)] = (
            (r.json()["bids"], r.json()["asks"])
            if r.status_code == 200
            else f"{r.status_code} {r.text[:120]}"
        )
    return out


def differences(ref, got) -> list[str]:
    bad = []
    for key, (bids, asks) in ref.items():
        g = got.get(key)
        if isinstance(g, str) or g is None:
            bad.append(f"{key}: {g}")
        elif g != (bids[:1000], asks[:1000]):
            bad.append(
                f"{key}: levels differ (bids {len(g[0])} vs {len(bids)}, asks {len(g[1])} vs {len(asks)})"
            )
    return bad


def settled(client: httpx.Client, ref) -> bool:
    """Every reference book synced on the replica and nothing applied for 0.5 s (cheap: status)."""

    def applied() -> int | None:
        body = client.get("/api/status").json()
        rows = {(b["venue"], b["symbol"]): b for b in body["books"] if "synced" in b}
        if not all(k in rows and rows[k]["synced"] for k in ref):
            return None
        return body["bus"]["deltas_applied"] + body["bus"]["images_applied"]

    before = applied()
    time.sleep(0.5)
    return before is not None and applied() == before


def wait_equal(clients, ref, timeout_s: float) -> list[str]:
    for name, c in clients.items():
        wait_for(lambda c=c: settled(c, ref), timeout_s, f"{name} to settle")
    deadline = time.monotonic() + timeout_s
    while True:
        bad = []
        for name, c in clients.items():
            try:
                bad += [f"{name} {d}" for d in differences(ref, replica_books(c, ref))]
            except httpx.HTTPError as exc:
                bad.append(f"{name}: {exc}")
        if not bad or time.monotonic() > deadline:
            return bad
        time.sleep(1.0)


def status_books(client: httpx.Client) -> dict[tuple[str, str], dict]:
    body = client.get("/api/status").json()
    return {(b["venue"], b["symbol"]): b for b in body["books"] if "stale" in b}


def wait_for(pred, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}: {last}")


def test_two_shards_two_replicas_equal_single_process_and_survive_a_worker_restart(
    redis_url, small_data, procs
):
    ports = [free_port(), free_port()]
    workers = [
        procs.start(f"worker{i}", "ingest", "--shard", f"{i}/2", "--bus", redis_url, "--data", str(small_data),
                    "--speed", "0")
        for i in range(2)
    ]  # fmt: skip
    for i, port in enumerate(ports):
        procs.start(f"replica{i}", "serve", "--bus", redis_url, "--port", str(port))
    ref_quality: dict = {}
    ref = reference_books(small_data, ref_quality)
    assert len(ref) == 27
    clients = {
        f"replica{i}": httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=10) for i, p in enumerate(ports)
    }
    for name, c in clients.items():
        wait_for(lambda c=c: c.get("/api/health").status_code == 200, 60, f"{name} to serve")

    bad = wait_equal(clients, ref, 60)
    assert not bad, "\n".join(bad[:10]) + "\n" + procs.log("replica0")
    # No bus gap and no extra resync: each replica book went through the same gaps/resyncs as the
    # single-process book (the workers' lost-sync marks and reset images), nothing more.
    for name, c in clients.items():
        rows = status_books(c)
        assert {k: (rows[k]["gaps"], rows[k]["resyncs"]) for k in ref} == ref_quality, name
        bus = c.get("/api/status").json()["bus"]
        assert (bus["gaps"], bus["restarts"], bus["level_count_mismatches"]) == (0, 0, 0), name
        assert [(s["shard"], s["down"], s["books"]) for s in bus["shards"]] == [
            (0, False, 14),
            (1, False, 13),
        ]

    # Worker 1 dies (no goodbye): its venues are the 2nd and 4th of the sorted four.
    venues = sorted({v for v, _ in ref})
    dead = set(venues[1::2])
    assert dead == {"bitstamp", "okx"}
    os.kill(workers[1].pid, signal.SIGKILL)
    workers[1].wait(10)
    for name, c in clients.items():

        def stale_as_expected(c=c):
            rows = status_books(c)
            return all(rows[k]["stale"] == (k[0] in dead) for k in ref) and rows

        rows = wait_for(stale_as_expected, 15, f"{name}: books of the dead worker stale, others fresh")
        assert all(not rows[k]["ok"] for k in ref if k[0] in dead)
        assert [s["down"] for s in c.get("/api/status").json()["bus"]["shards"]] == [False, True]

    # Its restart replays again: the replicas discard the old books and resync from its images.
    procs.start(
        "worker1b", "ingest", "--shard", "1/2", "--bus", redis_url, "--data", str(small_data), "--speed", "0"
    )
    for name, c in clients.items():
        wait_for(
            lambda c=c: all(not r["stale"] and r["synced"] for k, r in status_books(c).items() if k in ref),
            60,
            f"{name}: every book fresh and synced again",
        )
    bad = wait_equal(clients, ref, 60)
    assert not bad, "\n".join(bad[:10])
    for name, c in clients.items():
        rows = status_books(c)
        assert all(rows[k]["resyncs"] == ref_quality[k][1] + 1 for k in ref if k[0] in dead), name
        assert all(rows[k]["resyncs"] == ref_quality[k][1] for k in ref if k[0] not in dead), name
        assert c.get("/api/status").json()["bus"]["restarts"] == 13, name  # the dead shard's books
