"""Grounding v2 unit tests: each conversion a writer makes is accepted, and each false accept of the
first grounding version (issue 12) is flagged. Tool results are small dicts shaped like the
services' answers (field names as in services/liquidity.py and services/trading.py)."""

from __future__ import annotations

import pytest

from market_liquidity_monitor.agent.grounding import GroundingReport, check_grounding

IMPACT = {
    "tool": "market_impact",
    "args": {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"},
    "result": {
        "venue": "binance",
        "symbol": "BTC/USDT",
        "book_ts": "2024-08-09T00:05:05.809Z",
        "size": 5.0,
        "vwap": 61603.56492,
        "mid_price": 61602.015,
        "slippage_bps": 0.2516,
        "spread_bps": 0.0016,
        "fee_bps": 5.0,
        "filled_notional": 13388.0,
        "levels_consumed": 14,
        "fully_filled": True,
        "imbalance": -0.172,
        "taker_fee": 0.00075,
    },
}

COMPARE = {
    "tool": "compare_venues",
    "args": {"symbol": "ETH", "side": "sell", "size": 200},
    "result": {
        "size": 200.0,
        "best_venue": "binancecoinm",
        "venues": [
            {
                "venue": "binance",
                "symbol": "ETH/USDT",
                "cost_bps": 13.88,
                "fee_bps": 10.0,
                "spread_bps": 0.04,
            },
            {
                "venue": "binancecoinm",
                "symbol": "ETH/USD:ETH",
                "cost_bps": 8.35,
                "fee_bps": 5.0,
                "spread_bps": 0.05,
            },
        ],
        "arbitrage_opportunities": [],
        "arbitrage_pairs_checked": 1,
        "arbitrage_best_edge": {"buy_venue": "binancecoinm", "sell_venue": "binance", "edge_bps": -12.79},
        "unavailable": [{"venue": "okx", "kind": "no_symbol", "reason": "no ETH book"}],
    },
}

PAIRS = {
    "tool": "pairs_stats",
    "args": {"symbol_a": "ETH", "symbol_b": "BTC"},
    "result": {
        "venue": "binance",
        "symbol_a": "ETH/USDT",
        "symbol_b": "BTC/USDT",
        "analysis": {
            "hedge_ratio_ols": 1.0189,
            "hedge_ratio_huber": 1.0336,
            "r_squared_ols": 0.7221,
            "zscore_last": 0.2829,
            "zscore_window": 48,
            "adf": {"stat": -2.202, "p_value": 0.2054, "rejects_unit_root_5pct": False},
            "coint": {"stat": -2.204, "p_value": 0.4221, "cointegrated_5pct": False},
        },
    },
}


def grounded(text: str, *calls, question: str = "") -> bool:
    return check_grounding(text, calls or (IMPACT,), question).grounded


# ---------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    "text",
    [
        "a VWAP of 61,603.56 USDT",  # rounding to the written precision
        "a VWAP of 61,603.6",
        "a VWAP of 61603.565",
        "a total of 13,388 USDT",
        "a total of 13,390 USDT",  # rounded to tens (four significant digits)
        "a total of 13.388k USDT",
        "a total of 13.4k USDT",
        "a total of $13.39k",
        "slippage 0.25 bps",
        "slippage 0.0025%",  # bps -> %
        "slippage 0.00252 percent",
        "imbalance -0.172",
        "imbalance -17.2%",  # fraction -> %
        "a taker fee of 7.5 bps",  # fraction 0.00075 -> bps
        "a fee of 5 bps",
        "14 price levels",
        "fourteen price levels",  # numbers in words
        "five BTC",
        "book as of 2024-08-09T00:05:05.809Z",
        "book as of 2024-08-09T00:05:05Z",
        "book as of 2024-08-09 00:05 UTC",
        "book as of 2024-08-09",
        "book as of Aug 9, 2024",
        "book as of 9 August 2024 00:05:05",
    ],
)
def test_writer_conversions_are_accepted(text):
    report = check_grounding(text, [IMPACT])
    assert report.grounded, report.unsupported


def test_bps_percent_and_r_squared_conversions():
    r = {"tool": "t", "args": {}, "result": {"venue": "x", "cost_bps": 12.4, "r_squared_ols": 0.722}}
    assert grounded("cost 0.124%", r) and grounded("cost 12.4 bps", r)
    assert grounded("R² 72.2%", r) and grounded("R² 0.722", r)
    assert not grounded("cost 0.125%", r) and not grounded("R² 72.3%", r)


@pytest.mark.parametrize(
    "text",
    [
        "a VWAP of 61,603.58 USDT",  # 2 cents off at 2 decimals
        "a VWAP of 62,219.60 USDT",  # 1% off
        "a VWAP of 67,763.92 USDT",  # 10% off
        "a total of 13,380 USDT",
        "a total of 13.38k USDT",
        "slippage 0.26 bps",
        "slippage -0.25 bps",  # sign
        "imbalance +0.172",  # imbalance sign flip
        "imbalance 0.172",
        "15 price levels",
        "ten BTC",  # a number in words that is not in the results
        "book as of 2024-08-10",
        "book as of 2024-08-09T00:05:07Z",
        "book as of Aug 10, 2024",
    ],
)
def test_wrong_figures_are_flagged(text):
    assert not grounded(text), text


def test_tolerance_is_the_written_precision_not_a_band():
    # 0.5% off a price written with 2 decimals, and 0.2% off an integer: both unsupported.
    assert not grounded("a VWAP of 61,911.58")
    assert not grounded("a total of 13,415 USDT")
    assert grounded("a total of 13,388.0 USDT") and not grounded("a total of 13,388.4 USDT")


# ---------------------------------------------------------------- the false accepts of issue 12


def test_a_figure_must_match_the_field_its_label_names():
    # 0.04 bps spread written as 5 bps matches the 5 bps fee by value only.
    assert grounded("spread 0.00 bps, fee 5.00 bps")
    assert not grounded("spread 5 bps, fee 5.00 bps")
    assert not grounded("slippage 5.00 bps")


def test_pairs_figures_are_matched_to_their_fields():
    assert grounded("hedge ratio 1.0189 (OLS), 1.0336 (Huber robust); p-value 0.4221", PAIRS)
    assert not grounded("Engle-Granger cointegration: statistic -2.204, p-value 0.01", PAIRS)
    assert not grounded("Hedge ratio: 1.03 (OLS, R² 0.722)", PAIRS)  # 1.0189 -> 1.03 (the Huber figure)
    assert not grounded("Spread z-score now -0.28", PAIRS)  # z-score sign flip
    assert not grounded("Spread z-score now +48", PAIRS)  # the window in the z-score's place


def test_verdicts_are_checked_against_the_deciding_field():
    assert grounded("The spread is not stationary; the pair is not cointegrated.", PAIRS)
    assert not grounded("stationary at the five-percent level", PAIRS)
    assert not grounded("the spreads are cointegrated at that level", PAIRS)
    assert grounded("Best: binancecoinm.", COMPARE)
    assert not grounded("Best: binance.", COMPARE)
    assert not grounded("binance is the cheapest venue", COMPARE)
    assert grounded(
        "No arbitrage after taker fees (best: buy binancecoinm, sell binance, -12.79 bps).", COMPARE
    )
    assert not grounded("Arbitrage opportunity after taker fees.", COMPARE)
    assert not grounded(
        "No arbitrage after taker fees (best: buy binancecoinm, sell binance, 12.79 bps).", COMPARE
    )
    assert grounded("Yes: the visible book can absorb it.")
    assert not grounded("No: there is not enough visible liquidity.")


def test_figures_belong_to_the_venue_their_sentence_names():
    assert grounded(
        "- binance ETH/USDT: cost 13.88 bps, fee 10.00\n- binancecoinm ETH/USD:ETH: cost 8.35 bps", COMPARE
    )
    assert not grounded("- binance ETH/USDT: cost 8.35 bps, fee 10.00", COMPARE)  # binancecoinm's cost
    assert not grounded("- binancecoinm ETH/USD:ETH: fee 10.00 bps", COMPARE)  # binance's fee
    assert not grounded("On kraken the cost is 8.35 bps.", COMPARE)  # a venue no result names


def test_earlier_turns_of_the_conversation_back_a_figure():
    turn1 = {**IMPACT, "turn": 0}
    turn2 = {**PAIRS, "turn": 1}
    text = "The 5 BTC buy had a VWAP of 61,603.56; the hedge ratio is 1.0189 (OLS)."
    assert check_grounding(text, [turn1, turn2], ["q1", "q2"]).grounded
    assert not check_grounding(text, [turn2], ["q2"]).grounded


def test_report_gives_spans_and_reasons():
    text = "slippage 0.25 bps over 15 price levels; Best: binance."
    report = check_grounding(text, [IMPACT, COMPARE])
    assert isinstance(report, GroundingReport) and report.verdict == "unsupported" and not report.grounded
    items = {u.text: u for u in report.unsupported}
    assert set(items) == {"15", "binance"}
    assert text[items["15"].start : items["15"].end] == "15" and items["15"].kind == "number"
    assert items["binance"].kind == "claim" and "binancecoinm" in items["binance"].reason
    assert report.numbers_checked >= 2 and report.claims_checked >= 1
    assert '"15"' in report.note() and report.as_dict()["unsupported"][0]["reason"]


# ------------------------------------------------------------------ through the assistant (LLM path)

QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
IMPACT_ARGS = {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"}


async def test_llm_answers_are_checked_against_the_whole_conversation(monkeypatch, recorded_market):
    """A wrong figure of a real model's answer is flagged in the answer and in ``grounding``; a
    later turn may quote a figure computed one turn earlier (no tool call of its own), a new
    session may not."""
    from pydantic_ai import models

    from market_liquidity_monitor.config import AgentSettings, Settings
    from market_liquidity_monitor.testing.llm_server import LoopbackLLM, Text, scripted, tool_then_answer
    from tests.support import assistant_for

    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)  # requests go to 127.0.0.1 only
    with LoopbackLLM() as llm:
        settings = Settings(
            agent=AgentSettings(model="openai:loopback", base_url=llm.base_url, api_key="sk-test-loopback")
        )
        assistant = assistant_for(settings, recorded_market)
        llm.model = tool_then_answer(
            "market_impact",
            IMPACT_ARGS,
            lambda res: f"On binance the VWAP is {res[0]['json']['vwap']:,.2f} USDT, slippage 9.99 bps.",
        )
        r1 = await assistant.ask(QUESTION)
        g1 = r1.grounding
        assert g1["verdict"] == "unsupported" and [u["text"] for u in g1["unsupported"]] == ["9.99"]
        assert '[Unverified: "9.99"' in r1.answer
        vwap = r1.tool_calls[0]["result"]["vwap"]
        llm.model = scripted(Text(f"As computed above, the VWAP on binance was {vwap:,.2f} USDT."))
        r2 = await assistant.ask("remind me of the VWAP", r1.session_id)
        assert r2.tool_calls == [] and r2.grounding["grounded"], r2.grounding
        r3 = await assistant.ask("remind me of the VWAP")  # a new session has no such result
        assert not r3.grounding["grounded"] and f"{vwap:,.2f}" in {
            u["text"] for u in r3.grounding["unsupported"]
        }
        await assistant.services.close()


def test_cli_ask_json_carries_the_grounding_object(data_dir, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from market_liquidity_monitor.cli import app

    monkeypatch.setenv("MLM_HOME_DIR", str(tmp_path))
    monkeypatch.delenv("MLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    res = CliRunner().invoke(app, ["ask", QUESTION, "--data", str(data_dir), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    g = out["grounding"]
    assert g["verdict"] == "grounded" and g["grounded"] and g["unsupported"] == []
    assert g["numbers_checked"] >= 8
    assert out["tool_calls"][0]["result"]["book_ts"] in out["answer"]
