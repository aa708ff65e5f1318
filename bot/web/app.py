"""The web application: composition of the HTTP side, its middlewares and its routes.

`build_web_app(core)` is what `yizhan serve`, tests and (later) webhook mode mount. It stores the long-lived
objects under typed `AppKey`s (bot/web/keys.py) and adds the route groups; a new group (reports, the H5
page) is one more `add_routes(app)` call here. Two middlewares give every route the same edges:
- errors: an `ApiError` becomes its JSON body, an aiohttp HTTP error (unknown route, wrong method) becomes
  the same JSON shape, and anything unexpected is logged and answered with a JSON 500;
- CORS: API v1 is a public read API, so any origin may read it and preflights are answered here.
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
from bot.services.nearby import NearbyService
from bot.web import api
from bot.web.keys import CLOCK, CORE, GEOJSON_CACHE, NEARBY
from bot.web.responses import ApiError, error_response, json_response
from domain.clock import Clock, utc_now

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    # Without it a cross-origin script could not read the ETag to revalidate the GeoJSON itself.
    "Access-Control-Expose-Headers": "ETag",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}
API_PATH = api.API_PREFIX + "/"
_ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def edge_middleware(metrics: Metrics | None = None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The one middleware of the app (each layer costs every request a few microseconds):

    - CORS: API v1 is a public read API, so any origin may read it and preflights are answered here;
    - errors: an `ApiError` becomes its JSON body, an aiohttp HTTP error (unknown route, wrong method) the
      same JSON shape, anything unexpected is logged and answered with a JSON 500;
    - with `metrics`, every 500 answered is counted.
    """

    @web.middleware
    async def edges(request: web.Request, handler: Handler) -> web.StreamResponse:
        api = request.path.startswith(API_PATH)
        if (
            api
            and request.method == "OPTIONS"
            and isinstance(request.match_info.http_exception, web.HTTPMethodNotAllowed)
        ):
            # A known path: the browser asks before a POST with a JSON body (or any non-simple request).
            return web.Response(status=204, headers=PREFLIGHT_HEADERS)
        try:
            response = await handler(request)
        except ApiError as error:
            response = error_response(error)
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
        if metrics is not None and response.status == 500:
            metrics.error("web")
        if api:
            response.headers.update(CORS_HEADERS)
        return response

    return edges


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


def access_log_options(settings: Settings) -> dict[str, Any]:
    """`AppRunner` keyword arguments: aiohttp's access log (paths only) when ACCESS_LOG asks for it."""
    return {"access_log_class": PathAccessLogger} if settings.access_log else {"access_log": None}


def build_web_app(
    core: Core, *, clock: Clock | None = None, metrics: Metrics | None = None
) -> web.Application:
    """The aiohttp application over an open core. `clock` is "now" for opening hours (tests pin it);
    with `metrics` (by default the core's), `/metrics` is served and searches and 500s are counted."""
    metrics = metrics or core.metrics
    app = web.Application(middlewares=[edge_middleware(metrics)])
    app[CORE] = core
    app[CLOCK] = clock or utc_now
    app[NEARBY] = NearbyService(
        core.search, core.stations, observe_search=metrics.observe_search if metrics is not None else None
    )
    app[GEOJSON_CACHE] = api.GeoJSONCache(core.stations)
    api.add_routes(app)
    if metrics is not None:
        from bot.web.metrics import setup_metrics

        setup_metrics(app, metrics)
    return app
