"""The Telegram side of announcement delivery: sending one announcement to one subscriber, and the
author's progress message, edited as delivery goes.

Delivery is the hot path of a broadcast (up to BROADCAST_RATE calls a second, one per recipient), so it
does not go through aiogram's model layer: building a `SendMessage` model, dumping it and validating the
answer into a `Message` cost the sender about 0.3 ms of CPU per message, as much again as the HTTP
exchange (bench/README-broadcast.md). Instead the request is built once per announcement and language,
by aiogram's own value preparation (so the bot's defaults, such as the HTML parse mode, apply exactly as
aiogram applies them); each call only adds the chat id, posts the JSON body through the bot's own aiohttp
session (its connection pool, proxy and timeout) and reads `ok`, `description` and `parameters` of the
answer with orjson.

Outcomes map onto the broadcaster's exceptions the way aiogram classifies them: a `retry_after` →
RetryLater (all sending stops), HTTP 403 → RecipientBlocked (skipped from then on), HTTP 400 "chat not
found" / "user is deactivated" → RecipientBlocked, any other 400 → PermanentFailure, and everything else
(network errors, timeouts, 5xx, answers that cannot be read) → TransientFailure, retried with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any

import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage, SendPhoto, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiohttp import ClientError, ClientTimeout

from bot.app import Core
from bot.observability import Metrics
from bot.services.announcements import (
    AnnouncementView,
    Broadcaster,
    PermanentFailure,
    RecipientBlocked,
    RetryLater,
    TransientFailure,
    rider_message,
)
from bot.services.users import effective_locale
from bot.session import JSON_HEADERS
from storage.ratelimit import RateLimiter
from storage.users_repo import UserRepository

log = logging.getLogger(__name__)

# Bad requests that mean the recipient is gone for good: treated like a block, never retried.
_GONE = ("chat not found", "user is deactivated")


class TelegramTransport:
    """Sends an announcement to one recipient with the "🔕 Unsubscribe" button in their language."""

    def __init__(self, bot: Bot, core: Core, i18n: I18n) -> None:
        if not isinstance(bot.session, AiohttpSession):
            raise TypeError("TelegramTransport posts through aiogram's AiohttpSession")
        self.bot = bot
        self.core = core
        self.i18n = i18n
        self._session: AiohttpSession = bot.session
        # The session's timeout, which aiogram applies to each call as the total time allowed.
        self._timeout = ClientTimeout(total=float(bot.session.timeout))
        # Languages of the recipients of the last two windows prepared (the broadcaster has two in flight).
        self._locales: dict[int, str] = {}
        self._previous_locales: dict[int, str] = {}
        # (method URL, body without chat_id) per language, for the announcement being sent.
        self._requests: dict[str, tuple[str, dict[str, Any]]] = {}
        self._requests_for: tuple[int, str, str | None] | None = None

    async def prepare(self, user_ids: list[int]) -> None:
        """Look up a window's recipients' languages in one query. The broadcaster prepares the next window
        while the last one is still sending, so the last window's languages are kept too (and only those:
        memory stays bounded by two windows)."""
        async with self.core.sessions() as session:
            users = await UserRepository(session).get_many(user_ids)
        self._previous_locales = self._locales
        self._locales = {user_id: effective_locale(users.get(user_id)) for user_id in user_ids}

    async def _locale(self, user_id: int) -> str:
        locale = self._locales.get(user_id) or self._previous_locales.get(user_id)
        if locale is not None:
            return locale
        async with self.core.sessions() as session:
            return effective_locale(await UserRepository(session).get(user_id))

    def _request(self, announcement: AnnouncementView, locale: str) -> tuple[str, dict[str, Any]]:
        """The URL and the JSON parameters (all but chat_id) of this announcement in this language, built
        once by aiogram's own value preparation, so that they are what `bot.send_message` would send."""
        key = (announcement.id, announcement.text, announcement.photo_file_id)
        if key != self._requests_for:
            self._requests, self._requests_for = {}, key
        request = self._requests.get(locale)
        if request is None:
            request = self._requests[locale] = self._build_request(announcement, locale)
        return request

    def _build_request(self, announcement: AnnouncementView, locale: str) -> tuple[str, dict[str, Any]]:
        # What riders get is decided in one place (`rider_message`), which the console's preview shows too.
        message = rider_message(
            announcement.text,
            announcement.photo_file_id,
            lambda msgid: self.i18n.gettext(msgid, locale=locale),
        )
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=b.text, callback_data=b.callback_data) for b in row]
                for row in message.keyboard
            ]
        )
        method: TelegramMethod[Any]
        if message.photo_file_id:
            method = SendPhoto(
                chat_id=0, photo=message.photo_file_id, caption=message.text, reply_markup=keyboard
            )
        else:
            method = SendMessage(chat_id=0, text=message.text, reply_markup=keyboard)
        files: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for name, value in method.model_dump(warnings=False).items():
            prepared = self._session.prepare_value(value, bot=self.bot, files=files, _dumps_json=False)
            if prepared is not None and name != "chat_id":
                params[name] = prepared
        if files:  # a file_id is a string; nothing is ever uploaded per recipient
            raise ValueError("an announcement's photo must be a file_id")
        # Plain JSON values from here on (aiogram leaves enums such as ParseMode.HTML in place).
        params = orjson.loads(orjson.dumps(params))
        return self._session.api.api_url(token=self.bot.token, method=method.__api_method__), params

    async def deliver(self, user_id: int, announcement: AnnouncementView) -> None:
        url, params = self._request(announcement, await self._locale(user_id))
        body = orjson.dumps({"chat_id": user_id, **params})
        http = await self._session.create_session()
        try:
            async with http.post(url, data=body, headers=JSON_HEADERS, timeout=self._timeout) as resp:
                status = resp.status
                raw = await resp.read()
        except (TimeoutError, ClientError) as exc:
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise TransientFailure(f"HTTP {status}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise TransientFailure(f"HTTP {status}: the answer is not a JSON object")
        if HTTPStatus.OK <= status <= HTTPStatus.IM_USED and answer.get("ok") is True:
            return
        raise_for_answer(status, answer)


def raise_for_answer(status: int, answer: dict[str, Any]) -> None:
    """Raise the broadcaster's exception for a failed Bot API call, classified as aiogram classifies it
    (`BaseSession.check_response`): `parameters` first, then the HTTP status (the Bot API answers with
    the same code in the status line and in `error_code`; aiogram reads the status, and so does this)."""
    description = str(answer.get("description") or f"HTTP {status}")
    parameters = answer.get("parameters")
    if isinstance(parameters, dict):
        if parameters.get("retry_after"):
            raise RetryLater(float(parameters["retry_after"]))
        if parameters.get("migrate_to_chat_id"):
            # A group became a supergroup; aiogram raises TelegramMigrateToChat, which was always retried.
            raise TransientFailure(description)
    if status == HTTPStatus.FORBIDDEN:
        raise RecipientBlocked(description)
    if status == HTTPStatus.BAD_REQUEST:
        lowered = description.lower()
        if any(gone in lowered for gone in _GONE):
            raise RecipientBlocked(description)
        raise PermanentFailure(description)
    raise TransientFailure(f"HTTP {status}: {description}")


class TelegramProgress:
    """One progress message per announcement, edited in place; the final report replaces it."""

    def __init__(self, bot: Bot, core: Core, i18n: I18n) -> None:
        self.bot = bot
        self.core = core
        self.i18n = i18n

    async def report(self, announcement: AnnouncementView, eta_s: float | None, final: bool) -> None:
        if announcement.progress_chat_id is None:
            return
        async with self.core.sessions() as session:
            locale = effective_locale(await UserRepository(session).get(announcement.author_id))
        text = render_progress(self.i18n, locale, announcement, eta_s, final)
        if announcement.progress_message_id is not None:
            try:
                await self.bot.edit_message_text(
                    text, chat_id=announcement.progress_chat_id, message_id=announcement.progress_message_id
                )
                return
            except TelegramBadRequest as exc:
                if "not modified" in exc.message:
                    return
        await self.bot.send_message(announcement.progress_chat_id, text)


def render_progress(
    i18n: I18n, locale: str, announcement: AnnouncementView, eta_s: float | None, final: bool
) -> str:
    c = announcement.counts
    # Called by name (not through an alias) so that pybabel extracts these strings.
    head = (
        i18n.gettext("📣 Announcement #{id}: finished", locale=locale)
        if final
        else i18n.gettext("📣 Announcement #{id}: sending…", locale=locale)
    ).format(id=announcement.id)
    lines = [
        head,
        i18n.gettext(
            "sent {sent} · failed {failed} · blocked {blocked} · left {left} of {total}", locale=locale
        ).format(sent=c.sent, failed=c.failed, blocked=c.blocked, left=c.left, total=c.total),
    ]
    if c.uncertain:
        lines.append(
            i18n.gettext(
                "{count} may not have arrived (the sender stopped while sending them)", locale=locale
            ).format(count=c.uncertain)
        )
    if c.cancelled:
        lines.append(i18n.gettext("{count} cancelled", locale=locale).format(count=c.cancelled))
    if not final and eta_s is not None:
        minutes, seconds = divmod(int(eta_s + 0.5), 60)
        lines.append(
            i18n.gettext("about {minutes} min {seconds} s to go", locale=locale).format(
                minutes=minutes, seconds=seconds
            )
        )
    return "\n".join(lines)


def build_broadcaster(
    core: Core,
    bot: Bot,
    i18n: I18n,
    clock: Callable[[], datetime],
    limiter: RateLimiter | None = None,
    metrics: Metrics | None = None,
) -> Broadcaster:
    metrics = metrics or core.metrics
    return Broadcaster(
        core.sessions,
        TelegramTransport(bot, core, i18n),
        limiter or core.broadcast_limiter,
        core.settings.broadcast_rate,
        progress=TelegramProgress(bot, core, i18n),
        clock=clock,
        on_delivery=metrics.delivery if metrics is not None else None,
    )
