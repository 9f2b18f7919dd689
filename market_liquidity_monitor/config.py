"""One settings object for the whole application, read from the environment and ``.env``.

Nested sections use ``__`` in environment names (``MLM_AGENT__MODEL=openai:gpt-4o``);
``DATABASE_URL`` and ``REDIS_URL`` are accepted as aliases (``.env.example`` lists everything). Build it once (``Settings()``) and pass it in: there is no
module-level instance.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSettings(_Section):
    # A pydantic-ai model string ("openai:gpt-4o", "anthropic:claude-sonnet-4-5",
    # "openrouter:...", "ollama:llama3.1") or "offline" for the deterministic built-in model.
    model: str = "offline"
    # Base URL of any OpenAI-compatible server (used with model "openai-compatible:<name>").
    base_url: str | None = None
    api_key: SecretStr | None = None
    # Limits of one question (pydantic-ai UsageLimits; a hit ends the run with an answer that says
    # so and shows what was computed): tool calls, model responses, tokens in + out (None = no limit).
    max_tool_calls: int = Field(default=8, ge=1)
    max_requests: int = Field(default=12, ge=1)
    max_total_tokens: int | None = Field(default=200_000, ge=1)
    # Seconds one model request may take: every attempt of it and its whole stream (pydantic-ai
    # request_timeout; also the SDK's per-attempt timeout). A hang is cut here, not retried.
    request_timeout_s: float = Field(default=60.0, gt=0)
    # Seconds one question may take, tools included (pydantic-ai run timeout).
    run_timeout_s: float = Field(default=110.0, gt=0)
    # Attempts per model request (1 = no retry): the provider SDK retries connection errors, 408,
    # 409, 429 and 5xx, honouring Retry-After, with capped exponential backoff.
    retry_attempts: int = Field(default=3, ge=1, le=10)
    # When the provider fails (unreachable, timed out, 429/5xx after the retries), answer with the
    # offline model and say so; false = the error (HTTP 503 / exit code 2).
    fallback_offline: bool = True
    # Questions the offline model answers at once (JSON answers; streamed ones are paced by their
    # reader): its runs are pure CPU on the event loop, so 64 at once held every other client
    # for ~0.2 s per loop turn; the rest wait their turn (same throughput). Real models: no limit.
    max_concurrent_offline_runs: int = Field(default=16, ge=1, le=1000)
    default_venue: str = "binance"
    default_quote: str = "USDT"


class AnalyticsSettings(_Section):
    depth_windows_bps: tuple[float, ...] = (10.0, 25.0, 50.0, 100.0)
    default_window_bps: float = 50.0
    impact_curve_sizes_notional: tuple[float, ...] = (10_000, 50_000, 100_000, 250_000, 500_000, 1_000_000)
    # Books whose timestamps differ by more than this are not compared for arbitrage.
    max_book_age_diff_ms: int = 2_000
    stale_after_ms: int = 10_000
    tick_hz: float = 2.0
    # Taker fee per venue in bps, overriding ccxt's fee schedule and the documented defaults of
    # analytics/venues.py (DEFAULT_TAKER_FEES). Keys: ccxt id ("binance") or id:market ("bybit:linear").
    taker_fee_bps: dict[str, float] = Field(default_factory=dict)
    # Alerts: observations kept per book for derived metrics (z-score, volatility, volume) and crunches.
    alert_history: int = 4096


class IngestSettings(_Section):
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    snapshot_limit: int = 1000
    max_buffered_deltas: int = 10_000
    # Live runtime (ingest/live.py, docs/ingest.md): a connection up this long resets the backoff;
    # REST snapshot timeout; how long a planned (make-before-break) switch may wait for overlap.
    backoff_reset_after_s: float = 60.0
    snapshot_timeout_s: float = 10.0
    handover_timeout_s: float = 10.0
    # Share of each venue's REST weight budget the runtime may use (ingest/ratelimit.py).
    rest_weight_headroom: float = 0.9
    # Host overrides ("ws://127.0.0.1:9000"): scheme and host replace the venue's, path is kept.
    ws_base_url: str | None = None
    rest_base_url: str | None = None
    # Recorder: a new gzip member (flushed) at least this often; a crash loses at most this much.
    record_flush_interval_s: float = 1.0
    # Recorded data (ingest/checkpoint.py): keep each recording's replayed book state on disk so the
    # next process does not replay it again; None = $XDG_CACHE_HOME/mlm/checkpoints or
    # ~/.cache/mlm/checkpoints. Time travel (ingest/timetravel.py): recording time between two
    # in-memory checkpoints of a rebuilt timeline (a seek replays at most this much).
    checkpoint_cache: bool = True
    checkpoint_dir: Path | None = None
    timetravel_checkpoint_every_s: float = Field(default=30.0, gt=0)


class DataEngineSettings(_Section):
    breaker_failure_threshold: int = 5
    breaker_reset_s: float = 30.0
    cache_ttl_s: float = 300.0
    request_timeout_s: float = 10.0
    # Replace every venue REST host with this base URL (a loopback replay server, see
    # data_engine/replay_server.py): "https://api.binance.com/api/v3" -> "<base>/api.binance.com/api/v3".
    rest_base_url: str | None = None
    # REST order books (live mode, for a venue/symbol without a WebSocket book): levels per side
    # asked with ccxt fetch_order_book, and how long one snapshot is reused before it is fetched again.
    rest_book_levels: int = 100
    rest_book_ttl_s: float = 2.0
    # A venue answering 429: no request to it for its Retry-After, or this long when it sends none;
    # never longer than rate_limit_max_hold_s (a bogus header does not silence a venue for hours).
    rate_limit_hold_s: float = Field(default=5.0, ge=0)
    rate_limit_max_hold_s: float = Field(default=300.0, ge=0)
    # ccxt.pro order books (data_engine/pro.py) for venues without a native WebSocket adapter:
    # on/off; venues allowed (empty = every ccxt.pro venue with watchOrderBook); books watched at
    # once; levels per side kept; seconds a first question waits for the first book (then REST);
    # seconds a book nobody asks for is still watched; reconnect back-off (capped, jittered);
    # WebSocket host override like rest_base_url ("wss://ws.x.com/p" -> "<base>/ws.x.com/p").
    pro_enabled: bool = True
    pro_venues: tuple[str, ...] = ()
    pro_max_books: int = Field(default=50, ge=1)
    pro_book_levels: int = Field(default=100, ge=1)
    pro_first_book_timeout_s: float = Field(default=5.0, ge=0)
    pro_idle_ttl_s: float = Field(default=300.0, gt=0)
    pro_backoff_initial_s: float = Field(default=0.5, gt=0)
    pro_backoff_max_s: float = Field(default=30.0, gt=0)
    pro_ws_base_url: str | None = None
    # Candles fetched from a venue for one question at most (ccxt fetch_ohlcv, paginated).
    max_fetch_candles: int = 50_000
    # Storage writer (ingest path): rows per batch, max seconds between flushes, max rows held
    # while the database is unreachable (oldest dropped beyond that, and counted).
    writer_batch_size: int = 2_000
    writer_flush_interval_s: float = 1.0
    writer_max_buffer_rows: int = 200_000
    # Periodic book snapshots kept in storage: top N levels per side, at most one per interval.
    book_snapshot_levels: int = 20
    book_snapshot_interval_s: float = 60.0
    # Liquidity history (ingest/liquidity_recorder.py): a metrics row per book every
    # history_interval_s of book time while ingest runs (live or replayed); trades stored too.
    history_enabled: bool = True
    history_interval_s: float = Field(default=1.0, gt=0)
    history_record_trades: bool = True
    # Live only (book time = wall clock): rows older than history_downsample_after_days keep one
    # per history_downsample_interval_s (a multiple of history_interval_s); rows older than
    # history_retention_days are deleted (0 = kept for ever); checked every history_prune_every_s.
    history_downsample_after_days: float = Field(default=2.0, ge=0)
    history_downsample_interval_s: float = Field(default=60.0, gt=0)
    history_retention_days: float = Field(default=30.0, ge=0)
    history_prune_every_s: float = Field(default=3600.0, gt=0)


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    token: SecretStr | None = None
    cors_origins: tuple[str, ...] = ()
    # WebSocket /ws/stream: a heartbeat frame every ws_heartbeat_s; each client has a queue of at
    # most ws_client_queue frames (a slow client skips frames: the oldest queued is dropped); a
    # client whose queue stays full for ws_stall_timeout_s is disconnected; at most ws_max_clients.
    ws_heartbeat_s: float = 5.0
    ws_client_queue: int = 8
    ws_stall_timeout_s: float = 30.0
    ws_max_clients: int = 1000
    # Per client address (IP): WebSocket connections held at once (close 1008 beyond, with the
    # reason); distinct (symbol, window) streams the hub computes per tick (a new one beyond is
    # refused with an error frame listing the windows already streamed).
    ws_max_clients_per_address: int = 256
    ws_max_streams: int = 32
    # Largest request body accepted (413 beyond); JSON bodies of this API are a few hundred bytes.
    max_body_bytes: int = 1_048_576
    # How long the API waits for PostgreSQL: to connect, and per statement (and for a pooled
    # connection); past that the endpoint answers 503. The storage probe runs this often.
    db_connect_timeout_s: float = 3.0
    db_statement_timeout_s: float = 10.0
    db_probe_interval_s: float = 10.0
    # Symbols watched on every configured venue (resolved per venue: BTC/USDT is BTC/USDT:USDT on
    # a USD-M venue); /api/status is "live" once each has a synced, fresh book.
    watch_symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    # Once the start-up warm-up is over, move every object alive then (modules, the loaded books)
    # to the collector's permanent generation (gc.freeze): a full collection then walks only what
    # was allocated since, instead of ~290k objects (bench_api: 185-330 ms pauses of every client).
    gc_freeze_after_warmup: bool = True


class BusSettings(_Section):
    # Scale-out on Redis Streams (bus/, docs/scaleout.md). Key prefix of the streams and hashes;
    # entries kept per shard stream (XADD MAXLEN ~, approximate trimming).
    prefix: str = "mlm:bus"
    stream_maxlen: int = Field(default=100_000, ge=100)
    # A worker publishes a checkpoint image of every synced book this often (replicas that start
    # or missed messages rebuild from it), and a heartbeat per shard this often.
    snapshot_interval_s: float = Field(default=5.0, gt=0)
    heartbeat_interval_s: float = Field(default=0.5, gt=0)
    # A replica marks a shard's books stale when no heartbeat came for this long.
    heartbeat_timeout_s: float = Field(default=3.0, gt=0)
    # A worker publishes a metrics frame per book per this much book time (0 = none) to the
    # metrics stream; storage consumers (`mlm consume`) write them as metrics rows.
    metrics_interval_ms: int = Field(default=1_000, ge=0)
    # A consumer takes over (XAUTOCLAIM) entries another consumer of its group read but did not
    # acknowledge for this long (it died or hangs).
    claim_idle_ms: int = Field(default=10_000, ge=1)


class ObservabilitySettings(_Section):
    # Logfire (OpenTelemetry) token; unset = spans stay in the process, nothing is sent anywhere.
    logfire_token: SecretStr | None = None
    # Also print spans/logs to the console through logfire (off: the app's own log lines suffice).
    logfire_console: bool = False
    # Make spans at all: None (default) = only when they have somewhere to go (a Logfire token,
    # LOGFIRE_TOKEN, the console, or OTEL_EXPORTER_OTLP_ENDPOINT); spans nobody reads cost ~0.3 ms
    # of CPU per API request. True = always (in-process, e.g. for a debugger); False = never.
    tracing: bool | None = None
    service_name: str = "market-liquidity-monitor"
    environment: str = "local"


class ExchangeCredentials(_Section):
    api_key: SecretStr
    secret: SecretStr
    password: SecretStr | None = None  # passphrase (OKX, Coinbase, KuCoin)


class ExchangeSettings(_Section):
    # Per-venue API keys for private endpoints, by ccxt id: {"binance": {"api_key": ..., "secret": ...}}.
    # Market data needs none; never logged or returned (SecretStr).
    credentials: dict[str, ExchangeCredentials] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Application settings. Sections reject unknown fields; unrelated variables in ``.env`` are
    ignored so the file can also carry provider keys (OPENAI_API_KEY...) for the containers."""

    model_config = SettingsConfigDict(
        env_prefix="MLM_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    # Directory of recorded data to run on (../shared/data layout). None = live venues.
    data_dir: Path | None = None
    # Where the embedded SQLite database and other local state live.
    home_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MLM_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("MLM_REDIS_URL", "REDIS_URL"))
    log_level: str = "INFO"
    venues: tuple[str, ...] = ("binance", "binanceusdm", "binancecoinm")

    agent: AgentSettings = AgentSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    ingest: IngestSettings = IngestSettings()
    data_engine: DataEngineSettings = DataEngineSettings()
    api: ApiSettings = ApiSettings()
    bus: BusSettings = BusSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    exchange: ExchangeSettings = ExchangeSettings()

    @property
    def effective_database_url(self) -> str:
        """``database_url`` or the embedded SQLite file under ``home_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home_dir / 'mlm.sqlite3').as_posix()}"
