"""The console's station work as a service, on SQLite and PostgreSQL: a search and an export never leave
the staff member's regions, paging is stable, an edit is checked as an import row is (per field, nothing
changed on a refusal), its region follows the position, it is audited with the actor and reaches the
index and cache at once; lifecycle actions; a station of another region cannot be read or changed."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from conftest import REDIS_URL, service_missing

from bot.app import Core, open_core
from bot.config import Settings
from bot.services import station_console
from bot.services.roles import Access, NotAllowed, Role
from bot.services.station_admin import InvalidEdit
from bot.services.station_console import (
    ExportTooLarge,
    InvalidStationQuery,
    StationEditRejected,
    StationQuery,
    scoped_regions,
)
from domain.statuses import CaseStatus
from domain.values import GeoPoint, StationRecord, StationStatus
from storage.importers import parse_station_file
from storage.models import CaseRow, RatingRow
from storage.regions import RegionLookup

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
GUANGZHOU = Access(101, ((Role.STAFF, "4401"),))
SHENZHEN = Access(102, ((Role.STAFF, "4403"),))
ADMIN = Access(1, ((Role.ADMIN, ""),))
RIDER = Access(500)
#: Positions and their districts (WGS-84).
TIANHE = (23.129058, 113.310075)  # 440106 天河区
YUEXIU = (23.129039, 113.309475)  # 440104 越秀区, 60 m west across the border
FUTIAN = (22.5431, 114.0579)  # 440304 福田区, Shenzhen
PARIS = (48.8566, 2.3522)


def gz(n: int, **values: object) -> StationRecord:
    fields: dict[str, object] = {
        "code": f"GZ{n:04d}",
        "name": f"天河驿站{n}号",
        "lat": TIANHE[0] + n * 1e-5,
        "lon": TIANHE[1] + n * 1e-5,
        "region": "440106",
        "address": f"天河路{n}号",
        "opening_hours": "24/7",
        "amenities": ("drinking_water",),
    }
    fields.update(values)
    return StationRecord(**fields)  # type: ignore[arg-type]


def sz(n: int, **values: object) -> StationRecord:
    fields: dict[str, object] = {
        "code": f"SZ{n:04d}",
        "name": f"福田驿站{n}号",
        "lat": FUTIAN[0] + n * 1e-5,
        "lon": FUTIAN[1] + n * 1e-5,
        "region": "440304",
        "address": f"深南大道{n}号",
        "opening_hours": "24/7",
    }
    fields.update(values)
    return StationRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def core(settings: Settings, region_lookup: RegionLookup) -> AsyncIterator[Core]:
    async with open_core(settings) as core:
        core.stations.regions = region_lookup
        records = [gz(n) for n in range(1, 26)] + [sz(n) for n in range(1, 11)]
        records[2] = gz(3, amenities=("toilet", "drinking_water"), status=StationStatus.TEMPORARILY_CLOSED)
        records[3] = gz(4, name='=HYPERLINK("http://evil")', address="+1 越秀路")
        records[4] = gz(5, name="100%_真_驿站")
        await core.stations.save_records(records)
        yield core


def test_a_district_narrows_the_regions_one_may_search() -> None:
    assert scoped_regions(("4401",), "") == ("4401",)
    assert scoped_regions(("4401",), "440106") == ("440106",)
    assert scoped_regions(("4401", "4403"), "44") == ("4401", "4403")
    assert scoped_regions(("4401",), "4403") == ()
    assert scoped_regions(("",), "4403") == ("4403",)


@pytest.mark.parametrize(
    "params,field",
    [
        ({"district": "44a1"}, "district"),
        ({"district": "4"}, "district"),
        ({"district": "4401061"}, "district"),
        ({"status": "gone"}, "status"),
        ({"amenity": "jacuzzi"}, "amenity"),
        ({"q": "x" * 101}, "q"),
        ({"hours": "24/7"}, "hours"),
        ({"stale": "yes"}, "stale"),
    ],
)
def test_a_query_a_browser_cannot_have_made_is_refused_by_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidStationQuery) as caught:
        StationQuery.parse(params)
    assert caught.value.field == field


async def test_staff_see_only_their_regions_and_a_district_outside_them_finds_nothing(core: Core) -> None:
    service = core.station_console
    page = await service.search(GUANGZHOU, StationQuery())
    assert page.total == 25 and {s.region for s in page.stations} == {"440106"}
    assert (await service.search(SHENZHEN, StationQuery())).total == 10
    assert (await service.search(ADMIN, StationQuery())).total == 35
    outside = await service.search(GUANGZHOU, StationQuery.parse({"district": "4403"}))
    assert outside.total == 0 and outside.stations == []
    # A wider district than one's own is one's own.
    assert (await service.search(GUANGZHOU, StationQuery.parse({"district": "44"}))).total == 25
    # A text that only Shenzhen's stations have finds none of them for Guangzhou's staff.
    assert (await service.search(GUANGZHOU, StationQuery.parse({"q": "深南大道"}))).total == 0
    with pytest.raises(NotAllowed):
        await service.search(RIDER, StationQuery())


async def test_search_by_code_name_address_status_and_amenity(core: Core) -> None:
    service = core.station_console

    async def codes(**params: str) -> list[str]:
        page = await service.search(ADMIN, StationQuery.parse(params), limit=200)
        assert page.total == len(page.stations)
        return [s.code for s in page.stations]

    assert await codes(q="GZ001") == [f"GZ{n:04d}" for n in range(10, 20)]
    assert await codes(q="gz0025") == ["GZ0025"]  # case-insensitive
    assert await codes(q="天河驿站2号") == ["GZ0002"]
    assert await codes(q="驿站2号") == ["GZ0002", "SZ0002"]
    assert await codes(q="深南大道7号") == ["SZ0007"]
    assert await codes(q="越秀路") == ["GZ0004"]
    # LIKE's wildcards are literal characters in a search.
    assert await codes(q="100%_真") == ["GZ0005"]
    assert await codes(q="%") == ["GZ0005"]
    assert await codes(q="_") == ["GZ0005"]
    assert await codes(status="temporarily_closed") == ["GZ0003"]
    assert await codes(amenity="toilet") == ["GZ0003"]
    assert len(await codes(amenity="drinking_water")) == 25
    assert await codes(q="驿站", district="440304", status="active") == [f"SZ{n:04d}" for n in range(1, 11)]
    # The dashboard's links: around the clock, and not verified for 180 days.
    await core.station_console.verify("SZ0001", ADMIN, NOW)
    await core.station_console.verify("SZ0002", ADMIN, NOW - timedelta(days=200))
    await core.stations.update("SZ0003", opening_hours="Mo-Fr 09:00-17:00")
    page = await service.search(ADMIN, StationQuery.parse({"district": "4403", "stale": "1"}), at=NOW)
    assert [s.code for s in page.stations] == [f"SZ{n:04d}" for n in range(2, 11)]
    page = await service.search(ADMIN, StationQuery.parse({"district": "4403", "hours": "24_7"}))
    assert page.total == 9 and "SZ0003" not in {s.code for s in page.stations}


async def test_pages_follow_each_other_both_ways_without_gaps_or_repeats(core: Core) -> None:
    service = core.station_console
    query = StationQuery()
    seen: list[str] = []
    page = await service.search(ADMIN, query, limit=10)
    assert page.previous_before is None
    pages = [page]
    while page.next_after is not None:
        page = await service.search(ADMIN, query, after=page.next_after, limit=10)
        pages.append(page)
    for p in pages:
        assert p.total == 35
        seen += [s.code for s in p.stations]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 35
    assert [len(p.stations) for p in pages] == [10, 10, 10, 5]
    # Back from the last page: the same pages in reverse.
    back = pages[-1]
    for expected in reversed(pages[:-1]):
        assert back.previous_before is not None
        back = await service.search(ADMIN, query, before=back.previous_before, limit=10)
        assert [s.code for s in back.stations] == [s.code for s in expected.stations]
    assert back.previous_before is None and back.next_after == pages[0].next_after
    # A station added meanwhile before the current page neither shifts nor repeats the next one.
    await core.stations.save_records([gz(0, code="GZ0000")])
    after = await service.search(ADMIN, query, after=pages[1].next_after, limit=10)
    assert [s.code for s in after.stations] == [s.code for s in pages[2].stations]
    with pytest.raises(InvalidStationQuery):
        await service.search(ADMIN, query, after="x" * 65)


async def test_a_csv_export_has_the_selection_only_guarded_and_re_imports(core: Core, tmp_path: Path) -> None:
    service = core.station_console
    body = b"".join(
        [chunk async for chunk in service.export_csv(GUANGZHOU, StationQuery.parse({"q": "驿站"}))]
    )
    text = body.decode("utf-8")
    assert text.startswith("\ufeffcode,name,address,lat,lon,")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert {row["code"] for row in rows} == {f"GZ{n:04d}" for n in range(1, 26)} - {"GZ0004"}
    everything = b"".join([chunk async for chunk in service.export_csv(GUANGZHOU, StationQuery())])
    rows = list(csv.DictReader(io.StringIO(everything.decode().lstrip("\ufeff"))))
    assert len(rows) == 25 and not any(row["code"].startswith("SZ") for row in rows)
    evil = next(row for row in rows if row["code"] == "GZ0004")
    assert evil["name"] == '\'=HYPERLINK("http://evil")' and evil["address"] == "'+1 越秀路"
    path = tmp_path / "export.csv"
    path.write_bytes(everything)
    parsed = parse_station_file(path)
    assert not parsed.errors and len(parsed.records) == 25
    assert next(r for r in parsed.records if r.code == "GZ0004").name == '=HYPERLINK("http://evil")'
    # Nothing selected: the header alone.
    empty = b"".join(
        [chunk async for chunk in service.export_csv(GUANGZHOU, StationQuery.parse({"district": "4403"}))]
    )
    assert empty.decode().strip() == "\ufeff" + ",".join(rows[0].keys())


async def test_an_xlsx_export_has_the_selection_with_formulas_as_text(core: Core, tmp_path: Path) -> None:
    data = await core.station_console.export_xlsx(SHENZHEN, StationQuery())
    path = tmp_path / "export.xlsx"
    path.write_bytes(data)
    sheet = openpyxl.load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("code", "name", "address", "lat", "lon")
    assert [row[0] for row in rows[1:]] == [f"SZ{n:04d}" for n in range(1, 11)]
    assert isinstance(rows[1][3], float)
    admin = await core.station_console.export_xlsx(ADMIN, StationQuery.parse({"q": "HYPERLINK"}))
    path.write_bytes(admin)
    cell = openpyxl.load_workbook(path).worksheets[0]["B2"]
    assert cell.value == '=HYPERLINK("http://evil")' and cell.data_type == "s" and cell.quotePrefix
    parsed = parse_station_file(path)
    assert not parsed.errors and parsed.records[0].name == '=HYPERLINK("http://evil")'


async def test_a_large_selection_is_counted_to_a_limit_and_too_large_for_excel(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(station_console, "COUNT_LIMIT", 20)
    monkeypatch.setattr(station_console, "XLSX_MAX_ROWS", 24)
    page = await core.station_console.search(ADMIN, StationQuery())
    assert (page.total, page.more_than, len(page.stations)) == (20, True, 35)
    page = await core.station_console.search(SHENZHEN, StationQuery())
    assert (page.total, page.more_than) == (10, False)
    with pytest.raises(ExportTooLarge):
        await core.station_console.export_xlsx(GUANGZHOU, StationQuery())
    assert await core.station_console.export_xlsx(GUANGZHOU, StationQuery.parse({"q": "天河路1"}))


def form_of(core: Core, code: str, **changes: object) -> dict[str, object]:
    station = core.stations.cache.by_code(code)
    assert station is not None
    form: dict[str, object] = {
        "name": station.name,
        "address": station.address,
        "lat": f"{station.lat:.7f}",
        "lon": f"{station.lon:.7f}",
        "host": station.host,
        "opening_hours": station.opening_hours_text or station.opening_hours,
        "amenities": list(station.amenities),
        "phone": station.phone,
        "manager": station.manager,
        "timezone": station.timezone or "",
    }
    form.update(changes)
    return form


async def test_an_edit_in_chinese_hours_is_audited_and_reaches_index_and_cache(core: Core) -> None:
    service = core.station_console
    before = await service.station("GZ0001", GUANGZHOU)
    core.stations.cache.put(before.id, before)
    form = form_of(
        core,
        "GZ0001",
        name="天河驿站（新）",
        opening_hours="周一至周五 9:00-17:00",
        amenities=["toilet", "wifi"],
        phone="020-12345678",
        manager="李四",
        host="中国移动",
        timezone="Asia/Shanghai",
    )
    after = await service.edit("GZ0001", form, GUANGZHOU, NOW, actor_id=-7)
    assert after.opening_hours == "Mo-Fr 09:00-17:00"
    assert after.opening_hours_text == "周一至周五 9:00-17:00"
    assert after.amenities == ("toilet", "wifi") and after.name == "天河驿站（新）"
    assert (after.phone, after.manager, after.host, after.timezone) == (
        "020-12345678",
        "李四",
        "中国移动",
        "Asia/Shanghai",
    )
    # The cache and the index of this process have it at once.
    assert core.stations.cache.by_code("GZ0001") == after
    assert (await core.stations.get_cached("GZ0001")).opening_hours == "Mo-Fr 09:00-17:00"
    saturday_noon = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
    hits = core.search.find_nearest_open(GeoPoint(*TIANHE), 30, (), saturday_noon)
    assert "GZ0001" not in {hit.code for hit in hits} and "GZ0002" in {hit.code for hit in hits}
    wifi = core.search.find_nearest_open(
        GeoPoint(*TIANHE), 5, ("wifi",), datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
    )
    assert [hit.code for hit in wifi] == ["GZ0001"]
    # One audit entry, by the actor, naming each changed field before and after.
    trail = (await service.station_file("GZ0001", GUANGZHOU)).history
    assert len(trail) == 1 and trail[0].actor_id == -7 and trail[0].action == "edit"
    assert (
        trail[0].before["opening_hours"] == "24/7" and trail[0].after["opening_hours"] == "Mo-Fr 09:00-17:00"
    )
    assert set(trail[0].after) == {
        "name",
        "opening_hours",
        "opening_hours_text",
        "amenities",
        "phone",
        "manager",
        "host",
        "timezone",
    }
    # Saving the form again unchanged writes nothing.
    again = await service.edit("GZ0001", form_of(core, "GZ0001"), GUANGZHOU, NOW, actor_id=-7)
    assert again.updated_at == after.updated_at
    assert len((await service.station_file("GZ0001", GUANGZHOU)).history) == 1


async def test_a_moved_station_takes_its_new_district(core: Core) -> None:
    service = core.station_console
    moved = await service.edit(
        "GZ0002", form_of(core, "GZ0002", lat=str(YUEXIU[0]), lon=str(YUEXIU[1])), GUANGZHOU, NOW
    )
    assert moved.region == "440104" and (moved.lat, moved.lon) == YUEXIU
    assert (await service.station_file("GZ0002", GUANGZHOU)).history[0].after["region"] == "440104"


@pytest.mark.parametrize(
    "changes,fields",
    [
        ({"name": "  "}, {"name"}),
        ({"opening_hours": "周八 9点到25点"}, {"opening_hours"}),
        ({"opening_hours": "Mo-Fr 25:00-26:00"}, {"opening_hours"}),
        ({"lat": "abc"}, {"position"}),
        ({"lat": "113.3", "lon": "23.1"}, {"position"}),
        ({"lat": str(PARIS[0]), "lon": str(PARIS[1])}, {"position"}),
        ({"lat": str(FUTIAN[0]), "lon": str(FUTIAN[1])}, {"position"}),
        ({"timezone": "Mars/Olympus"}, {"timezone"}),
        ({"amenities": ["toilet", "jacuzzi"]}, {"amenities"}),
        ({"address": "路" * 301, "phone": "1" * 65}, {"address", "phone"}),
        ({"name": "", "timezone": "x"}, {"name", "timezone"}),
    ],
)
async def test_an_edit_the_importer_would_refuse_changes_nothing(
    core: Core, changes: dict[str, object], fields: set[str]
) -> None:
    service = core.station_console
    before = await service.station("GZ0006", GUANGZHOU)
    core.stations.cache.put(before.id, before)
    with pytest.raises(StationEditRejected) as caught:
        await service.edit("GZ0006", form_of(core, "GZ0006", **changes), GUANGZHOU, NOW)
    assert set(caught.value.problems) == fields
    assert all(caught.value.problems[name] for name in fields)
    assert await service.station("GZ0006", GUANGZHOU) == before
    assert (await service.station_file("GZ0006", GUANGZHOU)).history == []


async def test_a_position_outside_ones_regions_is_explained(core: Core) -> None:
    form = form_of(core, "GZ0007", lat=str(FUTIAN[0]), lon=str(FUTIAN[1]))
    with pytest.raises(StationEditRejected) as caught:
        await core.station_console.edit("GZ0007", form, GUANGZHOU, NOW)
    assert "440304" in caught.value.problems["position"][0]
    # An admin may move it there.
    moved = await core.station_console.edit("GZ0007", form, ADMIN, NOW)
    assert moved.region == "440304"


async def test_staff_of_another_region_can_neither_read_nor_change_a_station(core: Core) -> None:
    service = core.station_console
    target = await service.station("SZ0001", SHENZHEN)
    attempts = [
        service.station("SZ0001", GUANGZHOU),
        service.station_file("SZ0001", GUANGZHOU),
        service.edit("SZ0001", {"name": "mine", "lat": "23.1", "lon": "113.3"}, GUANGZHOU, NOW),
        service.verify("SZ0001", GUANGZHOU, NOW),
        service.set_status("SZ0001", StationStatus.CLOSED, GUANGZHOU, NOW, reason="gone"),
        service.set_status("SZ0001", StationStatus.TEMPORARILY_CLOSED, GUANGZHOU, NOW),
    ]
    for attempt in attempts:
        with pytest.raises(NotAllowed):
            await attempt
    assert await service.station("SZ0001", SHENZHEN) == target
    assert (await service.station_file("SZ0001", SHENZHEN)).history == []


async def test_lifecycle_actions_are_audited_with_their_reason(core: Core) -> None:
    service = core.station_console
    verified = await service.verify("GZ0008", GUANGZHOU, NOW, actor_id=-3)
    assert verified.verified_at == NOW
    closed = await service.set_status("GZ0008", StationStatus.TEMPORARILY_CLOSED, GUANGZHOU, NOW, actor_id=-3)
    assert closed.status is StationStatus.TEMPORARILY_CLOSED
    assert "GZ0008" not in {h.code for h in core.search.find_nearest_open(GeoPoint(*TIANHE), 30, (), NOW)}
    reopened = await service.set_status("GZ0008", StationStatus.ACTIVE, GUANGZHOU, NOW, actor_id=-3)
    assert reopened.status is StationStatus.ACTIVE
    with pytest.raises(InvalidEdit):
        await service.set_status("GZ0008", StationStatus.CLOSED, GUANGZHOU, NOW, reason="  ", actor_id=-3)
    await service.set_status("GZ0008", StationStatus.CLOSED, GUANGZHOU, NOW, reason="拆迁", actor_id=-3)
    trail = (await service.station_file("GZ0008", GUANGZHOU)).history
    assert [e.action for e in trail][:4] == ["close", "reopen", "close_temporarily", "verify"]
    assert trail[0].reason == "拆迁" and {e.actor_id for e in trail} == {-3}
    # A closed station is still found, and its page still shown, for staff.
    assert (await service.search(GUANGZHOU, StationQuery.parse({"status": "closed"}))).total == 1


async def test_the_station_file_has_its_cases_and_ratings(core: Core) -> None:
    station = await core.station_console.station("GZ0009", GUANGZHOU)
    async with core.sessions() as session, session.begin():
        session.add_all(
            [
                CaseRow(
                    station_id=station.id,
                    region=station.region,
                    kind="wrong_hours",
                    proposal="Mo-Su 08:00-20:00",
                    reporters=2,
                    created_at=NOW,
                ),
                CaseRow(
                    station_id=station.id,
                    region=station.region,
                    kind="closed_now",
                    status=CaseStatus.REJECTED.value,
                    reporters=1,
                    created_at=NOW,
                    decided_at=NOW,
                ),
                RatingRow(
                    station_id=station.id,
                    user_id=1,
                    stars=5,
                    comment="水很凉",
                    created_at=NOW,
                    updated_at=NOW,
                ),
                RatingRow(
                    station_id=station.id, user_id=2, stars=3, comment="", created_at=NOW, updated_at=NOW
                ),
                RatingRow(
                    station_id=station.id, user_id=3, stars=5, comment="", created_at=NOW, updated_at=NOW
                ),
            ]
        )
    file = await core.station_console.station_file("GZ0009", GUANGZHOU)
    assert file.region_name.endswith("天河区")
    # Newest first (the same instant: the later one first).
    assert [(c.kind, c.status) for c in file.cases] == [
        ("closed_now", CaseStatus.REJECTED),
        ("wrong_hours", CaseStatus.OPEN),
    ]
    assert file.ratings.count == 3 and file.ratings.average == pytest.approx(13 / 3)
    assert file.ratings.stars == {5: 2, 3: 1}
    assert [c.text for c in file.ratings.comments] == ["水很凉"]


async def test_an_edit_reaches_the_api_and_nearby_search_here_and_in_another_process(
    settings: Settings, region_lookup: RegionLookup
) -> None:
    """The writer's own API answers the edit at once (its index and cache are patched on commit); a second
    process following the change feed (Redis) answers it as soon as the notification arrives."""
    from aiohttp.test_utils import TestClient, TestServer
    from redis.asyncio import Redis

    from bot.web.app import build_web_app

    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    except Exception as exc:
        service_missing("Redis", exc)
    finally:
        await redis.aclose()
    shared = settings.model_copy(update={"redis_url": REDIS_URL, "api_rate_limit": 0})
    thursday_noon = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    async with open_core(shared) as writer:
        writer.stations.regions = region_lookup
        await writer.stations.save_records([gz(1), gz(2)])
        await writer.reload_index()
        async with open_core(shared, follow_changes=True) as reader:
            clients = [
                TestClient(TestServer(build_web_app(core, clock=lambda: thursday_noon)))
                for core in (writer, reader)
            ]
            for client in clients:
                await client.start_server()
            try:

                async def hours_in_api(client: TestClient) -> str:  # type: ignore[type-arg]
                    async with client.get("/api/v1/stations/GZ0001") as response:
                        assert response.status == 200
                        return str((await response.json())["opening_hours"])

                assert [await hours_in_api(c) for c in clients] == ["24/7", "24/7"]
                point = GeoPoint(*TIANHE)
                assert reader.search.find_nearest_open(point, 5, ("wifi",), thursday_noon) == []
                for _ in range(500):  # until the follower has its place in the feed
                    if reader.stations.change_feed.last_id is not None:
                        break
                    await asyncio.sleep(0.01)
                form = {
                    "name": "天河驿站1号",
                    "lat": str(gz(1).lat),
                    "lon": str(gz(1).lon),
                    "opening_hours": "周一至周五 9:00-17:00",
                    "amenities": ["drinking_water", "wifi"],
                }
                await writer.station_console.edit("GZ0001", form, GUANGZHOU, NOW, actor_id=-1)
                # This process: at once, no waiting.
                assert await hours_in_api(clients[0]) == "Mo-Fr 09:00-17:00"
                hits = writer.search.find_nearest_open(point, 5, ("wifi",), thursday_noon)
                assert [hit.code for hit in hits] == ["GZ0001"]
                # The other process: as soon as the feed tells it.
                deadline = asyncio.get_running_loop().time() + 5
                while await hours_in_api(clients[1]) != "Mo-Fr 09:00-17:00":
                    assert asyncio.get_running_loop().time() < deadline, "the change never arrived"
                    await asyncio.sleep(0.05)
                hits = reader.search.find_nearest_open(point, 5, ("wifi",), thursday_noon)
                assert [hit.code for hit in hits] == ["GZ0001"]
            finally:
                for client in clients:
                    await client.close()


async def test_a_bulk_write_on_sqlite_rebuilds_the_search_table_and_keeps_its_triggers(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from storage import stations_repo

    monkeypatch.setattr(stations_repo, "SEARCH_REBUILD_FROM", 10)
    async with open_core(sqlite_settings) as core:

        async def triggers() -> dict[str, str]:
            async with core.engine.connect() as conn:
                rows = await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
                return {name: sql for name, sql in rows if name.startswith("stations_search")}

        # The migration's triggers are the ones a bulk write puts back.
        assert await triggers() == stations_repo.SEARCH_TRIGGERS
        await core.stations.save_records([gz(n) for n in range(1, 26)])  # bulk: rebuilt
        assert await triggers() == stations_repo.SEARCH_TRIGGERS
        await core.stations.save_records(
            [gz(1, name="越秀新站"), gz(30, name="新河驿站")]
        )  # through triggers
        async with core.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO stations_search(stations_search) VALUES ('integrity-check')")
            )
        service = core.station_console
        assert [
            s.code for s in (await service.search(ADMIN, StationQuery.parse({"q": "越秀新"}))).stations
        ] == ["GZ0001"]
        assert [
            s.code for s in (await service.search(ADMIN, StationQuery.parse({"q": "新河驿"}))).stations
        ] == ["GZ0030"]
        assert (await service.search(ADMIN, StationQuery.parse({"q": "天河驿站2"}))).total == 7  # 2, 20-25


async def test_a_district_may_be_named_as_clerks_say_it(core: Core) -> None:
    """天河 or 天河区 (a district), 广州 or 广州市 (a city), 广东 (a province): searched as their adcodes;
    a name outside one's regions, or of no place at all, is explained."""
    service = core.station_console
    for name in ("天河", "天河区", "广州市", "广州", "广东"):
        page = await service.search(GUANGZHOU, StationQuery.parse({"district": name}))
        assert page.total == 25, name
    assert (await service.search(ADMIN, StationQuery.parse({"district": "福田区"}))).total == 10
    assert (await service.search(ADMIN, StationQuery.parse({"district": "越秀"}))).total == 0
    for name, expected in (("福田", "福田"), ("亚特兰蒂斯", "亚特兰蒂斯")):
        with pytest.raises(InvalidStationQuery) as caught:
            await service.search(GUANGZHOU, StationQuery.parse({"district": name}))
        assert caught.value.field == "district" and expected in caught.value.message
    # Exports take the same names.
    text = b"".join(
        [chunk async for chunk in service.export_csv(ADMIN, StationQuery.parse({"district": "福田"}))]
    )
    assert text.decode("utf-8-sig").count("SZ00") == 10 and "GZ00" not in text.decode("utf-8-sig")
