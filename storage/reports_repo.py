"""Report cases, reports, the audit log, ratings and staff digests: their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.statuses import OPEN_CASE_STATUSES, CaseStatus
from storage.models import (
    AuditRow,
    CaseRow,
    RatingRow,
    RegionPauseRow,
    ReporterRow,
    ReportRow,
    StaffDigestRow,
    StationRow,
    SubscriptionOfferRow,
    UserRow,
)
from storage.roles_repo import RoleRepository

OPEN_STATES = OPEN_CASE_STATUSES
CLOSURE_KINDS = ("closed_now", "closed_permanently")


@dataclass(frozen=True, slots=True)
class ReporterFacts:
    """What decides a reporter's weight, read in one place."""

    first_seen: datetime | None
    #: The rider's first search: the subscription offer that follows it records when it happened
    #: (handlers/search.py), so trust needs no write on the search path.
    first_search: datetime | None
    roles: tuple[str, ...]
    approved: int
    rejected: int
    suspended_until: datetime | None


@dataclass(frozen=True, slots=True)
class ClosureTally:
    """Open closure reports of one station that weigh something: how many people, the latest when."""

    station_id: int
    reporters: int
    last_at: datetime
    timezone: str | None


def _sent_by(reporter_id: int | None, device_id: int | None) -> Any:
    """Reports of a Telegram user, or else of a browser of the H5 page."""
    if reporter_id is not None:
        return ReportRow.reporter_id == reporter_id
    if device_id is None:
        raise ValueError("a report is sent by a user or a device")
    return ReportRow.device_id == device_id


def _region_filter(column: Any, prefixes: Sequence[str]) -> Any:
    if "" in prefixes:
        return True
    return or_(*(column.like(prefix + "%") for prefix in prefixes)) if prefixes else False


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_report_at(
        self, reporter_id: int | None, station_id: int, device_id: int | None = None
    ) -> datetime | None:
        return await self.session.scalar(
            select(func.max(ReportRow.created_at)).where(
                _sent_by(reporter_id, device_id), ReportRow.station_id == station_id
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

    async def has_reported(self, case_id: int, reporter_id: int | None, device_id: int | None = None) -> bool:
        found = await self.session.scalar(
            select(ReportRow.id)
            .where(ReportRow.case_id == case_id, _sent_by(reporter_id, device_id))
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

    async def closure_evidence_since(self, station_id: int, since: datetime) -> float:
        """The weighted evidence that the station is closed: over the people who reported it closed (now
        or for good) since `since`, the sum of each one's heaviest report."""
        per_reporter = (
            select(func.max(ReportRow.weight).label("weight"))
            .where(
                ReportRow.station_id == station_id,
                ReportRow.kind.in_(CLOSURE_KINDS),
                ReportRow.created_at >= since,
                ReportRow.weight > 0,
            )
            .group_by(ReportRow.reporter_id)
            .subquery()
        )
        total = await self.session.scalar(select(func.sum(per_reporter.c.weight)))
        return float(total or 0.0)

    async def sent_since(
        self, reporter_id: int | None, since: datetime, device_id: int | None = None
    ) -> tuple[int, int]:
        """(reports of any kind, closure reports) one person (or browser) sent since `since`, all stations
        together."""
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.count().filter(ReportRow.kind.in_(CLOSURE_KINDS)),
                ).where(_sent_by(reporter_id, device_id), ReportRow.created_at >= since)
            )
        ).one()
        return int(row[0]), int(row[1])

    async def reporter_facts(self, user_id: int) -> ReporterFacts:
        first_seen = await self.session.scalar(select(UserRow.created_at).where(UserRow.id == user_id))
        first_search = await self.session.scalar(
            select(SubscriptionOfferRow.offered_at).where(SubscriptionOfferRow.user_id == user_id)
        )
        roles = tuple(role for role, _region in await RoleRepository(self.session).grants_of(user_id))
        record = await self.session.get(ReporterRow, user_id)
        return ReporterFacts(
            first_seen,
            first_search,
            roles,
            record.approved if record else 0,
            record.rejected if record else 0,
            record.suspended_until if record else None,
        )

    async def record_outcome(
        self, user_ids: Sequence[int], approved: bool, at: datetime, suspend_until: datetime | None
    ) -> None:
        """Count a decided case in each reporter's record; `suspend_until` suspends them."""
        for user_id in user_ids:
            record = await self.session.get(ReporterRow, user_id, with_for_update=True)
            if record is None:
                record = ReporterRow(user_id=user_id, approved=0, rejected=0, updated_at=at)
                self.session.add(record)
            if approved:
                record.approved += 1
            else:
                record.rejected += 1
            if suspend_until is not None and (
                record.suspended_until is None or record.suspended_until < suspend_until
            ):
                record.suspended_until = suspend_until
            record.updated_at = at
        await self.session.flush()

    async def auto_hides_since(self, region: str, digits: int, since: datetime) -> int:
        """Stations of the region (its first `digits` adcode digits) the safety net hid since `since`."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(AuditRow)
            .join(StationRow, StationRow.id == AuditRow.station_id)
            .where(
                AuditRow.action == "auto_hide",
                AuditRow.created_at >= since,
                func.substr(StationRow.region, 1, digits) == region,
            )
        )
        return int(count or 0)

    async def pause_of(self, region: str, at: datetime) -> RegionPauseRow | None:
        return await self.session.scalar(
            select(RegionPauseRow)
            .where(RegionPauseRow.region == region, RegionPauseRow.until > at)
            .order_by(RegionPauseRow.until.desc())
            .limit(1)
        )

    async def add_pause(self, region: str, started_at: datetime, until: datetime, hidden: int) -> None:
        self.session.add(RegionPauseRow(region=region, started_at=started_at, until=until, hidden=hidden))
        await self.session.flush()

    async def pauses_for(self, prefixes: Sequence[str], after: datetime | None) -> list[RegionPauseRow]:
        """Pauses in the staff member's regions (or covering them) that started after `after`."""
        covering = or_(
            _region_filter(RegionPauseRow.region, prefixes),
            *(
                func.substr(literal(prefix), 1, func.length(RegionPauseRow.region)) == RegionPauseRow.region
                for prefix in prefixes
                if prefix
            ),
        )
        stmt = select(RegionPauseRow).where(covering)
        if after is not None:
            stmt = stmt.where(RegionPauseRow.started_at > after)
        return list(await self.session.scalars(stmt.order_by(RegionPauseRow.started_at)))

    async def closure_tallies(self, station_ids: Sequence[int] | None = None) -> list[ClosureTally]:
        """Per station with an open closure case: the people whose report there weighs something, and
        the latest such report. All stations when `station_ids` is None."""
        stmt = (
            select(
                ReportRow.station_id,
                # The page's browsers, anonymous, count as one person together (as they weigh).
                func.count(func.distinct(ReportRow.reporter_id))
                + func.max(case((ReportRow.reporter_id.is_(None), 1), else_=0)),
                func.max(ReportRow.created_at),
                StationRow.timezone,
            )
            .join(CaseRow, CaseRow.id == ReportRow.case_id)
            .join(StationRow, StationRow.id == ReportRow.station_id)
            .where(
                CaseRow.status.in_(OPEN_STATES),
                CaseRow.kind.in_(CLOSURE_KINDS),
                ReportRow.weight > 0,
            )
            .group_by(ReportRow.station_id, StationRow.timezone)
        )
        if station_ids is not None:
            stmt = stmt.where(ReportRow.station_id.in_(list(station_ids)))
        rows = await self.session.execute(stmt)
        return [ClosureTally(int(r[0]), int(r[1]), r[2], r[3]) for r in rows]

    async def mark_auto_hidden(self, station_id: int) -> None:
        await self.session.execute(
            update(CaseRow)
            .where(
                CaseRow.station_id == station_id,
                CaseRow.kind.in_(CLOSURE_KINDS),
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

    async def cases_of_station(
        self, station_id: int, limit: int, exclude: int | None = None
    ) -> list[CaseRow]:
        """A station's cases, newest first."""
        stmt = select(CaseRow).where(CaseRow.station_id == station_id)
        if exclude is not None:
            stmt = stmt.where(CaseRow.id != exclude)
        return list(
            await self.session.scalars(
                stmt.order_by(CaseRow.created_at.desc(), CaseRow.id.desc()).limit(limit)
            )
        )

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

    async def mark_outcome_pending(self, case_id: int) -> None:
        await self.session.execute(update(CaseRow).where(CaseRow.id == case_id).values(outcome_pending=True))

    async def outcomes_pending(self, limit: int) -> list[CaseRow]:
        return list(
            await self.session.scalars(
                select(CaseRow).where(CaseRow.outcome_pending.is_(True)).order_by(CaseRow.id).limit(limit)
            )
        )

    async def claim_outcome(self, case_id: int) -> bool:
        """Take the telling of a case's outcome; True for exactly one of several concurrent callers."""
        result = await self.session.execute(
            update(CaseRow)
            .where(CaseRow.id == case_id, CaseRow.outcome_pending.is_(True))
            .values(outcome_pending=False)
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
        stmt = select(CaseRow).where(
            CaseRow.status == CaseStatus.OPEN, _region_filter(CaseRow.region, prefixes)
        )
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

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Audit rows given as column values (an import writes one per station it changed), in batches."""
        for start in range(0, len(rows), 2000):
            await self.session.execute(AuditRow.__table__.insert(), list(rows[start : start + 2000]))

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

    async def stars_histogram(self, station_id: int) -> dict[int, int]:
        """How many ratings of each number of stars a station has."""
        rows = await self.session.execute(
            select(RatingRow.stars, func.count())
            .where(RatingRow.station_id == station_id)
            .group_by(RatingRow.stars)
        )
        return {int(stars): int(count) for stars, count in rows}

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
