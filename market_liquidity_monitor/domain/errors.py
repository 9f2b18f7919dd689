"""Named errors. Every error says what was wrong and, where there is a closed set, what is valid."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable


class MLMError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInputError(MLMError, ValueError):
    """A caller passed a value outside its valid range (size <= 0, unknown side, bad window...)."""


def closest(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` entries of ``valid`` closest to ``name`` (difflib ratio), best first."""
    return list(_closest(name.lower(), tuple(valid), n))


@functools.lru_cache(maxsize=1024)
def _closest(name: str, valid: tuple[str, ...], n: int) -> tuple[str, ...]:
    # Memoised: a cross-venue question raises UnknownSymbolError for every venue that lacks the
    # symbol, and difflib over ~100 names was half of a /api/compare request (bench_api profile).
    by_case = {v.lower(): v for v in valid}
    hits = difflib.get_close_matches(name, list(by_case), n=n, cutoff=0.4)
    return tuple(by_case[h] for h in hits)


class UnknownVenueError(MLMError, KeyError):
    """The venue id is not one we know or have data for."""

    def __init__(self, venue: str, valid: Iterable[str]):
        self.venue = venue
        self.valid = sorted(set(valid))
        self.suggestions = closest(venue, self.valid)
        hint = f" Did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"Unknown venue {venue!r}.{hint} Valid venues: {', '.join(self.valid) or 'none'}.")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class UnknownSymbolError(MLMError, KeyError):
    """The symbol is not listed on the venue (or no book exists for it)."""

    def __init__(self, symbol: str, valid: Iterable[str], venue: str | None = None):
        self.symbol = symbol
        self.venue = venue
        self.valid = sorted(set(valid))
        self.suggestions = closest(symbol, self.valid)
        where = f" on {venue}" if venue else ""
        hint = f" Did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        shown = ", ".join(self.valid[:20]) + (" ..." if len(self.valid) > 20 else "")
        super().__init__(f"Unknown symbol {symbol!r}{where}.{hint} Available: {shown or 'none'}.")

    def __str__(self) -> str:
        return self.args[0]


class SequenceGapError(MLMError):
    """A delta does not follow the book's last sequence number: applying it would corrupt the book."""

    def __init__(self, expected: int | str, got: int | str, detail: str = ""):
        self.expected = expected
        self.got = got
        super().__init__(f"Sequence gap: expected {expected}, got {got}. {detail}".strip())


class BadUpdateError(MLMError, ValueError):
    """A decoded book update or snapshot whose levels cannot be applied (a non-finite or malformed
    price or size, a negative size, a level that is not ``[price, size]``). The book store has
    already discarded the book and asked for a new snapshot when this is raised."""


class BookNotReadyError(MLMError):
    """The book has no snapshot yet (still warming up or resyncing)."""


class InsufficientLiquidityError(MLMError):
    """The book cannot fill the requested size at all (an empty side)."""
