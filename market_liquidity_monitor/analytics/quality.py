"""Whether a book can be trusted for a decision, from its integrity record (``BookView.quality``).

One rule, used wherever a book is judged (best venue of a comparison, books a router may use...):
a book is untrustworthy while it is not synced (resyncing after a gap or checksum failure),
crossed (best bid >= best ask) or stale (no update for longer than the staleness limit). The
counters (``gaps``, ``resyncs``, ``checksum_failures``) are history, not a present problem.
Callers word the problems themselves; this module only says which ones there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

__all__ = ["BookProblem", "book_problems"]


class BookProblem(StrEnum):
    """A present reason not to trust a book, in the order ``book_problems`` reports them."""

    NOT_SYNCED = "not synced"
    CROSSED = "crossed"
    STALE = "stale"


def book_problems(quality: Mapping[str, Any] | None) -> tuple[BookProblem, ...]:
    """The book's trust problems from its quality record (``BookView.quality`` or
    ``BookStore.quality(entry)``): ``NOT_SYNCED`` when ``synced`` is false, ``CROSSED`` when
    ``crossed``, ``STALE`` when ``stale`` (in that order); empty when it can be trusted.

    A missing key is no problem (``synced`` defaults to True). ``quality["age_ms"]`` is the age
    behind ``STALE``, for the caller's message.
    """
    q = quality or {}
    flags = (
        (BookProblem.NOT_SYNCED, not q.get("synced", True)),
        (BookProblem.CROSSED, bool(q.get("crossed"))),
        (BookProblem.STALE, bool(q.get("stale"))),
    )
    return tuple(p for p, present in flags if present)
