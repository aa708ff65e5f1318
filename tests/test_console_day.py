"""A Guangzhou clerk's day in the staff console, in headless Chromium on a desk's screen: log in, see the
region's dashboard, import a sheet with a bad row, fix it and import it, decide a rider's case, edit a
station's hours, send an announcement and watch its progress; everything decided there shows at once in
the bot's search and the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cdp import Chromium, Page, require_chromium  # tests/ is on sys.path (rootdir conftest)
from test_console import PASSWORD, Console, _subapps, add_account, make_console
from test_console_import_pages import BAD, FIXED, GOOD, HEADER, set_file

from bot.broadcast import TelegramTransport
from bot.config import Settings
from bot.services.announcements import Broadcaster
from bot.telegram import build_bot, build_i18n
from bot.web.console.base import CONSOLE
from domain.values import StationStatus
from localapi import LocalBotAPI
from storage.ratelimit import LocalRateLimiter

pytestmark = pytest.mark.browser

RIDER = 9101
SUBSCRIBERS = range(5000, 5024)


class RealClock:
    """The console's clock is the real one here: imports and announcements run in the background."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Day:
    console: Console
    api: LocalBotAPI

    def received(self) -> int:
        """Subscribers who got the announcement (it carries an unsubscribe button)."""
        return sum(1 for rider in SUBSCRIBERS for message in self.api.bot_messages(rider) if message.buttons)


@pytest.fixture
async def day(sqlite_settings: Settings, tmp_path: Path, region_lookup: Any) -> AsyncIterator[Day]:
    """The console, and on the same database a broadcaster sending through a local Bot API server to
    Guangzhou's subscribers, as the bot or `yizhan worker` would in another process."""
    settings = sqlite_settings.model_copy(update={"console_import_dir": tmp_path / "imports"})
    async for site in make_console(settings):
        site.core.imports.directory = tmp_path / "imports"
        site.core.stations.regions = region_lookup
        site.clock.at = datetime.now(UTC)
        for sub in _subapps(site.server.app):
            if CONSOLE in sub:
                sub[CONSOLE].clock = RealClock()
        async with LocalBotAPI() as api:
            for rider in SUBSCRIBERS:
                await api.send_text(rider, "/start", language_code="zh-hans")
                await site.core.subscriptions.subscribe_region(rider, "440106", site.clock.at)
            bot = build_bot(api.token, api.url)
            broadcaster = Broadcaster(
                site.core.sessions,
                TelegramTransport(bot, site.core, build_i18n()),
                LocalRateLimiter(20.0),
                20.0,
                clock=lambda: datetime.now(UTC),
                idle_poll=0.05,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(broadcaster.run(stop))
            try:
                yield Day(site, api)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await bot.session.close()


async def text(page: Page, selector: str) -> str:
    return str(await page.evaluate(f"document.querySelector({selector!r}).textContent.trim()"))


async def test_a_clerks_day_in_the_console(day: Day, tmp_path: Path) -> None:
    console = day.console
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
        await page.send("Network.enable")
        await page.send("Network.setBlockedURLs", {"urls": ["*tile.openstreetmap.org*"]})  # no map tiles here

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

        # A station's hours changed: edited on its page, checked like an import, saved for riders at once.
        await page.click('[data-nav="stations"]')
        await page.wait_for("!!document.querySelector('#results tr[data-code=GZ2] a')")
        await page.click("#results tr[data-code=GZ2] a")
        await page.wait_for("!!document.querySelector('[data-testid=field-opening_hours]')")
        hours = "document.querySelector('[data-testid=field-opening_hours]')"
        await page.evaluate(f"{hours}.value = ''")
        await page.type("[data-testid=field-opening_hours]", "Mo-Fr 25:00-18:00")
        await page.click("[data-testid=save]")
        await page.wait_for("!!document.querySelector('[data-testid=error-opening_hours]')")
        assert (await core.stations.get("GZ2")).opening_hours == "Mo-Fr 08:00-18:00"  # nothing saved
        await page.evaluate(f"{hours}.value = ''")
        await page.type("[data-testid=field-opening_hours]", "Mo-Sa 07:30-19:30")
        await page.click("[data-testid=save]")
        await page.wait_for("!!document.querySelector('[data-testid=saved]')")
        assert (await core.stations.get_cached("GZ2")).opening_hours == "Mo-Sa 07:30-19:30"
        api_hours = await page.evaluate(
            "fetch('/api/v1/stations/GZ2').then(r => r.json()).then(j => j.opening_hours)"
        )
        assert api_hours == "Mo-Sa 07:30-19:30"

        # An announcement to Guangzhou's subscribers: composed with its preview and audience, sent,
        # watched until the final report.
        await page.click('[data-nav="announcements"]')
        await page.click('[data-testid="new"]')
        await page.wait_for("document.querySelector('[data-testid=text]') !== null")
        await page.type('[data-testid="text"]', "<b>夏季送清凉</b>：驿站免费绿豆汤")
        await page.wait_for(
            f"document.querySelector('[data-testid=audience-size]')?.textContent === '{len(SUBSCRIBERS)}'",
            timeout=15,
        )
        await page.wait_for("document.querySelector('[data-testid=preview-en] .tg-text b') !== null")
        await page.click('[data-testid="send"]')
        await page.wait_for("/^[/]console[/]announcements[/][0-9]+$/.test(location.pathname)")
        await page.wait_for("document.querySelector('[data-testid=report]') !== null", timeout=30)
        assert await text(page, "[data-testid=sent]") == str(len(SUBSCRIBERS))
        assert await text(page, "[data-testid=left]") == "0"
        assert day.received() == len(SUBSCRIBERS)

        # Evening: the dashboard counts the new stations, the closed one, and no open case.
        await page.click('[data-nav="dashboard"]')
        await page.wait_for(
            "location.pathname === '/console/' && !!document.querySelector('[data-testid=open-cases]')"
        )
        assert await text(page, "[data-testid=open-cases] .figure") == "0"
        assert await text(page, "[data-testid=status-temporarily_closed] .figure") == "1"
        assert await text(page, "[data-testid=status-active] .figure") == "3"
        assert "站点-改.csv" in await text(page, "[data-testid=imports]")
