"""What a rider leaves behind, and how it goes: /forget and the retention of report contents.

`forget` deletes everything that is about one person only (their user row with language and amenity
filter, subscription, subscription offer, block mark, pending announcement deliveries, staff digest
time, reporter record) and unlinks what the stations need to keep (reports and ratings lose their person:
the id becomes NULL). Two records stay: roles and the audit trail of staff decisions (the union's record
of its staff), and a reporter's suspension while it runs (or /forget would lift it). A
reporter's record with staff goes too, except a suspension still in force (an id and a date), so that
forgetting cannot undo it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.statuses import DeliveryStatus
from storage.models import (
    BotBlockRow,
    CaseRow,
    DeliveryRow,
    RatingRow,
    ReporterRow,
    ReportRow,
    StaffDigestRow,
    SubscriptionOfferRow,
    SubscriptionRow,
    UserRow,
    WebDeviceRow,
)
from storage.web_reports_repo import WebDeviceRepository

#: Rows that are about one person only, deleted by /forget: (table, its user id column).
PERSONAL_ROWS = (
    (UserRow, UserRow.id),
    (SubscriptionRow, SubscriptionRow.user_id),
    (SubscriptionOfferRow, SubscriptionOfferRow.user_id),
    (BotBlockRow, BotBlockRow.user_id),
    (StaffDigestRow, StaffDigestRow.user_id),
)


@dataclass(frozen=True, slots=True)
class Forgotten:
    deleted: int
    reports_unlinked: int
    ratings_unlinked: int


class PrivacyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def forget(self, user_id: int, at: datetime) -> Forgotten:
        deleted = 0
        for table, column in PERSONAL_ROWS:
            result = await self.session.execute(delete(table).where(column == user_id))
            deleted += result.rowcount  # type: ignore[attr-defined]
        result = await self.session.execute(
            delete(ReporterRow).where(
                ReporterRow.user_id == user_id,
                or_(ReporterRow.suspended_until.is_(None), ReporterRow.suspended_until <= at),
            )
        )
        deleted += result.rowcount  # type: ignore[attr-defined]
        # Not sent yet: never sent now. Sent ones stay, so that nobody is sent a second copy.
        result = await self.session.execute(
            delete(DeliveryRow).where(
                DeliveryRow.user_id == user_id, DeliveryRow.status == DeliveryStatus.PENDING
            )
        )
        deleted += result.rowcount  # type: ignore[attr-defined]
        # The count of decided cases goes; a suspension stays until it ends (bot/services/reports.py).
        await self.session.execute(
            delete(ReporterRow).where(ReporterRow.user_id == user_id, ReporterRow.suspended_until.is_(None))
        )
        await self.session.execute(
            update(ReporterRow).where(ReporterRow.user_id == user_id).values(approved=0, rejected=0)
        )
        reports = await self.session.execute(
            update(ReportRow).where(ReportRow.reporter_id == user_id).values(reporter_id=None)
        )
        ratings = await self.session.execute(
            update(RatingRow).where(RatingRow.user_id == user_id).values(user_id=None)
        )
        return Forgotten(deleted, reports.rowcount, ratings.rowcount)  # type: ignore[attr-defined]

    async def forget_location_proposals(self, case_id: int) -> None:
        """A wrong-location case is decided: the proposed points (the reporters' positions) go."""
        await self.session.execute(update(CaseRow).where(CaseRow.id == case_id).values(proposal=""))
        await self.session.execute(update(ReportRow).where(ReportRow.case_id == case_id).values(detail=""))

    async def purge_idle_devices(self, before: datetime, limit: int = 10_000) -> int:
        """H5 browsers with no report since `before` (and first seen before it) are deleted and their
        reports unlinked, as if they had asked to be forgotten; a browser that comes back gets a new token
        with its next report. At most `limit` a round. Returns how many went."""
        recent = select(ReportRow.device_id).where(
            ReportRow.device_id.is_not(None), ReportRow.created_at >= before
        )
        idle = list(
            await self.session.scalars(
                select(WebDeviceRow.id)
                .where(WebDeviceRow.created_at < before, WebDeviceRow.id.not_in(recent))
                .limit(limit)
            )
        )
        if idle:
            await WebDeviceRepository(self.session).forget(idle)
        return len(idle)

    async def purge_rating_comments(self, before: datetime) -> int:
        """Comments of ratings last changed before `before` are emptied; the stars stay."""
        result = await self.session.execute(
            update(RatingRow).where(RatingRow.updated_at < before, RatingRow.comment != "").values(comment="")
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def purge_report_contents(self, before: datetime) -> int:
        """Texts and photos of reports made before `before` are emptied; the reports themselves stay."""
        result = await self.session.execute(
            update(ReportRow)
            .where(
                ReportRow.created_at < before,
                or_(ReportRow.text != "", ReportRow.photo_file_id.is_not(None)),
            )
            .values(text="", photo_file_id=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
