"""Every stored station takes the region of where it stands: its district's adcode, derived from its
position (`storage.regions`), instead of whatever its sheet said or nothing. Stations with no district
(abroad, at sea) keep theirs. From now on imports derive it on the way in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, lat, lon, region FROM stations")).fetchall()
    if not rows:
        return  # a new database: nothing to derive, and no reason to load the boundaries
    from bot.config import Settings
    from storage.regions import RegionLookup

    index = RegionLookup(Settings().region_cache_dir).index()
    lat = np.array([row.lat for row in rows], dtype=np.float64)
    lon = np.array([row.lon for row in rows], dtype=np.float64)
    found = index.lookup_many(lat, lon).tolist()
    changes = [
        {"id": row.id, "region": index.regions[i].adcode}
        for row, i in zip(rows, found, strict=True)
        if i >= 0 and index.regions[i].adcode != row.region
    ]
    if changes:
        # A new updated_at, so that API clients syncing incrementally fetch the stations again.
        update = sa.text("UPDATE stations SET region = :region, updated_at = :now WHERE id = :id")
        now = datetime.now(UTC)
        bind.execute(
            update.bindparams(sa.bindparam("now", type_=UTCDateTime())),
            [{**change, "now": now} for change in changes],
        )


def downgrade() -> None:
    pass  # the regions the sheets gave are not kept; derived ones are correct under any schema
