"""Cases decided outside the bot (the staff console) wait for the bot to tell their reporters the outcome.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "report_cases", sa.Column("outcome_pending", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("report_cases") as batch:
        batch.drop_column("outcome_pending")
