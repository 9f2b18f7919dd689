"""Instrument identity and closed enums.

``InstrumentId`` pairs a ccxt venue id with a ccxt unified symbol, as nautilus_trader does with its
``InstrumentId(symbol, venue)``: ``InstrumentId("binance", "BTC/USDT")``,
``InstrumentId("binanceusdm", "BTC/USDT:USDT")``, ``InstrumentId("binancecoinm", "BTC/USD:BTC")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from market_liquidity_monitor.domain.errors import InvalidInputError


class Side(StrEnum):
    """Order side of a taker order. A buy consumes asks, a sell consumes bids."""

    BUY = "buy"
    SELL = "sell"

    @classmethod
    def parse(cls, value: str | Side) -> Side:
        """Parse ``buy``/``sell`` (also ``bid``/``ask`` as the side they consume: ask -> buy)."""
        if isinstance(value, Side):
            return value
        v = str(value).strip().lower()
        alias = {
            "buy": cls.BUY,
            "long": cls.BUY,
            "ask": cls.BUY,
            "sell": cls.SELL,
            "short": cls.SELL,
            "bid": cls.SELL,
        }
        if v not in alias:
            raise InvalidInputError(f"Invalid side {value!r}: valid sides are 'buy' and 'sell'.")
        return alias[v]


class MarketType(StrEnum):
    SPOT = "spot"
    LINEAR = "linear"  # USDT/USDC-margined perpetual or future (ccxt "BTC/USDT:USDT")
    INVERSE = "inverse"  # coin-margined (ccxt "BTC/USD:BTC"); sizes are contracts on the wire


@dataclass(frozen=True, slots=True, order=True)
class InstrumentId:
    """One instrument on one venue: ``venue`` is a lowercase ccxt id, ``symbol`` a ccxt unified symbol."""

    venue: str
    symbol: str

    def __str__(self) -> str:
        return f"{self.venue}:{self.symbol}"

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1].split(":")[0]

    @property
    def settle(self) -> str | None:
        return self.symbol.split(":")[1] if ":" in self.symbol else None

    @property
    def market_type(self) -> MarketType:
        settle = self.settle
        if settle is None:
            return MarketType.SPOT
        return MarketType.INVERSE if settle == self.base else MarketType.LINEAR

    @classmethod
    def parse(cls, text: str) -> InstrumentId:
        """Parse ``"venue:SYMBOL"`` (the inverse of ``str()``)."""
        venue, sep, symbol = text.partition(":")
        if not sep or "/" not in symbol:
            raise InvalidInputError(
                f"Invalid instrument {text!r}: expected 'venue:BASE/QUOTE', e.g. 'binance:BTC/USDT'."
            )
        return cls(venue.lower(), symbol.upper())
