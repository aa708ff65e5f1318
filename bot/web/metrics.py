"""`GET /metrics`: this process's Prometheus metrics (the web app's 500 answers are counted by its edge
middleware, `bot.web.app.edge_middleware`).

Each process (replica) serves its own registry; Prometheus scrapes every replica and sums.
"""

from __future__ import annotations

from aiohttp import web

from bot.observability import CONTENT_TYPE_LATEST, Metrics

METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    # CONTENT_TYPE_LATEST carries its own charset parameter, so it goes in as a raw header.
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def setup_metrics(app: web.Application, metrics: Metrics) -> None:
    """Serve `/metrics` (the app's edge middleware counts its 500 answers); call before it starts."""
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_endpoint, name="metrics")
