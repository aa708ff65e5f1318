"""Roles, report cases and reports, ratings, the audit log and staff digests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("region", sa.String(12), nullable=False, server_default=""),
        sa.Column("granted_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "role", "region", name="uq_roles_user_role_region"),
        sa.CheckConstraint("role IN ('volunteer', 'staff', 'admin')", name="ck_roles_role"),
    )
    op.create_index("ix_roles_user_id", "roles", ["user_id"])
    op.create_table(
        "report_cases",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.BigInteger(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("region", sa.String(12), nullable=False, server_default=""),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False, server_default=""),
        sa.Column("proposal", sa.String(500), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("reporters", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("on_site", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("auto_hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_report_cases_station_id", "report_cases", ["station_id"])
    op.create_index("ix_report_cases_region", "report_cases", ["region"])
    op.create_index("ix_report_cases_status", "report_cases", ["status"])
    op.create_table(
        "reports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.BigInteger(), sa.ForeignKey("report_cases.id"), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("reporter_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("photo_file_id", sa.String(200), nullable=True),
        sa.Column("on_site", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_reports_case_id", "reports", ["case_id"])
    op.create_index("ix_reports_station_id", "reports", ["station_id"])
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"])
    op.create_table(
        "ratings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.BigInteger(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("station_id", "user_id", name="uq_ratings_station_user"),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name="ck_ratings_stars"),
    )
    op.create_index("ix_ratings_station_id", "ratings", ["station_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.BigInteger(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audit_log_station_id", "audit_log", ["station_id"])
    op.create_table(
        "staff_digests",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("last_sent_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("staff_digests", "audit_log", "ratings", "reports", "report_cases", "roles"):
        op.drop_table(table)
