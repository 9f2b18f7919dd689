"""Grounding: every number in an answer must come from this run's tool calls (or the question).

A number written with ``d`` decimals is grounded when some number in the tool arguments/results
(or the question) is within half a unit of its last digit (``|x - shown| <= 0.5 * 10**-d``), so
rounding for display is allowed and anything else is not. ISO timestamps that appear verbatim in
the results are grounded as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?")
_NUM = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])[-+]?\d+(?:\.\d+)?")


@dataclass
class GroundingReport:
    grounded: bool
    numbers_checked: int
    unsupported: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "grounded": self.grounded,
            "numbers_checked": self.numbers_checked,
            "unsupported": self.unsupported,
        }


def _walk_numbers(obj: Any, out: list[float], strings: list[str]) -> None:
    if isinstance(obj, bool) or obj is None:
        return
    if isinstance(obj, int | float):
        out.append(float(obj))
    elif isinstance(obj, str):
        strings.append(obj)
        for m in _NUM.finditer(_ISO.sub(" ", obj)):
            out.append(float(m.group().replace(",", "")))
    elif isinstance(obj, dict):
        for v in obj.values():
            _walk_numbers(v, out, strings)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _walk_numbers(v, out, strings)


def check_grounding(answer: str, sources: Iterable[Any], question: str = "") -> GroundingReport:
    """Check each number in ``answer`` against the numbers in ``sources`` and ``question``."""
    nums: list[float] = []
    strings: list[str] = []
    for s in sources:
        _walk_numbers(s, nums, strings)
    _walk_numbers(question, nums, strings)
    text = answer
    for ts in set(_ISO.findall(answer)):
        if any(ts in s for s in strings):
            text = text.replace(ts, " ")
    unsupported, checked = [], 0
    for m in _NUM.finditer(text):
        shown = m.group()
        checked += 1
        value = float(shown.replace(",", ""))
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        tol = 0.5 * 10**-decimals + 1e-9 * abs(value)
        if not any(abs(x - value) <= tol or abs(abs(x) - abs(value)) <= tol for x in nums):
            unsupported.append(shown)
    return GroundingReport(not unsupported, checked, unsupported)
