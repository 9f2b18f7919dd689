"""Offline routing on whole question sets: the tuning set and the shared dev set each score >= 95%.

``tests/agent/data/queries-tuning.jsonl`` holds phrasings written to tune the parser (every
capability, lower case, abbreviations, k/M sizes, typos, perps in words, venue aliases, unknown
tickers, multi-clause questions); ``queries-tuning2.jsonl`` and ``queries-tuning3.jsonl`` add styles
the earlier sets under-represent (README, "tuning sets"); ``../shared/eval/queries-dev.jsonl`` is the
shared sample.
A question is scored by the evaluation's own judge (``agent.evaluation.judge``) on the offline
model's first response, the tool call ``mlm eval`` records; one test checks on a sample that the
full assistant run records the same verdicts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import ModelRequest, TextPart, ToolCallPart, UserPromptPart

from market_liquidity_monitor.agent.capabilities import CAPABILITY_TOOLS
from market_liquidity_monitor.agent.evaluation import _same_arg, evaluate, judge, load_queries
from market_liquidity_monitor.agent.offline import offline_model_function
from market_liquidity_monitor.config import Settings
from tests.support import assistant_for

ROOT = Path(__file__).resolve().parents[2]
TUNING_FILE = ROOT / "tests" / "agent" / "data" / "queries-tuning.jsonl"
TUNING2_FILE = ROOT / "tests" / "agent" / "data" / "queries-tuning2.jsonl"
TUNING3_FILE = ROOT / "tests" / "agent" / "data" / "queries-tuning3.jsonl"
DEV_FILE = ROOT / ".." / "shared" / "eval" / "queries-dev.jsonl"
MIN_ACCURACY = 0.95


def _first_calls(question: str) -> list[dict[str, Any]]:
    """The tool call the offline model makes for ``question`` in a fresh session ([] for a text answer)."""
    response = offline_model_function([ModelRequest(parts=[UserPromptPart(content=question)])], None)
    calls = [
        {"tool": p.tool_name, "args": p.args_as_dict()} for p in response.parts if isinstance(p, ToolCallPart)
    ]
    assert calls or any(isinstance(p, TextPart) for p in response.parts)
    return calls


def _score(path: Path) -> tuple[float, list[str]]:
    queries = load_queries(path)
    misses = []
    for q in queries:
        verdict, detail = judge(q, _first_calls(q["query"]))
        if verdict != "ok":
            misses.append(f"{q['query']!r}: {verdict} ({detail})")
    return 1 - len(misses) / len(queries), misses


def test_tuning_set_routes_at_least_95_percent() -> None:
    accuracy, misses = _score(TUNING_FILE)
    assert accuracy >= MIN_ACCURACY, f"{accuracy:.1%} < {MIN_ACCURACY:.0%}; misses:\n" + "\n".join(misses)


def test_second_tuning_set_routes_at_least_95_percent() -> None:
    accuracy, misses = _score(TUNING2_FILE)
    assert accuracy >= MIN_ACCURACY, f"{accuracy:.1%} < {MIN_ACCURACY:.0%}; misses:\n" + "\n".join(misses)


def test_third_tuning_set_routes_at_least_95_percent() -> None:
    accuracy, misses = _score(TUNING3_FILE)
    assert accuracy >= MIN_ACCURACY, f"{accuracy:.1%} < {MIN_ACCURACY:.0%}; misses:\n" + "\n".join(misses)


def _texts(path: Path) -> set[str]:
    return {q["query"].strip().lower() for q in load_queries(path)}


@pytest.mark.parametrize(
    ("path", "earlier", "min_questions"),
    [(TUNING2_FILE, (TUNING_FILE,), 25), (TUNING3_FILE, (TUNING_FILE, TUNING2_FILE), 150)],
    ids=["tuning2", "tuning3"],
)
def test_later_tuning_set_is_new(path: Path, earlier: tuple[Path, ...], min_questions: int) -> None:
    """A later tuning set repeats no line of an earlier one or of the dev set, has no duplicates and
    uses only the capability vocabulary."""
    queries = load_queries(path)
    texts = [q["query"].strip().lower() for q in queries]
    assert len(texts) >= min_questions
    assert len(texts) == len(set(texts)), "duplicate questions"
    for other in earlier:
        assert not _texts(other) & set(texts), f"lines copied from {other.name}"
    if DEV_FILE.exists():
        assert not _texts(DEV_FILE) & set(texts), "lines copied from the dev set"
    assert {q["capability"] for q in queries} <= set(CAPABILITY_TOOLS)


def test_third_tuning_set_covers_every_capability() -> None:
    counts = Counter(q["capability"] for q in load_queries(TUNING3_FILE))
    assert set(counts) == set(CAPABILITY_TOOLS), set(CAPABILITY_TOOLS) - set(counts)


@pytest.mark.skipif(not DEV_FILE.exists(), reason=f"dev set not found at {DEV_FILE}")
def test_dev_set_routes_at_least_95_percent() -> None:
    accuracy, misses = _score(DEV_FILE)
    assert accuracy >= MIN_ACCURACY, f"{accuracy:.1%} < {MIN_ACCURACY:.0%}; misses:\n" + "\n".join(misses)


def test_tuning_set_covers_every_capability_and_is_new() -> None:
    queries = load_queries(TUNING_FILE)
    assert len(queries) >= 100
    counts = Counter(q["capability"] for q in queries)
    assert set(counts) == set(CAPABILITY_TOOLS), set(CAPABILITY_TOOLS) - set(counts)
    texts = [q["query"].strip().lower() for q in queries]
    assert len(texts) == len(set(texts)), "duplicate questions"
    if DEV_FILE.exists():
        dev = {q["query"].strip().lower() for q in load_queries(DEV_FILE)}
        assert not dev & set(texts), "tuning lines copied from the dev set"


@pytest.mark.parametrize(
    ("expected", "got", "same"),
    [
        ("2024-09-01T12:00:00Z", "2024-09-01 12:00", True),
        ("2024-09-01T12:00:00Z", "2024-09-01T14:00:00+02:00", True),
        ("2024-09-01T12:00:00Z", "2024-09-01T12:01:00Z", False),
        ("2024-09-01T12:00:00Z", "noon", False),
    ],
)
def test_times_are_judged_as_instants(expected: str, got: str, same: bool) -> None:
    assert _same_arg("at", expected, got) is same


def test_a_miss_is_counted() -> None:
    """The scorer can fail: a wrong venue, a wrong tool and a tool call for a refusal are misses."""
    line = {"capability": "order_book", "args": {"symbol": "ETH", "venue": "kraken"}}
    assert judge(line, _first_calls("eth depth on binance"))[0] == "wrong_args"
    assert judge(line, _first_calls("eth volatility over the last 7 days on kraken"))[0] == "wrong_tool"
    assert judge({"capability": "refuse", "args": {}}, _first_calls("eth depth on kraken"))[0] == "wrong_tool"


async def test_full_assistant_run_records_the_same_verdicts(recorded_market) -> None:
    """``mlm eval``'s path (a full run per question, tools executed on the recorded data, a tool's
    refusal included) judges a sample the same as the first-response scorer. The sample keeps to the
    book tools on one recorded book (backtests, pairs and health load many
    recordings: tens of seconds on this machine)."""
    wanted = {
        "eth liq on binance?",  # order_book
        "spread on jup?",  # unknown symbol: the tool refuses, the call is still recorded
        "slippage on a 1.5k eth market sell on binance",  # market_impact
        "capacity of the eth book on binance at 20 bps slippage, sell side",  # max_size_within_slippage
        "list my alerts",
        "tell me a joke",  # refuse
    }
    sample = [q for q in load_queries(TUNING_FILE) if q["query"] in wanted]
    assert len(sample) == len(wanted)
    assistant = assistant_for(Settings(), recorded_market)
    try:
        report = await evaluate(assistant, sample)
    finally:
        await assistant.services.close()
    full = [(i.question, i.verdict) for i in report.items]
    quick = [(q["query"], judge(q, _first_calls(q["query"]))[0]) for q in sample]
    assert full == quick
