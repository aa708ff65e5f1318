"""Station evaluation: the daily usage counters of each station and what a region's evaluation reads.

`station_usage` holds one row per station and day with three counts (card views, navigation taps, call
taps). Processes add their counts in batches with an additive upsert (`INSERT … ON CONFLICT DO UPDATE SET
views = views + excluded.views`), so any number of replicas write the same rows without reading them first
and without losing each other's increments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.statuses import CaseStatus
from storage.models import CaseRow, RatingRow, ReportRow, StationRow, StationUsageRow
from storage.reports_repo import CLOSURE_KINDS

#: Rows written by one statement (SQLite allows 32,766 bound parameters; five a row).
UPSERT_CHUNK = 1000
#: Codes looked up by one statement.
CODES_CHUNK = 500


@dataclass(frozen=True, slots=True)
class UsageCounts:
    views: int = 0
    navigations: int = 0
    calls: int = 0

    def __add__(self, other: UsageCounts) -> UsageCounts:
        return UsageCounts(
            self.views + other.views, self.navigations + other.navigations, self.calls + other.calls
        )

    @property
    def total(self) -> int:
        return self.views + self.navigations + self.calls


@dataclass(frozen=True, slots=True)
class StationFacts:
    """Everything a station's evaluation is made of, for one period."""

    station_id: int
    code: str
    name: str
    region: str
    host: str
    status: str
    verified_at: datetime | None
    usage: UsageCounts
    ratings: int
    rating_average: float | None
    closure_reports: int
    closures_confirmed: int
    closures_rejected: int
    closures_open: int


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, counts: Mapping[tuple[int, date], UsageCounts]) -> int:
        """Add the counts to the stored ones (rows created as needed); returns the rows written."""
        if not counts:
            return 0
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        items = sorted(counts.items())  # one order for every writer: concurrent batches cannot deadlock
        for start in range(0, len(items), UPSERT_CHUNK):
            chunk = items[start : start + UPSERT_CHUNK]
            stmt = insert(StationUsageRow).values(
                [
                    {
                        "station_id": station_id,
                        "day": day,
                        "views": usage.views,
                        "navigations": usage.navigations,
                        "calls": usage.calls,
                    }
                    for (station_id, day), usage in chunk
                ]
            )
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["station_id", "day"],
                    set_={
                        "views": StationUsageRow.views + stmt.excluded.views,
                        "navigations": StationUsageRow.navigations + stmt.excluded.navigations,
                        "calls": StationUsageRow.calls + stmt.excluded.calls,
                    },
                )
            )
        return len(items)

    async def stations_by_code(self, codes: Sequence[str]) -> dict[str, tuple[int, str | None]]:
        """The id and timezone of each code that names a station."""
        found: dict[str, tuple[int, str | None]] = {}
        unique = sorted(set(codes))
        for start in range(0, len(unique), CODES_CHUNK):
            rows = await self.session.execute(
                select(StationRow.code, StationRow.id, StationRow.timezone).where(
                    StationRow.code.in_(unique[start : start + CODES_CHUNK])
                )
            )
            found.update({code: (station_id, tz) for code, station_id, tz in rows.all()})
        return found

    async def prune(self, before: date) -> int:
        result: Any = await self.session.execute(delete(StationUsageRow).where(StationUsageRow.day < before))
        return int(result.rowcount or 0)

    async def daily(self, station_id: int, since: date, until: date) -> dict[date, UsageCounts]:
        rows = await self.session.execute(
            select(
                StationUsageRow.day,
                StationUsageRow.views,
                StationUsageRow.navigations,
                StationUsageRow.calls,
            ).where(
                StationUsageRow.station_id == station_id,
                StationUsageRow.day >= since,
                StationUsageRow.day < until,
            )
        )
        return {day: UsageCounts(v, n, c) for day, v, n, c in rows.all()}


def _in_region(column: Any, region: str) -> Any:
    """Rows whose region starts with `region` ("" is everywhere), as a range (`'4401' <= region <
    '4402'`) that the region index serves on SQLite and PostgreSQL alike, where a LIKE would scan."""
    if not region:
        return column.is_not(None)
    after = region[:-1] + chr(ord(region[-1]) + 1)  # adcode prefixes are digits
    return and_(column >= region, column < after)


class EvaluationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def facts(
        self, region: str, since: datetime, until: datetime, since_day: date, until_day: date
    ) -> list[StationFacts]:
        """Every station of `region` (an adcode prefix; "" for all) with its usage over the days
        [since_day, until_day), and its ratings, closure reports and closure cases over [since, until)."""
        stations = (
            await self.session.execute(
                select(
                    StationRow.id,
                    StationRow.code,
                    StationRow.name,
                    StationRow.region,
                    StationRow.host,
                    StationRow.status,
                    StationRow.verified_at,
                )
                .where(_in_region(StationRow.region, region))
                .order_by(StationRow.code)
            )
        ).all()
        in_region = select(StationRow.id).where(_in_region(StationRow.region, region)).scalar_subquery()

        usage_rows = await self.session.execute(
            select(
                StationUsageRow.station_id,
                func.sum(StationUsageRow.views),
                func.sum(StationUsageRow.navigations),
                func.sum(StationUsageRow.calls),
            )
            .where(
                StationUsageRow.station_id.in_(in_region),
                StationUsageRow.day >= since_day,
                StationUsageRow.day < until_day,
            )
            .group_by(StationUsageRow.station_id)
        )
        usage = {sid: UsageCounts(int(v), int(n), int(c)) for sid, v, n, c in usage_rows.all()}

        rating_rows = await self.session.execute(
            select(RatingRow.station_id, func.count(), func.avg(RatingRow.stars))
            .where(
                RatingRow.station_id.in_(in_region),
                RatingRow.updated_at >= since,
                RatingRow.updated_at < until,
            )
            .group_by(RatingRow.station_id)
        )
        ratings = {sid: (int(count), float(avg)) for sid, count, avg in rating_rows.all()}

        report_rows = await self.session.execute(
            select(ReportRow.station_id, func.count())
            .where(
                ReportRow.station_id.in_(in_region),
                ReportRow.kind.in_(CLOSURE_KINDS),
                ReportRow.created_at >= since,
                ReportRow.created_at < until,
            )
            .group_by(ReportRow.station_id)
        )
        reports = {sid: int(count) for sid, count in report_rows.all()}

        case_rows = await self.session.execute(
            select(CaseRow.station_id, CaseRow.status, func.count())
            .where(
                CaseRow.station_id.in_(in_region),
                CaseRow.kind.in_(CLOSURE_KINDS),
                CaseRow.created_at >= since,
                CaseRow.created_at < until,
            )
            .group_by(CaseRow.station_id, CaseRow.status)
        )
        cases: dict[int, dict[str, int]] = {}
        for sid, status, count in case_rows.all():
            cases.setdefault(sid, {})[status] = int(count)

        facts = []
        for sid, code, name, station_region, host, status, verified_at in stations:
            count, average = ratings.get(sid, (0, None))
            by_status = cases.get(sid, {})
            facts.append(
                StationFacts(
                    station_id=sid,
                    code=code,
                    name=name,
                    region=station_region,
                    host=host,
                    status=status,
                    verified_at=verified_at,
                    usage=usage.get(sid, UsageCounts()),
                    ratings=count,
                    rating_average=average,
                    closure_reports=reports.get(sid, 0),
                    closures_confirmed=by_status.get(CaseStatus.APPROVED, 0),
                    closures_rejected=by_status.get(CaseStatus.REJECTED, 0),
                    closures_open=by_status.get(CaseStatus.OPEN, 0) + by_status.get(CaseStatus.NEEDS_INFO, 0),
                )
            )
        return facts
