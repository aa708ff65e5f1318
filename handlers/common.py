"""Small helpers shared by the routers."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message


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
    try:
        await message.edit_text(text, reply_markup=keyboard)
    except TelegramBadRequest as exc:
        # Tapping the same button twice asks for the same content: nothing to do.
        if "not modified" not in exc.message:
            raise
