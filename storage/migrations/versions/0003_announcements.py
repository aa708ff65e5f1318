"""Subscriptions, announcements and their delivery outbox; blocked users; subscription offers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("cell", sa.String(12), nullable=False, server_default=""),
        sa.Column("region", sa.String(12), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_subscriptions_cell", "subscriptions", ["cell"])
    op.create_index("ix_subscriptions_region", "subscriptions", ["region"])
    op.create_table(
        "announcements",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo_file_id", sa.String(200), nullable=True),
        sa.Column("region", sa.String(12), nullable=False, server_default=""),
        sa.Column("lat", sa.Float(precision=53), nullable=True),
        sa.Column("lon", sa.Float(precision=53), nullable=True),
        sa.Column("radius_km", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("scheduled_at", UTCDateTime(), nullable=True),
        sa.Column("progress_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("progress_message_id", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_announcements_author_id", "announcements", ["author_id"])
    op.create_index("ix_announcements_status", "announcements", ["status"])
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("announcement_id", sa.BigInteger(), sa.ForeignKey("announcements.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=False, server_default=""),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("announcement_id", "user_id", name="uq_deliveries_announcement_user"),
    )
    op.create_index("ix_deliveries_announcement_status", "deliveries", ["announcement_id", "status"])
    op.create_table(
        "bot_blocks",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("blocked_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "subscription_offers",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("offered_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("subscription_offers", "bot_blocks", "deliveries", "announcements", "subscriptions"):
        op.drop_table(table)
