"""Exact decimal-string -> scaled-integer parsing for book keys.

Every price and size on the wire is a decimal string. The book keys levels by ``int(price * 10**d)``
computed from the string itself (never via float), so ``"61837.63000000"`` and ``"61837.63"`` give
the same key and a level that is deleted really disappears. Sizes are scaled the same way, which
makes depth sums exact integer arithmetic.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

POW10 = [10**i for i in range(40)]


class PrecisionError(ValueError):
    """The string has more significant fractional digits than the current scale can hold."""

    def __init__(self, text: str, decimals: int, needed: int):
        self.text = text
        self.decimals = decimals
        self.needed = needed
        super().__init__(f"{text!r} needs {needed} decimals, scale has {decimals}")


def fraction_digits(text: str) -> int:
    """Significant fractional digits of a decimal string (trailing zeros do not count)."""
    dot = text.find(".")
    if dot < 0:
        if "e" in text or "E" in text:
            exp = Decimal(text).normalize().as_tuple().exponent
            return max(0, -int(exp))
        return 0
    frac = text[dot + 1 :].rstrip("0")
    return len(frac)


def wire_decimals(text: str) -> int:
    """Fractional digits as written on the wire, trailing zeros included (``"0.05000" -> 5``).

    Venues write a pair's prices with a fixed number of decimals (its tick precision), so this is
    the natural scale for the book; Kraken's checksum relies on it (digits without the point).
    """
    dot = text.find(".")
    if dot < 0:
        return fraction_digits(text)
    if "e" in text or "E" in text:
        return fraction_digits(text)
    return len(text) - dot - 1


def parse_scaled(text: str, decimals: int) -> int:
    """Return ``text * 10**decimals`` as an exact int.

    Accepts ``"123"``, ``"123.45"``, ``".5"``, ``"-1.5"`` and exponent forms (``"4.8E-7"``, via Decimal).
    Raises ``PrecisionError`` when ``text`` has more significant fractional digits than ``decimals``,
    and ``ValueError`` when it is not a number.
    """
    dot = text.find(".")
    if dot < 0:
        try:
            return int(text) * POW10[decimals]
        except ValueError:
            return _parse_decimal(text, decimals)
    if "e" in text or "E" in text:
        return _parse_decimal(text, decimals)
    frac = len(text) - dot - 1
    if frac == decimals:
        return int(text[:dot] + text[dot + 1 :])
    if frac < decimals:
        return int(text[:dot] + text[dot + 1 :]) * POW10[decimals - frac]
    trimmed = text.rstrip("0")
    frac = len(trimmed) - dot - 1
    if frac > decimals:
        raise PrecisionError(text, decimals, frac)
    return int(trimmed[:dot] + trimmed[dot + 1 :] or "0") * POW10[decimals - frac]


def _parse_decimal(text: str, decimals: int) -> int:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    scaled = d.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise PrecisionError(text, decimals, fraction_digits(text))
    return int(scaled)


def format_scaled(value: int, decimals: int) -> str:
    """Inverse of ``parse_scaled`` without trailing zeros (``6183763000000, 8 -> "61837.63"``)."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), POW10[decimals])
    frac_s = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{frac_s}" if frac_s else f"{sign}{whole}"
