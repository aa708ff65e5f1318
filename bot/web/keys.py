"""Typed keys under which `build_web_app` stores the long-lived objects its handlers use.

Handlers read `request.app[NEARBY]` and so on; nothing in the web layer is a module-level singleton, so
tests build as many apps as they like, each on its own core and clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bot.app import Core
from bot.services.nearby import NearbyService
from bot.services.stations import StationService
from domain.clock import Clock

if TYPE_CHECKING:
    from bot.web.admission import Admission
    from bot.web.api import GeoJSONCache, SyncPageCache


CORE = web.AppKey("core", Core)
NEARBY = web.AppKey("nearby", NearbyService)
#: The public API's station reads (`Core.api_stations`: in webhook mode over a pool of their own).
STATIONS = web.AppKey("stations", StationService)
#: "Now" for opening hours; tests pin it. Sync times come from the database writers' clock instead.
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
GEOJSON_CACHE: web.AppKey[GeoJSONCache] = web.AppKey("geojson_cache")
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
SYNC_CACHE: web.AppKey[SyncPageCache] = web.AppKey("sync_cache")
