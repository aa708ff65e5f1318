"""The Telegram side of announcement delivery: sending one announcement to one subscriber, and the
author's progress message, edited as delivery goes.

Maps aiogram's exceptions onto the broadcaster's: `TelegramRetryAfter` → RetryLater (all sending stops),
`TelegramForbiddenError` → RecipientBlocked (skipped from then on), a bad request → PermanentFailure, and
everything else (network, server errors) → a transient failure retried with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.app import Core
from bot.observability import Metrics
from bot.services.announcements import (
    AnnouncementView,
    Broadcaster,
    PermanentFailure,
    RecipientBlocked,
    RetryLater,
    TransientFailure,
)
from bot.services.users import effective_locale
from storage.ratelimit import RateLimiter
from storage.users_repo import UserRepository

log = logging.getLogger(__name__)


class TelegramTransport:
    def __init__(self, bot: Bot, core: Core, i18n: I18n) -> None:
        self.bot = bot
        self.core = core
        self.i18n = i18n
        self._locales: dict[int, str] = {}

    async def prepare(self, user_ids: list[int]) -> None:
        """Look up a window's recipients' languages in one query."""
        async with self.core.sessions() as session:
            users = await UserRepository(session).get_many(user_ids)
        self._locales = {user_id: effective_locale(users.get(user_id)) for user_id in user_ids}

    async def _locale(self, user_id: int) -> str:
        locale = self._locales.get(user_id)
        if locale is not None:
            return locale
        async with self.core.sessions() as session:
            return effective_locale(await UserRepository(session).get(user_id))

    async def deliver(self, user_id: int, announcement: AnnouncementView) -> None:
        locale = await self._locale(user_id)
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(
                        text=self.i18n.gettext("🔕 Unsubscribe", locale=locale), callback_data="unsub"
                    )
                ]
            ]
        )
        try:
            if announcement.photo_file_id:
                await self.bot.send_photo(
                    user_id, announcement.photo_file_id, caption=announcement.text, reply_markup=keyboard
                )
            else:
                await self.bot.send_message(user_id, announcement.text, reply_markup=keyboard)
        except TelegramRetryAfter as exc:
            raise RetryLater(float(exc.retry_after)) from exc
        except TelegramForbiddenError as exc:
            raise RecipientBlocked(str(exc)) from exc
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower() or "user is deactivated" in exc.message.lower():
                raise RecipientBlocked(exc.message) from exc
            raise PermanentFailure(exc.message) from exc
        except (TimeoutError, TelegramNetworkError, TelegramServerError) as exc:
            raise TransientFailure(repr(exc)) from exc


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
