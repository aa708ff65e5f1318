"""State of the local Bot API: chats, stored messages, errors, request parameters, and the base class
the method families build on (lookups, validation, storing messages, change notification, dispatch)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram.types import MessageEntity
from aiogram.utils.text_decorations import html_decoration
from aiohttp import web

from domain.telegram_html import EntityParseError, parse_html

log = logging.getLogger("yizhan.localapi")

Params = dict[str, Any]
Files = dict[str, tuple[str, bytes]]
Handler = Callable[[Params, Files], Awaitable[Any]]


MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
# The real server holds a long poll for at most 50 s whatever `timeout` asks for.
MAX_POLL_TIMEOUT = 50.0
# Update kinds a bot gets when it never chose `allowed_updates` (per the getUpdates docs).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset(
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
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

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
class Stored:
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
class Chat:
    info: dict[str, Any]
    messages: dict[int, Stored] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: dict[str, Any] | None = None
    deleted: dict[int, int] = field(default_factory=dict)
    """message_id → event counter when it was deleted (the demo page removes it)."""
    blocked: bool = False
    menu_button: dict[str, Any] | None = None


@dataclass(slots=True)
class Fault:
    error_code: int
    description: str
    retry_after: int | None
    remaining: int


class TokenBucket:
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


def json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def coerce(name: str, value: Any) -> Any:
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


class ServerState:
    """Chats, users, queued updates and bookkeeping of one bot token, with the helpers every method
    family shares: looking chats and messages up, validating markup, storing messages, notifying waiters
    and dispatching a method call."""

    def __init__(
        self,
        token: str,
        username: str,
        rate_limit: float | None,
        *,
        bot_name: str,
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
        self._bucket = TokenBucket(rate_limit) if rate_limit else None

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

        self._chats: dict[int, Chat] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._descriptions: dict[tuple[str, str], str] = {}
        self._default_menu_button: dict[str, Any] = {"type": "default"}
        self._files: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, list[Fault]] = {}
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
        self._methods: dict[str, tuple[str, Handler]] = {}
        """Lower-cased method name → (canonical name, handler); filled by `LocalBotAPI`."""

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

    # ------------------------------------------------------------------ dispatch

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
        self._faults.setdefault(method.lower(), []).append(Fault(error_code, description, retry_after, times))

    # ------------------------------------------------------------------ lookups and validation

    def _chat_for(self, params: Params, *, sending: bool = False) -> Chat:
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
    def _stored_for(chat: Chat, params: Params, not_found: str) -> Stored:
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

    def _reply_target(self, chat: Chat, params: Params) -> dict[str, Any] | None:
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
        chat: Chat,
        *,
        from_bot: bool,
        sender: dict[str, Any],
        content: dict[str, Any],
        html_text: str = "",
        parse_mode: str | None = None,
        reply_markup: dict[str, Any] | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> Stored:
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
        stored = Stored(raw, from_bot, html_text, parse_mode, reply_markup, created=version, changed=version)
        chat.messages[message_id] = stored
        return stored

    def _store_bot_message(self, chat: Chat, params: Params, content: dict[str, Any], **kwargs: Any) -> Any:
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

    def _edited(self, stored: Stored) -> None:
        stored.edits += 1
        # edit_date must move forward even for two edits within one second, so aiogram-side dedup works.
        stored.raw["edit_date"] = max(int(time.time()), int(stored.raw.get("edit_date", 0)) + 1)
        stored.changed = self._notify()
