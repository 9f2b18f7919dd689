"""Negative or zero order sizes are refused with a clear answer, and no tool runs with them.

Before: "buy -5 BTC" was read as 5 BTC (the minus sign was not part of the number) and answered."""

from __future__ import annotations

import pytest

from market_liquidity_monitor.agent.parser import parse_query
from market_liquidity_monitor.config import Settings
from tests.support import assistant_for


@pytest.mark.parametrize(
    ("question", "written"),
    [
        ("buy -5 BTC", "-5 btc"),
        ("How much slippage would a -5 BTC market buy cause on Binance?", "-5 btc"),
        ("sell 0 ETH on binance", "0 eth"),
        ("what would it cost to buy 0.0 btc", "0.0 btc"),
        ("size of -3 btc on kraken, buy side", "-3 btc"),
        ("sell -40 on kraken", "-40"),
        ("buy -$150k of ETH", "-$150k"),
        ("buy minus 2 eth on binance", "minus 2 eth"),
        ("Which venue is best to sell -200 ETH?", "-200 eth"),
        ("Route a -10 BTC buy across venues", "-10 btc"),
        ("backtest buying -10 SOL over the last 7 days", "-10 sol"),
    ],
)
def test_negative_or_zero_sizes_are_refused(question, written):
    q = parse_query(question)
    assert q.capability == "refuse" and q.args == {}
    code, _, why = q.reason.partition(": ")
    assert code == "invalid_size"
    assert "must be greater than zero" in why and f'"{written}"' in why


@pytest.mark.parametrize(
    ("question", "size"),
    [("buy 5 BTC", 5), ("sell 40 on kraken", 40), ("buy 5-10 BTC", 10), ("buy 0.5 eth", 0.5)],
)
def test_positive_sizes_and_ranges_still_parse(question, size):
    q = parse_query(question)
    assert q.capability == "market_impact" and q.args["size"] == size


def test_follow_up_with_a_negative_or_zero_size_is_refused():
    first = parse_query("buy 5 BTC on binance")
    for text, written in (
        ("what about -3?", "-3"),
        ("and 0 BTC?", "0 btc"),
        ("what about -2 BTC?", "-2 btc"),
    ):
        q = parse_query(text, first)
        assert q.capability == "refuse" and f'"{written}"' in q.reason, (text, q)
    assert parse_query("what about 3?", first).args["size"] == 3


def test_negative_alert_thresholds_are_not_sizes():
    q = parse_query("alert me when BTC imbalance drops below -0.5")
    assert q.capability == "alerts"


@pytest.fixture()
def assistant(recorded_market):
    return assistant_for(Settings(), recorded_market)


async def test_assistant_answers_that_sizes_must_be_positive_without_a_tool(assistant):
    r = await assistant.ask("How much slippage would a -5 BTC market buy cause on Binance?")
    assert r.tool_calls == []
    assert "sizes must be greater than zero" in r.answer and '"-5 btc"' in r.answer
    assert r.grounding["grounded"], r.answer  # no "[Unverified figures ...]" note
    # The session goes on: a positive size afterwards runs the tool with that size.
    ok = await assistant.ask("How much slippage would a 5 BTC market buy cause on Binance?", r.session_id)
    (call,) = ok.tool_calls
    assert call["tool"] == "market_impact" and call["result"]["size"] == 5.0


async def test_assistant_refuses_a_zero_size_follow_up(assistant):
    first = await assistant.ask("what would it cost to sell 10 ETH on binance")
    assert first.tool_calls[0]["args"]["size"] == 10
    r = await assistant.ask("what about 0 ETH?", first.session_id)
    assert r.tool_calls == [] and "sizes must be greater than zero" in r.answer
    assert r.grounding["grounded"], r.answer
