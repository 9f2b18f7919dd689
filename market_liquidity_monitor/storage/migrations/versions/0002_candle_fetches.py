"""Spans of candles fetched from a venue (ccxt fetch_ohlcv), so empty spans are not fetched again.

Revision ID: 0002_candle_fetches
Revises: 0001_initial
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_candle_fetches"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candle_fetches",
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("candles", sa.Integer(), nullable=False),
        sa.Column("fetched_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("venue", "symbol", "timeframe", "start_ms", name="pk_candle_fetches"),
    )


def downgrade() -> None:
    op.drop_table("candle_fetches")
