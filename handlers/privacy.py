"""/privacy says what the bot keeps about a rider and for how long; /forget deletes it, after a button."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.services.privacy import PrivacyService
from bot.services.users import UserService
from domain.clock import Clock
from handlers.callbacks import ForgetAction, ForgetCb
from handlers.common import own_message, safe_edit
from handlers.filters import private_chat


def privacy_text(retention_days: int) -> str:
    return "\n".join(
        (
            _("<b>🔒 What this bot keeps about you</b>"),
            _(
                "• Your location: only while answering it. Searches and live locations keep no position; "
                "a report keeps at most its distance from the station. A new location you propose for a "
                "station is kept until staff decide, then deleted."
            ),
            _("• Your subscription: a ~5 km area or a province, until /unsubscribe or /forget."),
            _("• Your Telegram name, language and amenity filter: until /forget."),
            _("• An unfinished step (a report you did not send): deleted after a day."),
            _(
                "• Reports and ratings: kept for the stations; their comments and photos are deleted after "
                "{days} days. /forget removes your name from them."
            ).format(days=retention_days),
            _("• Logs and the web server's records never contain your position."),
            "",
            _("/forget deletes your data now."),
        )
    )


def forget_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("🗑 Delete my data"), callback_data=ForgetCb(action=ForgetAction.DELETE).pack()
                ),
                InlineKeyboardButton(
                    text=_("Cancel"), callback_data=ForgetCb(action=ForgetAction.KEEP).pack()
                ),
            ]
        ]
    )


async def privacy_command(message: Message, privacy: PrivacyService) -> None:
    await message.answer(privacy_text(privacy.retention.days))


async def forget_command(message: Message, state: FSMContext) -> None:
    # A step in progress ends here: its data goes now, whatever the answer.
    await state.clear()
    await message.answer(
        _(
            "Delete everything this bot keeps about you? Your name, language, filter, subscription and "
            "unfinished steps are deleted. Your reports and ratings stay, without your name. "
            "This cannot be undone."
        ),
        reply_markup=forget_keyboard(),
    )


async def forget_answered(
    query: CallbackQuery,
    callback_data: ForgetCb,
    privacy: PrivacyService,
    users: UserService,
    state: FSMContext,
    clock: Clock,
) -> None:
    message = own_message(query)
    if message is None:
        await query.answer(_("This button is out of date."), show_alert=True)
        return
    if callback_data.action != ForgetAction.DELETE:
        await query.answer()
        await safe_edit(message, _("Nothing was deleted."), None)
        return
    await privacy.forget(query.from_user.id, clock())
    await state.clear()
    await users.forgotten(query.from_user.id)
    await query.answer()
    await safe_edit(
        message,
        _(
            "Done: your data is deleted. Your reports and ratings stay without your name. "
            "If you write to the bot again, it starts afresh."
        ),
        None,
    )


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="privacy")
    router.message.filter(private_chat)
    router.message.register(privacy_command, Command("privacy"))
    router.message.register(forget_command, Command("forget"))
    router.callback_query.register(forget_answered, ForgetCb.filter())
    return router
