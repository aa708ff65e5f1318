"""Stations by status in code order (the console's lists of temporarily closed or closed stations, and their
counts), from an index instead of a read of every station.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stations_status_code", "stations", ["status", "code"])


def downgrade() -> None:
    op.drop_index("ix_stations_status_code", table_name="stations")
