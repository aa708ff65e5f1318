"""API v1 routes: thin handlers that parse the query, call one service and render JSON.

The shapes come from the services (`NearbyService.nearby_json`, `station_json`, `StationDetail.as_json`) so
that the HTTP API, the command line and the bot cannot drift apart; this module only adds HTTP concerns:
parameters, status codes, caching headers and the GeoJSON document's ETag.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.services.stations import MAX_SYNC_PAGE, NetworkVersion, StationService, SyncCursor, station_json
from bot.web import params
from bot.web.assets import accepts_gzip
from bot.web.keys import CLOCK, CORE, GEOJSON_CACHE, NEARBY, STATIONS, SYNC_CACHE
from bot.web.responses import BadParameter, NotFound, json_body, json_response, raw_json_response
from domain.demand import Channel
from domain.values import BBox, InvalidLocation, StationNotFound

API_PREFIX = "/api/v1"
MAX_K = 50
DEFAULT_K = 5
#: The H5 page names itself in this header, so that its searches are counted as its own.
CHANNEL_HEADER = "X-Yizhan-Channel"
MAX_SYNC_LIMIT = MAX_SYNC_PAGE
DEFAULT_SYNC_LIMIT = 1000
#: Longest station code the database holds; a longer one cannot exist, so it is not looked up.
MAX_CODE_LENGTH = 64
#: Bumped when the GeoJSON representation changes, so that caches holding the old one revalidate.
GEOJSON_FORMAT = "v1"
GEOJSON_CACHE_CONTROL = "public, max-age=300"
#: Seconds a successful database and Redis check answers `/healthz` for (load balancers probe every few
#: seconds; a flood of probes costs one check a second).
HEALTH_MAX_AGE = 1.0
#: Bytes of the GeoJSON document written at a time (decompressing one costs a fraction of a millisecond).
STREAM_CHUNK = 256 * 1024
#: Sync pages with more stations than this are encoded in a worker thread.
ENCODE_IN_THREAD = 200
#: Bytes of rendered sync pages a process keeps (a full page of 5,000 stations is about 2.5 MB).
SYNC_CACHE_BYTES = 64 * 1024 * 1024


async def nearby_stations(request: web.Request) -> web.Response:
    query = request.query
    app = request.app
    point = params.required_point(query)
    k = params.integer(query, "k", default=DEFAULT_K, low=1, high=MAX_K)
    amenities = params.amenities(query)
    include_closed = params.boolean(query, "include_closed")
    crs = params.crs(query)
    at = params.instant(query, "at", default_tz=app[CORE].settings.default_tz, now=app[CLOCK])
    service = app[NEARBY]
    try:
        point = service.to_wgs84(point, crs)
    except InvalidLocation as exc:
        raise BadParameter("crs", exc.reason) from None
    # A rider's search is counted (a cell, no point; bot/services/analytics.py), as the H5 page's when the
    # page says so; a question about another instant (`at`) is planning, not a rider looking now.
    channel = Channel.H5 if request.headers.get(CHANNEL_HEADER, "").lower() == Channel.H5 else Channel.API
    answer = await service.nearby_json(
        point,
        k=k,
        amenities=amenities,
        at=at,
        include_closed=include_closed,
        count="at" not in query,
        channel=channel,
    )
    # Depends on the instant, so no cache may keep it.
    return json_response(answer, cache="no-store")


async def station_detail(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if len(code) > MAX_CODE_LENGTH or not code.isprintable():
        raise NotFound(f"no station with code {code[:MAX_CODE_LENGTH]!r}")
    app = request.app
    try:
        detail = await app[STATIONS].detail(code, app[CLOCK]())
    except StationNotFound:
        raise NotFound(f"no station with code {code!r}") from None
    # open_now may be up to a minute stale in a cache; clients that need it exact ask nearby.
    return json_response(detail.as_json(), cache="public, max-age=60")


SyncKey = tuple[datetime | None, BBox | None, int, SyncCursor | None, int]


class SyncPageCache:
    """Rendered sync pages by query and network generation (`StationService.generation`), so that partner
    apps re-reading pages of an unchanged network cost neither the database nor the encoding.

    A change this process makes or hears of (change feed) moves the generation, so its pages are never
    served again. A change another process makes without announcing it (no Redis) can stay unseen for at
    most `ttl` seconds; the page says as of when (`server_time`), so a client that syncs next from it
    misses nothing. Concurrent requests for a page not yet cached share one read. At most `max_bytes` of
    pages are kept, least recently used first out."""

    def __init__(self, ttl: float, max_bytes: int = SYNC_CACHE_BYTES) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._pages: OrderedDict[SyncKey, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._reading: dict[SyncKey, asyncio.Task[bytes]] = {}

    def get(self, key: SyncKey) -> bytes | None:
        entry = self._pages.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            self._drop(key)
            return None
        self._pages.move_to_end(key)
        return entry[1]

    def put(self, key: SyncKey, body: bytes) -> None:
        if self.ttl <= 0 or len(body) > self.max_bytes:
            return
        if key in self._pages:
            self._drop(key)
        self._pages[key] = (time.monotonic(), body)
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._pages)))

    def _drop(self, key: SyncKey) -> None:
        _, body = self._pages.pop(key)
        self._bytes -= len(body)

    async def page(self, key: SyncKey, read: Callable[[], Awaitable[bytes]]) -> bytes:
        body = self.get(key)
        if body is not None:
            return body
        reading = self._reading.get(key)
        if reading is None:

            async def read_and_keep() -> bytes:
                body = await read()
                self.put(key, body)
                return body

            reading = self._reading[key] = asyncio.ensure_future(read_and_keep())
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        # Shielded: one client hanging up does not cancel the read the others wait for.
        return await asyncio.shield(reading)

    def __len__(self) -> int:
        return len(self._pages)


async def stations_changed(request: web.Request) -> web.Response:
    query = request.query
    bbox = params.bbox(query)
    since = params.since(query)
    limit = params.integer(query, "limit", default=DEFAULT_SYNC_LIMIT, low=1, high=MAX_SYNC_LIMIT)
    after = params.cursor(query)
    stations = request.app[STATIONS]

    async def read() -> bytes:
        page = await stations.changes(since=since, bbox=bbox, limit=limit, after=after)

        def render() -> bytes:
            return json_body(
                {
                    "server_time": page.server_time.isoformat(),
                    "stations": [station_json(station) for station in page.stations],
                    "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
                }
            )

        # A full page is tens of milliseconds of encoding: in a thread, the event loop gets its turn every
        # few milliseconds instead of waiting for the whole page.
        return await asyncio.to_thread(render) if len(page.stations) > ENCODE_IN_THREAD else render()

    # The generation is read before the page: a change committed meanwhile moves it, so a page that may
    # predate the change is kept under the old one only.
    body = await request.app[SYNC_CACHE].page((since, bbox, limit, after, stations.generation), read)
    # A sync answer changes with every write: caches must revalidate (and have no validator to do it).
    return raw_json_response(body, cache="no-cache")


@dataclass(frozen=True, slots=True)
class RenderedNetwork:
    """The GeoJSON document of one network version, gzipped once. `etag` is None when the network changed
    while it was read, so the document belongs to no single version.

    Only the gzipped form is kept (about 15 MB for the national network instead of 113 MB more in every
    process), shared by every reader. Both forms are sent a chunk at a time (`chunks`): the identity one
    decompressed as it goes, so a reader costs at most a chunk and the socket's buffer, however many there
    are and however slowly they read."""

    etag: str | None
    gzipped: bytes
    #: Bytes of the document itself (its Content-Length when sent without gzip).
    size: int

    def chunks(self, gzipped: bool) -> Iterator[bytes | memoryview]:
        if gzipped:
            view = memoryview(self.gzipped)
            for start in range(0, len(view), STREAM_CHUNK):
                yield view[start : start + STREAM_CHUNK]  # a view: no copy of the shared document
            return
        inflater = zlib.decompressobj(wbits=31)  # gzip framing
        data = self.gzipped
        for start in range(0, len(data), STREAM_CHUNK // 8):
            piece = inflater.decompress(data[start : start + STREAM_CHUNK // 8], STREAM_CHUNK)
            while piece:
                yield piece
                piece = inflater.decompress(inflater.unconsumed_tail, STREAM_CHUNK)
        tail = inflater.flush()
        if tail:
            yield tail


def geojson_etag(version: NetworkVersion) -> str:
    return f"{GEOJSON_FORMAT}-{version.token}"


def _gzip(body: bytes) -> bytes:
    # Level 6 costs a few seconds once per version (zlib releases the GIL) and cuts the file sevenfold.
    return gzip.compress(body, compresslevel=6, mtime=0)


class GeoJSONCache:
    """The latest network document this process built. Reading 186,100 stations and encoding them takes
    seconds, so it is done once per version, by one request while concurrent ones wait for it."""

    def __init__(self, stations: StationService) -> None:
        self.stations = stations
        self._lock = asyncio.Lock()
        self._current: RenderedNetwork | None = None

    async def get(self, version: NetworkVersion) -> RenderedNetwork:
        tag = geojson_etag(version)
        current = self._current
        if current is not None and current.etag == tag:
            return current
        async with self._lock:
            current = self._current
            if current is not None and current.etag == tag:
                return current
            document = await self.stations.network_geojson()
            gzipped, size = await asyncio.to_thread(_gzip, document), len(document)
            del document  # the process keeps the gzipped form only
            if await self.stations.network_version() != version:
                return RenderedNetwork(None, gzipped, size)
            self._current = RenderedNetwork(tag, gzipped, size)
            return self._current


def _quoted(tag: str, gzipped: bool) -> str:
    # A gzipped body is a different representation, so under a strong ETag it needs a tag of its own.
    return f'"{tag}-gzip"' if gzipped else f'"{tag}"'


def _not_modified(request: web.Request, tag: str) -> bool:
    """If-None-Match uses weak comparison: either representation's tag, W/ or not, matches."""
    candidates = request.if_none_match
    if not candidates:
        return False
    return any(etag.value in ("*", tag, f"{tag}-gzip") for etag in candidates)


async def network_geojson(request: web.Request) -> web.StreamResponse:
    app = request.app
    version = await app[STATIONS].network_version()
    tag = geojson_etag(version)
    gzipped = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    headers = {"Cache-Control": GEOJSON_CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if _not_modified(request, tag):
        return web.Response(status=304, headers={**headers, "ETag": _quoted(tag, gzipped)})
    rendered = await app[GEOJSON_CACHE].get(version)
    if rendered.etag is not None:
        headers["ETag"] = _quoted(rendered.etag, gzipped)
    else:
        headers["Cache-Control"] = "no-store"
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    response = web.StreamResponse(headers=headers)
    response.content_type = "application/geo+json"
    response.charset = "utf-8"
    response.content_length = len(rendered.gzipped) if gzipped else rendered.size
    await response.prepare(request)
    if request.method != "HEAD":
        for chunk in rendered.chunks(gzipped):
            # Waits while the client's socket buffer is full: a slow reader holds a chunk, not a copy.
            await response.write(chunk)
    await response.write_eof()
    return response


async def openapi_document(request: web.Request) -> web.Response:
    from bot.web.openapi import openapi_json

    return web.Response(
        body=openapi_json(),
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def healthz(request: web.Request) -> web.Response:
    # Ready means a load balancer may send traffic here: database, index and Redis (when configured).
    health = await request.app[CORE].check_health(max_age=HEALTH_MAX_AGE)
    return json_response(health.as_json(), status=200 if health.ready else 503, cache="no-store")


def add_routes(app: web.Application) -> None:
    """Mount API v1 and the health check. `nearby` precedes `{code}`, which would otherwise take it."""
    app.router.add_get(f"{API_PREFIX}/stations/nearby", nearby_stations, name="nearby")
    app.router.add_get(f"{API_PREFIX}/stations.geojson", network_geojson, name="network_geojson")
    app.router.add_get(f"{API_PREFIX}/stations/{{code}}", station_detail, name="station")
    app.router.add_get(f"{API_PREFIX}/stations", stations_changed, name="stations")
    app.router.add_get(f"{API_PREFIX}/openapi.json", openapi_document, name="openapi")
    app.router.add_get("/healthz", healthz, name="healthz")
