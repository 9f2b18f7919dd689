"""Pure analytics over books and arrays: no I/O, no framework imports; typed results with units.

``liquidity``: top of book, depth within N bps, imbalance, market impact (VWAP walk), impact
curves and the largest size within a slippage limit.
"""

from market_liquidity_monitor.analytics.liquidity import (
    BookImbalance,
    DepthWindow,
    ImpactCurve,
    ImpactPoint,
    ImpactResult,
    MaxSizeResult,
    OrderBookSummary,
    TopOfBook,
    book_summary,
    depth_within_bps,
    imbalance,
    impact_curve,
    market_impact,
    max_size_within_slippage,
    top_of_book,
)

__all__ = [
    "BookImbalance",
    "DepthWindow",
    "ImpactCurve",
    "ImpactPoint",
    "ImpactResult",
    "MaxSizeResult",
    "OrderBookSummary",
    "TopOfBook",
    "book_summary",
    "depth_within_bps",
    "imbalance",
    "impact_curve",
    "market_impact",
    "max_size_within_slippage",
    "top_of_book",
]
