"""What a model reads of a tool's typed answer: the same answer without internal bookkeeping.

The full typed answer still goes everywhere else (``deps.tool_log``, so ``/api/chat``'s
``tool_calls``, the grounding check, the app, ``mlm ask --json`` and the MCP server). A model gets
``compact_result(answer)``: ``model_dump(mode="json")`` with

- the keys in ``INTERNAL_KEYS`` removed (nanosecond timestamps when the ISO ``book_ts`` is there,
  feed counters such as the last sequence number and message counts);
- a book's ``quality`` counters removed where its ``quality_warning`` is given (``BookProvenance``:
  the warning states the present trust problems and the integrity history in one line; no
  warning means none);
- ``None`` values removed (a missing key reads the same to a model and costs no tokens);
- lists longer than ``MAX_ITEMS`` cut to their first ``MAX_ITEMS`` entries (the services put the
  most relevant first: best venues, largest gaps...) followed by one string saying how many were
  left out, so the model can say the list is longer rather than invent its end.

Nothing is rounded or renamed: every number the model sees is a number of the full answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

INTERNAL_KEYS = frozenset(
    {"book_ts_ns", "sequence", "messages", "updates_applied", "last_gap_ts_ns", "stale_after_ms"}
)
MAX_ITEMS = 40


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        drop = INTERNAL_KEYS | ({"quality"} if "quality_warning" in value else set())
        return {k: _compact(v) for k, v in value.items() if v is not None and k not in drop}
    if isinstance(value, list):
        items = [_compact(v) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"... {len(value) - MAX_ITEMS} more not shown (of {len(value)})")
        return items
    return value


def compact_result(answer: Any) -> Any:
    """The model's view of ``answer`` (a typed answer, or any JSON-able value); see the module."""
    data = answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer
    return _compact(data)
