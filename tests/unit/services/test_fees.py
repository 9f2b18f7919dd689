"""FeeService: which taker fee applies and where it comes from, on the recorded venue metadata.

References are read from the capture files directly (json of the recorded REST response) and from
the venues' published fee pages, never from the service's own table.
"""

from __future__ import annotations

import gzip
import json

import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import InvalidInputError
from market_liquidity_monitor.domain.instrument import InstrumentId
from market_liquidity_monitor.services.fees import FeeService, FeeUnknownError


def _recorded_body(data_dir, name: str):
    with gzip.open(data_dir / "cryptofeed" / name, "rt") as f:
        line = next(ln for ln in f if " -> " in ln)
    return json.loads(line.split(": ", 1)[1])


async def test_recorded_metadata_gives_bybit_its_own_taker_fee(data_dir) -> None:
    """The Bybit capture's /v2/public/symbols says taker_fee 0.00075 (7.5 bps): that is used for
    the recorded Bybit books, not a published rate of another era (5.5 bps)."""
    body = _recorded_body(data_dir, "BYBIT.0.gz")
    row = next(r for r in body["result"] if r["name"] == "ETHUSDT")
    fees = FeeService(Settings(data_dir=data_dir))
    fee = await fees.taker_fee(InstrumentId("bybit", "ETH/USDT:USDT"))
    assert fee.fee_bps == pytest.approx(float(row["taker_fee"]) * 1e4) == pytest.approx(7.5)
    assert "BYBIT.0.gz" in fee.source and "recorded 2021-04-17" in fee.source
    inverse = await fees.taker_fee(InstrumentId("bybit", "BTC/USD:BTC"))
    btc = next(r for r in body["result"] if r["name"] == "BTCUSD")
    assert inverse.fee_bps == pytest.approx(float(btc["taker_fee"]) * 1e4)


async def test_recorded_gate_and_kraken_fees_per_pair(data_dir) -> None:
    gate_rows = _recorded_body(data_dir, "GATEIO.0.gz")
    btc_usdc = next(r for r in gate_rows if r["id"] == "BTC_USDC")
    kraken = _recorded_body(data_dir, "KRAKEN.0.gz")["result"]
    xbt_chf = next(r for r in kraken.values() if r.get("wsname") == "XBT/CHF")
    fees = FeeService(Settings(data_dir=data_dir))
    g = await fees.taker_fee(InstrumentId("gate", "BTC/USDC"))
    k = await fees.taker_fee(InstrumentId("kraken", "BTC/CHF"))
    assert g.fee_bps == pytest.approx(float(btc_usdc["fee"]) * 100)  # percent -> bps
    assert k.fee_bps == pytest.approx(float(xbt_chf["fees"][0][1]) * 100)  # tier 0 taker, percent
    assert "GATEIO.0.gz" in g.source and "KRAKEN.0.gz" in k.source


async def test_precedence_request_then_settings_then_recorded_then_published(data_dir) -> None:
    inst = InstrumentId("bybit", "ETH/USDT:USDT")
    s = Settings(data_dir=data_dir, analytics={"taker_fee_bps": {"bybit:linear": 2.0, "bybit": 3.0}})
    fees = FeeService(s)
    assert (await fees.taker_fee(inst, {"bybit": 1.0})).source == "request fees_bps"
    over = await fees.taker_fee(inst)
    assert over.fee_bps == 2.0 and over.source == "settings analytics.taker_fee_bps['bybit:linear']"
    spot = await fees.taker_fee(InstrumentId("bybit", "ETH/USDT"))
    assert spot.fee_bps == 3.0 and "['bybit']" in spot.source
    # Binance spot has no fee in its recorded exchangeInfo: the published VIP 0 rate, 0.1000%
    # (binance.com/en/fee/schedule), is used and named.
    b = await FeeService(Settings(data_dir=data_dir)).taker_fee(InstrumentId("binance", "BTC/USDT"))
    assert b.fee_bps == 10.0 and b.source.startswith("published: Binance spot")


async def test_unknown_venue_and_bad_fees_are_refused_with_what_to_do(data_dir) -> None:
    fees = FeeService(Settings(data_dir=data_dir))
    with pytest.raises(
        FeeUnknownError, match=r"no taker fee known for venue 'nowhere'.*MLM_ANALYTICS__TAKER_FEE_BPS"
    ):
        await fees.taker_fee(InstrumentId("nowhere", "BTC/USDT"))
    with pytest.raises(InvalidInputError, match=r"\[0, 10000\) bps"):
        await fees.taker_fee(InstrumentId("binance", "BTC/USDT"), {"binance": -1})
    with pytest.raises(InvalidInputError, match="without a book in this request"):
        await fees.fee_table([InstrumentId("binance", "BTC/USDT")], {"kraken": 10})
    table, missing = await fees.fee_table(
        [InstrumentId("binance", "BTC/USDT"), InstrumentId("nowhere", "X/USD")]
    )
    assert set(table) == {"binance"} and "nowhere" in missing
