"""Tile providers for the H5 page's map, by name (`MAP_TILES`): OpenStreetMap's tiles are slow or
unreachable from much of China, Amap's (高德) and Tianditu's (天地图, the state's map service, needs a free
key) load there.

The URL templates are those of the `leaflet.chinatmsproviders` plugin (MIT), written out here because the
page needs two of its entries, not the plugin. Each source says its datum: Amap draws GCJ-02, so the page
shifts every marker and the rider's position into GCJ-02 before drawing on it (`static/coords.js`, the
port of `domain/coords.py`); Tianditu's CGCS2000 and OpenStreetMap's WGS-84 agree to well under a metre.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import quote

__all__ = ["PROVIDERS", "TileName", "TileSource", "tile_source"]

TileName = Literal["osm", "amap", "tianditu"]

_TIANDITU = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}"
    "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={{key}}"
)


@dataclass(frozen=True, slots=True)
class TileSource:
    #: Leaflet URL template (`{s}`, `{z}`, `{x}`, `{y}`).
    url: str
    attribution: str
    #: `wgs84` or `gcj02`: the datum the tiles are drawn in.
    datum: str = "wgs84"
    #: Letters or digits for `{s}`; empty when the template has none.
    subdomains: str = ""
    #: A second template drawn over the first (Tianditu's labels); empty for none.
    overlay: str = ""
    max_zoom: int = 19


PROVIDERS: dict[str, TileSource] = {
    "osm": TileSource(
        url="https://tile.openstreetmap.org/{z}/{x}/{y}.png", attribution="© OpenStreetMap contributors"
    ),
    "amap": TileSource(
        url="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
        attribution="© 高德地图 AutoNavi",
        datum="gcj02",
        subdomains="1234",
        max_zoom=18,
    ),
    "tianditu": TileSource(
        url=_TIANDITU.format(layer="vec"),
        overlay=_TIANDITU.format(layer="cva"),
        attribution="© 天地图 Tianditu",
        subdomains="01234567",
        max_zoom=18,
    ),
}


def tile_source(name: str = "osm", *, url: str | None = None, tianditu_key: str | None = None) -> TileSource:
    """The named provider; `url` (`MAP_TILE_URL`, a mirror for instance) replaces its template, keeping
    its datum, with no attribution but the operator's. ValueError for an unknown name or Tianditu without
    a key."""
    try:
        source = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown map tiles {name!r}; one of: {', '.join(PROVIDERS)}") from None
    if url:
        return replace(source, url=url, overlay="", attribution="", subdomains="abc" if "{s}" in url else "")
    if name == "tianditu":
        if not tianditu_key:
            raise ValueError(
                "MAP_TILES=tianditu needs TIANDITU_KEY (a free key from console.tianditu.gov.cn)"
            )
        key = quote(tianditu_key, safe="")
        return replace(
            source, url=source.url.replace("{key}", key), overlay=source.overlay.replace("{key}", key)
        )
    return source
