"""Seeding next to other stations: the national set, the demo set and imported stations keep their own
codes, and a seed never overwrites a station that did not come from it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.app import open_core
from bot.config import Settings
from storage.regions import RegionLookup
from storage.seed import generate_stations

AT = datetime(2026, 11, 1, tzinfo=UTC)


async def test_the_demo_and_the_national_seed_coexist_without_a_shared_code(
    settings: Settings, region_lookup: RegionLookup
) -> None:
    async with open_core(settings, load_index=False) as core:
        core.stations.regions = region_lookup
        demo = await core.stations.seed_demo()
        national = await core.stations.seed(500, 2024)
        assert national.skipped == [] and national.inserted == 500
        assert await core.stations.count() == demo.inserted + 500
        again = await core.stations.seed(500, 2024)
        assert (again.inserted, again.updated, again.unchanged, again.skipped) == (0, 0, 500, [])


async def test_a_seed_never_overwrites_an_imported_station_holding_one_of_its_codes(
    settings: Settings, region_lookup: RegionLookup, tmp_path: Path
) -> None:
    taken = generate_stations(500, 2024, regions=region_lookup.index())[0]
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        f"站点编号,站点名称,纬度,经度,开放时间\n{taken.code},真实驿站,{taken.lat + 0.01},{taken.lon},24/7\n",
        encoding="utf-8",
    )
    async with open_core(settings, load_index=False) as core:
        core.stations.regions = region_lookup
        assert (await core.stations.import_file(sheet)).inserted == 1
        real = await core.stations.get(taken.code)
        await core.ratings.rate(701, real.id, 5, AT)

        report = await core.stations.seed(500, 2024)
        assert report.skipped == [taken.code]
        assert report.inserted == 499
        after = await core.stations.get(taken.code)
        assert (after.id, after.name, after.lat) == (real.id, "真实驿站", real.lat)
        assert (await core.ratings.summary(real.id)).count == 1
