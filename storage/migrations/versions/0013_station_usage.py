"""Station evaluation: how riders used each station per day (card views, navigation and call taps).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_usage",
        sa.Column("station_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("views", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("navigations", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("calls", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_station_usage_day", "station_usage", ["day"])


def downgrade() -> None:
    op.drop_index("ix_station_usage_day", table_name="station_usage")
    op.drop_table("station_usage")
