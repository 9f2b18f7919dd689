"""The labels of the second and third held-out sets (``data/queries-heldout2.jsonl``,
``data/queries-heldout3.jsonl``) are valid for the judge.

Checks the file only, against the tool signatures (``agent/tools.py`` via ``agent.capabilities``),
the services' enums and ccxt's venue ids; it does not run the parser or the assistant (the set is
scored elsewhere, once per parser version, see ``test_heldout_routing.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from market_liquidity_monitor.agent.capabilities import (
    CAPABILITY_TOOLS,
    best_tool,
    required_args,
    tool_args,
)
from market_liquidity_monitor.agent.evaluation import TIME_ARGS, _instant, load_queries
from market_liquidity_monitor.analytics.alerts import AlertMetric, Comparison, DepthSide
from market_liquidity_monitor.analytics.backtest import Schedule
from market_liquidity_monitor.domain.instrument import Side
from market_liquidity_monitor.services.history import HISTORY_METRICS

DATA = Path(__file__).parent / "data"
#: each set and the fewest questions its author wrote per capability
SETS = {"queries-heldout2.jsonl": 4, "queries-heldout3.jsonl": 5}
QUERIES = [(name, q) for name in SETS for q in load_queries(DATA / name)]
# Closed sets, from the product's own enums (agent/arguments.py advertises the same ones).
ENUMS = {
    "side": {m.value for m in Side},
    "schedule": {m.value for m in Schedule},
    "comparison": {m.value for m in Comparison},
    "unit": {"quote", "base"},
    "period": {"today"},
}
ALERT_SIDES = {m.value for m in DepthSide}
SYMBOL = re.compile(r"^[A-Z0-9]+(/[A-Z0-9]+(:[A-Z0-9]+)?)?$")
TIMEFRAME = re.compile(r"^[1-9][0-9]*[smhdwM]$")
NUMBER_ARGS = {
    "size",
    "notional",
    "window_bps",
    "lookback_days",
    "lookback_s",
    "max_slippage_bps",
    "threshold",
    "drop_ratio",
}


@pytest.mark.parametrize("name", list(SETS))
def test_file_size_uniqueness_and_capability_coverage(name):
    queries = load_queries(DATA / name)
    assert len(queries) == 100
    assert len({q["query"].strip().lower() for q in queries}) == len(queries)
    counts = Counter(q["capability"] for q in queries)
    assert set(counts) == set(CAPABILITY_TOOLS), counts
    assert min(counts.values()) >= SETS[name], counts


def _id(item) -> str:
    name, q = item
    return f"{name[8:-6]}:{q['query'][:40]}"


@pytest.mark.parametrize("q", [q for _, q in QUERIES], ids=[_id(i) for i in QUERIES])
def test_label_names_a_tool_of_its_capability_with_its_arguments(q):
    cap, args = q["capability"], q.get("args", {})
    assert set(q) <= {"query", "capability", "tool", "args"}
    if cap == "refuse":
        assert "tool" not in q and not args
        return
    tool = q["tool"]
    assert tool in CAPABILITY_TOOLS[cap]
    assert set(args) <= set(tool_args(tool)), set(args) - set(tool_args(tool))
    assert all(a in args for a in required_args(tool)), required_args(tool)
    # The stated arguments pick the labelled tool (the same rule the offline planner uses).
    assert best_tool(cap, args) == tool


@pytest.mark.parametrize(
    "q", [q for _, q in QUERIES if q.get("args")], ids=[_id(i) for i in QUERIES if i[1].get("args")]
)
def test_argument_values_are_valid_for_the_tools(q):
    import ccxt  # venue ids are ccxt ids (../shared/eval/README.md)

    venues = set(ccxt.exchanges)
    for key, value in q["args"].items():
        if key in ("symbol", "symbol_a", "symbol_b"):
            assert SYMBOL.match(value), value
        elif key == "venue":
            assert value in venues, value
        elif key in ("venues", "exclude_venues"):
            assert value and set(value) <= venues, value
        elif key in TIME_ARGS:
            assert _instant(value) is not None, value
        elif key == "timeframe":
            assert TIMEFRAME.match(value), value
        elif key == "metric":
            allowed = HISTORY_METRICS if q["tool"] == "liquidity_history" else {m.value for m in AlertMetric}
            assert value in allowed, value
        elif key == "side" and q["tool"] == "create_alert":
            assert value in ALERT_SIDES, value
        elif key in ENUMS:
            assert value in ENUMS[key], value
        elif key in NUMBER_ARGS:
            assert isinstance(value, int | float) and not isinstance(value, bool), value
            if key != "threshold":
                assert value > 0, value
            if key == "drop_ratio":
                assert value < 1, value
        else:
            raise AssertionError(f"no check for argument {key!r}")
