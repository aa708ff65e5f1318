"""A Guangzhou clerk's day in the staff console, in headless Chromium on a desk's screen: log in, see the
region's dashboard, import a sheet with a bad row, fix it and import it, decide a rider's case, edit a
station's hours, send an announcement and watch its progress; everything decided there shows at once in
the bot's search and the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cdp import Chromium, Page, require_chromium  # tests/ is on sys.path (rootdir conftest)
from test_console import PASSWORD, Console, add_account, make_console
from test_console_import_pages import BAD, FIXED, GOOD, HEADER, set_file

from bot.config import Settings
from domain.values import StationStatus

pytestmark = pytest.mark.browser

RIDER = 9101


@pytest.fixture
async def console(sqlite_settings: Settings, tmp_path: Path) -> AsyncIterator[Console]:
    settings = sqlite_settings.model_copy(update={"console_import_dir": tmp_path / "imports"})
    async for site in make_console(settings):
        site.core.imports.directory = tmp_path / "imports"
        # The console's clock is the real one here: imports and announcements run in the background.
        site.clock.at = datetime.now(UTC)
        yield site


async def text(page: Page, selector: str) -> str:
    return str(await page.evaluate(f"document.querySelector({selector!r}).textContent.trim()"))


async def test_a_clerks_day_in_the_console(console: Console, tmp_path: Path) -> None:
    core = console.core
    await add_account(core, "clerk", "staff", "4401")
    station = await core.stations.get("GZ1")
    case = await core.reports.submit(RIDER, station.id, "closed_now", console.clock())
    sheet = tmp_path / "站点.csv"
    sheet.write_text(HEADER + GOOD + BAD, encoding="utf-8")
    fixed = tmp_path / "站点-改.csv"
    fixed.write_text(HEADER + GOOD + FIXED, encoding="utf-8")

    async with Chromium(require_chromium(), width=1366, height=900, scale=1, mobile=False) as browser:
        page = await browser.new_page()
        await page.send("Network.setUserAgentOverride", {"userAgent": "yizhan-test", "acceptLanguage": "en"})

        # Morning: log in; the dashboard shows Guangzhou's stations and the open case.
        await page.goto(console.url("/console/"))
        await page.wait_for("location.pathname === '/console/login' && document.readyState === 'complete'")
        await page.type("input[name=username]", "clerk")
        await page.type("input[name=password]", PASSWORD)
        await page.click('[data-testid="login"]')
        await page.wait_for(
            "location.pathname === '/console/' && !!document.querySelector('[data-testid=open-cases]')"
        )
        assert await text(page, "[data-testid=open-cases] .figure") == "1"
        assert await text(page, "[data-testid=status-active] .figure") == "2"

        # An import: the sheet has a bad row; the dry run says which and why, nothing is written.
        await page.click('[data-nav="import"]')
        await page.wait_for("location.pathname === '/console/import'")
        await set_file(page, '[data-testid="file"]', sheet)
        await page.click('[data-testid="check"]')
        await page.wait_for("document.querySelector('[data-testid=run]')?.dataset.status === 'checked'", 30)
        bad_rows = await page.evaluate(
            "[...document.querySelectorAll('[data-testid=error-row]')].map(r => r.dataset.row + ' ' + "
            "r.querySelector('[data-testid=error-column]').textContent.trim())"
        )
        assert bad_rows == ["3 lat"]
        assert await core.stations.count() == 3  # the three of the fixture: nothing written
        # Fixed in the sheet, checked again, committed, watched until done.
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
        assert await text(page, "[data-testid=inserted]") == "2"
        # Riders find the new station at once, through the API.
        found = await page.evaluate("fetch('/api/v1/stations/GZ-B').then(r => r.status)")
        assert found == 200

        # A rider's case: the station was reported closed; the clerk confirms it.
        await page.click('[data-nav="moderation"]')
        await page.wait_for(f"!!document.querySelector('[data-case=\"{case.case_id}\"]')")
        await page.click(f'[data-case="{case.case_id}"] [data-testid="case-link"]')
        await page.wait_for("!!document.querySelector('[data-testid=decide-approve]')")
        await page.click('[data-testid="decide-approve"]')
        await page.wait_for("!!document.querySelector('[data-testid=decided]')")
        # The bot's search and the API see the decision at once (the same index feed).
        assert (await core.stations.get_cached("GZ1")).status is StationStatus.TEMPORARILY_CLOSED
        status = await page.evaluate("fetch('/api/v1/stations/GZ1').then(r => r.json()).then(j => j.status)")
        assert status == "temporarily_closed"

        # Evening: the dashboard counts the new stations, the closed one, and no open case.
        await page.click('[data-nav="dashboard"]')
        await page.wait_for(
            "location.pathname === '/console/' && !!document.querySelector('[data-testid=open-cases]')"
        )
        assert await text(page, "[data-testid=open-cases] .figure") == "0"
        assert await text(page, "[data-testid=status-temporarily_closed] .figure") == "1"
        assert await text(page, "[data-testid=status-active] .figure") == "3"
        assert "站点-改.csv" in await text(page, "[data-testid=imports]")
