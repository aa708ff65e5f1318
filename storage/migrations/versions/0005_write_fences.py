"""Write fences, so that the API's incremental sync never skips a station written by a long transaction.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "write_fences",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False, server_default=""),
    )
    op.create_index("ix_write_fences_expires_at", "write_fences", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_write_fences_expires_at", table_name="write_fences")
    op.drop_table("write_fences")
