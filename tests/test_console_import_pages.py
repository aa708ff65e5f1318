"""The console's import and moderation pages through a real server on SQLite and PostgreSQL: a sheet with a
bad row checked, fixed and uploaded again, committed once with progress; the upload limit; region scope
against crafted URLs and POSTs; the moderation queue deciding exactly once between the console and the bot;
and a clerk importing a sheet with a bad row in headless Chromium."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, FormData
from cdp import Chromium, require_chromium
from pydantic import SecretStr
from sqlalchemy import select
from test_console import PASSWORD, Console, add_account, csrf_of, login, make_console

from bot.config import Settings
from bot.i18n import translator
from bot.services.announcements import Audience
from bot.services.reports import AlreadyDecided, Decision
from domain.values import StationStatus
from localapi import LocalBotAPI
from storage.importers import ImportLimits
from storage.models import ConsoleEventRow

HEADER = "站点编号,站点名称,纬度,经度,开放时间\n"
GOOD = "GZ-A,天河驿站,23.1291,113.3244,周一至周五 9:00-17:00\n"
BAD = "GZ-B,越秀驿站,二十三,113.2644,全天\n"
FIXED = "GZ-B,越秀驿站,23.1291,113.2644,全天\n"
SHENZHEN = "SZ-A,福田驿站,22.5431,114.0579,24/7\n"
BOT_STAFF = 9001  # a Telegram staff member of Guangzhou, deciding in the bot
RIDER = 9101
AT = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
async def console(settings: Settings, tmp_path: Path) -> AsyncIterator[Console]:
    settings = settings.model_copy(
        update={"trusted_proxies": ("127.0.0.1/32",), "console_import_dir": tmp_path / "imports"}
    )
    async for site in make_console(settings):
        site.core.imports.directory = tmp_path / "imports"
        yield site


async def logged_in(site: Console, username: str, region: str = "4401", role: str = "staff") -> ClientSession:
    await add_account(site.core, username, role, region)
    client = site.client()
    response = await login(site, client, username, PASSWORD)
    assert response.status == 303
    return client


async def upload_htmx(site: Console, client: ClientSession, content: bytes, name: str = "站点.csv") -> Any:
    """As the page's htmx form sends it: multipart, the CSRF token in a header."""
    token = await csrf_of(client, site.url("/console/import"))
    form = FormData()
    form.add_field("file", content, filename=name, content_type="text/csv")
    async with client.post(
        site.url("/console/import"),
        data=form,
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
        allow_redirects=False,
    ) as response:
        return response.status, response.headers.get("HX-Redirect"), await response.text()


async def upload_form(site: Console, client: ClientSession, content: bytes, name: str = "站点.csv") -> Any:
    """As a browser without JavaScript sends the form: the CSRF token in a field."""
    token = await csrf_of(client, site.url("/console/import"))
    form = FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", content, filename=name, content_type="text/csv")
    async with client.post(site.url("/console/import"), data=form, allow_redirects=False) as response:
        return response.status, response.headers.get("Location"), await response.text()


async def run_page(site: Console, client: ClientSession, path: str, until: str) -> str:
    """The run's status fragment (what the page polls) once its status is `until` (within 30 s)."""
    deadline = time.monotonic() + 30.0
    while True:
        async with client.get(site.url(path + "/status")) as response:
            assert response.status == 200
            html = await response.text()
        status = re.search(r'data-status="([a-z]+)"', html)
        assert status, html
        if status.group(1) == until:
            return html
        assert time.monotonic() < deadline, f"still {status.group(1)}"
        await asyncio.sleep(0.1)


def cells(html: str, testid: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(rf'data-testid="{testid}"[^>]*>(.*?)</', html)
    ]


async def test_a_bad_row_is_shown_fixed_uploaded_again_and_committed_once(console: Console) -> None:
    client = await logged_in(console, "clerk")
    async with client:
        status, location, _ = await upload_htmx(console, client, (HEADER + GOOD + BAD + SHENZHEN).encode())
        assert status == 204 and location and location.startswith("/console/import/")
        html = await run_page(console, client, location, "checked")
        assert cells(html, "inserted") == ["1"] and cells(html, "rejected") == ["2"]
        rows = re.findall(r'data-testid="error-row" data-row="(\d+)"', html)
        assert rows == ["3", "4"]
        assert cells(html, "error-column") == ["lat", "lat"]  # the clerk reads English: field names
        reasons = cells(html, "error-reason")
        assert "二十三" in reasons[0] and "not a number" in reasons[0]
        assert "440304" in reasons[1] and "outside your regions (4401)" in reasons[1]
        assert await console.core.stations.count() == 3  # the fixture's three: nothing written

        # Fixed in the sheet and uploaded again, this time without JavaScript.
        status, location, _ = await upload_form(console, client, (HEADER + GOOD + FIXED).encode())
        assert status == 303 and location
        html = await run_page(console, client, location, "checked")
        assert cells(html, "inserted") == ["2"] and cells(html, "rejected") == ["0"]
        token = await csrf_of(client, console.url(location))
        async with client.post(
            console.url(location + "/commit"), data={"csrf_token": token}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with client.post(console.url(location + "/commit"), data={"csrf_token": token}) as again:
            assert again.status == 409
            assert "already imported" in await again.text()
        html = await run_page(console, client, location, "done")
        assert 'data-testid="done"' in html
        assert (await console.core.stations.get("GZ-B")).lat == pytest.approx(23.1291)
        # The import is in the history, with who and what.
        async with client.get(console.url("/console/import")) as response:
            page = await response.text()
        assert page.count('data-testid="history-row"') == 1
        assert "站点.csv" in page and ">2<" in page
        async with console.core.sessions() as session:
            events = (
                await session.scalars(select(ConsoleEventRow.action).order_by(ConsoleEventRow.id))
            ).all()
        assert [e for e in events if e.startswith("import")] == [
            "import_check",
            "import_check",
            "import_commit",
        ]
        # Riders see the stations at once, through the API.
        async with client.get(console.url("/api/v1/stations/GZ-B")) as response:
            assert response.status == 200


async def test_a_clerk_reads_the_rejected_rows_in_their_own_language(console: Console) -> None:
    client = await logged_in(console, "clerk-zh")
    async with client:
        token = await csrf_of(client, console.url("/console/"))
        async with client.post(
            console.url("/console/language"),
            data={"csrf_token": token, "locale": "zh_Hans", "next": "/console/"},
        ):
            pass
        _, location, _ = await upload_htmx(console, client, (HEADER + BAD).encode())
        html = await run_page(console, client, location, "checked")
        assert cells(html, "error-column") == ["纬度"]
        assert "不是数字" in cells(html, "error-reason")[0] or "数字" in cells(html, "error-reason")[0]


async def test_an_upload_over_the_limit_is_refused_as_it_is_read(console: Console) -> None:
    console.core.stations.import_limits = ImportLimits(max_bytes=2000)
    client = await logged_in(console, "clerk")
    async with client:
        status, _, html = await upload_htmx(console, client, (HEADER + GOOD * 200).encode())
        assert status == 400
        assert "IMPORT_MAX_BYTES" in html
        status, _, html = await upload_htmx(console, client, b"x" * 10, name="stations.xls")
        assert status == 400 and ".xlsx" in html
    assert not any(console.core.imports.directory.iterdir())  # nothing of either was kept


async def test_staff_of_another_region_can_neither_read_nor_commit_nor_decide(console: Console) -> None:
    await console.core.roles.grant(BOT_STAFF, "staff", "4401")
    guangzhou = await logged_in(console, "gz")
    shenzhen = await logged_in(console, "sz", region="4403")
    station = await console.core.stations.get("GZ1")
    case = await console.core.reports.submit(RIDER, station.id, "closed_now", AT)
    async with guangzhou, shenzhen:
        _, location, _ = await upload_htmx(console, guangzhou, (HEADER + GOOD).encode())
        await run_page(console, guangzhou, location, "checked")
        token = await csrf_of(shenzhen, console.url("/console/import"))
        async with shenzhen.get(console.url(location)) as response:
            assert response.status == 404
        async with shenzhen.get(console.url(location + "/status")) as response:
            assert response.status == 404
        async with shenzhen.post(console.url(location + "/commit"), data={"csrf_token": token}) as response:
            assert response.status == 404
        async with shenzhen.get(console.url(f"/console/moderation/{case.case_id}")) as response:
            assert response.status == 403
        async with shenzhen.post(
            console.url(f"/console/moderation/{case.case_id}/decide"),
            data={"csrf_token": token, "decision": "approve"},
        ) as response:
            assert response.status == 403
        async with shenzhen.get(console.url("/console/moderation")) as response:
            assert f"#{case.case_id}" not in await response.text()
        # Without the CSRF token the uploader's own commit is refused too.
        async with guangzhou.post(console.url(location + "/commit"), data={}) as response:
            assert response.status == 403
        async with guangzhou.post(
            console.url(f"/console/moderation/{case.case_id}/decide"), data={"decision": "approve"}
        ) as response:
            assert response.status == 403
        async with guangzhou.get(console.url("/console/import/99999999")) as response:
            assert response.status == 404
        async with guangzhou.get(console.url("/console/moderation/not-a-number")) as response:
            assert response.status == 404
    assert (await console.core.stations.get("GZ1")).status is StationStatus.ACTIVE
    open_cases, _ = await console.core.reports.open_cases(await console.core.roles.access(BOT_STAFF))
    assert case.case_id in [c.id for c in open_cases]  # still undecided
    assert await console.core.stations.count() == 3  # and the sheet not imported


async def test_a_case_is_decided_once_between_the_console_and_the_bot(console: Console) -> None:
    await console.core.roles.grant(BOT_STAFF, "staff", "4401")
    station = await console.core.stations.get("GZ1")
    earlier = await console.core.reports.submit(
        RIDER, station.id, "wrong_hours", AT, detail="Mo-Fr 08:00-18:00"
    )
    await console.core.reports.decide(
        earlier.case_id, Decision.REJECT, await console.core.roles.access(BOT_STAFF), AT
    )
    first = await console.core.reports.submit(RIDER, station.id, "closed_now", AT + timedelta(hours=2))
    second = await console.core.reports.submit(RIDER + 1, station.id, "other", AT, text="门口的灯坏了")
    client = await logged_in(console, "clerk")
    async with client:
        async with client.get(console.url("/console/moderation")) as response:
            queue = await response.text()
        assert re.findall(r'data-case="(\d+)"', queue) == [str(second.case_id), str(first.case_id)]
        async with client.get(console.url(f"/console/moderation/{first.case_id}")) as response:
            page = await response.text()
        assert 'data-testid="decide-approve"' in page and 'data-testid="map"' in page
        assert station.address in page and 'data-testid="week"' in page
        assert f"#{earlier.case_id}" in page  # the station's earlier case, beside it
        token = await csrf_of(client, console.url(f"/console/moderation/{first.case_id}"))
        # Approved in the console: the station closes at once for the bot's riders and the API.
        async with client.post(
            console.url(f"/console/moderation/{first.case_id}/decide"),
            data={"csrf_token": token, "decision": "approve"},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
        assert (await console.core.stations.get_cached("GZ1")).status is StationStatus.TEMPORARILY_CLOSED
        async with client.get(console.url("/api/v1/stations/GZ1")) as response:
            assert (await response.json())["status"] == "temporarily_closed"
        # The bot's staff member comes too late.
        with pytest.raises(AlreadyDecided):
            await console.core.reports.decide(
                first.case_id, Decision.REJECT, await console.core.roles.access(BOT_STAFF), AT
            )
        # The other case is decided in the bot while the console's page is open: the console says so.
        async with client.get(console.url(f"/console/moderation/{second.case_id}")) as response:
            assert 'data-testid="decide-reject"' in await response.text()
        await console.core.reports.decide(
            second.case_id, Decision.REJECT, await console.core.roles.access(BOT_STAFF), AT
        )
        async with client.post(
            console.url(f"/console/moderation/{second.case_id}/decide"),
            data={"csrf_token": token, "decision": "approve"},
        ) as response:
            assert response.status == 409
            page = await response.text()
        assert translator("en").gettext("Someone already decided this case.") in page
        assert 'data-testid="decide-approve"' not in page
        assert 'data-status="rejected"' in page


async def test_console_and_bot_deciding_at_the_same_moment_decide_once(console: Console) -> None:
    await console.core.roles.grant(BOT_STAFF, "staff", "4401")
    station = await console.core.stations.get("GZ2")
    client = await logged_in(console, "clerk")
    async with client:
        for round_ in range(3):
            case = await console.core.reports.submit(RIDER + round_, station.id, "other", AT, text="?")
            token = await csrf_of(client, console.url(f"/console/moderation/{case.case_id}"))

            async def in_console(case_id: int = case.case_id, token: str = token) -> int:
                async with client.post(
                    console.url(f"/console/moderation/{case_id}/decide"),
                    data={"csrf_token": token, "decision": "reject"},
                    allow_redirects=False,
                ) as response:
                    return response.status

            async def in_bot(case_id: int = case.case_id) -> str:
                try:
                    await console.core.reports.decide(
                        case_id, Decision.APPROVE, await console.core.roles.access(BOT_STAFF), AT
                    )
                except AlreadyDecided:
                    return "late"
                return "decided"

            web, bot = await asyncio.gather(in_console(), in_bot())
            assert sorted([web == 303, bot == "decided"]) == [False, True], (web, bot)


async def test_a_clerk_imports_a_sheet_with_a_bad_row_in_a_browser(console: Console, tmp_path: Path) -> None:
    chromium = require_chromium()
    await add_account(console.core, "browser-clerk", "staff", "4401")
    sheet = tmp_path / "站点.csv"
    sheet.write_text(HEADER + GOOD + BAD, encoding="utf-8")
    fixed = tmp_path / "站点-改.csv"
    fixed.write_text(HEADER + GOOD + FIXED, encoding="utf-8")
    async with Chromium(chromium) as browser:
        page = await browser.new_page()
        await page.goto(console.url("/console/login?lang=en"))
        await page.type('input[name="username"]', "browser-clerk")
        await page.type('input[name="password"]', PASSWORD)
        await page.evaluate("document.querySelector('form[action=\"/console/login\"]').requestSubmit()")
        await page.wait_for("location.pathname === '/console/'")
        await page.goto(console.url("/console/import"))
        await set_file(page, '[data-testid="file"]', sheet)
        await page.click('[data-testid="check"]')
        await page.wait_for("document.querySelector('[data-testid=run]')?.dataset.status === 'checked'", 30)
        rows = await page.evaluate(
            "[...document.querySelectorAll('[data-testid=error-row]')].map(r => r.dataset.row + ' ' + "
            "r.querySelector('[data-testid=error-column]').textContent.trim())"
        )
        assert rows == ["3 lat"]
        await page.click('[data-testid="upload-again"]')
        await page.wait_for("location.pathname === '/console/import'")
        await set_file(page, '[data-testid="file"]', fixed)
        await page.click('[data-testid="check"]')
        await page.wait_for(
            "document.querySelector('[data-testid=run]')?.dataset.status === 'checked' && "
            "document.querySelector('[data-testid=rejected]').textContent.trim() === '0'",
            30,
        )
        await page.click('[data-testid="commit"]')
        await page.wait_for("document.querySelector('[data-testid=run]')?.dataset.status === 'done'", 30)
        assert (
            await page.evaluate("document.querySelector('[data-testid=inserted]').textContent.trim()") == "2"
        )
    assert (await console.core.stations.get("GZ-B")).name == "越秀驿站"


async def set_file(page: Any, selector: str, path: Path) -> None:
    """Choose `path` in the file input `selector`, as the clerk does in the file dialog."""
    await page.wait_for(f"document.querySelector({selector!r}) !== null")
    found = await page.send("Runtime.evaluate", {"expression": f"document.querySelector({selector!r})"})
    await page.send("DOM.setFileInputFiles", {"files": [str(path)], "objectId": found["result"]["objectId"]})


async def test_a_reports_photos_are_shown_from_telegram_to_the_clerks_who_may_see_the_case(
    settings: Settings, tmp_path: Path
) -> None:
    """A rider's photo lives at Telegram (the report keeps its file_id): the console fetches it through the
    Bot API with the bot's token, for the clerks of the case's region only; without a token the page says
    the photos are in the bot."""
    # A JPEG's bytes as Telegram serves them (the console passes them on; nothing here decodes them).
    jpeg = (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + bytes(range(256)) * 8
        + b"\xff\xd9"
    )
    async with LocalBotAPI() as api:
        sizes = api.user_photo(jpeg)
        with_token = settings.model_copy(
            update={"bot_token": SecretStr(api.token), "telegram_api_url": api.url}
        )
        async for site in make_console(with_token):
            station = await site.core.stations.get("GZ1")
            case = await site.core.reports.submit(
                RIDER, station.id, "other", AT, text="灯坏了", photo_file_id=sizes[-1]["file_id"]
            )
            other = await site.core.stations.get("GZ2")
            unknown = await site.core.reports.submit(
                RIDER + 1, other.id, "other", AT, text="?", photo_file_id="AgACAgUAAxNOT-A-FILE"
            )
            guangzhou, shenzhen = await logged_in(site, "clerk"), await logged_in(site, "sz", "4403")
            async with guangzhou, shenzhen:
                async with guangzhou.get(site.url(f"/console/moderation/{case.case_id}")) as response:
                    html = await response.text()
                assert re.findall(r'<img src="([^"]+)"', html) == [
                    f"/console/moderation/{case.case_id}/photos/0"
                ]
                async with guangzhou.get(
                    site.url(f"/console/moderation/{case.case_id}/photos/0")
                ) as response:
                    assert response.status == 200 and response.content_type == "image/jpeg"
                    assert await response.read() == jpeg
                    assert response.headers["Cache-Control"] == "no-store"  # shared office PCs
                for path in (
                    f"/console/moderation/{case.case_id}/photos/1",  # no second photo
                    f"/console/moderation/{case.case_id}/photos/x",
                    f"/console/moderation/{unknown.case_id}/photos/0",  # Telegram does not know it
                ):
                    async with guangzhou.get(site.url(path)) as response:
                        assert response.status == 404, path
                # An announcement's photo shows in its preview, from the same place.
                staff = await site.core.roles.access(-(await site.core.console.by_username("clerk")).id)
                announcement = await site.core.announcements.create(
                    staff, "高温补给", Audience("4401"), AT, photo_file_id=sizes[-1]["file_id"]
                )
                detail = f"/console/announcements/{announcement.id}"
                async with guangzhou.get(site.url(detail)) as response:
                    assert f'<img src="{detail}/photo"' in await response.text()
                async with guangzhou.get(site.url(f"{detail}/photo")) as response:
                    assert response.status == 200 and await response.read() == jpeg
                async with shenzhen.get(site.url(f"{detail}/photo")) as response:
                    assert response.status in (403, 404)
                # Another region's clerk is refused the photo as the case itself (403), before Telegram.
                calls = len(api.calls)
                async with shenzhen.get(site.url(f"/console/moderation/{case.case_id}/photos/0")) as response:
                    assert response.status == 403
                assert len(api.calls) == calls
            assert api.token not in html  # the token stays on the server
    # Without a bot token the console cannot fetch photos: the page says where they are.
    async for site in make_console(settings.model_copy(update={"bot_token": None})):
        station = await site.core.stations.get("GZ1")
        case = await site.core.reports.submit(
            RIDER + 2, station.id, "other", AT, text="灯坏了", photo_file_id="AgACAgUAAxANY"
        )
        client = await logged_in(site, "clerk2")
        async with client:
            async with client.get(site.url(f"/console/moderation/{case.case_id}")) as response:
                html = await response.text()
            assert "<img" not in html and "in the bot" in html
            async with client.get(site.url(f"/console/moderation/{case.case_id}/photos/0")) as response:
                assert response.status == 404
