"""Replay throughput per venue adapter on the recorded captures, and the cost of checksum checks.

Run from the repo root (the recordings live in ../shared/data)::

    python benchmarks/bench_venues.py [--data ../shared/data] [--repeat 3] [--json]

Measured, per venue: every recorded frame of the venue's captures (cryptofeed WS + REST
snapshots, and the Bybit v5 sample), read and decompressed before timing, then decode (orjson) ->
adapter ``parse_message``/``parse_snapshot`` -> ``BookStore`` (sequence rule, book update,
checksum verification) via the same ``Replayer`` live replays use; best of ``--repeat`` runs.

Checksum cost, for the venues that send one (Kraken, OKX):

- ``verify_us``: time of one ``adapter.verify_checksum`` on each final book (Kraken includes the
  truncate-to-depth step; OKX the lookup of the original wire strings), median over books;
- throughput of the same replay with verification replaced by ``return True``
  (``msgs_per_s_no_verify``), and the slowdown it costs (``verify_overhead_pct``).

``--json`` prints one JSON object: ``{"venues": {venue: {...}}, "repeat": n}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import Replayer, discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import ADAPTER_CLASSES, AdapterRegistry

CHECKSUM_VENUES = ("kraken", "okx")
SKIP_VENUES = ("binance", "binanceusdm", "binancecoinm")  # benchmarks/bench_pipeline.py covers Binance


def load(data_dir: Path) -> dict[str, list]:
    """Records per venue, in replay order, fully read into memory."""
    out: dict[str, list] = {}
    for g in discover(data_dir):
        if g.fmt == "hftbacktest" or g.venue in SKIP_VENUES or g.venue not in ADAPTER_CLASSES:
            continue
        out.setdefault(g.venue, []).extend(g.records())
    return out


def _no_verify(cls: type) -> type:
    return type(f"{cls.__name__}NoVerify", (cls,), {"verify_checksum": lambda self, book, expected: True})


def replay_once(venue: str, records: list, verify: bool = True) -> tuple[float, BookStore, object]:
    cls = ADAPTER_CLASSES[venue]
    reg = AdapterRegistry({venue: cls if verify else _no_verify(cls)})
    store = BookStore(reg, clock=ReplayClock())
    gc.collect()
    t0 = time.perf_counter()
    Replayer(store, reg).run(records)
    return time.perf_counter() - t0, store, reg(venue)


def best_of(venue: str, records: list, repeat: int, verify: bool = True) -> tuple[float, BookStore, object]:
    runs = [replay_once(venue, records, verify) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def verify_cost_us(store: BookStore, adapter, n: int = 200) -> float | None:
    """Median over books of the mean time of one ``verify_checksum`` call, in µs."""
    per_book = []
    for inst in store.instruments():
        book = store.entry(inst).book
        if not book.quality.synced:
            continue
        t0 = time.perf_counter_ns()
        for _ in range(n):
            adapter.verify_checksum(book, 0)
        per_book.append((time.perf_counter_ns() - t0) / n / 1000)
    return round(statistics.median(per_book), 2) if per_book else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not (args.data / "cryptofeed").is_dir():
        print(f"no recordings at {args.data}", file=sys.stderr)
        return 2
    per_venue = load(args.data)
    result: dict[str, dict] = {}
    for venue, records in sorted(per_venue.items()):
        dt, store, adapter = best_of(venue, records, args.repeat)
        qs = [store.entry(i).book.quality for i in store.instruments()]
        row = {
            "messages": len(records),
            "books": len(qs),
            "updates": sum(store.entry(i).sync.counters.deltas_applied for i in store.instruments()),
            "gaps": sum(q.gaps for q in qs),
            "checksums_verified": sum(q.checksums_verified for q in qs),
            "checksum_failures": sum(q.checksum_failures for q in qs),
            "seconds": round(dt, 4),
            "msgs_per_s": round(len(records) / dt),
        }
        if venue in CHECKSUM_VENUES:
            dt_nv, _, _ = best_of(venue, records, args.repeat, verify=False)
            row["verify_us"] = verify_cost_us(store, adapter)
            row["msgs_per_s_no_verify"] = round(len(records) / dt_nv)
            row["verify_overhead_pct"] = round((dt - dt_nv) / dt_nv * 100, 1)
        result[venue] = row
    if args.json:
        print(json.dumps({"venues": result, "repeat": args.repeat}))
        return 0
    print(
        f"{'venue':10} {'messages':>8} {'books':>5} {'updates':>7} {'gaps':>4} {'cks ok/fail':>11} "
        f"{'msg/s':>9} {'verify µs':>9} {'msg/s no-verify':>15} {'overhead':>8}"
    )
    for venue, r in result.items():
        extra = (
            f"{r['verify_us']:9.2f} {r['msgs_per_s_no_verify']:15,} {r['verify_overhead_pct']:7.1f}%"
            if "verify_us" in r
            else ""
        )
        print(
            f"{venue:10} {r['messages']:8d} {r['books']:5d} {r['updates']:7d} {r['gaps']:4d} "
            f"{r['checksums_verified']:>5}/{r['checksum_failures']:<5} {r['msgs_per_s']:9,} {extra}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
