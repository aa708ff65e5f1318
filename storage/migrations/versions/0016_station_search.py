"""Staff search stations by any part of their code, name or address (the console's station list), from an
index on both backends. PostgreSQL: a trigram index (pg_trgm) over the three as one text, which answers
`ILIKE '%…%'` whatever the script. SQLite: an FTS5 table with the trigram tokenizer over the stations
table's own columns (external content, kept in step by triggers), which answers a phrase of three or more
characters; shorter texts are looked for row by row (storage/stations_repo.py: _text_match).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The same expression as storage/stations_repo.py: _text_match, or the planner cannot use the index.
SEARCHABLE = "(code || E'\\n' || name || E'\\n' || address)"

_SQLITE = (
    "CREATE VIRTUAL TABLE stations_search USING fts5(code, name, address, content='stations', "
    "content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER stations_search_insert AFTER INSERT ON stations BEGIN "
    "INSERT INTO stations_search(rowid, code, name, address) "
    "VALUES (new.id, new.code, new.name, new.address); "
    "END",
    "CREATE TRIGGER stations_search_delete AFTER DELETE ON stations BEGIN "
    "INSERT INTO stations_search(stations_search, rowid, code, name, address) "
    "VALUES ('delete', old.id, old.code, old.name, old.address); "
    "END",
    "CREATE TRIGGER stations_search_update AFTER UPDATE OF code, name, address ON stations BEGIN "
    "INSERT INTO stations_search(stations_search, rowid, code, name, address) "
    "VALUES ('delete', old.id, old.code, old.name, old.address); "
    "INSERT INTO stations_search(rowid, code, name, address) "
    "VALUES (new.id, new.code, new.name, new.address); "
    "END",
    "INSERT INTO stations_search(stations_search) VALUES ('rebuild')",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX ix_stations_search_trgm ON stations USING gin ({SEARCHABLE} gin_trgm_ops)")
        return
    for statement in _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_stations_search_trgm")
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS stations_search_{trigger}")
    op.execute("DROP TABLE IF EXISTS stations_search")
