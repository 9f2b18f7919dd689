"""The assistant on a real model: the provider path (pydantic-ai ``OpenAIChatModel`` over the
OpenAI SDK) against the loopback OpenAI-compatible server (``testing/llm_server.py``), on the
recorded books.

What is asserted is what reaches the provider (requests counted and timed by the server) and what
the user reads: limits stop the run with an answer and no request after it, a hang is cut at the
configured timeout, 500/429 are retried per policy and then answered by the offline model with a
note saying so, several bad arguments come back in one retry, exhausted retries read as a plain
sentence, a missing key is a warning and a status field, and keys are never put into
``os.environ``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest
from pydantic_ai import models

from market_liquidity_monitor.config import AgentSettings, Settings
from market_liquidity_monitor.testing.llm_server import (
    Call,
    Calls,
    LoopbackLLM,
    Text,
    failing,
    hanging,
    looping,
    scripted,
    tool_then_answer,
)
from tests.support import assistant_for

KEY = "sk-test-loopback-NEVER-IN-ENV-7c41"
QUESTION = "How much slippage would a 5 BTC market buy cause on Binance?"
IMPACT_ARGS = {"symbol": "BTC", "side": "buy", "size": 5, "venue": "binance"}


@pytest.fixture
def llm(monkeypatch):
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)  # requests go to 127.0.0.1 only
    with LoopbackLLM() as server:
        yield server


def settings_for(llm: LoopbackLLM, **agent) -> Settings:
    return Settings(agent=AgentSettings(model="openai:loopback", base_url=llm.base_url, api_key=KEY, **agent))


def impact_answer(results) -> str:
    """The loopback model's final answer, written from the tool result it received on the wire."""
    r = results[0]["json"]
    return f"On {r['venue']} {r['symbol']} (book {r['book_ts']}) a 5 BTC buy fills at VWAP {r['vwap']}."


def assert_no_request_after(llm: LoopbackLLM, t: float, wait_s: float = 1.0) -> None:
    time.sleep(wait_s)
    late = llm.requests_after(t)
    assert not late, f"{len(late)} request(s) reached the provider after the answer"


# ------------------------------------------------------------------------------- happy path


async def test_tool_calling_model_answers_from_the_tool_result(llm, recorded_market):
    llm.model = tool_then_answer("market_impact", IMPACT_ARGS, impact_answer)
    r = await assistant_for(settings_for(llm), recorded_market).ask(QUESTION)
    (call,) = r.tool_calls
    res = call["result"]
    assert call["tool"] == "market_impact" and (res["venue"], res["symbol"], res["size"]) == (
        "binance",
        "BTC/USDT",
        5.0,
    )
    assert r.answer == impact_answer([{"json": res}])
    assert r.outcome == "answered" and r.grounding["grounded"]
    assert len(llm.requests) == 2
    # the key went to the provider in the Authorization header, and nowhere into the environment
    assert llm.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in os.environ.values()


async def test_ask_stream_yields_events_while_the_model_streams(llm, recorded_market):
    llm.model = tool_then_answer("market_impact", IMPACT_ARGS, impact_answer, turn_s=1.0, pieces=5)
    t0 = time.monotonic()
    seen = []
    async for ev in assistant_for(settings_for(llm), recorded_market).ask_stream(QUESTION):
        seen.append((time.monotonic() - t0, ev))
    kinds = [ev["event"] for _, ev in seen]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "done"
    assert set(kinds[2:-1]) == {"chunk"} and len(kinds[2:-1]) >= 5
    assert seen[0][1]["data"] == {"name": "market_impact", "args": IMPACT_ARGS, "tool_call_id": "call_0_0"}
    assert seen[1][1]["data"]["ok"] is True and "binance" in seen[1][1]["data"]["summary"]
    chunks = [(t, ev["data"]["text"]) for t, ev in seen if ev["event"] == "chunk"]
    done_t, done = seen[-1][0], seen[-1][1]["data"]
    assert "".join(text for _, text in chunks) == done["answer"]
    # the pieces came as the server sent them (0.2 s apart), not all at the end
    assert done_t - chunks[0][0] > 0.5
    assert set(done) == {"answer", "tool_calls", "session_id", "grounding"} and done["grounding"]["grounded"]


# ------------------------------------------------------------------------------- limits


async def test_looping_model_stops_at_max_tool_calls_and_no_request_follows(llm, recorded_market):
    llm.model = looping("market_impact", IMPACT_ARGS)
    r = await assistant_for(settings_for(llm, max_tool_calls=3), recorded_market).ask(QUESTION)
    t_answer = time.monotonic()
    assert r.outcome == "limit"
    assert "more than 3 tool calls" in r.answer and "MLM_AGENT__MAX_TOOL_CALLS=3" in r.answer
    assert "raise the limit with MLM_AGENT__MAX_TOOL_CALLS" in r.answer
    # what was computed is shown: the book the three calls read
    res = r.tool_calls[0]["result"]
    assert "What I computed before stopping" in r.answer and res["book_ts"] in r.answer
    assert len(r.tool_calls) == 3 and r.grounding["grounded"]
    assert "pydantic.dev" not in r.answer and "UsageLimitExceeded" not in r.answer
    # 3 tool-call responses, then the 4th response asked for a 4th call: refused before running it
    assert len(llm.requests) == 4
    assert_no_request_after(llm, t_answer)


async def test_request_limit_stops_the_run(llm, recorded_market):
    llm.model = looping("market_impact", IMPACT_ARGS)
    r = await assistant_for(settings_for(llm, max_requests=2, max_tool_calls=50), recorded_market).ask(
        QUESTION
    )
    assert r.outcome == "limit" and "MLM_AGENT__MAX_REQUESTS=2" in r.answer
    assert len(llm.requests) == 2


async def test_total_tokens_limit_stops_the_run(llm, recorded_market):
    llm.model = looping("market_impact", IMPACT_ARGS)
    r = await assistant_for(
        settings_for(llm, max_total_tokens=2_000, max_tool_calls=50), recorded_market
    ).ask(QUESTION)
    assert r.outcome == "limit" and "MLM_AGENT__MAX_TOTAL_TOKENS=2000" in r.answer
    # each request carries the tool schemas and the history (thousands of tokens): stopped early
    assert 1 <= len(llm.requests) <= 3


# ------------------------------------------------------------------------------- timeouts


async def test_hanging_model_is_cut_at_the_request_timeout(llm, recorded_market):
    llm.model = hanging()
    settings = settings_for(llm, request_timeout_s=1.5, fallback_offline=False)
    t0 = time.monotonic()
    r = await assistant_for(settings, recorded_market).ask(QUESTION)
    elapsed = time.monotonic() - t0
    assert 1.4 <= elapsed < 4.0, elapsed
    assert r.outcome == "timeout"
    assert "did not answer within 1.5 s (MLM_AGENT__REQUEST_TIMEOUT_S)" in r.answer
    assert "Nothing was computed before stopping" in r.answer
    # one attempt (a hang is not retried), and the client closed it: the provider can stop working
    (req,) = llm.requests
    deadline = time.monotonic() + 2
    while req.disconnected_at is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert req.disconnected_at is not None and req.disconnected_at - req.t < 3.0
    assert_no_request_after(llm, time.monotonic())


async def test_hanging_model_falls_back_to_the_offline_model(llm, recorded_market):
    llm.model = hanging()
    r = await assistant_for(settings_for(llm, request_timeout_s=1.5), recorded_market).ask(QUESTION)
    assert r.outcome == "fallback"
    assert r.tool_calls[0]["tool"] == "market_impact"  # the offline model called the tool
    assert r.answer.endswith(
        f"Note: the provider 'openai:loopback' at {llm.base_url} did not answer within 1.5 s; "
        "answered by the offline model."
    )
    assert len(llm.requests) == 1  # the rest of the question stayed on the offline model


async def test_run_timeout_stops_a_slow_run_with_what_was_computed(llm, recorded_market):
    # every turn takes 0.8 s and calls the tool again: the 2 s run deadline passes mid-run
    llm.model = looping("market_impact", IMPACT_ARGS, turn_s=0.8)
    r = await assistant_for(settings_for(llm, run_timeout_s=2.0, max_tool_calls=50), recorded_market).ask(
        QUESTION
    )
    t_answer = time.monotonic()
    assert r.outcome == "timeout" and "longer than 2 s" in r.answer and "MLM_AGENT__RUN_TIMEOUT_S" in r.answer
    assert r.tool_calls and r.tool_calls[0]["result"]["book_ts"] in r.answer
    assert_no_request_after(llm, t_answer)


# ------------------------------------------------------------------------------- retries and fallback


async def test_500_is_retried_per_policy_then_answered_offline(llm, recorded_market):
    llm.model = failing(500)
    r = await assistant_for(settings_for(llm, retry_attempts=3), recorded_market).ask(QUESTION)
    assert r.outcome == "fallback" and r.tool_calls[0]["tool"] == "market_impact"
    assert r.answer.endswith(
        f"Note: the provider 'openai:loopback' at {llm.base_url} answered HTTP 500 (3 attempts); "
        "answered by the offline model."
    )
    # 3 attempts, with growing (capped) backoff between them, then the offline model for the rest
    assert [q.status for q in llm.requests] == [500, 500, 500]
    gaps = [b.t - a.t for a, b in zip(llm.requests, llm.requests[1:], strict=False)]
    assert 0.2 < gaps[0] < gaps[1] < 8.5, gaps


async def test_429_waits_for_retry_after_then_the_provider_answers(llm, recorded_market):
    llm.model = failing(
        429, times=1, retry_after=1, then=tool_then_answer("market_impact", IMPACT_ARGS, impact_answer)
    )
    r = await assistant_for(settings_for(llm), recorded_market).ask(QUESTION)
    assert r.outcome == "answered" and r.answer == impact_answer([{"json": r.tool_calls[0]["result"]}])
    assert [q.status for q in llm.requests] == [429, 200, 200]
    assert llm.requests[1].t - llm.requests[0].t >= 0.95  # Retry-After: 1, not the SDK's 0.5 s backoff


async def test_429_that_persists_falls_back_and_says_so(llm, recorded_market):
    llm.model = failing(429, retry_after=1)
    r = await assistant_for(settings_for(llm, retry_attempts=2), recorded_market).ask(QUESTION)
    assert (
        r.outcome == "fallback"
        and "answered HTTP 429 (2 attempts); answered by the offline model." in r.answer
    )
    assert len(llm.requests) == 2 and llm.requests[1].t - llm.requests[0].t >= 0.95


async def test_after_a_fallback_the_next_question_tries_the_provider_again(llm, recorded_market):
    provider = tool_then_answer("market_impact", IMPACT_ARGS, impact_answer)
    llm.model = failing(500, times=3, then=provider)
    assistant = assistant_for(settings_for(llm), recorded_market)
    first = await assistant.ask(QUESTION)
    assert first.outcome == "fallback"
    second = await assistant.ask("and again?", first.session_id)
    assert second.outcome == "answered" and "answered by the offline model" not in second.answer
    assert [q.status for q in llm.requests] == [500, 500, 500, 200, 200]


async def test_fallback_disabled_keeps_the_provider_error(llm, recorded_market):
    from market_liquidity_monitor.agent.assistant import ModelProviderError

    llm.model = failing(503)
    with pytest.raises(ModelProviderError) as info:
        await assistant_for(settings_for(llm, fallback_offline=False, retry_attempts=1), recorded_market).ask(
            QUESTION
        )
    msg = str(info.value)
    assert "answered HTTP 503" in msg and "server error (not a configuration problem)" in msg
    assert "MLM_AGENT__MODEL and MLM_AGENT__BASE_URL" not in msg  # the wrong hint for a 5xx


# ------------------------------------------------------------------------------- bad arguments


async def test_three_bad_arguments_come_back_in_one_retry_message(llm, recorded_market):
    bad = {"symbol": "BTC", "side": "up", "size": -5, "venue": "nowhere"}
    llm.model = scripted(
        Calls([Call("market_impact", bad)]),
        Calls([Call("market_impact", IMPACT_ARGS)]),
        lambda turn: Text(impact_answer(turn.tool_results)),
    )
    r = await assistant_for(settings_for(llm), recorded_market).ask(QUESTION)
    # the second request carries the tool's one retry message: all three problems with valid values
    (retry,) = [m for m in llm.requests[1].body["messages"] if m.get("role") == "tool"]
    text = retry["content"]
    assert "3 problems with the arguments of market_impact" in text
    assert "side: Invalid side 'up': valid sides are 'buy' and 'sell'" in text
    assert "size/notional: size must be a finite number > 0, got -5" in text
    venues = sorted({i.venue for i in recorded_market.instruments()})
    assert "Unknown venue 'nowhere'" in text and f"Valid venues: {', '.join(venues)}" in text
    # corrected in one go, then answered
    assert r.outcome == "answered" and len(llm.requests) == 3
    assert [c["tool"] for c in r.tool_calls] == ["market_impact", "market_impact"]
    assert "error" in r.tool_calls[0]["result"] and r.tool_calls[1]["result"]["venue"] == "binance"


async def test_retries_running_out_read_as_a_plain_sentence(llm, recorded_market):
    llm.model = looping("market_impact", {"symbol": "BTC", "side": "up", "size": 5, "venue": "binance"})
    r = await assistant_for(settings_for(llm), recorded_market).ask(QUESTION)
    assert r.outcome == "retries_exhausted"
    assert r.answer.startswith(
        "I couldn't complete that request: the model called market_impact with arguments it rejects "
        "3 times in a row, so I stopped. The last problem was: side: Invalid side 'up'"
    )
    for internal in ("pydantic.dev", "exceeded max retries", "UnexpectedModelBehavior", "Consider raising"):
        assert internal not in r.answer
    assert len(llm.requests) == 3  # the first try and the 2 retries of Agent(retries=2)


async def test_malformed_json_arguments_are_retried_and_explained(llm, recorded_market):
    llm.model = looping("market_impact", '{"symbol": "BTC", "side": ')  # not JSON
    r = await assistant_for(settings_for(llm), recorded_market).ask(QUESTION)
    assert r.outcome == "retries_exhausted" and "market_impact" in r.answer
    assert "pydantic.dev" not in r.answer and "https://" not in r.answer


# ------------------------------------------------------------------------------- keys and status


def test_missing_key_falls_back_with_a_warning_and_a_status_field(monkeypatch, caplog, recorded_market):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = Settings(agent=AgentSettings(model="anthropic:claude-sonnet-4-5"))
    with caplog.at_level(logging.WARNING, logger="market_liquidity_monitor.agent.assistant"):
        a = assistant_for(settings, recorded_market)
    status = a.model_status()
    assert status["configured_model"] == "anthropic:claude-sonnet-4-5"
    assert status["effective_model"] == "offline"
    assert status["reason"] == "no API key for anthropic: set MLM_AGENT__API_KEY or ANTHROPIC_API_KEY"
    (rec,) = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert rec.levelno == logging.WARNING and "ANTHROPIC_API_KEY" in rec.getMessage()
    assert asyncio.run(a.ask(QUESTION)).tool_calls[0]["tool"] == "market_impact"


@pytest.mark.parametrize(
    ("model", "env"),
    [
        ("openai:gpt-4o", "OPENAI_API_KEY"),
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("openrouter:openai/gpt-4o", "OPENROUTER_API_KEY"),
        ("ollama:llama3.1", "OLLAMA_API_KEY"),
    ],
)
def test_keys_are_passed_to_the_provider_never_written_to_the_environment(
    monkeypatch, recorded_market, model, env
):
    monkeypatch.delenv(env, raising=False)
    a = assistant_for(Settings(agent=AgentSettings(model=model, api_key=KEY)), recorded_market)
    assert env not in os.environ
    assert KEY not in os.environ.values()
    assert a.model_status()["effective_model"] == model  # the key was used: no fallback for lack of one
    # the provider's client holds the key it was given
    client = a.agent.model.client
    assert getattr(client, "api_key", None) == KEY
