"""The alert rule form in a trader's words, and its checks before a rule is sent (pure: no
Streamlit).

Field meanings and units are the alert engine's (``market_liquidity_monitor/analytics/alerts.py``,
``AlertRule``): the threshold is in the metric's unit (quote currency for ``mid_price`` and
``depth_notional``, base currency for ``depth_size`` and ``volume``, bps for ``spread_bps`` and
``volatility``, a pure number for ``imbalance`` (-1 to 1) and ``zscore``); ``window_bps`` applies
to the depth metrics and imbalance (required), ``side`` to the depth metrics, ``lookback``
(observations) to zscore (>= 2) and volatility (>= 1), ``source`` to zscore, ``period_s`` to volume.
The server checks everything again (422 with its own message); this only catches what a form can.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlm_ui.units import Currencies

# Shown first, in this order; the default is the first one the API offers.
METRIC_ORDER = (
    "spread_bps",
    "depth_notional",
    "depth_size",
    "imbalance",
    "mid_price",
    "volatility",
    "volume",
    "zscore",
)
WINDOW_METRICS = frozenset({"depth_notional", "depth_size", "imbalance"})
APPLIES: dict[str, frozenset[str]] = {
    "window_bps": WINDOW_METRICS,
    "side": frozenset({"depth_notional", "depth_size"}),
    "lookback": frozenset({"zscore", "volatility"}),
    "source": frozenset({"zscore"}),
    "period_s": frozenset({"volume"}),
}
REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "depth_notional": ("window_bps",),
    "depth_size": ("window_bps",),
    "imbalance": ("window_bps",),
    "zscore": ("lookback",),
    "volatility": ("lookback",),
    "volume": ("period_s",),
}
COMPARISON_WORDS = {
    "above": "is above",
    "below": "is below",
    "crosses_above": "crosses above",
    "crosses_below": "crosses below",
    "crosses": "crosses (either way)",
}
SIDE_WORDS = {"both": "Bid + ask", "bid": "Bid", "ask": "Ask"}
SOURCE_WORDS = {"mid_price": "mid price", "spread_bps": "spread", "pair_spread": "pair spread"}
REARM_WORDS = {"cooldown": "after the cooldown", "clear": "once the condition clears"}
FIELD_LABELS = {
    "symbol": "Symbol",
    "venue": "Venue",
    "metric": "Metric",
    "comparison": "Condition",
    "threshold": "Threshold",
    "window_bps": "Depth window (± bps of mid)",
    "side": "Book side",
    "lookback": "Lookback (observations)",
    "source": "z-score of",
    "period_s": "Volume period (s)",
    "name": "Name (optional)",
    "cooldown_s": "Cooldown between alerts (s)",
    "rearm": "Fire again",
}
EXAMPLE_THRESHOLD = {
    "spread_bps": "5",
    "depth_notional": "1000000",
    "depth_size": "20",
    "imbalance": "-0.5",
    "mid_price": "60000",
    "volatility": "50",
    "volume": "100",
    "zscore": "2",
}


def metric_words(metric: str, cur: Currencies) -> str:
    """A metric as a trader reads it, with its unit: ``Spread (bps)``, ``Mid price (USDT)``."""
    q, b = cur.quote_label, cur.base_label
    return {
        "spread_bps": "Spread (bps)",
        "mid_price": f"Mid price ({q})",
        "depth_notional": f"Depth within the window ({q})",
        "depth_size": f"Depth within the window ({b})",
        "imbalance": "Book imbalance within the window (-1 to 1)",
        "zscore": "z-score (rolling, standard deviations)",
        "volume": f"Traded volume ({b})",
        "volatility": "Volatility (bps)",
    }.get(metric, metric.replace("_", " "))


def threshold_words(metric: str, cur: Currencies, params: Mapping[str, Any]) -> str:
    """What the threshold is compared with, in full: ``Bid depth within 50 bps (USDT)``."""
    q, b = cur.quote_label, cur.base_label
    w = params.get("window_bps")
    within = f"within {w:g} bps" if isinstance(w, int | float) else "within the window"
    side = SIDE_WORDS.get(str(params.get("side") or "both"), "Bid + ask")
    if metric == "depth_notional":
        return f"{side} depth {within} ({q})"
    if metric == "depth_size":
        return f"{side} depth {within} ({b})"
    if metric == "imbalance":
        return f"Imbalance {within} (-1 to 1)"
    if metric == "zscore":
        src = SOURCE_WORDS.get(str(params.get("source") or "mid_price"), "mid price")
        return f"z-score of the {src} (standard deviations)"
    if metric == "volume":
        p = params.get("period_s")
        return f"Volume over {p:g} s ({b})" if isinstance(p, int | float) else f"Volume ({b})"
    return metric_words(metric, cur)


def ordered_metrics(options: list[Any]) -> list[Any]:
    """The API's metric options, the usual ones first (spread first: the default)."""
    known = [m for m in METRIC_ORDER if m in options]
    return known + [m for m in options if m not in known]


def applies(field: str, metric: str) -> bool:
    """Whether a metric parameter belongs in the form for ``metric`` (other fields always do)."""
    return field not in APPLIES or metric in APPLIES[field]


def parse_number(text: Any) -> float | None:
    """A number typed by a user (``1,000,000`` and ``1e6`` accepted); None when it is not one."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text) if math.isfinite(text) else None
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        x = float(text.strip().replace(",", "").replace("_", ""))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def check_rule(body: Mapping[str, Any], cur: Currencies) -> list[str]:
    """What is wrong with a rule before it is sent, in words (empty when nothing is)."""
    problems: list[str] = []
    metric = str(body.get("metric") or "")
    if not str(body.get("symbol") or "").strip():
        problems.append("Enter a symbol, e.g. BTC/USDT.")
    t = body.get("threshold")
    example = EXAMPLE_THRESHOLD.get(metric, "5")
    if t is None or t == "":
        problems.append(f"Enter a threshold: {threshold_words(metric, cur, body)}, e.g. {example}.")
    elif not isinstance(t, int | float) or isinstance(t, bool):
        problems.append(f"The threshold {t!r} is not a number: enter e.g. {example}.")
    elif metric == "imbalance" and not -1 <= t <= 1:
        problems.append(f"An imbalance threshold must be between -1 and 1 (got {t:g}).")
    for param in REQUIRED_PARAMS.get(metric, ()):
        if body.get(param) is None:
            problems.append(f"{metric_words(metric, cur)} needs {FIELD_LABELS.get(param, param).lower()}.")
    w = body.get("window_bps")
    if w is not None and (not isinstance(w, int | float) or not 0 < w <= 10_000):
        problems.append(f"The depth window must be in (0, 10000] bps (got {w!r}).")
    lb = body.get("lookback")
    if lb is not None:
        least = 2 if metric == "zscore" else 1
        if not isinstance(lb, int) or isinstance(lb, bool) or not least <= lb <= 4096:
            problems.append(
                f"The lookback must be a whole number of observations in [{least}, 4096] (got {lb!r})."
            )
    c = body.get("cooldown_s")
    if c is not None and (not isinstance(c, int | float) or c < 0):
        problems.append(f"The cooldown must be 0 seconds or more (got {c!r}).")
    return problems


def rule_words(rule: Mapping[str, Any], cur: Currencies) -> str:
    """A stored rule as a sentence: ``Bid depth within 50 bps (USDT) is above 1,000,000 — BTC/USDT
    on binance``."""
    metric = str(rule.get("metric") or "")
    t = rule.get("threshold")
    value = f"{t:,.10g}" if isinstance(t, int | float) and not isinstance(t, bool) else str(t)
    where = f"{rule.get('symbol')} on {rule.get('venue') or 'every venue'}"
    comparison = COMPARISON_WORDS.get(str(rule.get("comparison")), str(rule.get("comparison")))
    return f"{threshold_words(metric, cur, rule)} {comparison} {value} — {where}"
