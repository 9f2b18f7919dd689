"""Pure domain types shared by every layer: instruments, sides, normalized market events, errors."""

from market_liquidity_monitor.domain.errors import (
    BookNotReadyError,
    InsufficientLiquidityError,
    InvalidInputError,
    MLMError,
    SequenceGapError,
    UnknownSymbolError,
    UnknownVenueError,
)
from market_liquidity_monitor.domain.events import (
    BookTicker,
    L2Delta,
    L2Snapshot,
    Trade,
)
from market_liquidity_monitor.domain.instrument import InstrumentId, MarketType, Side

__all__ = [
    "BookNotReadyError",
    "BookTicker",
    "InstrumentId",
    "InsufficientLiquidityError",
    "InvalidInputError",
    "L2Delta",
    "L2Snapshot",
    "MLMError",
    "MarketType",
    "SequenceGapError",
    "Side",
    "Trade",
    "UnknownSymbolError",
    "UnknownVenueError",
]
