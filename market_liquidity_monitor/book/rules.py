"""Sequence rules of the non-Binance venues (the ``SequenceRule`` protocol of ``book.sync``).

Each rule answers three questions for ``BookSync``: is a delta already contained in the book
(``is_stale``), may it be the first applied after a snapshot (``is_first``), and does it directly
follow the last applied delta (``follows``). A ``False`` from ``is_first``/``follows`` is a gap:
``BookSync`` clears that one instrument's book and asks for a new snapshot. Deltas or snapshots
whose sequence is ``None`` bypass the rule (``BookSync`` only consults it when both sides have one).

How each venue's fields are mapped onto ``L2Delta`` (``first_sequence``, ``last_sequence``,
``prev_sequence``), with sources (../shared/VENUE_RULES.md, ../shared/data/README.md §5):

- OKX v5 ``books`` — ``OkxRule``: ``first = last = seqId``, ``prev = prevSeqId``; snapshot
  ``prevSeqId = -1`` and ``sequence = seqId``. Each update's ``prevSeqId`` must equal the last
  applied ``seqId``; seqIds may skip (nautilus_trader ``crates/adapters/okx/src/book_sync.rs``
  tests); a "no change" push has ``seqId == prevSeqId``; a reset after maintenance has
  ``seqId < prevSeqId`` (still linked by ``prevSeqId``). Captures from before 2022-06 carry no
  seqId (the 2022-05 capture has none): the rule is then bypassed and the checksum is the detector.
- Bybit v5 ``orderbook.{depth}.{symbol}`` — ``BybitRule``: ``first = last = u`` ("u is always in
  sequence": each message ``u == previous u + 1``, checked on the ob500 sample); ``u = 1`` is a
  snapshot after a service restart (the adapter emits it as an ``L2Snapshot``). The legacy
  ``orderBookL2_25`` has only ``cross_seq``, an engine-wide sequence that is strictly increasing
  per symbol but not contiguous: the adapter sends it as ``last_sequence`` with
  ``first_sequence = None`` and the rule then only checks order.
- KuCoin spot ``/market/level2`` — ``KucoinRule``: ``first = sequenceStart``, ``last =
  sequenceEnd``; REST snapshot ``sequence``. Drop ``sequenceEnd <= sequence``; first applied
  ``sequenceStart <= sequence + 1 <= sequenceEnd``; then ``sequenceStart == previous end + 1``
  (KuCoin "calibration procedure"; checked on the capture, README §5.1).
- Gate.io v4 ``spot.order_book_update`` — ``GateioRule``: ``U``/``u`` with the REST snapshot
  ``id`` (``with_id=true``): drop ``u <= id``; first ``U <= id + 1 <= u``; then ``U == prev u + 1``
  (Gate.io "how to maintain a local order book"; checked on the capture, README §5.1).
- Bitstamp ``diff_order_book`` — ``BitstampRule``: no update id; the sequence is
  ``microtimestamp`` (µs). Apply only diffs later than the REST snapshot's ``microtimestamp``;
  afterwards diffs must not go back in time (strictly increasing per pair on the capture). Loss
  cannot be detected from the payload.
- Bitfinex v2 ``book`` with ``SEQ_ALL`` (flag 65536) — ``LinkedRule``: the trailing ``SEQ`` counts
  every frame of the connection, so the adapter links each book frame to the previous frame of
  the same channel (``prev``) and breaks every link when the connection's ``SEQ`` skips. Same
  rule for Coinbase Advanced Trade ``l2_data`` (``sequence_num``, connection-wide [2ND]).
"""

from __future__ import annotations

from market_liquidity_monitor.book.sync import BinanceSpotRule
from market_liquidity_monitor.domain.events import L2Delta


class RangeRule(BinanceSpotRule):
    """Contiguous ``[first, last]`` update-id ranges checked against a REST snapshot id: the same
    arithmetic as Binance spot (drop ``last <= snapshot``; first ``first <= snapshot+1 <= last``;
    then ``first == previous last + 1``), used by KuCoin and Gate.io."""

    name = "range"


class KucoinRule(RangeRule):
    """KuCoin level2: ``sequenceStart``/``sequenceEnd`` against the REST snapshot ``sequence``."""

    name = "kucoin"


class GateioRule(RangeRule):
    """Gate.io v4: ``U``/``u`` against the REST snapshot ``id``."""

    name = "gateio"


class BybitRule:
    """Bybit v5: ``u`` contiguous (``first_sequence`` set). Legacy ``orderBookL2_25``: only an
    increasing ``cross_seq`` (``first_sequence is None``): order is checked, loss is not visible."""

    name = "bybit"

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        return delta.last_sequence <= book_sequence

    def is_first(self, delta: L2Delta, snapshot_sequence: int) -> bool:
        if delta.first_sequence is None:
            return delta.last_sequence > snapshot_sequence
        return delta.first_sequence <= snapshot_sequence + 1 <= delta.last_sequence

    def follows(self, delta: L2Delta, last_sequence: int) -> bool:
        if delta.first_sequence is None:
            return delta.last_sequence > last_sequence
        return delta.first_sequence == last_sequence + 1


class BitstampRule:
    """Bitstamp: ``microtimestamp`` ordering; diffs not later than the snapshot are contained in it."""

    name = "bitstamp"

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        return delta.last_sequence <= book_sequence

    def is_first(self, delta: L2Delta, snapshot_sequence: int) -> bool:
        return delta.last_sequence > snapshot_sequence

    def follows(self, delta: L2Delta, last_sequence: int) -> bool:
        return delta.last_sequence > last_sequence


class LinkedRule:
    """Each delta names the sequence of the frame it follows (``prev_sequence``); the adapter sets
    a link that can never match (``-1``) after a connection-level loss."""

    name = "linked"

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        return delta.last_sequence <= book_sequence

    def is_first(self, delta: L2Delta, snapshot_sequence: int) -> bool:
        return delta.prev_sequence == snapshot_sequence

    def follows(self, delta: L2Delta, last_sequence: int) -> bool:
        return delta.prev_sequence == last_sequence


class OkxRule(LinkedRule):
    """OKX ``prevSeqId`` linkage (``prev_sequence``); seqIds may skip, may repeat (no-change push)
    and may go down (reset), so staleness is judged on the link, not on the id's size."""

    name = "okx"

    def is_stale(self, delta: L2Delta, book_sequence: int) -> bool:
        prev = delta.prev_sequence
        # Linked to a state older than the book's: already contained in it.
        return prev is not None and 0 <= prev < book_sequence and delta.last_sequence <= book_sequence
