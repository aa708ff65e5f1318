"""Reports from the H5 page: the browsers that send them (a hash of each one's token) and which sent what.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_devices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_web_devices_token_hash"),
    )
    op.add_column("reports", sa.Column("device_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_reports_device_created", "reports", ["device_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_reports_device_created", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("device_id")
    op.drop_table("web_devices")
