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
- ``calibration``: book models calibrated on many real books, validated out of sample and scaled
  to assets without a book (market microstructure invariance), with their validated error;
- ``backtest``: one order over a window of candles (arrival/TWAP/VWAP, implementation shortfall,
  P&L) and the per-candle cost profile, on those models.

``pairs``, ``calibration`` and ``backtest`` (pandas, statsmodels) are imported on first use of one
of their names, so ``import market_liquidity_monitor.analytics`` stays light.
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
            "OrderBacktest",
            "Schedule",
            "Slice",
            "ValidationPoint",
            "atr_bps",
            "backtest_execution",
            "backtest_order",
            "calibrate_book_model",
            "model_slippage_bps",
            "validate_book_model",
        ),
        "backtest",
    ),
    **dict.fromkeys(
        (
            "BookModelSet",
            "DepthModel",
            "ErrorPoint",
            "MarketConditions",
            "ModelValidation",
            "ScalingLaw",
            "build_model_set",
            "calibrate_depth_model",
            "conditions_at",
            "depth_slippage_bps",
            "modelled_book",
            "rolling_conditions",
            "scale_factors",
            "validate_depth_model",
        ),
        "calibration",
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
    "BookModelSet",
    "BookModelValidation",
    "BookProblem",
    "ChildOrder",
    "CointResult",
    "Comparison",
    "CrunchEpisode",
    "DepthModel",
    "DepthSide",
    "DepthWindow",
    "ErrorPoint",
    "HalfLife",
    "ImpactCurve",
    "ImpactPoint",
    "ImpactResult",
    "LiquidityConcentration",
    "LiquidityCrunchReport",
    "MarketConditions",
    "MaxSizeResult",
    "ModelValidation",
    "Observation",
    "OrderBacktest",
    "OrderBookSummary",
    "PairAnalysis",
    "PairLegCost",
    "PairTradeCost",
    "Rearm",
    "RoutedVenue",
    "RoutingPlan",
    "RoutingResult",
    "RuleState",
    "ScalingLaw",
    "Schedule",
    "Slice",
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
    "backtest_order",
    "book_problems",
    "book_summary",
    "build_model_set",
    "calibrate_book_model",
    "calibrate_depth_model",
    "compare_venues",
    "conditions_at",
    "depth_key",
    "depth_slippage_bps",
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
    "modelled_book",
    "pair_series",
    "pair_trade_cost",
    "required_windows",
    "rolling_conditions",
    "route_order",
    "routing_exclusions",
    "sample_observation",
    "scale_factors",
    "top_of_book",
    "validate_book_model",
    "validate_depth_model",
]
