"""The staff console's accounts and audit events, and the figures of a region's dashboard.

Accounts hold no role: roles are `roles` rows of the account's actor id (bot/services/console_accounts.py).
Failed logins per client address are counted from the events themselves, so every replica sees the same
count without a shared cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, false, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.statuses import CaseStatus
from storage.models import AuditRow, CaseRow, ConsoleAccountRow, ConsoleEventRow, StationRow

LOGIN_FAILED = "login_failed"
LOGIN_OK = "login"


def region_filter(column: Any, prefixes: Sequence[str]) -> Any:
    """Rows whose region starts with one of `prefixes` ("" is everywhere; none is nowhere), as ranges
    (`'4401' <= region < '4402'`) that the region index serves on SQLite and PostgreSQL alike, where a
    LIKE would scan SQLite's table."""
    if "" in prefixes:
        return true()
    if not prefixes:
        return false()
    return or_(*(and_(column >= prefix, column < _after(prefix)) for prefix in prefixes))


def _after(prefix: str) -> str:
    """The least string greater than every string starting with `prefix` (adcode prefixes are digits)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class ConsoleAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        username: str,
        password_hash: str,
        at: datetime,
        telegram_id: int | None = None,
        setup_token_hash: str | None = None,
        setup_expires_at: datetime | None = None,
    ) -> ConsoleAccountRow:
        row = ConsoleAccountRow(
            username=username,
            password_hash=password_hash,
            telegram_id=telegram_id,
            created_at=at,
            password_changed_at=at if password_hash else None,
            setup_token_hash=setup_token_hash,
            setup_expires_at=setup_expires_at,
            failed_count=0,
            disabled=False,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, account_id: int) -> ConsoleAccountRow | None:
        return await self.session.get(ConsoleAccountRow, account_id)

    async def by_username(self, username: str, *, for_update: bool = False) -> ConsoleAccountRow | None:
        stmt = select(ConsoleAccountRow).where(ConsoleAccountRow.username == username)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).first()

    async def by_telegram_id(self, telegram_id: int) -> ConsoleAccountRow | None:
        stmt = select(ConsoleAccountRow).where(ConsoleAccountRow.telegram_id == telegram_id)
        return (await self.session.scalars(stmt)).first()

    async def by_setup_token(self, token_hash: str) -> ConsoleAccountRow | None:
        stmt = (
            select(ConsoleAccountRow)
            .where(ConsoleAccountRow.setup_token_hash == token_hash)
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).first()

    async def usernames_of_actors(self, actor_ids: Sequence[int]) -> dict[int, str]:
        """The console username behind each actor id that has one: minus an account's id, or the Telegram
        id an account is linked to."""
        accounts = [-actor for actor in actor_ids if actor < 0]
        telegram = [actor for actor in actor_ids if actor > 0]
        if not accounts and not telegram:
            return {}
        stmt = select(ConsoleAccountRow.id, ConsoleAccountRow.username, ConsoleAccountRow.telegram_id).where(
            or_(ConsoleAccountRow.id.in_(accounts), ConsoleAccountRow.telegram_id.in_(telegram))
        )
        names: dict[int, str] = {}
        for account_id, username, telegram_id in await self.session.execute(stmt):
            if account_id in accounts:
                names[-account_id] = username
            if telegram_id is not None and telegram_id in telegram:
                names[telegram_id] = username
        return names

    async def all(self) -> list[ConsoleAccountRow]:
        return list(
            await self.session.scalars(select(ConsoleAccountRow).order_by(ConsoleAccountRow.username))
        )

    async def record_failure(self, account_id: int, locked_until: datetime) -> int:
        """One more failed login; the count after it (counted in the database, so two concurrent failures
        both count)."""
        await self.session.execute(
            update(ConsoleAccountRow)
            .where(ConsoleAccountRow.id == account_id)
            .values(failed_count=ConsoleAccountRow.failed_count + 1)
        )
        count = await self.session.scalar(
            select(ConsoleAccountRow.failed_count).where(ConsoleAccountRow.id == account_id)
        )
        await self.session.execute(
            update(ConsoleAccountRow)
            .where(ConsoleAccountRow.id == account_id)
            .values(locked_until=locked_until)
        )
        return int(count or 0)

    async def set_locked_until(self, account_id: int, locked_until: datetime | None) -> None:
        await self.session.execute(
            update(ConsoleAccountRow)
            .where(ConsoleAccountRow.id == account_id)
            .values(locked_until=locked_until)
        )


class ConsoleEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        at: datetime,
        action: str,
        *,
        account_id: int | None = None,
        username: str = "",
        address: str = "",
        target: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            ConsoleEventRow(
                at=at,
                action=action,
                account_id=account_id,
                username=username[:64],
                address=address[:64],
                target=target[:200],
                detail=detail or {},
            )
        )
        await self.session.flush()

    async def failures_from(self, address: str, since: datetime) -> tuple[int, datetime | None]:
        """Failed logins from `address` after `since` and after its last successful login: how many, and
        when the last one was."""
        last_ok = await self.session.scalar(
            select(func.max(ConsoleEventRow.at)).where(
                ConsoleEventRow.address == address,
                ConsoleEventRow.action == LOGIN_OK,
                ConsoleEventRow.at > since,
            )
        )
        after = last_ok if last_ok is not None and last_ok > since else since
        row = (
            await self.session.execute(
                select(func.count(), func.max(ConsoleEventRow.at)).where(
                    ConsoleEventRow.address == address,
                    ConsoleEventRow.action == LOGIN_FAILED,
                    ConsoleEventRow.at > after,
                )
            )
        ).one()
        return int(row[0]), row[1]

    async def recent(
        self, limit: int = 100, before_id: int | None = None, account_id: int | None = None
    ) -> list[ConsoleEventRow]:
        stmt = select(ConsoleEventRow).order_by(ConsoleEventRow.id.desc()).limit(limit)
        if before_id is not None:
            stmt = stmt.where(ConsoleEventRow.id < before_id)
        if account_id is not None:
            stmt = stmt.where(ConsoleEventRow.account_id == account_id)
        return list(await self.session.scalars(stmt))

    async def purge_before(self, before: datetime) -> int:
        """Delete the events older than `before` (served by the `at` index); returns how many went."""
        result = await self.session.execute(delete(ConsoleEventRow).where(ConsoleEventRow.at < before))
        return int(result.rowcount)  # type: ignore[attr-defined]


class DashboardRepository:
    """Counts of the stations and cases of some regions (adcode prefixes)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def station_counts(
        self, prefixes: Sequence[str], stale_before: datetime
    ) -> list[tuple[str, int, int, int]]:
        """Per status: the stations, those open around the clock (`24/7`) and those nobody verified since
        `stale_before` (or ever), in one pass over the regions' stations."""
        rows = await self.session.execute(
            select(
                StationRow.status,
                func.count(),
                func.sum(case((func.trim(StationRow.opening_hours) == "24/7", 1), else_=0)),
                func.sum(
                    case(
                        (or_(StationRow.verified_at.is_(None), StationRow.verified_at < stale_before), 1),
                        else_=0,
                    )
                ),
            )
            .where(region_filter(StationRow.region, prefixes))
            .group_by(StationRow.status)
        )
        return [
            (status, int(n), int(always or 0), int(stale or 0)) for status, n, always, stale in rows.all()
        ]

    async def open_cases(self, prefixes: Sequence[str]) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).where(
                    region_filter(CaseRow.region, prefixes), CaseRow.status == CaseStatus.OPEN.value
                )
            )
            or 0
        )

    async def recent_audit(
        self, prefixes: Sequence[str], action_prefix: str, limit: int = 10
    ) -> list[tuple[AuditRow, str, str]]:
        """The latest audit rows whose action starts with `action_prefix`, with their station's code and
        name, in the regions."""
        rows = await self.session.execute(
            select(AuditRow, StationRow.code, StationRow.name)
            .join(StationRow, StationRow.id == AuditRow.station_id)
            .where(region_filter(StationRow.region, prefixes), AuditRow.action.like(action_prefix + "%"))
            .order_by(AuditRow.created_at.desc(), AuditRow.id.desc())
            .limit(limit)
        )
        return [(audit, code, name) for audit, code, name in rows.all()]
