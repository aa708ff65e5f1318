"""Staff search stations by any part of their code, name or address (the console's station list): on
PostgreSQL a trigram index (pg_trgm) over the three as one text answers a substring search from the index,
whatever the script. SQLite has no such index; its search reads the stations of the searcher's regions
through the region index.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The same expression as storage/stations_repo.py: _searchable, or the planner cannot use the index.
SEARCHABLE = "(code || E'\\n' || name || E'\\n' || address)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX ix_stations_search_trgm ON stations USING gin ({SEARCHABLE} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_stations_search_trgm")
