"""The H5 page's files on the wire: gzipped once, versioned URLs cached for a year, the page revalidated,
every script deferred; what a cheap phone on a slow network downloads on a first visit."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.web.assets import IMMUTABLE
from bot.web.h5 import STATIC_DIR, setup_h5

GZIP = {"Accept-Encoding": "gzip, deflate, br"}
PLAIN = {"Accept-Encoding": "identity"}


@pytest.fixture
async def raw() -> AsyncIterator[TestClient[Any, Any]]:
    """A client that shows bodies as sent (no transparent decompression)."""
    app = web.Application()
    setup_h5(app, tile_url="https://tiles.example.test/{z}/{x}/{y}.png")
    async with TestClient(TestServer(app), auto_decompress=False) as client:
        yield client


async def page_urls(client: TestClient[Any, Any]) -> list[str]:
    page = await (await client.get("/", headers=PLAIN)).text()
    return re.findall(r'(?:src|href|data-leaflet-js|data-leaflet-css)="(/h5/[^"]+)"', page)


async def test_every_static_url_in_the_page_carries_its_own_content_hash(raw: TestClient[Any, Any]) -> None:
    import hashlib

    urls = await page_urls(raw)
    assert {url.split("?")[0] for url in urls} >= {
        "/h5/app.js",
        "/h5/style.css",
        "/h5/vendor/leaflet/leaflet.js",
    }
    for url in urls:
        path, _, version = url.partition("?v=")
        on_disk = (STATIC_DIR / path.removeprefix("/h5/")).read_bytes()
        assert version == hashlib.sha256(on_disk).hexdigest()[:12], url


async def test_versioned_files_are_immutable_gzipped_and_byte_exact(raw: TestClient[Any, Any]) -> None:
    for url in await page_urls(raw):
        response = await raw.get(url, headers=GZIP)
        assert response.status == 200, url
        assert response.headers["Cache-Control"] == IMMUTABLE == "public, max-age=31536000, immutable"
        if url.split("?")[0].endswith(".png"):
            assert "Content-Encoding" not in response.headers  # compressed already
            continue
        assert response.headers["Content-Encoding"] == "gzip", url
        assert "Accept-Encoding" in response.headers["Vary"]
        sent = await response.read()
        on_disk = (STATIC_DIR / url.split("?")[0].removeprefix("/h5/")).read_bytes()
        assert gzip.decompress(sent) == on_disk, url
        assert len(sent) < len(on_disk) / 2, url
        # Without gzip the same bytes go plain.
        plain = await raw.get(url, headers=PLAIN)
        assert "Content-Encoding" not in plain.headers
        assert await plain.read() == on_disk


async def test_an_unversioned_or_stale_url_is_revalidated_with_its_etag(raw: TestClient[Any, Any]) -> None:
    for url in ("/h5/app.js", "/h5/app.js?v=000000000000"):
        response = await raw.get(url, headers=GZIP)
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-cache"
        again = await raw.get(url, headers={**GZIP, "If-None-Match": response.headers["ETag"]})
        assert again.status == 304
        assert await again.read() == b""


async def test_images_go_as_they_are_and_unknown_paths_are_404(raw: TestClient[Any, Any]) -> None:
    response = await raw.get("/h5/vendor/leaflet/images/layers.png", headers=GZIP)
    assert response.status == 200 and response.content_type == "image/png"
    assert "Content-Encoding" not in response.headers
    for path in (
        "/h5/index.html",
        "/h5/nothing.js",
        "/h5/../h5.py",
        "/h5/%2e%2e/h5.py",
        "/h5/vendor/",
        "/h5/vendor/leaflet",
    ):
        assert (await raw.get(path)).status == 404, path


async def test_the_page_is_gzipped_revalidated_and_answers_304(raw: TestClient[Any, Any]) -> None:
    response = await raw.get("/", headers={**GZIP, "Accept-Language": "en"})
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.content_type == "text/html" and response.charset == "utf-8"
    assert set(re.split(r",\s*", response.headers["Vary"])) == {"Accept-Language", "Accept-Encoding"}
    page = gzip.decompress(await response.read()).decode()
    assert '<html lang="en"' in page
    again = await raw.get(
        "/", headers={**GZIP, "Accept-Language": "en", "If-None-Match": response.headers["ETag"]}
    )
    assert again.status == 304
    other = await raw.get("/", headers={**GZIP, "Accept-Language": "zh-TW"})
    assert other.headers["ETag"] != response.headers["ETag"]
    assert "script-src 'self'" in other.headers["Content-Security-Policy"]


async def test_no_script_blocks_the_first_render(raw: TestClient[Any, Any]) -> None:
    page = await (await raw.get("/", headers=PLAIN)).text()
    scripts = re.findall(r"<script\b([^>]*)>", page)
    executable = [attributes for attributes in scripts if 'type="application/json"' not in attributes]
    assert executable, "the page has scripts"
    assert all(re.search(r"\bdefer\b", attributes) for attributes in executable), executable


async def test_a_first_visit_downloads_little(raw: TestClient[Any, Any]) -> None:
    """Page, styles and scripts gzipped: what a first visit costs before the API and the tiles."""
    total = len(await (await raw.get("/", headers=GZIP)).read())
    for url in await page_urls(raw):
        total += len(await (await raw.get(url, headers=GZIP)).read())
    assert total < 80_000, total
