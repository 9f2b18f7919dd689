"""The L2 order book: exact integer price keys, sequence-checked updates, incremental depth windows."""

from market_liquidity_monitor.book.orderbook import BookQuality, L2Book
from market_liquidity_monitor.book.scaling import PrecisionError, parse_scaled
from market_liquidity_monitor.book.view import BookView

__all__ = ["BookQuality", "BookView", "L2Book", "PrecisionError", "parse_scaled"]
