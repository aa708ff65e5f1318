"""The rider's H5 page: served in the visitor's language, its strings from the catalogues, Leaflet vendored;
and in headless Chromium, the nearest open stations for a (faked) GPS position, filters, the language switch,
the typed-coordinates fallback, and a list that works without Leaflet."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cdp import Chromium, Page, require_chromium  # tests/ is on sys.path (rootdir conftest)

from bot.app import Core, open_core
from bot.config import Settings
from bot.i18n import LOCALES, translator
from bot.web.h5 import STATIC_DIR, UI_STRINGS, setup_h5, ui_catalogue
from domain.values import AMENITY_KEYS, GeoPoint, StationRecord, StationStatus

TILES = "https://tiles.example.test/{z}/{x}/{y}.png"
HOOKS = ("language", "coords-input", "coords-submit", "map", "error")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    setup_h5(app, tile_url=TILES)
    async with TestClient(TestServer(app)) as client:
        yield client


# ------------------------------------------------------------------------------------------------------------
# The page and its files
# ------------------------------------------------------------------------------------------------------------


async def test_page_is_html_with_the_test_hooks_and_the_tile_url(client: TestClient[Any, Any]) -> None:
    response = await client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    for hook in HOOKS:
        assert f'data-testid="{hook}"' in page, hook
    assert f'data-tile-url="{TILES}"' in page
    assert '<html lang="zh-Hans"' in page
    assert f"<title>{translator('zh_Hans').gettext(UI_STRINGS['title'])}</title>" in page
    assert "{{" not in page, "a placeholder was left unfilled"
    assert re.search(r'data-leaflet-js="/h5/vendor/leaflet/leaflet\.js\?v=[0-9a-f]{12}"', page)
    assert re.search(r'src="/h5/app\.js\?v=[0-9a-f]{12}"', page)
    embedded = re.search(r'<script type="application/json" id="ui">(.*?)</script>', page, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1))["locale"] == "zh_Hans"
    assert response.headers["Vary"] == "Accept-Language, Accept-Encoding"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        ("zh-TW,zh;q=0.9", "zh-Hant"),
        ("zh-Hant-HK", "zh-Hant"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("fr-FR", "zh-Hans"),
        ("", "zh-Hans"),
    ],
)
async def test_page_speaks_the_browsers_language(
    client: TestClient[Any, Any], accept_language: str, lang: str
) -> None:
    page = await (await client.get("/", headers={"Accept-Language": accept_language})).text()
    assert f'<html lang="{lang}"' in page


async def test_page_escapes_the_configured_tile_url() -> None:
    app = web.Application()
    setup_h5(app, tile_url='https://x.test/{z}/{x}/{y}.png"><script>alert(1)</script>')
    async with TestClient(TestServer(app)) as client:
        page = await (await client.get("/")).text()
    assert "<script>alert(1)" not in page
    assert "&quot;&gt;&lt;script&gt;" in page


async def test_page_defaults_to_openstreetmap_tiles_with_their_attribution() -> None:
    app = web.Application()
    setup_h5(app)
    async with TestClient(TestServer(app)) as client:
        page = await (await client.get("/")).text()
    assert 'data-tile-url="https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in page
    assert "OpenStreetMap contributors" in page


@pytest.mark.parametrize("locale", ["zh_Hans", "zh_Hant"])
async def test_ui_strings_are_translated_and_complete(client: TestClient[Any, Any], locale: str) -> None:
    response = await client.get(f"/api/v1/ui/{locale}.json")
    assert response.status == 200
    ui = await response.json()
    english = await (await client.get("/api/v1/ui/en.json")).json()
    assert ui["locale"] == locale
    assert set(ui["strings"]) == set(UI_STRINGS) == set(english["strings"])
    assert all(value.strip() for value in ui["strings"].values())
    assert all(value.strip() for value in english["strings"].values())
    same = [key for key in UI_STRINGS if ui["strings"][key] == english["strings"][key]]
    assert not same, f"{locale}: not translated: {same}"
    assert list(ui["amenities"]) == list(AMENITY_KEYS)
    assert all(ui["amenities"][key] != english["amenities"][key] for key in AMENITY_KEYS)
    assert len(ui["weekdays"]) == 7
    assert all(place["label"] and place["label"] != place["key"] for place in ui["places"])
    for key, source in UI_STRINGS.items():
        assert set(re.findall(r"\{\w+\}", ui["strings"][key])) == set(re.findall(r"\{\w+\}", source)), key


async def test_ui_strings_accept_bcp47_spelling(client: TestClient[Any, Any]) -> None:
    ui = await (await client.get("/api/v1/ui/zh-hant.json")).json()
    assert ui["locale"] == "zh_Hant"


async def test_unknown_ui_locale_is_a_404_with_the_api_error_shape(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/v1/ui/fr.json")
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "unknown_locale"
    assert error["parameter"] == "locale"
    assert all(locale in error["message"] for locale in LOCALES)


def test_the_page_labels_amenities_as_the_bot_does_in_every_language() -> None:
    from bot.telegram import build_i18n
    from handlers.views import amenity_label

    i18n = build_i18n()
    for locale in LOCALES:
        with i18n.context(), i18n.use_locale(locale):
            bot_labels = {key: amenity_label(key) for key in AMENITY_KEYS}
        assert ui_catalogue(locale)["amenities"] == bot_labels, locale


async def test_static_files_and_the_vendored_leaflet_are_served(client: TestClient[Any, Any]) -> None:
    leaflet = STATIC_DIR / "vendor" / "leaflet"
    licence = (leaflet / "LICENSE").read_text(encoding="utf-8")
    assert "BSD 2-Clause License" in licence and "Agafonkin" in licence
    for path, needle in [
        ("/h5/vendor/leaflet/leaflet.js", b"Leaflet 1.9.4"),
        ("/h5/vendor/leaflet/leaflet.css", b".leaflet-container"),
        ("/h5/vendor/leaflet/images/marker-icon.png", b"PNG"),
        ("/h5/app.js", b"use strict"),
        ("/h5/style.css", b"--touch"),
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        assert needle in await response.read(), path
    assert (await client.get("/h5/../h5.py")).status in (403, 404)
    assert (await client.get("/h5/vendor/")).status in (403, 404)


def test_embedded_strings_cannot_close_their_script_element() -> None:
    from bot.web.h5 import _json_for_script

    embedded = _json_for_script({"text": "</script><script>alert(1)</script><!--"})
    assert "<" not in embedded and ">" not in embedded
    assert json.loads(embedded) == {"text": "</script><script>alert(1)</script><!--"}


def test_page_text_is_never_written_with_inner_html() -> None:
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    # The only innerHTML read turns text into escaped HTML for Leaflet's attribution; none is assigned.
    assert not re.search(r"innerHTML\s*=(?!=)", script)
    assert "insertAdjacentHTML" not in script and "document.write" not in script


# ------------------------------------------------------------------------------------------------------------
# In a real browser against the real API
# ------------------------------------------------------------------------------------------------------------

HOME = (23.1300, 113.2600)


def north(metres: float) -> tuple[float, float]:
    return HOME[0] + metres / 111_000, HOME[1]


def station(code: str, name: str, metres: float, **kw: Any) -> StationRecord:
    lat, lon = north(metres)
    base: dict[str, Any] = dict(
        address=f"广州市中山路{code[-2:]}号",
        opening_hours="24/7",  # the page asks about "now": always-open stations keep the test time-free
        amenities=("drinking_water",),
        phone="020-8888" + code[-4:],
        region="440104",
    )
    base.update(kw)
    return StationRecord(code=code, name=name, lat=lat, lon=lon, **base)


STATIONS = [
    station("H50001", "天河移动营业厅工会驿站", 150, amenities=("drinking_water", "phone_charging")),
    station("H50002", "<b>越秀</b>建行爱心驿站", 320, amenities=("drinking_water", "toilet")),
    station("H50003", "海珠环卫工人驿站", 640, amenities=("toilet", "food_heating")),
    station("H50004", "荔湾中石化加油站驿站", 980),
    station("H50005", "白云社区服务中心驿站", 1500, amenities=("toilet", "rest_area")),
    station("H50006", "暂停服务的驿站", 60, status=StationStatus.TEMPORARILY_CLOSED),
    station("H50007", "开放时间未登记的驿站", 90, opening_hours="", amenities=("wifi",)),
]


@dataclass
class Site:
    url: str
    origin: str
    core: Core

    async def expected(self, *amenities: str) -> list[str]:
        """Names of the open stations the API answers with, nearest first, as the search service sees them."""
        hits = self.core.search.find_nearest_open(GeoPoint(*HOME), 8, amenities, datetime.now(UTC))
        details = await self.core.stations.get_many([hit.station_id for hit in hits])
        return [details[hit.station_id].name for hit in hits]


async def import_build_web_app() -> Any:
    """The API lives in bot/web/app.py, written alongside this page; wait briefly for it while it lands."""
    app_py = STATIC_DIR.parent / "app.py"
    for _ in range(100):
        if app_py.exists():
            break
        await asyncio.sleep(0.1)
    from bot.web.app import build_web_app

    return build_web_app


def has_root_route(app: web.Application) -> bool:
    return any(getattr(resource, "canonical", None) == "/" for resource in app.router.resources())


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    build_web_app = await import_build_web_app()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'h5.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        app = build_web_app(core)
        if not has_root_route(app):
            # Tiles from a closed local port: the test never reaches the internet.
            setup_h5(app, tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
        async with TestServer(app, host="127.0.0.1") as server:
            url = str(server.make_url("/"))
            yield Site(url=url, origin=url.rstrip("/"), core=core)


async def open_page(
    browser: Chromium,
    site: Site,
    *,
    locale: str = "zh-CN",
    geolocation: bool = True,
    block: tuple[str, ...] = (),
) -> Page:
    """A phone-sized tab in `locale` at HOME by GPS (or with location denied), on the page, ready."""
    page = await browser.new_page()
    await page.send("Network.enable")
    # Map tiles never load in tests (the list must not need them); extra patterns block more.
    await page.send("Network.setBlockedURLs", {"urls": ["*tile.openstreetmap.org*", "*:9/*", *block]})
    await page.send("Emulation.setLocaleOverride", {"locale": locale})
    await page.send("Network.setUserAgentOverride", {"userAgent": "yizhan-test", "acceptLanguage": locale})
    setting = "granted" if geolocation else "denied"
    await page.send(
        "Browser.setPermission",
        {"permission": {"name": "geolocation"}, "setting": setting, "origin": site.origin},
    )
    await page.send(
        "Emulation.setGeolocationOverride", {"latitude": HOME[0], "longitude": HOME[1], "accuracy": 10}
    )
    await page.goto(site.url)
    await page.wait_for("document.body.dataset.ready === '1'")
    return page


async def texts(page: Page, selector: str, attribute: str | None = None) -> list[str]:
    """The text (or an attribute) of every element matching `selector`, in document order."""
    read = f"e.getAttribute({json.dumps(attribute)})" if attribute else "e.textContent"
    return await page.evaluate(f"[...document.querySelectorAll({json.dumps(selector)})].map(e => {read})")


async def text(page: Page, selector: str, attribute: str | None = None) -> str | None:
    found = await texts(page, selector, attribute)
    return found[0] if found else None


async def wait_for_names(page: Page, expected: list[str]) -> None:
    """Wait until the list shows exactly `expected`, in order."""
    for _ in range(200):
        names = await texts(page, "[data-testid=station] [data-testid=station-name]")
        if names == expected:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"the page lists {names}, expected {expected}; page errors: {page.errors}")


async def choose_language(page: Page, locale: str) -> None:
    await page.evaluate(
        "(() => { const s = document.querySelector('[data-testid=language]');"
        f" s.value = {json.dumps(locale)}; s.dispatchEvent(new Event('change')); }})()"
    )


@pytest.mark.browser
async def test_rider_sees_the_nearest_open_stations_filters_them_and_switches_language(site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site)
        assert await page.evaluate("document.documentElement.lang") == "zh-Hans"

        everything = await site.expected()
        assert len(everything) == 5  # neither the temporarily closed one nor the one with unknown hours
        await wait_for_names(page, everything)
        assert await texts(page, "[data-testid=station]", "data-code") == [
            "H50001",
            "H50002",
            "H50003",
            "H50004",
            "H50005",
        ]
        # Station text is text: the name with markup in it shows its brackets and makes no element.
        assert await texts(page, "[data-testid=station-name] b") == []
        zh = translator("zh_Hans").gettext
        assert await text(page, "[data-testid=station-distance]") == zh("{metres} m").format(metres=150)
        assert await text(page, "[data-testid=station-hours]") == zh("open 24 h")
        call, amap, baidu = await texts(page, "[data-testid=station]:first-child .actions a", "href")
        lat, lon = north(150)
        assert call == "tel:02088880001"
        assert amap.startswith(f"https://uri.amap.com/marker?position={lon},{lat}&name=")
        assert amap.endswith("&coordinate=wgs84&callnative=1&src=yizhan")
        assert baidu.startswith(f"https://api.map.baidu.com/marker?location={lat},{lon}&title=")
        assert baidu.endswith("&output=html&coord_type=wgs84&src=yizhan")

        toilet = "[data-testid=amenity-chip][data-key=toilet]"
        await page.click(toilet)
        with_toilet = await site.expected("toilet")
        assert with_toilet == ["<b>越秀</b>建行爱心驿站", "海珠环卫工人驿站", "白云社区服务中心驿站"]
        await wait_for_names(page, with_toilet)
        assert await text(page, toilet, "aria-pressed") == "true"
        assert "amenity=toilet" in await page.evaluate("location.hash")
        await page.wait_for("document.querySelector('#map .pin') !== null")  # Leaflet drew the markers
        await page.screenshot("/tmp/h5.png")

        await choose_language(page, "en")
        await page.wait_for("document.documentElement.lang === 'en'")
        assert await text(page, "h1") == UI_STRINGS["title"]
        assert await text(page, toilet) == "Toilet"
        assert await text(page, "[data-testid=station-hours]") == "open 24 h"
        await wait_for_names(page, with_toilet)  # the filter survives the switch
        await page.screenshot("/tmp/h5-en.png")

        # The choice is remembered: a reload stays in English, with the filter from the URL.
        await page.goto(site.url + "?again=1#amenity=toilet")
        await page.wait_for("document.body.dataset.ready === '1'")
        await page.wait_for("document.documentElement.lang === 'en'")
        await wait_for_names(page, with_toilet)
        assert page.errors == []


@pytest.mark.browser
async def test_without_location_the_rider_types_coordinates(site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site, locale="zh-TW", geolocation=False)
        assert await page.evaluate("document.documentElement.lang") == "zh-Hant"
        tw = translator("zh_Hant").gettext
        denied = json.dumps(tw(UI_STRINGS["geo_denied"]))
        await page.wait_for(f"document.getElementById('place-line').textContent === {denied}")

        await page.type("[data-testid=coords-input]", "not a place")
        await page.click("[data-testid=coords-submit]")
        assert await text(page, "[data-testid=error]") == tw(UI_STRINGS["coords_invalid"])

        await page.evaluate("document.querySelector('[data-testid=coords-input]').value = ''")
        await page.type("[data-testid=coords-input]", f"{HOME[0]}，{HOME[1]}")  # a Chinese comma
        await page.click("[data-testid=coords-submit]")
        await wait_for_names(page, await site.expected())
        assert await page.evaluate("document.querySelector('[data-testid=error]').hidden") is True
        assert page.errors == []


@pytest.mark.browser
async def test_the_list_works_when_leaflet_cannot_load(site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site, locale="en-GB", block=("*leaflet.js*",))
        await wait_for_names(page, await site.expected())
        assert await page.evaluate("typeof window.L") == "undefined"
        assert await page.evaluate("document.querySelector('[data-testid=map]').hidden") is True

        # Closed ones too: each says why it is not open.
        await page.click("[data-testid=include-closed]")
        await page.wait_for("location.hash.includes('closed=1')")
        await page.wait_for("document.querySelectorAll('[data-testid=station]').length === 7")
        hours = await texts(page, "[data-testid=station-hours]")
        assert hours[:2] == ["Temporarily closed", "hours unknown"]
        await page.click("[data-testid=include-closed]")

        # Nothing with Wi-Fi is open: like the bot, the nearest ones are shown with a word of explanation.
        await page.click("[data-testid=amenity-chip][data-key=wifi]")
        await wait_for_names(page, ["开放时间未登记的驿站"])
        assert await text(page, "#notice") == UI_STRINGS["none_open"]
        await page.click("[data-testid=amenity-chip][data-key=sewing]")
        await wait_for_names(page, [])
        assert await text(page, "#notice") == UI_STRINGS["empty_filter"]
        assert page.errors == []


async def search_at(page: Page, site: Site, lat: float, lon: float) -> None:
    if await page.evaluate("document.getElementById('change-place').hidden") is False:
        await page.click("#change-place")
    await page.evaluate("document.querySelector('[data-testid=coords-input]').value = ''")
    await page.type("[data-testid=coords-input]", f"{lat}, {lon}")
    await page.click("[data-testid=coords-submit]")
    hits = site.core.search.find_nearest_open(GeoPoint(lat, lon), 8, (), datetime.now(UTC))
    details = await site.core.stations.get_many([hit.station_id for hit in hits])
    await wait_for_names(page, [details[hit.station_id].name for hit in hits])


@pytest.mark.browser
async def test_far_from_everything_the_page_warns_and_gives_no_walking_minutes(site: Site) -> None:
    gobi, oasis = (40.0, 90.0), (41.0, 95.0)
    await site.core.stations.save_records(
        [
            StationRecord(
                code="FAR001", name="戈壁驿站", lat=gobi[0] + 0.27, lon=gobi[1], opening_hours="24/7"
            ),
            StationRecord(
                code="FAR002", name="绿洲驿站", lat=oasis[0] + 0.072, lon=oasis[1], opening_hours="24/7"
            ),
        ]
    )
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site, geolocation=False)
        zh = translator("zh_Hans").gettext

        await search_at(page, site, *HOME)  # a few hundred metres: minutes on foot, no warning
        walks = await texts(page, "[data-testid=station]:first-child .walk")
        assert walks == [zh(UI_STRINGS["walk"]).format(minutes=2)]
        assert await page.evaluate("document.querySelector('[data-testid=far-warning]').hidden") is True

        await search_at(page, site, *oasis)  # 8 km: the distance alone, and still no warning
        assert await text(page, "[data-testid=station-distance]") == zh("{km} km").format(km="8.0")
        assert await texts(page, "[data-testid=station]:first-child .walk") == []
        assert await page.evaluate("document.querySelector('[data-testid=far-warning]').hidden") is True

        await search_at(page, site, *gobi)  # 30 km: the bot's warning, in each language
        assert await texts(page, "[data-testid=station] .walk") == []
        for locale in ("zh_Hans", "en", "zh_Hant"):
            await choose_language(page, locale)
            await page.wait_for(f"document.documentElement.dataset.locale === {json.dumps(locale)}")
            gettext = translator(locale).gettext
            distance = await text(page, "[data-testid=station-distance]")
            assert distance == gettext("{km} km").format(km="30.0")
            warning = gettext("⚠️ The nearest one is {distance} away.").format(distance=distance)
            assert await text(page, "[data-testid=far-warning]") == warning
        assert page.errors == []


@pytest.mark.browser
@pytest.mark.parametrize(("locale", "sample"), [("zh-CN", "驿站"), ("zh-TW", "驛站")])
async def test_chinese_text_renders_with_a_cjk_font_not_as_boxes(
    site: Site, locale: str, sample: str
) -> None:
    """Without a CJK font (CI once had none) every ideograph is the same narrow box: the page is unreadable,
    and screenshots of it prove nothing. Ideographs are full-width: two of them are two em wide."""
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, site, locale=locale)
        measured = await page.evaluate(
            f"""(() => {{
                const probe = document.createElement("span");
                document.querySelector("h1.title").appendChild(probe);
                const width = text => (probe.textContent = text, probe.getBoundingClientRect().width);
                const result = {{
                    sample: width({json.dumps(sample)}),
                    boxes: width("\\ue000\\ue000"),  // private use: a box in every font
                    em: parseFloat(getComputedStyle(probe).fontSize),
                }};
                probe.remove();
                return result;
            }})()"""
        )
        # The fonts Chromium drew the heading with, for the failure message.
        document = await page.send("DOM.getDocument", {"depth": 0})
        heading = await page.send(
            "DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": "h1.title"}
        )
        await page.send("CSS.enable")
        fonts = (await page.send("CSS.getPlatformFontsForNode", {"nodeId": heading["nodeId"]}))["fonts"]
        used = [font["familyName"] for font in fonts]
        assert measured["sample"] >= 1.9 * measured["em"], (measured, used)
        assert measured["sample"] != measured["boxes"], (measured, used)
