"""Market Liquidity Monitor: liquidity analytics over real L2 order books, with a grounded assistant.

The Python API for notebooks and scripts is ``Monitor`` (``market_liquidity_monitor.monitor``;
docs/python_api.md)::

    from market_liquidity_monitor import Monitor

    m = Monitor.from_recordings("../shared/data")
    m.impact("BTC", "buy", size=5).slippage_bps
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Monitor", "__version__"]

if TYPE_CHECKING:
    from market_liquidity_monitor.monitor import Monitor


def __getattr__(name: str) -> Any:
    # Imported on first use: `mlm --help` and every other import of the package stay light.
    if name == "Monitor":
        from market_liquidity_monitor.monitor import Monitor

        return Monitor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
