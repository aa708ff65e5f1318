"""`GET /metrics`: this process's Prometheus metrics, and the count of the web app's 500 answers.

Each process (replica) serves its own registry; Prometheus scrapes every replica and sums.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.observability import CONTENT_TYPE_LATEST, Metrics

METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    # CONTENT_TYPE_LATEST carries its own charset parameter, so it goes in as a raw header.
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def _count_server_errors(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def count_server_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Outermost: the error middleware has already turned an unexpected exception into a JSON 500.
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status == 500:
                metrics.error("web")
            raise
        except Exception:
            metrics.error("web")
            raise
        if response.status == 500:
            metrics.error("web")
        return response

    return count_server_errors


def setup_metrics(app: web.Application, metrics: Metrics) -> None:
    """Serve `/metrics` and count 500 answers; call before the application starts."""
    app[METRICS] = metrics
    app.middlewares.insert(0, _count_server_errors(metrics))
    app.router.add_get("/metrics", metrics_endpoint, name="metrics")
