"""Where a station came from (a sheet or staff, the synthetic national set, the demo set), so that seeding
never overwrites a station of another origin.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Stations already stored are taken as imported: older demo and national sets shared their codes, so
    # they cannot be told apart, and a seed must then leave them alone.
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="import"))


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("origin")
