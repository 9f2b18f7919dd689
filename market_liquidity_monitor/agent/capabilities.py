"""One vocabulary: which tools serve which capability, and which arguments each takes — read from
the tool signatures in ``agent/tools.py``, so the parser, the offline model's planner and the
evaluation cannot disagree with the tools.

Adding a capability or a tool: add the tool to ``agent/tools.py`` and to :data:`CAPABILITY_TOOLS`;
its arguments are then read from its signature everywhere (the parser keeps the stated values the
tools take, the planner picks the tool with :func:`best_tool`, the evaluation judges by
:data:`TOOL_CAPABILITY`). The parser needs cue words for a new capability (``parser._RULES``).

Capabilities are those of ``../shared/eval/README.md`` (``order_book``, ``market_impact``,
``compare_venues``, ``route_order``, ``backtest``, ``pairs``, ``alerts``, ``health``, ``history``,
``refuse``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "CAPABILITY_TOOLS",
    "TOOL_CAPABILITY",
    "best_tool",
    "capability_args",
    "required_args",
    "tool_args",
]

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


@functools.cache
def required_args(tool: str) -> tuple[str, ...]:
    """The arguments ``tool`` cannot do without (no default in its signature)."""
    from market_liquidity_monitor.agent import tools as tools_mod

    params = list(inspect.signature(getattr(tools_mod, tool)).parameters.values())[1:]
    return tuple(p.name for p in params if p.default is inspect.Parameter.empty)


def best_tool(capability: str, args: Mapping[str, Any]) -> str | None:
    """The tool of ``capability`` that fits the stated ``args``: every required argument present,
    then the most stated arguments used (``max_slippage_bps`` stated -> ``max_size_within_slippage``;
    otherwise ``market_impact``), ties to the capability's usual (first) tool. ``None`` when no
    tool has its required arguments."""
    fits = [t for t in CAPABILITY_TOOLS[capability] if all(args.get(a) is not None for a in required_args(t))]
    if not fits:
        return None
    return max(fits, key=lambda t: (sum(args.get(a) is not None for a in tool_args(t)), -fits.index(t)))
