"""Full-pipeline throughput on the recorded Binance books, against a conventional baseline.

Pipeline measured, per recorded line: split the receive timestamp -> decode JSON -> normalize
(depth / bookTicker / trade / REST snapshot) -> apply to the book with the venue's sequence check
-> after every book change, read top of book and depth within 50 bps of mid (both sides, base size
and quote notional).

- ours: orjson + ``BinanceSpot``/``BinanceUsdm`` adapters + ``BookStore`` (``L2Book`` with exact
  integer keys and an incrementally maintained 50 bps window);
- baseline: how the usual Python monitors do it: stdlib ``json``, ``Decimal`` prices and sizes, a
  ``sortedcontainers.SortedDict`` per side, the same sync rule, and depth summed by walking the
  window with ``irange`` on every change.

Both run in the same process on the same lines (read and decompressed before timing), best of
``--repeat`` runs each. Usage::

    python benchmarks/bench_pipeline.py [--data ../shared/data] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

from sortedcontainers import SortedDict

from market_liquidity_monitor.ingest.clock import ReplayClock
from market_liquidity_monitor.ingest.replay import discover
from market_liquidity_monitor.ingest.store import BookStore
from market_liquidity_monitor.venues.registry import AdapterRegistry

WINDOW_BPS = 50
DEFAULT_GROUPS = ("hftbacktest/spot/btcusdt", "hftbacktest/usdm/btcusdt")


def load_lines(data_dir: Path, names=DEFAULT_GROUPS) -> list[tuple[str, str, bytes]]:
    """``(venue, wire_symbol, raw_line)`` for every line of the chosen recordings, in file order."""
    out = []
    for g in discover(data_dir):
        if g.name not in names:
            continue
        for f in g.files:
            with gzip.open(f, "rb") as fh:
                out.extend((g.venue, g.venue_symbols[0], line) for line in fh)
    return out


# --------------------------------------------------------------------- ours


def run_ours(lines) -> tuple[int, float]:
    import orjson

    reg = AdapterRegistry()
    clock = ReplayClock()
    store = BookStore(reg, windows_bps=(WINDOW_BPS,), clock=clock)
    loads = orjson.loads
    checksum = 0.0
    adapters = {v: reg(v) for v in {v for v, _, _ in lines}}
    entries = {}
    for venue, sym, line in lines:
        sp = line.find(b" ")
        ts = int(line[:sp])
        msg = loads(line[sp + 1 :])
        adapter = adapters[venue]
        if "lastUpdateId" in msg:
            events = [adapter.parse_snapshot(msg, sym, ts)]
        else:
            events = adapter.parse_message(msg, ts)
        for ev in events:
            store.on_event(ev)
            if ev.__class__.__name__ in ("L2Delta", "L2Snapshot"):
                e = entries.get(ev.instrument) or entries.setdefault(
                    ev.instrument, store.entry(ev.instrument)
                )
                book = e.book
                if book.quality.synced:
                    bb = book.best_bid_scaled()
                    ba = book.best_ask_scaled()
                    d = book.depth_scaled(WINDOW_BPS)
                    checksum += bb[0] + bb[1] + ba[0] + ba[1] + d[0] + d[2]
    return len(lines), checksum


# ----------------------------------------------------------------- baseline


class _BaselineBook:
    def __init__(self):
        self.bids = SortedDict()
        self.asks = SortedDict()
        self.last_u = None
        self.synced = False

    def apply(self, side: SortedDict, levels):
        for p, q in levels:
            price, qty = Decimal(p), Decimal(q)
            if qty == 0:
                side.pop(price, None)
            else:
                side[price] = qty


def run_baseline(lines) -> tuple[int, float]:
    books: dict[str, _BaselineBook] = {}
    buffers: dict[str, list] = {}
    w = Decimal(WINDOW_BPS) / Decimal(10_000)
    checksum = 0.0
    for venue, sym, line in lines:
        ts_s, _, body = line.partition(b" ")
        int(ts_s)
        msg = json.loads(body)
        key = venue + sym
        book = books.setdefault(key, _BaselineBook())
        spot = venue == "binance"
        changed = False
        if "lastUpdateId" in msg:
            lid = msg["lastUpdateId"]
            book.bids.clear()
            book.asks.clear()
            book.apply(book.bids, msg["bids"])
            book.apply(book.asks, msg["asks"])
            book.last_u = lid
            book.synced = True
            first = True
            for d in buffers.pop(key, []):
                if (d["u"] <= lid) if spot else (d["u"] < lid):
                    continue
                if first:
                    ok = (d["U"] <= lid + 1 <= d["u"]) if spot else (d["U"] <= lid <= d["u"])
                    first = False
                else:
                    ok = d["U"] == book.last_u + 1 if spot else d["pu"] == book.last_u
                if not ok:
                    raise RuntimeError("gap")
                book.apply(book.bids, d["b"])
                book.apply(book.asks, d["a"])
                book.last_u = d["u"]
            changed = True
        else:
            data = msg["data"]
            e = data.get("e")
            if e == "depthUpdate":
                if not book.synced:
                    buffers.setdefault(key, []).append(data)
                    continue
                lid = book.last_u
                if (data["u"] <= lid) if spot else (data["u"] < lid):
                    continue
                ok = data["U"] <= lid + 1 if spot else data["pu"] == lid
                if not ok:
                    raise RuntimeError("gap")
                book.apply(book.bids, data["b"])
                book.apply(book.asks, data["a"])
                book.last_u = data["u"]
                changed = True
            elif e == "trade":
                Decimal(data["p"]), Decimal(data["q"])
            else:  # bookTicker
                Decimal(data["b"]), Decimal(data["B"]), Decimal(data["a"]), Decimal(data["A"])
        if changed and book.bids and book.asks:
            bb, bq = book.bids.peekitem(-1)
            ba, aq = book.asks.peekitem(0)
            mid = (bb + ba) / 2
            lo, hi = mid * (1 - w), mid * (1 + w)
            bid_depth = sum(book.bids[p] for p in book.bids.irange(minimum=lo))
            ask_depth = sum(book.asks[p] for p in book.asks.irange(maximum=hi))
            checksum += float(bb + bq + ba + aq + bid_depth + ask_depth)
    return len(lines), checksum


def _best(fn, lines, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn(lines)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    lines = load_lines(args.data)
    if not lines:
        print(f"no recordings found under {args.data}", file=sys.stderr)
        return 2
    t_ours = _best(run_ours, lines, args.repeat)
    t_base = _best(run_baseline, lines, args.repeat)
    n = len(lines)
    res = {
        "messages": n,
        "msgs_per_s": round(n / t_ours),
        "baseline_msgs_per_s": round(n / t_base),
        "ratio": round(t_base / t_ours, 2),
        "recordings": list(DEFAULT_GROUPS),
        "window_bps": WINDOW_BPS,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"messages:            {n}")
        print(
            f"ours:                {res['msgs_per_s']:>10,} msg/s  (orjson, int-keyed L2Book, incremental depth)"
        )
        print(
            f"baseline:            {res['baseline_msgs_per_s']:>10,} msg/s  (json, Decimal, SortedDict, walk)"
        )
        print(f"ratio:               {res['ratio']:>10.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
