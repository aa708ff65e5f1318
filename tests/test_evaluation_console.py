"""The console's analytics API and exports through a real server: staff see their own region's station
evaluation and nothing of another's, whatever the URL says; the CSV and XLSX exports carry the same table
in the staff member's language."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import h3
import openpyxl
import pytest
from test_console import Console, add_account, login, make_console

from bot.config import Settings
from bot.i18n import translator
from bot.services.evaluation import UsageKind
from bot.web.console.analytics import EVALUATION_PAGE, MAX_EVALUATION_PAGE
from domain.values import StationRecord

API = "/console/api/analytics"


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    async for site in make_console(settings):
        yield site


async def logged_in(console: Console, username: str, region: str = "4401", role: str = "staff") -> Any:
    await add_account(console.core, username, role=role, region=region)
    client = console.client()
    response = await login(console, client, username)
    assert response.status == 303
    return client


async def get_json(client: Any, url: str) -> tuple[int, Any]:
    async with client.get(url, allow_redirects=False) as response:
        return response.status, await response.json() if response.content_type == "application/json" else None


async def test_staff_read_their_region_and_are_refused_another(console: Console) -> None:
    gz1 = (await console.core.stations.get("GZ1")).id
    for _ in range(3):
        console.core.evaluation.record(gz1, UsageKind.NAVIGATE, console.clock())
    async with await logged_in(console, "gz-clerk") as client:
        status, body = await get_json(client, console.url(f"{API}/stations?region=4401"))
        assert status == 200
        assert {s["code"] for s in body["stations"]} == {"GZ1", "GZ2"}
        assert next(s for s in body["stations"] if s["code"] == "GZ1")["navigations"] == 3
        # Without a region: the staff member's own.
        status, body = await get_json(client, console.url(f"{API}/stations"))
        assert (status, body["region"]) == (200, "4401")
        # Crafted URLs: Shenzhen, the whole province, everything, or nonsense.
        for region in ("4403", "440304", "44", "4"):
            status, body = await get_json(client, console.url(f"{API}/stations?region={region}"))
            assert status in (400, 403), region
            assert "stations" not in body
        for query in (
            "region=44%25",
            "region=4401&since=2026-13-01",
            "region=4401&since=2026-12-05&until=2026-12-01",
        ):
            status, body = await get_json(client, console.url(f"{API}/stations?{query}"))
            assert status == 400 and body["error"]["code"] == "bad_parameter", query
        for fmt in ("csv", "xlsx"):
            async with client.get(console.url(f"/console/analytics/stations.{fmt}?region=4403")) as response:
                assert response.status == 403
                assert "SZ1" not in await response.text(errors="replace")


async def test_an_admin_reads_any_region(console: Console) -> None:
    async with await logged_in(console, "boss", role="admin", region="") as client:
        status, body = await get_json(client, console.url(f"{API}/stations?region=4403"))
    assert status == 200 and [s["code"] for s in body["stations"]] == ["SZ1"]


async def test_without_a_session_the_api_sends_to_the_login_page(console: Console) -> None:
    async with console.client() as client:
        async with client.get(console.url(f"{API}/stations?region=4401"), allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"].startswith("/console/login")


async def test_exports_carry_the_table_in_the_staff_members_language(console: Console) -> None:
    zh = translator("zh_Hans").gettext
    async with await logged_in(console, "clerk") as client:
        headers = {"Accept-Language": "zh-CN"}
        async with client.get(
            console.url("/console/analytics/stations.csv?region=4401"), headers=headers
        ) as r:
            assert r.status == 200
            assert r.headers["Content-Disposition"].startswith('attachment; filename="stations-4401-')
            text = (await r.read()).decode("utf-8")
        async with client.get(
            console.url("/console/analytics/stations.xlsx?region=4401"), headers=headers
        ) as r:
            assert r.status == 200
            workbook = openpyxl.load_workbook(io.BytesIO(await r.read()))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    sheet = [list(row) for row in workbook.active.iter_rows(values_only=True)]
    assert rows[0][:3] == [zh("Rank"), zh("Code"), zh("Name")] == ["排名", "编号", "名称"]
    assert sorted(row[1] for row in rows[1:]) == ["GZ1", "GZ2"]
    assert [str(cell) for cell in sheet[0]] == rows[0]
    assert sorted(row[1] for row in sheet[1:]) == ["GZ1", "GZ2"]


async def add_many_stations(console: Console, count: int) -> set[str]:
    """`count` more stations in Guangzhou's Tianhe district, a few of them used."""
    records = [
        StationRecord(
            code=f"GZX{i:04d}",
            name=f"Tianhe {i}",
            lat=23.10 + i * 0.0001,
            lon=113.30 + i * 0.0001,
            region="440106",
            opening_hours="24/7",
        )
        for i in range(count)
    ]
    await console.core.stations.save_records(records)
    for i in range(0, count, 7):
        station = await console.core.stations.get(f"GZX{i:04d}")
        console.core.evaluation.record(station.id, UsageKind.VIEW, console.clock())
    return {record.code for record in records} | {"GZ1", "GZ2"}


async def test_a_large_region_comes_in_bounded_pages_and_the_exports_stay_whole(console: Console) -> None:
    codes = await add_many_stations(console, 2 * MAX_EVALUATION_PAGE + 33)
    url = console.url(f"{API}/stations?region=4401")
    async with await logged_in(console, "clerk") as client:
        status, first = await get_json(client, url)
        assert status == 200
        assert (first["total"], first["offset"], first["limit"]) == (len(codes), 0, EVALUATION_PAGE)
        assert [s["rank"] for s in first["stations"]] == list(range(1, EVALUATION_PAGE + 1))
        # Walking the pages at the largest size gives every station once, in the region's ranking.
        seen: list[dict[str, Any]] = []
        offset = 0
        while True:
            status, page = await get_json(client, f"{url}&offset={offset}&limit={MAX_EVALUATION_PAGE}")
            assert status == 200 and page["total"] == len(codes)
            assert len(page["stations"]) <= MAX_EVALUATION_PAGE
            if not page["stations"]:
                break
            seen.extend(page["stations"])
            offset += len(page["stations"])
        assert [s["rank"] for s in seen] == list(range(1, len(codes) + 1))
        assert {s["code"] for s in seen} == codes
        assert seen[:EVALUATION_PAGE] == first["stations"]
        # Past the end: no stations, the same total.
        status, beyond = await get_json(client, f"{url}&offset={len(codes) + 5}")
        assert (status, beyond["stations"], beyond["total"]) == (200, [], len(codes))
        for query in (f"limit={MAX_EVALUATION_PAGE + 1}", "limit=0", "limit=x", "offset=-1", "offset=1e3"):
            status, body = await get_json(client, f"{url}&{query}")
            assert status == 400 and body["error"]["parameter"] == query.split("=")[0], query
            assert "stations" not in body
        async with client.get(console.url("/console/analytics/stations.csv?region=4401")) as r:
            text = (await r.read()).decode("utf-8")
        async with client.get(console.url("/console/analytics/stations.xlsx?region=4401")) as r:
            workbook = openpyxl.load_workbook(io.BytesIO(await r.read()))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]
    ranked = [s["code"] for s in seen]
    assert [row[1] for row in rows] == ranked
    assert [row[1] for row in list(workbook.active.iter_rows(values_only=True))[1:]] == ranked


# -- demand, gaps, suggestions ----------------------------------------------------------------------------

GZ_CELL = (23.13, 113.32)
GZ_SPARSE = (23.20, 113.40)
SZ_CELL = (22.54, 114.05)


async def count_searches(console: Console) -> None:
    """Guangzhou: a busy cell with no open station near (12 searches by day, 6 at night) and a quiet one
    (3 searches, below k); Shenzhen: 8 searches."""
    counter = console.core.demand.counter
    day = console.clock()  # 10:00 in China
    night = day + timedelta(hours=13)  # 23:00
    for _ in range(12):
        counter.count(*GZ_CELL, day, "bot", ("toilet",), None)
    for _ in range(6):
        counter.count(*GZ_CELL, night, "h5", (), 2500.0)
    for _ in range(3):
        counter.count(*GZ_SPARSE, day, "api", (), None)
    for _ in range(8):
        counter.count(*SZ_CELL, day, "bot", (), 200.0)
    await console.core.demand.flush()


def all_cells(body: Any) -> list[dict[str, Any]]:
    return list(body.get("cells", []))


async def test_demand_gaps_hours_and_suggestions_of_the_region_only_and_k_anonymous(console: Console) -> None:
    await count_searches(console)
    async with await logged_in(console, "planner") as client:
        status, demand = await get_json(client, console.url(f"{API}/demand?region=4401"))
        assert status == 200
        [cell] = all_cells(demand)
        assert (cell["searches"], cell["night"], cell["unmet"]) == (18, 6, 18)
        assert (cell["unmet_day"], cell["unmet_night"]) == (12, 6)
        assert cell["unmet_by_amenity"] == {"toilet": 12}
        assert cell["region"].startswith("4401")
        assert demand["hidden_cells"] == 1  # the quiet cell: how many, never which
        assert h3.latlng_to_cell(*GZ_SPARSE, 8) not in str(demand)
        assert all(c["searches"] >= 5 for c in all_cells(demand))

        status, gaps = await get_json(client, console.url(f"{API}/gaps?region=4401"))
        assert status == 200 and [c["cell"] for c in all_cells(gaps)] == [cell["cell"]]

        status, hours = await get_json(client, console.url(f"{API}/hours?region=4401"))
        assert status == 200 and len(hours["hours"]) == 168
        # Saturday (2026-12-05) 10:00 and 23:00 in China; the quiet cell adds nothing.
        assert hours["hours"][5 * 24 + 10] == 12 and hours["hours"][5 * 24 + 23] == 6
        assert sum(hours["hours"]) == 18

        status, suggested = await get_json(client, console.url(f"{API}/suggestions?region=4401&n=2"))
        assert status == 200
        assert suggested["unmet_total"] == 18
        assert [s["covered"] for s in suggested["suggestions"]] == [18]
        assert suggested["suggestions"][0]["cumulative_share"] == pytest.approx(1.0)

        # Shenzhen's cells are not Guangzhou's staff's to see, however the URL is written.
        for path in ("demand", "gaps", "hours", "suggestions"):
            for region in ("4403", "44", "440304"):
                status, body = await get_json(client, console.url(f"{API}/{path}?region={region}"))
                assert status == 403, (path, region)
                assert "cells" not in body and "hours" not in body and "suggestions" not in body
        for query in ("n=0", "n=101", "n=x"):
            status, body = await get_json(client, console.url(f"{API}/suggestions?region=4401&{query}"))
            assert status == 400 and body["error"]["parameter"] == "n"

    async with await logged_in(console, "sz-planner", region="4403") as client:
        status, demand = await get_json(client, console.url(f"{API}/demand?region=4403"))
        assert status == 200 and [c["searches"] for c in all_cells(demand)] == [8]
        status, gaps = await get_json(client, console.url(f"{API}/gaps?region=4403"))
        assert all_cells(gaps) == []  # an open station 200 m away: met
