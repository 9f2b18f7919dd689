"""Market Liquidity Monitor: liquidity analytics over real L2 order books, with a grounded assistant."""

__version__ = "0.1.0"
