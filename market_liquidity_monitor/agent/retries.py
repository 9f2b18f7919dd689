"""Tool-argument retries: every problem of a call in one ``ModelRetry``, and a plain sentence when
the model runs out of retries.

A tool that checks its arguments one at a time makes the model fix them one per retry, and the
retry budget (``Agent(retries=2)``) runs out with three bad fields. ``ArgumentProblems`` collects
them instead::

    problems = ArgumentProblems("market_impact")
    side_e = problems.check("side", Side.parse, side)          # None when it failed
    problems.check("size", _size_args, size, notional)
    inst = problems.check("venue", _instrument, deps, symbol, venue)
    problems.raise_if_any()                                     # one ModelRetry listing all three

``check`` turns a ``ModelRetry`` or an ``MLMError`` (``InvalidInputError``, ``UnknownVenueError``...,
whose messages name the valid values) raised by a validator into a problem; ``add`` records one
directly, ``add_validation_error`` every error of a pydantic ``ValidationError``.

``exhausted_answer`` is what the user reads when the model still failed after its retries
(pydantic-ai's ``UnexpectedModelBehavior``): what failed and the last problem, never the
framework's own text or documentation URL.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_ai import ModelRetry
from pydantic_ai.exceptions import UnexpectedModelBehavior

from market_liquidity_monitor.domain.errors import MLMError

T = TypeVar("T")

_TOOL_IN_MESSAGE = re.compile(r"Tool '([^']+)' exceeded max retries")


class ArgumentProblems:
    """The problems found in one tool call's arguments (see the module docstring).

    Raises (from ``raise_if_any``): ``ModelRetry`` whose message is the single problem, or
    ``"<n> problems with the arguments of <tool> (fix all of them in the next call):"`` followed by
    one numbered ``"<arg>: <problem>"`` line each.
    """

    def __init__(self, tool: str):
        self.tool = tool
        self.problems: list[tuple[str, str]] = []

    def __bool__(self) -> bool:
        return bool(self.problems)

    def add(self, arg: str, problem: str) -> None:
        """Record that ``arg`` is wrong; ``problem`` should name the valid values."""
        problem = problem.strip()
        if (arg, problem) not in self.problems:
            self.problems.append((arg, problem))

    def check(self, arg: str, validate: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``validate(*args, **kwargs)``, or None with its ``ModelRetry``/``MLMError`` recorded as a
        problem of ``arg``. Any other exception propagates (a bug, not a bad argument)."""
        try:
            return validate(*args, **kwargs)
        except ModelRetry as exc:
            self.add(arg, exc.message)
        except MLMError as exc:
            self.add(arg, str(exc))
        return None

    async def acheck(
        self, arg: str, validate: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T | None:
        """``check`` for an async validator (e.g. ``BookService.resolve``)."""
        try:
            return await validate(*args, **kwargs)
        except ModelRetry as exc:
            self.add(arg, exc.message)
        except MLMError as exc:
            self.add(arg, str(exc))
        return None

    def add_validation_error(self, exc: ValidationError, prefix: str = "") -> None:
        """Every error of a pydantic ``ValidationError``, as ``<loc>: <msg>`` (pydantic's messages list
        the allowed values of a ``Literal``/enum)."""
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
            self.add(f"{prefix}{loc}", f"{err.get('msg')} (got {err.get('input')!r})")

    def message(self) -> str:
        if len(self.problems) == 1:
            arg, problem = self.problems[0]
            return f"{arg}: {problem}"
        lines = [
            f"{len(self.problems)} problems with the arguments of {self.tool} "
            "(fix all of them in the next call):"
        ]
        lines += [f"{i}. {arg}: {problem}" for i, (arg, problem) in enumerate(self.problems, 1)]
        return "\n".join(lines)

    def raise_if_any(self) -> None:
        """Raise one ``ModelRetry`` listing every recorded problem; nothing when there is none."""
        if self.problems:
            raise ModelRetry(self.message())


def _cause_text(exc: BaseException) -> str | None:
    """The last argument problem behind an exhausted retry budget: our tool's ``ModelRetry`` text, or
    the pydantic validation errors of the arguments (``loc: msg``)."""
    seen: set[int] = set()
    cur: BaseException | None = exc.__cause__
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ModelRetry):
            return cur.message
        if isinstance(cur, ValidationError):
            return "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ())) or 'arguments'}: {e.get('msg')}"
                for e in cur.errors(include_url=False)
            )
        cur = cur.__cause__ or cur.__context__
    return None


def exhausted_answer(exc: UnexpectedModelBehavior, tool_log: Iterable[Any], attempts: int) -> str:
    """The user's answer when the model misbehaved until its retries ran out.

    ``tool_log``: the run's ``ToolCallRecord``s (the last refused one, ``error`` set, gives the tool and the problem
    when the exception doesn't); ``attempts``: tries the model had (``retries + 1``).
    """
    m = _TOOL_IN_MESSAGE.search(exc.message or "")
    refused = [r for r in tool_log if getattr(r, "error", None)]
    tool = m.group(1) if m else (refused[-1].tool if refused else None)
    problem = _cause_text(exc)
    if problem is None and refused and (tool is None or refused[-1].tool == tool):
        problem = str(refused[-1].error)
    if tool is None:
        return (
            "I couldn't complete that request: the model's replies could not be used (they did not follow "
            f"the tool-calling protocol) after {attempts} attempts. Please try again or rephrase the question."
        )
    text = (
        f"I couldn't complete that request: the model called {tool} with arguments it rejects "
        f"{attempts} times in a row, so I stopped."
    )
    if problem:
        text += f" The last problem was: {problem}"
    return text + (
        "\nPlease rephrase the question with what is missing (the instrument, the venue and, for an "
        "order, the side and a positive size)."
    )
