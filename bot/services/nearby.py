"""The nearby use case as every channel asks it: index hits joined with the stations' details.

The bot and `yizhan nearby` call `NearbyService.nearby`, the HTTP API `NearbyService.nearby_json`; both
JSON paths render a result with `result_json`, the one JSON shape of a result (the `--json` contract
of docs/ARCHITECTURE.md). A service given a `DemandCounter` counts the searches of its channel (the bot's
first pages, the API's and the H5 page's answers; bot/services/analytics.py): a cell, never the point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.services.analytics import DemandCounter, nearest_open_distance
from bot.services.closures import ClosureNote
from bot.services.search import NearbyHit, SearchService
from bot.services.stations import StationService
from domain.coords import out_of_china, to_wgs84
from domain.values import CRS, GeoPoint, InvalidLocation, Station


def result_json(station: Station, hit: NearbyHit) -> dict[str, Any]:
    """One result as every channel that speaks JSON shows it: the station, its distance and its state at
    the instant of the search."""
    return {
        "code": station.code,
        "name": station.name,
        "address": station.address,
        "lat": station.lat,
        "lon": station.lon,
        "distance_m": round(hit.distance_m),
        "open_now": hit.open_now,
        "next_change": hit.hours.next_change_iso,
        "opening_hours": station.opening_hours,
        "amenities": list(station.amenities),
        "phone": station.phone,
        "status": station.status.value,
    }


@dataclass(frozen=True, slots=True)
class NearbyResult:
    station: Station
    hit: NearbyHit
    #: People who reported the station closed, shown while it stays listed (bot/services/closures.py).
    closure: ClosureNote | None = None

    def as_json(self) -> dict[str, Any]:
        return result_json(self.station, self.hit)


def _answer_json(query_point: GeoPoint, at: datetime, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "query": {"lat": query_point.lat, "lon": query_point.lon, "at": at.isoformat()},
        "results": results,
    }


def nearby_json(query_point: GeoPoint, at: datetime, results: Iterable[NearbyResult]) -> dict[str, Any]:
    """The whole answer as `yizhan nearby --json` prints it and `GET /api/v1/stations/nearby` returns it
    (docs/ARCHITECTURE.md's contract): the WGS-84 query point, the instant, the results nearest first."""
    return _answer_json(query_point, at, [result.as_json() for result in results])


class NearbyService:
    def __init__(
        self,
        search: SearchService,
        stations: StationService,
        *,
        observe_search: Callable[[float], None] | None = None,
        demand: DemandCounter | None = None,
        channel: str = "",
    ) -> None:
        self.search = search
        self.stations = stations
        # Told the seconds of each search (the edges hand in a metrics histogram; no transport here).
        self.observe_search = observe_search
        #: Counts each search of `channel` (None: searches are not counted, e.g. `yizhan nearby`).
        self.demand = demand
        self.channel = channel

    def count(
        self,
        point: GeoPoint,
        amenities: Sequence[str],
        at: datetime,
        hits: Sequence[NearbyHit],
        include_closed: bool,
        channel: str | None = None,
    ) -> None:
        """Add the search to the demand counters (when this service counts): its cell, the local hour,
        the channel, the amenities asked for and the nearest open station's distance among `hits`."""
        demand = self.demand
        if demand is None:
            return
        if not include_closed:  # the usual search: one call does it all (bench/README-analytics.md)
            demand.count_nearest(point, at, channel or self.channel, amenities, hits)
            return
        known, distance = nearest_open_distance(hits, include_closed)
        if not known:
            # Only closed stations among the hits: where the nearest open one is takes a search of its own.
            nearest = self.search.find_nearest_open(point, 1, amenities, at)
            distance = nearest[0].distance_m if nearest else None
        demand.count(point.lat, point.lon, at, channel or self.channel, amenities, distance)

    @staticmethod
    def to_wgs84(point: GeoPoint, crs: CRS) -> GeoPoint:
        if crs is CRS.WGS84:
            return point
        if out_of_china(point.lat, point.lon):
            raise InvalidLocation(f"{crs.value} coordinates must lie in China")
        lat, lon = to_wgs84(point.lat, point.lon, crs)
        return GeoPoint(lat, lon)

    async def nearby(
        self,
        point: GeoPoint,
        *,
        k: int = 5,
        amenities: Iterable[str] = (),
        at: datetime,
        include_closed: bool = False,
    ) -> list[NearbyResult]:
        return await self.join(self.find_nearest_open(point, k, amenities, at, include_closed), at)

    def find_nearest_open(
        self, point: GeoPoint, k: int, amenities: Iterable[str], at: datetime, include_closed: bool = False
    ) -> list[NearbyHit]:
        """`SearchService.find_nearest_open`, timed for `observe_search` when one is given."""
        if self.observe_search is None:
            return self.search.find_nearest_open(point, k, amenities, at, include_closed)
        started = time.perf_counter()
        try:
            return self.search.find_nearest_open(point, k, amenities, at, include_closed)
        finally:
            self.observe_search(time.perf_counter() - started)

    async def nearby_json(
        self,
        point: GeoPoint,
        *,
        k: int = 5,
        amenities: Iterable[str] = (),
        at: datetime,
        include_closed: bool = False,
        count: bool = True,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """`nearby_json(point, at, await self.nearby(...))`, rendered straight from the hits and their
        stations: the HTTP API answers thousands of these a second, and a `NearbyResult` per hit would only
        be garbage to collect. With `count`, the search is counted as `channel`'s (default: the service's)."""
        amenities = tuple(amenities)
        hits = self.find_nearest_open(point, k, amenities, at, include_closed)
        if count:
            self.count(point, amenities, at, hits, include_closed, channel)
        pairs = await self._with_details(hits)
        return _answer_json(point, at, [result_json(station, hit) for station, hit in pairs])

    async def join(self, hits: list[NearbyHit], at: datetime | None = None) -> list[NearbyResult]:
        """Attach each hit's station details (one query for all) and, given the instant `at`, the closure
        reports riders are told about (from memory)."""
        pairs = await self._with_details(hits)
        if at is None:
            return [NearbyResult(station, hit) for station, hit in pairs]
        closures = self.stations.closures
        return [NearbyResult(station, hit, closures.get(station.id, at)) for station, hit in pairs]

    async def _with_details(self, hits: list[NearbyHit]) -> list[tuple[Station, NearbyHit]]:
        details = await self.stations.get_many([hit.station_id for hit in hits])
        # A station deleted between the index read and the detail read is simply left out.
        return [(details[hit.station_id], hit) for hit in hits if hit.station_id in details]


#: Beyond this distance the nearest answer is "far" and riders are told so plainly (bot and H5 page).
FAR_AWAY_M = 20_000.0
#: Walking speed behind "N min on foot": 4.5 km/h.
WALKING_M_PER_MIN = 75.0
#: Beyond this distance nobody walks: answers give the distance alone, not "372 min on foot".
WALKING_RANGE_M = 5_000.0


def walking_minutes(metres: float) -> int | None:
    """Minutes on foot to a station `metres` away, or None beyond walking range."""
    if metres > WALKING_RANGE_M:
        return None
    return max(1, math.ceil(metres / WALKING_M_PER_MIN))


PAGE_SIZE = 5
#: How many pages "more" can reach; past it a forged page number gets an empty page.
MAX_PAGES = 20


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """One screen of results. `fallback` means nothing matching is open, so these are the nearest
    stations whatever their hours (each with when it opens)."""

    results: list[NearbyResult]
    page: int
    has_more: bool
    fallback: bool
    include_closed: bool

    @property
    def far(self) -> bool:
        return bool(self.results) and self.results[0].hit.distance_m > FAR_AWAY_M


async def results_page(
    service: NearbyService,
    point: GeoPoint,
    *,
    page: int,
    amenities: Iterable[str],
    at: datetime,
    include_closed: bool = False,
    count: bool = True,
) -> ResultsPage:
    """Page `page` (0-based) of the nearest stations; falls back to closed ones when none is open. With
    `count`, a first page is counted as a search (when the service counts)."""
    amenities = tuple(amenities)
    if not 0 <= page < MAX_PAGES:
        return ResultsPage([], page, False, False, include_closed)
    wanted = PAGE_SIZE * (page + 1) + 1
    search = service.find_nearest_open
    found = search(point, wanted, amenities, at, include_closed)
    if count and page == 0:
        # A rider's search is its first page; other pages and a live location's refreshes are the same one.
        service.count(point, amenities, at, found, include_closed)
    fallback = False
    if not found and not include_closed and page == 0:
        found = search(point, wanted, amenities, at, True)
        fallback = True
    start = PAGE_SIZE * page
    return ResultsPage(
        results=await service.join(found[start : start + PAGE_SIZE], at),
        page=page,
        has_more=len(found) > start + PAGE_SIZE and page + 1 < MAX_PAGES,
        fallback=fallback,
        include_closed=include_closed or fallback,
    )
