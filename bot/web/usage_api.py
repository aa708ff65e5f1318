"""API v1 for the station evaluation's counts: the H5 page's beacon and the bot's counted map links.

`POST /api/v1/usage` takes what the H5 page saw and what its rider tapped — `{"events": [{"station":
code, "kind": "view" | "navigate" | "call"}, …]}`, at most 20 events and 4 KB, sent with
`navigator.sendBeacon` — and counts each (station, kind) once per beacon; unknown stations are ignored.
`GET /api/v1/go/{code}/{app}` counts a navigation tap and redirects to the map app's page for the
station: the bot's Amap and Baidu buttons point there when PUBLIC_URL is set. Both are API routes, so the
per-client rate limit (API_RATE_LIMIT) bounds what one client can count. Neither keeps anything about
the client: the counts are per station per day (bot/services/evaluation.py).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.services.evaluation import MAX_BEACON_EVENTS, UsageKind
from bot.web.keys import CLOCK, CORE, STATIONS
from bot.web.responses import ApiError, BadParameter, NotFound, json_response
from domain.navigation import MapApp, map_url
from domain.values import StationNotFound

API_PREFIX = "/api/v1"
#: A beacon is a short list of codes and kinds; anything bigger is refused before it is parsed.
MAX_BEACON_BODY = 4 * 1024
MAX_CODE = 64
KINDS = tuple(kind.value for kind in UsageKind)


async def _beacon_body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BEACON_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BEACON_BODY, actual_size=request.content_length)
    # Read already, within HTTP_BODY_TIMEOUT and aiohttp's client_max_size (bot/web/app.py).
    raw = await request.read()
    if len(raw) > MAX_BEACON_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BEACON_BODY, actual_size=len(raw))
    try:
        # sendBeacon sends text/plain (a simple request, no preflight): the body is read as JSON whatever
        # its declared type.
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("the body must be a JSON object") from None


def _events(body: Any) -> list[tuple[str, UsageKind]]:
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise BadParameter("events", "events must be a list of {station, kind}")
    events = body["events"]
    if len(events) > MAX_BEACON_EVENTS:
        raise BadParameter("events", f"at most {MAX_BEACON_EVENTS} events a beacon")
    parsed = []
    for event in events:
        if not isinstance(event, dict):
            raise BadParameter("events", "each event is an object {station, kind}")
        code, kind = event.get("station"), event.get("kind")
        if not isinstance(code, str) or not 1 <= len(code) <= MAX_CODE or not code.isprintable():
            raise BadParameter("station", f"station must be a code of 1 to {MAX_CODE} characters")
        if kind not in KINDS:
            raise BadParameter("kind", f"kind must be one of {', '.join(KINDS)}")
        parsed.append((code, UsageKind(kind)))
    return parsed


async def usage_beacon(request: web.Request) -> web.Response:
    events = _events(await _beacon_body(request))
    app = request.app
    counted = await app[CORE].evaluation.record_codes(events, app[CLOCK]())
    return json_response({"counted": counted}, status=202)


async def counted_navigation(request: web.Request) -> web.Response:
    code, target = request.match_info["code"], request.match_info["app"]
    try:
        map_app = MapApp(target)
    except ValueError:
        raise NotFound(f"no map app {target[:16]!r}: amap or baidu") from None
    if len(code) > MAX_CODE or not code.isprintable():
        raise NotFound(f"no station with code {code[:MAX_CODE]!r}")
    app = request.app
    try:
        station = await app[STATIONS].get_cached(code)
    except StationNotFound:
        raise NotFound(f"no station with code {code!r}") from None
    app[CORE].evaluation.record(station.id, UsageKind.NAVIGATE, app[CLOCK](), station.timezone)
    # Not cached: every tap is counted.
    raise web.HTTPFound(map_url(station, map_app), headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{API_PREFIX}/usage", usage_beacon, name="usage_beacon")
    app.router.add_get(f"{API_PREFIX}/go/{{code}}/{{app}}", counted_navigation, name="counted_navigation")
