"""API request/response schemas (separate from analytics results and storage tables)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"message": "How much slippage would a 5 BTC market buy cause on Binance?"}]
        },
    )

    message: str = Field(min_length=1, max_length=4000, description="The user's question in plain language.")
    session_id: str | None = Field(default=None, max_length=64, description="Continue a conversation.")


class ToolCall(BaseModel):
    tool: str
    args: dict[str, Any]
    result: dict[str, Any]


class ChatResponse(BaseModel):
    answer: str
    tool_calls: list[ToolCall]
    session_id: str
    grounding: dict[str, Any]


class ImpactRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "size": 5}]
        },
    )

    symbol: str = Field(
        min_length=1, max_length=40, description="Base asset (BTC) or unified symbol (BTC/USDT)."
    )
    venue: str | None = Field(
        default=None, max_length=40, description="ccxt venue id; default venue if omitted."
    )
    side: Literal["buy", "sell"]
    size: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Order size in base units."
    )
    notional: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Order size in quote units."
    )

    @model_validator(mode="after")
    def _one_amount(self) -> ImpactRequest:
        if (self.size is None) == (self.notional is None):
            raise ValueError("give exactly one of size (base units) or notional (quote units)")
        return self


class HealthResponse(BaseModel):
    status: Literal["ok"]
    mode: Literal["recorded", "live"]
    books_loaded: int
    version: str
    circuit_breakers: list[dict[str, Any]] = Field(
        default_factory=list, description="Per venue: state (closed/open/half_open), failures, last error."
    )
