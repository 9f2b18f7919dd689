"""Liquidity history: one row per book per cadence step (book_metrics) and its depth per window
(book_metric_depths).

Revision ID: 0003_book_metrics
Revises: 0002_candle_fetches
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_book_metrics"
down_revision = "0002_candle_fetches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "book_metrics",
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("book_ts_recv_ns", sa.BigInteger(), nullable=True),
        sa.Column("book_ts_event_ns", sa.BigInteger(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("best_bid", sa.Double(), nullable=True),
        sa.Column("best_bid_size", sa.Double(), nullable=True),
        sa.Column("best_ask", sa.Double(), nullable=True),
        sa.Column("best_ask_size", sa.Double(), nullable=True),
        sa.Column("mid", sa.Double(), nullable=True),
        sa.Column("spread_bps", sa.Double(), nullable=True),
        sa.Column("microprice", sa.Double(), nullable=True),
        sa.Column("age_ms", sa.Double(), nullable=True),
        sa.Column("synced", sa.Boolean(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("crossed", sa.Boolean(), nullable=False),
        sa.Column("unverified", sa.Boolean(), nullable=False),
        sa.Column("gaps", sa.Integer(), nullable=False),
        sa.Column("resyncs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("venue", "symbol", "ts_ns", name="pk_book_metrics"),
    )
    op.create_index("ix_book_metrics_symbol_ts_ns", "book_metrics", ["symbol", "ts_ns"])
    op.create_table(
        "book_metric_depths",
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("window_bps", sa.Double(), nullable=False),
        sa.Column("bid_base", sa.Double(), nullable=True),
        sa.Column("bid_quote", sa.Double(), nullable=True),
        sa.Column("ask_base", sa.Double(), nullable=True),
        sa.Column("ask_quote", sa.Double(), nullable=True),
        sa.Column("imbalance", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("venue", "symbol", "ts_ns", "window_bps", name="pk_book_metric_depths"),
    )


def downgrade() -> None:
    op.drop_table("book_metric_depths")
    op.drop_index("ix_book_metrics_symbol_ts_ns", table_name="book_metrics")
    op.drop_table("book_metrics")
