"""Independent reference for time-travel tests: the Binance spot BTC/USDT book rebuilt with Decimal
from the raw hftbacktest lines (see tests/integration/test_time_travel.py for the rule and sources)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from decimal import Decimal


def _ns(iso: str) -> int:
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def decimal_book(data_dir, as_of_ns: int):
    """(bids, asks, last receive ns, last event ms) of binance spot BTCUSDT from the raw lines."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    last_id = None
    last_recv = last_event = None
    pending = []
    for name in ("btcusdt_20240808.gz", "btcusdt_20240809.gz"):
        with gzip.open(data_dir / "hftbacktest" / "spot" / name, "rt") as fh:
            for line in fh:
                ts_text, _, body = line.partition(" ")
                ts = int(ts_text)
                if ts > as_of_ns:
                    break
                msg = json.loads(body)
                if "lastUpdateId" in msg:
                    last_id = msg["lastUpdateId"]
                    bids = {Decimal(p): Decimal(q) for p, q in msg["bids"] if Decimal(q)}
                    asks = {Decimal(p): Decimal(q) for p, q in msg["asks"] if Decimal(q)}
                    last_recv, last_event = ts, None
                    updates, pending = pending, []
                else:
                    d = msg.get("data", {})
                    if d.get("e") != "depthUpdate":
                        continue
                    if last_id is None:
                        pending.append((ts, d))
                        continue
                    updates = [(ts, d)]
                for uts, u in updates:
                    if u["u"] <= last_id:
                        continue
                    for side, levels in ((bids, u["b"]), (asks, u["a"])):
                        for p, q in levels:
                            if Decimal(q):
                                side[Decimal(p)] = Decimal(q)
                            else:
                                side.pop(Decimal(p), None)
                    last_id = u["u"]
                    last_recv, last_event = uts, u["E"]
            else:
                continue
            break
    return bids, asks, last_recv, last_event


def decimal_vwap_buy(asks: dict[Decimal, Decimal], size: Decimal) -> Decimal:
    left, cost = size, Decimal(0)
    for p in sorted(asks):
        take = min(left, asks[p])
        cost += take * p
        left -= take
        if not left:
            break
    assert not left
    return cost / size
