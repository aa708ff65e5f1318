"""The HTTP server under the web app: aiohttp's, with what a server exposed to the internet needs.

- **Header timeout.** A client has `HTTP_HEADER_TIMEOUT` seconds to send a request's headers, on a new
  connection or after the previous answer on a kept-alive one; then the connection is closed. aiohttp's
  keep-alive timer is armed when a connection opens and after each answer, and closes the connection if no
  complete request has arrived by then (however many bytes of a partial one came, one a second or none), so
  it is that timer, set to the header timeout, rather than a watchdog of our own. (Behind nginx its
  `client_header_timeout` does the same first; deploy/nginx.conf.)
- **Refusal as requests are read.** Under a flood every connection's request is read in one turn of the
  event loop; beyond the turn's budget (`Admission.take_turn_slot`), a new body-less GET to a guarded path
  is answered with a prepared 503 right there: a few microseconds instead of a request object, routing,
  the middleware and a response, so refusing costs little next to serving.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bot.config import Settings
from bot.web.admission import RETRY_AFTER_S, Admission, Overloaded
from bot.web.app import CORS_HEADERS, access_log_options
from bot.web.keys import ADMISSION
from bot.web.responses import json_body


def _refusal() -> bytes:
    """The whole 503 answer of a request refused as it is read: the body and headers the app would give."""
    body = json_body(Overloaded().as_json())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        "Retry-After": str(RETRY_AFTER_S),
        **CORS_HEADERS,
    }
    head = "HTTP/1.1 503 Service Unavailable\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


#: Connections the kernel completes before the loop accepts them. aiohttp's 128 made a crowd of 2,000
#: connecting at once wait 1 to 3 s for SYN retransmissions (bench/README-overload.md); Linux caps it at
#: net.core.somaxconn (4,096 by default).
LISTEN_BACKLOG = 2048
REFUSAL = _refusal()
_HEAD_END = b"\r\n\r\n"


class _AdmittingRequestHandler(RequestHandler):  # type: ignore[misc]
    __slots__ = ("admission", "counted")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admission: Admission | None = None
        #: The request being read took its slot of the turn here (`bot.web.admission.counted_at_read`).
        self.counted = False

    def data_received(self, data: bytes) -> None:
        admission = self.admission
        # A new request on an idle connection (none queued, the handler waiting for one) takes a slot of
        # the turn; if the turn's budget is spent, it is answered here, before aiohttp builds anything.
        if admission is not None and self._waiter is not None and not self._messages:
            if admission.take_turn_slot():
                self.counted = True
            elif self._refuse(admission, data):
                return
        super().data_received(data)

    def _refuse(self, admission: Admission, data: bytes) -> bool:
        """Answer `data` with the prepared 503 if it is exactly one whole body-less HTTP/1.1 GET or HEAD to
        a guarded path (anything else goes to aiohttp, which refuses it at its own cost if need be)."""
        if data.find(_HEAD_END) != len(data) - 4:
            return False
        line_end = data.find(b"\r\n")
        parts = data[:line_end].split(b" ")
        if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD") or parts[2] != b"HTTP/1.1":
            return False
        lowered = data.lower()
        if b"\ncontent-length:" in lowered or b"\ntransfer-encoding:" in lowered:
            return False
        path = parts[1].split(b"?", 1)[0].decode("latin-1")
        if not admission.guards(path):
            return False
        transport = self.transport
        if transport is None:
            return False
        transport.write(REFUSAL)
        if b"\nconnection: close" in lowered:
            transport.close()
        else:
            # The connection is in use: the header timeout counts from this answer, as from any other.
            self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
        admission.refused_as_read += 1
        return True


class _AdmittingServer(web.Server):
    admission: Admission | None = None

    def __call__(self) -> RequestHandler:
        handler = _AdmittingRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.admission = self.admission
        return handler


class AppRunner(web.AppRunner):
    """`web.AppRunner` with the header timeout and the refusals as requests are read; `runner(app, settings)`
    builds one."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same server (handler, factory, options) whose connections refuse what the turn cannot take.
        admitting = _AdmittingServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )
        admitting.admission = self.app.get(ADMISSION)
        return admitting


def runner(app: web.Application, settings: Settings) -> AppRunner:
    return AppRunner(app, keepalive_timeout=settings.http_header_timeout, **access_log_options(settings))


def site(runner: web.BaseRunner, host: str, port: int) -> web.TCPSite:
    """The listening socket, with a backlog for a crowd connecting at once (`LISTEN_BACKLOG`)."""
    return web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
