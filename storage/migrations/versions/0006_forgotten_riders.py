"""Forgotten riders: reports and ratings outlive the person who made them, unlinked (no id).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.alter_column("reporter_id", existing_type=sa.BigInteger(), nullable=True)
    with op.batch_alter_table("ratings") as batch:
        batch.alter_column("user_id", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    # Unlinked rows have nobody to point at any more: they go.
    op.execute("DELETE FROM ratings WHERE user_id IS NULL")
    op.execute("DELETE FROM reports WHERE reporter_id IS NULL")
    with op.batch_alter_table("ratings") as batch:
        batch.alter_column("user_id", existing_type=sa.BigInteger(), nullable=False)
    with op.batch_alter_table("reports") as batch:
        batch.alter_column("reporter_id", existing_type=sa.BigInteger(), nullable=False)
