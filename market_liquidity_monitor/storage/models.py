"""ORM tables. Times are integers with their unit in the name (``ts_ms``, ``ts_event_ns``), UTC epoch.

Prices and sizes of candles, trades and metrics are stored as double precision (they feed statistics);
book snapshot levels keep the venue's exact decimal strings as JSON ``[[price, size], ...]``.
Schema changes go through Alembic (``storage/migrations``); keep this module and the latest
migration in step (``tests/integration/storage`` checks they agree).

Tables:

* ``candles``: OHLCV per (venue, symbol, timeframe, ts_ms = open time). Re-imports are no-ops.
* ``candle_fetches``: the spans ``[start_ms, end_ms)`` of candles fetched from a venue (ccxt
  ``fetch_ohlcv``), so a span the venue has no candles for (maintenance) is not fetched again.
* ``trades``: public trades per (venue, symbol, trade_id).
* ``book_snapshots``: top-N levels of a book, one row per (venue, symbol, ts_recv_ns).
* ``metrics``: long format, one value per (venue, symbol, name, ts_ns); cross-venue metrics use
  venue ``"all"``.
* ``book_metrics``: the liquidity history, one row per book per cadence step of book time
  (``ts_ns`` a multiple of the cadence): top of book, mid, spread_bps, microprice and the book's
  quality flags at that instant (``ingest/liquidity_recorder.py`` says how each is measured).
* ``book_metric_depths``: per ``book_metrics`` row, depth within each configured bps window per
  side in base and quote units, and the imbalance within that window.
* ``alerts`` / ``alert_events``: alert rules and the times they fired.
* ``chat_sessions`` / ``chat_messages``: assistant conversations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON on SQLite, JSONB on PostgreSQL.
JsonType = JSON().with_variant(JSONB(), "postgresql")
# Auto-incrementing surrogate keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Candle(Base):
    __tablename__ = "candles"

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # candle open time
    open: Mapped[float] = mapped_column(Double, nullable=False)
    high: Mapped[float] = mapped_column(Double, nullable=False)
    low: Mapped[float] = mapped_column(Double, nullable=False)
    close: Mapped[float] = mapped_column(Double, nullable=False)
    volume: Mapped[float] = mapped_column(Double, nullable=False)  # base units


class CandleFetch(Base):
    __tablename__ = "candle_fetches"

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # inclusive, candle open time
    end_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)  # exclusive
    candles: Mapped[int] = mapped_column(Integer, nullable=False)  # candles the venue returned
    fetched_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)  # wall clock


class TradeRow(Base):
    __tablename__ = "trades"
    __table_args__ = (Index("ix_trades_venue_symbol_ts_event_ns", "venue", "symbol", "ts_event_ns"),)

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    trade_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts_event_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ts_recv_ns: Mapped[int | None] = mapped_column(BigInteger)
    price: Mapped[float] = mapped_column(Double, nullable=False)
    size: Mapped[float] = mapped_column(Double, nullable=False)  # base units (contracts for inverse)
    side: Mapped[str | None] = mapped_column(String(4))  # taker side: buy / sell


class BookSnapshotRow(Base):
    __tablename__ = "book_snapshots"

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts_recv_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts_event_ns: Mapped[int | None] = mapped_column(BigInteger)
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    depth: Mapped[int] = mapped_column(Integer, nullable=False)  # levels kept per side (N)
    best_bid: Mapped[float | None] = mapped_column(Double)
    best_ask: Mapped[float | None] = mapped_column(Double)
    bids: Mapped[list[Any]] = mapped_column(JsonType, nullable=False)  # [[price, size], ...] best first
    asks: Mapped[list[Any]] = mapped_column(JsonType, nullable=False)


class MetricRow(Base):
    __tablename__ = "metrics"

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. spread_bps, depth_50bps_bid
    ts_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)  # None = could not be computed


class BookMetricRow(Base):
    __tablename__ = "book_metrics"
    __table_args__ = (Index("ix_book_metrics_symbol_ts_ns", "symbol", "ts_ns"),)

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # sample time (book clock)
    book_ts_recv_ns: Mapped[int | None] = mapped_column(BigInteger)  # last book update received
    book_ts_event_ns: Mapped[int | None] = mapped_column(BigInteger)  # its venue time, if sent
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    best_bid: Mapped[float | None] = mapped_column(Double)
    best_bid_size: Mapped[float | None] = mapped_column(Double)  # base units
    best_ask: Mapped[float | None] = mapped_column(Double)
    best_ask_size: Mapped[float | None] = mapped_column(Double)
    mid: Mapped[float | None] = mapped_column(Double)
    spread_bps: Mapped[float | None] = mapped_column(Double)
    microprice: Mapped[float | None] = mapped_column(Double)
    age_ms: Mapped[float | None] = mapped_column(Double)  # ts_ns - book_ts_recv_ns
    synced: Mapped[bool] = mapped_column(Boolean, nullable=False)
    stale: Mapped[bool] = mapped_column(Boolean, nullable=False)
    crossed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    unverified: Mapped[bool] = mapped_column(Boolean, nullable=False)  # no sequence chain, no checksum
    gaps: Mapped[int] = mapped_column(Integer, nullable=False)  # cumulative counters of the book
    resyncs: Mapped[int] = mapped_column(Integer, nullable=False)


class BookMetricDepthRow(Base):
    __tablename__ = "book_metric_depths"

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    window_bps: Mapped[float] = mapped_column(Double, primary_key=True)
    bid_base: Mapped[float | None] = mapped_column(Double)  # base units within the window
    bid_quote: Mapped[float | None] = mapped_column(Double)  # quote units (sum price * size)
    ask_base: Mapped[float | None] = mapped_column(Double)
    ask_quote: Mapped[float | None] = mapped_column(Double)
    imbalance: Mapped[float | None] = mapped_column(Double)  # (bid_base - ask_base) / (bid_base + ask_base)


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    venue: Mapped[str | None] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64), nullable=False)
    operator: Mapped[str] = mapped_column(String(8), nullable=False)  # ">", ">=", "<", "<="...
    threshold: Mapped[float] = mapped_column(Double, nullable=False)
    cooldown_s: Mapped[float] = mapped_column(Double, nullable=False, default=300.0)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)

    events: Mapped[list[AlertEventRow]] = relationship(
        back_populates="alert", cascade="all, delete-orphan", passive_deletes=True
    )


class AlertEventRow(Base):
    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert_id_ts_ms", "alert_id", "ts_ms"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False)
    ts_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    venue: Mapped[str | None] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Double)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    acknowledged: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    alert: Mapped[AlertRow] = relationship(back_populates="events")


class ChatSessionRow(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4 text
    title: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(128))
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)

    messages: Mapped[list[ChatMessageRow]] = relationship(
        back_populates="session",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ChatMessageRow.seq",
    )


class ChatMessageRow(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)  # 0, 1, 2... within the session
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # user / assistant / tool / system
    content: Mapped[str] = mapped_column(Text, nullable=False)
    tool_calls: Mapped[list[Any] | dict[str, Any] | None] = mapped_column(JsonType)
    created_at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)

    session: Mapped[ChatSessionRow] = relationship(back_populates="messages")


candles = Candle.__table__
candle_fetches = CandleFetch.__table__
trades = TradeRow.__table__
book_snapshots = BookSnapshotRow.__table__
metrics = MetricRow.__table__
book_metrics = BookMetricRow.__table__
book_metric_depths = BookMetricDepthRow.__table__
alerts = AlertRow.__table__
alert_events = AlertEventRow.__table__
chat_sessions = ChatSessionRow.__table__
chat_messages = ChatMessageRow.__table__

# Tables the batched writer and the importers fill (insert-or-ignore on the primary key).
INGEST_TABLES = {
    "candles": candles,
    "trades": trades,
    "book_snapshots": book_snapshots,
    "metrics": metrics,
    "book_metrics": book_metrics,
    "book_metric_depths": book_metric_depths,
}
