"""The HTTP server under the web app: aiohttp's, with what a server exposed to the internet needs.

- **Header timeout.** A client has `HTTP_HEADER_TIMEOUT` seconds to send a request's headers, on a new
  connection or after the previous answer on a kept-alive one; then the connection is closed. aiohttp's
  keep-alive timer is armed when a connection opens and after each answer, and closes the connection if no
  complete request has arrived by then (however many bytes of a partial one came, one a second or none), so
  it is that timer, set to the header timeout, rather than a watchdog of our own. (Behind nginx its
  `client_header_timeout` does the same first; deploy/nginx.conf.)
- **Arrival stamps.** Each connection records when its last bytes arrived (`received_at`, monotonic
  seconds), so that admission control (bot/web/admission.py) knows how long a request has waited in this
  process before its handler runs.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bot.config import Settings
from bot.web.app import access_log_options


class _StampingRequestHandler(RequestHandler):  # type: ignore[misc]
    __slots__ = ("received_at",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received_at = 0.0

    def data_received(self, data: bytes) -> None:
        # time.monotonic, not loop.time(): uvloop's is read once per turn of the loop.
        self.received_at = time.monotonic()
        super().data_received(data)


class _StampingServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _StampingRequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """`web.AppRunner` with the header timeout and the arrival stamps; `runner(app, settings)` builds one."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same server (handler, factory, options) whose connections stamp their arrivals.
        return _StampingServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )


def runner(app: web.Application, settings: Settings) -> AppRunner:
    return AppRunner(app, keepalive_timeout=settings.http_header_timeout, **access_log_options(settings))
