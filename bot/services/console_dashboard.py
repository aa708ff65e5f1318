"""A region's dashboard for the staff console: stations by status, those open around the clock, those not
verified for 180 days, open cases and the latest imports, each within the regions the viewer manages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.roles import Access, NotAllowed
from bot.services.station_admin import STALE_AFTER
from domain.values import StationStatus
from storage.console_repo import DashboardRepository

#: Audit actions that record imports start with this (one row per station an import changed).
IMPORT_ACTION = "import"


@dataclass(frozen=True, slots=True)
class ImportEntry:
    at: datetime
    actor_id: int | None
    action: str
    station_code: str
    station_name: str


@dataclass(frozen=True, slots=True)
class RegionDashboard:
    regions: tuple[str, ...]
    #: Every status of `StationStatus`, in its order, with its count (0 included).
    by_status: tuple[tuple[StationStatus, int], ...]
    always_open: int
    stale: int
    open_cases: int
    recent_imports: tuple[ImportEntry, ...]

    @property
    def stations(self) -> int:
        return sum(count for _, count in self.by_status)


class DashboardService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def summary(self, access: Access, at: datetime, imports: int = 10) -> RegionDashboard:
        if not access.is_staff:
            raise NotAllowed(f"user {access.user_id} is not staff")
        regions = access.regions
        async with self.sessions() as session:
            repo = DashboardRepository(session)
            counts = {
                status: (n, always, stale)
                for status, n, always, stale in await repo.station_counts(regions, at - STALE_AFTER)
            }
            cases = await repo.open_cases(regions)
            audit = await repo.recent_audit(regions, IMPORT_ACTION, imports)
        return RegionDashboard(
            regions=regions,
            by_status=tuple((status, counts.get(status.value, (0, 0, 0))[0]) for status in StationStatus),
            # Closed stations are no longer anyone's concern: neither open around the clock nor stale.
            always_open=sum(n for status, (_, n, _) in counts.items() if status != StationStatus.CLOSED),
            stale=sum(n for status, (_, _, n) in counts.items() if status != StationStatus.CLOSED),
            open_cases=cases,
            recent_imports=tuple(
                ImportEntry(row.created_at, row.actor_id, row.action, code, name) for row, code, name in audit
            ),
        )
