"""Maps that load in China: tile providers by name (`MAP_TILES`), and on Amap's GCJ-02 tiles every marker and
the rider's position shifted to GCJ-02 by the page's port of domain/coords.py, checked against Python in
headless Chromium."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cdp import Chromium, require_chromium  # tests/ is on sys.path (rootdir conftest)
from pydantic import ValidationError
from test_h5 import HOME, STATIONS, Site, open_page, wait_for_names

from bot.app import open_core
from bot.config import Settings
from bot.web.h5 import setup_h5
from bot.web.tiles import PROVIDERS, tile_source
from domain.coords import wgs84_to_gcj02

PLAIN = {"Accept-Encoding": "identity"}


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance on a sphere; plenty for a metre's check."""
    lat = math.radians((a[0] + b[0]) / 2)
    dy = math.radians(a[0] - b[0]) * 6_371_000
    dx = math.radians(a[1] - b[1]) * 6_371_000 * math.cos(lat)
    return math.hypot(dx, dy)


def test_providers_by_name_with_their_datum() -> None:
    assert tile_source().url == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert tile_source("osm").datum == "wgs84"
    amap = tile_source("amap")
    assert amap.datum == "gcj02" and "{s}" in amap.url and amap.subdomains == "1234"
    tianditu = tile_source("tianditu", tianditu_key="k&y")
    assert "tk=k%26y" in tianditu.url and "tk=k%26y" in tianditu.overlay
    assert "LAYER=vec" in tianditu.url and "LAYER=cva" in tianditu.overlay and tianditu.datum == "wgs84"
    with pytest.raises(ValueError, match="TIANDITU_KEY"):
        tile_source("tianditu")
    with pytest.raises(ValueError, match="one of: osm, amap, tianditu"):
        tile_source("google")
    # A mirror of Amap's tiles is still GCJ-02; the operator's URL carries no provider attribution.
    mirror = tile_source("amap", url="https://tiles.example.cn/{z}/{x}/{y}.png")
    assert mirror.datum == "gcj02" and mirror.url.startswith("https://tiles.example.cn/")
    assert mirror.attribution == "" and mirror.subdomains == ""
    assert set(PROVIDERS) == {"osm", "amap", "tianditu"}


def test_settings_name_the_tiles_and_tianditu_needs_its_key() -> None:
    base: dict[str, Any] = {"_env_file": None}
    assert Settings(**base).map_tiles == "osm"
    assert Settings(**base, map_tiles="amap").map_tiles == "amap"
    assert Settings(**base, map_tiles="tianditu", tianditu_key="abc").tianditu_key == "abc"
    with pytest.raises(ValidationError, match="TIANDITU_KEY"):
        Settings(**base, map_tiles="tianditu")
    with pytest.raises(ValidationError):
        Settings(**base, map_tiles="google")


async def test_the_page_carries_the_providers_template_datum_and_overlay() -> None:
    app = web.Application()
    setup_h5(app, tiles="tianditu", tianditu_key="secret-ish")
    async with TestClient(TestServer(app)) as client:
        page = await (await client.get("/", headers=PLAIN)).text()
    assert 'data-tile-url="https://t{s}.tianditu.gov.cn/vec_w/wmts?' in page
    assert "tk=secret-ish" in page and 'data-tile-overlay="https://t{s}.tianditu.gov.cn/cva_w/' in page
    assert 'data-tile-subdomains="01234567"' in page and 'data-tile-datum="wgs84"' in page
    assert "&amp;TILEMATRIX={z}" in page  # attribute-escaped
    app = web.Application()
    setup_h5(app, tiles="amap")
    async with TestClient(TestServer(app)) as client:
        page = await (await client.get("/", headers=PLAIN)).text()
    assert 'data-tile-datum="gcj02"' in page and 'data-tile-overlay=""' in page
    assert "高德地图" in page


SAMPLES = [
    (23.13, 113.26),  # Guangzhou
    (39.9042, 116.4074),  # Beijing
    (31.2304, 121.4737),  # Shanghai
    (43.8256, 87.6168),  # Urumqi, far west
    (45.75, 126.65),  # Harbin, north-east
    (18.25, 109.5),  # Sanya, south
    (22.3193, 114.1694),  # Hong Kong
    (35.68, 139.69),  # Tokyo: outside the box, unchanged
]


@pytest.fixture
async def amap_site(tmp_path: Path) -> AsyncIterator[Site]:
    from bot.web.app import build_web_app

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'h5.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        app = build_web_app(core)
        # Amap's datum with tiles from a closed local port: the test never reaches the internet.
        setup_h5(app, tiles="amap", tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
        async with TestServer(app, host="127.0.0.1") as server:
            url = str(server.make_url("/"))
            yield Site(url=url, origin=url.rstrip("/"), core=core)


@pytest.mark.browser
async def test_on_amap_tiles_markers_and_the_rider_are_drawn_in_gcj02(amap_site: Site) -> None:
    binary = require_chromium()
    async with Chromium(binary) as browser:
        page = await open_page(browser, amap_site)
        # The port agrees with domain/coords.py within a metre (in fact to rounding) on sample points.
        shifted = await page.evaluate(
            f"{json.dumps(SAMPLES)}.map(p => window.yizhanCoords.wgs84ToGcj02(p[0], p[1]))"
        )
        for point, (lat, lon) in zip(SAMPLES, shifted, strict=True):
            expected = wgs84_to_gcj02(*point)
            assert metres((lat, lon), expected) < 1.0, (point, (lat, lon), expected)
        assert tuple(shifted[-1]) == SAMPLES[-1]
        assert metres(tuple(shifted[0]), SAMPLES[0]) > 100  # the shift is real: hundreds of metres

        await wait_for_names(page, await amap_site.expected())
        await page.wait_for("document.querySelector('#map .pin-label') !== null")
        drawn = await page.evaluate(
            "[...document.querySelectorAll('#map .pin-label')].map(e => e.dataset.at.split(',').map(Number))"
        )
        codes = await page.evaluate(
            "[...document.querySelectorAll('[data-testid=station]')].map(e => e.dataset.code)"
        )
        records = {record.code: record for record in STATIONS}
        for code, at in zip(codes, drawn, strict=True):
            record = records[code]
            assert metres(tuple(at), wgs84_to_gcj02(record.lat, record.lon)) < 1.0, code
        here = await page.evaluate("document.getElementById('map').dataset.here.split(',').map(Number)")
        assert metres(tuple(here), wgs84_to_gcj02(*HOME)) < 1.0
        assert page.errors == []


@pytest.mark.browser
async def test_on_openstreetmap_tiles_positions_stay_wgs84(tmp_path: Path) -> None:
    from bot.web.app import build_web_app

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'h5.db'}", _env_file=None)  # type: ignore[call-arg]
    async with open_core(settings) as core:
        await core.stations.save_records(STATIONS)
        await core.reload_index()
        app = build_web_app(core)
        setup_h5(app, tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
        async with TestServer(app, host="127.0.0.1") as server:
            url = str(server.make_url("/"))
            site = Site(url=url, origin=url.rstrip("/"), core=core)
            async with Chromium(require_chromium()) as browser:
                page = await open_page(browser, site)
                await wait_for_names(page, await site.expected())
                await page.wait_for("document.getElementById('map').dataset.here !== undefined")
                here = await page.evaluate(
                    "document.getElementById('map').dataset.here.split(',').map(Number)"
                )
                assert metres(tuple(here), HOME) < 0.01
