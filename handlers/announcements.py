"""Announcements in the bot: riders subscribe (a coarse area or a province) and unsubscribe; union staff
compose an announcement, preview it, choose its audience, send or schedule it, and manage what they sent.

Rights are checked by the services with the user's `Access` on every step that reads or writes
announcements, so a forged button or a stale composer can do no more than its author may.
"""

from __future__ import annotations

import logging
from datetime import datetime
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _

from bot.services.announcements import (
    MAX_CAPTION,
    MAX_RADIUS_KM,
    MAX_TEXT,
    AnnouncementError,
    AnnouncementService,
    Audience,
    SubscriptionService,
    station_scope,
)
from bot.services.roles import Access, NotAllowed, RoleService
from bot.services.stations import StationService
from domain.clock import Clock
from domain.values import GeoPoint, InvalidLocation, StationNotFound, User
from handlers.announce_views import (
    ANNOUNCE_TZ,
    announcements_keyboard,
    announcements_text,
    audience_keyboard,
    audience_question,
    audience_size_text,
    confirm_keyboard,
    format_local,
    photo_keyboard,
    province_keyboard,
    radius_keyboard,
    regions_label,
    subscribe_text,
    subscribed_near_text,
    subscribed_region_text,
    unsubscribe_keyboard,
)
from handlers.callbacks import (
    AnnouncementAction,
    AnnouncementCb,
    ComposeAction,
    ComposeCb,
    SubscribeAction,
    SubscribeCb,
    UnsubscribeCb,
)
from handlers.common import own_message, safe_edit
from handlers.filters import has_location, has_photo, plain_text, private_chat
from handlers.views import location_keyboard

log = logging.getLogger(__name__)


class SubscribeForm(StatesGroup):
    location = State()


class ComposeForm(StatesGroup):
    text = State()
    photo = State()
    audience = State()
    region = State()
    point = State()
    station = State()
    radius = State()
    confirm = State()
    when = State()


async def _stale(query: CallbackQuery) -> None:
    await query.answer(_("This button is out of date."), show_alert=True)


async def _not_allowed(query: CallbackQuery) -> None:
    await query.answer(_("Not allowed."), show_alert=True)


# -- riders: subscribing -----------------------------------------------------------------------------------
async def subscribe_command(
    message: Message,
    user: User,
    subscriptions: SubscriptionService,
    stations: StationService,
    state: FSMContext,
) -> None:
    await state.set_state(SubscribeForm.location)
    await message.answer(
        subscribe_text(await subscriptions.is_subscribed(user.id)), reply_markup=location_keyboard()
    )
    provinces = await stations.provinces()
    if provinces:
        await message.answer(_("Or pick a province:"), reply_markup=province_keyboard(provinces))


async def subscribe_location_shared(
    message: Message, user: User, subscriptions: SubscriptionService, state: FSMContext, clock: Clock
) -> None:
    location = message.location
    assert location is not None
    try:
        point = GeoPoint.parse(location.latitude, location.longitude)
    except InvalidLocation:
        await message.answer(_("That location looks wrong. Please share it again."))
        return
    await subscriptions.subscribe_near(user.id, point, clock())
    await state.clear()
    await message.answer(subscribed_near_text(), reply_markup=location_keyboard())


async def subscribe_abandoned(message: Message, state: FSMContext) -> None:
    """Anything but a location ends the subscribe step; the message is handled as usual."""
    await state.clear()
    raise SkipHandler


async def province_chosen(
    query: CallbackQuery,
    callback_data: SubscribeCb,
    subscriptions: SubscriptionService,
    stations: StationService,
    state: FSMContext,
    clock: Clock,
) -> None:
    # Only a province the bot offers (one with stations in service), whatever a client forges.
    if callback_data.region not in dict(await stations.provinces()):
        await _stale(query)
        return
    try:
        await subscriptions.subscribe_region(query.from_user.id, callback_data.region, clock())
    except AnnouncementError:
        await _stale(query)
        return
    if await state.get_state() == SubscribeForm.location.state:
        await state.clear()
    await query.answer()
    text = subscribed_region_text(callback_data.region)
    message = own_message(query)
    if message is not None:
        await safe_edit(message, text, None)
        await message.answer(
            _("Share a location any time to find stations."), reply_markup=location_keyboard()
        )


async def offer_accepted(
    query: CallbackQuery, callback_data: SubscribeCb, subscriptions: SubscriptionService, clock: Clock
) -> None:
    try:
        point = GeoPoint.parse(callback_data.lat, callback_data.lon)
    except InvalidLocation:
        await _stale(query)
        return
    await subscriptions.subscribe_near(query.from_user.id, point, clock())
    await query.answer()
    message = own_message(query)
    if message is not None:
        await safe_edit(message, subscribed_near_text(), None)


async def offer_declined(query: CallbackQuery) -> None:
    await query.answer()
    message = own_message(query)
    if message is not None:
        await safe_edit(message, _("OK, no announcements. /subscribe if you change your mind."), None)


async def _unsubscribe(user_id: int, subscriptions: SubscriptionService, clock: Clock) -> str:
    if await subscriptions.unsubscribe(user_id, clock()):
        return _("🔕 Unsubscribed: no more announcements. /subscribe brings them back.")
    return _("You are not subscribed.")


async def unsubscribe_command(
    message: Message, user: User, subscriptions: SubscriptionService, state: FSMContext, clock: Clock
) -> None:
    if await state.get_state() == SubscribeForm.location.state:
        await state.clear()
    await message.answer(await _unsubscribe(user.id, subscriptions, clock))


async def unsubscribe_pressed(query: CallbackQuery, subscriptions: SubscriptionService, clock: Clock) -> None:
    text = await _unsubscribe(query.from_user.id, subscriptions, clock)
    await query.answer(text)
    message = own_message(query)
    if message is not None:
        await message.answer(text)


# -- staff: composing --------------------------------------------------------------------------------------
async def announce_command(message: Message, roles: RoleService, state: FSMContext) -> None:
    access = await roles.access(message.from_user.id)  # type: ignore[union-attr]
    if not access.is_staff:
        await message.answer(_("This command is for union staff."))
        return
    await state.clear()
    await state.set_state(ComposeForm.text)
    await state.update_data(announce={"regions": list(access.regions)})
    await message.answer(
        _(
            "📣 Send the text of the announcement. Formatting is kept. At most {text} characters, "
            "or {caption} with a photo. /cancel stops."
        ).format(text=MAX_TEXT, caption=MAX_CAPTION)
    )


async def _draft(state: FSMContext) -> dict[str, Any]:
    return dict((await state.get_data()).get("announce") or {})


async def compose_text_sent(message: Message, state: FSMContext) -> None:
    text = message.html_text.strip()
    if len(text) > MAX_TEXT:
        await message.answer(
            _("Too long: {length} characters, at most {limit}. Please shorten it and send it again.").format(
                length=len(text), limit=MAX_TEXT
            )
        )
        return
    draft = await _draft(state)
    draft["text"] = text
    await state.update_data(announce=draft)
    await state.set_state(ComposeForm.photo)
    await message.answer(_("🖼 Add a photo? Send it now, or tap “No photo”."), reply_markup=photo_keyboard())


async def compose_photo_sent(message: Message, state: FSMContext) -> None:
    draft = await _draft(state)
    if len(draft.get("text", "")) > MAX_CAPTION:
        await message.answer(
            _(
                "With a photo the text can have at most {limit} characters; it has {length}. "
                "Tap “No photo”, or /announce to start again with a shorter text."
            ).format(limit=MAX_CAPTION, length=len(draft.get("text", ""))),
            reply_markup=photo_keyboard(),
        )
        return
    draft["photo"] = message.photo[-1].file_id  # type: ignore[index]
    await _preview(message, draft, state)


async def compose_without_photo(query: CallbackQuery, state: FSMContext) -> None:
    draft = await _draft(state)
    message = own_message(query)
    if message is None or "text" not in draft:
        await _stale(query)
        return
    await query.answer()
    draft.pop("photo", None)
    await _preview(message, draft, state)


async def _preview(message: Message, draft: dict[str, Any], state: FSMContext) -> None:
    """The announcement exactly as riders get it (bot/broadcast.py), then the audience question."""
    await state.update_data(announce=draft)
    await state.set_state(ComposeForm.audience)
    if draft.get("photo"):
        await message.answer_photo(draft["photo"], caption=draft["text"], reply_markup=unsubscribe_keyboard())
    else:
        await message.answer(draft["text"], reply_markup=unsubscribe_keyboard())
    await message.answer(audience_question(), reply_markup=audience_keyboard(draft.get("regions", [])))


async def audience_chosen(
    query: CallbackQuery,
    callback_data: ComposeCb,
    state: FSMContext,
    roles: RoleService,
    announcements: AnnouncementService,
) -> None:
    draft = await _draft(state)
    message = own_message(query)
    if message is None or "text" not in draft:
        await _stale(query)
        return
    action = callback_data.action
    prompts = {
        ComposeAction.SUB_REGION: (
            ComposeForm.region,
            _("Type the adcode prefix of the area: 2, 4 or 6 digits inside {regions}, e.g. 4401.").format(
                regions=escape(regions_label(draft.get("regions", [])))
            ),
            None,
        ),
        ComposeAction.NEAR_POINT: (
            ComposeForm.point,
            _("Share the centre: the 📍 button below, or 📎 → Location to pick it on the map."),
            location_keyboard(),
        ),
        ComposeAction.NEAR_STATION: (ComposeForm.station, _("Type the code of the station."), None),
    }
    await query.answer()
    if action in prompts:
        form, prompt, keyboard = prompts[ComposeAction(action)]
        await state.set_state(form)
        await message.answer(prompt, reply_markup=keyboard)
        return
    draft.update(region=callback_data.value, lat=None, lon=None, radius=None)
    await _show_size(message, query.from_user.id, draft, state, roles, announcements)


async def sub_region_typed(
    message: Message, state: FSMContext, roles: RoleService, announcements: AnnouncementService
) -> None:
    region = (message.text or "").strip()
    if not region.isascii() or not region.isdigit() or len(region) not in (2, 4, 6):
        await message.answer(
            _("An adcode prefix has 2, 4 or 6 digits, e.g. 44 or 4401. Please type it again.")
        )
        return
    draft = await _draft(state)
    draft.update(region=region, lat=None, lon=None, radius=None)
    await _show_size(message, message.from_user.id, draft, state, roles, announcements)  # type: ignore[union-attr]


async def centre_shared(message: Message, state: FSMContext) -> None:
    location = message.location
    assert location is not None
    try:
        point = GeoPoint.parse(location.latitude, location.longitude)
    except InvalidLocation:
        await message.answer(_("That location looks wrong. Please share it again."))
        return
    draft = await _draft(state)
    # A point has no region of its own: the audience stays inside the staff member's (first) region.
    draft.update(region=(draft.get("regions") or [""])[0], lat=point.lat, lon=point.lon)
    await _ask_radius(message, draft, state)


async def station_typed(message: Message, state: FSMContext, stations: StationService) -> None:
    code = (message.text or "").strip()
    try:
        station = await stations.get(code)
    except StationNotFound:
        await message.answer(
            _("No station with the code {code}. Please type it again.").format(code=escape(code[:64]))
        )
        return
    draft = await _draft(state)
    scope = station_scope(draft.get("regions", []), station.region)
    draft.update(region=scope, lat=station.lat, lon=station.lon)
    await _ask_radius(message, draft, state)


async def _ask_radius(message: Message, draft: dict[str, Any], state: FSMContext) -> None:
    await state.update_data(announce=draft)
    await state.set_state(ComposeForm.radius)
    await message.answer(_("Got the centre."), reply_markup=ReplyKeyboardRemove())
    await message.answer(_("Within how many km? Tap one or type a number."), reply_markup=radius_keyboard())


async def radius_chosen(
    query: CallbackQuery,
    callback_data: ComposeCb,
    state: FSMContext,
    roles: RoleService,
    announcements: AnnouncementService,
) -> None:
    message = own_message(query)
    draft = await _draft(state)
    radius = _radius(callback_data.value)
    if message is None or radius is None or draft.get("lat") is None:
        await _stale(query)
        return
    await query.answer()
    draft["radius"] = radius
    await _show_size(message, query.from_user.id, draft, state, roles, announcements)


async def radius_typed(
    message: Message, state: FSMContext, roles: RoleService, announcements: AnnouncementService
) -> None:
    radius = _radius(message.text or "")
    if radius is None:
        await message.answer(
            _("Type a distance in km, more than 0 and at most {max}.").format(max=f"{MAX_RADIUS_KM:g}")
        )
        return
    draft = await _draft(state)
    draft["radius"] = radius
    await _show_size(message, message.from_user.id, draft, state, roles, announcements)  # type: ignore[union-attr]


def _radius(text: str) -> float | None:
    try:
        value = float(text.strip().lower().removesuffix("km").strip().replace(",", "."))
    except ValueError:
        return None
    return value if 0 < value <= MAX_RADIUS_KM else None


def _audience(draft: dict[str, Any]) -> Audience:
    point = None
    if draft.get("lat") is not None and draft.get("lon") is not None and draft.get("radius") is not None:
        point = GeoPoint(draft["lat"], draft["lon"])
    return Audience(draft.get("region", ""), point, draft.get("radius") if point else None)


async def _show_size(
    message: Message,
    user_id: int,
    draft: dict[str, Any],
    state: FSMContext,
    roles: RoleService,
    announcements: AnnouncementService,
) -> None:
    audience = _audience(draft)
    access = await roles.access(user_id)
    try:
        count = await announcements.audience_size(access, audience)
    except NotAllowed:
        await state.update_data(announce=draft)
        await state.set_state(ComposeForm.audience)
        await message.answer(
            _("You can only address subscribers in your region: {regions}. Choose again:").format(
                regions=escape(regions_label(list(access.regions)) or "—")
            ),
            reply_markup=audience_keyboard(list(access.regions)),
        )
        return
    except AnnouncementError as exc:
        await message.answer(_("This audience cannot be used: {reason}").format(reason=escape(exc.reason)))
        return
    draft["count"] = count
    await state.update_data(announce=draft)
    await state.set_state(ComposeForm.confirm)
    await message.answer(audience_size_text(audience, count), reply_markup=confirm_keyboard())


async def send_now_pressed(
    query: CallbackQuery,
    state: FSMContext,
    roles: RoleService,
    announcements: AnnouncementService,
    clock: Clock,
) -> None:
    draft = await _draft(state)
    message = own_message(query)
    if message is None or "count" not in draft:
        await _stale(query)
        return
    # Cleared before anything awaits the network, so a double tap cannot send twice.
    await state.clear()
    await query.answer()
    await safe_edit(message, message.html_text, None)
    await _publish(message, query.from_user.id, draft, None, roles, announcements, clock)


async def schedule_pressed(query: CallbackQuery, state: FSMContext) -> None:
    draft = await _draft(state)
    message = own_message(query)
    if message is None or "count" not in draft:
        await _stale(query)
        return
    await query.answer()
    await state.set_state(ComposeForm.when)
    await message.answer(
        _("When? Type the date and time in Beijing time as YYYY-MM-DD HH:MM, e.g. {example}.").format(
            example=format_local(datetime(2025, 7, 1, 9, 0, tzinfo=ANNOUNCE_TZ))
        )
    )


async def time_typed(
    message: Message, state: FSMContext, roles: RoleService, announcements: AnnouncementService, clock: Clock
) -> None:
    try:
        when = datetime.strptime((message.text or "").strip(), "%Y-%m-%d %H:%M").replace(tzinfo=ANNOUNCE_TZ)
    except ValueError:
        await message.answer(_("Please type the time as YYYY-MM-DD HH:MM, e.g. 2025-07-01 09:00."))
        return
    if when <= clock():
        await message.answer(_("That time has passed. Please type a time in the future."))
        return
    draft = await _draft(state)
    await state.clear()
    await _publish(message, message.from_user.id, draft, when, roles, announcements, clock)  # type: ignore[union-attr]


async def _publish(
    message: Message,
    user_id: int,
    draft: dict[str, Any],
    scheduled_at: datetime | None,
    roles: RoleService,
    announcements: AnnouncementService,
    clock: Clock,
) -> None:
    """Posts the progress message first, so the broadcaster can edit it from its first report on."""
    count = draft.get("count", 0)
    if scheduled_at is None:
        head = _("📣 Sending to {count} subscribers…").format(count=count)
    else:
        head = _(
            "⏰ Scheduled for {time} (Beijing time), to {count} subscribers. /announcements lists it."
        ).format(time=format_local(scheduled_at), count=count)
    progress = await message.answer(head)
    try:
        await announcements.create(
            await roles.access(user_id),
            draft["text"],
            _audience(draft),
            clock(),
            photo_file_id=draft.get("photo"),
            scheduled_at=scheduled_at,
            progress_chat_id=progress.chat.id,
            progress_message_id=progress.message_id,
        )
    except NotAllowed:
        await safe_edit(progress, _("Not sent: you can only address subscribers in your region."), None)
    except AnnouncementError as exc:
        await safe_edit(progress, _("Not sent: {reason}").format(reason=escape(exc.reason)), None)


async def compose_cancelled(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer(_("Cancelled."))
    message = own_message(query)
    if message is not None:
        await safe_edit(message, _("The announcement was not sent."), None)


async def cancel_command(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(_("Cancelled. The announcement was not sent."), reply_markup=location_keyboard())


async def compose_other(message: Message) -> None:
    await message.answer(_("Please answer the question above, or /cancel."))


async def compose_button_stale(query: CallbackQuery) -> None:
    await _stale(query)


# -- staff: managing ----------------------------------------------------------------------------------------
async def _listing(announcements: AnnouncementService, access: Access) -> tuple[str, Any]:
    views = await announcements.list(access)
    return announcements_text(views), announcements_keyboard(views)


async def announcements_command(
    message: Message, roles: RoleService, announcements: AnnouncementService
) -> None:
    try:
        text, keyboard = await _listing(announcements, await roles.access(message.from_user.id))  # type: ignore[union-attr]
    except NotAllowed:
        await message.answer(_("This command is for union staff."))
        return
    await message.answer(text, reply_markup=keyboard)


async def announcement_managed(
    query: CallbackQuery,
    callback_data: AnnouncementCb,
    roles: RoleService,
    announcements: AnnouncementService,
    clock: Clock,
) -> None:
    async def resume(announcement_id: int, access: Access) -> bool:
        return await announcements.resume(announcement_id, access, clock())

    actions = {
        AnnouncementAction.PAUSE: (announcements.pause, _("Paused.")),
        AnnouncementAction.RESUME: (resume, _("Resumed.")),
        AnnouncementAction.CANCEL: (announcements.cancel, _("Cancelled.")),
    }
    if callback_data.action not in actions:
        await _not_allowed(query)
        return
    change, done = actions[AnnouncementAction(callback_data.action)]
    access = await roles.access(query.from_user.id)
    try:
        changed = await change(callback_data.id, access)
    except (NotAllowed, AnnouncementError):
        await _not_allowed(query)
        return
    await query.answer(done if changed else _("Nothing to change: it has moved on meanwhile."))
    message = own_message(query)
    if message is not None:
        text, keyboard = await _listing(announcements, access)
        await safe_edit(message, text, keyboard)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="announcements")
    router.message.filter(private_chat)
    compose = StateFilter(*ComposeForm.__states__)
    router.message.register(subscribe_command, Command("subscribe"))
    router.message.register(unsubscribe_command, Command("unsubscribe"))
    router.message.register(announce_command, Command("announce"))
    router.message.register(announcements_command, Command("announcements"))
    router.message.register(cancel_command, Command("cancel"), compose)
    router.message.register(subscribe_location_shared, StateFilter(SubscribeForm.location), has_location)
    router.message.register(subscribe_abandoned, StateFilter(SubscribeForm.location))
    router.callback_query.register(province_chosen, SubscribeCb.filter(F.action == SubscribeAction.PROVINCE))
    router.callback_query.register(offer_accepted, SubscribeCb.filter(F.action == SubscribeAction.HERE))
    router.callback_query.register(offer_declined, SubscribeCb.filter(F.action == SubscribeAction.DECLINE))
    router.callback_query.register(unsubscribe_pressed, UnsubscribeCb.filter())
    # Composing: each step takes only its own kind of answer.
    router.message.register(compose_text_sent, StateFilter(ComposeForm.text), plain_text)
    router.message.register(compose_photo_sent, StateFilter(ComposeForm.photo), has_photo)
    router.message.register(sub_region_typed, StateFilter(ComposeForm.region), plain_text)
    router.message.register(centre_shared, StateFilter(ComposeForm.point), has_location)
    router.message.register(station_typed, StateFilter(ComposeForm.station), plain_text)
    router.message.register(radius_typed, StateFilter(ComposeForm.radius), plain_text)
    router.message.register(time_typed, StateFilter(ComposeForm.when), plain_text)
    router.message.register(compose_other, compose)
    router.callback_query.register(compose_cancelled, ComposeCb.filter(F.action == ComposeAction.CANCEL))
    router.callback_query.register(
        compose_without_photo,
        ComposeCb.filter(F.action == ComposeAction.NO_PHOTO),
        StateFilter(ComposeForm.photo),
    )
    router.callback_query.register(
        audience_chosen,
        ComposeCb.filter(
            F.action.in_(
                {
                    ComposeAction.WHOLE_REGION,
                    ComposeAction.SUB_REGION,
                    ComposeAction.NEAR_POINT,
                    ComposeAction.NEAR_STATION,
                }
            )
        ),
        StateFilter(
            ComposeForm.audience,
            ComposeForm.region,
            ComposeForm.point,
            ComposeForm.station,
            ComposeForm.radius,
            ComposeForm.confirm,
        ),
    )
    router.callback_query.register(
        radius_chosen, ComposeCb.filter(F.action == ComposeAction.RADIUS), StateFilter(ComposeForm.radius)
    )
    router.callback_query.register(
        send_now_pressed,
        ComposeCb.filter(F.action == ComposeAction.SEND_NOW),
        StateFilter(ComposeForm.confirm),
    )
    router.callback_query.register(
        schedule_pressed,
        ComposeCb.filter(F.action == ComposeAction.SCHEDULE),
        StateFilter(ComposeForm.confirm),
    )
    router.callback_query.register(compose_button_stale, ComposeCb.filter())
    router.callback_query.register(announcement_managed, AnnouncementCb.filter())
    return router
