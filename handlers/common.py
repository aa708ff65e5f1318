"""Small helpers shared by the routers."""

from __future__ import annotations

import re
from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message

from bot.session import JsonAiohttpSession
from handlers.callbacks import MAX_DB_ID

_ASCII_ID = re.compile(r"[0-9]{1,19}")


def parse_id(text: str) -> int | None:
    """A database id typed in a command: ASCII digits only (`str.isdigit` takes "²" and "٤") within
    1..2^63-1, or None."""
    if not _ASCII_ID.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_DB_ID else None


def own_message(query: CallbackQuery) -> Message | None:
    """The message a button belongs to, if it is this user's private chat with the bot; None for a
    forged or stale button (someone else's message, an inaccessible one)."""
    message = query.message
    if message is None or isinstance(message, InaccessibleMessage):
        return None
    if message.chat.type != "private" or message.chat.id != query.from_user.id:
        return None
    return message


async def safe_edit(message: Message, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """Replace the text of the message a button belongs to; a message without text (a venue, a photo: a
    forged button can name any message) gets the text as a new message instead."""
    if message.text is None:
        await message.answer(text, reply_markup=keyboard)
        return
    try:
        await message.edit_text(text, reply_markup=keyboard)
    except TelegramBadRequest as exc:
        # Tapping the same button twice asks for the same content: nothing to do.
        if "not modified" not in exc.message:
            raise


async def answer_markup(message: Message, text: str, markup: dict[str, Any]) -> int:
    """`message.answer(text, reply_markup=markup)` in HTML, for the reply sent on most updates: with the
    bot's JSON session it goes out without aiogram's models (see `bot.session`). The sent message's id."""
    bot = message.bot
    assert bot is not None
    session = bot.session
    if not isinstance(session, JsonAiohttpSession):
        sent = await message.answer(text, reply_markup=InlineKeyboardMarkup.model_validate(markup))
        return sent.message_id
    params: dict[str, Any] = {"chat_id": message.chat.id, "text": text, "parse_mode": "HTML"}
    if message.business_connection_id:
        params["business_connection_id"] = message.business_connection_id
    params["reply_markup"] = markup
    result = await session.call_json(bot, SendMessage, params)
    return int(result["message_id"])
