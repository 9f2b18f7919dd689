"""Assistant sessions: one question in, a grounded answer and its tool calls out.

``Assistant.ask`` returns the answer; ``Assistant.ask_stream`` yields it as it is produced
(``tool_call``, ``tool_result``, ``chunk`` events, then ``done`` with the same payload as ``ask``).
Both run under the limits of ``AgentSettings`` (tool calls, model requests, tokens, request and run
timeouts): a limit that stops the run gives an answer saying what happened, what was computed and
which setting to change, not an exception. A provider that fails (unreachable, timed out, 429/5xx
after the SDK's retries) is replaced by the offline model for the rest of the question, and the
answer says so; with ``fallback_offline=false`` or a refused request (4xx) it raises
``ModelProviderError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.capabilities import ModelFallback
from pydantic_ai.exceptions import (
    FallbackExceptionGroup,
    ModelAPIError,
    ModelHTTPError,
    ModelRequestTimeout,
    RunCancelled,
    UnexpectedModelBehavior,
    UsageLimitExceeded,
)
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelMessage,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.run import AgentRunResultEvent

from market_liquidity_monitor.agent.factory import (
    TOOL_RETRIES,
    ModelChoice,
    build_agent,
    resolve_model,
    usage_limits,
)
from market_liquidity_monitor.agent.fallback import FallbackRecorder, describe_failure
from market_liquidity_monitor.agent.grounding import GroundingReport, check_grounding
from market_liquidity_monitor.agent.offline import WRITERS, build_offline_model
from market_liquidity_monitor.agent.retries import exhausted_answer
from market_liquidity_monitor.agent.tools import AgentDeps
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import MLMError

log = logging.getLogger(__name__)

# Where a provider model string goes when no MLM_AGENT__BASE_URL is set (the SDKs' defaults).
_DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "ollama": "http://localhost:11434/v1",
}


class ModelProviderError(MLMError):
    """The LLM provider could not answer (unreachable, timed out, or refused the request).

    The message names the model and the base URL (credentials and query string removed) and what
    to do; it never carries the API key or the provider's response body. The CLI prints it as one
    line (exit code 2), the API answers 503 with it.
    """

    def __init__(self, message: str, model: str, base_url: str | None):
        super().__init__(message)
        self.model = model
        self.base_url = base_url


def _safe_url(url: str | None) -> str | None:
    """``url`` without user:password and query string (either may hold a key)."""
    if not url:
        return None
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def provider_error(settings: Settings, exc: ModelAPIError, base_url: str | None = None) -> ModelProviderError:
    """A ``ModelProviderError`` for a failed model request (see its docstring); the hint fits the
    failure (a key for 401/403, the model and URL for other 4xx, nothing to fix but waiting for 429
    and 5xx)."""
    model = settings.agent.model
    url = _safe_url(base_url or settings.agent.base_url or _DEFAULT_BASE_URLS.get(model.split(":", 1)[0]))
    where = f"model {model!r} at {url}" if url else f"model {model!r}"
    what = describe_failure(exc)
    if isinstance(exc, ModelHTTPError):
        status = exc.status_code
        if status in (401, 403):
            hint = "check MLM_AGENT__API_KEY"
        elif status == 402:
            hint = "the provider account's quota or credits are exhausted; top them up or use another key"
        elif status == 429:
            hint = "the provider is rate limiting; wait and try again, or raise MLM_AGENT__RETRY_ATTEMPTS"
        elif status >= 500:
            hint = (
                "the provider had a server error (not a configuration problem); try again later, or let the "
                "offline model answer when the provider fails with MLM_AGENT__FALLBACK_OFFLINE=true"
            )
        else:
            hint = "check MLM_AGENT__MODEL and MLM_AGENT__BASE_URL"
    elif isinstance(exc, ModelRequestTimeout):
        hint = "try again, or raise MLM_AGENT__REQUEST_TIMEOUT_S"
    else:
        hint = "check MLM_AGENT__BASE_URL and that the server is running"
    message = (
        f"The LLM provider {what}: {where}. Fix: {hint}, "
        "or use the built-in offline model with MLM_AGENT__MODEL=offline."
    )
    return ModelProviderError(message, model, url)


@dataclass
class AskResult:
    """One answer: ``answer`` (text), ``tool_calls`` (``{"tool", "args", "result"}`` each),
    ``session_id``, ``grounding`` (``GroundingReport.as_dict`` of ``check_grounding`` of the
    model's text against the tool results of the whole session: ``verdict``, ``grounded``,
    ``numbers_checked``, ``claims_checked``, ``unsupported`` items with text, span and reason). ``outcome`` (not part of ``as_dict``): ``"answered"``,
    ``"fallback"`` (the offline model answered for a failed provider), ``"limit"``, ``"timeout"`` or
    ``"retries_exhausted"`` (the run was stopped and the answer says why)."""

    answer: str
    tool_calls: list[dict[str, Any]]
    session_id: str
    grounding: dict[str, Any] = field(default_factory=dict)
    outcome: str = "answered"

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "tool_calls": self.tool_calls,
            "session_id": self.session_id,
            "grounding": self.grounding,
        }


# The usage limit named in pydantic-ai's UsageLimitExceeded message -> (what, setting, field).
_LIMITS = {
    "tool_calls_limit": ("tool calls", "MLM_AGENT__MAX_TOOL_CALLS", "max_tool_calls"),
    "request_limit": ("model requests", "MLM_AGENT__MAX_REQUESTS", "max_requests"),
    "total_tokens_limit": ("tokens (prompt and answer)", "MLM_AGENT__MAX_TOTAL_TOKENS", "max_total_tokens"),
}


@dataclass
class _Stop:
    """Why a run was stopped before the model's answer: the head and tail of the user's answer."""

    outcome: str
    head: str
    tail: str


def _unpinned(messages: list[ModelMessage]) -> list[ModelMessage]:
    """``messages`` without the failed attempts recorded on responses, so the session's next question
    starts on the configured provider again (``ModelFallback(sticky=True)`` keeps a conversation on
    the model it fell back to while a response records the attempts that failed before it)."""
    return [
        dataclasses.replace(m, failed_attempts=None)
        if isinstance(m, ModelResponse) and m.failed_attempts
        else m
        for m in messages
    ]


def _result_summary(content: Any) -> str:
    """A short line about a tool result for a ``tool_result`` event."""
    if isinstance(content, BaseModel):
        content = content.model_dump(mode="json")
        book = content.get("book")
        if isinstance(book, dict):  # the answer's provenance (venue, symbol, book_ts) is nested
            content = {**{k: v for k, v in book.items() if k in ("venue", "symbol", "book_ts")}, **content}
    if isinstance(content, dict):
        if "error" in content and not content.get("symbol"):
            return f"error: {content['error']}"[:300]
        keys = [
            k
            for k in ("venue", "symbol", "side", "size", "notional", "book_ts")
            if content.get(k) is not None
        ]
        text = ", ".join(f"{k}={content[k]}" for k in keys) or f"{len(content)} fields"
        if content.get("error"):
            text += f"; error: {content['error']}"
        return text[:300]
    return str(content)[:300]


class Assistant:
    """Holds the agent and per-session message histories (in memory; bounded). Tools reach the
    data only through ``services`` (a ``services.Services`` container, owned by the caller)."""

    def __init__(
        self,
        settings: Settings,
        services: Any,
        agent: Agent | None = None,
        max_sessions: int = 1000,
    ):
        self.settings = settings
        self.services = services
        # What the configured model resolved to (None for an agent passed in).
        self.model_choice: ModelChoice | None = resolve_model(settings) if agent is None else None
        self.agent = agent or build_agent(settings, self.model_choice)
        self._offline = build_offline_model()  # answers when the provider fails (fallback_offline)
        self._limits = usage_limits(settings)
        self._sessions: dict[str, list[ModelMessage]] = {}
        # Per session: the questions and tool calls of its earlier turns (``{"tool", "args",
        # "result", "turn"}``), so grounding accepts a figure computed one turn earlier.
        self._grounding_log: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
        self._max_sessions = max_sessions
        # ask(): at most agent.max_concurrent_offline_runs offline runs at once (see there).
        self._offline_slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        if self.model_choice is not None and self.model_choice.reason:
            log.warning(
                "MLM_AGENT__MODEL=%r cannot be used (%s): the assistant answers with the offline model",
                self.model_choice.configured,
                self.model_choice.reason,
            )

    def model_status(self) -> dict[str, Any]:
        """The assistant's model, for a status endpoint: ``configured_model`` (the setting),
        ``effective_model`` (what answers: ``"offline"`` when the configured provider cannot be
        used), ``reason`` (why they differ, else None), ``fallback_model`` (``"offline"`` when it
        answers for a failing provider, else None), ``base_url`` (credentials removed) and
        ``provider`` (of the configured model: ``openai``, ``anthropic``... or ``offline``)."""
        choice = self.model_choice
        if choice is None:
            name = getattr(self.agent.model, "model_name", None) or str(self.agent.model)
            return {
                "provider": name.partition(":")[0] if ":" in name else name,
                "configured_model": name,
                "effective_model": name,
                "reason": None,
                "fallback_model": None,
                "base_url": None,
            }
        return {
            "provider": choice.configured.partition(":")[0]
            if ":" in choice.configured
            else choice.configured,
            "configured_model": choice.configured,
            "effective_model": choice.effective,
            "reason": choice.reason,
            "fallback_model": "offline" if self._falls_back() else None,
            "base_url": _safe_url(choice.base_url),
        }

    def _falls_back(self) -> bool:
        return bool(
            self.settings.agent.fallback_offline
            and self.model_choice is not None
            and not self.model_choice.is_offline
        )

    async def _deps(self) -> AgentDeps:
        """The dependencies of one run (a fresh tool log each)."""
        await self.services.start()  # stored alert rules loaded (idempotent)
        return AgentDeps(self.services)

    async def ask(self, question: str, session_id: str | None = None) -> AskResult:
        """Run the agent on ``question`` in session ``session_id`` (a new one if None).

        A run stopped by a limit or a timeout, or whose model ran out of retries, still returns an
        answer that says so (``AskResult.outcome``). Raises ``ModelProviderError`` when the LLM
        provider cannot be reached or refuses the request and the offline model may not answer
        (``fallback_offline=false``, or a 4xx refusal).
        """
        sid = session_id or uuid.uuid4().hex
        deps = await self._deps()
        queued_at = time.monotonic()
        async with self._offline_slot():
            # The wait for a turn counts against the question's time limit (run_timeout_s).
            budget_s = self.settings.agent.run_timeout_s - (time.monotonic() - queued_at)
            async with aclosing(self._run(question, sid, deps, stream=False, budget_s=budget_s)) as events:
                async for item in events:
                    if isinstance(item, AskResult):
                        return item
        raise RuntimeError("the assistant run ended without a result")  # pragma: no cover

    def _offline_slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A turn among the offline model's runs, or nothing to wait for with any other model.

        An offline run is ~5-8 ms of pure CPU on the event loop (pydantic-ai's graph, the parser,
        the tools) with yields in between; the loop runs every ready task once per turn, so 64 at
        once made turns of ~0.2 s for every other client (REST, WebSocket ticks). With at most
        ``agent.max_concurrent_offline_runs`` in flight (FIFO, ``asyncio.Semaphore``) a turn stays
        ~20-30 ms at 128 questions at once, throughput unchanged (measured, bench_api chat c=64). A
        real model's run waits on the network between its steps, so it is not limited. The wait
        for a turn is part of the question's ``run_timeout_s`` (a question that waited it all is
        answered with the timeout answer at once). One semaphore per event loop (tests run
        several); ``ask`` runs on one loop at a time."""
        if self.model_choice is None or not self.model_choice.is_offline:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        if self._offline_slots is None or self._offline_slots[0] is not loop:
            self._offline_slots = (loop, asyncio.Semaphore(self.settings.agent.max_concurrent_offline_runs))
        return self._offline_slots[1]

    async def ask_stream(self, question: str, session_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """``ask`` as events, in the order they happen, each ``{"event": <name>, "data": {...}}``:

        - ``tool_call``: ``{"name", "args", "tool_call_id"}`` when a tool call starts;
        - ``tool_result``: ``{"name", "ok", "summary", "tool_call_id"}`` when it returns (``ok`` false
          when the tool refused its arguments; ``summary`` a short line);
        - ``chunk``: ``{"text"}``, text as the model produces it (text written before a tool call
          included), then whatever the final answer adds (a fallback note, the unverified-figures
          note, or the whole answer of a stopped run);
        - ``done``: the ``ask`` payload (``AskResult.as_dict``: ``answer`` is authoritative).

        Raises ``ModelProviderError`` as ``ask`` does. Closing the iterator (or cancelling its
        consumer) cancels the run: no model request is sent after that.
        """
        sid = session_id or uuid.uuid4().hex
        deps = await self._deps()
        async with aclosing(self._run(question, sid, deps)) as events:
            async for item in events:
                if isinstance(item, AskResult):
                    yield {"event": "done", "data": item.as_dict()}
                else:
                    yield item

    async def _run(
        self, question: str, sid: str, deps: AgentDeps, *, stream: bool = True, budget_s: float | None = None
    ) -> AsyncIterator[dict[str, Any] | AskResult]:
        """The events of one run, then its ``AskResult`` (see ``ask_stream``). Without ``stream``
        only the ``AskResult``: the run goes through ``agent.run``, which skips the event stream's
        machinery (bench_api profile: ~30% of an offline /api/chat request's CPU). ``budget_s``:
        the seconds left of ``run_timeout_s`` (default all of it)."""
        history = self._sessions.get(sid, [])
        recorder = FallbackRecorder()
        capabilities = (
            [ModelFallback(self._offline, fallback_on=recorder.falls_back, sticky=True)]
            if self._falls_back()
            else []
        )
        output: str | None = None
        stop: _Stop | None = None
        exhausted: str | None = None
        streamed = ""  # text streamed since the last tool call: the final answer's beginning
        run_args: dict[str, Any] = {
            "deps": deps,
            "message_history": history,
            "usage_limits": self._limits,
            "timeout": self.settings.agent.run_timeout_s if budget_s is None else max(budget_s, 0.001),
            "capabilities": capabilities,
        }
        try:
            if not stream:
                result = await self.agent.run(question, **run_args)
                output = result.output
                self._remember(sid, _unpinned(result.all_messages()))
            else:
                async with self.agent.run_stream_events(question, **run_args) as events:
                    async for ev in events:
                        if isinstance(ev, AgentRunResultEvent):
                            output = ev.result.output
                            self._remember(sid, _unpinned(ev.result.all_messages()))
                            continue
                        if isinstance(ev, FunctionToolCallEvent):
                            streamed = ""
                            yield {
                                "event": "tool_call",
                                "data": {
                                    "name": ev.part.tool_name,
                                    "args": ev.part.args_as_dict(),
                                    "tool_call_id": ev.part.tool_call_id,
                                },
                            }
                        elif isinstance(ev, FunctionToolResultEvent):
                            yield {
                                "event": "tool_result",
                                "data": {
                                    "name": ev.part.tool_name,
                                    "ok": ev.part.outcome == "success",
                                    "summary": _result_summary(
                                        getattr(ev.part, "metadata", None) or ev.part.content
                                    ),
                                    "tool_call_id": ev.part.tool_call_id,
                                },
                            }
                        elif (
                            isinstance(ev, PartStartEvent)
                            and isinstance(ev.part, TextPart)
                            and ev.part.content
                        ):
                            streamed += ev.part.content
                            yield {"event": "chunk", "data": {"text": ev.part.content}}
                        elif (
                            isinstance(ev, PartDeltaEvent)
                            and isinstance(ev.delta, TextPartDelta)
                            and ev.delta.content_delta
                        ):
                            streamed += ev.delta.content_delta
                            yield {"event": "chunk", "data": {"text": ev.delta.content_delta}}
        except UsageLimitExceeded as exc:
            stop = self._limit_stop(exc)
        except RunCancelled as exc:  # RunTimedOut: the run's own deadline (run_timeout_s)
            stop = self._timeout_stop(None)
            self._remember(sid, _unpinned(exc.all_messages()))
        except ModelRequestTimeout as exc:  # the provider hung and the offline model may not answer
            stop = self._timeout_stop(exc)
        except UnexpectedModelBehavior as exc:
            exhausted = exhausted_answer(exc, deps.tool_log, self._tool_attempts())
        except FallbackExceptionGroup as group:  # the provider and the offline model both failed
            first = next((e for e in group.exceptions if isinstance(e, ModelAPIError)), None)
            if first is None:
                raise
            raise self._provider_error(first) from None
        except ModelAPIError as exc:
            raise self._provider_error(exc) from None

        calls = [c.as_dict() for c in deps.tool_log]
        earlier_questions, earlier_calls = self._grounding_log.get(sid, ([], []))
        turn = len(earlier_questions)
        sources = earlier_calls + [{**c, "turn": turn} for c in calls]
        questions = [*earlier_questions, question]
        outcome = "answered"
        if output is not None:
            # CPU work (a health answer has hundreds of figures): off the event loop
            report = await asyncio.to_thread(check_grounding, output, sources, questions)
            answer = output
            if not report.grounded:
                answer += "\n\n" + report.note()
        elif stop is not None:
            outcome = stop.outcome
            computed = self._computed_so_far(deps.tool_log)
            # Grounding checks what was computed (written from tool results); the head and tail
            # quote settings, not market figures.
            report = (
                await asyncio.to_thread(check_grounding, computed, sources, questions)
                if computed
                else GroundingReport()
            )
            answer = (
                stop.head
                + (
                    "\n\nWhat I computed before stopping:\n" + computed
                    if computed
                    else "\n\nNothing was computed before stopping."
                )
                + "\n\n"
                + stop.tail
            )
        else:
            outcome = "retries_exhausted"
            report = GroundingReport()  # no figure of the model's to check
            answer = exhausted or "I couldn't complete that request."
        if recorder.failures and outcome == "answered":
            outcome = "fallback"
        if recorder.failures:
            answer += "\n\n" + self._fallback_note(recorder.failures[0])
        tail = (
            answer[len(streamed) :] if answer.startswith(streamed) else ("\n\n" if streamed else "") + answer
        )
        if tail:
            yield {"event": "chunk", "data": {"text": tail}}
        self._remember_calls(sid, questions, sources)
        yield AskResult(answer, calls, sid, report.as_dict(), outcome)

    # ------------------------------------------------------------------ answers of stopped runs

    def _provider_error(self, exc: ModelAPIError) -> ModelProviderError:
        base_url = (
            self.model_choice.base_url if self.model_choice else getattr(self.agent.model, "base_url", None)
        )
        return provider_error(self.settings, exc, base_url)

    @staticmethod
    def _tool_attempts() -> int:
        return TOOL_RETRIES + 1

    def _limit_stop(self, exc: UsageLimitExceeded) -> _Stop:
        a = self.settings.agent
        for key, (what, env, name) in _LIMITS.items():
            if key in exc.message:
                value = getattr(a, name)
                return _Stop(
                    "limit",
                    f"I stopped before finishing this answer: it needed more than {value:,} {what}, the limit "
                    f"for one question ({env}={value}).",
                    f"Ask a narrower question, or raise the limit with {env}.",
                )
        return _Stop(
            "limit",
            "I stopped before finishing this answer: it reached a usage limit for one question.",
            "Ask a narrower question, or raise the limits MLM_AGENT__MAX_TOOL_CALLS, MLM_AGENT__MAX_REQUESTS "
            "and MLM_AGENT__MAX_TOTAL_TOKENS.",
        )

    def _timeout_stop(self, exc: ModelRequestTimeout | None) -> _Stop:
        a = self.settings.agent
        if exc is None:
            return _Stop(
                "timeout",
                f"I stopped before finishing this answer: it took longer than {a.run_timeout_s:g} s, the time "
                "limit for one question (MLM_AGENT__RUN_TIMEOUT_S).",
                "Try again, ask a narrower question, or raise the limit with MLM_AGENT__RUN_TIMEOUT_S.",
            )
        return _Stop(
            "timeout",
            f"I stopped before finishing this answer: the model {a.model!r} did not answer within "
            f"{exc.timeout:g} s (MLM_AGENT__REQUEST_TIMEOUT_S).",
            "Try again, raise MLM_AGENT__REQUEST_TIMEOUT_S, or let the offline model answer when the provider "
            "fails with MLM_AGENT__FALLBACK_OFFLINE=true.",
        )

    @staticmethod
    def _computed_so_far(tool_log: list[Any]) -> str:
        """The results of the run's successful tool calls (``ToolCallRecord``s), written as the
        offline model writes them (each distinct call once, in order), or "" when there is none."""
        distinct: dict[str, Any] = {}
        for rec in tool_log:
            if rec.result is None:
                continue
            distinct[json.dumps([rec.tool, rec.args], sort_keys=True, default=str)] = rec
        lines = []
        for rec in distinct.values():
            writer = WRITERS.get(rec.tool)
            try:
                text = writer(rec.result, dict(rec.args)) if writer else None
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                text = None
            lines.append(f"- {rec.tool}: {text or _result_summary(rec.result)}")
        return "\n".join(lines)

    def _fallback_note(self, exc: ModelAPIError) -> str:
        choice = self.model_choice
        url = _safe_url(choice.base_url if choice else None)
        where = f"{self.settings.agent.model!r}" + (f" at {url}" if url else "")
        return f"Note: the provider {where} {describe_failure(exc)}; answered by the offline model."

    def _remember_calls(self, sid: str, questions: list[str], sources: list[dict[str, Any]]) -> None:
        """Keep the session's questions and tool calls for grounding later turns (the last 20 turns)."""
        keep = questions[-20:]
        first = len(questions) - len(keep)
        self._grounding_log[sid] = (keep, [c for c in sources if c.get("turn", 0) >= first])
        if len(self._grounding_log) > self._max_sessions:
            self._grounding_log.pop(next(iter(self._grounding_log)))

    def _remember(self, sid: str, messages: list[ModelMessage]) -> None:
        self._sessions[sid] = messages[-40:]
        if len(self._sessions) > self._max_sessions:
            self._sessions.pop(next(iter(self._sessions)))
