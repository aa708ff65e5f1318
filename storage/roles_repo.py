"""Role grants: who is a volunteer, staff of which region, or an admin."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.clock import utc_now
from storage.models import RoleRow


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grants_of(self, user_id: int) -> list[tuple[str, str]]:
        rows = await self.session.execute(
            select(RoleRow.role, RoleRow.region).where(RoleRow.user_id == user_id).order_by(RoleRow.id)
        )
        return [(role, region) for role, region in rows.all()]

    async def grant(self, user_id: int, role: str, region: str, granted_by: int | None) -> bool:
        """True when the grant is new."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        result = await self.session.execute(
            insert(RoleRow)
            .values(user_id=user_id, role=role, region=region, granted_by=granted_by, created_at=utc_now())
            .on_conflict_do_nothing(index_elements=["user_id", "role", "region"])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke(self, user_id: int, role: str, region: str | None) -> int:
        stmt = delete(RoleRow).where(RoleRow.user_id == user_id, RoleRow.role == role)
        if region is not None:
            stmt = stmt.where(RoleRow.region == region)
        result = await self.session.execute(stmt)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def all_grants(self, roles: tuple[str, ...]) -> list[tuple[int, str, str]]:
        rows = await self.session.execute(
            select(RoleRow.user_id, RoleRow.role, RoleRow.region).where(RoleRow.role.in_(roles))
        )
        return [(user_id, role, region) for user_id, role, region in rows.all()]
