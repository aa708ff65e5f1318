"""Where a rider's "take me there" goes: the map apps' marker pages for a station, and a `geo:` URI.

One home for the links, so that the bot's card buttons and the web app's counted redirect
(`/api/v1/go/…`) send a rider to the same page.
"""

from __future__ import annotations

import enum
from urllib.parse import quote, urlencode

from domain.values import Station


class MapApp(enum.StrEnum):
    """The map apps a station card links to (their values are in the `/api/v1/go/{code}/{app}` URLs)."""

    AMAP = "amap"
    BAIDU = "baidu"


def amap_url(station: Station) -> str:
    """Amap's marker page, declaring WGS-84 input."""
    return "https://uri.amap.com/marker?" + urlencode(
        {
            "position": f"{station.lon:.6f},{station.lat:.6f}",
            "name": station.name,
            "coordinate": "wgs84",
            "callnative": "1",
            "src": "yizhan",
        }
    )


def baidu_url(station: Station) -> str:
    """Baidu's marker page, declaring WGS-84 input."""
    return "https://api.map.baidu.com/marker?" + urlencode(
        {
            "location": f"{station.lat:.6f},{station.lon:.6f}",
            "title": station.name,
            "content": station.address or station.name,
            "output": "html",
            "coord_type": "wgs84",
            "src": "yizhan",
        }
    )


def map_url(station: Station, app: MapApp) -> str:
    return amap_url(station) if app is MapApp.AMAP else baidu_url(station)


def geo_uri(station: Station) -> str:
    point = f"{station.lat:.6f},{station.lon:.6f}"
    return f"geo:{point}?q={point}({quote(station.name)})"


def counted_url(public_url: str, code: str, app: MapApp) -> str:
    """The web app's redirect to `app`'s page for the station `code`, which counts the tap first."""
    return f"{public_url}/api/v1/go/{quote(code, safe='')}/{app.value}"
