"""Roles and their checks. Every privileged use case asks an `Access` on the server side; a hidden button
is not a check.

rider (everyone) < volunteer < staff of a region (adcode prefix: `44` Guangdong, `4401` Guangzhou) < admin.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.values import YizhanError
from storage.roles_repo import RoleRepository

_REGION = re.compile(r"(?:[0-9]{2}|[0-9]{4}|[0-9]{6})")


class Role(enum.StrEnum):
    VOLUNTEER = "volunteer"
    STAFF = "staff"
    ADMIN = "admin"


class NotAllowed(YizhanError):
    """The user lacks the role, or the station lies outside their region."""


class InvalidGrant(YizhanError):
    """`code` names the problem for the edges to word; the message is English, for the command line."""

    ROLE = "role"
    STAFF_REGION = "staff_region"
    NO_REGION = "no_region"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Access:
    user_id: int
    grants: tuple[tuple[Role, str], ...] = ()

    @property
    def is_admin(self) -> bool:
        return any(role is Role.ADMIN for role, _ in self.grants)

    @property
    def is_staff(self) -> bool:
        return self.is_admin or any(role is Role.STAFF for role, _ in self.grants)

    @property
    def regions(self) -> tuple[str, ...]:
        """Region prefixes this user moderates; ("",) means everywhere."""
        if self.is_admin:
            return ("",)
        return tuple(region for role, region in self.grants if role is Role.STAFF)

    def can_manage(self, region: str) -> bool:
        return any(region.startswith(prefix) for prefix in self.regions)

    def require_staff_for(self, region: str) -> None:
        if not self.can_manage(region):
            raise NotAllowed(f"user {self.user_id} may not manage region {region or '?'}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise NotAllowed(f"user {self.user_id} is not an admin")


def validate_grant(role: str, region: str) -> tuple[Role, str]:
    try:
        parsed = Role(role)
    except ValueError:
        raise InvalidGrant(InvalidGrant.ROLE, f"unknown role {role!r}: volunteer, staff or admin") from None
    region = region.strip()
    if parsed is Role.STAFF and not _REGION.fullmatch(region):
        raise InvalidGrant(
            InvalidGrant.STAFF_REGION,
            "staff need a region: an adcode prefix of 2, 4 or 6 digits, e.g. 44 or 4401",
        )
    if parsed is not Role.STAFF and region:
        raise InvalidGrant(InvalidGrant.NO_REGION, f"{parsed.value} takes no region")
    return parsed, region


class RoleService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def access(self, user_id: int) -> Access:
        async with self.sessions() as session:
            grants = await RoleRepository(session).grants_of(user_id)
        return Access(user_id, tuple((Role(role), region) for role, region in grants))

    async def grant(self, user_id: int, role: str, region: str = "", by: Access | None = None) -> bool:
        """`by` None means the operator's command line (trusted); in the bot only admins grant."""
        if by is not None:
            by.require_admin()
        parsed, region = validate_grant(role, region)
        async with self.sessions() as session, session.begin():
            return await RoleRepository(session).grant(
                user_id, parsed.value, region, by.user_id if by else None
            )

    async def revoke(
        self, user_id: int, role: str, region: str | None = None, by: Access | None = None
    ) -> int:
        if by is not None:
            by.require_admin()
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidGrant(
                InvalidGrant.ROLE, f"unknown role {role!r}: volunteer, staff or admin"
            ) from None
        async with self.sessions() as session, session.begin():
            return await RoleRepository(session).revoke(user_id, parsed.value, region)

    async def ensure_admins(self, user_ids: tuple[int, ...]) -> None:
        for user_id in user_ids:
            await self.grant(user_id, Role.ADMIN.value)

    async def moderators(self) -> dict[int, Access]:
        """Everyone who moderates somewhere (staff and admins) and can be told so on Telegram, with their
        access. Negative ids are console accounts without a Telegram id (bot/services/console_accounts.py):
        no message can reach them, so digests leave them out."""
        async with self.sessions() as session:
            rows = await RoleRepository(session).all_grants((Role.STAFF.value, Role.ADMIN.value))
        grants: dict[int, list[tuple[Role, str]]] = {}
        for user_id, role, region in rows:
            if user_id <= 0:
                continue
            grants.setdefault(user_id, []).append((Role(role), region))
        return {user_id: Access(user_id, tuple(items)) for user_id, items in grants.items()}
