"""Station files uploaded in the console: each run (dry run, commit, counts, progress) and its districts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("actor_id", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("warned", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("committed_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_import_runs_actor_id", "import_runs", ["actor_id"])
    op.create_index("ix_import_runs_status_created", "import_runs", ["status", "created_at"])
    op.create_table(
        "import_run_regions",
        sa.Column(
            "import_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("import_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("region", sa.String(12), primary_key=True),
    )
    op.create_index("ix_import_run_regions_region", "import_run_regions", ["region"])


def downgrade() -> None:
    op.drop_table("import_run_regions")
    op.drop_index("ix_import_runs_status_created", table_name="import_runs")
    op.drop_index("ix_import_runs_actor_id", table_name="import_runs")
    op.drop_table("import_runs")
