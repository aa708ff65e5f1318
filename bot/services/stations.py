"""Station use cases: import, export, seed, look-up, and keeping the in-process index in step.

Every write goes through here so that the spatial index of this process reflects it as soon as the
transaction commits. Parsing and generation are CPU work and run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import CRS, Station, StationNotFound, StationRecord
from bot.services.search import SearchService
from storage.importers import RowError, parse_station_file, write_csv, write_geojson
from storage.spatial import SpatialIndex
from storage.stations_repo import RECORD_FIELDS, StationRepository, index_entry

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class ImportReport:
    total_rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rejected(self) -> int:
        return len(self.errors)


def _same(record: StationRecord, station: Station) -> bool:
    return all(getattr(record, name) == getattr(station, name) for name in RECORD_FIELDS)


class StationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        search: SearchService | None = None,
        default_tz: str = "Asia/Shanghai",
    ) -> None:
        self.sessions = sessions
        self.search = search
        self.default_tz = default_tz

    # -- reading ----------------------------------------------------------------------------------------
    async def get(self, code: str) -> Station:
        async with self.sessions() as session:
            station = await StationRepository(session).get_by_code(code)
        if station is None:
            raise StationNotFound(code)
        return station

    async def get_by_id(self, station_id: int) -> Station:
        async with self.sessions() as session:
            station = await StationRepository(session).get(station_id)
        if station is None:
            raise StationNotFound(str(station_id))
        return station

    async def get_many(self, ids: Sequence[int]) -> dict[int, Station]:
        async with self.sessions() as session:
            return await StationRepository(session).get_many(ids)

    async def count(self) -> int:
        async with self.sessions() as session:
            return await StationRepository(session).count()

    async def load_index(self) -> SpatialIndex:
        async with self.sessions() as session:
            return await StationRepository(session).load_index()

    # -- writing ----------------------------------------------------------------------------------------
    async def import_file(
        self,
        path: Path,
        crs: CRS = CRS.WGS84,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        parsed = await asyncio.to_thread(parse_station_file, path, crs, None, progress)
        report = ImportReport(
            total_rows=parsed.total_rows,
            errors=list(parsed.errors),
            warnings=list(getattr(parsed, "warnings", [])),
            dry_run=dry_run,
        )
        await self.save_records(parsed.records, report, dry_run=dry_run)
        return report

    async def save_records(
        self, records: Sequence[StationRecord], report: ImportReport | None = None, dry_run: bool = False
    ) -> ImportReport:
        """Upsert by code in one transaction; a dry run counts what would change and writes nothing."""
        report = report or ImportReport(total_rows=len(records), dry_run=dry_run)
        async with self.sessions() as session, session.begin():
            repo = StationRepository(session)
            existing = await repo.by_codes(r.code for r in records)
            changed: list[StationRecord] = []
            for record in records:
                before = existing.get(record.code)
                if before is None:
                    report.inserted += 1
                    changed.append(record)
                elif _same(record, before):
                    report.unchanged += 1
                else:
                    report.updated += 1
                    changed.append(record)
            if dry_run or not changed:
                await session.rollback()
                return report
            await repo.upsert_many(changed)
        await self._refresh_index([r.code for r in changed])
        return report

    async def seed(self, count: int, seed: int, progress: Progress | None = None) -> ImportReport:
        from storage.seed import generate_stations

        records = await asyncio.to_thread(generate_stations, count, seed, progress)
        return await self.save_records(records)

    async def _refresh_index(self, codes: Sequence[str]) -> None:
        if self.search is None:
            return
        index = self.search.index
        if len(codes) > SpatialIndex.OVERLAY_LIMIT:
            # A bulk change is cheaper to reload than to patch slot by slot.
            self.search.index = await self.load_index()
            return
        async with self.sessions() as session:
            stations = await StationRepository(session).by_codes(codes)
        for station in stations.values():
            index.upsert(index_entry(station))
        if index.needs_compaction:
            await asyncio.to_thread(index.compact)

    def reflect(self, station: Station) -> None:
        """Patch this process's index with a station changed elsewhere in a committed transaction."""
        if self.search is not None:
            self.search.index.upsert(index_entry(station))

    async def update(self, code: str, **values: object) -> Station:
        """Change some fields of one station and patch the index."""
        async with self.sessions() as session, session.begin():
            repo = StationRepository(session)
            station = await repo.get_by_code(code)
            if station is None:
                raise StationNotFound(code)
            updated = await repo.update_fields(station.id, **values)
        self.reflect(updated)
        return updated

    # -- exporting --------------------------------------------------------------------------------------
    async def export(self, out: TextIO, fmt: str = "csv") -> int:
        records: list[StationRecord] = []
        async with self.sessions() as session:
            async for station in StationRepository(session).stream_all():
                records.append(as_record(station))
        writer = write_geojson if fmt == "geojson" else write_csv
        await asyncio.to_thread(writer, records, out)
        return len(records)


def as_record(station: Station) -> StationRecord:
    return StationRecord(**{name: getattr(station, name) for name in ("code", *RECORD_FIELDS)})
