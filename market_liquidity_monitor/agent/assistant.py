"""Assistant sessions: one question in, a grounded answer and its tool calls out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError, UnexpectedModelBehavior
from pydantic_ai.messages import ModelMessage

from market_liquidity_monitor.agent.factory import build_agent
from market_liquidity_monitor.agent.grounding import check_grounding
from market_liquidity_monitor.agent.tools import AgentDeps
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.domain.errors import MLMError

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
    """A ``ModelProviderError`` for a failed model request (see its docstring)."""
    model = settings.agent.model
    url = _safe_url(base_url or settings.agent.base_url or _DEFAULT_BASE_URLS.get(model.split(":", 1)[0]))
    where = f"model {model!r} at {url}" if url else f"model {model!r}"
    if isinstance(exc, ModelHTTPError):
        what = f"answered HTTP {exc.status_code}"
        hint = (
            "check MLM_AGENT__API_KEY"
            if exc.status_code in (401, 403)
            else "check MLM_AGENT__MODEL and MLM_AGENT__BASE_URL"
        )
    else:
        what = f"could not be reached ({type(exc).__name__})"
        hint = "check MLM_AGENT__BASE_URL and that the server is running"
    message = (
        f"The LLM provider {what}: {where}. Fix: {hint}, "
        "or use the built-in offline model with MLM_AGENT__MODEL=offline."
    )
    return ModelProviderError(message, model, url)


@dataclass
class AskResult:
    answer: str
    tool_calls: list[dict[str, Any]]
    session_id: str
    grounding: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "tool_calls": self.tool_calls,
            "session_id": self.session_id,
            "grounding": self.grounding,
        }


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
        self.agent = agent or build_agent(settings)
        self._sessions: dict[str, list[ModelMessage]] = {}
        self._max_sessions = max_sessions

    async def ask(self, question: str, session_id: str | None = None) -> AskResult:
        """Run the agent on ``question`` in session ``session_id`` (a new one if None).

        Raises ``ModelProviderError`` when the LLM provider cannot be reached or refuses the request.
        """
        sid = session_id or uuid.uuid4().hex
        history = self._sessions.get(sid, [])
        await self.services.start()  # stored alert rules loaded (idempotent)
        deps = AgentDeps(self.services)
        try:
            result = await self.agent.run(question, deps=deps, message_history=history)
            answer = result.output
            self._remember(sid, result.all_messages())
        except UnexpectedModelBehavior as exc:
            answer = f"I couldn't complete that request: {exc}"
        except ModelAPIError as exc:
            raise provider_error(self.settings, exc, getattr(self.agent.model, "base_url", None)) from None
        calls = [c.as_dict() for c in deps.tool_log]
        report = check_grounding(answer, calls, question)
        if not report.grounded:
            answer += (
                "\n\n[Unverified figures: "
                + ", ".join(report.unsupported)
                + " do not appear in any tool result of this answer.]"
            )
        return AskResult(answer, calls, sid, report.as_dict())

    def _remember(self, sid: str, messages: list[ModelMessage]) -> None:
        self._sessions[sid] = messages[-40:]
        if len(self._sessions) > self._max_sessions:
            self._sessions.pop(next(iter(self._sessions)))
