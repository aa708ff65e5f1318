"""/start, /help and /language: greeting, how to use the bot, and the language choice."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.services.users import UnknownLocale, UserService, effective_locale
from domain.values import User
from handlers.callbacks import LanguageCb
from handlers.common import own_message, safe_edit
from handlers.filters import private_chat
from handlers.views import language_keyboard, location_keyboard


def help_text() -> str:
    return "\n".join(
        (
            _("<b>How to use</b>"),
            _("1. Tap “📍 Share my location” below (or send a location or a place from the map)."),
            _("2. You get the nearest stations that are open now, with distance and hours."),
            _("3. Tap a station for its card, the way there and its phone number."),
            _("4. “🔎 Filter” shows only stations with what you need: water, toilet, charging…"),
            _("You can also type coordinates, for example: 23.13, 113.26"),
            _("Share a live location and the results follow you."),
            "",
            _("/subscribe: news from the union about your area; /unsubscribe stops it."),
            _("/privacy: what the bot keeps about you; /forget deletes it."),
            _("/language changes the language, /help shows this text."),
        )
    )


async def start(message: Message, user: User, state: FSMContext) -> None:
    await state.clear()
    name = escape(user.first_name) if user.first_name else _("friend")
    await message.answer(
        _(
            "Hello, {name}! 👋\n"
            "I find the union service stations (工会驿站) for outdoor workers near you: water, a place "
            "to rest, heat a meal, charge your phone or e-bike, a toilet.\n\n"
            "Share your location to see the nearest stations that are open now."
        ).format(name=name),
        reply_markup=location_keyboard(),
    )


async def help_command(message: Message) -> None:
    await message.answer(help_text(), reply_markup=location_keyboard())


async def language_command(message: Message, user: User) -> None:
    await message.answer(_("Choose your language:"), reply_markup=language_keyboard(effective_locale(user)))


async def language_chosen(
    query: CallbackQuery, callback_data: LanguageCb, users: UserService, i18n: I18n
) -> None:
    try:
        user = await users.choose_locale(query.from_user.id, callback_data.locale)
    except UnknownLocale:
        await query.answer(_("Unknown language."), show_alert=True)
        return
    locale = effective_locale(user)
    with i18n.use_locale(locale):
        await query.answer(_("Language changed."))
        message = own_message(query)
        if message is not None:
            await safe_edit(message, _("Choose your language:"), language_keyboard(locale))
        await query.bot.send_message(  # type: ignore[union-attr]
            query.from_user.id, help_text(), reply_markup=location_keyboard()
        )


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="start")
    router.message.filter(private_chat)
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.message.register(language_command, Command("language"))
    router.callback_query.register(language_chosen, LanguageCb.filter())
    return router
