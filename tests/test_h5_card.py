"""The H5 page's station card as a rider needs it: the week's hours with today marked, `?lang=` honoured and
remembered, and the amenity chip bar keeping the tapped chip in view; in headless Chromium against the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cdp import Chromium, require_chromium  # tests/ is on sys.path (rootdir conftest)
from test_h5 import Site, client, north, open_page, site, station, text, texts, wait_for_names

from bot.i18n import translator
from bot.web.h5 import UI_STRINGS

__all__ = ["client", "site"]  # fixtures, imported for pytest


@pytest.mark.parametrize(
    ("query", "accept_language", "lang"),
    [
        ("?lang=en", "zh-CN", "en"),
        ("?lang=zh-Hant", "en-US", "zh-Hant"),
        ("?lang=zh_hans", "en-US", "zh-Hans"),
        ("?lang=fr", "en-US", "en"),  # not ours: the browser's languages decide
        ("?lang=", "zh-TW", "zh-Hant"),
    ],
)
async def test_page_honours_the_lang_parameter(
    client: TestClient[Any, Any], query: str, accept_language: str, lang: str
) -> None:
    page = await (await client.get("/" + query, headers={"Accept-Language": accept_language})).text()
    assert f'<html lang="{lang}"' in page


@pytest.mark.browser
async def test_lang_in_the_link_wins_and_is_remembered(site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site, locale="zh-CN")
        await page.goto(site.url + "?lang=en")
        await page.wait_for("document.body.dataset.ready === '1'")
        assert await page.evaluate("document.documentElement.lang") == "en"
        assert await text(page, "h1") == UI_STRINGS["title"]
        await wait_for_names(page, await site.expected())
        # Without the parameter the next visit stays in the language of the link.
        await page.goto(site.url)
        await page.wait_for("document.body.dataset.ready === '1'")
        await page.wait_for("document.documentElement.lang === 'en'")
        await page.goto(site.url + "?lang=zh-Hant")
        await page.wait_for("document.body.dataset.ready === '1'")
        assert await page.evaluate("document.documentElement.lang") == "zh-Hant"
        assert page.errors == []


@pytest.mark.browser
async def test_card_shows_the_week_with_today_marked(site: Site) -> None:
    hours = "Mo-Fr 08:00-12:00,13:30-18:00; Sa 09:00-12:00; Su off"
    weekly = station("H50010", "每周开放的驿站", 40, opening_hours=hours)
    await site.core.stations.save_records([weekly])
    detail = await site.core.stations.detail("H50010", datetime.now(UTC))
    week = detail.week
    assert week is not None
    zh = translator("zh_Hans").gettext
    weekdays = [zh(day) for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
    expected = []
    for name, day in zip(weekdays, week["days"], strict=True):
        spans = [f"{span['start']}–{span['end']}" for span in day["intervals"]]
        mark = "▸ " if day["date"] == week["today"] else ""
        expected.append((mark + name, ", ".join(spans) if spans else zh("closed")))
    assert any(row[1] == "08:00–12:00, 13:30–18:00" for row in expected)  # holidays may close a day or two

    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site)
        await page.goto(site.url + "?week=1#closed=1")  # listed whether open now or not
        await page.wait_for("document.body.dataset.ready === '1'")
        card = "[data-testid=station][data-code=H50010]"
        await page.wait_for(f"document.querySelector({json.dumps(card)}) !== null")
        assert await text(page, f"{card} [data-testid=station-week] summary") == zh("Hours this week")
        await page.click(f"{card} [data-testid=station-week] summary")
        await page.wait_for(
            f"document.querySelector('{card} [data-testid=station-week]').dataset.loaded === '1'"
        )
        names = await texts(page, f"{card} .week-name")
        spans = await texts(page, f"{card} .week-hours")
        assert list(zip(names, spans, strict=True)) == expected
        today = await texts(page, f"{card} .week-day[aria-current=date] .week-name")
        assert len(today) == 1 and today[0].startswith("▸ ")
        # Stations without known hours have no week to show.
        assert await texts(page, "[data-testid=station][data-code=H50007] [data-testid=station-week]") == []
        # Call and navigate as the bot's card does: WGS-84 declared to both map apps.
        lat, lon = north(40)
        call, amap, baidu = await texts(page, f"{card} .actions a", "href")
        assert call == "tel:02088880010"
        assert amap.startswith(f"https://uri.amap.com/marker?position={lon},{lat}&")
        assert "&coordinate=wgs84&" in amap and amap.endswith("&src=yizhan")
        assert "&coord_type=wgs84&" in baidu
        assert page.errors == []


@pytest.mark.browser
async def test_the_tapped_chip_stays_in_view(site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site)
        await wait_for_names(page, await site.expected())
        bar = "document.getElementById('chips')"
        assert await page.evaluate(f"{bar}.scrollWidth > {bar}.clientWidth"), "the bar should overflow"
        last = "[data-testid=amenity-chip]:last-child"
        await page.evaluate(f"{bar}.scrollLeft = {bar}.scrollWidth")
        await page.click(last)
        await page.wait_for(
            f"document.querySelector({json.dumps(last)}).getAttribute('aria-pressed') === 'true'"
        )
        in_view = f"""(() => {{
            const box = {bar}.getBoundingClientRect();
            const chip = document.querySelector({json.dumps(last)}).getBoundingClientRect();
            return chip.left >= box.left - 1 && chip.right <= box.right + 1;
        }})()"""
        assert await page.evaluate(in_view)
        # A reload with the filter in the URL shows the active chip too.
        await page.goto(site.url + "?x=1" + await page.evaluate("location.hash"))
        await page.wait_for("document.body.dataset.ready === '1'")
        assert await page.evaluate(in_view)
        assert page.errors == []
