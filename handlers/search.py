"""The rider's journey: a location in, the nearest open stations out; pages, filter and station cards."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.services.announcements import SubscriptionService
from bot.services.evaluation import EvaluationService, UsageKind
from bot.services.nearby import NearbyService, ResultsPage, results_page
from bot.services.ratings import RatingService
from bot.services.search import geodesic_distances
from bot.services.users import UserService
from domain.clock import Clock
from domain.hours import hours_of
from domain.values import GeoPoint, InvalidLocation, StationNotFound, UnknownAmenity, User
from handlers.announce_views import offer_keyboard, offer_text
from handlers.callbacks import CallCb, FilterAction, FilterCb, ResultsCb, StationCb
from handlers.common import answer_markup, own_message, safe_edit
from handlers.filters import has_location, has_venue, plain_text, private_chat
from handlers.views import (
    card_keyboard,
    card_text,
    filter_keyboard,
    filter_text,
    location_keyboard,
    results_keyboard,
    results_markup,
    results_text,
)

log = logging.getLogger(__name__)

#: A live location refreshes its results message at most this often.
LIVE_REFRESH_S = 30.0
_COORDS = re.compile(r"^\s*\(?\s*(-?\d{1,3}(?:\.\d+)?)\s*[,，\s]\s*(-?\d{1,3}(?:\.\d+)?)\s*\)?\s*$")


async def _results(
    nearby: NearbyService,
    point: GeoPoint,
    user: User,
    now: datetime,
    page: int = 0,
    closed: bool = False,
    count: bool = True,
) -> ResultsPage:
    return await results_page(
        nearby, point, page=page, amenities=user.amenity_filter, at=now, include_closed=closed, count=count
    )


async def _render_results(
    nearby: NearbyService,
    point: GeoPoint,
    user: User,
    now: datetime,
    page: int = 0,
    closed: bool = False,
    count: bool = True,
) -> tuple[str, InlineKeyboardMarkup]:
    result = await _results(nearby, point, user, now, page, closed, count)
    return (
        results_text(result, user.amenity_filter, now),
        results_keyboard(result, point.lat, point.lon, user.amenity_filter),
    )


async def _answer_point(
    message: Message,
    lat: object,
    lon: object,
    user: User,
    nearby: NearbyService,
    subscriptions: SubscriptionService,
    clock: Clock,
) -> int | None:
    """Answer a shared point with the results message; its id, or None when the point is impossible."""
    try:
        point = GeoPoint.parse(lat, lon)
    except InvalidLocation:
        await message.answer(_("That location looks wrong. Please share it again."))
        return None
    now = clock()
    result = await _results(nearby, point, user, now)
    sent = await answer_markup(
        message,
        results_text(result, user.amenity_filter, now),
        results_markup(result, point.lat, point.lon, user.amenity_filter),
    )
    # After the first search only, and nothing is pushed unless the rider taps "subscribe".
    if await subscriptions.offer_once(user.id, now):
        await message.answer(offer_text(), reply_markup=offer_keyboard(point.lat, point.lon))
    return sent


async def venue_shared(
    message: Message, user: User, nearby: NearbyService, subscriptions: SubscriptionService, clock: Clock
) -> None:
    location = message.venue.location  # type: ignore[union-attr]
    await _answer_point(message, location.latitude, location.longitude, user, nearby, subscriptions, clock)


async def location_shared(
    message: Message,
    user: User,
    nearby: NearbyService,
    subscriptions: SubscriptionService,
    clock: Clock,
    state: FSMContext,
) -> None:
    location = message.location
    assert location is not None
    sent = await _answer_point(
        message, location.latitude, location.longitude, user, nearby, subscriptions, clock
    )
    if sent is not None and location.live_period:
        # Only message ids and a time are kept for a live location, never the positions themselves.
        live = dict((await state.get_data()).get("live", {}))
        live[str(message.message_id)] = [sent, clock().timestamp()]
        await state.update_data(live=dict(list(live.items())[-5:]))


async def live_location_moved(
    message: Message, user: User, nearby: NearbyService, clock: Clock, state: FSMContext
) -> None:
    live = dict((await state.get_data()).get("live", {}))
    entry = live.get(str(message.message_id))
    now = clock()
    if entry is None or now.timestamp() - entry[1] < LIVE_REFRESH_S:
        return
    location = message.location
    assert location is not None
    try:
        point = GeoPoint.parse(location.latitude, location.longitude)
    except InvalidLocation:
        return
    live[str(message.message_id)] = [entry[0], now.timestamp()]
    await state.update_data(live=live)
    # The refresh of a live location is the search already counted, following the rider.
    text, keyboard = await _render_results(nearby, point, user, now, count=False)
    try:
        await message.bot.edit_message_text(  # type: ignore[union-attr]
            text=text,
            chat_id=message.chat.id,
            message_id=entry[0],
            reply_markup=keyboard,  # type: ignore[arg-type]
        )
    except TelegramBadRequest as exc:
        if "not modified" not in exc.message:
            raise


async def other_edit_ignored(message: Message) -> None:
    """Editing an old text changes nothing; the rider just sends a new message."""


async def text_sent(
    message: Message, user: User, nearby: NearbyService, subscriptions: SubscriptionService, clock: Clock
) -> None:
    match = _COORDS.match(message.text or "") if len(message.text or "") <= 64 else None
    if match:
        await _answer_point(message, match.group(1), match.group(2), user, nearby, subscriptions, clock)
        return
    await message.answer(
        _(
            "Share your location with the button below to find stations near you, "
            "or type coordinates like <code>23.13, 113.26</code>."
        ),
        reply_markup=location_keyboard(),
    )


async def anything_else(message: Message) -> None:
    await message.answer(
        _("I understand locations. Tap “📍 Share my location” below."), reply_markup=location_keyboard()
    )


async def _stale(query: CallbackQuery) -> None:
    await query.answer(_("This button is out of date. Share your location again."), show_alert=True)


async def results_paged(
    query: CallbackQuery, callback_data: ResultsCb, user: User, nearby: NearbyService, clock: Clock
) -> None:
    message = own_message(query)
    try:
        point = GeoPoint.parse(callback_data.lat, callback_data.lon)
    except InvalidLocation:
        point = None
    if message is None or point is None:
        await _stale(query)
        return
    # Another page of a search already counted.
    text, keyboard = await _render_results(
        nearby, point, user, clock(), page=callback_data.page, closed=callback_data.closed, count=False
    )
    await safe_edit(message, text, keyboard)
    await query.answer()


async def filter_changed(
    query: CallbackQuery,
    callback_data: FilterCb,
    user: User,
    users: UserService,
    nearby: NearbyService,
    clock: Clock,
) -> None:
    message = own_message(query)
    try:
        point = GeoPoint.parse(callback_data.lat, callback_data.lon)
    except InvalidLocation:
        point = None
    if message is None or point is None or callback_data.action not in set(FilterAction):
        await _stale(query)
        return
    if callback_data.action == FilterAction.TOGGLE:
        try:
            user = await users.toggle_amenity(user, callback_data.key)
        except UnknownAmenity:
            await _stale(query)
            return
    elif callback_data.action == FilterAction.CLEAR:
        user = await users.clear_filter(user)
    if callback_data.action in (FilterAction.DONE, FilterAction.CLEAR):
        text, keyboard = await _render_results(nearby, point, user, clock(), closed=callback_data.closed)
    else:
        text = filter_text(user.amenity_filter)
        keyboard = filter_keyboard(user.amenity_filter, point.lat, point.lon, callback_data.closed)
    await safe_edit(message, text, keyboard)
    await query.answer()


async def station_opened(
    query: CallbackQuery,
    callback_data: StationCb,
    nearby: NearbyService,
    ratings: RatingService,
    evaluation: EvaluationService,
    clock: Clock,
    default_tz: str,
    public_url: str | None = None,
) -> None:
    message = own_message(query)
    if message is None:
        await _stale(query)
        return
    try:
        station = await nearby.stations.get_by_id(callback_data.id)
    except StationNotFound:
        await query.answer(_("This station is no longer listed."), show_alert=True)
        return
    evaluation.record(station.id, UsageKind.VIEW, clock(), station.timezone)
    tz = ZoneInfo(station.timezone or default_tz)
    hours = hours_of(station, default_tz)
    distance: float | None = None
    try:
        rider = GeoPoint.parse(callback_data.lat, callback_data.lon)
        distance = float(geodesic_distances(rider.lat, rider.lon, [station.lat], [station.lon])[0])  # type: ignore[arg-type]
    except InvalidLocation:
        pass
    rating = await ratings.summary(station.id, query.from_user.id)
    now = clock()
    closure = nearby.stations.closures.get(station.id, now)
    await query.answer()
    await message.answer(
        card_text(station, hours, now, tz, distance, rating, closure),
        reply_markup=card_keyboard(station, public_url),
    )
    await message.answer_venue(
        latitude=station.lat,
        longitude=station.lon,
        title=station.name[:100],
        address=(station.address or station.code)[:200],
    )


async def call_tapped(
    query: CallbackQuery,
    callback_data: CallCb,
    nearby: NearbyService,
    evaluation: EvaluationService,
    clock: Clock,
) -> None:
    """The card's call button: counted, then the number in a message of its own, which Telegram makes
    tappable (a URL button cannot dial)."""
    message = own_message(query)
    if message is None:
        await _stale(query)
        return
    try:
        station = await nearby.stations.get_by_id(callback_data.station)
    except StationNotFound:
        await query.answer(_("This station is no longer listed."), show_alert=True)
        return
    if not station.phone:
        await query.answer(_("This station has no phone number."), show_alert=True)
        return
    evaluation.record(station.id, UsageKind.CALL, clock(), station.timezone)
    await query.answer()
    await message.answer(
        _("📞 {name}: {phone}").format(name=escape(station.name), phone=escape(station.phone))
    )


async def button_out_of_date(query: CallbackQuery) -> None:
    """Last of all: a button no handler took (an id out of range, a mangled or unknown prefix)."""
    await query.answer(_("This button is out of date."), show_alert=True)


def create_fast_router() -> Router:
    """First in the dispatcher: a location or venue shared outside any dialog — most updates the bot
    gets — goes straight to the search instead of through every other router's handlers and filters.
    Outside a dialog no other router claims one, so the answer is the same as through `create_router`."""
    router = Router(name="search-fast")
    router.message.filter(private_chat, has_location, StateFilter(None))
    router.message.register(venue_shared, has_venue)
    router.message.register(location_shared)
    return router


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="search")
    router.message.filter(private_chat)
    router.edited_message.filter(private_chat)
    router.message.register(venue_shared, has_venue)
    router.message.register(location_shared, has_location)
    router.edited_message.register(live_location_moved, has_location)
    router.edited_message.register(other_edit_ignored)
    router.message.register(text_sent, plain_text)
    router.message.register(anything_else)
    router.callback_query.register(results_paged, ResultsCb.filter())
    router.callback_query.register(filter_changed, FilterCb.filter())
    router.callback_query.register(station_opened, StationCb.filter())
    router.callback_query.register(call_tapped, CallCb.filter())
    router.callback_query.register(button_out_of_date)
    return router
