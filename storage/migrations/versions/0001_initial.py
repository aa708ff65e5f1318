"""Stations and users; on PostgreSQL also PostGIS and a geography point with a GiST index.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "stations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False, server_default=""),
        sa.Column("lat", sa.Float(precision=53), nullable=False),
        sa.Column("lon", sa.Float(precision=53), nullable=False),
        sa.Column("region", sa.String(12), nullable=False, server_default=""),
        sa.Column("host", sa.String(200), nullable=False, server_default=""),
        sa.Column("opening_hours", sa.Text(), nullable=False, server_default=""),
        sa.Column("amenities", sa.JSON(), nullable=False),
        sa.Column("phone", sa.String(64), nullable=False, server_default=""),
        sa.Column("manager", sa.String(100), nullable=False, server_default=""),
        sa.Column("status", sa.String(24), nullable=False, server_default="active"),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("code", name="uq_stations_code"),
        sa.CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180", name="ck_stations_coords"),
        sa.CheckConstraint("status IN ('active', 'temporarily_closed', 'closed')", name="ck_stations_status"),
    )
    op.create_index("ix_stations_region", "stations", ["region"])
    op.create_index("ix_stations_updated_at", "stations", ["updated_at"])
    if postgres:
        # Generated from lat/lon so that no writer can let the two drift apart.
        op.execute(
            "ALTER TABLE stations ADD COLUMN geog geography(Point, 4326) "
            "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED"
        )
        op.execute("CREATE INDEX ix_stations_geog ON stations USING gist (geog)")

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("first_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("language_code", sa.String(16), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("amenity_filter", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("stations")
