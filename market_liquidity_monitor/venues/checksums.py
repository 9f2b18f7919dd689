"""Venue order-book checksums, and exact rendering of wire numbers as decimal strings.

Kraken (WS v1 and v2 ``book``) — sources: https://docs.kraken.com/api/docs/guides/spot-ws-book-v1 ,
https://docs.kraken.com/exchange/guides/websockets/book-checksum-v2.md (VENUE_RULES.md §4):

1. take the top 10 levels per side regardless of the subscription depth;
2. asks low -> high: remove ``.`` from the price, strip leading zeros; same for the volume;
   append ``price + volume`` (``"0.05000"`` + ``"0.00000304"`` -> ``"5000304"``);
3. bids high -> low, same formatting, appended after the asks;
4. ``crc32(asks + bids)`` compared as an **unsigned** 32-bit int.

With the book's exact integer levels this is ``str(scaled_price) + str(scaled_size)`` provided the
book's scale equals the number of decimals Kraken writes (the L2Book takes its scale from the wire
strings as written, so it does; ``shift`` arguments undo a scale that was widened later).

OKX (v5 ``books``) — sources: ccxt ``ts/src/pro/okx.ts`` ``handleOrderBookMessage``, OKX help-centre
checksum notes (VENUE_RULES.md §5): up to 25 levels interleaved ``bidPx:bidSz:askPx:askSz:…`` (when
one side runs out, continue with the other), joined with ``:``, CRC32 as a **signed** int32. The
strings are the ORIGINAL wire strings: ``"3368"`` re-rendered as ``"3368.0"`` changes the checksum.
Documented vector: bids ``[3366.1, 7], [3366, 6]``, asks ``[3366.8, 9], [3368, 8]`` ->
``"3366.1:7:3366.8:9:3366:6:3368:8"`` -> ``-1881014294``.
"""

from __future__ import annotations

from binascii import crc32
from decimal import Decimal

KRAKEN_CHECKSUM_LEVELS = 10
OKX_CHECKSUM_LEVELS = 25


# --------------------------------------------------------------------------------- Kraken


def kraken_format(text: str) -> str:
    """Kraken's checksum rendering of one decimal string: drop ``.``, strip leading zeros."""
    return text.replace(".", "").lstrip("0")


def kraken_checksum_strings(asks: list, bids: list) -> int:
    """Unsigned CRC32 of wire-string levels: ``asks`` best (lowest) first, ``bids`` best (highest)
    first, each ``[price, volume, ...]``; only the first 10 of each are used."""
    parts = [kraken_format(p) + kraken_format(q) for p, q, *_ in asks[:KRAKEN_CHECKSUM_LEVELS]]
    parts += [kraken_format(p) + kraken_format(q) for p, q, *_ in bids[:KRAKEN_CHECKSUM_LEVELS]]
    return crc32("".join(parts).encode())


def kraken_checksum_scaled(
    asks: list[tuple[int, int]], bids: list[tuple[int, int]], price_shift: int = 0, size_shift: int = 0
) -> int:
    """Unsigned CRC32 from exact scaled-int levels (best first, as ``L2Book.levels_scaled`` gives).

    ``str(int)`` is the wire string without its point and leading zeros when the scale equals the
    wire's decimals; ``price_shift``/``size_shift`` (>= 0) divide out extra digits of a widened
    scale (exact: the values came from strings with fewer decimals).
    """
    pk, sk = 10**price_shift, 10**size_shift
    if pk == 1 and sk == 1:
        s = "".join([f"{p}{q}" for p, q in asks[:KRAKEN_CHECKSUM_LEVELS]])
        s += "".join([f"{p}{q}" for p, q in bids[:KRAKEN_CHECKSUM_LEVELS]])
    else:
        s = "".join([f"{p // pk}{q // sk}" for p, q in asks[:KRAKEN_CHECKSUM_LEVELS]])
        s += "".join([f"{p // pk}{q // sk}" for p, q in bids[:KRAKEN_CHECKSUM_LEVELS]])
    return crc32(s.encode())


# ------------------------------------------------------------------------------------ OKX


def okx_checksum_string(bids: list, asks: list, depth: int = OKX_CHECKSUM_LEVELS) -> str:
    """The string OKX checksums: ``bidPx:bidSz:askPx:askSz:…`` over up to ``depth`` levels per side
    (best first), continuing with the longer side when the other runs out."""
    parts: list[str] = []
    for i in range(max(min(len(bids), depth), min(len(asks), depth))):
        if i < len(bids):
            parts += (bids[i][0], bids[i][1])
        if i < len(asks):
            parts += (asks[i][0], asks[i][1])
    return ":".join(parts)


def signed_crc32(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) as a signed 32-bit int (OKX's convention)."""
    c = crc32(text.encode())
    return c - (1 << 32) if c >= 1 << 31 else c


def okx_checksum(bids: list, asks: list) -> int:
    """Signed CRC32 of the top 25 interleaved levels given as ORIGINAL wire strings, best first."""
    return signed_crc32(okx_checksum_string(bids, asks))


# ------------------------------------------------------------------- wire-number rendering


def number_text(value: object) -> str:
    """A JSON number or string as a plain decimal string, without exponent or float noise added.

    Strings pass through. ``Decimal`` (from ``json.loads(..., parse_float=Decimal)``) keeps every
    digit the venue sent. ``int`` -> ``str``. ``float`` (a decoder without a decimal mode, e.g.
    orjson) -> its shortest round-trip repr, which is the text the venue wrote whenever the venue
    wrote at most 15-17 significant digits; exponent forms (``1e-05``) are expanded.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        r = repr(value)
        if "e" in r or "E" in r:
            return format(Decimal(r), "f")
        return r[:-2] if r.endswith(".0") else r
    raise TypeError(f"not a number: {value!r}")


def fixed_text(value: object, decimals: int) -> str:
    """``value`` rendered with exactly ``decimals`` fractional digits (Kraken v2 checksum needs the
    pair's precision: qty ``0.001`` at 8 decimals -> ``"0.00100000"``). Exact for str/Decimal/int."""
    d = Decimal(number_text(value))
    return f"{d:.{decimals}f}"
