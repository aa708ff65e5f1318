"""The web application: composition of the HTTP side, its middlewares and its routes.

`build_web_app(core)` is what `yizhan serve`, tests and (later) webhook mode mount. It stores the long-lived
objects under typed `AppKey`s (bot/web/keys.py) and adds the route groups; a new group (reports, the H5
page) is one more `add_routes(app)` call here. One middleware gives every route the same edges
(admission and rate limits, errors, CORS preflights, metrics: see `edge_middleware`), and a response
hook adds CORS and rate limit headers to every API answer, streamed ones included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.app import Core
from bot.config import Settings
from bot.observability import Metrics
from bot.services.capacity import DatabaseBusy as PoolTimeout
from bot.services.capacity import RateDecision
from bot.services.nearby import NearbyService
from bot.web import api, reports_api, usage_api
from bot.web.admission import (
    UNGUARDED_PATHS,
    Admission,
    BodyTimeout,
    DatabaseBusy,
    Lane,
    RateLimited,
    client_address,
    counted_at_read,
    is_console_path,
    rate_headers,
    trusted_networks,
)
from bot.web.console import setup_console
from bot.web.keys import ADMISSION, CLOCK, CORE, GEOJSON_CACHE, NEARBY, STATIONS, SYNC_CACHE
from bot.web.responses import ApiError, error_response, json_response
from domain.clock import Clock, utc_now
from domain.demand import Channel

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    # Without it a cross-origin script could not read the ETag to revalidate the GeoJSON itself, nor
    # when to come back after a refusal.
    "Access-Control-Expose-Headers": (
        "ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
    ),
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    # X-Yizhan-Channel: an H5 page served from another origin still names itself (bot/web/api.py).
    "Access-Control-Allow-Headers": "Content-Type, X-Yizhan-Channel",
    "Access-Control-Max-Age": "86400",
}
API_PATH = api.API_PREFIX + "/"
RATE_DECISION: web.RequestKey[RateDecision] = web.RequestKey("rate_decision", RateDecision)
_ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def edge_middleware(
    metrics: Metrics | None = None, admission: Admission | None = None, body_timeout: float | None = None
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The one middleware of the app (each layer costs every request a few microseconds):

    - admission (with `admission`): a request takes a slot of its lane or is refused with a 503, and API
      requests pass their client's rate limit or are refused with a 429 (bot/web/admission.py);
    - with `body_timeout`, a request's body (POST and the like) is read here, within that many seconds of
      its headers, or answered with a 408 and its connection closed; handlers find it read
      (`request.read()`, `request.json()`);
    - CORS preflights of API v1 are answered here (the other CORS headers are added as answers start);
    - errors: an `ApiError` becomes its JSON body, a database pool timeout a 503, an aiohttp HTTP error
      (unknown route, wrong method) the same JSON shape, anything unexpected is logged and answered with a
      JSON 500;
    - with `metrics`, every answer is counted by route and status, refusals and 500s by kind.
    """

    @web.middleware
    async def edges(request: web.Request, handler: Handler) -> web.StreamResponse:
        counted = counted_at_read(request)
        path = request.path
        api = path.startswith(API_PATH)
        if (
            api
            and request.method == "OPTIONS"
            and isinstance(request.match_info.http_exception, web.HTTPMethodNotAllowed)
        ):
            # A known path: the browser asks before a POST with a JSON body (or any non-simple request).
            return web.Response(status=204, headers=PREFLIGHT_HEADERS)
        lane: Lane | None = None
        try:
            if admission is not None and path not in UNGUARDED_PATHS:
                candidate = admission.lane_of(path)
                admission.admit(candidate, counted)
                lane = candidate
                if api and admission.limiter is not None and lane is admission.public:
                    decision = await admission.limiter.check(client_address(request, admission.trusted))
                    request[RATE_DECISION] = decision
                    if not decision.allowed:
                        raise RateLimited(decision)
            if body_timeout is not None and request.body_exists and not _console_upload(request):
                try:
                    async with asyncio.timeout(body_timeout):
                        await request.read()
                except TimeoutError:
                    raise BodyTimeout(body_timeout) from None
            response = await handler(request)
        except ApiError as error:
            response = error_response(error)
            if metrics is not None and error.status in (429, 503):
                metrics.refused(error.code)
            if isinstance(error, BodyTimeout):
                # Sent now and the connection closed after it: aiohttp would otherwise linger, reading the
                # rest of a body that is not coming, before it closes.
                await response.prepare(request)
                await response.write_eof()
                request.protocol.force_close()
        except PoolTimeout:
            # Waiting longer for a connection would only lengthen the queue behind this request.
            response = error_response(DatabaseBusy())
            if metrics is not None:
                metrics.refused(DatabaseBusy.code)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects and the like are answers, not errors
            code = _ERROR_CODES.get(exc.status, "http_error")
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = json_response(
                {"error": {"code": code, "message": f"{exc.reason}: {request.method} {request.path}"}},
                status=exc.status,
                headers=headers,
            )
        except asyncio.CancelledError:
            raise  # the client went away; nothing to answer
        except Exception:
            # The path only: a search's query string is the rider's position.
            log.exception("unhandled error for %s %s", request.method, request.path)
            response = json_response(
                {"error": {"code": "internal_error", "message": "internal error; it has been logged"}},
                status=500,
            )
        finally:
            if lane is not None:
                lane.in_flight -= 1
        if metrics is not None:
            if response.status == 500:
                metrics.error("web")
            resource = request.match_info.route.resource
            metrics.http_answer(resource.canonical if resource is not None else "unmatched", response.status)
        return response

    return edges


def _console_upload(request: web.Request) -> bool:
    """A file sent to the staff console: read there, by a logged-in staff member only, up to
    IMPORT_MAX_BYTES and at an office line's pace (bot/web/console/base.py), not within HTTP_BODY_TIMEOUT."""
    return is_console_path(request.path) and request.content_type == "multipart/form-data"


class PathAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line without the query string, which carries a search's `lat` and `lon`."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.4f',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


async def _edge_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """As an answer starts (streamed ones too): CORS on API v1, and the client's rate limit."""
    if request.path.startswith(API_PATH):
        response.headers.update(CORS_HEADERS)
        decision = request.get(RATE_DECISION)
        if decision is not None:
            response.headers.update(rate_headers(decision))


def access_log_options(settings: Settings) -> dict[str, Any]:
    """`AppRunner` keyword arguments: aiohttp's access log (paths only) when ACCESS_LOG asks for it."""
    return {"access_log_class": PathAccessLogger} if settings.access_log else {"access_log": None}


def build_web_app(
    core: Core,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    bot_path: str | None = None,
    secure_cookies: bool | None = None,
) -> web.Application:
    """The aiohttp application over an open core. `clock` is "now" for opening hours (tests pin it);
    with `metrics` (by default the core's), `/metrics` is served and answers and refusals are counted.
    `bot_path` is the webhook's path: Telegram's updates get a lane of their own there. The staff console
    is mounted at `/console/` (bot/web/console/) with a lane of its own; `secure_cookies` is its cookies'
    `Secure` flag when CONSOLE_SECURE_COOKIES is unset (default: on)."""
    metrics = metrics or core.metrics
    settings = core.settings
    admission = Admission(
        public=Lane("public", settings.http_max_in_flight),
        bot=Lane("bot", settings.bot_max_in_flight),
        console=Lane("console", settings.console_max_in_flight),
        limiter=core.api_limiter,
        trusted=trusted_networks(settings.trusted_proxies),
        bot_paths=frozenset({bot_path}) if bot_path else frozenset(),
        metrics=metrics,
    )
    app = web.Application(middlewares=[edge_middleware(metrics, admission, settings.http_body_timeout)])
    app[CORE] = core
    app[CLOCK] = clock or utc_now
    app[ADMISSION] = admission
    stations = core.api_stations or core.stations
    app[STATIONS] = stations
    app[NEARBY] = NearbyService(
        core.search,
        stations,
        observe_search=metrics.observe_search if metrics is not None else None,
        demand=core.demand.counter,
        channel=Channel.API,
    )
    app[GEOJSON_CACHE] = api.GeoJSONCache(stations)
    app[SYNC_CACHE] = api.SyncPageCache(settings.sync_cache_seconds)
    app.on_response_prepare.append(_edge_headers)
    api.add_routes(app)
    reports_api.add_routes(app)
    usage_api.add_routes(app)
    setup_console(app, core, secure_cookies=secure_cookies)
    if metrics is not None:
        from bot.web.metrics import setup_metrics

        for lane in (admission.public, admission.bot, admission.console):
            assert lane is not None
            metrics.track_lane(lane.name, lambda lane=lane: lane.in_flight)  # type: ignore[misc]
        setup_metrics(app, metrics)
    return app
