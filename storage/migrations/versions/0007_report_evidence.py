"""Closure evidence and reporter trust: what a report weighs, reporters' records, the regional breaker.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("distance_m", sa.Integer(), nullable=True))
    op.add_column("reports", sa.Column("located_at", UTCDateTime(), nullable=True))
    op.add_column("reports", sa.Column("weight", sa.Float(), nullable=False, server_default="0"))
    op.create_index("ix_reports_reporter_created", "reports", ["reporter_id", "created_at"])
    op.create_index("ix_audit_log_action_created", "audit_log", ["action", "created_at"])
    op.create_table(
        "reporters",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("approved", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("suspended_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "region_pauses",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("region", sa.String(12), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("hidden", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_region_pauses_region", "region_pauses", ["region"])


def downgrade() -> None:
    op.drop_index("ix_region_pauses_region", table_name="region_pauses")
    op.drop_table("region_pauses")
    op.drop_table("reporters")
    op.drop_index("ix_audit_log_action_created", table_name="audit_log")
    op.drop_index("ix_reports_reporter_created", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("weight")
        batch.drop_column("located_at")
        batch.drop_column("distance_m")
