"""One vocabulary: which tools serve which capability, and which arguments each takes — read from
the tool signatures in ``agent/tools.py``, so the parser, the offline model's planner and the
evaluation cannot disagree with the tools.

Capabilities are those of ``../shared/eval/README.md`` (``order_book``, ``market_impact``,
``compare_venues``, ``route_order``, ``backtest``, ``pairs``, ``alerts``, ``health``, ``history``,
``refuse``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Final

__all__ = ["CAPABILITY_TOOLS", "TOOL_CAPABILITY", "capability_args", "tool_args"]

#: Capability -> the tools that answer it (the first is the usual one).
CAPABILITY_TOOLS: Final[dict[str, tuple[str, ...]]] = {
    "order_book": ("order_book",),
    "market_impact": ("market_impact", "max_size_within_slippage"),
    "compare_venues": ("compare_venues",),
    "route_order": ("route_order",),
    "backtest": ("backtest_execution",),
    "pairs": ("pairs_stats",),
    "alerts": ("create_alert", "list_alerts", "liquidity_alerts"),
    "health": ("venue_health",),
    "history": ("price_history", "liquidity_history"),
    "refuse": (),
}

#: Tool -> its capability.
TOOL_CAPABILITY: Final[dict[str, str]] = {t: cap for cap, tools in CAPABILITY_TOOLS.items() for t in tools}


@functools.cache
def tool_args(tool: str) -> tuple[str, ...]:
    """The argument names of ``tool`` (its signature in ``agent.tools``, the run context left out)."""
    from market_liquidity_monitor.agent import tools as tools_mod

    fn = getattr(tools_mod, tool)
    return tuple(list(inspect.signature(fn).parameters)[1:])


@functools.cache
def capability_args(capability: str) -> tuple[str, ...]:
    """Every argument some tool of ``capability`` takes, in signature order."""
    out: dict[str, None] = {}
    for tool in CAPABILITY_TOOLS[capability]:
        out.update(dict.fromkeys(tool_args(tool)))
    return tuple(out)
