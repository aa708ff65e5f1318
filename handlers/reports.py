"""Riders and volunteers report problems with a station and rate it, from the station card."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _

from bot.services.ratings import InvalidRating, RatingService
from bot.services.reports import (
    CLOSURE_KINDS,
    MAX_TEXT,
    InvalidReport,
    ReportKind,
    ReportLimitReached,
    ReportService,
    ReportTooSoon,
    SiteEvidence,
)
from bot.services.stations import StationService
from domain.clock import Clock
from domain.hours_zh import accept_hours
from domain.values import GeoPoint, InvalidLocation, InvalidOpeningHours, StationNotFound, StationStatus
from handlers.callbacks import RateCb, ReportAction, ReportCb
from handlers.common import own_message, safe_edit
from handlers.errors import hours_error_text, rating_error_text, report_error_text
from handlers.filters import has_location, has_photo, has_text, plain_text, private_chat
from handlers.views import (
    format_distance,
    location_keyboard,
    rating_line,
    report_amenity_keyboard,
    report_kind_keyboard,
    report_send_keyboard,
    stars_keyboard,
)


class ReportForm(StatesGroup):
    location = State()
    hours = State()
    text = State()
    extras = State()


class RatingForm(StatesGroup):
    comment = State()


async def _station_or_refuse(query: CallbackQuery, stations: StationService, station_id: int):  # type: ignore[no-untyped-def]
    try:
        station = await stations.get_by_id(station_id)
    except StationNotFound:
        station = None
    if station is None or station.status is StationStatus.CLOSED:
        await query.answer(_("This station is no longer listed."), show_alert=True)
        return None
    return station


async def report_started(
    query: CallbackQuery, callback_data: ReportCb, stations: StationService, state: FSMContext
) -> None:
    if own_message(query) is None:
        await query.answer(_("This button is out of date. Share your location again."), show_alert=True)
        return
    station = await _station_or_refuse(query, stations, callback_data.station)
    if station is None:
        return
    await state.clear()
    await state.update_data(report={"station": station.id})
    await query.answer()
    await query.message.answer(  # type: ignore[union-attr]
        _("What is wrong with {name}?").format(name=escape(station.name)),
        reply_markup=report_kind_keyboard(station.id),
    )


async def report_kind_chosen(
    query: CallbackQuery,
    callback_data: ReportCb,
    stations: StationService,
    reports: ReportService,
    state: FSMContext,
) -> None:
    data = (await state.get_data()).get("report")
    if own_message(query) is None or not data or data.get("station") != callback_data.station:
        await query.answer(_("This button is out of date. Share your location again."), show_alert=True)
        return
    try:
        kind = ReportKind(callback_data.value)
    except ValueError:
        await query.answer(_("This button is out of date. Share your location again."), show_alert=True)
        return
    station = await _station_or_refuse(query, stations, callback_data.station)
    if station is None:
        return
    data["kind"] = kind.value
    await state.update_data(report=data)
    await query.answer()
    message = own_message(query)
    assert message is not None  # checked above
    if kind is ReportKind.AMENITY_BROKEN:
        await message.answer(_("Which one is broken?"), reply_markup=report_amenity_keyboard(station))
    elif kind is ReportKind.WRONG_LOCATION:
        await state.set_state(ReportForm.location)
        await message.answer(
            _("Share the right location of the station (stand at it, or pick it on the map)."),
            reply_markup=location_keyboard(),
        )
    elif kind is ReportKind.WRONG_HOURS:
        await state.set_state(ReportForm.hours)
        await message.answer(
            _(
                "Type the right opening hours, for example "
                "<code>周一至周五 8:00-18:00，周六 9:00-12:00</code>, <code>全天24小时</code> "
                "or <code>Mo-Fr 08:00-18:00; Sa 09:00-12:00</code>."
            )
        )
    elif kind is ReportKind.OTHER:
        await state.set_state(ReportForm.text)
        await message.answer(_("Describe the problem in a few words."))
    else:
        await _ask_extras(message, station.id, state, closure_within_m=reports.policy.on_site_m)


async def _ask_extras(
    message: Message, station_id: int, state: FSMContext, closure_within_m: float | None = None
) -> None:
    await state.set_state(ReportForm.extras)
    if closure_within_m is not None:
        text = _(
            "Share your location now, at the station: a closure report helps hide the station from "
            "riders only when it comes from within {distance} of it. Optional: a photo. "
            "Then tap “Send report”."
        ).format(distance=format_distance(closure_within_m))
    else:
        text = _(
            "Optional: send a photo, or share your location to show you are at the station. "
            "Then tap “Send report”."
        )
    await message.answer(text, reply_markup=report_send_keyboard(station_id))


async def report_amenity_chosen(query: CallbackQuery, callback_data: ReportCb, state: FSMContext) -> None:
    data = (await state.get_data()).get("report")
    if own_message(query) is None or not data or data.get("station") != callback_data.station:
        await query.answer(_("This button is out of date. Share your location again."), show_alert=True)
        return
    data["detail"] = callback_data.value
    await state.update_data(report=data)
    await query.answer()
    await _ask_extras(query.message, callback_data.station, state)  # type: ignore[arg-type]


async def report_location_given(message: Message, state: FSMContext) -> None:
    data = (await state.get_data()).get("report") or {}
    location = message.location
    assert location is not None
    try:
        point = GeoPoint.parse(location.latitude, location.longitude)
    except InvalidLocation:
        await message.answer(_("That location looks wrong. Please share it again."))
        return
    data["detail"] = f"{point.lat:.6f},{point.lon:.6f}"
    await state.update_data(report=data)
    await message.answer(_("Got the location."), reply_markup=ReplyKeyboardRemove())
    await _ask_extras(message, data["station"], state)


async def report_hours_typed(message: Message, state: FSMContext) -> None:
    text = (message.text or "").strip()
    try:
        accept_hours(text)  # OSM syntax or Chinese; translated when staff approve the report
        error = _("empty") if not text else ""
    except InvalidOpeningHours as exc:
        error = hours_error_text(exc)
    if error:
        await message.answer(
            _("These hours cannot be read: {error}\nPlease type them again.").format(error=error)
        )
        return
    data = (await state.get_data()).get("report") or {}
    data["detail"] = text
    await state.update_data(report=data)
    await _ask_extras(message, data["station"], state)


async def report_text_typed(message: Message, state: FSMContext) -> None:
    text = (message.text or "").strip()
    if not text or len(text) > MAX_TEXT:
        await message.answer(
            _("Please describe the problem in at most {count} characters.").format(count=MAX_TEXT)
        )
        return
    data = (await state.get_data()).get("report") or {}
    data["text"] = text
    await state.update_data(report=data)
    await _ask_extras(message, data["station"], state)


async def report_photo_added(message: Message, state: FSMContext) -> None:
    data = (await state.get_data()).get("report") or {}
    data["photo"] = message.photo[-1].file_id  # type: ignore[index]
    await state.update_data(report=data)
    await message.answer(
        _("Photo added. Tap “Send report” when ready."), reply_markup=report_send_keyboard(data["station"])
    )


async def report_here_added(
    message: Message, reports: ReportService, state: FSMContext, clock: Clock
) -> None:
    data = (await state.get_data()).get("report") or {}
    location = message.location
    assert location is not None
    if message.venue is not None or message.forward_origin is not None:
        # A place picked from a list, or someone else's location, shows nothing about the reporter.
        await message.answer(
            _("Please share your own current location, not a place or a forwarded location."),
            reply_markup=report_send_keyboard(data.get("station", 0)),
        )
        return
    try:
        point = GeoPoint.parse(location.latitude, location.longitude)
        evidence = await reports.locate(data["station"], point, clock())
    except (InvalidLocation, StationNotFound, KeyError):
        await message.answer(_("That location looks wrong. Please share it again."))
        return
    # Only the distance and the time are kept, never the point.
    data["evidence"] = {"distance_m": round(evidence.distance_m), "at": evidence.at.isoformat()}
    await state.update_data(report=data)
    await message.answer(
        _("Location added: you are {distance} from the station. Tap “Send report” when ready.").format(
            distance=format_distance(evidence.distance_m)
        ),
        reply_markup=report_send_keyboard(data["station"]),
    )


def _evidence(data: dict[str, Any]) -> SiteEvidence | None:
    raw = data.get("evidence")
    if not isinstance(raw, dict):
        return None
    try:
        return SiteEvidence(int(data["station"]), float(raw["distance_m"]), datetime.fromisoformat(raw["at"]))
    except (KeyError, TypeError, ValueError):
        return None


async def report_extras_other(message: Message, state: FSMContext) -> None:
    data = (await state.get_data()).get("report") or {}
    if message.text and not message.text.startswith("/") and len(message.text) <= MAX_TEXT:
        data["text"] = message.text.strip()
        await state.update_data(report=data)
    await message.answer(
        _("Tap “Send report”, or add a photo or your location first."),
        reply_markup=report_send_keyboard(data.get("station", 0)),
    )


async def report_sent(
    query: CallbackQuery, callback_data: ReportCb, reports: ReportService, state: FSMContext, clock: Clock
) -> None:
    data = (await state.get_data()).get("report")
    if (
        own_message(query) is None
        or not data
        or data.get("station") != callback_data.station
        or "kind" not in data
    ):
        await query.answer(_("This button is out of date. Share your location again."), show_alert=True)
        return
    try:
        result = await reports.submit(
            query.from_user.id,
            data["station"],
            data["kind"],
            clock(),
            detail=data.get("detail", ""),
            text=data.get("text", ""),
            photo_file_id=data.get("photo"),
            evidence=_evidence(data),
        )
    except ReportTooSoon:
        await state.clear()
        await query.answer(_("You reported this station less than an hour ago. Thank you!"), show_alert=True)
        return
    except ReportLimitReached as exc:
        await state.clear()
        limit = (
            _("You sent {count} closure reports today, the most one person can. Thank you!")
            if exc.closures
            else _("You sent {count} reports today, the most one person can. Thank you!")
        )
        await query.answer(limit.format(count=exc.limit), show_alert=True)
        return
    except InvalidReport as exc:
        await query.answer(
            _("This report cannot be sent: {reason}").format(reason=report_error_text(exc)), show_alert=True
        )
        return
    except StationNotFound:
        await state.clear()
        await query.answer(_("This station is no longer listed."), show_alert=True)
        return
    await state.clear()
    await query.answer()
    text = _("🙏 Thank you! Union staff will check it.")
    if result.reporters > 1:
        text += "\n" + _("{count} people report this problem.").format(count=result.reporters)
    if result.on_site:
        text += "\n" + _("📍 Marked as reported on site.")
    elif ReportKind(data["kind"]) in CLOSURE_KINDS:
        text += "\n" + _(
            "Reports sent from the station itself, with your location, can hide it from riders at once."
        )
    if result.auto_hidden:
        text += "\n" + _("The station is hidden from riders until staff confirm.")
    await safe_edit(query.message, text, None)  # type: ignore[arg-type]


async def report_cancelled(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer(_("Cancelled."))
    if own_message(query) is not None:
        await safe_edit(query.message, _("Report cancelled."), None)  # type: ignore[arg-type]


async def rate_pressed(
    query: CallbackQuery,
    callback_data: RateCb,
    ratings: RatingService,
    stations: StationService,
    state: FSMContext,
    clock: Clock,
) -> None:
    if own_message(query) is None:
        await query.answer(_("This button is out of date. Share your location again."), show_alert=True)
        return
    station = await _station_or_refuse(query, stations, callback_data.station)
    if station is None:
        return
    if callback_data.stars == 0:
        await query.answer()
        await query.message.answer(  # type: ignore[union-attr]
            _("How was {name}?").format(name=escape(station.name)), reply_markup=stars_keyboard(station.id)
        )
        return
    try:
        summary = await ratings.rate(query.from_user.id, station.id, callback_data.stars, clock())
    except InvalidRating as exc:
        await query.answer(rating_error_text(exc), show_alert=True)
        return
    await state.set_state(RatingForm.comment)
    await state.update_data(rating_station=station.id)
    await query.answer(_("Thank you!"))
    await safe_edit(
        query.message,  # type: ignore[arg-type]
        rating_line(summary) + "\n" + _("Add a comment? Type it now, or just carry on."),
        None,
    )


async def rating_comment_typed(
    message: Message, ratings: RatingService, state: FSMContext, clock: Clock
) -> None:
    station_id = (await state.get_data()).get("rating_station")
    await state.clear()
    text = (message.text or "").strip()
    if station_id is None or not text or text.startswith("/"):
        return
    try:
        await ratings.comment(message.from_user.id, station_id, text, clock())  # type: ignore[union-attr]
    except InvalidRating as exc:
        await message.answer(rating_error_text(exc))
        return
    await message.answer(_("Comment saved. Thank you!"))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="reports")
    router.message.filter(private_chat)
    router.callback_query.register(report_started, ReportCb.filter(F.action == ReportAction.START))
    router.callback_query.register(report_kind_chosen, ReportCb.filter(F.action == ReportAction.KIND))
    router.callback_query.register(report_amenity_chosen, ReportCb.filter(F.action == ReportAction.AMENITY))
    router.callback_query.register(report_sent, ReportCb.filter(F.action == ReportAction.SEND))
    router.callback_query.register(report_cancelled, ReportCb.filter())
    router.callback_query.register(rate_pressed, RateCb.filter())
    router.message.register(report_location_given, StateFilter(ReportForm.location), has_location)
    router.message.register(report_hours_typed, StateFilter(ReportForm.hours), has_text)
    router.message.register(report_text_typed, StateFilter(ReportForm.text), has_text)
    router.message.register(report_photo_added, StateFilter(ReportForm.extras), has_photo)
    router.message.register(report_here_added, StateFilter(ReportForm.extras), has_location)
    router.message.register(report_extras_other, StateFilter(ReportForm.extras))
    router.message.register(rating_comment_typed, StateFilter(RatingForm.comment), plain_text)
    return router
