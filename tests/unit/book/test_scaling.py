from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market_liquidity_monitor.book.scaling import (
    PrecisionError,
    format_scaled,
    fraction_digits,
    parse_scaled,
    wire_decimals,
)


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("61837.63000000", 8, 6183763000000),
        ("61837.63", 8, 6183763000000),  # same price written shorter: same key
        ("61837.6300000000", 8, 6183763000000),  # longer, but only zeros beyond the scale
        ("5000", 2, 500000),
        ("0.00000048", 8, 48),
        ("4.8E-7", 8, 48),
        (".5", 1, 5),
        ("-1.5", 2, -150),
        ("0", 8, 0),
        ("0.00000000", 8, 0),
    ],
)
def test_parse_scaled_is_exact(text, decimals, expected):
    assert parse_scaled(text, decimals) == expected


def test_parse_scaled_refuses_to_drop_digits():
    with pytest.raises(PrecisionError) as exc:
        parse_scaled("1.23456", 2)
    assert exc.value.needed == 5


@pytest.mark.parametrize("bad", ["abc", "1.2.3", "nan", "inf", ""])
def test_parse_scaled_rejects_non_numbers(bad):
    with pytest.raises(ValueError):
        parse_scaled(bad, 2)


def test_decimal_counting():
    assert wire_decimals("0.05000") == 5  # as written: Kraken's checksum relies on it
    assert fraction_digits("0.05000") == 2  # significant
    assert wire_decimals("3368") == 0
    assert format_scaled(6183763000000, 8) == "61837.63"
    assert format_scaled(-150, 2) == "-1.5"


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=8, allow_nan=False, allow_infinity=False))
def test_round_trip(d):
    text = format(d, "f")
    v = parse_scaled(text, 8)
    assert format_scaled(v, 8) == format(d.normalize(), "f") if d != 0 else format_scaled(v, 8) == "0"
