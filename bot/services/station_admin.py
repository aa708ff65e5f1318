"""Station lifecycle for staff: verify, close and reopen, edit hours, phone and amenities; stale stations;
the audit trail. Every action checks the staff member's region and writes an audit entry in the same
transaction as the change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.roles import Access, NotAllowed
from bot.services.stations import StationService
from domain.hours_zh import accept_hours
from domain.values import (
    AMENITY_KEYS,
    InvalidOpeningHours,
    Station,
    StationNotFound,
    StationStatus,
    YizhanError,
)
from storage.fences import station_write
from storage.reports_repo import AuditRepository, stale_stations
from storage.stations_repo import StationRepository, row_to_station

STALE_AFTER = timedelta(days=180)
_PHONE = re.compile(r"^[0-9+\-() ]{3,32}$")


class InvalidEdit(YizhanError):
    """`code` names the problem for the edges to word; `reason` is English, for logs. Hours that cannot
    be read carry the parser's error as `hours_error`."""

    REASON_MISSING = "reason_missing"
    HOURS = "hours"
    PHONE = "phone"
    AMENITY = "amenity"

    def __init__(self, code: str, reason: str, hours_error: InvalidOpeningHours | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.hours_error = hours_error


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor_id: int | None
    action: str
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str


def _plain(value: Any) -> Any:
    if isinstance(value, StationStatus):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class StationAdminService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], stations: StationService) -> None:
        self.sessions = sessions
        self.stations = stations

    async def station(self, code: str, access: Access) -> Station:
        station = await self.stations.get(code)
        access.require_staff_for(station.region)
        return station

    async def _change(
        self,
        station_id: int,
        access: Access,
        action: str,
        at: datetime,
        reason: str = "",
        actor_id: int | None = None,
        **values: Any,
    ) -> Station:
        async with station_write(self.sessions, action) as session:
            repo = StationRepository(session)
            before = await repo.get(station_id)
            if before is None:
                raise StationNotFound(str(station_id))
            access.require_staff_for(before.region)
            after = await repo.update_fields(station_id, **values)
            await AuditRepository(session).add(
                station_id,
                access.user_id if actor_id is None else actor_id,
                action,
                {name: _plain(getattr(before, name)) for name in values},
                {name: _plain(getattr(after, name)) for name in values},
                at,
                reason=reason,
            )
        self.stations.reflect(after)
        return after

    async def verify(
        self, station_id: int, access: Access, at: datetime, actor_id: int | None = None
    ) -> Station:
        return await self._change(station_id, access, "verify", at, actor_id=actor_id, verified_at=at)

    async def set_status(
        self,
        station_id: int,
        status: StationStatus,
        access: Access,
        at: datetime,
        reason: str = "",
        actor_id: int | None = None,
    ) -> Station:
        if status is StationStatus.CLOSED and not reason.strip():
            raise InvalidEdit(InvalidEdit.REASON_MISSING, "closing a station for good needs a reason")
        action = {"active": "reopen", "temporarily_closed": "close_temporarily", "closed": "close"}[
            status.value
        ]
        return await self._change(
            station_id, access, action, at, reason=reason.strip()[:500], actor_id=actor_id, status=status
        )

    async def edit_hours(self, station_id: int, text: str, access: Access, at: datetime) -> Station:
        """OSM syntax or hours as written in Chinese (translated; the text as written is kept beside)."""
        try:
            accepted = accept_hours(text)
        except InvalidOpeningHours as exc:
            raise InvalidEdit(InvalidEdit.HOURS, exc.message, exc) from None
        return await self._change(
            station_id,
            access,
            "edit_hours",
            at,
            opening_hours=accepted.expression,
            opening_hours_text=accepted.original,
        )

    async def edit_phone(self, station_id: int, phone: str, access: Access, at: datetime) -> Station:
        phone = phone.strip()
        if not _PHONE.match(phone):
            raise InvalidEdit(
                InvalidEdit.PHONE, "a phone number has 3 to 32 digits, spaces, +, - or brackets"
            )
        return await self._change(station_id, access, "edit_phone", at, phone=phone)

    async def edit_amenities(
        self, station_id: int, amenities: tuple[str, ...], access: Access, at: datetime
    ) -> Station:
        unknown = [a for a in amenities if a not in AMENITY_KEYS]
        if unknown:
            raise InvalidEdit(InvalidEdit.AMENITY, f"unknown amenity {unknown[0]!r}")
        ordered = tuple(key for key in AMENITY_KEYS if key in amenities)
        return await self._change(station_id, access, "edit_amenities", at, amenities=ordered)

    async def edit(
        self,
        station_id: int,
        changes: dict[str, Any],
        access: Access,
        at: datetime,
        actor_id: int | None = None,
    ) -> Station:
        """Several fields at once, validated by the caller (bot/services/station_console.py checks them
        as an import does); one audit entry names each changed field before and after."""
        return await self._change(station_id, access, "edit", at, actor_id=actor_id, **changes)

    async def stale(self, access: Access, at: datetime, limit: int = 30) -> list[Station]:
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        async with self.sessions() as session:
            rows = await stale_stations(session, access.regions, at - STALE_AFTER, limit)
        return [row_to_station(row) for row in rows]

    async def history(self, station_id: int, access: Access, limit: int = 20) -> list[AuditEntry]:
        """The station's audit trail, newest first."""
        async with self.sessions() as session:
            station = await StationRepository(session).get(station_id)
            if station is None:
                raise StationNotFound(str(station_id))
            access.require_staff_for(station.region)
            rows = await AuditRepository(session).history(station_id, limit)
        return [AuditEntry(r.created_at, r.actor_id, r.action, r.before, r.after, r.reason) for r in rows]
