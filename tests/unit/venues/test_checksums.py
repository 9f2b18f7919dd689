"""Checksum functions against documented vectors and a real Kraken frame; wire-number rendering."""

from __future__ import annotations

from decimal import Decimal

import pytest

from market_liquidity_monitor.venues.checksums import (
    fixed_text,
    kraken_checksum_scaled,
    kraken_checksum_strings,
    kraken_format,
    number_text,
    okx_checksum,
    okx_checksum_string,
    signed_crc32,
)


def test_okx_documented_vector():
    # VENUE_RULES.md §5 (OKX v3/v5 checksum examples, verified there by experiment).
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8")]
    assert okx_checksum_string(bids, asks) == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert okx_checksum(bids, asks) == -1881014294


def test_okx_uses_strings_as_given_and_continues_the_longer_side():
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368.0", "8")]  # "3368.0" is not "3368": a different checksum
    assert okx_checksum(bids, asks) != -1881014294
    s = okx_checksum_string([("1", "1")], [("2", "1"), ("3", "2"), ("4", "3")])
    assert s == "1:1:2:1:3:2:4:3"
    many = [(str(100 - i), "1") for i in range(30)]
    assert okx_checksum_string(many, []).count(":") == 2 * 25 - 1  # at most 25 levels per side


def test_signed_crc32_range():
    for text in ("", "a", "3366.1:7:3366.8:9:3366:6:3368:8"):
        assert -(2**31) <= signed_crc32(text) < 2**31


@pytest.mark.parametrize(
    ("price", "qty", "expected"),
    [("0.05000", "0.00000304", "5000304"), ("45285.2", "0.00100000", "452852100000")],
)
def test_kraken_documented_formatting(price, qty, expected):
    # docs.kraken.com book-checksum v1 and v2 worked examples.
    assert kraken_format(price) + kraken_format(qty) == expected


# Top 10 of the first KSM/XBT snapshot in cryptofeed/KRAKEN.ws.50.0; the pair's first update
# (a bid at 0.00753600, outside the top 10) carried "c":"2884602505".
KSM_ASKS = [("0.00756500", "2.18055889"), ("0.00757200", "0.21000000"), ("0.00757600", "41.56388316"),
            ("0.00757700", "0.47100000"), ("0.00757900", "9.34778714"), ("0.00758200", "5.00000000"),
            ("0.00760500", "9.00000000"), ("0.00760600", "0.13453307"), ("0.00761100", "1.04974438"),
            ("0.00761400", "57.00000000")]  # fmt: skip
KSM_BIDS = [("0.00755800", "0.37890103"), ("0.00755500", "1.08952000"), ("0.00755400", "0.56900000"),
            ("0.00755200", "2.27388316"), ("0.00755100", "2.17903000"), ("0.00755000", "0.63900000"),
            ("0.00754600", "4.54816772"), ("0.00754500", "39.41000000"), ("0.00754400", "3.26863000"),
            ("0.00754300", "4.80000000")]  # fmt: skip


def test_kraken_real_checksum_from_strings_and_from_scaled_ints():
    assert kraken_checksum_strings(KSM_ASKS, KSM_BIDS) == 2884602505
    scaled = lambda lv: [(int(p.replace(".", "")), int(q.replace(".", ""))) for p, q in lv]  # noqa: E731
    assert kraken_checksum_scaled(scaled(KSM_ASKS), scaled(KSM_BIDS)) == 2884602505
    # A scale widened by 2 digits is undone by the shifts.
    wide = lambda lv: [(p * 100, q * 10) for p, q in scaled(lv)]  # noqa: E731
    assert kraken_checksum_scaled(wide(KSM_ASKS), wide(KSM_BIDS), 2, 1) == 2884602505
    # Only the top 10 count; a change to the 10th level changes it.
    assert kraken_checksum_strings([*KSM_ASKS, ("0.01", "1.0")], KSM_BIDS) == 2884602505
    assert kraken_checksum_strings([*KSM_ASKS[:9], ("0.00761400", "57.00000001")], KSM_BIDS) != 2884602505


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.10", "0.10"),
        (Decimal("0.00100000"), "0.00100000"),
        (Decimal("4.8E-7"), "0.00000048"),
        (60419, "60419"),
        (0.068965, "0.068965"),
        (5e-07, "0.0000005"),
        (-0.00023057, "-0.00023057"),
        (29.180002, "29.180002"),
        (1.0, "1"),
    ],
)
def test_number_text(value, text):
    assert number_text(value) == text


def test_number_text_rejects_non_numbers():
    with pytest.raises(TypeError):
        number_text(True)
    with pytest.raises(TypeError):
        number_text(None)


def test_fixed_text_pads_to_the_pairs_precision():
    assert fixed_text(0.001, 8) == "0.00100000"
    assert fixed_text(Decimal("45285.2"), 1) == "45285.2"
