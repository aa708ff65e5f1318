"""Report cases, reports, the audit log, ratings and staff digests: their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditRow, CaseRow, RatingRow, ReportRow, StaffDigestRow, StationRow

OPEN_STATES = ("open", "needs_info")


def _region_filter(column: Any, prefixes: Sequence[str]) -> Any:
    if "" in prefixes:
        return True
    return or_(*(column.like(prefix + "%") for prefix in prefixes)) if prefixes else False


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_report_at(self, reporter_id: int, station_id: int) -> datetime | None:
        return await self.session.scalar(
            select(func.max(ReportRow.created_at)).where(
                ReportRow.reporter_id == reporter_id, ReportRow.station_id == station_id
            )
        )

    async def open_case(self, station_id: int, kind: str, topic: str) -> CaseRow | None:
        return await self.session.scalar(
            select(CaseRow)
            .where(
                CaseRow.station_id == station_id,
                CaseRow.kind == kind,
                CaseRow.topic == topic,
                CaseRow.status.in_(OPEN_STATES),
            )
            .order_by(CaseRow.id)
            .limit(1)
        )

    async def has_reported(self, case_id: int, reporter_id: int) -> bool:
        found = await self.session.scalar(
            select(ReportRow.id)
            .where(ReportRow.case_id == case_id, ReportRow.reporter_id == reporter_id)
            .limit(1)
        )
        return found is not None

    async def add_case(self, **values: Any) -> CaseRow:
        case = CaseRow(**values)
        self.session.add(case)
        await self.session.flush()
        return case

    async def add_report(self, **values: Any) -> ReportRow:
        report = ReportRow(**values)
        self.session.add(report)
        await self.session.flush()
        return report

    async def closure_reporters_since(self, station_id: int, since: datetime) -> int:
        """Distinct people who reported the station closed (now or for good) since `since`."""
        count = await self.session.scalar(
            select(func.count(func.distinct(ReportRow.reporter_id))).where(
                ReportRow.station_id == station_id,
                ReportRow.kind.in_(("closed_now", "closed_permanently")),
                ReportRow.created_at >= since,
            )
        )
        return int(count or 0)

    async def mark_auto_hidden(self, station_id: int) -> None:
        await self.session.execute(
            update(CaseRow)
            .where(
                CaseRow.station_id == station_id,
                CaseRow.kind.in_(("closed_now", "closed_permanently")),
                CaseRow.status.in_(OPEN_STATES),
            )
            .values(auto_hidden=True)
        )

    async def get_case(self, case_id: int) -> CaseRow | None:
        return await self.session.get(CaseRow, case_id)

    async def open_cases(self, prefixes: Sequence[str], limit: int, offset: int = 0) -> list[CaseRow]:
        rows = await self.session.scalars(
            select(CaseRow)
            .where(CaseRow.status.in_(OPEN_STATES), _region_filter(CaseRow.region, prefixes))
            .order_by(CaseRow.created_at, CaseRow.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows)

    async def count_open_cases(self, prefixes: Sequence[str]) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(CaseRow)
            .where(CaseRow.status.in_(OPEN_STATES), _region_filter(CaseRow.region, prefixes))
        )
        return int(count or 0)

    async def claim(self, case_id: int, status: str, decided_by: int, at: datetime, final: bool) -> bool:
        """Move an undecided case to `status`; True for exactly one of several concurrent callers."""
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if final:
            values |= {"decided_by": decided_by, "decided_at": at}
        result = await self.session.execute(
            update(CaseRow).where(CaseRow.id == case_id, CaseRow.status.in_(OPEN_STATES)).values(**values)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def reporters_of(self, case_id: int) -> list[int]:
        rows = await self.session.scalars(
            select(ReportRow.reporter_id)
            .where(ReportRow.case_id == case_id, ReportRow.reporter_id.is_not(None))
            .distinct()
        )
        return sorted(row for row in rows if row is not None)

    async def reports_of(self, case_id: int) -> list[ReportRow]:
        return list(
            await self.session.scalars(
                select(ReportRow).where(ReportRow.case_id == case_id).order_by(ReportRow.id)
            )
        )

    async def new_cases_for(self, prefixes: Sequence[str], after: datetime | None) -> list[CaseRow]:
        stmt = select(CaseRow).where(CaseRow.status == "open", _region_filter(CaseRow.region, prefixes))
        if after is not None:
            stmt = stmt.where(CaseRow.created_at > after)
        return list(await self.session.scalars(stmt.order_by(CaseRow.created_at)))

    async def digest_sent_at(self, user_id: int) -> datetime | None:
        row = await self.session.get(StaffDigestRow, user_id)
        return row.last_sent_at if row else None

    async def record_digest(self, user_id: int, at: datetime) -> None:
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(StaffDigestRow).values(user_id=user_id, last_sent_at=at)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["user_id"], set_={"last_sent_at": at})
        )


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        station_id: int,
        actor_id: int | None,
        action: str,
        before: dict[str, Any],
        after: dict[str, Any],
        at: datetime,
        reason: str = "",
        case_id: int | None = None,
    ) -> None:
        self.session.add(
            AuditRow(
                station_id=station_id,
                actor_id=actor_id,
                action=action,
                before=before,
                after=after,
                reason=reason,
                case_id=case_id,
                created_at=at,
            )
        )
        await self.session.flush()

    async def history(self, station_id: int, limit: int = 20) -> list[AuditRow]:
        return list(
            await self.session.scalars(
                select(AuditRow)
                .where(AuditRow.station_id == station_id)
                .order_by(AuditRow.created_at.desc(), AuditRow.id.desc())
                .limit(limit)
            )
        )


class RatingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self, station_id: int, user_id: int, stars: int, comment: str | None, at: datetime
    ) -> None:
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values: dict[str, Any] = {"stars": stars, "updated_at": at}
        if comment is not None:
            values["comment"] = comment
        stmt = insert(RatingRow).values(
            station_id=station_id,
            user_id=user_id,
            stars=stars,
            comment=comment or "",
            created_at=at,
            updated_at=at,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=["station_id", "user_id"], set_=values)
        )

    async def set_comment(self, station_id: int, user_id: int, comment: str, at: datetime) -> bool:
        result = await self.session.execute(
            update(RatingRow)
            .where(RatingRow.station_id == station_id, RatingRow.user_id == user_id)
            .values(comment=comment, updated_at=at)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def summary(self, station_id: int) -> tuple[float | None, int]:
        row = (
            await self.session.execute(
                select(func.avg(RatingRow.stars), func.count()).where(RatingRow.station_id == station_id)
            )
        ).one()
        return (float(row[0]) if row[0] is not None else None, int(row[1]))

    async def of_user(self, station_id: int, user_id: int) -> RatingRow | None:
        return await self.session.scalar(
            select(RatingRow).where(RatingRow.station_id == station_id, RatingRow.user_id == user_id)
        )

    async def recent_comments(self, station_id: int, limit: int = 5) -> list[RatingRow]:
        return list(
            await self.session.scalars(
                select(RatingRow)
                .where(RatingRow.station_id == station_id, RatingRow.comment != "")
                .order_by(RatingRow.updated_at.desc())
                .limit(limit)
            )
        )


async def stale_stations(
    session: AsyncSession, prefixes: Sequence[str], before: datetime, limit: int = 50
) -> list[StationRow]:
    """Stations of the regions not verified since `before` (never verified first)."""
    rows = await session.scalars(
        select(StationRow)
        .where(
            StationRow.status != "closed",
            _region_filter(StationRow.region, prefixes),
            or_(StationRow.verified_at.is_(None), and_(StationRow.verified_at < before)),
        )
        .order_by(StationRow.verified_at.is_not(None), StationRow.verified_at, StationRow.code)
        .limit(limit)
    )
    return list(rows)
