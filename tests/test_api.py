"""HTTP API v1: the contract of every endpoint, through a real server (aiohttp's TestServer/TestClient).

The nearby answer must be the `yizhan nearby --json` document for the same query; every body must match its
schema in the served OpenAPI document; no input may produce a 500. Sync and GeoJSON tests, which depend on
SQL, run on SQLite and on PostgreSQL (the `settings` fixture).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.app import Core, open_core
from bot.config import Settings
from bot.services.nearby import NearbyService, nearby_json
from bot.web import build_web_app
from bot.web.api import accepts_gzip
from bot.web.h5 import setup_h5
from bot.web.openapi import build_openapi
from bot.web.responses import json_body
from domain.coords import wgs84_to_bd09, wgs84_to_gcj02
from domain.values import GeoPoint, StationRecord, StationStatus
from storage.stations_repo import StationRepository

ROOT = Path(__file__).resolve().parent.parent
BEIJING = timezone(timedelta(hours=8))
#: Wednesday 18 June 2025, 10:30 in Beijing: an ordinary working morning.
NOW = datetime(2025, 6, 18, 10, 30, tzinfo=BEIJING)
TIANHE = (23.1300, 113.2600)

STATIONS = [
    StationRecord(
        code="GZ001",
        name="天河体育中心爱心驿站",
        lat=23.1301,
        lon=113.2601,
        address="广州市天河区天河路299号",
        region="440106",
        host="中国移动广州分公司",
        opening_hours="24/7",
        amenities=("drinking_water", "toilet", "phone_charging"),
        phone="020-12345678",
        manager="李娜",
        verified_at=datetime(2025, 3, 1, tzinfo=UTC),
    ),
    StationRecord(
        code="GZ002",
        name="岗顶工会驿站",
        lat=23.1330,
        lon=113.2630,
        region="440106",
        opening_hours="Mo-Fr 09:00-17:00; PH off",
        amenities=("ebike_charging", "toilet"),
    ),
    StationRecord(
        code="GZ003",
        name="夜班驿站",
        lat=23.1290,
        lon=113.2590,
        opening_hours="Mo-Su 20:00-06:00",
        amenities=("drinking_water",),
    ),
    StationRecord(
        code="GZ004",
        name="暂停服务驿站",
        lat=23.1305,
        lon=113.2605,
        opening_hours="24/7",
        status=StationStatus.TEMPORARILY_CLOSED,
    ),
    StationRecord(
        code="GZ005",
        name="已撤销驿站",
        lat=23.1302,
        lon=113.2602,
        opening_hours="24/7",
        status=StationStatus.CLOSED,
    ),
    StationRecord(code="GZ006", name="时间不详驿站", lat=23.1280, lon=113.2580, amenities=("toilet",)),
    StationRecord(code="BJ001", name="朝阳驿站", lat=39.9219, lon=116.4436, opening_hours="24/7"),
    StationRecord(
        code="SH001",
        name="人民广场驿站",
        lat=31.2304,
        lon=121.4737,
        opening_hours="Mo-Su 08:00-20:00",
        timezone="Asia/Shanghai",
    ),
]


# ------------------------------------------------------------------------------------------ harness


@dataclass
class Api:
    core: Core
    app: web.Application
    client: TestClient[web.Request, web.Application]

    async def get(
        self, path: str, params: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        """(status, headers, decoded JSON body or None)."""
        async with self.client.get(path, params=params, headers=headers) as response:
            raw = await response.read()
            body = json.loads(raw) if raw else None
            return response.status, response.headers, body


@asynccontextmanager
async def serving(settings: Settings, records: list[StationRecord], clock: Any = None) -> AsyncIterator[Api]:
    """A core on `settings` holding `records`, and a test server of the web app over it (no per-client
    rate limit: every request here comes from one address; tests/test_admission.py tests the limit)."""
    settings = settings.model_copy(update={"api_rate_limit": 0})
    async with open_core(settings) as core:
        if records:
            await core.stations.save_records(records)
            await core.reload_index()
        app = build_web_app(core, clock=clock or (lambda: NOW))
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield Api(core, app, client)
        finally:
            await client.close()


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """The read-only fixture data behind one server for the whole module (tests here must not write)."""
    path = tmp_path_factory.mktemp("api") / "api.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", _env_file=None)  # type: ignore[call-arg]
    async with serving(settings, STATIONS) as served:
        yield served


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return build_openapi()


@pytest.fixture(scope="module")
def schema_of(openapi: dict[str, Any]) -> Any:
    """schema_of("NearbyResponse") -> a validator of that component of the served document."""
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


def assert_json_utf8(headers: Mapping[str, str]) -> None:
    assert headers["Content-Type"] == "application/json; charset=utf-8"


def codes(body: dict[str, Any]) -> list[str]:
    return [result["code"] for result in body["results"]]


# ------------------------------------------------------------------------------------------ nearby

NEARBY = "/api/v1/stations/nearby"


@pytest.mark.parametrize(
    ("params", "kwargs"),
    [
        ({"lat": "23.13", "lon": "113.26"}, {}),
        ({"lat": "23.13", "lon": "113.26", "k": "3", "amenity": "toilet"}, {"k": 3, "amenities": ["toilet"]}),
        (
            {"lat": "23.13", "lon": "113.26", "k": "10", "include_closed": "true"},
            {"k": 10, "include_closed": True},
        ),
        (
            {"lat": "23.13", "lon": "113.26", "at": "2025-06-18T22:00:00+08:00"},
            {"at": datetime(2025, 6, 18, 22, tzinfo=BEIJING)},
        ),
        ({"lat": "39.92", "lon": "116.44", "k": "50"}, {"k": 50}),
    ],
)
async def test_nearby_answers_what_yizhan_nearby_json_prints(
    api: Api, schema_of: Any, params: dict[str, str], kwargs: dict[str, Any]
) -> None:
    status, headers, body = await api.get(NEARBY, params)
    assert status == 200
    assert_json_utf8(headers)
    assert headers["Cache-Control"] == "no-store"
    schema_of("NearbyResponse").validate(body)
    point = GeoPoint(float(params["lat"]), float(params["lon"]))
    at = kwargs.pop("at", NOW)
    service = NearbyService(api.core.search, api.core.stations)
    expected = nearby_json(point, at, await service.nearby(point, at=at, **kwargs))
    assert body == json.loads(json.dumps(expected, ensure_ascii=False))
    assert body["results"], "the fixture data must give every query an answer"


async def test_rider_sees_only_open_active_stations_nearest_first(api: Api) -> None:
    _, _, body = await api.get(NEARBY, {"lat": TIANHE[0], "lon": TIANHE[1], "k": "10"})
    # 10:30 on a Wednesday: the night station, the temporarily closed, the closed and the one without hours
    # are all left out.
    assert codes(body) == ["GZ001", "GZ002", "SH001", "BJ001"]
    distances = [r["distance_m"] for r in body["results"]]
    assert distances == sorted(distances)
    assert all(r["open_now"] is True for r in body["results"])


async def test_nearby_body_keeps_chinese_text_unescaped(api: Api) -> None:
    async with api.client.get(NEARBY, params={"lat": TIANHE[0], "lon": TIANHE[1], "k": "1"}) as response:
        raw = await response.read()
    assert "天河体育中心爱心驿站".encode() in raw
    assert b"\\u" not in raw


async def test_nearby_body_is_the_compact_json_of_the_cli_document(api: Api) -> None:
    # Byte for byte, key order included: what `json.dumps` gives without insignificant spaces.
    params = {"lat": TIANHE[0], "lon": TIANHE[1], "k": "10", "include_closed": "1"}
    async with api.client.get(NEARBY, params=params) as response:
        raw = await response.read()
    point = GeoPoint(TIANHE[0], TIANHE[1])
    results = await NearbyService(api.core.search, api.core.stations).nearby(
        point, k=10, at=NOW, include_closed=True
    )
    expected = json.dumps(nearby_json(point, NOW, results), ensure_ascii=False, separators=(",", ":"))
    assert raw == expected.encode()


@pytest.mark.parametrize(
    "data",
    [{"a": 1.5, "b": [None, True, "天河"]}, {1: "integer keys", "nested": {2: [3]}}, [], {"at": "2025"}],
)
def test_json_body_gives_the_bytes_of_compact_json_dumps(data: Any) -> None:
    assert json_body(data) == json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def test_json_body_refuses_what_json_cannot_say() -> None:
    with pytest.raises(TypeError):
        json_body({"a": object()})


@pytest.mark.parametrize(("crs", "forward"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
async def test_a_chinese_map_point_gives_the_answer_of_its_wgs84_point(
    api: Api, crs: str, forward: Any
) -> None:
    lat, lon = forward(*TIANHE)
    assert abs(lat - TIANHE[0]) + abs(lon - TIANHE[1]) > 0.003  # the shift is hundreds of metres
    _, _, shifted = await api.get(NEARBY, {"lat": lat, "lon": lon, "crs": crs, "k": "5"})
    _, _, plain = await api.get(NEARBY, {"lat": TIANHE[0], "lon": TIANHE[1], "k": "5"})
    assert shifted["query"]["lat"] == pytest.approx(TIANHE[0], abs=1e-6)
    assert shifted["query"]["lon"] == pytest.approx(TIANHE[1], abs=1e-6)
    assert codes(shifted) == codes(plain)
    for a, b in zip(shifted["results"], plain["results"], strict=True):
        assert abs(a["distance_m"] - b["distance_m"]) <= 1


async def test_amenities_filter_repeated_or_comma_separated(api: Api) -> None:
    base = {"lat": TIANHE[0], "lon": TIANHE[1], "k": "10", "include_closed": "1"}
    _, _, repeated = await api.get(
        NEARBY, [*base.items(), ("amenity", "toilet"), ("amenity", "ebike_charging")]
    )
    _, _, commas = await api.get(NEARBY, {**base, "amenity": "toilet,ebike_charging"})
    assert codes(repeated) == codes(commas) == ["GZ002"]
    _, _, toilets = await api.get(NEARBY, {**base, "amenity": "toilet"})
    assert codes(toilets) == ["GZ001", "GZ006", "GZ002"]
    assert all("toilet" in r["amenities"] for r in toilets["results"])


async def test_include_closed_adds_stations_closed_now_and_temporarily_closed(api: Api) -> None:
    base = {"lat": TIANHE[0], "lon": TIANHE[1], "k": "10"}
    _, _, open_only = await api.get(NEARBY, base)
    _, _, everything = await api.get(NEARBY, {**base, "include_closed": "true"})
    assert set(codes(open_only)) < set(codes(everything))
    by_code = {r["code"]: r for r in everything["results"]}
    assert by_code["GZ004"]["status"] == "temporarily_closed" and by_code["GZ004"]["open_now"] is False
    assert by_code["GZ003"]["open_now"] is False  # a night station at 10:30
    assert by_code["GZ006"]["open_now"] is None  # hours unknown
    assert "GZ005" not in by_code  # closed for good: not in the network
    _, _, explicit_false = await api.get(NEARBY, {**base, "include_closed": "false"})
    assert explicit_false == open_only


async def test_at_defaults_to_the_clock_and_accepts_an_offset_or_local_time(api: Api) -> None:
    _, _, now = await api.get(NEARBY, {"lat": TIANHE[0], "lon": TIANHE[1]})
    assert now["query"]["at"] == NOW.isoformat()
    _, _, local = await api.get(NEARBY, {"lat": TIANHE[0], "lon": TIANHE[1], "at": "2025-06-18T23:00"})
    assert datetime.fromisoformat(local["query"]["at"]) == datetime(2025, 6, 18, 23, tzinfo=BEIJING)
    assert "GZ003" in codes(local)  # the night station is open at 23:00
    # An unescaped "+" of the offset arrives as a space; it is read as the offset it was.
    status, _, spaced = await api.get(f"{NEARBY}?lat=23.13&lon=113.26&at=2025-06-18T23:00:00+08:00")
    assert status == 200 and datetime.fromisoformat(spaced["query"]["at"]) == datetime(
        2025, 6, 18, 23, tzinfo=BEIJING
    )


@pytest.mark.parametrize("k", ["1", "50"])
async def test_k_from_1_to_50(api: Api, k: str) -> None:
    status, _, body = await api.get(
        NEARBY, {"lat": TIANHE[0], "lon": TIANHE[1], "k": k, "include_closed": "1"}
    )
    assert status == 200
    assert len(body["results"]) == min(int(k), 7)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        (NEARBY, {"lat": "91", "lon": "113"}, "lat"),
        (NEARBY, {"lat": "-90.0001", "lon": "113"}, "lat"),
        (NEARBY, {"lat": "abc", "lon": "113"}, "lat"),
        (NEARBY, {"lat": "NaN", "lon": "113"}, "lat"),
        (NEARBY, {"lat": "inf", "lon": "113"}, "lat"),
        (NEARBY, {"lon": "113"}, "lat"),
        (NEARBY, {"lat": "", "lon": "113"}, "lat"),
        (NEARBY, {"lat": "23"}, "lon"),
        (NEARBY, {"lat": "23", "lon": "181"}, "lon"),
        (NEARBY, {"lat": "23", "lon": "113", "k": "0"}, "k"),
        (NEARBY, {"lat": "23", "lon": "113", "k": "51"}, "k"),
        (NEARBY, {"lat": "23", "lon": "113", "k": "2.5"}, "k"),
        (NEARBY, {"lat": "23", "lon": "113", "k": "9" * 5000}, "k"),
        (NEARBY, {"lat": "23", "lon": "113", "amenity": "sauna"}, "amenity"),
        (NEARBY, {"lat": "23", "lon": "113", "amenity": "toilet,饮水"}, "amenity"),
        (NEARBY, {"lat": "23", "lon": "113", "include_closed": "yes"}, "include_closed"),
        (NEARBY, {"lat": "23", "lon": "113", "crs": "epsg4326"}, "crs"),
        (NEARBY, {"lat": "48.85", "lon": "2.35", "crs": "gcj02"}, "crs"),  # GCJ-02 exists only in China
        (NEARBY, {"lat": "23", "lon": "113", "at": "tomorrow"}, "at"),
        (NEARBY, {"lat": "23", "lon": "113", "at": "2025-13-01T00:00"}, "at"),
        (NEARBY, {"lat": "23", "lon": "113", "at": "1900-01-01T00:00+08:00"}, "at"),
        (NEARBY, {"lat": "23", "lon": "113", "at": "0001-01-01T00:00:00+14:00"}, "at"),
        ("/api/v1/stations", {"bbox": "113,23,114"}, "bbox"),
        ("/api/v1/stations", {"bbox": "113,23,114,x"}, "bbox"),
        ("/api/v1/stations", {"bbox": "114,23,113,24"}, "bbox"),
        ("/api/v1/stations", {"bbox": "113,-91,114,24"}, "bbox"),
        ("/api/v1/stations", {"bbox": "nan,23,114,24"}, "bbox"),
        ("/api/v1/stations", {"since": "yesterday"}, "since"),
        ("/api/v1/stations", {"since": "2025-06-18T10:30:00"}, "since"),  # no offset
        ("/api/v1/stations", {"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ("/api/v1/stations", {"limit": "0"}, "limit"),
        ("/api/v1/stations", {"limit": "5001"}, "limit"),
        ("/api/v1/stations", {"cursor": "not a cursor"}, "cursor"),
        ("/api/v1/stations", {"cursor": "MjAyNS0wNi0xOA"}, "cursor"),  # base64 of a date alone
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(
    api: Api, schema_of: Any, path: str, params: dict[str, str], parameter: str
) -> None:
    status, headers, body = await api.get(path, params)
    assert status == 400, body
    assert_json_utf8(headers)
    schema_of("Error").validate(body)
    assert body["error"]["code"] == "bad_parameter"
    assert body["error"]["parameter"] == parameter
    assert body["error"]["message"]
    assert headers["Access-Control-Allow-Origin"] == "*"


async def test_unknown_station_and_unknown_route_are_json_404s(api: Api, schema_of: Any) -> None:
    for path in ("/api/v1/stations/NOPE", "/api/v1/stations/" + "X" * 100, "/api/v1/nothing", "/nothing"):
        status, headers, body = await api.get(path)
        assert status == 404, path
        assert_json_utf8(headers)
        schema_of("Error").validate(body)
        assert body["error"]["code"] == "not_found"


async def test_a_wrong_method_is_a_json_405(api: Api) -> None:
    async with api.client.delete("/api/v1/stations/GZ001") as response:
        assert response.status == 405
        assert "GET" in response.headers["Allow"]
        assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_an_unexpected_error_is_a_logged_json_500(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        app = build_web_app(core)

        async def boom(request: web.Request) -> web.Response:
            raise RuntimeError("kaput")

        app.router.add_get("/api/v1/boom", boom)
        async with TestClient(TestServer(app)) as client, client.get("/api/v1/boom") as response:
            assert response.status == 500
            assert (await response.json())["error"]["code"] == "internal_error"
            assert "kaput" not in await response.text()
    assert any(
        "kaput" in (r.exc_text or "") or r.exc_info for r in caplog.records if r.levelno >= logging.ERROR
    )


# ------------------------------------------------------------------------------------------ station


async def test_station_detail_has_every_field_and_its_state_now(api: Api, schema_of: Any) -> None:
    status, headers, body = await api.get("/api/v1/stations/GZ002")
    assert status == 200
    assert_json_utf8(headers)
    assert headers["Cache-Control"] == "public, max-age=60"
    assert headers["Access-Control-Allow-Origin"] == "*"
    schema_of("StationDetail").validate(body)
    stored = await api.core.stations.get("GZ002")
    assert body["code"] == "GZ002" and body["name"] == "岗顶工会驿站" and body["region"] == "440106"
    assert body["updated_at"] == stored.updated_at.isoformat()  # type: ignore[union-attr]
    assert body["open_now"] is True  # Wednesday 10:30, Mo-Fr 09:00-17:00
    assert body["closure_reports"] is None
    assert datetime.fromisoformat(body["next_change"]) == datetime(2025, 6, 18, 17, tzinfo=BEIJING)
    _, _, full = await api.get("/api/v1/stations/GZ001")
    assert full["host"] == "中国移动广州分公司" and full["manager"] == "李娜"
    assert full["verified_at"] == "2025-03-01T00:00:00+00:00"
    assert full["amenities"] == ["drinking_water", "toilet", "phone_charging"]


async def test_station_detail_has_its_week_monday_first_with_today(api: Api, schema_of: Any) -> None:
    _, _, body = await api.get("/api/v1/stations/GZ002")  # Mo-Fr 09:00-17:00, asked on Wednesday 2025-06-18
    schema_of("StationDetail").validate(body)
    week = body["week"]
    assert week["today"] == "2025-06-18"
    assert [day["date"] for day in week["days"]] == [f"2025-06-{day}" for day in range(16, 23)]
    workday = [{"start": "09:00", "end": "17:00", "state": "open"}]
    assert [day["intervals"] for day in week["days"]] == [workday] * 5 + [[], []]
    _, _, unknown = await api.get("/api/v1/stations/GZ006")
    assert unknown["week"] is None


async def test_station_detail_says_how_many_reported_it_closed_and_when(
    sqlite_settings: Settings, schema_of: Any
) -> None:
    from storage.models import SubscriptionOfferRow, UserRow

    async with serving(sqlite_settings, STATIONS) as served:
        core = served.core
        station = await core.stations.get("GZ001")
        async with core.sessions() as session, session.begin():
            for user_id in (1, 2):
                seen = NOW - timedelta(days=2)
                session.add(UserRow(id=user_id, amenity_filter=[], created_at=seen, updated_at=seen))
                session.add(SubscriptionOfferRow(user_id=user_id, offered_at=seen))
        here = await core.reports.locate(station.id, GeoPoint(station.lat, station.lon), NOW)
        for user_id in (1, 2):
            await core.reports.submit(user_id, station.id, "closed_now", NOW, evidence=here)
        _, _, body = await served.get("/api/v1/stations/GZ001")
    schema_of("StationDetail").validate(body)
    assert body["closure_reports"] == {"count": 2, "last_at": "2025-06-18T10:30:00+08:00"}
    assert body["status"] == "active"


async def test_station_detail_of_closed_and_unknown_hours_stations(api: Api) -> None:
    _, _, closed = await api.get("/api/v1/stations/GZ005")
    assert closed["status"] == "closed" and closed["open_now"] is False
    _, _, paused = await api.get("/api/v1/stations/GZ004")
    assert paused["status"] == "temporarily_closed" and paused["open_now"] is False
    _, _, unknown = await api.get("/api/v1/stations/GZ006")
    assert unknown["open_now"] is None and unknown["next_change"] is None


async def test_station_codes_are_percent_decoded(sqlite_settings: Settings) -> None:
    record = StationRecord(code="粤-01 A", name="编码含空格", lat=23.1, lon=113.2, opening_hours="24/7")
    async with serving(sqlite_settings, [record]) as api:
        status, _, body = await api.get("/api/v1/stations/" + quote("粤-01 A"))
    assert status == 200 and body["code"] == "粤-01 A"


# ------------------------------------------------------------------------------------------ CORS, health


async def test_cors_on_api_answers_and_preflight(api: Api) -> None:
    _, headers, _ = await api.get(NEARBY, {"lat": "23", "lon": "113"})
    assert headers["Access-Control-Allow-Origin"] == "*"
    for path in (NEARBY, "/api/v1/stations", "/api/v1/stations/GZ001"):
        async with api.client.options(
            path,
            headers={
                "Origin": "https://h5.example.cn",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        ) as response:
            assert response.status == 204, path
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert {"GET", "POST"} <= {
                m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")
            }
            assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    async with api.client.options("/api/v1/nothing") as response:
        assert response.status == 404


async def test_healthz_reports_the_index_and_the_database(api: Api, schema_of: Any) -> None:
    status, headers, body = await api.get("/healthz")
    assert status == 200
    assert_json_utf8(headers)
    schema_of("Health").validate(body)
    # Details the module's earlier tests looked up are in memory; how many depends on the test order.
    assert body.pop("cached") >= 0
    assert body == {
        "status": "ok",
        "stations": 7,
        "database": "ok",
        "redis": "disabled",
        "index": 7,
        "ready": True,
    }


async def test_healthz_is_503_when_the_database_fails(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: StationRepository) -> None:
        raise ConnectionError("database is down")

    monkeypatch.setattr(StationRepository, "ping", broken)
    api.core.forget_health()  # an earlier test's successful check may still be fresh
    status, _, body = await api.get("/healthz")
    assert status == 503
    assert body.pop("cached") >= 0
    assert body == {
        "status": "error",
        "stations": 7,
        "database": "error",
        "redis": "disabled",
        "index": 7,
        "ready": False,
    }


# ------------------------------------------------------------------------------------------ OpenAPI


async def test_openapi_document_is_valid_and_served(api: Api, openapi: dict[str, Any]) -> None:
    validate_openapi(openapi)
    status, headers, served = await api.get("/api/v1/openapi.json")
    assert status == 200
    assert_json_utf8(headers)
    assert served == json.loads(json.dumps(openapi))


def test_every_route_of_the_app_is_documented_and_nothing_else(api: Api, openapi: dict[str, Any]) -> None:
    page = web.Application()
    setup_h5(page)  # the page's own API routes (its strings); the page and its files are not API
    routes = {
        (route.resource.canonical, route.method.lower())
        for app in (api.app, page)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and (app is api.app or route.resource.canonical.startswith("/api/"))
        # The staff console (its pages and its session-bound JSON) is no part of the public API.
        and not route.resource.canonical.startswith("/console")
    }
    documented = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert routes == documented


# ------------------------------------------------------------------------------------------ sync


def network(n: int) -> list[StationRecord]:
    """n stations on a 0.01° grid around Tianhe."""
    return [
        StationRecord(
            code=f"S{i:04d}",
            name=f"同步驿站{i}",
            lat=round(23.10 + 0.01 * (i % 10), 6),
            lon=round(113.20 + 0.01 * (i // 10), 6),
            opening_hours="Mo-Su 08:00-20:00",
            amenities=("toilet",),
        )
        for i in range(n)
    ]


async def sync_all(api: Api, **params: str) -> tuple[list[dict[str, Any]], str, int]:
    """Follow next_cursor to the end: (stations, server_time of the last page, pages)."""
    stations: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        status, headers, body = await api.get("/api/v1/stations", query)
        assert status == 200, body
        assert headers["Cache-Control"] == "no-cache"
        pages += 1
        stations += body["stations"]
        cursor = body["next_cursor"]
        if cursor is None:
            return stations, body["server_time"], pages


async def test_sync_pages_return_every_station_exactly_once_in_order(
    settings: Settings, schema_of: Any
) -> None:
    async with serving(settings, network(23)) as api:
        # Stations saved in one batch share updated_at: the id breaks the tie across page boundaries.
        await api.core.stations.update("S0005", name="改名驿站")
        stations, _, pages = await sync_all(api, limit="5")
        assert pages == 5
        assert sorted(s["code"] for s in stations) == [f"S{i:04d}" for i in range(23)]
        assert [s["updated_at"] for s in stations] == sorted(s["updated_at"] for s in stations)
        assert stations[-1]["code"] == "S0005"
        _, _, page = await api.get("/api/v1/stations", {"limit": "5"})
        schema_of("SyncPage").validate(page)
        exact, _, exact_pages = await sync_all(api, limit="23")
        assert len(exact) == 23 and exact_pages == 1  # no empty extra page when the last one is full


async def test_big_sync_pages_hold_the_same_stations(sqlite_settings: Settings) -> None:
    async with serving(sqlite_settings, network(260)) as api:
        whole, _, whole_pages = await sync_all(api, limit="5000")  # one page, encoded in a thread
        paged, _, pages = await sync_all(api, limit="100")
    assert whole_pages == 1 and pages == 3
    assert whole == paged and len(whole) == 260


async def test_sync_since_server_time_returns_just_what_changed(settings: Settings) -> None:
    async with serving(settings, network(12)) as api:
        everything, server_time, _ = await sync_all(api)
        assert len(everything) == 12
        unchanged, _, _ = await sync_all(api, since=server_time)
        assert unchanged == []
        await api.core.stations.update("S0003", opening_hours="24/7")
        changed, next_time, _ = await sync_all(api, since=server_time)
        assert [s["code"] for s in changed] == ["S0003"]
        assert changed[0]["opening_hours"] == "24/7"
        assert next_time > server_time
        # A station that left the network still comes, marked closed, so copies drop it.
        await api.core.stations.update("S0007", status=StationStatus.CLOSED)
        closed, _, _ = await sync_all(api, since=next_time)
        assert [(s["code"], s["status"]) for s in closed] == [("S0007", "closed")]


async def test_sync_server_time_is_read_before_the_query(settings: Settings) -> None:
    async with serving(settings, network(3)) as api:
        _, _, body = await api.get("/api/v1/stations")
        latest = max(s["updated_at"] for s in body["stations"])
        assert datetime.fromisoformat(body["server_time"]) >= datetime.fromisoformat(latest)
        assert datetime.fromisoformat(body["server_time"]) <= datetime.now(UTC)


async def test_sync_within_a_bounding_box(settings: Settings) -> None:
    async with serving(settings, network(30)) as api:
        inside, _, _ = await sync_all(api, bbox="113.20,23.10,113.21,23.12")
        # Edges included: lon 113.20 and 113.21, lat 23.10, 23.11, 23.12.
        assert sorted(s["code"] for s in inside) == ["S0000", "S0001", "S0002", "S0010", "S0011", "S0012"]
        assert all(113.20 <= s["lon"] <= 113.21 and 23.10 <= s["lat"] <= 23.12 for s in inside)
        paged, _, pages = await sync_all(api, bbox="113.20,23.10,113.21,23.12", limit="4")
        assert sorted(s["code"] for s in paged) == sorted(s["code"] for s in inside) and pages == 2


# ------------------------------------------------------------------------------------------ GeoJSON

GEOJSON = "/api/v1/stations.geojson"


async def test_geojson_is_the_network_with_an_etag_that_revalidates(
    settings: Settings, schema_of: Any
) -> None:
    async with serving(settings, STATIONS) as api:
        async with api.client.get(GEOJSON, headers={"Accept-Encoding": "identity"}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/geo+json; charset=utf-8"
            assert response.headers["Cache-Control"] == "public, max-age=300"
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            etag = response.headers["ETag"]
            document = json.loads(await response.read())
        assert re.fullmatch(r'"[^"]+"', etag)  # strong
        schema_of("FeatureCollection").validate(document)
        features = {f["properties"]["code"]: f for f in document["features"]}
        assert set(features) == {r.code for r in STATIONS} - {"GZ005"}  # closed stations left the network
        assert features["GZ001"]["geometry"]["coordinates"] == [113.2601, 23.1301]

        for candidate in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            identity = {"If-None-Match": candidate, "Accept-Encoding": "identity"}
            async with api.client.get(GEOJSON, headers=identity) as response:
                assert response.status == 304, candidate
                assert response.headers["ETag"] == etag
                assert response.headers["Cache-Control"] == "public, max-age=300"
                assert await response.read() == b""
        async with api.client.get(GEOJSON, headers={"If-None-Match": '"stale"'}) as response:
            assert response.status == 200

        await api.core.stations.update("GZ003", name="夜班驿站（新）")
        async with api.client.get(GEOJSON, headers={"If-None-Match": etag}) as response:
            assert response.status == 200
            assert response.headers["ETag"] != etag
            renamed = json.loads(await response.read())
        assert any(f["properties"]["name"] == "夜班驿站（新）" for f in renamed["features"])


async def test_geojson_features_are_those_of_yizhan_stations_export(settings: Settings) -> None:
    async with serving(settings, STATIONS) as api:
        await api.core.stations.update("GZ002", verified_at=datetime(2025, 5, 1, 9, 30, tzinfo=BEIJING))
        served = json.loads(await api.core.stations.network_geojson())
        out = io.StringIO()
        await api.core.stations.export(out, "geojson")
    exported = json.loads(out.getvalue())
    network = [f for f in exported["features"] if f["properties"]["status"] != "closed"]
    assert served["features"] == network
    by_code = {f["properties"]["code"]: f["properties"] for f in served["features"]}
    assert by_code["GZ002"]["verified_at"] == "2025-05-01T01:30:00+00:00"
    assert by_code["GZ001"]["amenities"] == ["drinking_water", "toilet", "phone_charging"]


async def test_geojson_is_gzipped_for_clients_that_accept_it(sqlite_settings: Settings) -> None:
    async with serving(sqlite_settings, STATIONS) as api:
        async with api.client.get(GEOJSON, headers={"Accept-Encoding": "gzip, deflate"}) as response:
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in response.headers["Vary"]
            gz_etag = response.headers["ETag"]
            zipped = json.loads(await response.read())  # aiohttp decompresses
        async with api.client.get(GEOJSON, headers={"Accept-Encoding": "identity"}) as response:
            plain_etag = response.headers["ETag"]
            plain = json.loads(await response.read())
        assert zipped == plain
        assert gz_etag != plain_etag  # two representations, two strong validators
        async with api.client.get(
            GEOJSON, headers={"If-None-Match": gz_etag, "Accept-Encoding": "gzip"}
        ) as response:
            assert response.status == 304
        async with api.client.get(GEOJSON, headers={"Accept-Encoding": "gzip;q=0, identity"}) as response:
            assert "Content-Encoding" not in response.headers
            assert response.headers["ETag"] == plain_etag


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("x-gzip", True),
        ("", False),
        ("identity", False),
        ("gzip;q=0", False),
        ("br;q=1, gzip;q=0.0", False),
        ("gzip;q=x", False),
    ],
)
def test_accept_encoding_is_read_with_its_quality_values(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


# ------------------------------------------------------------------------------------------ fuzzing

ENDPOINT_PARAMETERS = {
    NEARBY: ("lat", "lon", "k", "amenity", "include_closed", "crs", "at"),
    "/api/v1/stations": ("bbox", "since", "limit", "cursor"),
    GEOJSON: (),
    "/api/v1/openapi.json": (),
    "/healthz": (),
}
junk = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "-0",
            "1e308",
            "1e-320",
            "23.13",
            "113.26",
            "0",
            "50",
            "51",
            "true",
            "gcj02",
            "bd09",
            "toilet",
            "toilet,wifi",
            "2025-06-18T10:30:00+08:00",
            "9999-12-31T23:59:59+00:00",
            "0001-01-01T00:00:00-23:59",
            "113,23,114,24",
            "\x00",
            "%00",
            "MHwx",
            "Ly8v",
        ]
    ),
)


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(list(ENDPOINT_PARAMETERS)),
    data=st.data(),
)
async def test_no_query_makes_the_server_fail(api: Api, path: str, data: st.DataObject) -> None:
    names = st.sampled_from(ENDPOINT_PARAMETERS[path] or ("x",)) | st.text(max_size=8)
    params = data.draw(st.lists(st.tuples(names, junk), max_size=6))
    if path == NEARBY and data.draw(st.booleans()):
        params = [("lat", "23.13"), ("lon", "113.26"), *params]  # reach past the required pair too
    async with api.client.get(path, params=params) as response:
        assert response.status < 500, (path, params, await response.text())
        assert response.content_type in ("application/json", "application/geo+json")
        json.loads(await response.read())


@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=st.text(min_size=1, max_size=80))
async def test_no_station_code_makes_the_server_fail(api: Api, code: str) -> None:
    async with api.client.get("/api/v1/stations/" + quote(code, safe="")) as response:
        assert response.status < 500, (code, await response.text())
        json.loads(await response.read())


# ------------------------------------------------------------------------------------------ command line


async def test_yizhan_serve_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", "LANGUAGE": "en"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--port",
        "0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line
        async with aiohttp.ClientSession() as http, http.get(url.group() + "/healthz") as response:
            assert response.status == 200
            assert await response.json() == {
                "status": "ok",
                "stations": 0,
                "database": "ok",
                "redis": "disabled",
                "index": 0,
                "cached": 0,
                "ready": True,
            }
        # The H5 page comes with the API.
        async with aiohttp.ClientSession() as http, http.get(url.group() + "/") as response:
            assert response.status == 200
            assert "text/html" in response.headers["Content-Type"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
