"""The console's analytics API and exports through a real server: staff see their own region's station
evaluation and nothing of another's, whatever the URL says; the CSV and XLSX exports carry the same table
in the staff member's language."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import pytest
from test_console import Console, add_account, login, make_console

from bot.config import Settings
from bot.i18n import translator
from bot.services.evaluation import UsageKind

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
