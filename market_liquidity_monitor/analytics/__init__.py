"""Pure analytics over books and arrays: no I/O, no framework imports; typed results with units.

- ``liquidity``: top of book, depth within N bps, imbalance, market impact (VWAP walk), impact
  curves and the largest size within a slippage limit;
- ``venues``: fee-aware comparison of one order across venues (VWAP, slippage, fee, cost, depth,
  best venue and why), arbitrage between contemporaneous books after taker fees, venue shares of
  depth, HHI and effective venue count; per-venue taker fees passed in with their source;
- ``quality``: whether a book can be trusted for a decision (``book_problems``: not synced,
  crossed, stale), from its integrity record;
- ``routing``: splitting one order across venues (smart order routing) against baselines;
- ``alerts``: user alert rules on mid, spread, depth, imbalance, z-score, volume and volatility,
  their evaluation with cooldowns, and liquidity-crunch detection;
- ``pairs``: hedge ratio, cointegration, z-score and round-trip cost of a pair (statsmodels);
- ``backtest``: execution-cost backtests over candles with a book model calibrated on real books.

``pairs`` and ``backtest`` (pandas, statsmodels) are imported on first use of one of their names,
so ``import market_liquidity_monitor.analytics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from market_liquidity_monitor.analytics.alerts import (
    AlertEvaluator,
    AlertEvent,
    AlertMetric,
    AlertRule,
    Comparison,
    CrunchEpisode,
    DepthSide,
    LiquidityCrunchReport,
    Observation,
    Rearm,
    RuleState,
    ZScoreSource,
    depth_key,
    detect_liquidity_crunches,
    evaluate_rule,
    evaluate_rules,
    metric_values,
    required_windows,
    sample_observation,
)
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
    imbalance_from_depth,
    impact_curve,
    market_impact,
    max_size_within_slippage,
    top_of_book,
)
from market_liquidity_monitor.analytics.quality import BookProblem, book_problems
from market_liquidity_monitor.analytics.routing import (
    BaselineComparison,
    ChildOrder,
    RoutedVenue,
    RoutingPlan,
    RoutingResult,
    route_order,
    routing_exclusions,
)
from market_liquidity_monitor.analytics.venues import (
    DEFAULT_TAKER_FEES,
    ArbitrageCheck,
    LiquidityConcentration,
    TakerFee,
    VenueComparison,
    VenueCost,
    VenueDepth,
    compare_venues,
    herfindahl,
)

# name -> submodule, imported on first access (PEP 562 module __getattr__)
_LAZY = {
    **dict.fromkeys(
        (
            "MIN_OBS_FOR_ADF",
            "AdfResult",
            "CointResult",
            "HalfLife",
            "PairAnalysis",
            "PairLegCost",
            "PairTradeCost",
            "align_closes",
            "analyze_pair",
            "pair_series",
            "pair_trade_cost",
        ),
        "pairs",
    ),
    **dict.fromkeys(
        (
            "DEFAULT_BOOK_MODEL",
            "DEFAULT_GRID_BPS",
            "HIGH_RISK_BPS",
            "OPTIMAL_BPS",
            "BacktestResult",
            "BookModel",
            "BookModelValidation",
            "ValidationPoint",
            "atr_bps",
            "backtest_execution",
            "calibrate_book_model",
            "model_slippage_bps",
            "validate_book_model",
        ),
        "backtest",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_BOOK_MODEL",
    "DEFAULT_GRID_BPS",
    "DEFAULT_TAKER_FEES",
    "HIGH_RISK_BPS",
    "MIN_OBS_FOR_ADF",
    "OPTIMAL_BPS",
    "AdfResult",
    "AlertEvaluator",
    "AlertEvent",
    "AlertMetric",
    "AlertRule",
    "ArbitrageCheck",
    "BacktestResult",
    "BaselineComparison",
    "BookImbalance",
    "BookModel",
    "BookModelValidation",
    "BookProblem",
    "ChildOrder",
    "CointResult",
    "Comparison",
    "CrunchEpisode",
    "DepthSide",
    "DepthWindow",
    "HalfLife",
    "ImpactCurve",
    "ImpactPoint",
    "ImpactResult",
    "LiquidityConcentration",
    "LiquidityCrunchReport",
    "MaxSizeResult",
    "Observation",
    "OrderBookSummary",
    "PairAnalysis",
    "PairLegCost",
    "PairTradeCost",
    "Rearm",
    "RoutedVenue",
    "RoutingPlan",
    "RoutingResult",
    "RuleState",
    "TakerFee",
    "TopOfBook",
    "ValidationPoint",
    "VenueComparison",
    "VenueCost",
    "VenueDepth",
    "ZScoreSource",
    "align_closes",
    "analyze_pair",
    "atr_bps",
    "backtest_execution",
    "book_problems",
    "book_summary",
    "calibrate_book_model",
    "compare_venues",
    "depth_key",
    "depth_within_bps",
    "detect_liquidity_crunches",
    "evaluate_rule",
    "evaluate_rules",
    "herfindahl",
    "imbalance",
    "imbalance_from_depth",
    "impact_curve",
    "market_impact",
    "max_size_within_slippage",
    "metric_values",
    "model_slippage_bps",
    "pair_series",
    "pair_trade_cost",
    "required_windows",
    "route_order",
    "routing_exclusions",
    "sample_observation",
    "top_of_book",
    "validate_book_model",
]
