"""``agent/retries.py`` on its own: every argument problem in one ModelRetry, pydantic validation
errors gathered the same way, and the user's sentence when the retries run out."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_ai import ModelRetry
from pydantic_ai.exceptions import UnexpectedModelBehavior

from market_liquidity_monitor.agent.retries import ArgumentProblems, exhausted_answer
from market_liquidity_monitor.agent.tools import ToolCallRecord
from market_liquidity_monitor.domain.errors import UnknownVenueError
from market_liquidity_monitor.domain.instrument import Side


def test_one_problem_is_the_problem_itself():
    p = ArgumentProblems("market_impact")
    assert p.check("side", Side.parse, "sell") is Side.SELL
    p.check("side", Side.parse, "up")
    with pytest.raises(ModelRetry) as info:
        p.raise_if_any()
    assert info.value.message == "side: Invalid side 'up': valid sides are 'buy' and 'sell'."


def test_every_problem_in_one_numbered_message():
    p = ArgumentProblems("market_impact")
    p.check("side", Side.parse, "up")

    def venue(v):
        raise UnknownVenueError(v, ["binance", "kraken"])

    p.check("venue", venue, "krakn")
    p.add("size", "must be a positive number, got -5.")
    p.add("size", "must be a positive number, got -5.")  # the same problem once
    assert bool(p) and len(p.problems) == 3
    assert p.message().splitlines() == [
        "3 problems with the arguments of market_impact (fix all of them in the next call):",
        "1. side: Invalid side 'up': valid sides are 'buy' and 'sell'.",
        "2. venue: Unknown venue 'krakn'. Did you mean kraken? Valid venues: binance, kraken.",
        "3. size: must be a positive number, got -5.",
    ]


def test_other_exceptions_are_not_argument_problems():
    p = ArgumentProblems("t")
    with pytest.raises(ZeroDivisionError):
        p.check("x", lambda: 1 / 0)
    p.raise_if_any()  # nothing recorded, nothing raised


def test_pydantic_validation_errors_are_gathered():
    class Order(BaseModel):
        side: Literal["buy", "sell"]
        size: float

    with pytest.raises(ValidationError) as info:
        Order(side="up", size="lots")
    p = ArgumentProblems("order")
    p.add_validation_error(info.value)
    msg = p.message()
    assert msg.startswith("2 problems with the arguments of order")
    assert "side: Input should be 'buy' or 'sell' (got 'up')" in msg and "size:" in msg and "'lots'" in msg
    assert "https://" not in msg


def test_exhausted_answer_is_plain_and_names_the_last_problem():
    cause = ModelRetry("side: Invalid side 'up': valid sides are 'buy' and 'sell'.")
    exc = UnexpectedModelBehavior(
        "Tool 'market_impact' exceeded max retries count of 2. Consider raising the retry limit, or see "
        "the docs on tool retries: https://pydantic.dev/docs/ai/tools-toolsets/tools-advanced/#tool-retries"
    )
    exc.__cause__ = cause
    text = exhausted_answer(exc, [], 3)
    assert text.startswith(
        "I couldn't complete that request: the model called market_impact with arguments it rejects 3 times "
        "in a row, so I stopped. The last problem was: side: Invalid side 'up'"
    )
    assert "pydantic.dev" not in text and "exceeded max retries" not in text


def test_exhausted_answer_without_a_tool():
    text = exhausted_answer(UnexpectedModelBehavior("Exceeded maximum output retries (2)"), [], 3)
    assert "did not follow the tool-calling protocol" in text and "Exceeded" not in text
    # a refused call in the log gives the tool and the problem when the exception does not
    log = [ToolCallRecord("order_book", {"symbol": "XYZ"}, error="Unknown symbol 'XYZ'.")]
    text = exhausted_answer(UnexpectedModelBehavior("something odd"), log, 3)
    assert "called order_book" in text and "Unknown symbol 'XYZ'." in text
