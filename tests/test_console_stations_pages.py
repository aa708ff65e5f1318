"""The console's station pages through a real aiohttp server and a logged-in browser session: the list keeps
to the clerk's regions (pages, htmx fragments, exports), a station of another region is a 404 to a crafted
URL or POST and stays unchanged, an edit the importer would refuse comes back with each field's problem in
the clerk's language, a saved edit is in the API and the nearby search at once, two clerks editing one
station neither undo each other's saves nor overwrite them unseen, lifecycle actions need what they need."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from sqlalchemy import select

from bot.app import Core, open_core
from bot.config import Settings
from bot.services.roles import Access, Role
from bot.web import build_web_app
from bot.web.console.base import CONSOLE
from domain.values import GeoPoint, StationRecord, StationStatus
from storage.models import ConsoleEventRow
from storage.regions import RegionLookup

PASSWORD = "correct horse battery"
#: A Thursday, 10:00 in China.
T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
TIANHE = (23.129058, 113.310075)  # 440106
FUTIAN = (22.5431, 114.0579)  # 440304
ADMIN = Access(0, ((Role.ADMIN, ""),))
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def station(code: str, name: str, at: tuple[float, float], region: str, **values: Any) -> StationRecord:
    fields: dict[str, Any] = {"opening_hours": "24/7", "address": f"{name}路1号", **values}
    return StationRecord(code=code, name=name, lat=at[0], lon=at[1], region=region, **fields)


STATIONS = [
    *(
        station(f"GZ{n:03d}", f"天河驿站{n}", (TIANHE[0] + n * 1e-4, TIANHE[1]), "440106")
        for n in range(1, 8)
    ),
    station("GZ999", "=cmd|' /C calc'!A0", (TIANHE[0], TIANHE[1] + 1e-3), "440106"),
    station("SZ001", "福田驿站", FUTIAN, "440304"),
]


@dataclass
class Site:
    core: Core
    server: TestServer

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def client(self, username: str, language: str = "en") -> ClientSession:
        client = ClientSession(cookie_jar=CookieJar(unsafe=True), headers={"Accept-Language": language})
        token = await self.csrf(client, "/console/login")
        async with client.post(
            self.url("/console/login"),
            data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/console/"},
            allow_redirects=False,
        ) as response:
            assert response.status == 303, await response.text()
        return client

    async def csrf(self, client: ClientSession, path: str) -> str:
        async with client.get(self.url(path)) as response:
            match = CSRF.search(await response.text())
        assert match, f"{path} has a CSRF field"
        return match.group(1)


@pytest.fixture
async def site(sqlite_settings: Settings, region_lookup: RegionLookup) -> AsyncIterator[Site]:
    settings = sqlite_settings.model_copy(update={"api_rate_limit": 0})
    async with open_core(settings) as core:
        core.stations.regions = region_lookup
        core.console.hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        await core.console.create("gz", "staff", "4401", T0, password=PASSWORD)
        await core.console.create("sz", "staff", "4403", T0, password=PASSWORD)
        app = build_web_app(core, secure_cookies=False)
        for resource in app.router.resources():
            sub = getattr(resource, "_app", None)
            if sub is not None and CONSOLE in sub:
                sub[CONSOLE].clock = lambda: T0
        async with TestServer(app, host="127.0.0.1") as server:
            yield Site(core, server)


def codes_in(html: str) -> list[str]:
    return re.findall(r'<tr data-code="([^"]+)"', html)


async def test_the_list_shows_the_clerks_region_only_and_pages_through_it(site: Site) -> None:
    async with await site.client("gz") as client:
        async with client.get(site.url("/console/stations")) as response:
            html = await response.text()
            assert response.status == 200
        assert codes_in(html) == [f"GZ{n:03d}" for n in range(1, 8)] + ["GZ999"]
        assert "福田" not in html and "8 stations" in html
        # The exports keep the filters.
        async with client.get(site.url("/console/stations?q=天河&status=active")) as response:
            html = await response.text()
        assert 'href="/console/stations/export.csv?q=%E5%A4%A9%E6%B2%B3&amp;status=active"' in html
        # A district of another region finds nothing; one that is neither a name nor an adcode, or the
        # name of a place outside the clerk's regions, is explained. A name is searched as its adcode.
        async with client.get(site.url("/console/stations?district=4403")) as response:
            assert codes_in(await response.text()) == []
        async with client.get(site.url("/console/stations?district=44x")) as response:
            assert response.status == 400
            assert "a district is a name, such as 天河区 or 广州, or an adcode" in await response.text()
        async with client.get(site.url("/console/stations?district=天河")) as response:
            assert codes_in(await response.text())[:2] == ["GZ001", "GZ002"]
        async with client.get(site.url("/console/stations?district=福田")) as response:
            assert response.status == 400
            assert "no province, city or district called 福田 in your regions" in await response.text()
        async with client.get(site.url("/console/stations/export.csv?district=福田")) as response:
            assert response.status == 400
        # htmx gets the results alone; the cursor pages on.
        async with client.get(
            site.url("/console/stations?q=驿站&after=GZ003"), headers={"HX-Request": "true"}
        ) as response:
            fragment = await response.text()
        assert "<html" not in fragment and codes_in(fragment) == ["GZ004", "GZ005", "GZ006", "GZ007"]


async def test_another_regions_station_is_not_found_by_url_or_post(site: Site) -> None:
    before = await site.core.stations.get("SZ001")
    async with await site.client("gz") as client:
        token = await site.csrf(client, "/console/stations")
        async with client.get(site.url("/console/stations/SZ001")) as response:
            assert response.status == 404
            assert "福田" not in await response.text()
        crafted = [
            ("/console/stations/SZ001", {"name": "mine", "lat": "22.5431", "lon": "114.0579"}),
            ("/console/stations/SZ001/lifecycle", {"action": "close", "reason": "gone"}),
            ("/console/stations/SZ001/lifecycle", {"action": "close_temporarily"}),
            ("/console/stations/SZ001/lifecycle", {"action": "verify"}),
        ]
        for path, data in crafted:
            async with client.post(
                site.url(path), data={**data, "csrf_token": token}, allow_redirects=False
            ) as response:
                assert response.status == 404, path
        # Nor does an export reach it, whatever the filter.
        async with client.get(site.url("/console/stations/export.csv?district=440304")) as response:
            assert len((await response.text()).strip().splitlines()) == 1
        # Without the CSRF token nothing is even tried.
        async with client.post(
            site.url("/console/stations/GZ001/lifecycle"), data={"action": "verify"}, allow_redirects=False
        ) as response:
            assert response.status == 403
    assert await site.core.stations.get("SZ001") == before
    assert (await site.core.stations.get("GZ001")).verified_at is None
    async with await site.client("sz") as client:
        async with client.get(site.url("/console/stations/SZ001")) as response:
            assert response.status == 200 and "福田驿站" in await response.text()


async def test_exports_hold_the_selection_with_formulas_disarmed(site: Site, tmp_path: Path) -> None:
    async with await site.client("gz") as client:
        async with client.get(site.url("/console/stations/export.csv?q=GZ99")) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"].startswith('attachment; filename="stations-')
            body = await response.read()
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert [row["code"] for row in rows] == ["GZ999"]
        assert rows[0]["name"] == "'=cmd|' /C calc'!A0"
        async with client.get(site.url("/console/stations/export.xlsx")) as response:
            assert response.status == 200
            path = tmp_path / "stations.xlsx"
            path.write_bytes(await response.read())
    sheet = openpyxl.load_workbook(path).worksheets[0]
    codes = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert codes == [f"GZ{n:03d}" for n in range(1, 8)] + ["GZ999"]
    assert sheet.cell(row=9, column=2).data_type == "s"


async def test_an_edit_the_importer_refuses_comes_back_with_each_fields_problem_in_chinese(
    site: Site,
) -> None:
    before = await site.core.stations.get("GZ001")
    async with await site.client("gz", "zh-CN") as client:
        token = await site.csrf(client, "/console/stations/GZ001")
        form = {
            "csrf_token": token,
            "name": "天河驿站一",
            "lat": "95",
            "lon": str(TIANHE[1]),
            "opening_hours": "Mo-Fr 25:00-26:00",
            "timezone": "Mars/Olympus",
            "address": "体育西路",
        }
        async with client.post(site.url("/console/stations/GZ001"), data=form) as response:
            html = await response.text()
            assert response.status == 422
    errors = dict(re.findall(r'data-testid="error-([a-z_]+)">([^<]+)<', html))
    assert set(errors) == {"position", "opening_hours", "timezone"}
    assert "纬度" in errors["position"] and "超出范围" in errors["position"]
    assert "开放时间" in errors["opening_hours"]
    assert "时区" in errors["timezone"]
    assert 'value="天河驿站一"' in html and 'value="体育西路"' in html  # what was typed stays
    assert await site.core.stations.get("GZ001") == before


async def test_a_saved_edit_is_in_the_api_and_the_nearby_search_at_once(site: Site) -> None:
    core = site.core
    thursday_noon = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    saturday_noon = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
    point = GeoPoint(TIANHE[0] + 2e-4, TIANHE[1])
    async with ClientSession() as anonymous:
        async with anonymous.get(site.url("/api/v1/stations/GZ002")) as response:
            assert (await response.json())["opening_hours"] == "24/7"  # now in the cache
    async with await site.client("gz") as client:
        token = await site.csrf(client, "/console/stations/GZ002")
        form = {
            "csrf_token": token,
            "name": "天河驿站2",
            "address": "天河驿站2路1号",
            "lat": str(TIANHE[0] + 2e-4),
            "lon": str(TIANHE[1]),
            "opening_hours": "周一至周五 9:00-17:00",
            "amenities": ["drinking_water", "wifi"],
            "phone": "020-1234 5678",
        }
        async with client.post(
            site.url("/console/stations/GZ002"), data=form, allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/console/stations/GZ002?saved=edit"
        async with client.get(site.url("/console/stations/GZ002?saved=edit")) as response:
            html = await response.text()
        assert 'data-testid="saved"' in html and 'value="周一至周五 9:00-17:00"' in html
    async with ClientSession() as anonymous:
        async with anonymous.get(site.url("/api/v1/stations/GZ002")) as response:
            detail = await response.json()
    assert detail["opening_hours"] == "Mo-Fr 09:00-17:00" and detail["phone"] == "020-1234 5678"
    assert "wifi" in detail["amenities"]
    assert [h.code for h in core.search.find_nearest_open(point, 3, ("wifi",), thursday_noon)] == ["GZ002"]
    assert "GZ002" not in {h.code for h in core.search.find_nearest_open(point, 10, (), saturday_noon)}
    # Audited as the clerk's account.
    trail = await core.station_admin.history((await core.stations.get("GZ002")).id, ADMIN, 5)
    account = await core.console.by_username("gz")
    assert account is not None
    assert [(e.action, e.actor_id) for e in trail] == [("edit", account.actor_id)]
    assert trail[0].after["opening_hours"] == "Mo-Fr 09:00-17:00"
    # And in the console's own record of privileged actions.
    async with core.sessions() as session:
        events = (
            await session.scalars(select(ConsoleEventRow).where(ConsoleEventRow.target == "GZ002"))
        ).all()
    assert [(e.action, e.username) for e in events] == [("station_edit", "gz")]


async def test_lifecycle_actions_from_the_page(site: Site) -> None:
    async with await site.client("gz") as client:
        token = await site.csrf(client, "/console/stations/GZ003")

        async def act(action: str, reason: str = "") -> Any:
            async with client.post(
                site.url("/console/stations/GZ003/lifecycle"),
                data={"csrf_token": token, "action": action, "reason": reason},
                allow_redirects=False,
            ) as response:
                return response.status, await response.text()

        assert (await act("verify"))[0] == 303
        assert (await act("close_temporarily"))[0] == 303
        assert (await site.core.stations.get("GZ003")).status is StationStatus.TEMPORARILY_CLOSED
        assert (await act("reopen"))[0] == 303
        status, html = await act("close", "   ")
        assert status == 422 and "needs a reason" in html
        assert (await act("explode"))[0] == 400
        assert (await act("close", "拆迁"))[0] == 303
        async with client.get(site.url("/console/stations/GZ003")) as response:
            html = await response.text()
    station = await site.core.stations.get("GZ003")
    assert station.status is StationStatus.CLOSED and station.verified_at == T0
    assert "拆迁" in html and "Closed for good" in html
    assert [
        row for row in re.findall(r"<td>(Verified|Closed temporarily|Reopened|Closed for good)", html)
    ] == [
        "Closed for good",
        "Reopened",
        "Closed temporarily",
        "Verified",
    ]


class _StationForm(HTMLParser):
    """The fields of the page's station form as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.inside = attributes.get("id") == "station-form"
        elif tag == "input" and self.inside and attributes.get("name"):
            if attributes.get("type") == "checkbox" and "checked" not in attributes:
                return
            self.fields.append((attributes["name"] or "", attributes.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


async def station_form(client: ClientSession, url: str) -> list[tuple[str, str]]:
    async with client.get(url) as response:
        parser = _StationForm()
        parser.feed(await response.text())
    assert any(name == "base_name" for name, _ in parser.fields)
    return parser.fields


def typed(fields: list[tuple[str, str]], **values: str) -> list[tuple[str, str]]:
    return [(name, values.get(name, value)) for name, value in fields]


async def test_two_clerks_editing_one_station_neither_undo_nor_silently_overwrite_each_other(
    site: Site,
) -> None:
    core = site.core
    await core.console.create("gz2", "staff", "4401", T0, password=PASSWORD)
    url = site.url("/console/stations/GZ004")
    async with await site.client("gz") as first, await site.client("gz2") as second:
        # Both open the station's page; the first changes the hours and saves.
        seen_first, seen_second = await station_form(first, url), await station_form(second, url)
        form = typed(seen_first, opening_hours="周一至周五 9:00-17:00")
        async with first.post(url, data=form, allow_redirects=False) as response:
            assert response.status == 303
        # The second, from the page opened before, changes the phone only: saved, the hours stay the first's.
        form = typed(seen_second, phone="020-8888 0000")
        async with second.post(url, data=form, allow_redirects=False) as response:
            assert response.status == 303
        station = await core.stations.get("GZ004")
        assert (station.opening_hours, station.phone) == ("Mo-Fr 09:00-17:00", "020-8888 0000")
        # The second also changes the hours from that page: refused, the first's value shown, theirs kept.
        form = typed(seen_second, opening_hours="周六 10:00-12:00")
        async with second.post(url, data=form) as response:
            assert response.status == 409
            html = await response.text()
        assert 'data-testid="form-conflict"' in html
        error = re.search(r'data-testid="error-opening_hours">([^<]+)<', html)
        assert error and "周一至周五 9:00-17:00" in error.group(1)
        assert 'value="周六 10:00-12:00"' in html
        assert (await core.stations.get("GZ004")).opening_hours == "Mo-Fr 09:00-17:00"
        # Saving the form as it came back replaces the first's hours on purpose, and keeps the phone.
        parser = _StationForm()
        parser.feed(html)
        async with second.post(url, data=parser.fields, allow_redirects=False) as response:
            assert response.status == 303
        station = await core.stations.get("GZ004")
        assert (station.opening_hours, station.phone) == ("Sa 10:00-12:00", "020-8888 0000")
        # The audit trail names the clerks by their console usernames, newest first.
        async with first.get(url) as response:
            html = await response.text()
        assert re.findall(r'data-testid="actor">([^<]+)<', html) == ["gz2", "gz2", "gz"]
