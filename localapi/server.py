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

import asyncio
import contextlib
import copy
import html
import inspect
import json
import logging
import math
import re
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from aiogram.types import MessageEntity
from aiogram.utils.text_decorations import html_decoration
from aiohttp import BodyPartReader, ClientError, ClientSession, ClientTimeout, MultipartReader, web

from localapi.demo import DemoChat
from localapi.entities import EntityParseError, parse_html, utf16_len

__all__ = ["ApiError", "ChatMessage", "LocalBotAPI"]

log = logging.getLogger("yizhan.localapi")

T = TypeVar("T")
Params = dict[str, Any]
Files = dict[str, tuple[str, bytes]]
Handler = Callable[[Params, Files], Awaitable[Any]]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
# The real server holds a long poll for at most 50 s whatever `timeout` asks for.
MAX_POLL_TIMEOUT = 50.0
# Update kinds a bot gets when it never chose `allowed_updates` (per the getUpdates docs).
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

# Form and multipart requests carry every value as a string; these say how to read them back.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "link_preview_options",
        "reply_parameters",
        "commands",
        "scope",
        "menu_button",
        "allowed_updates",
        "entities",
        "caption_entities",
        "message_ids",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "live_period",
        "heading",
        "proximity_alert_radius",
        "cache_time",
        "max_connections",
        "message_thread_id",
        "reply_to_message_id",
        "user_id",
    }
)
_FLOAT_FIELDS = frozenset({"latitude", "longitude", "horizontal_accuracy"})
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "has_spoiler",
        "show_caption_above_media",
        "allow_paid_broadcast",
    }
)
_UPLOADS = frozenset({"photo"})


class ApiError(Exception):
    """An error answer of the Bot API: `{"ok": false, "error_code": …, "description": …}`."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat as it is now (after edits); a snapshot, safe to keep in a test."""

    message_id: int
    from_bot: bool
    text: str
    """Plain text (or photo caption): tags stripped, character references resolved."""
    html: str
    """The HTML that renders the message: what the bot sent with parse_mode HTML, escaped text otherwise."""
    reply_markup: dict[str, Any] | None
    """As sent, including reply keyboards (which, like in Telegram, are not part of the API's Message)."""
    venue: dict[str, Any] | None
    location: dict[str, Any] | None
    edits: int
    parse_mode: str | None = None
    date: int = 0
    photo: list[dict[str, Any]] | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    """The Message object as the API returns it now."""

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline buttons, row by row flattened (empty for reply keyboards)."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]


@dataclass(slots=True)
class _Stored:
    raw: dict[str, Any]
    from_bot: bool
    html: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    created: int
    changed: int
    edits: int = 0

    @property
    def message_id(self) -> int:
        return int(self.raw["message_id"])

    def snapshot(self) -> ChatMessage:
        raw = copy.deepcopy(self.raw)
        text = raw.get("text", raw.get("caption", ""))
        return ChatMessage(
            message_id=self.message_id,
            from_bot=self.from_bot,
            text=text,
            html=self.html,
            reply_markup=copy.deepcopy(self.reply_markup),
            venue=raw.get("venue"),
            location=raw.get("location"),
            edits=self.edits,
            parse_mode=self.parse_mode,
            date=int(raw.get("date", 0)),
            photo=raw.get("photo"),
            raw=raw,
        )


@dataclass(slots=True)
class _Chat:
    info: dict[str, Any]
    messages: dict[int, _Stored] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: dict[str, Any] | None = None
    deleted: dict[int, int] = field(default_factory=dict)
    """message_id → event counter when it was deleted (the demo page removes it)."""
    blocked: bool = False
    menu_button: dict[str, Any] | None = None


@dataclass(slots=True)
class _Fault:
    error_code: int
    description: str
    retry_after: int | None
    remaining: int


class _TokenBucket:
    """Messages per second across all chats; a one-second burst, like Telegram's global limit."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a message may go now, else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _coerce(name: str, value: Any) -> Any:
    """Read one request parameter back into its JSON type (form values are all strings)."""
    if not isinstance(value, str):
        return value
    try:
        if name in _JSON_FIELDS:
            return json.loads(value)
        if name in _INT_FIELDS:
            if name == "chat_id" and not value.lstrip("-").isdigit():
                return value  # "@channelusername"
            return int(value)
        if name in _FLOAT_FIELDS:
            return float(value)
    except ValueError as exc:
        if name == "reply_markup":
            raise bad_request("can't parse reply keyboard markup JSON object") from exc
        raise bad_request(f"invalid {name} parameter") from exc
    if name in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG or JPEG, so PhotoSize looks plausible; a square guess otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        index = 2
        while index + 9 < len(data):
            if data[index] != 0xFF:
                index += 1
                continue
            marker = data[index + 1]
            (segment,) = struct.unpack(">H", data[index + 2 : index + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[index + 5 : index + 9])
                return int(width), int(height)
            index += 2 + segment
    return 512, 512


class LocalBotAPI:
    """An in-process Telegram Bot API for one bot token, with users a test can act as."""

    def __init__(
        self,
        token: str = "42:LOCAL-TEST-TOKEN",
        username: str = "yizhan_bot",
        rate_limit: float | None = None,
        *,
        preset_places: list[tuple[str, str, float, float]] | None = None,
        bot_name: str = "驿站助手",
        live_step_seconds: float = 31.0,
    ) -> None:
        self.token = token
        self.username = username
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.rate_limit = rate_limit
        self._bucket = _TokenBucket(rate_limit) if rate_limit else None

        # What tests assert on.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.unknown_methods: list[str] = []
        self.errors: list[tuple[str, str]] = []
        """(method, description) of every error answer sent over HTTP."""
        self.rate_limited_count = 0
        """429 answers sent, from `rate_limit` and from `fail_next(…, 429, …)` alike."""
        self.webhook_deliveries: list[dict[str, Any]] = []
        self.webhook_attempts = 3
        self.webhook_retry_delay = 0.05

        self._chats: dict[int, _Chat] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._descriptions: dict[tuple[str, str], str] = {}
        self._default_menu_button: dict[str, Any] = {"type": "default"}
        self._files: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._notices: list[tuple[int, int, dict[str, Any]]] = []
        self._webhook: dict[str, Any] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_error: tuple[int, str] | None = None

        # One counter for every change a test or the demo page may wait for.
        self._version = 0
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.url = ""

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
        self._methods: dict[str, tuple[str, Handler]] = {name.lower(): (name, h) for name, h in handlers}

        self.app = web.Application(client_max_size=50 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle_http)
        self.demo = DemoChat(self, preset_places or [], live_step_seconds=live_step_seconds)
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

    # ------------------------------------------------------------------ change notification

    def _wake(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _notify(self) -> int:
        self._version += 1
        self._wake()
        return self._version

    async def wait_change(self, seconds: float | None) -> None:
        """Return at the next change (or wake-up), or after `seconds`."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    @property
    def version(self) -> int:
        return self._version

    @property
    def closing(self) -> bool:
        return self._closing

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
        return web.json_response(body, status=status, dumps=_json_dumps)

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
        return {key: _coerce(key, value) for key, value in raw.items()}, files

    async def invoke(self, method: str, params: Params, files: Files | None = None) -> Any:
        """Run one Bot API method as if it came over HTTP; raises `ApiError` where the API would fail."""
        canonical, handler = self._methods.get(method.lower(), (method, None))
        self.calls.append((canonical, params))
        faults = self._faults.get(canonical.lower())
        if faults:
            fault = faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.pop(0)
            if fault.error_code == 429:
                self.rate_limited_count += 1
            raise ApiError(fault.error_code, fault.description, fault.retry_after)
        if handler is None:
            log.warning("bot called %s, which the local Bot API does not implement", method)
            self.unknown_methods.append(method)
            raise bad_request("method not found")
        if self._bucket is not None and canonical.startswith("send") and canonical != "sendChatAction":
            wait = self._bucket.take()
            if wait > 0:
                self.rate_limited_count += 1
                retry_after = max(1, math.ceil(wait))
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        return await handler(params, files or {})

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with this error instead of running them."""
        self._faults.setdefault(method.lower(), []).append(
            _Fault(error_code, description, retry_after, times)
        )

    # ------------------------------------------------------------------ lookups and validation

    def _chat_for(self, params: Params, *, sending: bool = False) -> _Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request("chat not found")
        if sending and chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    @staticmethod
    def _stored_for(chat: _Chat, params: Params, not_found: str) -> _Stored:
        if params.get("inline_message_id"):
            raise bad_request(not_found)  # inline mode is not simulated
        message_id = params.get("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        stored = chat.messages.get(message_id)
        if stored is None:
            raise bad_request(not_found)
        return stored

    @staticmethod
    def _validate_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad_request(
                    'can\'t parse inline keyboard button: field "inline_keyboard" must be an Array'
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                        raise bad_request("BUTTON_DATA_INVALID")
                    url = button.get("url")
                    if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
                        raise bad_request("BUTTON_URL_INVALID")
                    actions = set(button) - {"text", "style", "icon_custom_emoji_id"}
                    if not actions:
                        raise bad_request("text buttons are unallowed in the inline keyboard")
            return markup
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list):
                raise bad_request("can't parse reply keyboard markup JSON object")
            normalized = [
                [button if isinstance(button, dict) else {"text": str(button)} for button in row]
                for row in rows
            ]
            if any(not button.get("text") for row in normalized for button in row):
                raise bad_request("keyboard button text must be non-empty")
            return {**markup, "keyboard": normalized}
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _format(
        text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
    ) -> tuple[str, list, str]:
        """(plain text, entities, html) of a text or caption as the API stores it."""
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                parsed = parse_html(text)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from exc
            return parsed.text, parsed.entities, text
        if mode:
            log.debug("parse_mode %s is not interpreted by the local Bot API; text kept verbatim", parse_mode)
        entities = entities or []
        if entities:
            rendered = html_decoration.unparse(text, [MessageEntity.model_validate(e) for e in entities])
        else:
            rendered = html.escape(text, quote=False)
        return text, entities, rendered

    def _reply_target(self, chat: _Chat, params: Params) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id"):
            reply = {"message_id": params["reply_to_message_id"]}
        if not reply:
            return None
        if not isinstance(reply, dict) or "message_id" not in reply:
            raise bad_request("can't parse reply parameters JSON object")
        target = chat.messages.get(int(reply["message_id"]))
        if target is None:
            if reply.get("allow_sending_without_reply") or params.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        replied = copy.deepcopy(target.raw)
        replied.pop("reply_to_message", None)  # Telegram nests one level only
        return replied

    # ------------------------------------------------------------------ storing messages

    def _store(
        self,
        chat: _Chat,
        *,
        from_bot: bool,
        sender: dict[str, Any],
        content: dict[str, Any],
        html_text: str = "",
        parse_mode: str | None = None,
        reply_markup: dict[str, Any] | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> _Stored:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        raw: dict[str, Any] = {
            "message_id": message_id,
            "from": copy.deepcopy(sender),
            "chat": copy.deepcopy(chat.info),
            "date": int(time.time()),
        }
        if reply_to is not None:
            raw["reply_to_message"] = reply_to
        raw.update(content)
        # Only inline keyboards belong to a Message; a reply keyboard belongs to the chat's input field.
        if reply_markup and "inline_keyboard" in reply_markup:
            raw["reply_markup"] = reply_markup
        elif reply_markup and "keyboard" in reply_markup:
            chat.reply_keyboard = reply_markup
        elif reply_markup and reply_markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        version = self._notify()
        stored = _Stored(raw, from_bot, html_text, parse_mode, reply_markup, created=version, changed=version)
        chat.messages[message_id] = stored
        return stored

    def _store_bot_message(self, chat: _Chat, params: Params, content: dict[str, Any], **kwargs: Any) -> Any:
        markup = self._validate_markup(params.get("reply_markup"))
        reply_to = self._reply_target(chat, params)
        stored = self._store(
            chat,
            from_bot=True,
            sender=self.bot_user,
            content=content,
            reply_markup=markup,
            reply_to=reply_to,
            **kwargs,
        )
        return copy.deepcopy(stored.raw)

    def _edited(self, stored: _Stored) -> None:
        stored.edits += 1
        # edit_date must move forward even for two edits within one second, so aiogram-side dedup works.
        stored.raw["edit_date"] = max(int(time.time()), int(stored.raw.get("edit_date", 0)) + 1)
        stored.changed = self._notify()

    # ------------------------------------------------------------------ methods: bot and updates

    async def _get_me(self, params: Params, files: Files) -> Any:
        return dict(self.bot_user)

    async def _get_chat(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        return {
            **chat.info,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        }

    async def _get_updates(self, params: Params, files: Files) -> Any:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if "allowed_updates" in params:
            self._set_allowed_updates(params["allowed_updates"])
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), MAX_POLL_TIMEOUT)
        # Passing an offset confirms every update before it, as in the real API.
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll still waiting learns it was replaced
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._updates or self._closing:
                return copy.deepcopy(self._updates[:limit])
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            await self.wait_change(remaining)

    def _set_allowed_updates(self, allowed: Any) -> None:
        if allowed is None:
            return
        self._allowed_updates = frozenset(allowed) if allowed else None

    async def _set_webhook(self, params: Params, files: Files) -> Any:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params, files)
        if not re.match(r"^https?://", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.match(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in params:
            self._set_allowed_updates(params["allowed_updates"])
        await self._stop_webhook()
        self._webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": int(params.get("max_connections") or 40),
        }
        self._webhook_error = None
        self._webhook_task = asyncio.create_task(self._deliver_webhook(), name="localapi-webhook")
        return True

    async def _delete_webhook(self, params: Params, files: Files) -> Any:
        await self._stop_webhook()
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _stop_webhook(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        self._webhook = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _get_webhook_info(self, params: Params, files: Files) -> Any:
        info: dict[str, Any] = {
            "url": self._webhook["url"] if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if self._webhook_error:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _deliver_webhook(self) -> None:
        """Push queued updates to the webhook one at a time, in order (max_connections is not simulated)."""
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while True:
                if not self._updates:
                    await self.wait_change(None)
                    continue
                update = self._updates[0]
                await self._post_update(session, update)
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)

    async def _post_update(self, session: ClientSession, update: dict[str, Any]) -> bool:
        assert self._webhook is not None
        headers = {"Content-Type": "application/json"}
        if self._webhook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook["secret_token"]
        for attempt in range(1, self.webhook_attempts + 1):
            record: dict[str, Any] = {"update_id": update["update_id"], "attempt": attempt}
            try:
                async with session.post(
                    self._webhook["url"], data=_json_dumps(update), headers=headers
                ) as resp:
                    record["status"] = resp.status
                    if 200 <= resp.status < 300:
                        self.webhook_deliveries.append(record)
                        await self._run_webhook_reply(resp)
                        return True
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (ClientError, TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
                record["status"] = None
            record["error"] = error
            self.webhook_deliveries.append(record)
            self._webhook_error = (int(time.time()), error)
            log.warning(
                "webhook delivery of update %s failed (attempt %d): %s", update["update_id"], attempt, error
            )
            await asyncio.sleep(self.webhook_retry_delay * attempt)
        log.error("update %s dropped after %d webhook attempts", update["update_id"], self.webhook_attempts)
        return False

    async def _run_webhook_reply(self, resp: Any) -> None:
        """A webhook may answer with one method call in its body; Telegram runs it (and reports nothing)."""
        params: dict[str, Any] = {}
        files: Files = {}
        if resp.content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = await resp.json()
                if isinstance(body, dict):
                    params = body
        elif resp.content_type == "multipart/form-data":
            reader = MultipartReader.from_response(resp)
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    continue
                if part.filename:
                    files[part.name] = (part.filename, bytes(await part.read()))
                else:
                    params[part.name] = await part.text()
        method = params.pop("method", None)
        if not method:
            return
        try:
            await self.invoke(str(method), {k: _coerce(k, v) for k, v in params.items()}, files)
        except ApiError as error:
            log.warning("method %s from a webhook reply failed: %s", method, error.description)

    # ------------------------------------------------------------------ methods: messages

    async def _send_message(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("message text is empty")
        plain, entities, rendered = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        content: dict[str, Any] = {"text": plain}
        if entities:
            content["entities"] = entities
        preview = self._link_preview(params)
        if preview:
            content["link_preview_options"] = preview
        return self._store_bot_message(
            chat, params, content, html_text=rendered, parse_mode=params.get("parse_mode")
        )

    @staticmethod
    def _link_preview(params: Params) -> dict[str, Any] | None:
        preview = params.get("link_preview_options")
        if preview is None and params.get("disable_web_page_preview"):
            preview = {"is_disabled": True}
        return preview or None

    async def _edit_message_text(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        stored = self._stored_for(chat, params, "message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        if "text" not in stored.raw:
            raise bad_request("there is no text in the message to edit")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("message text is empty")
        plain, entities, rendered = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        raw = stored.raw
        if plain == raw["text"] and entities == raw.get("entities", []) and markup == raw.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        raw["text"] = plain
        raw.pop("entities", None)
        if entities:
            raw["entities"] = entities
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        self._set_inline_markup(stored, markup)
        preview = self._link_preview(params)
        if preview:
            raw["link_preview_options"] = preview
        stored.html = rendered
        stored.parse_mode = params.get("parse_mode")
        self._edited(stored)
        return copy.deepcopy(raw)

    @staticmethod
    def _set_inline_markup(stored: _Stored, markup: dict[str, Any] | None) -> None:
        if markup:
            stored.raw["reply_markup"] = markup
        else:
            stored.raw.pop("reply_markup", None)
        stored.reply_markup = markup

    async def _edit_message_reply_markup(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        stored = self._stored_for(chat, params, "message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        markup = self._validate_markup(params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        if markup == stored.raw.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        self._set_inline_markup(stored, markup)
        self._edited(stored)
        return copy.deepcopy(stored.raw)

    async def _delete_message(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        stored = self._stored_for(chat, params, "message to delete not found")
        del chat.messages[stored.message_id]
        chat.deleted[stored.message_id] = self._notify()
        return True

    async def _delete_messages(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        ids = params.get("message_ids") or []
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids is invalid")
        for message_id in ids:
            if chat.messages.pop(int(message_id), None) is not None:
                chat.deleted[int(message_id)] = self._notify()
        return True

    async def _answer_callback_query(self, params: Params, files: Files) -> Any:
        query_id = str(params.get("callback_query_id") or "")
        query = self._callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        query["answered"] = True
        answer = {
            "text": params.get("text"),
            "show_alert": bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "cache_time": int(params.get("cache_time") or 0),
        }
        self.callback_answers[query_id] = answer
        self._notice(query["chat_id"], {"kind": "callback_answer", "callback_query_id": query_id, **answer})
        return True

    def _notice(self, chat_id: int, notice: dict[str, Any]) -> None:
        self._notices.append((self._notify(), chat_id, notice))
        del self._notices[:-200]

    def notices_since(self, chat_id: int, version: int) -> list[dict[str, Any]]:
        return [n for v, c, n in self._notices if c == chat_id and v > version]

    @staticmethod
    def _location(params: Params) -> dict[str, Any]:
        try:
            latitude, longitude = float(params["latitude"]), float(params["longitude"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad_request("wrong latitude or longitude specified") from exc
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong latitude or longitude specified")
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        for key in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
            if params.get(key) is not None:
                location[key] = params[key]
        live_period = location.get("live_period")
        if live_period is not None and not (60 <= live_period <= 86400 or live_period == 0x7FFFFFFF):
            raise bad_request("wrong live period specified")
        return location

    async def _send_location(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        location = self._location(params)
        return self._store_bot_message(chat, params, {"location": location})

    async def _send_venue(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        location = self._location(params)
        title, address = params.get("title"), params.get("address")
        if not title:
            raise bad_request("venue title is empty")
        if address is None:
            raise bad_request("venue address is empty")
        venue: dict[str, Any] = {"location": location, "title": str(title), "address": str(address)}
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if params.get(key):
                venue[key] = params[key]
        return self._store_bot_message(chat, params, {"location": location, "venue": venue})

    async def _send_photo(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        photo = params.get("photo")
        upload: tuple[str, bytes] | None = files.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            upload = files.get(photo.removeprefix("attach://"))
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None:
            sizes = self._store_upload(upload[1])
        elif isinstance(photo, str) and photo in self._files:
            sizes = self._files[photo]["sizes"]
        elif isinstance(photo, str) and re.match(r"^https?://", photo):
            sizes = self._store_upload(b"", remote=photo)
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        content: dict[str, Any] = {"photo": copy.deepcopy(sizes)}
        rendered = ""
        caption = params.get("caption")
        if caption:
            plain, entities, rendered = self._format(
                str(caption), params.get("parse_mode"), params.get("caption_entities")
            )
            if utf16_len(plain) > MAX_CAPTION_LENGTH:
                raise bad_request("message caption is too long")
            content["caption"] = plain
            if entities:
                content["caption_entities"] = entities
        return self._store_bot_message(
            chat, params, content, html_text=rendered, parse_mode=params.get("parse_mode")
        )

    def _store_upload(self, data: bytes, remote: str | None = None) -> list[dict[str, Any]]:
        width, height = _image_size(data) if data else (800, 600)
        sizes: list[dict[str, Any]] = []
        # Telegram answers with a thumbnail and the full size; both are addressable file_ids.
        scale = min(1.0, 90 / max(width, height, 1))
        for w, h, size in (
            (round(width * scale), round(height * scale), len(data) // 20),
            (width, height, len(data)),
        ):
            file_id = "AgACAgUAAx" + secrets.token_urlsafe(24)
            entry: dict[str, Any] = {
                "file_id": file_id,
                "file_unique_id": "AQAD" + secrets.token_urlsafe(8),
                "file_size": size,
                "width": max(w, 1),
                "height": max(h, 1),
            }
            sizes.append(entry)
        for entry in sizes:
            self._files[entry["file_id"]] = {"sizes": sizes, "bytes": data, "remote": remote}
        return sizes

    def file_bytes(self, file_id: str) -> bytes | None:
        """The bytes a bot uploaded under any of the photo's file_ids (for the demo page)."""
        stored = self._files.get(file_id)
        return stored["bytes"] if stored else None

    async def _send_chat_action(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params, sending=True)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._notice(chat.info["id"], {"kind": "chat_action", "action": action})
        return True

    # ------------------------------------------------------------------ methods: bot profile

    @staticmethod
    def _scope_key(params: Params) -> str:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad_request("can't parse BotCommandScope JSON object")
        return _json_dumps(dict(sorted(scope.items())))

    async def _set_my_commands(self, params: Params, files: Files) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.match(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self._scope_key(params), str(params.get("language_code") or ""))
        if commands:
            self._commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self._commands.pop(key, None)
        self._notify()
        return True

    async def _get_my_commands(self, params: Params, files: Files) -> Any:
        key = (self._scope_key(params), str(params.get("language_code") or ""))
        return copy.deepcopy(self._commands.get(key, []))

    async def _delete_my_commands(self, params: Params, files: Files) -> Any:
        self._commands.pop((self._scope_key(params), str(params.get("language_code") or "")), None)
        self._notify()
        return True

    async def _set_description(self, field_name: str, max_length: int, params: Params, files: Files) -> Any:
        value = str(params.get(field_name) or "")
        if len(value) > max_length:
            raise bad_request(f"{field_name.upper()}_INVALID")
        key = (field_name, str(params.get("language_code") or ""))
        if value:
            self._descriptions[key] = value
        else:
            self._descriptions.pop(key, None)
        self._notify()
        return True

    async def _get_description(self, field_name: str, params: Params, files: Files) -> Any:
        return {field_name: self._descriptions.get((field_name, str(params.get("language_code") or "")), "")}

    def description(self, field_name: str = "description", language_code: str = "") -> str:
        """What setMyDescription (or setMyShortDescription, setMyName) stored, falling back to the default."""
        return self._descriptions.get((field_name, language_code)) or self._descriptions.get(
            (field_name, ""), ""
        )

    async def _set_chat_menu_button(self, params: Params, files: Files) -> Any:
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad_request("can't parse menu button JSON object")
        if params.get("chat_id") is not None:
            self._chat_for(params).menu_button = button
        else:
            self._default_menu_button = button
        return True

    async def _get_chat_menu_button(self, params: Params, files: Files) -> Any:
        if params.get("chat_id") is not None:
            return self._chat_for(params).menu_button or self._default_menu_button
        return self._default_menu_button

    @property
    def commands(self) -> dict[str, list[dict[str, Any]]]:
        """Commands of the default scope, keyed by language_code ("" for all languages)."""
        default = self._scope_key({})
        return {
            lang: copy.deepcopy(cmds) for (scope, lang), cmds in self._commands.items() if scope == default
        }

    def scoped_commands(self, scope: dict[str, Any], language_code: str = "") -> list[dict[str, Any]]:
        return copy.deepcopy(self._commands.get((self._scope_key({"scope": scope}), language_code), []))

    def commands_for(self, language_code: str, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The menu a user would see: Telegram's scope and language fallback, narrowest first."""
        scopes: list[dict[str, Any]] = []
        if chat_id is not None:
            scopes.append({"type": "chat", "chat_id": chat_id})
        scopes += [{"type": "all_private_chats"}, {"type": "default"}]
        for scope in scopes:
            for lang in (language_code, ""):
                found = self._commands.get((self._scope_key({"scope": scope}), lang))
                if found:
                    return copy.deepcopy(found)
        return []

    # ------------------------------------------------------------------ acting as users

    def _user(self, user_id: int, language_code: str | None, first_name: str) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def _user_chat(self, user: dict[str, Any], chat_id: int | None, chat_type: str) -> _Chat:
        chat_id = user["id"] if chat_id is None else chat_id
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_type == "private":
                info = {"id": chat_id, "first_name": user["first_name"], "type": "private"}
            else:
                info = {"id": chat_id, "title": f"测试群 {chat_id}", "type": chat_type}
            chat = self._chats[chat_id] = _Chat(info)
        return chat

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, kind: copy.deepcopy(payload)}
        self._next_update_id += 1
        allowed = self._allowed_updates
        if (kind in _OPT_IN_UPDATES) if allowed is None else (kind not in allowed):
            # The real server never creates updates a bot did not subscribe to.
            log.info("update %s (%s) not queued: the bot did not subscribe to it", update["update_id"], kind)
        else:
            self._updates.append(update)
        self._notify()
        return update

    async def feed(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw Update (an update_id is assigned when missing)."""
        update = copy.deepcopy(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._updates.append(update)
        self._notify()
        return update

    async def _user_message(
        self,
        user_id: int,
        content: dict[str, Any],
        *,
        language_code: str,
        first_name: str,
        chat_id: int | None,
        chat_type: str,
        html_text: str = "",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        user = self._user(user_id, language_code, first_name)
        chat = self._user_chat(user, chat_id, chat_type)
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self._reply_target(chat, {"reply_parameters": {"message_id": reply_to_message_id}})
        stored = self._store(
            chat, from_bot=False, sender=user, content=content, html_text=html_text, reply_to=reply_to
        )
        self._enqueue("message", stored.raw)
        return copy.deepcopy(stored.raw)

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """The user writes `text`; returns the Message the bot receives."""
        return await self._user_message(
            user_id,
            {"text": text},
            html_text=html.escape(text, quote=False),
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
            reply_to_message_id=reply_to_message_id,
        )

    async def send_command(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """The user sends a command ("/start", "start" or "/start payload"), with its bot_command entity."""
        if not text.startswith("/"):
            text = "/" + text
        command = text.split(maxsplit=1)[0]
        content = {
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}],
        }
        return await self._user_message(
            user_id,
            content,
            html_text=html.escape(text, quote=False),
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
        )

    async def send_location(
        self,
        user_id: int,
        lat: float,
        lon: float,
        *,
        live_period: int | None = None,
        horizontal_accuracy: float | None = None,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """The user shares a location (a live one when `live_period` is given, in seconds)."""
        location: dict[str, Any] = {"latitude": lat, "longitude": lon}
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        if live_period is not None:
            location["live_period"] = live_period
        return await self._user_message(
            user_id,
            {"location": location},
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
        )

    def _user_stored(self, user_id: int, message_id: int, chat_id: int | None) -> _Stored:
        chat = self._chats.get(user_id if chat_id is None else chat_id)
        stored = chat.messages.get(message_id) if chat else None
        if stored is None or stored.from_bot or stored.raw["from"]["id"] != user_id:
            raise ValueError(f"user {user_id} has no message {message_id} in that chat")
        return stored

    async def update_live_location(
        self,
        user_id: int,
        message_id: int,
        lat: float,
        lon: float,
        *,
        heading: int | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user's live location moves: an edited_message with the new position."""
        stored = self._user_stored(user_id, message_id, chat_id)
        location = stored.raw.get("location")
        if not location or "live_period" not in location:
            raise ValueError(f"message {message_id} is not a live location")
        location.update(latitude=lat, longitude=lon)
        if heading is not None:
            location["heading"] = heading
        self._edited(stored)
        self._enqueue("edited_message", stored.raw)
        return copy.deepcopy(stored.raw)

    async def send_venue(
        self,
        user_id: int,
        lat: float,
        lon: float,
        title: str,
        address: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """The user shares a place picked from the map (a venue, with its location)."""
        location = {"latitude": lat, "longitude": lon}
        venue = {"location": dict(location), "title": title, "address": address}
        return await self._user_message(
            user_id,
            {"location": location, "venue": venue},
            language_code=language_code,
            first_name=first_name,
            chat_id=chat_id,
            chat_type=chat_type,
        )

    async def edit_text(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """The user edits one of their text messages: an edited_message update."""
        stored = self._user_stored(user_id, message_id, chat_id)
        if "text" not in stored.raw:
            raise ValueError(f"message {message_id} has no text")
        stored.raw["text"] = text
        stored.raw.pop("entities", None)
        stored.html = html.escape(text, quote=False)
        self._edited(stored)
        self._enqueue("edited_message", stored.raw)
        return copy.deepcopy(stored.raw)

    async def press(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        language_code: str = "zh-hans",
        first_name: str = "测试",
        chat_id: int | None = None,
        forged: bool = False,
        inaccessible: bool = False,
    ) -> str:
        """The user taps an inline button; returns the callback_query id. The button must exist, unless
        `forged`: then any data, on any message id of any chat, as a modified client could send.
        `inaccessible`: the query carries only the message's chat and id (date 0), as Telegram sends it
        for a message too old for the bot to see."""
        target_chat = user_id if chat_id is None else chat_id
        chat = self._chats.get(target_chat)
        stored = chat.messages.get(message_id) if chat else None
        if not forged:
            if chat is None or stored is None:
                raise ValueError(f"no message {message_id} in chat {target_chat}")
            rows = (stored.raw.get("reply_markup") or {}).get("inline_keyboard") or []
            offered = [b.get("callback_data") for row in rows for b in row if "callback_data" in b]
            if callback_data not in offered:
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r}: {offered}"
                )
        user = self._user(user_id, language_code, first_name)
        query_id = str(secrets.randbits(62))
        self._callback_queries[query_id] = {
            "chat_id": target_chat,
            "message_id": message_id,
            "data": callback_data,
            "answered": False,
        }
        if inaccessible:
            message = {
                "message_id": message_id,
                "date": 0,
                "chat": {"id": target_chat, "type": "private" if target_chat > 0 else "supergroup"},
            }
        elif stored is not None:
            message = copy.deepcopy(stored.raw)  # as the bot last rendered it
        else:
            message = {
                "message_id": message_id,
                "date": 0,
                "chat": {"id": target_chat, "type": "private" if target_chat > 0 else "supergroup"},
                "from": {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "bot"},
                "text": "…",
            }
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": str((target_chat * 1_000_003) % 2**62),
            "data": callback_data,
        }
        self._enqueue("callback_query", query)
        return query_id

    async def block(self, user_id: int) -> None:
        """The user blocks the bot: sends fail with 403 and the bot gets a my_chat_member update."""
        await self._set_blocked(user_id, True)

    async def unblock(self, user_id: int) -> None:
        await self._set_blocked(user_id, False)

    async def _set_blocked(self, user_id: int, blocked: bool) -> None:
        user = self._users.get(user_id) or self._user(user_id, "zh-hans", "测试")
        chat = self._user_chat(user, None, "private")
        chat.blocked = blocked
        member = {"user": self.bot_user}
        old: dict[str, Any] = {"status": "member"}
        new: dict[str, Any] = {"status": "kicked", "until_date": 0}
        if not blocked:
            old, new = new, old
        self._enqueue(
            "my_chat_member",
            {
                "chat": chat.info,
                "from": user,
                "date": int(time.time()),
                "old_chat_member": {**old, **member},
                "new_chat_member": {**new, **member},
            },
        )

    def set_language(self, user_id: int, language_code: str) -> None:
        """Change a known user's language for the updates that follow."""
        if user_id in self._users:
            self._users[user_id]["language_code"] = language_code
        self._notify()

    # ------------------------------------------------------------------ inspection

    def chat(self, chat_id: int) -> list[ChatMessage]:
        """Every message of the chat in order, as it is now; [] for a chat nobody opened."""
        chat = self._chats.get(chat_id)
        return [stored.snapshot() for stored in chat.messages.values()] if chat else []

    def message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        chat = self._chats.get(chat_id)
        stored = chat.messages.get(message_id) if chat else None
        return stored.snapshot() if stored else None

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.chat(chat_id) if m.from_bot]

    def last_bot_message(self, chat_id: int) -> ChatMessage | None:
        messages = self.bot_messages(chat_id)
        return messages[-1] if messages else None

    def reply_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard the chat's input field shows now (sent with a message, until removed)."""
        chat = self._chats.get(chat_id)
        return copy.deepcopy(chat.reply_keyboard) if chat else None

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name.lower() == method.lower()]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._updates)

    def changes_since(self, chat_id: int, version: int) -> tuple[list[ChatMessage], list[int]]:
        """Messages created or edited, and ids deleted, after `version` (for the demo's long poll)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return [], []
        changed = [s.snapshot() for s in chat.messages.values() if s.changed > version]
        deleted = [message_id for message_id, at in chat.deleted.items() if at > version]
        return changed, deleted

    def mark(self) -> int:
        """The event counter now; pass it to `wait_for_change` to wait for what happens after."""
        return self._version

    def describe(self, limit: int = 20) -> str:
        """A readable dump of chats, recent calls and queue, for failure messages."""
        lines: list[str] = []
        for chat_id, chat in self._chats.items():
            lines.append(f"chat {chat_id} ({chat.info['type']}{', blocked' if chat.blocked else ''}):")
            for stored in list(chat.messages.values())[-limit:]:
                message = stored.snapshot()
                who = "bot " if message.from_bot else "user"
                if message.venue:
                    body = f"[venue {message.venue['title']} / {message.venue['address']}]"
                elif message.location:
                    body = f"[location {message.location['latitude']}, {message.location['longitude']}]"
                else:
                    body = message.text.replace("\n", " ⏎ ")[:160]
                buttons = [b.get("text") for b in message.buttons]
                extra = f" buttons={buttons}" if buttons else ""
                extra += f" (edited {message.edits}x)" if message.edits else ""
                lines.append(f"  #{message.message_id} {who}: {body}{extra}")
        if not self._chats:
            lines.append("no chats")
        recent = [(name, params) for name, params in self.calls if name != "getUpdates"][-10:]
        lines.append("recent calls: " + (", ".join(name for name, _ in recent) or "none"))
        failed = [f"{method}: {description}" for method, description in self.errors[-5:]]
        if failed:
            lines.append("recent errors: " + "; ".join(failed))
        if self.unknown_methods:
            lines.append(f"unknown methods called: {self.unknown_methods}")
        lines.append(f"pending updates: {len(self._updates)}")
        return "\n".join(lines)

    async def wait_for(
        self,
        predicate: Callable[[], T | bool | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    ) -> T:
        """Poll `predicate` every 5 ms until it returns something truthy, and return that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result: Any = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[no-any-return]
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s\n{self.describe()}")
            await asyncio.sleep(0.005)

    async def wait_for_bot_reply(
        self,
        chat_id: int,
        after_message_id: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - passed on to wait_for
    ) -> ChatMessage:
        """The first bot message newer than `after_message_id`, or a bot message edited after that message."""
        chat = self._chats.get(chat_id)
        anchor = chat.messages.get(after_message_id) if chat else None
        since = anchor.created if anchor else None

        def reply() -> ChatMessage | None:
            current = self._chats.get(chat_id)
            if current is None:
                return None
            candidates: list[tuple[int, _Stored]] = []
            for stored in current.messages.values():
                if not stored.from_bot:
                    continue
                if stored.message_id > after_message_id:
                    candidates.append((stored.created, stored))
                elif since is not None and stored.edits and stored.changed > since:
                    candidates.append((stored.changed, stored))
            return min(candidates, key=lambda c: c[0])[1].snapshot() if candidates else None

        return await self.wait_for(reply, timeout)

    async def wait_for_change(
        self,
        chat_id: int,
        mark: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - passed on to wait_for
    ) -> ChatMessage:
        """The bot message sent or edited most recently after `mark` (see `mark()`)."""

        def changed() -> ChatMessage | None:
            current = self._chats.get(chat_id)
            if current is None:
                return None
            fresh = [s for s in current.messages.values() if s.from_bot and s.changed > mark]
            return max(fresh, key=lambda s: s.changed).snapshot() if fresh else None

        return await self.wait_for(changed, timeout)
