"""The H5 page in headless Chromium at a phone's size: a rider reports a closure from a station card, union
staff find it among their open cases, and the page shows their decision; a refused report says why in the
rider's language; the union's notices appear for a covered position, not for another, and stay dismissed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from cdp import Chromium, Page, require_chromium  # tests/ is on sys.path (rootdir conftest)
from sqlalchemy import select

from bot.app import Core, open_core
from bot.config import Settings
from bot.i18n import translator
from bot.services.announcements import Audience
from bot.web import build_web_app
from bot.web.h5 import UI_STRINGS, setup_h5
from domain.values import GeoPoint, StationRecord
from storage.models import ReportRow

HOME = (23.1300, 113.2600)
BEIJING = (39.9219, 116.4436)
STAFF, ADMIN = 21, 22
STATIONS = [
    StationRecord(
        code=f"R{i}",
        name=name,
        lat=HOME[0] + metres / 111_000,
        lon=HOME[1],
        region="440106",
        opening_hours="24/7",
        amenities=("drinking_water", "toilet"),
    )
    for i, (name, metres) in enumerate((("天河反馈测试驿站", 120), ("越秀第二驿站", 400)), start=1)
]


@dataclass
class Site:
    url: str
    origin: str
    core: Core


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'h5.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        await core.roles.grant(STAFF, "staff", "4401")
        await core.roles.grant(ADMIN, "admin")
        app = build_web_app(core)
        setup_h5(app, tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")  # tiles never load in tests
        async with TestServer(app, host="127.0.0.1") as server:
            url = str(server.make_url("/"))
            yield Site(url=url, origin=url.rstrip("/"), core=core)


async def open_page(browser: Chromium, site: Site, page: Page | None = None) -> Page:
    """A phone-sized tab in Simplified Chinese at HOME by GPS, on the page, ready."""
    if page is None:
        page = await browser.new_page()
        await page.send("Network.enable")
        await page.send("Network.setBlockedURLs", {"urls": ["*tile.openstreetmap.org*", "*:9/*"]})
        await page.send("Emulation.setLocaleOverride", {"locale": "zh-CN"})
        await page.send(
            "Network.setUserAgentOverride", {"userAgent": "yizhan-test", "acceptLanguage": "zh-CN"}
        )
        await page.send(
            "Browser.setPermission",
            {"permission": {"name": "geolocation"}, "setting": "granted", "origin": site.origin},
        )
        await page.send(
            "Emulation.setGeolocationOverride", {"latitude": HOME[0], "longitude": HOME[1], "accuracy": 10}
        )
    await page.goto(site.url)
    await page.wait_for("document.body.dataset.ready === '1'")
    await page.wait_for("document.querySelectorAll('[data-testid=report-open]').length > 0")
    return page


def zh(key: str) -> str:
    return translator("zh_Hans").gettext(UI_STRINGS[key])


async def texts(page: Page, selector: str) -> list[str]:
    return await page.evaluate(
        f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent)"
    )


async def visible_notices(page: Page) -> list[str]:
    return await page.evaluate(
        "(() => { const s = document.querySelector('[data-testid=notices]');"
        " return s && !s.hidden ? [...s.querySelectorAll('.notice-text')].map(e => e.textContent) : []; })()"
    )


async def wait_until(page: Page, probe: Any, expected: Any) -> None:
    for _ in range(200):
        value = await probe()
        if value == expected:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"still {value!r}, expected {expected!r}; page errors: {page.errors}")


@pytest.mark.browser
async def test_rider_reports_a_closure_staff_decide_and_the_page_shows_it(site: Site) -> None:
    async with Chromium(require_chromium()) as browser:
        page = await open_page(browser, site)
        assert await page.evaluate("document.querySelector('[data-testid=my-reports]').hidden")
        await page.click("[data-testid=station][data-code=R1] [data-testid=report-open]")
        await page.wait_for("!!document.querySelector('[data-testid=report-form]')")
        assert await page.evaluate(
            "document.querySelector('[data-testid=report-kind-closed_now]').checked"
        )  # closed now is the first choice
        await page.type("[data-testid=report-text]", "铁门锁着")
        await page.click("[data-testid=report-send]")
        await page.wait_for("!!document.querySelector('[data-testid=report-thanks]')")
        await wait_until(page, lambda: texts(page, "[data-testid=my-report-status]"), [zh("status_open")])
        token = await page.evaluate("localStorage.getItem('yizhan.device')")
        assert token and len(token) >= 32

        # The case reaches staff of the station's region, with the rider's text and the GPS distance.
        staff = await site.core.roles.access(STAFF)
        cases, total = await site.core.reports.open_cases(staff)
        assert total == 1
        case = cases[0]
        assert (case.station.code, case.kind.value, case.texts) == ("R1", "closed_now", ("铁门锁着",))
        assert case.on_site == 1
        async with site.core.sessions() as session:
            report = await session.scalar(select(ReportRow))
        assert report is not None and report.distance_m is not None and report.distance_m < 300
        assert report.weight == 0.0  # a browser's report does not hide a station by default

        await site.core.reports.decide(case.id, "approve", staff, datetime.now(UTC))
        await page.click("[data-testid=my-reports-refresh]")
        await wait_until(page, lambda: texts(page, "[data-testid=my-report-status]"), [zh("status_approved")])

        # A refused report says why, in the page's language.
        await page.click("[data-testid=station][data-code=R2] [data-testid=report-open]")
        await page.click("[data-testid=report-kind-wrong_hours]")
        await page.type("[data-testid=report-hours]", "周八 25点")
        await page.click("[data-testid=report-send]")
        await page.wait_for(
            "document.querySelector('[data-testid=report-message]').className.includes('error')"
        )
        message = (await texts(page, "[data-testid=report-message]"))[0]
        assert message.startswith(translator("zh_Hans").gettext("This report cannot be sent: {reason}")[:6])
        assert translator("zh_Hans").gettext("the opening hours cannot be read") in message

        # A reload keeps the token and shows the decided report again.
        page = await open_page(browser, site, page)
        await wait_until(page, lambda: texts(page, "[data-testid=my-report-status]"), [zh("status_approved")])

        # The rider forgets their reports on this phone (the bot's /forget): staff keep the case, nothing
        # ties it to this browser any more, and the page stops following it.
        await page.evaluate("window.confirm = function () { return true; }")
        await page.click("[data-testid=my-reports-forget]")
        await wait_until(page, lambda: texts(page, "[data-testid=my-reports-note]"), [zh("forgotten")])
        assert await page.evaluate("document.querySelector('[data-testid=my-reports]').hidden")
        assert await page.evaluate("localStorage.getItem('yizhan.device')") is None
        async with site.core.sessions() as session:
            report = await session.scalar(select(ReportRow))
        assert report is not None and report.device_id is None
        assert (await site.core.reports.case(case.id, staff)).status.value == "approved"
        assert page.errors == []


@pytest.mark.browser
async def test_notices_for_the_riders_position_appear_and_stay_dismissed(site: Site) -> None:
    admin = await site.core.roles.access(ADMIN)
    now = datetime.now(UTC)
    await site.core.announcements.create(
        admin, "广州：本周六驿站义诊", Audience("4401"), now - timedelta(hours=2)
    )
    await site.core.announcements.create(
        admin, "天河：<b>高温</b>补水点", Audience("44", GeoPoint(*HOME), 3.0), now - timedelta(hours=1)
    )
    await site.core.announcements.create(admin, "深圳：招聘会", Audience("4403"), now - timedelta(minutes=30))

    async with Chromium(require_chromium()) as browser:
        page = await open_page(browser, site)
        await wait_until(page, lambda: visible_notices(page), ["天河：高温补水点", "广州：本周六驿站义诊"])

        # Another position (typed: Beijing) is covered by none of them.
        await page.evaluate("document.getElementById('change-place').click()")
        await page.type("[data-testid=coords-input]", f"{BEIJING[0]}, {BEIJING[1]}")
        await page.click("[data-testid=coords-submit]")
        await wait_until(page, lambda: visible_notices(page), [])

        page = await open_page(browser, site, page)
        await wait_until(page, lambda: visible_notices(page), ["天河：高温补水点", "广州：本周六驿站义诊"])
        await page.click("[data-testid=notice] [data-testid=notice-dismiss]")
        await wait_until(page, lambda: visible_notices(page), ["广州：本周六驿站义诊"])
        page = await open_page(browser, site, page)
        await wait_until(page, lambda: visible_notices(page), ["广州：本周六驿站义诊"])
        assert page.errors == []


def test_report_and_notice_scripts_never_write_html() -> None:
    from bot.web.h5 import STATIC_DIR

    for name in ("report.js", "notices.js"):
        script = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script, name
        assert "document.write" not in script, name


def test_every_report_kind_has_a_label_on_the_page() -> None:
    from bot.services.reports import ReportKind
    from bot.web.h5 import ui_catalogue

    catalogue = ui_catalogue("zh_Hans")
    assert catalogue["report_kinds"] == [kind.value for kind in ReportKind]
    for kind in ReportKind:
        assert f"kind_{kind.value}" in UI_STRINGS, kind
    from bot.web.openapi_h5 import REPORT_REASONS

    for reason in REPORT_REASONS:  # every refusal the API can answer with is worded on the page
        assert f"reason_{reason}" in UI_STRINGS, reason
