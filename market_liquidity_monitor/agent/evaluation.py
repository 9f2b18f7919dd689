"""Routing and grounding evaluation of the assistant on a query file (../shared/eval format).

Each line: ``{"query": str, "capability": str, "args": {...}}``. A question is routed correctly
when the assistant calls the tool of the expected capability (``refuse``: no tool at all) and
every expected argument equals the argument it passed (arguments the question leaves open are the
assistant's choice and are not judged). An answer is grounded when every number in it comes from
its tool results or the question (``agent.grounding``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from market_liquidity_monitor.agent.assistant import Assistant
from market_liquidity_monitor.agent.capabilities import TOOL_CAPABILITY

#: Arguments that hold a point in time (ISO 8601): equal when they name the same instant.
TIME_ARGS = frozenset({"at", "as_of", "since", "until", "start", "end"})


def _instant(text: str) -> datetime | None:
    """``text`` as an aware UTC datetime (ISO 8601, "Z" or an offset; no zone is UTC), else None."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _same_arg(key: str, expected: Any, got: Any) -> bool:
    """As ``_same``; a symbol given as a base asset matches any quote the assistant picks
    (../shared/eval/README.md): expected ``SOL`` matches ``SOL``, ``SOL/USDT`` or ``SOL/USDT:USDT``;
    a time (``TIME_ARGS``) matches any ISO 8601 spelling of the same instant
    (``2024-09-01T12:00:00Z`` = ``2024-09-01 12:00`` = ``2024-09-01T14:00+02:00``)."""
    if key in TIME_ARGS and isinstance(expected, str) and isinstance(got, str):
        a, b = _instant(expected), _instant(got)
        if a is not None and b is not None:
            return a == b
    if (
        key in ("symbol", "symbol_a", "symbol_b")
        and isinstance(expected, str)
        and isinstance(got, str)
        and "/" not in expected
    ):
        return expected.strip().upper() == got.strip().upper().split("/")[0]
    return _same(expected, got)


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, int | float) and isinstance(got, int | float) and not isinstance(expected, bool):
        return abs(float(expected) - float(got)) <= 1e-9 * max(1.0, abs(float(expected)))
    if isinstance(expected, str) and isinstance(got, str):
        return expected.strip().lower() == got.strip().lower()
    if isinstance(expected, list) and isinstance(got, list):
        return sorted(map(str, expected)) == sorted(map(str, got))
    return expected == got


@dataclass
class EvalItem:
    question: str
    expected: dict[str, Any]
    tools_called: list[dict[str, Any]]
    verdict: str  # "ok" | "wrong_tool" | "wrong_args"
    grounded: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "expected": self.expected,
            "tools_called": self.tools_called,
            "verdict": self.verdict,
            "grounded": self.grounded,
            "detail": self.detail,
        }


@dataclass
class EvalReport:
    items: list[EvalItem] = field(default_factory=list)

    @property
    def routing_accuracy(self) -> float:
        return sum(i.verdict == "ok" for i in self.items) / len(self.items) if self.items else 0.0

    @property
    def grounding_rate(self) -> float:
        return sum(i.grounded for i in self.items) / len(self.items) if self.items else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "routing_accuracy": round(self.routing_accuracy, 4),
            "grounding_rate": round(self.grounding_rate, 4),
            "questions": len(self.items),
            "items": [i.as_dict() for i in self.items],
        }


def judge(expected: dict[str, Any], calls: list[dict[str, Any]]) -> tuple[str, str]:
    cap = expected["capability"]
    if cap == "refuse":
        return ("ok", "") if not calls else ("wrong_tool", f"called {calls[0]['tool']} instead of refusing")
    matching = [c for c in calls if TOOL_CAPABILITY.get(c["tool"]) == cap]
    if not matching:
        got = ", ".join(c["tool"] for c in calls) or "no tool"
        return "wrong_tool", f"expected a {cap} tool, got {got}"
    args = matching[0]["args"]
    bad = [k for k, v in expected.get("args", {}).items() if not _same_arg(k, v, args.get(k))]
    if bad:
        return "wrong_args", "; ".join(
            f"{k}: expected {expected['args'][k]!r}, got {args.get(k)!r}" for k in bad
        )
    return "ok", ""


def load_queries(path: Path) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if "query" not in q or "capability" not in q:
            raise ValueError(f"{path}:{n}: needs 'query' and 'capability' keys")
        out.append(q)
    return out


async def evaluate(assistant: Assistant, queries: list[dict[str, Any]]) -> EvalReport:
    """Ask every question in a fresh session and judge routing and grounding."""
    report = EvalReport()
    for q in queries:
        res = await assistant.ask(q["query"])
        calls = [{"tool": c["tool"], "args": c["args"]} for c in res.tool_calls]
        verdict, detail = judge(q, res.tool_calls)
        report.items.append(
            EvalItem(
                q["query"],
                {"capability": q["capability"], "args": q.get("args", {})},
                calls,
                verdict,
                bool(res.grounding.get("grounded")),
                detail,
            )
        )
    return report


def run_eval(assistant: Assistant, path: Path) -> EvalReport:
    """Evaluate the questions of ``path`` (``load_queries``), then close the assistant (its history
    database) in the same event loop, as ``mlm ask`` does."""
    queries = load_queries(path)

    async def run() -> EvalReport:
        try:
            return await evaluate(assistant, queries)
        finally:
            await assistant.services.close()

    return asyncio.run(run())
