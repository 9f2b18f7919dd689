"""The L2 order book with exact integer keys and incremental depth windows.

Layout per side: a ``dict`` price -> size (both scaled ints) for O(1) level updates, plus an
ascending ``list`` of the price keys kept sorted with ``bisect`` (a memmove of at most a few
thousand machine words per insert/delete, far cheaper than a tree in CPython at these sizes).

Depth windows ("depth within N bps of mid") are maintained incrementally: each registered window
keeps its current price bound and exact integer totals (base size and quote notional) per side.
A level change inside the bound adjusts the totals by the size difference; when the mid moves,
only the levels that cross the bound are added or removed. The totals therefore always equal a
full re-summation (checked by tests on the recorded books), at a cost proportional to what changed.

Definitions (standard; e.g. Kyle & Obizhaeva's market-microstructure texts, Binance/Kaiko depth
methodology):

- ``mid = (best_bid + best_ask) / 2``; ``spread_bps = (best_ask - best_bid) / mid * 1e4``;
- bid depth within ``w`` bps = sum of bid sizes with ``price >= mid * (1 - w/1e4)``;
  ask depth within ``w`` bps = sum of ask sizes with ``price <= mid * (1 + w/1e4)``;
  the notional variants sum ``price * size`` (quote units).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

import numpy as np

from market_liquidity_monitor.book.scaling import POW10, PrecisionError, parse_scaled, wire_decimals
from market_liquidity_monitor.book.view import BookView
from market_liquidity_monitor.domain.errors import BookNotReadyError, InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId

_BPS_DENOM = 1_000_000  # windows are held in hundredths of a bps: 1e4 bps * 100


@dataclass(slots=True)
class BookQuality:
    """What we know about a book's integrity. Counters only grow; flags describe the present."""

    synced: bool = False
    resyncs: int = 0
    gaps: int = 0
    last_gap_ts_ns: int | None = None
    checksums_verified: int = 0
    checksum_failures: int = 0
    crossed: bool = False
    crossed_episodes: int = 0
    stale: bool = False
    stale_episodes: int = 0
    rejected_updates: int = 0  # updates/snapshots whose levels could not be applied (book resynced)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class _Window:
    """Incremental depth within ``w100 / 100`` bps of mid for both sides (exact ints)."""

    __slots__ = ("ask_bound", "ask_notional", "ask_size", "bid_bound", "bid_notional", "bid_size", "w100")

    def __init__(self, w100: int):
        self.w100 = w100
        self.reset()

    def reset(self) -> None:
        # Bounds that include nothing: no bid is >= +inf-ish, no ask <= -1.
        self.bid_bound: int | None = None
        self.ask_bound: int | None = None
        self.bid_size = self.bid_notional = 0
        self.ask_size = self.ask_notional = 0


class L2Book:
    """One instrument's L2 book.

    Prices and sizes arrive as wire decimal strings and are stored as ints scaled by
    ``10**price_decimals`` and ``10**size_decimals``. The scale is taken from the first snapshot
    (its maximum fractional digits as written, or the venue's precision if given) and widened
    automatically if a later level needs more digits.

    The book itself is venue-agnostic: the venue's sequencing rule lives in
    ``market_liquidity_monitor.book.sync``, which decides whether a delta may be applied. The book
    only records ``sequence`` and refuses deltas before its first snapshot.
    """

    __slots__ = (
        "_ask_px",
        "_asks",
        "_bid_px",
        "_bids",
        "_windows",
        "contract_size",
        "instrument",
        "price_decimals",
        "quality",
        "sequence",
        "size_decimals",
        "ts_event_ns",
        "ts_recv_ns",
        "updates_applied",
    )

    def __init__(
        self,
        instrument: InstrumentId,
        price_decimals: int | None = None,
        size_decimals: int | None = None,
        contract_size: float | None = None,
    ):
        self.instrument = instrument
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals
        # Inverse contracts: face value in quote units per contract (Binance COIN-M BTC = 100 USD).
        self.contract_size = contract_size
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._bid_px: list[int] = []  # ascending; best bid is the last element
        self._ask_px: list[int] = []  # ascending; best ask is the first element
        self._windows: dict[int, _Window] = {}
        self.sequence: int | None = None
        self.ts_event_ns: int | None = None
        self.ts_recv_ns: int | None = None
        self.updates_applied = 0
        self.quality = BookQuality()

    # ------------------------------------------------------------------ state

    @property
    def is_ready(self) -> bool:
        return self.quality.synced

    def clear(self) -> None:
        """Drop all levels and mark the book unsynced (a resync must follow)."""
        self._bids.clear()
        self._asks.clear()
        self._bid_px.clear()
        self._ask_px.clear()
        for w in self._windows.values():
            w.reset()
        self.sequence = None
        self.quality.synced = False

    # --------------------------------------------------------------- updates

    def apply_snapshot(
        self,
        bids: list,
        asks: list,
        sequence: int | None,
        ts_event_ns: int | None,
        ts_recv_ns: int | None,
    ) -> None:
        """Replace the whole book with a snapshot of wire ``[price, size, ...]`` levels."""
        if self.price_decimals is None:
            self.price_decimals = max((wire_decimals(lv[0]) for lv in (*bids, *asks)), default=0)
        if self.size_decimals is None:
            self.size_decimals = max((wire_decimals(lv[1]) for lv in (*bids, *asks)), default=0)
        self._bids.clear()
        self._asks.clear()
        self._bid_px.clear()
        self._ask_px.clear()
        pd, sd = self.price_decimals, self.size_decimals
        try:
            for side, levels in ((self._bids, bids), (self._asks, asks)):
                for lv in levels:
                    size = parse_scaled(lv[1], sd)
                    if size < 0:
                        raise ValueError(f"negative size in level {lv[:2]!r}")
                    if size:
                        side[parse_scaled(lv[0], pd)] = size
                    else:
                        side.pop(parse_scaled(lv[0], pd), None)
        except PrecisionError as exc:
            self._widen(exc, is_price=exc.text in {lv[0] for lv in (*bids, *asks)})
            return self.apply_snapshot(bids, asks, sequence, ts_event_ns, ts_recv_ns)
        self._bid_px = sorted(self._bids)
        self._ask_px = sorted(self._asks)
        self.sequence = sequence
        self.ts_event_ns = ts_event_ns
        self.ts_recv_ns = ts_recv_ns
        self.quality.synced = True
        for w in self._windows.values():
            w.reset()
        self._recenter()
        self._check_crossed()

    def apply_levels(
        self,
        bids: list,
        asks: list,
        sequence: int | None,
        ts_event_ns: int | None,
        ts_recv_ns: int | None,
    ) -> None:
        """Apply absolute-size level updates (size 0 deletes; deleting an absent level is a no-op).

        Raises ``BookNotReadyError`` before the first snapshot. The caller (the venue's sync rule)
        has already checked that this update follows ``self.sequence``.
        """
        if not self.quality.synced:
            raise BookNotReadyError(f"{self.instrument}: no snapshot applied yet; delta refused")
        try:
            if bids:
                self._apply_side(bids, self._bids, self._bid_px, True)
            if asks:
                self._apply_side(asks, self._asks, self._ask_px, False)
        except PrecisionError as exc:
            # Widen the scale (rare: a venue changed tick size) and re-apply: updates are idempotent.
            self._widen(exc, is_price=any(lv[0] == exc.text for lv in (*bids, *asks)))
            return self.apply_levels(bids, asks, sequence, ts_event_ns, ts_recv_ns)
        if sequence is not None:
            self.sequence = sequence
        if ts_event_ns is not None:
            self.ts_event_ns = ts_event_ns
        self.ts_recv_ns = ts_recv_ns
        self.updates_applied += 1
        if self._windows:
            self._recenter()
        self._check_crossed()

    def _apply_side(self, levels: list, book: dict, keys: list, is_bid: bool) -> None:
        try:
            self._apply_side_loop(levels, book, keys, is_bid, True)
        except IndexError:
            # A string shorter than the scale's width ("5" at 8 decimals): redo the message with
            # the general parser. Level updates are absolute, so re-applying is idempotent.
            self._apply_side_loop(levels, book, keys, is_bid, False)

    def _apply_side_loop(self, levels: list, book: dict, keys: list, is_bid: bool, fast: bool) -> None:
        """Hot path. With ``fast``, a wire string whose point sits exactly ``d`` chars from the end
        has ``d`` decimals, so dropping the point is the exact scaled int; anything else goes
        through ``parse_scaled``. Window totals are adjusted once per message from the list of
        size changes, with each window's bound held in a local."""
        pd, sd = self.price_decimals, self.size_decimals
        pdot, sdot = -pd - 1, -sd - 1
        changes = []
        add_change = changes.append
        get = book.get
        for lv in levels:
            p = lv[0]
            q = lv[1]
            price = int(p.replace(".", "")) if fast and pd and p[pdot] == "." else parse_scaled(p, pd)
            size = int(q.replace(".", "")) if fast and sd and q[sdot] == "." else parse_scaled(q, sd)
            if size < 0:
                raise ValueError(f"negative size in level {lv[:2]!r}")
            old = get(price, 0)
            if size:
                book[price] = size
                if not old:
                    insort(keys, price)
            elif old:
                del book[price]
                del keys[bisect_left(keys, price)]
            else:
                continue  # removal of an unknown level: normal on Binance
            add_change((price, size - old))
        if not changes:
            return
        for w in self._windows.values():
            if is_bid:
                bound = w.bid_bound
                if bound is None:
                    continue
                ds = dn = 0
                for price, diff in changes:
                    if price >= bound:
                        ds += diff
                        dn += price * diff
                w.bid_size += ds
                w.bid_notional += dn
            else:
                bound = w.ask_bound
                if bound is None:
                    continue
                ds = dn = 0
                for price, diff in changes:
                    if price <= bound:
                        ds += diff
                        dn += price * diff
                w.ask_size += ds
                w.ask_notional += dn

    def truncate(self, max_levels: int) -> int:
        """Keep only the best ``max_levels`` levels per side; returns how many levels were dropped.

        Opt-in, for venues whose book is a fixed-depth window that never sends deletes for levels
        pushed out of scope (Kraken: "after each update, truncate your book to the subscribed
        depth", docs.kraken.com book-checksum v1/v2). Depth windows are rebuilt only if something
        was dropped.
        """
        dropped = 0
        nb = len(self._bid_px) - max_levels
        if nb > 0:  # worst bids are the lowest: the front of the ascending list
            for p in self._bid_px[:nb]:
                del self._bids[p]
            del self._bid_px[:nb]
            dropped += nb
        na = len(self._ask_px) - max_levels
        if na > 0:  # worst asks are the highest: the back
            for p in self._ask_px[max_levels:]:
                del self._asks[p]
            del self._ask_px[max_levels:]
            dropped += na
        if dropped and self._windows:
            for w in self._windows.values():
                w.reset()
            self._recenter()
        return dropped

    def _widen(self, exc: PrecisionError, is_price: bool) -> None:
        """Rescale every key (or size) to ``exc.needed`` decimals; totals are rebuilt."""
        if is_price:
            k = POW10[exc.needed - self.price_decimals]
            self._bids = {p * k: s for p, s in self._bids.items()}
            self._asks = {p * k: s for p, s in self._asks.items()}
            self.price_decimals = exc.needed
        else:
            k = POW10[exc.needed - self.size_decimals]
            self._bids = {p: s * k for p, s in self._bids.items()}
            self._asks = {p: s * k for p, s in self._asks.items()}
            self.size_decimals = exc.needed
        self._bid_px = sorted(self._bids)
        self._ask_px = sorted(self._asks)
        for w in self._windows.values():
            w.reset()
        self._recenter()

    def _check_crossed(self) -> None:
        crossed = bool(self._bid_px and self._ask_px and self._bid_px[-1] >= self._ask_px[0])
        if crossed and not self.quality.crossed:
            self.quality.crossed_episodes += 1
        self.quality.crossed = crossed

    # ---------------------------------------------------------- depth windows

    def track_window(self, window_bps: float) -> None:
        """Maintain depth within ``window_bps`` of mid incrementally from now on (idempotent)."""
        if not window_bps > 0:
            raise InvalidInputError(f"window_bps must be > 0, got {window_bps!r}")
        w100 = round(window_bps * 100)
        if w100 not in self._windows:
            self._windows[w100] = _Window(w100)
            self._recenter()

    def _recenter(self) -> None:
        """Move each window's bounds to the current mid, adding/removing only the crossing levels."""
        if not (self._bid_px and self._ask_px):
            return
        mid2 = self._bid_px[-1] + self._ask_px[0]  # 2 * mid, scaled
        bids, asks, bid_px, ask_px = self._bids, self._asks, self._bid_px, self._ask_px
        for w in self._windows.values():
            # bid: price >= mid*(1-w)  <=>  price >= ceil(mid2*(D-w)/(2D))
            lo = -((-mid2 * (_BPS_DENOM - w.w100)) // (2 * _BPS_DENOM))
            old = w.bid_bound
            if old is None:
                i = bisect_left(bid_px, lo)
                sel = bid_px[i:]
                sizes = [bids[p] for p in sel]
                w.bid_size = sum(sizes)
                w.bid_notional = sum(map(int.__mul__, sel, sizes))
            elif lo < old:  # window widened downward: add [lo, old)
                for p in bid_px[bisect_left(bid_px, lo) : bisect_left(bid_px, old)]:
                    s = bids[p]
                    w.bid_size += s
                    w.bid_notional += p * s
            elif lo > old:  # shrank: remove [old, lo)
                for p in bid_px[bisect_left(bid_px, old) : bisect_left(bid_px, lo)]:
                    s = bids[p]
                    w.bid_size -= s
                    w.bid_notional -= p * s
            w.bid_bound = lo
            # ask: price <= mid*(1+w)  <=>  price <= floor(mid2*(D+w)/(2D))
            hi = (mid2 * (_BPS_DENOM + w.w100)) // (2 * _BPS_DENOM)
            old = w.ask_bound
            if old is None:
                j = bisect_left(ask_px, hi + 1)
                sel = ask_px[:j]
                sizes = [asks[p] for p in sel]
                w.ask_size = sum(sizes)
                w.ask_notional = sum(map(int.__mul__, sel, sizes))
            elif hi > old:  # add (old, hi]
                for p in ask_px[bisect_left(ask_px, old + 1) : bisect_left(ask_px, hi + 1)]:
                    s = asks[p]
                    w.ask_size += s
                    w.ask_notional += p * s
            elif hi < old:  # remove (hi, old]
                for p in ask_px[bisect_left(ask_px, hi + 1) : bisect_left(ask_px, old + 1)]:
                    s = asks[p]
                    w.ask_size -= s
                    w.ask_notional -= p * s
            w.ask_bound = hi

    def depth_scaled(self, window_bps: float) -> tuple[int, int, int, int]:
        """Exact ``(bid_size, bid_notional, ask_size, ask_notional)`` within the window, scaled ints.

        Sizes are scaled by ``10**size_decimals``, notionals by ``10**(price_decimals+size_decimals)``.
        The window must have been registered with ``track_window``; otherwise it is computed by a
        full scan (same result, slower).
        """
        w = self._windows.get(round(window_bps * 100))
        if w is None:
            return self._depth_scan(window_bps)
        if w.bid_bound is None:
            raise BookNotReadyError(f"{self.instrument}: depth needs both sides of the book")
        return w.bid_size, w.bid_notional, w.ask_size, w.ask_notional

    def _depth_scan(self, window_bps: float) -> tuple[int, int, int, int]:
        if not (self._bid_px and self._ask_px):
            raise BookNotReadyError(f"{self.instrument}: depth needs both sides of the book")
        w100 = round(window_bps * 100)
        mid2 = self._bid_px[-1] + self._ask_px[0]
        lo = -((-mid2 * (_BPS_DENOM - w100)) // (2 * _BPS_DENOM))
        hi = (mid2 * (_BPS_DENOM + w100)) // (2 * _BPS_DENOM)
        bsel = self._bid_px[bisect_left(self._bid_px, lo) :]
        asel = self._ask_px[: bisect_left(self._ask_px, hi + 1)]
        bs = [self._bids[p] for p in bsel]
        as_ = [self._asks[p] for p in asel]
        return (
            sum(bs),
            sum(map(int.__mul__, bsel, bs)),
            sum(as_),
            sum(map(int.__mul__, asel, as_)),
        )

    def levels_within(self, window_bps: float) -> tuple[int, int]:
        """``(bid_levels, ask_levels)`` inside the window (bounds as ``depth_scaled``), so a caller
        can take a view of just the levels a window needs. Raises ``BookNotReadyError`` if a side is
        empty."""
        if not (self._bid_px and self._ask_px):
            raise BookNotReadyError(f"{self.instrument}: depth needs both sides of the book")
        w100 = round(window_bps * 100)
        mid2 = self._bid_px[-1] + self._ask_px[0]
        lo = -((-mid2 * (_BPS_DENOM - w100)) // (2 * _BPS_DENOM))
        hi = (mid2 * (_BPS_DENOM + w100)) // (2 * _BPS_DENOM)
        return len(self._bid_px) - bisect_left(self._bid_px, lo), bisect_left(self._ask_px, hi + 1)

    def depth(self, window_bps: float) -> dict[str, float]:
        """Depth within ``window_bps`` of mid as floats: base sizes and quote notionals per side.

        Returns ``{"bid_size", "ask_size", "bid_notional", "ask_notional"}``. For inverse contracts
        the raw sizes are contracts; use ``view()`` + analytics for base-unit figures.
        """
        bs, bn, as_, an = self.depth_scaled(window_bps)
        sk = POW10[self.size_decimals]
        nk = POW10[self.size_decimals + self.price_decimals]
        return {"bid_size": bs / sk, "ask_size": as_ / sk, "bid_notional": bn / nk, "ask_notional": an / nk}

    # ------------------------------------------------------------ top of book

    def best_bid_scaled(self) -> tuple[int, int] | None:
        if not self._bid_px:
            return None
        p = self._bid_px[-1]
        return p, self._bids[p]

    def best_ask_scaled(self) -> tuple[int, int] | None:
        if not self._ask_px:
            return None
        p = self._ask_px[0]
        return p, self._asks[p]

    def top_of_book(self) -> tuple[float, float, float, float] | None:
        """``(bid_price, bid_size, ask_price, ask_size)`` as floats, or None if a side is empty."""
        if not (self._bid_px and self._ask_px):
            return None
        pk, sk = POW10[self.price_decimals], POW10[self.size_decimals]
        b, a = self._bid_px[-1], self._ask_px[0]
        return b / pk, self._bids[b] / sk, a / pk, self._asks[a] / sk

    def mid_price(self) -> float | None:
        if not (self._bid_px and self._ask_px):
            return None
        return (self._bid_px[-1] + self._ask_px[0]) / (2 * POW10[self.price_decimals])

    # ----------------------------------------------------------------- export

    def level_count(self) -> tuple[int, int]:
        return len(self._bid_px), len(self._ask_px)

    def levels_scaled(
        self, max_levels: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Exact ``(price, size)`` int levels, best first: ``(bids, asks)``."""
        bp = self._bid_px[::-1] if max_levels is None else self._bid_px[: -max_levels - 1 : -1]
        ap = self._ask_px if max_levels is None else self._ask_px[:max_levels]
        return [(p, self._bids[p]) for p in bp], [(p, self._asks[p]) for p in ap]

    def view(self, max_levels: int | None = None) -> BookView:
        """A float ``BookView`` for analytics (sizes in base units, also for inverse contracts).

        Raises ``BookNotReadyError`` before the first snapshot.
        """
        if not self.quality.synced:
            raise BookNotReadyError(f"{self.instrument}: book is not synced (no snapshot yet or resyncing)")
        pk, sk = float(POW10[self.price_decimals]), float(POW10[self.size_decimals])
        bp = self._bid_px[::-1] if max_levels is None else self._bid_px[: -max_levels - 1 : -1]
        ap = self._ask_px if max_levels is None else self._ask_px[:max_levels]
        bid_prices = np.array(bp, dtype=float) / pk
        ask_prices = np.array(ap, dtype=float) / pk
        bid_sizes = np.array([self._bids[p] for p in bp], dtype=float) / sk
        ask_sizes = np.array([self._asks[p] for p in ap], dtype=float) / sk
        if self.contract_size:  # inverse: contracts * face value (quote) / price = base units
            bid_sizes = bid_sizes * self.contract_size / bid_prices if len(bp) else bid_sizes
            ask_sizes = ask_sizes * self.contract_size / ask_prices if len(ap) else ask_sizes
        return BookView(
            instrument=self.instrument,
            bid_prices=bid_prices,
            bid_sizes=bid_sizes,
            ask_prices=ask_prices,
            ask_sizes=ask_sizes,
            ts_event_ns=self.ts_event_ns,
            ts_recv_ns=self.ts_recv_ns,
            sequence=self.sequence,
            quality=self.quality.as_dict(),
        )
