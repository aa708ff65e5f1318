"""An (updated_at, id) index for the API's incremental sync, which pages by that key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stations_updated_at_id", "stations", ["updated_at", "id"])
    op.drop_index("ix_stations_updated_at", table_name="stations")


def downgrade() -> None:
    op.create_index("ix_stations_updated_at", "stations", ["updated_at"])
    op.drop_index("ix_stations_updated_at_id", table_name="stations")
