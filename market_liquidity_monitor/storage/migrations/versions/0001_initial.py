"""Initial schema: candles, trades, book snapshots, metrics, alerts, alert events, chat.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("venue", "symbol", "timeframe", "ts_ms", name="pk_candles"),
    )
    op.create_table(
        "trades",
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("ts_event_ns", sa.BigInteger(), nullable=False),
        sa.Column("ts_recv_ns", sa.BigInteger(), nullable=True),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("size", sa.Double(), nullable=False),
        sa.Column("side", sa.String(4), nullable=True),
        sa.PrimaryKeyConstraint("venue", "symbol", "trade_id", name="pk_trades"),
    )
    op.create_index("ix_trades_venue_symbol_ts_event_ns", "trades", ["venue", "symbol", "ts_event_ns"])
    op.create_table(
        "book_snapshots",
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("ts_recv_ns", sa.BigInteger(), nullable=False),
        sa.Column("ts_event_ns", sa.BigInteger(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("best_bid", sa.Double(), nullable=True),
        sa.Column("best_ask", sa.Double(), nullable=True),
        sa.Column("bids", JsonType, nullable=False),
        sa.Column("asks", JsonType, nullable=False),
        sa.PrimaryKeyConstraint("venue", "symbol", "ts_recv_ns", name="pk_book_snapshots"),
    )
    op.create_table(
        "metrics",
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("venue", "symbol", "name", "ts_ns", name="pk_metrics"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("venue", sa.String(32), nullable=True),
        sa.Column("symbol", sa.String(64), nullable=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(8), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("cooldown_s", sa.Double(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("params", JsonType, nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("alert_id", IdType, nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("venue", sa.String(32), nullable=True),
        sa.Column("symbol", sa.String(64), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", JsonType, nullable=True),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_events_alert_id_alerts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_alert_id_ts_ms", "alert_events", ["alert_id", "ts_ms"])
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_sessions"),
    )
    op.create_table(
        "chat_messages",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tool_calls", JsonType, nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name="fk_chat_messages_session_id_chat_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_chat_messages"),
        sa.UniqueConstraint("session_id", "seq", name="uq_chat_messages_session_id_seq"),
    )


def downgrade() -> None:
    op.drop_table("chat_messages")
    op.drop_table("chat_sessions")
    op.drop_index("ix_alert_events_alert_id_ts_ms", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alerts")
    op.drop_table("metrics")
    op.drop_table("book_snapshots")
    op.drop_index("ix_trades_venue_symbol_ts_event_ns", table_name="trades")
    op.drop_table("trades")
    op.drop_table("candles")
