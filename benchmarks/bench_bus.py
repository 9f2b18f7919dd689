"""End-to-end bus latency and throughput: Redis Streams vs the in-process bus, same run.

Path measured: a decoded venue frame enters the worker's ``PublishingStore`` (its ``BookSync``
and checksum checks run) -> published (batched by the flusher thread) -> read by a replica's
``BookFollower`` -> applied to the replica's book. Latency = replica applied (``time.time_ns``) -
frame in (``time.time_ns`` when the store got it; the same clock, one machine).

- ``inprocess``: ``InProcessBus``; worker and replica are threads of this process;
- ``redis``: ``RedisStreamsBus`` on a throwaway ``redis-server`` (``--redis URL`` to use another);
  the replica is a child process (its own interpreter and GIL), as an API replica would be.

Input: the first ``--records`` records (~6.5% are book events) of the recorded Binance BTC and ETH spot streams
(hftbacktest, ../shared/data), decoded before timing. Two phases per bus:

1. throughput: every event as fast as possible; book messages applied on the replica per second
   (first frame in -> last applied);
2. latency: ``--latency-events`` events paced at ``--rate`` per second (below saturation, so it is
   the path's latency, not a queue's); p50/p99 in ms.

Usage::

    python benchmarks/bench_bus.py [--data ../shared/data] [--records 40000] [--rate 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from market_liquidity_monitor.bus.follower import BookFollower, bus_adapters  # noqa: E402
from market_liquidity_monitor.bus.publisher import PublishingStore  # noqa: E402
from market_liquidity_monitor.bus.transport import InProcessBus, RedisStreamsBus  # noqa: E402
from market_liquidity_monitor.domain.events import L2Delta, L2Snapshot  # noqa: E402
from market_liquidity_monitor.ingest.replay import ReadStats, discover, merge  # noqa: E402
from market_liquidity_monitor.ingest.store import BookStore  # noqa: E402
from market_liquidity_monitor.venues.registry import AdapterRegistry  # noqa: E402

GROUPS = ("hftbacktest/spot/btcusdt", "hftbacktest/spot/ethusdt")


def load_events(data_dir: Path, records: int) -> list:
    import orjson

    reg = AdapterRegistry()
    groups = [g for g in discover(data_dir) if g.name in GROUPS]
    out = []
    for n, rec in enumerate(merge(*(g.records(ReadStats()) for g in groups))):
        if n >= records:
            break
        a = reg(rec.venue)
        msg = orjson.loads(rec.payload)
        evs = (
            [a.parse_snapshot(msg, rec.venue_symbol, rec.ts_recv_ns)]
            if rec.kind == "rest"
            else a.parse_message(msg, rec.ts_recv_ns)
        )
        out.extend(e for e in evs if isinstance(e, L2Delta | L2Snapshot))
    return out


class Sink:
    """Latencies of applied book messages (ns)."""

    def __init__(self):
        self.lat: list[int] = []
        self.last_ns = 0

    def __call__(self, inst, t_in_ns: int) -> None:
        now = time.time_ns()
        self.lat.append(now - t_in_ns)
        self.last_ns = now


def _feed(store: PublishingStore, events: list, rate: float | None) -> int:
    t0 = time.perf_counter()
    first = time.time_ns()
    for i, ev in enumerate(events):
        if rate:
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        store.on_event(ev)
    return first


def _published(store: PublishingStore) -> int:
    c = store.counters
    return c.deltas + c.images


def _follow(bus, sink: Sink, stop: threading.Event) -> BookFollower:
    f = BookFollower(bus, BookStore(bus_adapters(AdapterRegistry())), block_ms=20, on_applied=sink)
    threading.Thread(target=f.run, args=(stop,), daemon=True).start()
    return f


def _summary(lat_ns: list[int], n: int, first_ns: int, last_ns: int) -> dict:
    a = np.array(lat_ns, dtype=float) / 1e6
    wall = (last_ns - first_ns) / 1e9
    return {
        "messages": n,
        "msgs_per_s": round(n / wall) if wall > 0 else None,
        "latency_p50_ms": round(float(np.percentile(a, 50)), 3) if a.size else None,
        "latency_p99_ms": round(float(np.percentile(a, 99)), 3) if a.size else None,
    }


def _phase_local(make_bus, events: list, rate: float | None) -> dict:
    bus = make_bus()
    store = PublishingStore(AdapterRegistry(), bus, 0, 1)
    store.start()
    sink, stop = Sink(), threading.Event()
    _follow(bus, sink, stop)
    time.sleep(0.3)
    first = _feed(store, events, rate)
    want = _published(store)
    deadline = time.monotonic() + 120
    while len(sink.lat) < want and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    store.stop()
    return _summary(sink.lat, len(sink.lat), first, sink.last_ns) | {"published": want}


def _child(url: str, prefix: str, ready, done, q) -> None:
    sink, stop = Sink(), threading.Event()
    bus = RedisStreamsBus(url, prefix=prefix)
    _follow(bus, sink, stop)
    ready.set()
    want = done.get()  # the number of book messages published
    deadline = time.monotonic() + 120
    while len(sink.lat) < want and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    q.put((sink.lat, sink.last_ns))


def _phase_redis(url: str, events: list, rate: float | None, tag: str) -> dict:
    prefix = f"bench:{tag}:{time.time_ns()}"
    ctx = mp.get_context("spawn")
    ready, done, q = ctx.Event(), ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=_child, args=(url, prefix, ready, done, q), daemon=True)
    p.start()
    bus = RedisStreamsBus(url, prefix=prefix, maxlen=1_000_000)
    store = PublishingStore(AdapterRegistry(), bus, 0, 1)
    store.start()
    ready.wait(60)
    time.sleep(0.5)  # the child's first XREAD is waiting
    first = _feed(store, events, rate)
    store.flush()
    want = _published(store)
    done.put(want)
    lat, last_ns = q.get(timeout=180)
    p.join(10)
    store.stop()
    bus._r.delete(bus.stream(0), f"{prefix}:images:0", f"{prefix}:shards", bus.metrics_stream)
    bus.close()
    return _summary(lat, len(lat), first, last_ns) | {"published": want}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis() -> tuple[str, subprocess.Popen, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found: install it or pass --redis URL")
    port, d = _free_port(), tempfile.mkdtemp(prefix="bench-bus-")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", proc, d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=400.0, help="events/s of the latency phase")
    ap.add_argument("--latency-events", type=int, default=4000)
    ap.add_argument("--redis", default=None, help="use this Redis instead of a throwaway redis-server")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    events = load_events(args.data, args.records)
    if not events:
        raise SystemExit(f"no book events under {args.data} ({', '.join(GROUPS)})")
    proc = tmp = None
    url = args.redis
    if url is None:
        url, proc, tmp = _start_redis()
    try:
        lat_events = events[: args.latency_events]
        res = {
            "events": len(events),
            "latency_rate_per_s": args.rate,
            "latency_events": len(lat_events),
            "redis": "throwaway redis-server" if proc else "given",
            "cpus": os.cpu_count(),
            "inprocess": {
                "throughput": _phase_local(InProcessBus, events, None),
                "latency": _phase_local(InProcessBus, lat_events, args.rate),
            },
            "redis_streams": {
                "throughput": _phase_redis(url, events, None, "tp"),
                "latency": _phase_redis(url, lat_events, args.rate, "lat"),
            },
        }
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)
    ip, rs = res["inprocess"]["throughput"], res["redis_streams"]["throughput"]
    if ip["msgs_per_s"] and rs["msgs_per_s"]:
        res["throughput_ratio_redis_vs_inprocess"] = round(rs["msgs_per_s"] / ip["msgs_per_s"], 3)
    if args.json:
        sys.stdout.write(json.dumps(res) + "\n")
        return
    print(f"{res['events']:,} book events (Binance BTC+ETH spot, recorded)")
    for name in ("inprocess", "redis_streams"):
        t, lat = res[name]["throughput"], res[name]["latency"]
        print(
            f"{name:14} throughput {t['msgs_per_s'] or 0:>8,} msg/s ({t['messages']:,}/{t['published']:,} applied)"
            f"   latency at {args.rate:g}/s: p50 {lat['latency_p50_ms']} ms, p99 {lat['latency_p99_ms']} ms"
        )


if __name__ == "__main__":
    main()
