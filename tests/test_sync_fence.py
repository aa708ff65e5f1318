"""The incremental sync against writes that commit late: real SQLite and PostgreSQL (storage/fences.py).

A client that syncs with `since=` its previous `server_time` must get every station written since, even
one written by a transaction that was still open during the previous sync (an import of many seconds).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from bot.app import open_core
from bot.config import Settings
from bot.services.roles import Access, Role
from domain.clock import utc_now
from domain.values import StationRecord, StationStatus
from storage import stations_repo
from storage.fences import FENCE_TTL, station_write, sync_horizon, write_fence
from storage.models import WriteFenceRow


def record(code: str, lat: float = 23.13, lon: float = 113.26) -> StationRecord:
    return StationRecord(
        code=code, name=f"驿站{code}", lat=lat, lon=lon, opening_hours="24/7", amenities=("toilet",)
    )  # type: ignore[call-arg]


async def fences(core) -> int:  # type: ignore[no-untyped-def]
    async with core.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(WriteFenceRow))).scalar_one())


async def synced_codes(core, since) -> tuple[set[str], object]:  # type: ignore[no-untyped-def]
    codes: set[str] = set()
    after = None
    while True:
        page = await core.stations.changes(since=since, after=after)
        codes |= {s.code for s in page.stations}
        if page.next_cursor is None:
            return codes, page.server_time
        after = page.next_cursor


async def test_a_sync_during_a_long_import_misses_none_of_its_stations(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    written, release = asyncio.Event(), asyncio.Event()
    original = stations_repo.StationRepository.upsert_many

    async def slow_upsert(self, records, *args, **kwargs):  # type: ignore[no-untyped-def]
        await original(self, records, *args, **kwargs)
        await self.session.flush()  # stamped and written, not committed
        written.set()
        await release.wait()

    async with open_core(settings, load_index=False) as core:
        await core.stations.save_records([record("OLD1")])
        _, first_time = await synced_codes(core, None)

        monkeypatch.setattr(stations_repo.StationRepository, "upsert_many", slow_upsert)
        importing = asyncio.create_task(
            core.stations.save_records([record(f"NEW{n}", 23.1 + n / 1000) for n in range(30)])
        )
        await asyncio.wait_for(written.wait(), 30)
        assert await fences(core) == 1
        during, during_time = await synced_codes(core, first_time)
        assert during == set()  # not committed yet
        release.set()
        await importing
        monkeypatch.undo()

        assert await fences(core) == 0
        after_import, _ = await synced_codes(core, during_time)
        assert after_import == {f"NEW{n}" for n in range(30)}
        # With no write in progress, server_time is the clock again.
        _, idle_time = await synced_codes(core, during_time)
        assert idle_time > during_time


async def test_a_moderation_during_a_sync_is_not_skipped(settings: Settings) -> None:
    async with open_core(settings, load_index=False) as core:
        await core.stations.save_records([record("M1")])
        station = await core.stations.get("M1")
        _, since = await synced_codes(core, None)
        await core.station_admin.set_status(
            station.id,
            StationStatus.TEMPORARILY_CLOSED,
            Access(user_id=7, grants=((Role.ADMIN, ""),)),
            # The instant the change is about may lie before the sync: the row is stamped when written.
            utc_now() - timedelta(hours=2),
        )
        changed, _ = await synced_codes(core, since)
        assert changed == {"M1"}
        assert await fences(core) == 0


async def test_a_failed_write_removes_its_fence_and_a_dry_run_takes_none(settings: Settings) -> None:
    async with open_core(settings, load_index=False) as core:
        with pytest.raises(RuntimeError):
            async with write_fence(core.sessions, "test"):
                assert await fences(core) == 1
                raise RuntimeError("the write failed")
        assert await fences(core) == 0
        report = await core.stations.save_records([record("D1")], dry_run=True)
        assert report.inserted == 1 and await fences(core) == 0
        assert await core.stations.count() == 0


async def test_a_fence_left_behind_holds_syncs_back_until_it_expires(settings: Settings) -> None:
    async with open_core(settings, load_index=False) as core:
        now = utc_now()
        started = now - timedelta(minutes=5)
        async with core.sessions() as session, session.begin():
            # Left by a process that died mid-import, and an older one already expired.
            await session.execute(
                insert(WriteFenceRow),
                [
                    {"started_at": started, "expires_at": started + FENCE_TTL, "holder": "died"},
                    {"started_at": now - 2 * FENCE_TTL, "expires_at": now - FENCE_TTL, "holder": "old"},
                ],
            )
        page = await core.stations.changes()
        assert page.server_time < started
        assert started - page.server_time < timedelta(seconds=1)
        async with core.sessions() as session:
            assert await sync_horizon(session, started + FENCE_TTL) == started + FENCE_TTL

        # The next write clears the expired fence and keeps the live one.
        await core.stations.save_records([record("W1")])
        async with core.sessions() as session:
            holders = (await session.execute(select(WriteFenceRow.holder))).scalars().all()
        assert holders == ["died"]


async def test_a_station_write_outside_a_fenced_session_is_refused(settings: Settings) -> None:
    async with open_core(settings, load_index=False) as core:
        await core.stations.save_records([record("R1")])
        station = await core.stations.get("R1")
        async with core.sessions() as session, session.begin():
            repo = stations_repo.StationRepository(session)
            with pytest.raises(RuntimeError, match="station_write"):
                await repo.update_fields(station.id, name="改名")
            with pytest.raises(RuntimeError, match="station_write"):
                await repo.upsert_many([record("R2")])
        async with station_write(core.sessions, "test", fenced=False) as session:
            with pytest.raises(RuntimeError, match="station_write"):
                await stations_repo.StationRepository(session).update_fields(station.id, name="改名")
        assert (await core.stations.get("R1")).name == "驿站R1"
        assert await core.stations.count() == 1
