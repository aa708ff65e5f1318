"""A local Telegram Bot API server: the Telegram that end-to-end tests, benchmarks and `yizhan demo` talk to.

aiogram's real HTTP session points at it (`TelegramAPIServer.from_base(api.url)`), so a bot under test goes
through exactly the code it runs in production: multipart encoding, JSON parsing of results, error mapping to
`TelegramBadRequest`/`TelegramRetryAfter`. The server answers with the real API's JSON shapes and error
descriptions, keeps every chat (user and bot messages in order, their current state after edits), and offers
a Python API to act as users (`send_text`, `press`, `send_location` …) and to inspect what the bot did
(`chat`, `calls`, `callback_answers`, `wait_for_change` …). The browser demo in `demo.py` sits on the same
state, so a person and a test see the same chat.

Deliberate differences from the real server: webhooks may be plain HTTP on any port (tests run locally),
failed webhook deliveries are dropped after `webhook_attempts` tries instead of being retried for hours,
and only the HTML parse mode is interpreted (Markdown text is stored verbatim).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from localapi.demo import DemoChat
from localapi.inspection import Inspection
from localapi.messages import MessageMethods
from localapi.profile import ProfileMethods
from localapi.state import ApiError, ChatMessage, Files, Handler, Params, bad_request, coerce, json_dumps, log
from localapi.uploads import Uploads
from localapi.users import ActingUsers

__all__ = ["ApiError", "ChatMessage", "LocalBotAPI"]


class LocalBotAPI(ActingUsers, MessageMethods, Uploads, ProfileMethods, Inspection):
    """An in-process Telegram Bot API for one bot token, with users a test can act as.

    The method families live in their own modules (`updates`, `messages`, `uploads`, `profile`), acting as
    users in `users`, inspection in `inspection`, the shared state in `state`; this class wires them to
    HTTP and to the demo page."""

    def __init__(
        self,
        token: str = "42:LOCAL-TEST-TOKEN",
        username: str = "yizhan_bot",
        rate_limit: float | None = None,
        *,
        preset_places: list[tuple[str, str, float, float]] | None = None,
        bot_name: str = "驿站助手",
        live_step_seconds: float = 31.0,
        chosen_locale: Callable[[int], Awaitable[str | None]] | None = None,
    ) -> None:
        super().__init__(token, username, rate_limit, bot_name=bot_name)

        handlers: list[tuple[str, Handler]] = [
            ("getMe", self._get_me),
            ("getUpdates", self._get_updates),
            ("setWebhook", self._set_webhook),
            ("deleteWebhook", self._delete_webhook),
            ("getWebhookInfo", self._get_webhook_info),
            ("getChat", self._get_chat),
            ("sendMessage", self._send_message),
            ("editMessageText", self._edit_message_text),
            ("editMessageReplyMarkup", self._edit_message_reply_markup),
            ("deleteMessage", self._delete_message),
            ("deleteMessages", self._delete_messages),
            ("answerCallbackQuery", self._answer_callback_query),
            ("sendLocation", self._send_location),
            ("sendVenue", self._send_venue),
            ("sendPhoto", self._send_photo),
            ("getFile", self._get_file),
            ("sendChatAction", self._send_chat_action),
            ("setMyCommands", self._set_my_commands),
            ("getMyCommands", self._get_my_commands),
            ("deleteMyCommands", self._delete_my_commands),
            ("setMyDescription", partial(self._set_description, "description", 512)),
            ("getMyDescription", partial(self._get_description, "description")),
            ("setMyShortDescription", partial(self._set_description, "short_description", 120)),
            ("getMyShortDescription", partial(self._get_description, "short_description")),
            ("setMyName", partial(self._set_description, "name", 64)),
            ("getMyName", partial(self._get_description, "name")),
            ("setChatMenuButton", self._set_chat_menu_button),
            ("getChatMenuButton", self._get_chat_menu_button),
        ]
        self._methods.update({name.lower(): (name, h) for name, h in handlers})

        self.app = web.Application(client_max_size=50 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle_http)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self.demo = DemoChat(
            self, preset_places or [], live_step_seconds=live_step_seconds, chosen_locale=chosen_locale
        )
        self.demo.install(self.app)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: a free port); returns the base URL for `TelegramAPIServer.from_base`."""
        self._closing = False
        # A long poll still held at shutdown would make cleanup wait; `stop` wakes them first anyway.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"
        log.info("local Bot API on %s", self.url)
        return self.url

    async def stop(self) -> None:
        self._closing = True
        self._wake()
        await self.demo.stop_live()
        await self._stop_webhook()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ HTTP

    async def _handle_http(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        try:
            params, files = await self._read_params(request)
            result = await self.invoke(method, params, files)
            body: dict[str, Any] = {"ok": True, "result": result}
            status = 200
        except ApiError as error:
            body, status = error.payload(), error.error_code
            self.errors.append((method, error.description))
        return web.json_response(body, status=status, dumps=json_dumps)

    async def _download(self, request: web.Request) -> web.Response:
        """A file by the `file_path` getFile gave, as Telegram serves it (`/file/bot<token>/<path>`)."""
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        data = self.file_at(request.match_info["path"])
        if data is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=data, content_type="image/jpeg" if data[:2] == b"\xff\xd8" else "image/png")

    async def _read_params(self, request: web.Request) -> tuple[Params, Files]:
        raw: dict[str, Any] = dict(request.query)
        files: Files = {}
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise bad_request("can't parse JSON object") from exc
                if not isinstance(body, dict):
                    raise bad_request("can't parse JSON object")
                raw.update(body)
            elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = (value.filename, value.file.read())
                    else:
                        raw[key] = value
        return {key: coerce(key, value) for key, value in raw.items()}, files
