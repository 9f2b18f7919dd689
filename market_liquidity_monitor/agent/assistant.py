"""Assistant sessions: one question in, a grounded answer and its tool calls out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import ModelMessage

from market_liquidity_monitor.agent.factory import build_agent
from market_liquidity_monitor.agent.grounding import check_grounding
from market_liquidity_monitor.agent.tools import AgentDeps
from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.history_service import HistoryService
from market_liquidity_monitor.market_data import MarketData


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
    """Holds the agent and per-session message histories (in memory; bounded)."""

    def __init__(
        self,
        settings: Settings,
        market: MarketData,
        agent: Agent | None = None,
        max_sessions: int = 1000,
        history: HistoryService | None = None,
        engine: Any = None,
        alerts: Any = None,
    ):
        self.settings = settings
        self.market = market
        self.history = history if history is not None else HistoryService(settings)
        self.engine = engine
        # An AlertService; None builds an in-memory one on first use (rules live with this Assistant).
        self.alerts = alerts
        self.agent = agent or build_agent(settings)
        self._sessions: dict[str, list[ModelMessage]] = {}
        self._max_sessions = max_sessions

    async def ask(self, question: str, session_id: str | None = None) -> AskResult:
        sid = session_id or uuid.uuid4().hex
        history = self._sessions.get(sid, [])
        deps = AgentDeps(
            self.settings, self.market, history=self.history, engine=self.engine, alerts=self._alert_service()
        )
        try:
            result = await self.agent.run(question, deps=deps, message_history=history)
            answer = result.output
            self._remember(sid, result.all_messages())
        except UnexpectedModelBehavior as exc:
            answer = f"I couldn't complete that request: {exc}"
        calls = [c.as_dict() for c in deps.tool_log]
        report = check_grounding(answer, calls, question)
        if not report.grounded:
            answer += (
                "\n\n[Unverified figures: "
                + ", ".join(report.unsupported)
                + " do not appear in any tool result of this answer.]"
            )
        return AskResult(answer, calls, sid, report.as_dict())

    def _alert_service(self) -> Any:
        if self.alerts is None:
            from market_liquidity_monitor.alerts_service import AlertService

            self.alerts = AlertService(self.market, settings=self.settings)
        return self.alerts

    def _remember(self, sid: str, messages: list[ModelMessage]) -> None:
        self._sessions[sid] = messages[-40:]
        if len(self._sessions) > self._max_sessions:
            self._sessions.pop(next(iter(self._sessions)))
