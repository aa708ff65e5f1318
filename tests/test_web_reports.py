"""Reports and notices of the H5 page through the HTTP API, on SQLite and PostgreSQL.

A browser reports a station's problem with `POST /api/v1/reports`; staff see it as a case like any other;
the browser follows it with its device token. `GET /api/v1/notices` lists the announcements covering a
position. Every answer is checked against the served OpenAPI document, every refusal is a 4xx JSON error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select

from bot.app import Core, open_core
from bot.config import Settings
from bot.services.announcements import Audience
from bot.web import build_web_app
from bot.web.h5 import setup_h5
from bot.web.openapi import build_openapi
from domain.statuses import CaseStatus
from domain.values import GeoPoint, StationRecord, StationStatus
from storage.models import ReportRow, WebDeviceRow

AT = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)
GZ = (23.13, 113.26)
SZ = (22.54, 114.05)
STAFF_GZ, STAFF_SZ, ADMIN = 11, 12, 16
REPORTS = "/api/v1/reports"
NOTICES = "/api/v1/notices"

RECORDS = [
    StationRecord(
        code="GZ1",
        name="广州驿站",
        lat=GZ[0],
        lon=GZ[1],
        region="440106",
        opening_hours="24/7",
        amenities=("drinking_water", "toilet"),
    ),
    StationRecord(
        code="GZ2", name="广州二号", lat=GZ[0] + 0.01, lon=GZ[1], region="440106", opening_hours="24/7"
    ),
    StationRecord(code="SZ1", name="深圳驿站", lat=SZ[0], lon=SZ[1], region="440304", opening_hours="24/7"),
    StationRecord(
        code="OLD1", name="已撤销", lat=GZ[0], lon=GZ[1] + 0.01, region="440106", status=StationStatus.CLOSED
    ),
]


@dataclass
class Page:
    """A browser's view of the API: a test client, and the core behind it."""

    core: Core
    client: TestClient[web.Request, web.Application]
    now: list[datetime] = field(default_factory=lambda: [AT])

    async def call(
        self, method: str, path: str, *, params: Any = None, body: Any = None, data: Any = None
    ) -> tuple[int, Mapping[str, str], Any]:
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
            kwargs["headers"] = {"Content-Type": "application/json"}
        async with self.client.request(method, path, **kwargs) as response:
            raw = await response.read()
            return response.status, response.headers, json.loads(raw) if raw else None

    async def report(self, **body: Any) -> tuple[int, Mapping[str, str], Any]:
        return await self.call("POST", REPORTS, body=body)


@asynccontextmanager
async def serving(settings: Settings, **overrides: Any) -> AsyncIterator[Page]:
    settings = settings.model_copy(update={"api_rate_limit": 0, "web_report_rate": 0, **overrides})
    async with open_core(settings) as core:
        await core.stations.save_records(RECORDS)
        await core.reload_index()
        await core.roles.grant(STAFF_GZ, "staff", "4401")
        await core.roles.grant(STAFF_SZ, "staff", "4403")
        await core.roles.grant(ADMIN, "admin")
        now = [AT]
        app = build_web_app(core, clock=lambda: now[0])
        setup_h5(app)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield Page(core, client, now)
        finally:
            await client.close()


@pytest.fixture
async def page(settings: Settings) -> AsyncIterator[Page]:
    async with serving(settings) as served:
        yield served


@pytest.fixture
async def sqlite_page(sqlite_settings: Settings) -> AsyncIterator[Page]:
    async with serving(sqlite_settings) as served:
        yield served


@pytest.fixture(scope="module")
def schema_of() -> Callable[[str], Draft202012Validator]:
    openapi = build_openapi()
    registry = Registry().with_resource(
        "urn:yizhan:openapi", Resource.from_contents(openapi, default_specification=DRAFT202012)
    )

    def validator(name: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"urn:yizhan:openapi#/components/schemas/{name}"},
            registry=registry,
            format_checker=FormatChecker(),
        )

    return validator


def refused(status: int, body: Any, schema_of: Any, code: str, expected: int = 400) -> dict[str, Any]:
    assert status == expected, body
    schema_of("Error").validate(body)
    assert body["error"]["code"] == code, body
    return dict(body["error"])


# ------------------------------------------------------------------------------------------ reporting


async def test_a_closure_reported_from_the_page_reaches_staff_as_a_case(page: Page, schema_of: Any) -> None:
    status, _, body = await page.report(station="GZ1", kind="closed_now", text="门关着,贴了通知")
    assert status == 201, body
    schema_of("ReportReceipt").validate(body)
    token = body["device"]
    assert token and body["report"]["status"] == "open"
    assert body["report"]["station"] == {"code": "GZ1", "name": "广州驿站"}

    cases, total = await page.core.reports.open_cases(await page.core.roles.access(STAFF_GZ))
    assert total == 1
    assert cases[0].station.code == "GZ1" and cases[0].kind.value == "closed_now"
    assert cases[0].texts == ("门关着,贴了通知",)
    assert (await page.core.reports.open_cases(await page.core.roles.access(STAFF_SZ)))[1] == 0

    # Only a hash of the token is stored, and the report belongs to no Telegram user.
    async with page.core.sessions() as session:
        devices = list(await session.scalars(select(WebDeviceRow)))
        reports = list(await session.scalars(select(ReportRow)))
    assert len(devices) == 1 and token not in devices[0].token_hash
    assert reports[0].reporter_id is None and reports[0].device_id == devices[0].id

    # The same browser keeps its token: a second report gets none.
    status, _, second = await page.report(
        station="GZ2", kind="wrong_hours", detail="周一至周五 9:00-18:00", device=token
    )
    assert status == 201, second
    assert second["device"] is None


async def test_the_browser_follows_its_report_until_staff_decide(page: Page, schema_of: Any) -> None:
    _, _, first = await page.report(station="GZ1", kind="amenity_broken", detail="toilet")
    token, report_id = first["device"], first["report"]["id"]
    _, _, other = await page.report(station="GZ1", kind="closed_now")  # another browser

    status, _, listed = await page.call("GET", REPORTS, params={"device": token})
    assert status == 200
    schema_of("DeviceReports").validate(listed)
    assert [r["id"] for r in listed["reports"]] == [report_id]

    staff = await page.core.roles.access(STAFF_GZ)
    cases, _ = await page.core.reports.open_cases(staff)
    case = next(c for c in cases if c.kind.value == "amenity_broken")
    await page.core.reports.decide(case.id, "ask", staff, AT)
    _, _, asked = await page.call("GET", f"{REPORTS}/{report_id}", params={"device": token})
    assert asked["report"]["status"] == CaseStatus.NEEDS_INFO.value
    await page.core.reports.decide(case.id, "approve", staff, AT + timedelta(minutes=5))

    status, _, one = await page.call("GET", f"{REPORTS}/{report_id}", params={"device": token})
    assert status == 200
    schema_of("DeviceReportAnswer").validate(one)
    assert one["report"]["status"] == "approved"
    assert one["report"]["decided_at"] == (AT + timedelta(minutes=5)).isoformat()
    assert "toilet" not in (await page.core.stations.get("GZ1")).amenities

    # Another browser's token does not show it.
    status, _, body = await page.call("GET", f"{REPORTS}/{report_id}", params={"device": other["device"]})
    refused(status, body, schema_of, "not_found", 404)


async def test_web_closure_reports_never_hide_a_station_by_default(page: Page) -> None:
    for _ in range(5):  # five browsers at the door
        status, _, body = await page.report(station="GZ1", kind="closed_now", lat=GZ[0], lon=GZ[1])
        assert status == 201, body
    assert (await page.core.stations.get("GZ1")).status is StationStatus.ACTIVE
    async with page.core.sessions() as session:
        weights = list(await session.scalars(select(ReportRow.weight)))
        located = list(await session.scalars(select(ReportRow.distance_m)))
    assert weights == [0.0] * 5
    assert located == [0] * 5  # the distance is kept, never the position


async def test_with_a_web_weight_an_on_site_known_browser_counts_once(settings: Settings) -> None:
    async with serving(settings, web_report_weight=5.0, auto_hide_reports=2.0) as page:
        _, _, first = await page.report(station="GZ2", kind="closed_now", lat=GZ[0], lon=GZ[1])
        token = first["device"]
        page.now[0] = AT + timedelta(hours=2)
        # Too new a browser: nothing.
        await page.report(station="GZ1", kind="closed_now", device=token, lat=GZ[0], lon=GZ[1])
        assert (await page.core.stations.get("GZ1")).status is StationStatus.ACTIVE
        page.now[0] = AT + timedelta(hours=25)
        # Known for a day, but far away: nothing.
        await page.report(station="SZ1", kind="closed_now", device=token, lat=GZ[0], lon=GZ[1])
        assert (await page.core.stations.get("SZ1")).status is StationStatus.ACTIVE
        # Known for a day and at the door: the weight, capped at REPORTER_MAX_WEIGHT (2), hides it.
        status, _, body = await page.report(
            station="GZ2", kind="closed_now", device=token, lat=GZ[0] + 0.01, lon=GZ[1]
        )
        assert status == 201, body
        assert (await page.core.stations.get("GZ2")).status is StationStatus.TEMPORARILY_CLOSED


@pytest.mark.parametrize(
    ("body", "status", "code", "parameter", "reason"),
    [
        ({"station": "NOPE", "kind": "closed_now"}, 404, "unknown_station", "station", None),
        ({"station": "OLD1", "kind": "closed_now"}, 404, "unknown_station", "station", None),
        ({"station": "GZ1", "kind": "on_fire"}, 400, "invalid_report", "kind", "kind"),
        (
            {"station": "GZ1", "kind": "wrong_hours", "detail": "周八 25点"},
            400,
            "invalid_report",
            "detail",
            "hours",
        ),
        ({"station": "GZ1", "kind": "wrong_hours"}, 400, "invalid_report", "detail", "hours_missing"),
        ({"station": "GZ1", "kind": "other", "text": "x" * 1001}, 400, "invalid_report", "text", "too_long"),
        ({"station": "GZ1", "kind": "other", "text": "  "}, 400, "invalid_report", "text", "text_missing"),
        (
            {"station": "GZ1", "kind": "amenity_broken", "detail": "wifi"},
            400,
            "invalid_report",
            "detail",
            "amenity_not_listed",
        ),
        (
            {"station": "GZ1", "kind": "amenity_broken", "detail": "piano"},
            400,
            "invalid_report",
            "detail",
            "unknown_amenity",
        ),
        (
            {"station": "GZ1", "kind": "wrong_location", "detail": "north"},
            400,
            "invalid_report",
            "detail",
            "location",
        ),
        ({"kind": "closed_now"}, 400, "bad_parameter", "station", None),
        ({"station": 7, "kind": "closed_now"}, 400, "bad_parameter", "station", None),
        ({"station": "GZ1"}, 400, "bad_parameter", "kind", None),
        ({"station": "GZ1", "kind": "closed_now", "device": "short"}, 400, "bad_parameter", "device", None),
        ({"station": "GZ1", "kind": "closed_now", "device": 5}, 400, "bad_parameter", "device", None),
        ({"station": "GZ1", "kind": "closed_now", "lat": 23.1}, 400, "bad_parameter", "lon", None),
        ({"station": "GZ1", "kind": "closed_now", "lat": 91, "lon": 113}, 400, "bad_parameter", "lat", None),
        (
            {"station": "GZ1", "kind": "closed_now", "lat": float("nan"), "lon": 113},
            400,
            "bad_parameter",
            "lat",
            None,
        ),
        (
            {"station": "GZ1", "kind": "closed_now", "lat": "23", "lon": 113},
            400,
            "bad_parameter",
            "lat",
            None,
        ),
        ({"station": "G" * 65, "kind": "closed_now"}, 400, "bad_parameter", "station", None),
        (
            {"station": "GZ1", "kind": "wrong_hours", "detail": "9" * 501},
            400,
            "bad_parameter",
            "detail",
            None,
        ),
    ],
)
async def test_a_bad_report_is_a_clear_4xx_and_records_nothing(
    page: Page,
    schema_of: Any,
    body: dict[str, Any],
    status: int,
    code: str,
    parameter: str,
    reason: str | None,
) -> None:
    got, _, answer = await page.report(**body)
    error = refused(got, answer, schema_of, code, status)
    assert error.get("parameter") == parameter
    assert error.get("reason") == reason
    async with page.core.sessions() as session:
        assert list(await session.scalars(select(WebDeviceRow))) == []
        assert list(await session.scalars(select(ReportRow))) == []


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"null"])
async def test_a_body_that_is_not_a_json_object_is_a_400(page: Page, schema_of: Any, raw: bytes) -> None:
    status, _, body = await page.call("POST", REPORTS, data=raw)
    refused(status, body, schema_of, "bad_request")


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    st.sampled_from(
        ["GZ1", "OLD1", "closed_now", "wrong_hours", "wrong_location", "amenity_broken", "other"]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_FIELDS = st.sampled_from(["station", "kind", "detail", "text", "device", "lat", "lon", "extra"])


@given(body=st.dictionaries(_FIELDS, _VALUES, max_size=7))
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_no_report_body_makes_the_server_fail(sqlite_page: Page, body: dict[str, Any]) -> None:
    status, _, answer = await sqlite_page.report(**body)
    assert status in (201, 400, 404, 429), (body, answer)


async def test_a_huge_body_is_refused_unread(page: Page, schema_of: Any) -> None:
    status, _, body = await page.call("POST", REPORTS, data=b'{"text": "' + b"x" * 100_000 + b'"}')
    refused(status, body, schema_of, "payload_too_large", 413)


async def test_per_browser_limits_are_the_bots(settings: Settings, schema_of: Any) -> None:
    async with serving(settings, report_daily_limit=2) as page:
        _, _, first = await page.report(station="GZ1", kind="closed_now")
        token = first["device"]
        status, headers, body = await page.report(station="GZ1", kind="closed_now", device=token)
        refused(status, body, schema_of, "report_too_soon", 429)
        assert 0 < int(headers["Retry-After"]) <= 3600
        status, _, body = await page.report(station="GZ2", kind="closed_now", device=token)
        assert status == 201, body
        status, _, body = await page.report(station="SZ1", kind="closed_now", device=token)
        refused(status, body, schema_of, "report_limit", 429)


async def test_one_address_may_send_a_few_reports_an_hour(settings: Settings, schema_of: Any) -> None:
    async with serving(settings, web_report_rate=6.0, web_report_burst=2) as page:
        assert (await page.report(station="GZ1", kind="closed_now"))[0] == 201
        assert (await page.report(station="GZ2", kind="closed_now"))[0] == 201
        status, headers, body = await page.report(station="SZ1", kind="closed_now")
        refused(status, body, schema_of, "rate_limited", 429)
        assert int(headers["Retry-After"]) > 60
        # Reading one's reports is not limited by it.
        assert (await page.call("GET", REPORTS, params={"device": "A" * 43}))[0] == 200


async def test_a_browser_forgets_its_reports_as_a_rider_does_with_forget(page: Page, schema_of: Any) -> None:
    """DELETE /reports?device=: the reports stay with staff as cases, nothing ties them to the browser any
    more, and the token is gone; an unknown or malformed token is a clear 4xx."""
    _, _, first = await page.report(station="GZ1", kind="amenity_broken", detail="toilet")
    token = first["device"]
    _, _, second = await page.report(station="GZ2", kind="closed_now", device=token)
    assert second["device"] is None  # the same browser
    _, _, other = await page.report(station="GZ1", kind="closed_now")  # another browser

    status, _, body = await page.call("DELETE", REPORTS, params={"device": token})
    assert status == 200
    schema_of("Forgotten").validate(body)
    assert body == {"forgotten": 2}
    async with page.core.sessions() as session:
        reports = list(await session.scalars(select(ReportRow)))
        devices = list(await session.scalars(select(WebDeviceRow)))
    assert len(reports) == 3 and sorted(r.device_id is None for r in reports) == [False, True, True]
    assert len(devices) == 1  # the other browser's
    status, _, listed = await page.call("GET", REPORTS, params={"device": token})
    assert (status, listed) == (200, {"reports": []})
    status, _, body = await page.call("DELETE", REPORTS, params={"device": token})
    refused(status, body, schema_of, "not_found", 404)
    status, _, body = await page.call("DELETE", REPORTS, params={"device": "x"})
    assert status == 400
    # The other browser keeps its report; staff keep all three as cases.
    status, _, listed = await page.call("GET", REPORTS, params={"device": other["device"]})
    assert len(listed["reports"]) == 1
    staff = await page.core.roles.access(STAFF_GZ)
    cases, _ = await page.core.reports.open_cases(staff)
    assert len(cases) == 3


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        (REPORTS, {}, 400, "bad_parameter"),
        (REPORTS, {"device": "bad token!"}, 400, "bad_parameter"),
        (f"{REPORTS}/1", {}, 400, "bad_parameter"),
        (f"{REPORTS}/abc", {"device": "A" * 43}, 404, "not_found"),
        (f"{REPORTS}/0", {"device": "A" * 43}, 404, "not_found"),
        (f"{REPORTS}/99999999999999999999", {"device": "A" * 43}, 404, "not_found"),
        (f"{REPORTS}/1", {"device": "A" * 43}, 404, "not_found"),
    ],
)
async def test_following_with_a_bad_token_or_id_is_a_4xx(
    page: Page, schema_of: Any, path: str, params: dict[str, str], status: int, code: str
) -> None:
    got, _, body = await page.call("GET", path, params=params)
    refused(got, body, schema_of, code, status)


async def test_an_unknown_token_has_no_reports(page: Page) -> None:
    status, _, body = await page.call("GET", REPORTS, params={"device": "A" * 43})
    assert (status, body) == (200, {"reports": []})


# ------------------------------------------------------------------------------------------ notices


async def announce(core: Core, text: str, audience: Audience, at: datetime, **kwargs: Any) -> int:
    view = await core.announcements.create(await core.roles.access(ADMIN), text, audience, at, **kwargs)
    return view.id


async def test_notices_cover_the_positions_in_their_audience(
    page: Page, schema_of: Any, caplog: pytest.LogCaptureFixture
) -> None:
    core = page.core
    everyone = await announce(
        core, "全国:<b>高温</b>注意防暑 &amp; 补水", Audience(""), AT - timedelta(days=3)
    )
    guangzhou = await announce(core, "广州送清凉活动", Audience("4401"), AT - timedelta(days=2))
    near = await announce(
        core, "天河驿站周末义诊", Audience("44", GeoPoint(*GZ), 5.0), AT - timedelta(days=1)
    )
    shenzhen = await announce(core, "深圳招聘会", Audience("4403"), AT - timedelta(hours=5))
    cancelled = await announce(core, "取消的通知", Audience(""), AT - timedelta(hours=4))
    await core.announcements.cancel(cancelled, await core.roles.access(ADMIN))
    await announce(
        core, "明天的通知", Audience(""), AT - timedelta(hours=3), scheduled_at=AT + timedelta(days=1)
    )
    await announce(core, "太旧的通知", Audience(""), AT - timedelta(days=40))

    caplog.set_level(logging.DEBUG)
    status, headers, body = await page.call("GET", NOTICES, params={"lat": GZ[0], "lon": GZ[1]})
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    schema_of("Notices").validate(body)
    assert [n["id"] for n in body["notices"]] == [near, guangzhou, everyone]
    assert body["notices"][2]["text"] == "全国:高温注意防暑 & 补水"

    _, _, body = await page.call("GET", NOTICES, params={"lat": SZ[0], "lon": SZ[1]})
    assert [n["id"] for n in body["notices"]] == [shenzhen, everyone]
    _, _, body = await page.call("GET", NOTICES, params={"lat": 39.92, "lon": 116.44})  # Beijing
    assert [n["id"] for n in body["notices"]] == [everyone]
    # (aiohttp's test server logs query strings; `yizhan serve` logs paths only, see test_privacy.py.)
    logged = " ".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "23.13" not in logged and "113.26" not in logged


async def test_a_crowd_asking_for_notices_reads_the_announcements_once_per_few_seconds(page: Page) -> None:
    """Every H5 page with a position asks for notices: within NOTICES_CACHE_S of a read the next ones come
    from memory, a crowd arriving together shares one read, and a new announcement shows after it."""
    from sqlalchemy import event

    from bot.services.notices import NoticeService

    core = page.core
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM announcements" in statement:
            reads.append(statement)

    event.listen(core.engine.sync_engine, "before_cursor_execute", count)
    try:
        clock = [100.0]
        service = NoticeService(core.sessions, core.stations.regions, monotonic=lambda: clock[0])
        first = await announce(core, "广州送清凉活动", Audience("4401"), AT - timedelta(hours=2))
        point = GeoPoint(*GZ)
        crowd = await asyncio.gather(*(service.covering(point, AT) for _ in range(50)))
        assert all([n.id for n in notices] == [first] for notices in crowd)
        assert len(reads) == 1
        second = await announce(core, "天河义诊", Audience("4401"), AT - timedelta(hours=1))
        clock[0] += 4.9
        assert [n.id for n in await service.covering(point, AT)] == [first]  # from memory
        assert len(reads) == 1
        clock[0] += 0.2
        assert [n.id for n in await service.covering(point, AT)] == [second, first]
        assert len(reads) == 2
    finally:
        event.remove(core.engine.sync_engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "lat"),
        ({"lat": "23.1"}, "lon"),
        ({"lat": "x", "lon": "1"}, "lat"),
        ({"lat": "1", "lon": "1", "crs": "utm"}, "crs"),
    ],
)
async def test_notices_need_a_position(
    page: Page, schema_of: Any, params: dict[str, str], parameter: str
) -> None:
    status, _, body = await page.call("GET", NOTICES, params=params)
    assert refused(status, body, schema_of, "bad_parameter")["parameter"] == parameter


# ------------------------------------------------------------------------------------ the page's strings


@pytest.mark.parametrize("locale", ["zh_Hans", "zh-hant", "en"])
async def test_ui_strings_match_the_document(page: Page, schema_of: Any, locale: str) -> None:
    status, _, body = await page.call("GET", f"/api/v1/ui/{locale}.json")
    assert status == 200
    schema_of("UiCatalogue").validate(body)
    status, _, body = await page.call("GET", "/api/v1/ui/xx.json")
    refused(status, body, schema_of, "unknown_locale", 404)
