"""Telling a user something in their own language, outside the update they sent.

Reporters hear how their case was decided, staff get their digest, a rider hears that their update
failed: the text is built in the recipient's locale (their /language choice, else Telegram's
language_code) and a failure to deliver it is logged, never raised, because telling someone must not
undo what was decided.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiogram import Bot
from aiogram.utils.i18n import I18n

log = logging.getLogger(__name__)

__all__ = ["tell"]


async def tell(
    bot: Bot, i18n: I18n, chat_id: int, locale: str, render: Callable[[], str], *, about: str
) -> bool:
    """Send `chat_id` the text `render()` builds while `locale` is current (its `gettext` calls, the
    module-level `_` included, translate into it). False, logged, when it could not be delivered;
    `about` names the message in that log line."""
    with i18n.context(), i18n.use_locale(locale):
        text = render()
    try:
        await bot.send_message(chat_id, text)
    except Exception:
        log.warning("could not send %s to chat %s", about, chat_id, exc_info=True)
        return False
    return True
