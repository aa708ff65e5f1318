"""Search demand counters in the database: batches added to (never overwriting) the day's rows, summed
per cell for the reports, and deleted past their retention.

Several replicas flush into the same rows: the upsert adds with `count = count + excluded.count` in one
statement, so concurrent flushes add up whatever their order. Each batch is written in key order, so two
replicas' transactions take row locks in the same order and cannot deadlock each other on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

from sqlalchemy import case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.demand import NIGHT_HOURS
from storage.models import SearchDemandRow

#: Rows written per round trip.
BATCH_ROWS = 2000

#: (day, cell, hour of week, channel, amenity key, band)
DemandKey = tuple[date, int, int, str, str, int]


class DemandSum(NamedTuple):
    """Searches of one cell in a period with the same night flag, amenity key, band and channel."""

    cell: int
    night: bool
    amenities: str
    band: int
    channel: str
    count: int


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_counts(self, counts: dict[DemandKey, int]) -> int:
        """Add each count to its row (created at 0 when absent); returns the rows written."""
        rows = [
            {
                "day": key[0],
                "cell": key[1],
                "hour_of_week": key[2],
                "channel": key[3],
                "amenities": key[4],
                "band": key[5],
                "count": n,
            }
            for key, n in sorted(counts.items())
            if n > 0
        ]
        if not rows:
            return 0
        if self.session.bind.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        statement = insert(SearchDemandRow)
        statement = statement.on_conflict_do_update(
            index_elements=["day", "cell", "hour_of_week", "channel", "amenities", "band"],
            set_={"count": SearchDemandRow.count + statement.excluded.count},
        )
        # One statement with many parameter sets: compiled once, sent in batches of BATCH_ROWS.
        for start in range(0, len(rows), BATCH_ROWS):
            await self.session.execute(statement, rows[start : start + BATCH_ROWS])
        return len(rows)

    async def sums(self, since: date, until: date, by_channel: bool = False) -> list[DemandSum]:
        """Searches per cell, night flag, amenity key and band (and channel, `by_channel`; "" otherwise),
        days `since`..`until` inclusive."""
        night = case(((SearchDemandRow.hour_of_week % 24).in_(sorted(NIGHT_HOURS)), 1), else_=0)
        columns = [
            SearchDemandRow.cell,
            night.label("night"),
            SearchDemandRow.amenities,
            SearchDemandRow.band,
        ]
        if by_channel:
            columns.append(SearchDemandRow.channel)
        statement = (
            select(*columns, func.sum(SearchDemandRow.count))
            .where(SearchDemandRow.day >= since, SearchDemandRow.day <= until)
            .group_by(*columns)
        )
        # Through the connection: rows as tuples, without the ORM's per-row work (32,000 rows for a
        # city's month of 200,000 searches).
        connection = await self.session.connection()
        result = await connection.execute(statement)
        if by_channel:
            return [DemandSum(c, bool(n), a, b, ch, int(k)) for c, n, a, b, ch, k in result]
        return [DemandSum(c, bool(n), a, b, "", int(k)) for c, n, a, b, k in result]

    async def hourly_sums(self, since: date, until: date) -> Sequence[tuple[int, int, int]]:
        """(cell, hour of the week, searches) over the days `since`..`until` inclusive."""
        result = await self.session.execute(
            select(SearchDemandRow.cell, SearchDemandRow.hour_of_week, func.sum(SearchDemandRow.count))
            .where(SearchDemandRow.day >= since, SearchDemandRow.day <= until)
            .group_by(SearchDemandRow.cell, SearchDemandRow.hour_of_week)
        )
        return [(int(cell), int(hour), int(count)) for cell, hour, count in result]

    async def purge_before(self, day: date) -> int:
        """Delete the counters of days before `day`; returns how many rows went."""
        result = await self.session.execute(delete(SearchDemandRow).where(SearchDemandRow.day < day))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def total(self) -> int:
        """Every search counted and kept (for checks and tests)."""
        return int(await self.session.scalar(select(func.coalesce(func.sum(SearchDemandRow.count), 0))) or 0)
