"""Offline routing on held-out phrasings (issue 12, "Offline routing that generalises").

``data/queries-heldout.jsonl`` was written by someone who did not read the routing rules
(``agent/parser.py``, ``agent/offline.py``, ``agent/capabilities.py``) nor the other query files,
from the tool signatures (``agent/tools.py``) and the dev set's format
(``../shared/eval/README.md``) alone. It is scored by the same evaluator as the dev set
(``agent/evaluation.py``): a question is right when the expected capability's tool is called with
every argument the question states. Keep it out of rule tuning: a miss is fixed in the parser, not
by rewording the question.

Label conventions (all from the tool signatures): the largest size within a slippage or
price-move limit is ``market_impact`` (the capability of ``max_size_within_slippage``) with
``max_slippage_bps`` (1% = 100); a perpetual named by its ticker ("BTCUSDT perp on binance
futures") is the unified ``BTC/USDT:USDT`` on ``binanceusdm``; creating, listing and deleting
alert rules are ``alerts`` (there is no delete tool: listing the rules is the answer), with
``metric``/``threshold`` for a new rule and ``comparison`` only when the wording is explicit
("crosses above"); ``at`` only when the time is typed in ISO 8601; an unknown ticker keeps the
capability the question targets, with the ticker as typed.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from market_liquidity_monitor.agent.evaluation import evaluate, load_queries
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData
from tests.support import assistant_for

HELDOUT = Path(__file__).parent / "data" / "queries-heldout.jsonl"
CAPABILITIES = {
    "order_book",
    "market_impact",
    "compare_venues",
    "route_order",
    "backtest",
    "pairs",
    "alerts",
    "health",
    "history",
    "refuse",
}


def test_heldout_file_is_well_formed_and_covers_every_capability():
    queries = load_queries(HELDOUT)
    assert len(queries) >= 70
    assert len({q["query"].lower() for q in queries}) == len(queries)
    counts = Counter(q["capability"] for q in queries)
    assert set(counts) == CAPABILITIES, counts


@pytest.mark.slow
def test_heldout_routing_accuracy(data_dir, tmp_path):
    settings = Settings(data_dir=data_dir, home_dir=tmp_path / "home")
    assistant = assistant_for(settings, MarketData.from_recordings(settings, data_dir))

    async def run():
        try:
            return await evaluate(assistant, load_queries(HELDOUT))
        finally:
            await assistant.services.close()

    report = asyncio.run(run())
    misses = [i for i in report.items if i.verdict != "ok"]
    print(f"\nrouting accuracy: {report.routing_accuracy:.2%} ({len(report.items)} questions)")
    print(f"grounding rate:   {report.grounding_rate:.2%}")
    for i in misses:
        print(
            json.dumps(
                {
                    "question": i.question,
                    "verdict": i.verdict,
                    "expected": i.expected,
                    "got": i.tools_called,
                    "detail": i.detail,
                },
                default=str,
            )
        )
    assert len(report.items) >= 70
    # Issue 12 asks for >= 95%. Measured on this set, scored once per parser version and never used
    # for tuning: 79.8% (75/94) before the parser rework, 90.4% after the first tuning set, 93.6%
    # (88/94) after the second. The target is not met; this floor keeps what was reached from
    # regressing (raise it when the parser improves on sets of its own, never by tuning on this one).
    assert report.routing_accuracy >= 0.93, [i.as_dict() for i in misses]
