"""The console's import runs: one row per uploaded station file, its districts, and the claims that make a
commit happen once however many times it is asked for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ImportRunRegionRow, ImportRunRow


class ImportRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, **values: Any) -> ImportRunRow:
        row = ImportRunRow(**values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, run_id: int) -> ImportRunRow | None:
        return await self.session.get(ImportRunRow, run_id)

    async def set(self, run_id: int, **values: Any) -> None:
        await self.session.execute(update(ImportRunRow).where(ImportRunRow.id == run_id).values(**values))

    async def claim(self, run_id: int, before: str, after: str, **values: Any) -> bool:
        """Move a run from status `before` to `after`; of concurrent callers exactly one gets True."""
        result = await self.session.execute(
            update(ImportRunRow)
            .where(ImportRunRow.id == run_id, ImportRunRow.status == before)
            .values(status=after, **values)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def set_regions(self, run_id: int, regions: Iterable[str]) -> None:
        await self.session.execute(delete(ImportRunRegionRow).where(ImportRunRegionRow.import_id == run_id))
        rows = [{"import_id": run_id, "region": region} for region in sorted(set(regions))]
        if rows:
            await self.session.execute(ImportRunRegionRow.__table__.insert(), rows)

    async def regions_of(self, run_id: int) -> list[str]:
        return list(
            await self.session.scalars(
                select(ImportRunRegionRow.region)
                .where(ImportRunRegionRow.import_id == run_id)
                .order_by(ImportRunRegionRow.region)
            )
        )

    async def recent(
        self, statuses: Sequence[str], prefixes: Sequence[str], actor_id: int | None, limit: int
    ) -> list[ImportRunRow]:
        """The newest runs in `statuses` holding a station of a district under one of `prefixes` ("" is
        everywhere), or uploaded by `actor_id`."""
        query = select(ImportRunRow).where(ImportRunRow.status.in_(statuses))
        if "" not in prefixes:
            scope = [ImportRunRow.actor_id == actor_id] if actor_id is not None else []
            if prefixes:
                in_region = select(ImportRunRegionRow.import_id).where(
                    or_(*(ImportRunRegionRow.region.like(prefix + "%") for prefix in prefixes))
                )
                scope.append(ImportRunRow.id.in_(in_region))
            query = query.where(or_(*scope) if scope else false())
        query = query.order_by(ImportRunRow.created_at.desc(), ImportRunRow.id.desc()).limit(limit)
        return list(await self.session.scalars(query))

    async def stale(self, statuses: Sequence[str], before: datetime) -> list[ImportRunRow]:
        """Runs left in `statuses` since before `before` (a process that died mid-run, a dry run expired)."""
        return list(
            await self.session.scalars(
                select(ImportRunRow).where(
                    ImportRunRow.status.in_(statuses), ImportRunRow.created_at < before
                )
            )
        )
