"""Rendering of subscriptions and announcements: the rider's offers and confirmations, the staff's composer
steps and the list of announcements, in the current locale.

Announcement texts are the staff's own HTML (kept as written); everything else is escaped here.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape, unescape
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.services.announcements import AnnouncementView, Audience, rider_message
from bot.services.stations import province_name
from domain.clock import DEFAULT_TZ
from domain.statuses import AnnouncementStatus
from handlers.callbacks import (
    AnnouncementAction,
    AnnouncementCb,
    ComposeAction,
    ComposeCb,
    SubscribeAction,
    SubscribeCb,
    round_point,
)
from handlers.views import listed

#: Announcements are scheduled and shown in China's time.
ANNOUNCE_TZ = ZoneInfo(DEFAULT_TZ)
RADII_KM = (1, 3, 5, 10, 20)
ACTIVE = (AnnouncementStatus.SENDING, AnnouncementStatus.SCHEDULED, AnnouncementStatus.PAUSED)
_TAG = re.compile(r"<[^>]+>")

STATUS_LABELS = {
    AnnouncementStatus.DRAFT: __("draft"),
    AnnouncementStatus.SCHEDULED: __("⏰ scheduled"),
    AnnouncementStatus.SENDING: __("📤 sending"),
    AnnouncementStatus.PAUSED: __("⏸ paused"),
    AnnouncementStatus.CANCELLED: __("✖️ cancelled"),
    AnnouncementStatus.DONE: __("✅ done"),
}


# -- riders -----------------------------------------------------------------------------------------------
def offer_text() -> str:
    return _(
        "🔔 Want to hear from the union about your area: summer cooling drinks, new stations, "
        "legal-aid days?\n"
        "Only a coarse area of about 5 km around this location is kept, never the location itself. "
        "You can unsubscribe at any time."
    )


def offer_keyboard(lat: float, lon: float) -> InlineKeyboardMarkup:
    lat, lon = round_point(lat, lon)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("🔔 Subscribe with this area"),
                    callback_data=SubscribeCb(action=SubscribeAction.HERE, lat=lat, lon=lon).pack(),
                ),
                InlineKeyboardButton(
                    text=_("No, thanks"), callback_data=SubscribeCb(action=SubscribeAction.DECLINE).pack()
                ),
            ]
        ]
    )


def subscribe_text(already: bool) -> str:
    lines = []
    if already:
        lines.append(_("You are subscribed. Choose a new area below, or /unsubscribe."))
    lines.append(
        _(
            "🔔 Announcements from the union: summer cooling drinks, new stations, legal-aid days.\n"
            "Share a location with the button below to hear about the area around it. Only a coarse "
            "area of about 5 km is kept, never the location itself."
        )
    )
    return "\n\n".join(lines)


def province_keyboard(provinces: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, name in provinces:
        kb.button(
            text=f"{name} {code}",
            callback_data=SubscribeCb(action=SubscribeAction.PROVINCE, region=code).pack(),
        )
    kb.adjust(4)
    return kb.as_markup()


def unsubscribe_keyboard() -> InlineKeyboardMarkup:
    """The buttons every announcement carries (`rider_message`, which bot/broadcast.py sends), for the
    staff's preview."""
    message = rider_message("", None, _)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.text, callback_data=b.callback_data) for b in row]
            for row in message.keyboard
        ]
    )


def subscribed_near_text() -> str:
    return _(
        "🔔 Subscribed. Only the area of about 5 km around that location is kept, not the location "
        "itself. /unsubscribe stops the announcements."
    )


def subscribed_region_text(region: str) -> str:
    return _("🔔 Subscribed to announcements for {area}. /unsubscribe stops them.").format(
        area=escape(region_label(region))
    )


# -- staff: composing --------------------------------------------------------------------------------------
def region_label(region: str) -> str:
    if not region:
        return _("all of China")
    if len(region) == 2:
        return f"{province_name(region)} ({region})"
    return region


def regions_label(regions: tuple[str, ...] | list[str]) -> str:
    return listed(region_label(r) for r in regions)


def photo_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("No photo"), callback_data=ComposeCb(action=ComposeAction.NO_PHOTO).pack()
                ),
                InlineKeyboardButton(
                    text=_("Cancel"), callback_data=ComposeCb(action=ComposeAction.CANCEL).pack()
                ),
            ]
        ]
    )


def audience_question() -> str:
    return _("⬆️ This is how riders will see it. Who should get it?")


def audience_keyboard(regions: list[str]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for region in regions:
        kb.row(
            InlineKeyboardButton(
                text=_("👥 All subscribers in {area}").format(area=region_label(region)),
                callback_data=ComposeCb(action=ComposeAction.WHOLE_REGION, value=region).pack(),
            )
        )
    kb.row(
        InlineKeyboardButton(
            text=_("🗺 A sub-region"), callback_data=ComposeCb(action=ComposeAction.SUB_REGION).pack()
        ),
        InlineKeyboardButton(
            text=_("📍 Near a point"), callback_data=ComposeCb(action=ComposeAction.NEAR_POINT).pack()
        ),
    )
    kb.row(
        InlineKeyboardButton(
            text=_("🏠 Near a station"), callback_data=ComposeCb(action=ComposeAction.NEAR_STATION).pack()
        ),
        InlineKeyboardButton(text=_("Cancel"), callback_data=ComposeCb(action=ComposeAction.CANCEL).pack()),
    )
    return kb.as_markup()


def radius_keyboard() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for km in RADII_KM:
        kb.button(
            text=_("{km} km").format(km=km),
            callback_data=ComposeCb(action=ComposeAction.RADIUS, value=str(km)).pack(),
        )
    kb.button(text=_("Cancel"), callback_data=ComposeCb(action=ComposeAction.CANCEL).pack())
    kb.adjust(len(RADII_KM), 1)
    return kb.as_markup()


def audience_label(audience: Audience) -> str:
    area = region_label(audience.region)
    if audience.point is None or audience.radius_km is None:
        return area
    return _("{area}, within {km} km of {lat}, {lon}").format(
        area=area,
        km=f"{audience.radius_km:g}",
        lat=f"{audience.point.lat:.4f}",
        lon=f"{audience.point.lon:.4f}",
    )


def audience_size_text(audience: Audience, count: int) -> str:
    return "\n".join(
        (
            _("👥 Audience: {audience}").format(audience=escape(audience_label(audience))),
            _("{count} subscribers will get it.").format(count=count),
        )
    )


def confirm_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("📣 Send now"), callback_data=ComposeCb(action=ComposeAction.SEND_NOW).pack()
                ),
                InlineKeyboardButton(
                    text=_("⏰ Schedule"), callback_data=ComposeCb(action=ComposeAction.SCHEDULE).pack()
                ),
            ],
            [
                InlineKeyboardButton(
                    text=_("Cancel"), callback_data=ComposeCb(action=ComposeAction.CANCEL).pack()
                )
            ],
        ]
    )


def format_local(when: datetime) -> str:
    return when.astimezone(ANNOUNCE_TZ).strftime("%Y-%m-%d %H:%M")


# -- staff: the list ---------------------------------------------------------------------------------------
def _snippet(html_text: str, limit: int = 60) -> str:
    plain = unescape(_TAG.sub("", html_text)).replace("\n", " ").strip()
    return escape(plain if len(plain) <= limit else plain[: limit - 1] + "…")


def announcement_entry(view: AnnouncementView) -> str:
    c = view.counts
    status = str(STATUS_LABELS.get(view.status, view.status))
    lines = [f"<b>#{view.id}</b> · {status} · {escape(audience_label(view.audience))}"]
    when = _("created {time}").format(time=format_local(view.created_at))
    if view.scheduled_at is not None:
        when += " · " + _("scheduled for {time}").format(time=format_local(view.scheduled_at))
    lines.append(when)
    lines.append(
        _(
            "sent {sent} · failed {failed} · blocked {blocked} · left {left} · uncertain {uncertain} "
            "of {total}"
        ).format(
            sent=c.sent, failed=c.failed, blocked=c.blocked, left=c.left, uncertain=c.uncertain, total=c.total
        )
    )
    if view.photo_file_id:
        lines.append("🖼 " + _snippet(view.text))
    else:
        lines.append("💬 " + _snippet(view.text))
    return "\n".join(lines)


def announcements_text(views: list[AnnouncementView]) -> str:
    if not views:
        return _("No announcements in your region yet. Start one with /announce.")
    text = "📣 <b>" + _("Announcements") + "</b>"
    for view in views:
        entry = announcement_entry(view)
        # Whole entries only: a cut in the middle could leave a tag open, which Telegram refuses.
        if len(text) + len(entry) + 2 > 4000:
            break
        text += "\n\n" + entry
    return text


def announcements_keyboard(views: list[AnnouncementView]) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    for view in views:
        if view.status not in ACTIVE:
            continue
        row = []
        if view.status is AnnouncementStatus.PAUSED:
            row.append(
                InlineKeyboardButton(
                    text=_("▶️ Resume #{id}").format(id=view.id),
                    callback_data=AnnouncementCb(action=AnnouncementAction.RESUME, id=view.id).pack(),
                )
            )
        else:
            row.append(
                InlineKeyboardButton(
                    text=_("⏸ Pause #{id}").format(id=view.id),
                    callback_data=AnnouncementCb(action=AnnouncementAction.PAUSE, id=view.id).pack(),
                )
            )
        row.append(
            InlineKeyboardButton(
                text=_("✖️ Cancel #{id}").format(id=view.id),
                callback_data=AnnouncementCb(action=AnnouncementAction.CANCEL, id=view.id).pack(),
            )
        )
        rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
