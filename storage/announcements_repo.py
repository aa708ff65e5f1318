"""Subscriptions, announcements and the delivery outbox: their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.statuses import AnnouncementStatus, DeliveryStatus
from storage.models import (
    AnnouncementRow,
    BotBlockRow,
    DeliveryRow,
    StationRow,
    SubscriptionOfferRow,
    SubscriptionRow,
)

_CHUNK = 1000


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


class AnnouncementRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- subscriptions ------------------------------------------------------------------------------------
    async def subscribe(self, user_id: int, cell: str, region: str, at: datetime) -> None:
        stmt = _insert(self.session)(SubscriptionRow).values(
            user_id=user_id, active=True, cell=cell, region=region, created_at=at, updated_at=at
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["user_id"],
                set_={"active": True, "cell": cell, "region": region, "updated_at": at},
            )
        )
        # Subscribing again means the user is reachable again.
        blocks: Table = BotBlockRow.__table__  # type: ignore[assignment]  # declared as a FromClause
        await self.session.execute(blocks.delete().where(BotBlockRow.user_id == user_id))

    async def unsubscribe(self, user_id: int, at: datetime) -> bool:
        result = await self.session.execute(
            update(SubscriptionRow)
            .where(SubscriptionRow.user_id == user_id, SubscriptionRow.active.is_(True))
            .values(active=False, updated_at=at)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def subscription(self, user_id: int) -> SubscriptionRow | None:
        return await self.session.get(SubscriptionRow, user_id)

    async def mark_offered(self, user_id: int, at: datetime) -> bool:
        """True the first time only."""
        stmt = _insert(self.session)(SubscriptionOfferRow).values(user_id=user_id, offered_at=at)
        result = await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def subscribers(self, region_prefix: str) -> list[tuple[int, str]]:
        """(user_id, cell) of active subscribers in the region who have not blocked the bot."""
        blocked = select(BotBlockRow.user_id)
        stmt = select(SubscriptionRow.user_id, SubscriptionRow.cell).where(
            SubscriptionRow.active.is_(True), SubscriptionRow.user_id.not_in(blocked)
        )
        if region_prefix:
            stmt = stmt.where(SubscriptionRow.region.like(region_prefix + "%"))
        return [(user_id, cell) for user_id, cell in (await self.session.execute(stmt)).all()]

    async def subscribers_per_cell(self, region_prefix: str) -> dict[str, int]:
        """How many `subscribers` there are in each cell ("" for those without one)."""
        blocked = select(BotBlockRow.user_id)
        stmt = (
            select(SubscriptionRow.cell, func.count())
            .where(SubscriptionRow.active.is_(True), SubscriptionRow.user_id.not_in(blocked))
            .group_by(SubscriptionRow.cell)
        )
        if region_prefix:
            stmt = stmt.where(SubscriptionRow.region.like(region_prefix + "%"))
        return {cell: int(count) for cell, count in (await self.session.execute(stmt)).all()}

    async def block(self, user_id: int, at: datetime) -> None:
        stmt = _insert(self.session)(BotBlockRow).values(user_id=user_id, blocked_at=at)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))

    # -- announcements ------------------------------------------------------------------------------------
    async def add(self, **values: Any) -> AnnouncementRow:
        row = AnnouncementRow(**values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, announcement_id: int) -> AnnouncementRow | None:
        return await self.session.get(AnnouncementRow, announcement_id)

    async def set_status(
        self, announcement_id: int, status: str, allowed_from: Sequence[str], **values: Any
    ) -> bool:
        result = await self.session.execute(
            update(AnnouncementRow)
            .where(AnnouncementRow.id == announcement_id, AnnouncementRow.status.in_(list(allowed_from)))
            .values(status=status, **values)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def update_values(self, announcement_id: int, **values: Any) -> None:
        await self.session.execute(
            update(AnnouncementRow).where(AnnouncementRow.id == announcement_id).values(**values)
        )

    async def list_in(self, prefixes: Sequence[str], limit: int, offset: int = 0) -> list[AnnouncementRow]:
        """Announcements addressed inside any of the region prefixes ("" is everywhere), newest first."""
        stmt = select(AnnouncementRow).order_by(AnnouncementRow.created_at.desc(), AnnouncementRow.id.desc())
        if "" not in prefixes:
            if not prefixes:
                return []
            stmt = stmt.where(or_(*(AnnouncementRow.region.startswith(p, autoescape=True) for p in prefixes)))
        return list(await self.session.scalars(stmt.limit(limit).offset(offset)))

    async def region_timezone(self, prefix: str) -> str | None:
        """The timezone most stations of the region name, if any names one."""
        stmt = (
            select(StationRow.timezone)
            .where(StationRow.timezone.is_not(None), StationRow.region.startswith(prefix, autoescape=True))
            .group_by(StationRow.timezone)
            .order_by(func.count().desc(), StationRow.timezone)
            .limit(1)
        )
        return await self.session.scalar(stmt)

    async def station_regions(self, prefixes: Sequence[str]) -> list[str]:
        """The districts (6-digit adcodes) that have stations, inside any of the prefixes."""
        stmt = select(StationRow.region).distinct().where(func.length(StationRow.region) == 6)
        if "" not in prefixes:
            if not prefixes:
                return []
            stmt = stmt.where(or_(*(StationRow.region.startswith(p, autoescape=True) for p in prefixes)))
        return list(await self.session.scalars(stmt.order_by(StationRow.region)))

    async def due(self, now: datetime) -> list[AnnouncementRow]:
        """Announcements to work on: sending ones, and scheduled ones whose time has come."""
        stmt = select(AnnouncementRow).where(
            or_(
                AnnouncementRow.status == AnnouncementStatus.SENDING,
                (AnnouncementRow.status == AnnouncementStatus.SCHEDULED)
                & (AnnouncementRow.scheduled_at <= now),
            )
        )
        return list(await self.session.scalars(stmt.order_by(AnnouncementRow.id)))

    async def sent_since(self, since: datetime, now: datetime, limit: int) -> list[AnnouncementRow]:
        """Announcements that went out (sending or done, or scheduled and due) since `since`, newest
        first."""
        sent_at = func.coalesce(AnnouncementRow.scheduled_at, AnnouncementRow.created_at)
        stmt = select(AnnouncementRow).where(
            or_(
                AnnouncementRow.status.in_((AnnouncementStatus.SENDING, AnnouncementStatus.DONE)),
                (AnnouncementRow.status == AnnouncementStatus.SCHEDULED)
                & (AnnouncementRow.scheduled_at <= now),
            ),
            sent_at >= since,
            sent_at <= now,
        )
        return list(
            await self.session.scalars(stmt.order_by(sent_at.desc(), AnnouncementRow.id.desc()).limit(limit))
        )

    # -- the outbox ---------------------------------------------------------------------------------------
    async def enqueue(self, announcement_id: int, user_ids: Sequence[int]) -> None:
        insert = _insert(self.session)
        for start in range(0, len(user_ids), _CHUNK):
            rows = [
                {
                    "announcement_id": announcement_id,
                    "user_id": user_id,
                    "status": DeliveryStatus.PENDING,
                    "attempts": 0,
                    "last_error": "",
                }
                for user_id in user_ids[start : start + _CHUNK]
            ]
            await self.session.execute(
                insert(DeliveryRow).on_conflict_do_nothing(index_elements=["announcement_id", "user_id"]),
                rows,
            )

    async def claim(self, announcement_id: int, now: datetime, limit: int) -> list[tuple[int, int, int]]:
        """Up to `limit` deliveries due now, moved to "sending": (delivery id, user id, attempts)."""
        rows = (
            await self.session.execute(
                select(DeliveryRow.id, DeliveryRow.user_id, DeliveryRow.attempts)
                .where(
                    DeliveryRow.announcement_id == announcement_id,
                    DeliveryRow.status == DeliveryStatus.PENDING,
                    or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= now),
                )
                .order_by(DeliveryRow.id)
                .limit(limit)
            )
        ).all()
        if rows:
            await self.session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_([r[0] for r in rows]), DeliveryRow.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.SENDING)
            )
        return [(r[0], r[1], r[2]) for r in rows]

    async def finish(self, results: Sequence[tuple[int, str, dict[str, Any]]]) -> None:
        """Record outcomes: (delivery id, status, extra values), as bulk updates by primary key."""
        if results:
            await self.session.execute(
                update(DeliveryRow),
                [{"id": delivery_id, "status": status, **values} for delivery_id, status, values in results],
            )

    async def cancel_pending(self, announcement_id: int) -> None:
        await self.session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.announcement_id == announcement_id, DeliveryRow.status == DeliveryStatus.PENDING
            )
            .values(status=DeliveryStatus.CANCELLED)
        )

    async def mark_uncertain(self, announcement_id: int | None = None) -> int:
        """Deliveries left in "sending" by a crash: the message may or may not have gone out."""
        stmt = (
            update(DeliveryRow)
            .where(DeliveryRow.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.UNCERTAIN)
        )
        if announcement_id is not None:
            stmt = stmt.where(DeliveryRow.announcement_id == announcement_id)
        result = await self.session.execute(stmt)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def counts(self, announcement_id: int) -> dict[str, int]:
        rows = (
            await self.session.execute(
                select(DeliveryRow.status, func.count())
                .where(DeliveryRow.announcement_id == announcement_id)
                .group_by(DeliveryRow.status)
            )
        ).all()
        return {status: int(count) for status, count in rows}

    async def sent_count_since(self, announcement_id: int, since: datetime) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).where(
                    DeliveryRow.announcement_id == announcement_id,
                    DeliveryRow.status == DeliveryStatus.SENT,
                    DeliveryRow.sent_at >= since,
                )
            )
            or 0
        )

    async def next_attempt(self, announcement_id: int) -> datetime | None:
        return await self.session.scalar(
            select(func.min(DeliveryRow.next_attempt_at)).where(
                DeliveryRow.announcement_id == announcement_id, DeliveryRow.status == DeliveryStatus.PENDING
            )
        )
