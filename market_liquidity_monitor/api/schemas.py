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
    stream: bool = Field(
        default=False,
        description="true: answer as text/event-stream: 'chunk' events of the answer, then one 'done' "
        "event with tool_calls, session_id and grounding.",
    )


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


# ------------------------------------------------------------------------------------------------
# Shared pieces

SymbolField = Field(
    min_length=1,
    max_length=40,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9/:._-]*$",
    description="Base asset (BTC) or unified symbol (BTC/USDT); resolved per venue "
    "(BTC/USDT is BTC/USDT:USDT on binanceusdm, BTC/USD:BTC on binancecoinm).",
)
VenueName = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9]+$")


class _Amount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = SymbolField
    side: Literal["buy", "sell"]
    size: float | None = Field(
        default=None, gt=0, le=1e12, allow_inf_nan=False, description="Order size in base units."
    )
    notional: float | None = Field(
        default=None, gt=0, le=1e15, allow_inf_nan=False, description="Order size in quote units."
    )
    venues: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="ccxt venue ids; default: every venue with a book of the asset (recorded data: every "
        "recorded venue; live: WebSocket venues plus settings.venues over REST).",
    )
    fees_bps: dict[str, float] | None = Field(
        default=None,
        description=(
            "Taker fee per venue in bps, overriding the fee schedule (settings analytics.taker_fee_bps, "
            "then the venue's published base-tier taker fee) for the venues listed."
        ),
    )

    @model_validator(mode="after")
    def _one_amount(self) -> _Amount:
        if (self.size is None) == (self.notional is None):
            raise ValueError("give exactly one of size (base units) or notional (quote units)")
        for v in self.venues or []:
            if not v.strip() or len(v) > 40:
                raise ValueError(f"venue ids are ccxt ids such as 'binance'; got {v!r}")
        for k, f in (self.fees_bps or {}).items():
            if not (0 <= f < 10_000):
                raise ValueError(f"fees_bps[{k!r}] must be in [0, 10000) bps; got {f}")
        return self


class CompareRequest(_Amount):
    """The same taker order on each venue."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"symbol": "BTC/USDT", "side": "buy", "size": 5},
                {"symbol": "ETH", "side": "sell", "notional": 250000, "venues": ["binance", "binancecoinm"]},
            ]
        },
    )
    window_bps: float = Field(
        default=50.0, gt=0, le=10_000, allow_inf_nan=False, description="Depth window for HHI/venue shares."
    )


class ExecuteRequest(_Amount):
    """A simulated smart-order-routing split (no order is sent)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"symbol": "BTC/USDT", "side": "buy", "size": 20},
                {"symbol": "ETH", "side": "sell", "notional": 500000, "fees_bps": {"binance": 10}},
            ]
        },
    )


class Unavailable(BaseModel):
    venue: str
    reason: str


class CompareResponse(BaseModel):
    """``analytics.venues.VenueComparison`` plus the venues that could not be compared.

    Rows: ``venue, symbol, book_ts, fee_bps, mid_price, spread_bps, vwap, vwap_incl_fees,
    slippage_bps, cost_bps, cost_quote, filled_size, filled_notional, fully_filled, window_bps,
    depth_bid_notional, depth_ask_notional, depth_notional, depth_share``.
    """

    symbol: str
    side: str
    size: float | None
    notional_requested: float | None
    fees_assumed_zero: bool
    venues: list[dict[str, Any]]
    best_venue: str | None
    best_venue_reason: str
    best_venue_by_price: str | None
    arbitrage: list[dict[str, Any]]
    concentration: dict[str, Any] = Field(
        description="window_bps, shares {venue: 0..1}, hhi, effective_venue_count"
    )
    concentration_by_window: list[dict[str, Any]] = Field(
        default_factory=list, description="The same concentration for each depth window (bps)."
    )
    max_book_ts_diff_ms: float | None = Field(
        default=None, description="Largest time gap between two compared books (ms)."
    )
    contemporaneous: bool | None = Field(
        default=None,
        description="Every pair of books within analytics.max_book_age_diff_ms (arbitrage is only checked then).",
    )
    contemporaneity_note: str | None = None
    fee_sources: dict[str, str] = Field(
        default_factory=dict, description="Where each venue's taker fee came from."
    )
    unavailable: list[Unavailable]


class ExecuteResponse(BaseModel):
    """``analytics.routing.RoutingResult``: the routed split, baselines and their savings (bps, quote)."""

    simulation: Literal[True] = True
    symbol: str
    status: str
    side: str
    size: float | None
    notional_requested: float | None
    venues: list[dict[str, Any]]
    excluded: dict[str, str]
    fees_assumed_zero: bool
    reference_mid: float
    max_book_ts_diff_ms: float | None
    routed: dict[str, Any]
    fully_filled: bool
    unfilled_size: float | None
    unfilled_notional: float | None
    cost_vs_mid_quote: float
    cost_vs_mid_bps: float
    baselines: list[dict[str, Any]]
    fee_sources: dict[str, str] = Field(
        default_factory=dict, description="Where each venue's taker fee came from."
    )
    reason: str | None = None


class BacktestRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"symbol": "BTC/USDT", "side": "buy", "size": 10, "lookback_days": 30, "timeframe": "1h"}
            ]
        },
    )

    symbol: str = SymbolField
    side: Literal["buy", "sell"]
    size: float | None = Field(
        default=None, gt=0, le=1e9, allow_inf_nan=False, description="Order size in base units."
    )
    notional: float | None = Field(
        default=None, gt=0, le=1e15, allow_inf_nan=False, description="Order size in quote units."
    )
    lookback_days: float = Field(
        gt=0, le=3650, allow_inf_nan=False, description="Window ending at the last stored candle."
    )
    schedule: Literal["arrival", "twap", "vwap"] = Field(
        default="arrival",
        description="arrival: the whole order at the window's start (or at `at`); twap: equal slices over "
        "the window; vwap: slices in proportion to each candle's volume.",
    )
    at: str | None = Field(default=None, max_length=40, description="ISO 8601 UTC time of an arrival order.")
    timeframe: Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"] | None = Field(
        default=None, description="Candle timeframe; chosen from what is stored when omitted."
    )
    venue: str | None = Field(
        default=None, min_length=1, max_length=40, description="Venue of the candles (default venue)."
    )

    @model_validator(mode="after")
    def _one_amount(self) -> BacktestRequest:
        if (self.size is None) == (self.notional is None):
            raise ValueError("give exactly one of size (base units) or notional (quote units)")
        return self


class BacktestResponse(BaseModel):
    """``analytics.backtest.BacktestResult`` and the book model it used."""

    venue: str
    symbol: str
    timeframe: str
    lookback_days: float
    result: dict[str, Any] = Field(
        description="Statistics (analytics.backtest.BacktestResult); series: [{ts, slippage_bps, fill_price, "
        "high_risk, optimal}], at most 2000 points (max slippage of each bucket of "
        "series_bucket_intervals consecutive intervals); risk_periods: [{start, end, intervals, "
        "max_slippage_bps, worst_interval}] of the full series"
    )
    model: dict[str, Any] = Field(
        description="Book model: grid_bps, depth fractions, half_spread_bps, model_source"
    )


class PairsResponse(BaseModel):
    """``analytics.pairs.PairAnalysis``, the series, and the round-trip cost when ``size`` is given."""

    venue: str
    symbol_a: str
    symbol_b: str
    timeframe: str
    lookback_days: float
    analysis: dict[str, Any]
    series: dict[str, list[Any]] = Field(
        description="Columnar: ts (ISO UTC), spread (log units), zscore, return_corr; last max_points points."
    )
    trade_cost: dict[str, Any] | None = Field(default=None, description="analytics.pairs.PairTradeCost")
    trade_cost_reason: str | None = None


class CandlesResponse(BaseModel):
    venue: str
    symbol: str
    timeframe: str
    source_timeframe: str
    count: int
    candles: list[dict[str, Any]] = Field(
        description="ts (ISO UTC open time), ts_ms, open, high, low, close, volume (base units)"
    )


class TradesResponse(BaseModel):
    venue: str
    symbol: str
    source: Literal["book_store", "storage"]
    count: int
    trades: list[dict[str, Any]] = Field(
        description="ts (ISO UTC), ts_event_ns, price, size (base units), side, trade_id"
    )


class StatusResponse(BaseModel):
    """``status``: ``warming`` | ``live`` | ``degraded`` (``reasons`` say why)."""

    status: Literal["warming", "live", "degraded"]
    reasons: list[str]
    mode: Literal["recorded", "live"]
    warmup_s: float | None
    venues: list[dict[str, Any]] = Field(
        description="Every configured venue and every venue with a book: connection (replay/connected/"
        "rest/...), configured, books_ok, books_total, watched_total"
    )
    books: list[dict[str, Any]] = Field(
        description="Every book held (watched ones first, watched=true): source (recording/ws/ccxt_pro/rest), ok, "
        "problem, book_ts, synced, stale, crossed, age_ms, resyncs, gaps, checksum_failures, messages"
    )
    books_total: int = Field(default=0, description="Books held right now (every source).")
    circuit_breakers: list[dict[str, Any]]
    ccxt_pro: list[dict[str, Any]] = Field(
        default_factory=list,
        description="ccxt.pro watches (venues without a native adapter): venue, symbol, state "
        "(starting/watching/reconnecting), last_update_age_ms, updates, reconnects, errors, last_error, "
        "retry_in_s, idle_s",
    )
    writer: dict[str, Any] | None = Field(
        description="Storage writer buffer use; null when no writer runs in this process"
    )
    websocket: dict[str, Any] = Field(
        description="clients, frames_skipped, clients_dropped, max_frame_bytes, tick_hz, heartbeat_s"
    )
    storage: dict[str, Any] | None = Field(
        default=None,
        description="Database: backend, state (ok/down/unknown), last_error, since and checked_at (ISO UTC)",
    )
    cache: dict[str, Any] | None = Field(
        default=None,
        description="Cache: backend in use (redis/memory), configured, degraded (Redis down: memory), last_error",
    )
    recordings: dict[str, Any] | None = Field(
        default=None,
        description="Recorded mode: corrupt_lines and rejected_updates over every recording read so far, "
        "and files_with_problems [{file, corrupt_lines, unreadable, rejected_updates, examples}] "
        "(a damaged file is skipped from the damage on, never fatal); null in live mode",
    )
    bus: dict[str, Any] | None = Field(
        default=None,
        description="API replica (mlm serve --bus): messages, deltas_applied, images_applied, gaps, "
        "invalidations, restarts, read_errors, shards_down and per shard its epoch, heartbeat_age_s, down, "
        "books; null when the books are not from a bus",
    )
    model: dict[str, Any] | None = Field(
        default=None,
        description="The assistant's model: provider, configured_model, effective_model (offline when the "
        "configured provider cannot be used), reason (why, e.g. no API key), fallback_model, base_url",
    )
