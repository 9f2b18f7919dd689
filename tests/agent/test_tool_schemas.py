"""The tool schemas a model (and an MCP client) sees: closed sets are enums taken from the product's
own enums, every argument is described, the instructions name the loaded venues and the defaults,
and ``mlm mcp`` lists exactly these schemas (one list of tools)."""

from __future__ import annotations

import asyncio

from pydantic_ai import Tool

from market_liquidity_monitor.agent.factory import data_instructions
from market_liquidity_monitor.agent.tools import TOOLS, AgentDeps
from market_liquidity_monitor.config import Settings

# (tool, argument) -> the values the services accept, written out here (not read from the code).
ENUMS = {
    **{
        (t, "side"): ["buy", "sell"]
        for t in (
            "market_impact",
            "max_size_within_slippage",
            "compare_venues",
            "route_order",
            "backtest_execution",
        )
    },
    ("backtest_execution", "schedule"): ["arrival", "twap", "vwap"],
    ("create_alert", "metric"): [
        "mid_price",
        "spread_bps",
        "depth_notional",
        "depth_size",
        "imbalance",
        "zscore",
        "volume",
        "volatility",
    ],
    ("create_alert", "comparison"): ["above", "below", "crosses_above", "crosses_below", "crosses"],
    ("create_alert", "side"): ["both", "bid", "ask"],
    ("liquidity_history", "metric"): [
        "depth",
        "bid_depth",
        "ask_depth",
        "imbalance",
        "spread_bps",
        "mid",
        "microprice",
    ],
}
TIMEFRAME_ARGS = {
    ("backtest_execution", "timeframe"),
    ("pairs_stats", "timeframe"),
    ("price_history", "timeframe"),
}
UNIT_WORDS = ("bps", "base units", "quote units", "days", "seconds", "0..1", "observations", "metric's unit")


def _schemas() -> dict[str, dict]:
    return {d.name: d.parameters_json_schema for d in (Tool(fn).tool_def for fn in TOOLS)}


def _variants(prop: dict) -> list[dict]:
    return [v for v in prop.get("anyOf", [prop]) if v.get("type") != "null"]


def test_closed_sets_are_enums_and_timeframes_a_pattern():
    schemas = _schemas()
    for (tool, arg), values in ENUMS.items():
        (variant,) = _variants(schemas[tool]["properties"][arg])
        assert (variant["type"], variant["enum"]) == ("string", values), (tool, arg)
    for tool, arg in TIMEFRAME_ARGS:
        (variant,) = _variants(schemas[tool]["properties"][arg])
        assert variant["type"] == "string" and variant["pattern"], (tool, arg)
    # no other free string where a closed set is meant
    for tool, schema in schemas.items():
        for arg in schema["properties"]:
            if arg in ("side", "schedule", "metric", "comparison"):
                assert (tool, arg) in ENUMS, (tool, arg)


def test_every_argument_is_described_and_numbers_carry_units():
    for tool, schema in _schemas().items():
        for arg, prop in schema["properties"].items():
            desc = prop.get("description", "")
            assert len(desc) >= 10, f"{tool}.{arg} has no description"
            assert "``" not in desc and "settings." not in desc, f"{tool}.{arg} names an internal: {desc}"
            numeric = any(v.get("type") in ("number", "integer") for v in _variants(prop))
            if numeric:
                assert any(w in desc for w in UNIT_WORDS) or arg.endswith(("_bps", "_s", "_days")), (
                    f"{tool}.{arg}: no unit in {desc!r}"
                )


def test_the_services_keep_the_check_and_its_aliases():
    """The enum is what the model is told; the values are checked by the services (their messages
    name the valid values), so loose values still work and a tool reports every problem at once."""
    validator = Tool(TOOLS[1]).function_schema.validator  # market_impact
    assert validator.validate_python({"symbol": "BTC", "side": "Long", "size": "5"}) == {
        "symbol": "BTC",
        "side": "Long",
        "size": 5.0,
        "notional": None,
        "venue": None,
        "as_of": None,
    }


def test_instructions_name_the_recorded_venues_and_the_defaults(data_dir):
    from pydantic_ai import RunContext
    from pydantic_ai.usage import RunUsage

    from market_liquidity_monitor.services import Services

    services = Services.build(Settings(data_dir=data_dir), persist_alerts=False)
    text = asyncio.run(data_instructions(RunContext(deps=AgentDeps(services), model=None, usage=RunUsage())))
    # the venues of ../shared/data's recordings (its README, section 1), by ccxt id
    venues = "binance, binancecoinm, binanceusdm, bitfinex, bitstamp, bybit, coinbase, gate, gemini, kraken, kucoin, okx"
    assert f"venues (ccxt ids; use them as `venue`): {venues}." in text
    assert "recorded books" in text
    assert "venue binance" in text and "quote USDT" in text and "side buy" in text and "50 bps" in text
    assert not services.market.store.instruments()  # listing the venues loaded nothing


async def test_mcp_lists_the_same_schemas(data_dir):
    from mcp import Client

    from market_liquidity_monitor.mcp_server import build_server
    from market_liquidity_monitor.services import Services

    services = Services.build(Settings(data_dir=data_dir), persist_alerts=False)
    async with Client(build_server(services)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert {n: t.input_schema for n, t in listed.items()} == _schemas()
        bad = await client.call_tool(
            "market_impact", {"symbol": "BTC", "side": "up", "size": -5, "venue": "nowhere"}
        )
        typed = await client.call_tool("market_impact", {"symbol": "BTC", "size": "x", "window": 1})
    assert bad.is_error
    text = bad.content[0].text
    assert text.startswith(
        "3 problems with the arguments of market_impact (fix all of them in the next call):"
    )
    assert "side: Invalid side 'up': valid sides are 'buy' and 'sell'" in text
    assert "size/notional: size must be a finite number > 0, got -5" in text
    assert "Unknown venue 'nowhere'" in text and "Valid venues: binance, binancecoinm" in text
    assert typed.is_error  # pydantic's errors, every field at once
    assert typed.content[0].text.startswith("2 problems with the arguments of market_impact")
    assert "size: Input should be a valid number" in typed.content[0].text
    assert "window: Extra inputs are not permitted" in typed.content[0].text
    await services.close()


async def test_the_model_reads_a_compact_result_and_the_log_keeps_the_typed_answer(
    monkeypatch, recorded_market
):
    """Over a loopback OpenAI-compatible server: the tool message on the wire leaves out internal
    counters and empty fields; ``tool_calls`` (the API's / CLI's result) keeps the whole answer, and
    every value the model read is the answer's own."""
    from pydantic_ai import models

    from market_liquidity_monitor.config import AgentSettings
    from market_liquidity_monitor.testing.llm_server import LoopbackLLM, tool_then_answer
    from tests.support import assistant_for

    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)  # requests go to 127.0.0.1 only
    seen: list[dict] = []

    def answer(results) -> str:
        seen.append(results[0]["json"])
        r = results[0]["json"]
        return f"On {r['venue']} {r['symbol']} a 5 BTC buy fills at VWAP {r['vwap']}."

    with LoopbackLLM() as llm:
        llm.model = tool_then_answer(
            "market_impact", {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"}, answer
        )
        settings = Settings(agent=AgentSettings(model="openai:loopback", base_url=llm.base_url, api_key="k"))
        r = await assistant_for(settings, recorded_market).ask("5 BTC market buy on binance?")
    (wire,) = seen
    full = r.tool_calls[0]["result"]
    assert full["book_ts_ns"] and full["book"]["quality"]["sequence"] and "reason" in full
    for gone in ("book_ts_ns", "reason", "notional_requested"):
        assert gone not in wire  # internal, or None
    assert "quality" not in wire["book"] and "book_ts_ns" not in wire["book"]
    assert wire["book"]["quality_warning" if full["book"]["quality_warning"] else "integrity"]

    def same(w, f):
        if isinstance(w, dict):
            return all(same(v, f[k]) for k, v in w.items())
        return w == f

    assert same(wire, full)  # nothing renamed or rounded
    assert len(str(wire)) < 0.75 * len(str(full))
