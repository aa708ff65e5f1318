"""Storage and search against real SQLite and real PostgreSQL+PostGIS (parameterized over both)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import open_core
from bot.config import Settings
from bot.services.search import brute_force_nearest_open
from domain.values import CRS, GeoPoint, StationRecord, StationStatus
from storage.seed import generate_stations

ROOT = Path(__file__).resolve().parent.parent
AT = datetime(2025, 10, 2, 4, 0, tzinfo=UTC)  # noon in China, a National Day holiday


def record(code: str, lat: float, lon: float, **kw: object) -> StationRecord:
    base = dict(name=f"驿站{code}", opening_hours="24/7", amenities=("drinking_water",), region="440106")
    base.update(kw)
    return StationRecord(code=code, lat=lat, lon=lon, **base)  # type: ignore[arg-type]


async def test_migration_creates_schema_and_postgis_point(settings: Settings) -> None:
    async with open_core(settings) as core:
        await core.stations.save_records([record("A1", 23.13, 113.26), record("A2", 23.20, 113.30)])
        async with core.engine.connect() as conn:
            if conn.dialect.name != "postgresql":
                assert await conn.scalar(text("SELECT count(*) FROM stations")) == 2
                return
            # The geography column follows lat/lon and its GiST index serves radius queries.
            rows = (
                (
                    await conn.execute(
                        text(
                            "SELECT code FROM stations WHERE ST_DWithin(geog, "
                            "ST_SetSRID(ST_MakePoint(113.26, 23.13), 4326)::geography, 1000)"
                        )
                    )
                )
                .scalars()
                .all()
            )
            assert rows == ["A1"]
            index = await conn.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_stations_geog'")
            )
            assert "gist" in index.lower()


async def test_saving_the_same_records_twice_changes_nothing(settings: Settings) -> None:
    records = generate_stations(300, seed=5)
    async with open_core(settings) as core:
        first = await core.stations.save_records(records)
        assert (first.inserted, first.updated, first.unchanged) == (300, 0, 0)
        before = {s.code: s.updated_at for s in await _all(core)}
        second = await core.stations.save_records(records)
        assert (second.inserted, second.updated, second.unchanged) == (0, 0, 300)
        after = {s.code: s.updated_at for s in await _all(core)}
        assert before == after
        changed = replace(records[0], phone="020-12345678", amenities=("toilet", "wifi"))
        third = await core.stations.save_records([changed])
        assert (third.inserted, third.updated, third.unchanged) == (0, 1, 0)
        station = await core.stations.get(changed.code)
        assert station.phone == "020-12345678"
        assert station.amenities == ("toilet", "wifi")
        assert station.updated_at > before[changed.code]


async def test_dry_run_counts_but_writes_nothing(settings: Settings) -> None:
    async with open_core(settings) as core:
        report = await core.stations.save_records([record("D1", 23.1, 113.2)], dry_run=True)
        assert report.inserted == 1
        assert await core.stations.count() == 0


@pytest.mark.parametrize("fmt,suffix", [("csv", ".csv"), ("geojson", ".geojson")])
async def test_importing_an_export_changes_nothing(
    settings: Settings, tmp_path: Path, fmt: str, suffix: str
) -> None:
    records = generate_stations(200, seed=9)
    async with open_core(settings) as core:
        await core.stations.save_records(records)
        out = io.StringIO()
        assert await core.stations.export(out, fmt) == 200
        path = tmp_path / f"export{suffix}"
        path.write_text(out.getvalue(), encoding="utf-8")
        report = await core.stations.import_file(path)
        assert report.errors == []
        assert (report.inserted, report.updated, report.unchanged) == (0, 0, 200)


async def test_search_over_the_database_equals_brute_force(settings: Settings) -> None:
    records = generate_stations(2000, seed=11)
    async with open_core(settings) as core:
        await core.stations.save_records(records)
        await core.reload_index()
        rows = [
            (r.code, r.lat, r.lon, r.status.value, r.amenities, r.opening_hours, r.timezone) for r in records
        ]
        for lat, lon, wanted in [
            (23.13, 113.26, []),
            (39.9, 116.4, ["toilet"]),
            (31.2, 121.47, ["ebike_charging"]),
        ]:
            point = GeoPoint(lat, lon)
            hits = core.search.find_nearest_open(point, 5, wanted, AT)
            expected = brute_force_nearest_open(rows, point, 5, wanted, AT)
            assert [h.code for h in hits] == [code for code, _ in expected]


async def test_a_station_change_reaches_the_index_at_once(settings: Settings) -> None:
    async with open_core(settings) as core:
        await core.stations.save_records([record("N1", 23.1300, 113.26), record("N2", 23.1400, 113.26)])
        await core.reload_index()
        point = GeoPoint(23.13, 113.26)
        assert [h.code for h in core.search.find_nearest_open(point, 1, (), AT)] == ["N1"]
        await core.stations.update("N1", status=StationStatus.TEMPORARILY_CLOSED)
        assert [h.code for h in core.search.find_nearest_open(point, 1, (), AT)] == ["N2"]
        # A new station imported later is found without a reload.
        await core.stations.save_records([record("N3", 23.1301, 113.26)])
        assert [h.code for h in core.search.find_nearest_open(point, 1, (), AT)] == ["N3"]
        # A moved station is found at its new place only.
        await core.stations.save_records([record("N2", 23.1300, 113.26)])
        assert [h.code for h in core.search.find_nearest_open(point, 2, (), AT)] == ["N2", "N3"]


async def test_index_rows_keep_timezone_and_skip_closed_stations(settings: Settings) -> None:
    async with open_core(settings) as core:
        await core.stations.save_records(
            [
                record("T1", 43.8, 87.6, timezone="Asia/Urumqi", opening_hours="Mo-Su 10:00-11:00"),
                record("T2", 43.81, 87.6, status=StationStatus.CLOSED),
            ]
        )
        await core.reload_index()
        assert len(core.search.index) == 1
        # 10:30 in Urumqi is 04:30 UTC (UTC+6).
        hits = core.search.find_nearest_open(
            GeoPoint(43.8, 87.6), 5, (), datetime(2025, 1, 6, 4, 30, tzinfo=UTC)
        )
        assert [h.code for h in hits] == ["T1"]


KILL_SCRIPT = """
import asyncio, sys
from bot.app import open_core
from bot.config import Settings
from storage import stations_repo
from storage.seed import generate_stations

original = stations_repo.StationRepository.upsert_many

async def slow_upsert(self, records, *args, **kwargs):
    await original(self, records[:500], *args, **kwargs)
    await self.session.flush()
    print("WROTE", flush=True)
    await asyncio.sleep(60)

stations_repo.StationRepository.upsert_many = slow_upsert

async def main():
    async with open_core(Settings(database_url=sys.argv[1]), load_index=False) as core:
        await core.stations.save_records(generate_stations(2000, seed=3))

asyncio.run(main())
"""


async def test_a_process_killed_mid_import_leaves_the_database_as_it_was(settings: Settings) -> None:
    async with open_core(settings, load_index=False) as core:
        await core.stations.save_records([record("KEEP", 23.1, 113.2)])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILL_SCRIPT,
        settings.database_url,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"WROTE"
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    async with open_core(settings, load_index=False) as core:
        assert await core.stations.count() == 1
        assert (await core.stations.get("KEEP")).name == "驿站KEEP"


async def test_import_gcj02_file_is_stored_in_wgs84(settings: Settings, tmp_path: Path) -> None:
    from domain.coords import wgs84_to_gcj02

    truth = (23.129110, 113.264385)
    glat, glon = wgs84_to_gcj02(*truth)
    path = tmp_path / "gcj.csv"
    path.write_text(f"站点编号,站点名称,纬度,经度\nG1,广州驿站,{glat:.7f},{glon:.7f}\n", encoding="utf-8")
    async with open_core(settings) as core:
        report = await core.stations.import_file(path, CRS.GCJ02)
        assert report.inserted == 1
        station = await core.stations.get("G1")
        from geopy.distance import geodesic

        assert geodesic(truth, (station.lat, station.lon)).meters < 0.5


async def _all(core) -> list:  # type: ignore[no-untyped-def]
    from storage.stations_repo import StationRepository

    async with core.sessions() as session:
        return [station async for station in StationRepository(session).stream_all()]


async def test_a_long_running_process_answers_from_a_warmed_station_cache(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = generate_stations(300, seed=13)
    async with open_core(settings) as core:
        await core.stations.save_records(records)
    async with open_core(settings, warm_cache=True) as core:
        assert core.warming is not None
        current = sum(1 for r in records if r.status is not StationStatus.CLOSED)
        assert await core.warming == current
        assert len(core.stations.cache) == current

        async def no_database(*args: object, **kwargs: object) -> None:
            raise AssertionError("the cache should have answered")

        from storage.stations_repo import StationRepository

        monkeypatch.setattr(StationRepository, "get_many", no_database)
        hits = core.search.find_nearest_open(GeoPoint(23.13, 113.26), 5, (), AT, include_closed=True)
        found = await core.stations.get_many([h.station_id for h in hits])
        assert sorted(found) == sorted(h.station_id for h in hits)


def test_the_head_revision_constant_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from storage.db import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


async def test_a_database_at_head_is_not_migrated_again_and_an_old_one_is(settings: Settings) -> None:
    from alembic import command
    from sqlalchemy import Connection

    from storage.db import HEAD_REVISION, alembic_config, create_engine, current_revision, upgrade_database

    def downgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0003")

    engine = create_engine(settings.database_url)
    try:
        await upgrade_database(engine)
        assert await current_revision(engine) == HEAD_REVISION
        await upgrade_database(engine)  # at head: nothing to do
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await current_revision(engine) == "0003"
        await upgrade_database(engine)
        assert await current_revision(engine) == HEAD_REVISION
    finally:
        await engine.dispose()


async def test_a_bulk_import_refreshes_planner_statistics_and_a_reimport_finds_every_code(
    settings: Settings,
) -> None:
    # Enough stations for a bulk write: on PostgreSQL the statistics are refreshed, so no pooled
    # connection keeps a plan made while the table was empty (see StationRepository.refresh_statistics).
    records = generate_stations(2100, seed=5)
    async with open_core(settings, load_index=False) as core:
        assert (await core.stations.save_records(records)).inserted == 2100
        async with core.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                analyzed = await conn.scalar(
                    text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'stations'")
                )
                assert analyzed is not None
        again = await core.stations.save_records(records)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2100)
