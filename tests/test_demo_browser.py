"""`yizhan demo` end to end in headless Chromium: the real bot on the demo data, driven through the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cdp import Chromium, require_chromium  # tests/ is on sys.path (rootdir conftest)

from bot.app import open_core
from bot.config import Settings
from bot.telegram import build_bot, build_dispatcher
from domain.places import DEMO_PLACE, DEMO_PLACES
from domain.values import GeoPoint
from localapi import LocalBotAPI
from storage.seed import demo_stations

NOON = datetime(2025, 6, 3, 4, 0, tzinfo=UTC)  # Tuesday 12:00 in China
PLACE = "guangzhou_tianhe"
BOT_MESSAGES = "[data-testid=message][data-from=bot]"


def bot_text_containing(needle: str) -> str:
    """JS: the text of the first bot message containing `needle`, or undefined."""
    return (
        f"[...document.querySelectorAll('{BOT_MESSAGES} [data-testid=message-text]')]"
        f".map(e => e.textContent).find(t => t.includes({json.dumps(needle)}))"
    )


@pytest.mark.browser
async def test_demo_page_finds_open_stations_near_a_preset_place(tmp_path: Path) -> None:
    binary = require_chromium()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}", _env_file=None)  # type: ignore[call-arg]

    def clock() -> datetime:
        return NOON

    async with open_core(settings) as core:
        await core.stations.save_records(demo_stations())
        await core.reload_index()

        lat, lon = DEMO_PLACE[PLACE].lat, DEMO_PLACE[PLACE].lon
        hits = core.search.find_nearest_open(GeoPoint(lat, lon), 5, (), clock())
        assert len(hits) == 5
        stations = await core.stations.get_many([hit.station_id for hit in hits])
        expected = [stations[hit.station_id].name for hit in hits]
        first = stations[hits[0].station_id]

        api = LocalBotAPI(
            preset_places=[(place.key, place.label, place.lat, place.lon) for place in DEMO_PLACES]
        )
        url = await api.start()
        bot = build_bot(api.token, url)
        dp = build_dispatcher(core, clock=clock)
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        try:
            await api.wait_for(lambda: api.calls_to("getUpdates"))
            async with Chromium(binary) as browser:
                page = await browser.new_page()
                await page.goto(url)
                await page.wait_for("document.body.dataset.ready === '1'")

                await page.click("[data-testid=share-location]")
                await page.click(f"[data-testid=preset-place][data-key={PLACE}]")
                results = await page.wait_for(bot_text_containing(expected[0]), timeout=15)
                positions = [results.find(name) for name in expected]
                assert all(p >= 0 for p in positions), (expected, results)
                assert positions == sorted(positions), (expected, results)

                await page.click(
                    f"{BOT_MESSAGES} [data-testid=inline-button][data-callback-data^='st:{first.id}:']"
                )
                card = await page.wait_for(bot_text_containing(first.code), timeout=10)
                assert first.name in card
                venue_title = await page.wait_for(
                    f"document.querySelector('{BOT_MESSAGES} [data-testid=venue] .place-title')?.textContent"
                )
                assert venue_title == first.name[:100]

                await page.evaluate(
                    "(() => { const s = document.querySelector('[data-testid=language]');"
                    " s.value = 'en'; s.dispatchEvent(new Event('change')); })()"
                )
                await api.wait_for(lambda: api.demo.language_code == "en")
                await page.type("[data-testid=text-input]", "/help")
                await page.click("[data-testid=send]")
                await page.wait_for(bot_text_containing("How to use"), timeout=10)

                await page.screenshot(tmp_path / "demo.png")
                assert page.errors == []
        finally:
            with contextlib.suppress(Exception):
                await dp.stop_polling()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            await bot.session.close()
            await api.stop()
