"""The assistant understands book instants ("at 23:58 UTC on 8 Aug", "5 minutes before the end",
"at 2024-08-08 23:58:30") and answers on the book rebuilt to that instant, saying so."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from market_liquidity_monitor.agent.parser import parse_query
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData
from tests.support import assistant_for
from tests.timetravel_reference import _ns, decimal_book, decimal_vwap_buy


@pytest.mark.parametrize(
    ("question", "capability", "as_of"),
    [
        ("What is the impact of buying 5 BTC on binance at 23:58 UTC on 8 Aug?", "market_impact",
         "--08-08T23:58:00Z"),
        ("Order book for BTC on binance 5 minutes before the end", "order_book", "end-300s"),
        ("impact of selling 10 ETH at 2024-08-08 23:58:30", "market_impact", "2024-08-08T23:58:30Z"),
        ("compare 5 BTC across venues at 23:58 UTC", "compare_venues", "T23:58:00Z"),
        ("route 20 BTC on 8 Aug 2024 at 23:59", "route_order", "2024-08-08T23:59:00Z"),
        ("max size to buy BTC within 10 bps as of 00:02:30.5 utc", "market_impact", "T00:02:30.5Z"),
    ],
)  # fmt: skip
def test_parser_reads_the_instant_and_nothing_else_from_it(question, capability, as_of):
    q = parse_query(question)
    assert q.capability == capability
    assert q.args["as_of"] == as_of
    assert "timeframe" not in q.args and "lookback_days" not in q.args


def test_no_instant_no_as_of_and_follow_up_moves_it():
    q = parse_query("What is the impact of buying 5 BTC on binance?")
    assert "as_of" not in q.args
    f = parse_query("and 2 minutes before the end?", q)
    assert f.capability == "market_impact" and f.args["as_of"] == "end-120s" and f.args["size"] == 5


@pytest.fixture(scope="module")
def market(data_dir, tmp_path_factory):
    settings = Settings(data_dir=data_dir, ingest={"checkpoint_dir": tmp_path_factory.mktemp("ckpt")})
    return settings, MarketData.from_recordings(settings, data_dir)


def test_offline_answer_is_on_the_book_at_that_instant(market, data_dir):
    settings, md = market
    a = assistant_for(settings, md)
    res = asyncio.run(a.ask("What is the impact of buying 5 BTC on binance at 23:58 UTC on 8 Aug?"))
    call = res.tool_calls[0]
    assert call["tool"] == "market_impact" and call["args"]["as_of"] == "--08-08T23:58:00Z"
    _, asks, _, _ = decimal_book(data_dir, _ns("2024-08-08T23:58:00Z"))
    vwap = call["result"]["vwap"]
    assert vwap == pytest.approx(float(decimal_vwap_buy(asks, Decimal(5))), rel=1e-12)
    assert "rebuilt to 2024-08-08T23:58:00.000Z" in res.answer
    assert f"{vwap:,.2f}" in res.answer

    end = asyncio.run(a.ask("Order book for BTC on binance 5 minutes before the end"))
    b = end.tool_calls[0]["result"]["book"]
    # The recording of binance BTC/USDT ends at 00:05:04.535 (receive time): 300 s before.
    assert b["as_of"] == "2024-08-09T00:00:04.535Z"
    assert "rebuilt to 2024-08-09T00:00:04.535Z" in end.answer
