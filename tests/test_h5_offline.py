"""A weak signal: the page installable (manifest, icons), a small service worker keeping its shell, and the
stations of the rider's area kept through the sync API, so that after one visit the list still answers with
the network gone (DevTools offline), marked with the time it was fetched."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cdp import Chromium, require_chromium  # tests/ is on sys.path (rootdir conftest)
from test_h5 import STATIONS, Site, client, open_page, site, text, texts, wait_for_names

from bot.i18n import translator
from bot.web.h5 import STATIC_DIR, UI_STRINGS

__all__ = ["client", "site"]  # fixtures, imported for pytest

PLAIN = {"Accept-Encoding": "identity"}


async def test_the_service_worker_is_small_served_at_the_root_and_revalidated(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/sw.js", headers=PLAIN)
    assert response.status == 200 and response.content_type == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    source = await response.text()
    assert source == (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 100
    assert (await client.get("/h5/sw.js")).status == 404  # one URL, one scope


async def test_the_manifest_names_the_app_in_the_language_asked(client: TestClient[Any, Any]) -> None:
    for locale, lang in (("zh_Hans", "zh-Hans"), ("zh_Hant", "zh-Hant"), ("en", "en")):
        response = await client.get(f"/manifest.webmanifest?lang={lang}", headers=PLAIN)
        assert response.status == 200 and response.content_type == "application/manifest+json"
        manifest = await response.json(content_type=None)
        gettext = translator(locale).gettext
        assert manifest["name"] == gettext(UI_STRINGS["title"])
        assert manifest["short_name"] == gettext(UI_STRINGS["app_name"])
        assert manifest["display"] == "standalone" and manifest["start_url"] == f"/?lang={lang}"
        assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
        for icon in manifest["icons"]:
            image = await client.get(icon["src"])
            assert image.status == 200 and image.content_type == "image/png"
            assert (await image.read()).startswith(b"\x89PNG")
    page = await (await client.get("/?lang=en", headers=PLAIN)).text()
    assert '<link rel="manifest" href="/manifest.webmanifest?lang=en">' in page


@pytest.mark.browser
async def test_offline_after_a_first_visit_the_list_still_answers(site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site)
        await wait_for_names(page, await site.expected())
        # The area is kept and the service worker controls the page.
        await page.wait_for("document.body.dataset.area === '1'", timeout=10)
        await page.wait_for("navigator.serviceWorker.controller !== null", timeout=10)
        kept = await page.evaluate(
            "Object.keys(JSON.parse(localStorage.getItem('yizhan.area')).stations).length"
        )
        assert kept == len(STATIONS)
        # The stored area is a grid square, not the rider's position.
        bbox = await page.evaluate("JSON.parse(localStorage.getItem('yizhan.area')).bbox")
        assert all(round(value / 0.05, 6) == round(value / 0.05) for value in bbox)

        await page.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        await page.goto(site.url)  # the page itself from the service worker's cache
        await page.wait_for("document.body.dataset.ready === '1'")
        await page.wait_for("document.body.dataset.offline === '1'", timeout=10)
        # Nearest first, active ones, whether open now or not (nobody can tell offline).
        active = sorted(
            (record for record in STATIONS if record.status.value == "active"), key=lambda record: record.lat
        )
        await wait_for_names(page, [record.name for record in active])
        notice = await text(page, "#notice")
        zh = translator("zh_Hans").gettext
        prefix = zh(UI_STRINGS["offline_as_of"]).split("{time}")[0]
        assert notice is not None and notice.startswith(prefix), notice
        hours = await texts(page, "[data-testid=station-hours]")
        assert hours[1] == zh("open 24 h")  # 24/7 needs no clock
        assert page.errors == []
