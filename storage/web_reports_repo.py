"""The H5 page's browsers and the reports each sent: their SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CaseRow, ReportRow, StationRow, WebDeviceRow


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """One report a browser sent, with what became of its case."""

    id: int
    station_code: str
    station_name: str
    kind: str
    status: str
    created_at: datetime
    decided_at: datetime | None


class WebDeviceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token_hash: str, at: datetime) -> WebDeviceRow:
        row = WebDeviceRow(token_hash=token_hash, created_at=at)
        self.session.add(row)
        await self.session.flush()
        return row

    async def by_token_hash(self, token_hash: str) -> WebDeviceRow | None:
        return await self.session.scalar(select(WebDeviceRow).where(WebDeviceRow.token_hash == token_hash))

    async def forget(self, device_ids: Sequence[int]) -> int:
        """Unlink the devices' reports (they stay, as a forgotten rider's do) and delete the devices;
        returns how many reports were unlinked."""
        result = await self.session.execute(
            update(ReportRow).where(ReportRow.device_id.in_(device_ids)).values(device_id=None)
        )
        await self.session.execute(delete(WebDeviceRow).where(WebDeviceRow.id.in_(device_ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def first_seen(self, device_id: int) -> datetime | None:
        return await self.session.scalar(select(WebDeviceRow.created_at).where(WebDeviceRow.id == device_id))

    async def reports(self, device_id: int, limit: int, report_id: int | None = None) -> list[DeviceReport]:
        """The device's reports, newest first (or only `report_id`, when it is the device's)."""
        stmt = (
            select(
                ReportRow.id,
                StationRow.code,
                StationRow.name,
                ReportRow.kind,
                CaseRow.status,
                ReportRow.created_at,
                CaseRow.decided_at,
            )
            .join(CaseRow, CaseRow.id == ReportRow.case_id)
            .join(StationRow, StationRow.id == ReportRow.station_id)
            .where(ReportRow.device_id == device_id)
            .order_by(ReportRow.created_at.desc(), ReportRow.id.desc())
            .limit(limit)
        )
        if report_id is not None:
            stmt = stmt.where(ReportRow.id == report_id)
        return [DeviceReport(*row) for row in await self.session.execute(stmt)]
