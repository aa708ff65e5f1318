"""The console's analytics page in headless Chromium: a clerk logs in, and the page draws the region's demand
cells as hexagons (h3-js on Leaflet), the searches by hour of the week and the day and night gaps as
uPlot charts, the suggested sites and the station evaluation table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import h3
import pytest
from cdp import Chromium, require_chromium  # tests/ is on sys.path (rootdir conftest)
from test_console import Console, add_account, make_console
from test_evaluation_console import GZ_CELL, add_many_stations, count_searches

from bot.config import Settings
from bot.web.console.analytics import EVALUATION_PAGE
from domain.coords import wgs84_to_gcj02


@pytest.fixture(params=["osm", "amap"])
async def console(sqlite_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Console]:
    async for site in make_console(sqlite_settings.model_copy(update={"map_tiles": request.param})):
        yield site


async def analytics_page(browser: Chromium, console: Console) -> Any:
    """The planner logged in on the analytics page, drawn (map tiles never load in tests)."""
    page = await browser.new_page()
    await page.send("Network.enable")
    await page.send("Network.setBlockedURLs", {"urls": ["*tile.openstreetmap.org*"]})
    await page.goto(console.url("/console/login?next=/console/analytics"))
    await page.type("input[name=username]", "planner")
    await page.type("input[name=password]", "correct horse battery")
    await page.click("[data-testid=login]")
    await page.wait_for("location.pathname === '/console/analytics' && document.body !== null")
    await page.wait_for("document.body && document.body.dataset.analyticsReady === '1'", timeout=20)
    return page


@pytest.mark.browser
async def test_the_analytics_page_draws_hexagons_charts_and_tables(console: Console) -> None:
    await count_searches(console)
    await add_account(console.core, "planner")
    async with Chromium(require_chromium()) as browser:
        page = await analytics_page(browser, console)
        assert await page.evaluate("document.body.dataset.hexagons") == "1"
        # On Amap's GCJ-02 tiles the hexagon is shifted as the H5 page shifts its markers.
        vertex = json.loads(await page.evaluate("document.body.dataset.firstVertex"))
        cell = h3.latlng_to_cell(*GZ_CELL, 8)
        lat, lon = h3.cell_to_boundary(cell)[0]
        if console.core.settings.map_tiles == "amap":
            lat, lon = wgs84_to_gcj02(lat, lon)
        assert (vertex["lat"], vertex["lng"]) == (pytest.approx(lat, abs=1e-7), pytest.approx(lon, abs=1e-7))
        assert await page.evaluate("document.querySelectorAll('path.hexagon').length") == 1
        # A hexagon's outline: six corners (h3-js), closed by Leaflet's SVG path.
        outline = await page.evaluate("document.querySelector('path.hexagon').getAttribute('d')")
        assert outline.count("L") == 5, outline
        assert await page.evaluate("document.body.dataset.hoursChart") == "1"
        assert (
            await page.evaluate("document.querySelectorAll('[data-testid=hours-chart] canvas').length") == 1
        )
        assert await page.evaluate("document.body.dataset.gapsChart") == "1"
        # The night layer draws the same cell from its night searches.
        await page.click("input[value=gaps_night]")
        await page.wait_for("document.body.dataset.hexagons === '1'")
        assert await page.evaluate("document.querySelectorAll('[data-testid=suggestion]').length") == 1
        codes = await page.evaluate(
            "[...document.querySelectorAll('[data-testid=evaluation-row]')].map(r => r.dataset.code)"
        )
        assert sorted(codes) == ["GZ1", "GZ2"]
        assert await page.evaluate(
            "document.querySelector('[data-testid=export-xlsx]').href.includes('region=4401')"
        )
        assert page.errors == []


@pytest.mark.browser
async def test_the_station_evaluation_table_pages_through_a_large_region(sqlite_settings: Settings) -> None:
    async for console in make_console(sqlite_settings):
        codes = await add_many_stations(console, EVALUATION_PAGE + 10)
        await add_account(console.core, "planner")
        async with Chromium(require_chromium()) as browser:
            page = await analytics_page(browser, console)
            rows = "[...document.querySelectorAll('[data-testid=evaluation-row]')].map(r => r.dataset.code)"
            first = await page.evaluate(rows)
            assert len(first) == EVALUATION_PAGE
            assert await page.evaluate("document.querySelector('[data-testid=evaluation-previous]').hidden")
            count = "document.querySelector('[data-testid=evaluation-count]').textContent"
            assert await page.evaluate(count) == f"Stations 1–{EVALUATION_PAGE} of {len(codes)}"
            await page.click("[data-testid=evaluation-next]")
            await page.wait_for(f"document.body.dataset.evaluationOffset === '{EVALUATION_PAGE}'")
            second = await page.evaluate(rows)
            assert set(first) | set(second) == codes and not set(first) & set(second)
            last = len(codes)
            assert await page.evaluate(count) == f"Stations {EVALUATION_PAGE + 1}–{last} of {last}"
            assert await page.evaluate("document.querySelector('[data-testid=evaluation-next]').hidden")
            await page.click("[data-testid=evaluation-previous]")
            await page.wait_for("document.body.dataset.evaluationOffset === '0'")
            assert await page.evaluate(rows) == first
            assert page.errors == []
