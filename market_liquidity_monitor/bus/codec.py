"""Bus messages: compact orjson arrays, one per stream entry.

Every message names its instrument as ``"venue|symbol"`` and carries the publishing worker's
``epoch`` (ns since the epoch at worker start; a restarted worker has a new one) and a
per-instrument bus ``seq`` that grows by one per book-changing message of that epoch:

- ``["d", key, epoch, seq, bids, asks, ts_event, ts_recv, t_in_ns, n_bids, n_asks]``: a verified
  delta (absolute sizes, ``"0"`` deletes; wire decimal strings as the venue sent them), applied by
  the worker after its ``BookSync``/checksum checks; ``n_bids``/``n_asks`` are the worker's level
  counts after it (a fixed-depth venue such as Kraken truncates; the replica does the same and
  checks the counts).
- ``["s", key, epoch, seq, bids, asks, ts_event, ts_recv, t_in_ns]``: a full image of the worker's
  book after message ``seq``. A *reset* image (the worker rebuilt its book from a venue snapshot)
  takes a new ``seq``; a periodic *checkpoint* repeats the current one (a synced replica skips it).
- ``["x", key, epoch, seq, ts_recv]``: the worker's book lost sync (gap, failed checksum,
  reconnect): replicas discard theirs until the next image.
- ``["h", shard, epoch, wall_ns, {key: now_ns}]``: heartbeat of a shard, with each book's clock
  ("now" on the worker: wall time live, the recording's time on replayed data).

On the metrics stream (consumed by consumer groups, ``bus.consumer``):

- ``["m", key, epoch, ts_ns, {name: value}]``: a metrics frame of one book at book time ``ts_ns``
  (its receive time; one per ``bus.metrics_interval_ms`` of book time), stored as ``metrics`` rows
  keyed by ``(venue, symbol, name, ts_ns)``: a frame written twice is one row.

``t_in_ns`` is the worker's wall time (``time.time_ns``) when the venue frame came in, for the
end-to-end latency of ``benchmarks/bench_bus.py``.
"""

from __future__ import annotations

import orjson

from market_liquidity_monitor.book.orderbook import L2Book
from market_liquidity_monitor.book.scaling import POW10
from market_liquidity_monitor.domain.instrument import InstrumentId

DELTA, IMAGE, INVALID, HEARTBEAT, METRICS = "d", "s", "x", "h", "m"

dumps = orjson.dumps
loads = orjson.loads


def inst_key(inst: InstrumentId) -> str:
    return f"{inst.venue}|{inst.symbol}"


def key_inst(key: str) -> InstrumentId:
    venue, _, symbol = key.partition("|")
    return InstrumentId(venue, symbol)


def scaled_text(value: int, decimals: int) -> str:
    """``12345, 2 -> "123.45"``: an exact decimal string of a scaled int (no float)."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    q, r = divmod(abs(value), POW10[decimals])
    return f"{sign}{q}.{r:0{decimals}d}"


def book_wire_levels(book: L2Book) -> tuple[list[list[str]], list[list[str]]]:
    """The book's levels as wire ``[price, size]`` strings, best first, exact (the book's scale)."""
    pd, sd = book.price_decimals or 0, book.size_decimals or 0
    bids, asks = book.levels_scaled()
    return (
        [[scaled_text(p, pd), scaled_text(s, sd)] for p, s in bids],
        [[scaled_text(p, pd), scaled_text(s, sd)] for p, s in asks],
    )
