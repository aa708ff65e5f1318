"""Search demand: counters of searches per coarse cell, local day, hour of the week, channel, amenity
filter and distance band of the nearest open station. No person and no point are stored.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_demand",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("hour_of_week", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("amenities", sa.String(200), nullable=False),
        sa.Column("band", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "cell", "hour_of_week", "channel", "amenities", "band", name="pk_search_demand"
        ),
    )


def downgrade() -> None:
    op.drop_table("search_demand")
