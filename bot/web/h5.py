"""The H5 page: a phone-first web page for riders, opened from WeChat's in-app browser or any other.

`setup_h5` adds three things to the web app: the page itself at `/` (rendered in the visitor's language with
its UI strings embedded, so it shows text before any script runs), its static files under `/h5/` (plain JS
and CSS, no build step, plus Leaflet 1.9.4 vendored from npm under `vendor/leaflet/`; gzipped once and
cached for a year under URLs carrying their content hash, see `bot/web/assets.py`), and
`/api/v1/ui/{locale}.json`, the same strings in another locale for the page's language switch. The page
asks the public JSON API (`/api/v1/stations/nearby`) for stations; it needs nothing else from the server.

Every string goes through the project's gettext catalogues. They are declared here with the no-op marker
`N_` (extracted with `pybabel extract -k N_`) and translated per request; amenity labels, units, hours
phrases and weekday names reuse the bot's msgids so one translation serves both.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.i18n import DEFAULT_LOCALE, LOCALES, locale_for, translator
from bot.services.nearby import FAR_AWAY_M, WALKING_M_PER_MIN, WALKING_RANGE_M
from bot.services.reports import ReportKind
from bot.web.assets import Asset, StaticAssets
from bot.web.h5_report import REPORT_STRINGS
from bot.web.tiles import PROVIDERS, TileSource, tile_source
from domain.amenities import AMENITIES
from domain.languages import LANGUAGES
from domain.places import DEMO_PLACES
from domain.text import N_

__all__ = ["DEFAULT_TILE_URL", "STATIC_DIR", "UI_STRINGS", "setup_h5", "ui_catalogue"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_TILE_URL = PROVIDERS["osm"].url
LANGUAGE_NAMES = {language.locale: language.name for language in LANGUAGES}
HTML_LANG = {language.locale: language.tag for language in LANGUAGES}


UI_STRINGS: dict[str, str] = {
    "title": N_("Union stations open near you"),
    "subtitle": N_("Water, rest, a microwave, charging, a toilet: free for outdoor workers."),
    "language": N_("Language"),
    "locate": N_("Use my location"),
    "locating": N_("Finding your location…"),
    "geo_denied": N_("Location is off. Type coordinates or pick a place below."),
    "geo_unavailable": N_("Location is not available here. Type coordinates or pick a place below."),
    "coords_label": N_("Latitude, longitude"),
    "coords_submit": N_("Search"),
    "coords_invalid": N_("Type latitude, longitude, for example 23.13, 113.26"),
    "presets": N_("Or pick a place:"),
    "change_place": N_("Change place"),
    "near_you": N_("Near you"),
    "near_place": N_("Near {place}"),
    "filters": N_("What do you need?"),
    "clear": N_("Clear"),
    "include_closed": N_("Include closed"),
    "results_open": N_("Nearest open stations"),
    "results_all": N_("Nearest stations, open or not"),
    "none_open": N_("No station is open near you right now. The nearest ones and when they open:"),
    "empty": N_("No station found."),
    "empty_filter": N_("No station has everything in your filter. Try clearing it."),
    "searching": N_("Searching…"),
    "walk": N_("{minutes} min on foot"),
    "far": N_("⚠️ The nearest one is {distance} away."),
    "open_until": N_("open until {time}"),
    "open_24h": N_("open 24 h"),
    "closed": N_("closed"),
    "closed_opens": N_("closed, opens {time}"),
    "hours_unknown": N_("hours unknown"),
    "temporarily_closed": N_("Temporarily closed"),
    "tomorrow": N_("tomorrow {time}"),
    "month_day": N_("{month}/{day} {time}"),
    "call": N_("Call"),
    "offline_as_of": N_("No connection: the stations as of {time}; their hours may have changed."),
    "app_name": N_("Union stations"),
    "week": N_("Hours this week"),
    "week_loading": N_("Loading the hours…"),
    "span_unknown": N_("{span} (unknown)"),
    "amap": N_("Amap"),
    "baidu": N_("Baidu Maps"),
    "map": N_("Map of the stations"),
    "you_are_here": N_("You are here"),
    "error_network": N_("Cannot reach the server. Check your connection and try again."),
    "error_generic": N_("Sorry, something went wrong. Please try again in a moment."),
    "retry": N_("Try again"),
    "metres": N_("{metres} m"),
    "km": N_("{km} km"),
}

UI_STRINGS.update(REPORT_STRINGS)

WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)(?::([a-z0-9_./-]+))?\s*\}\}")


def resolve_locale(value: str) -> str | None:
    """One of LOCALES for `zh_Hans`, `zh-hans`, `EN`…; None for anything else."""
    wanted = value.replace("-", "_").lower()
    return next((locale for locale in LOCALES if locale.lower() == wanted), None)


@cache
def ui_catalogue(locale: str) -> dict[str, Any]:
    """Everything the page shows, in `locale` (one of LOCALES); built once per locale, never mutated."""
    gettext = translator(locale).gettext
    return {
        "locale": locale,
        "strings": {key: gettext(source) for key, source in UI_STRINGS.items()},
        "amenities": {amenity.key: gettext(amenity.label) for amenity in AMENITIES},
        "weekdays": [gettext(day) for day in WEEKDAYS],
        "places": [
            {"key": place.key, "label": gettext(place.label), "lat": place.lat, "lon": place.lon}
            for place in DEMO_PLACES
        ],
        "languages": LANGUAGE_NAMES,
        "report_kinds": [kind.value for kind in ReportKind],
        # The bot's thresholds (bot/services/nearby.py), so that both say the same about a distance.
        "distances": {
            "walking_m_per_min": WALKING_M_PER_MIN,
            "walking_range_m": WALKING_RANGE_M,
            "far_away_m": FAR_AWAY_M,
        },
    }


def preferred_locale(accept_language: str | None) -> str:
    """The locale for an Accept-Language header: the tag with the highest q that maps to one of ours."""
    if not accept_language:
        return DEFAULT_LOCALE
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    for _quality, _position, tag in sorted(ranked):
        language = tag.split("-")[0].lower()
        if language == "zh" or resolve_locale(tag) or resolve_locale(language):
            return locale_for(tag)
    return DEFAULT_LOCALE


def _json_for_script(value: object) -> str:
    """JSON safe inside <script type="application/json">: no `</script>` or `<!--` can close it."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


class H5Page:
    """Renders `index.html`: `{{ text:key }}` placeholders become the translated strings (escaped)."""

    def __init__(self, tiles: TileSource, assets: StaticAssets) -> None:
        self.template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        self.assets = assets
        self.values = {
            "tile_url": tiles.url,
            "tile_attribution": tiles.attribution,
            "tile_overlay": tiles.overlay,
            "tile_subdomains": tiles.subdomains,
            "tile_datum": tiles.datum,
            "tile_max_zoom": str(tiles.max_zoom),
        }
        self.rendered: dict[str, Asset] = {}  # per locale: the page is the same for every visitor

    def render(self, locale: str) -> str:
        ui = ui_catalogue(locale)

        def substitute(match: re.Match[str]) -> str:
            kind, key = match.group(1), match.group(2)
            if kind == "text" and key is not None:
                return html.escape(ui["strings"][key])
            if kind == "ui_json":
                return _json_for_script(ui)
            if kind == "html_lang":
                return HTML_LANG[locale]
            if kind == "locale":
                return locale
            if kind == "asset" and key is not None:
                return html.escape(self.assets.url(key))
            return html.escape(self.values[kind])

        return _PLACEHOLDER.sub(substitute, self.template)

    async def handle(self, request: web.Request) -> web.Response:
        # `?lang=zh-Hant` (a shared link, WeChat's menu) wins over the browser's languages.
        locale = resolve_locale(request.query.get("lang", "")) or preferred_locale(
            request.headers.get("Accept-Language")
        )
        page = self.rendered.get(locale)
        if page is None:
            page = self.rendered[locale] = Asset.of(self.render(locale).encode(), ".html")
        # Always revalidated (its ETag makes that one small round trip): it names the current assets.
        return page.response(
            request,
            "no-cache",
            headers={
                "Vary": "Accept-Language, Accept-Encoding",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                # Tiles may come from any configured server; scripts, styles and API calls only from here.
                "Content-Security-Policy": (
                    "default-src 'self'; img-src 'self' data: https: http:; "
                    "style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
                    "base-uri 'none'; form-action 'self'"
                ),
            },
        )


async def ui_strings(request: web.Request) -> web.Response:
    requested = request.match_info["locale"]
    locale = resolve_locale(requested)
    if locale is None:
        return web.json_response(
            {
                "error": {
                    "code": "unknown_locale",
                    "parameter": "locale",
                    "message": f"unknown locale {requested!r}; one of: {', '.join(LOCALES)}",
                }
            },
            status=404,
        )
    return web.json_response(
        ui_catalogue(locale),
        dumps=lambda value: json.dumps(value, ensure_ascii=False),
        headers={"Cache-Control": "public, max-age=300"},
    )


def setup_h5(
    app: web.Application,
    *,
    tile_url: str | None = None,
    tile_attribution: str | None = None,
    tiles: str = "osm",
    tianditu_key: str | None = None,
) -> None:
    """Add the page (`/`), its files (`/h5/…`) and its strings (`/api/v1/ui/{locale}.json`) to `app`.

    `tiles` names the map's provider (`MAP_TILES`, bot/web/tiles.py: osm, amap, tianditu with
    `tianditu_key`); `tile_url` (`MAP_TILE_URL`) replaces its template, keeping its datum.
    `tile_attribution` is shown on the map; the provider's when its own tiles are used.
    """
    source = tile_source(tiles, url=tile_url, tianditu_key=tianditu_key)
    if tile_attribution is not None:
        source = replace(source, attribution=tile_attribution)
    # The page is served at / only; the service worker at /sw.js, so that its scope is the whole site.
    assets = StaticAssets(STATIC_DIR, exclude={"index.html", "sw.js"})
    worker = Asset.of((STATIC_DIR / "sw.js").read_bytes(), ".js")
    page = H5Page(source, assets)
    app.router.add_get("/", page.handle, name="h5_page")
    app.router.add_get(r"/api/v1/ui/{locale}.json", ui_strings, name="h5_ui_strings")
    app.router.add_get("/h5/{path:.+}", assets.handle, name="h5_static")

    async def service_worker(request: web.Request) -> web.Response:
        return worker.response(request, "no-cache")

    async def manifest(request: web.Request) -> web.Response:
        locale = resolve_locale(request.query.get("lang", "")) or DEFAULT_LOCALE
        return web.json_response(
            web_manifest(locale, assets),
            content_type="application/manifest+json",
            dumps=lambda value: json.dumps(value, ensure_ascii=False),
            headers={"Cache-Control": "no-cache"},
        )

    app.router.add_get("/sw.js", service_worker, name="h5_service_worker")
    app.router.add_get("/manifest.webmanifest", manifest, name="h5_manifest")


def web_manifest(locale: str, assets: StaticAssets) -> dict[str, Any]:
    """The page as an installable app, named in `locale`."""
    strings = ui_catalogue(locale)["strings"]
    return {
        "name": strings["title"],
        "short_name": strings["app_name"],
        "description": strings["subtitle"],
        "lang": HTML_LANG[locale],
        "start_url": f"/?lang={HTML_LANG[locale]}",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b4f33",
        "icons": [
            {
                "src": assets.url(f"icon-{size}.png"),
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": "any",
            }
            for size in (192, 512)
        ],
    }
