"""The staff console's accounts (Argon2 password hashes, lockout state, an optional Telegram id) and its
audit of logins, failures, logouts and privileged actions.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_accounts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False, server_default=""),
        sa.Column("telegram_id", sa.BigInteger(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("password_changed_at", UTCDateTime(), nullable=True),
        sa.Column("sessions_valid_after", UTCDateTime(), nullable=True),
        sa.Column("failed_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("setup_token_hash", sa.String(64), nullable=True),
        sa.Column("setup_expires_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("username", name="uq_console_accounts_username"),
        sa.UniqueConstraint("telegram_id", name="uq_console_accounts_telegram_id"),
        sa.UniqueConstraint("setup_token_hash", name="uq_console_accounts_setup_token"),
    )
    op.create_table(
        "console_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(64), nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target", sa.String(200), nullable=False, server_default=""),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_console_events_at", "console_events", ["at"])
    op.create_index("ix_console_events_address_action_at", "console_events", ["address", "action", "at"])
    op.create_index("ix_console_events_account_at", "console_events", ["account_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_console_events_account_at", table_name="console_events")
    op.drop_index("ix_console_events_address_action_at", table_name="console_events")
    op.drop_index("ix_console_events_at", table_name="console_events")
    op.drop_table("console_events")
    op.drop_table("console_accounts")
