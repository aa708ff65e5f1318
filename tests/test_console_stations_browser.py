"""A clerk edits a station's hours in headless Chromium at a phone's size: finds it in the list (htmx
swaps the results), types hours the importer refuses and reads why in Chinese beside the field, types them
in Chinese as they are written on the door, and riders are answered with the new hours; the map shows
the station; verifying asks first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from cdp import Chromium, Page, require_chromium  # tests/ is on sys.path (rootdir conftest)

from bot.app import Core, open_core
from bot.config import Settings
from bot.web import build_web_app
from domain.values import GeoPoint, StationRecord
from storage.regions import RegionLookup

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
TIANHE = (23.129058, 113.310075)


@dataclass
class Site:
    url: str
    core: Core


@pytest.fixture
async def site(tmp_path: Path, region_lookup: RegionLookup) -> AsyncIterator[Site]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        core.stations.regions = region_lookup
        core.console.hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        await core.stations.save_records(
            [
                StationRecord(
                    code=f"GZ{n}",
                    name=f"天河驿站{n}号",
                    address=f"天河路{n}号",
                    lat=TIANHE[0] + n * 1e-4,
                    lon=TIANHE[1],
                    region="440106",
                    opening_hours="24/7",
                )
                for n in range(1, 4)
            ]
        )
        await core.reload_index()
        await core.console.create("clerk", "staff", "4401", datetime.now(UTC), password=PASSWORD)
        app = build_web_app(core, secure_cookies=False)
        async with TestServer(app, host="127.0.0.1") as server:
            yield Site(str(server.make_url("/console/")), core)


async def replace_text(page: Page, selector: str, text: str) -> None:
    await page.evaluate(f"document.querySelector('{selector}').value = ''")
    await page.type(selector, text)


async def test_a_clerk_edits_a_stations_hours_on_a_phone(site: Site) -> None:
    async with Chromium(require_chromium()) as browser:
        page = await browser.new_page()
        await page.send(
            "Network.setUserAgentOverride", {"userAgent": "yizhan-test", "acceptLanguage": "zh-CN"}
        )
        await page.goto(site.url + "stations")
        await page.wait_for("location.pathname === '/console/login' && document.readyState === 'complete'")
        await page.type("input[name=username]", "clerk")
        await page.type("input[name=password]", PASSWORD)
        await page.click('[data-testid="login"]')
        await page.wait_for(
            "location.pathname === '/console/stations' && !!document.querySelector('#results')"
        )
        assert await page.evaluate("document.querySelectorAll('#results tr[data-code]').length") == 3
        # A search swaps the results in place (htmx) and the address bar keeps it.
        await page.evaluate("window.notReloaded = true")
        await page.type("[data-testid=q]", "驿站2")
        await page.click("[data-testid=search]")
        await page.wait_for("document.querySelectorAll('#results tr[data-code]').length === 1")
        assert await page.evaluate("window.notReloaded === true")
        assert "q=" in await page.evaluate("location.search")
        await page.click("#results tr[data-code=GZ2] a")
        await page.wait_for(
            "location.pathname === '/console/stations/GZ2' && !!document.getElementById('station-form')"
        )
        # The map is drawn around the station.
        await page.wait_for("!!document.querySelector('#station-map.leaflet-container .leaflet-interactive')")
        # Hours the importer would refuse: said beside the field, in Chinese; nothing saved.
        await replace_text(page, "[data-testid=field-opening_hours]", "周一至周五 9:00-25:00")
        await page.click("[data-testid=save]")
        await page.wait_for("!!document.querySelector('[data-testid=error-opening_hours]')")
        error = await page.evaluate("document.querySelector('[data-testid=error-opening_hours]').textContent")
        assert "开放时间" in error
        assert (await site.core.stations.get("GZ2")).opening_hours == "24/7"
        # The typed text is still there; written correctly, it is saved.
        assert "25:00" in await page.evaluate(
            "document.querySelector('[data-testid=field-opening_hours]').value"
        )
        await replace_text(page, "[data-testid=field-opening_hours]", "周一至周五 9:00-17:00")
        await page.click("[data-testid=save]")
        await page.wait_for("!!document.querySelector('[data-testid=saved]')")
        assert "saved=edit" in await page.evaluate("location.search")
        assert (
            await page.evaluate("document.querySelector('[data-testid=field-opening_hours]').value")
            == "周一至周五 9:00-17:00"
        )
        station = await site.core.stations.get("GZ2")
        assert (station.opening_hours, station.opening_hours_text) == (
            "Mo-Fr 09:00-17:00",
            "周一至周五 9:00-17:00",
        )
        saturday_noon = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
        hits = site.core.search.find_nearest_open(GeoPoint(*TIANHE), 3, (), saturday_noon)
        assert "GZ2" not in {hit.code for hit in hits}
        # Verifying asks first; declined, nothing happens; accepted, it is done.
        await page.evaluate("window.confirm = () => false")
        await page.click("[data-testid=verify]")
        await page.evaluate("new Promise(r => setTimeout(r, 300))")
        assert (await site.core.stations.get("GZ2")).verified_at is None
        await page.evaluate("window.confirm = () => true")
        await page.click("[data-testid=verify]")
        await page.wait_for("location.search.includes('saved=verify')")
        assert (await site.core.stations.get("GZ2")).verified_at is not None
