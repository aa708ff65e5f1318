"""Rendering: results, station cards and keyboards as the rider sees them, in the current locale.

Everything user-facing goes through gettext; values from the database are HTML-escaped here, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.i18n import LOCALES, join_list
from bot.services.closures import ClosureNote
from bot.services.nearby import NearbyResult, ResultsPage, walking_minutes
from bot.services.ratings import RatingSummary
from bot.services.reports import CLOSURE_KINDS, CaseView, RegionPause
from domain.amenities import AMENITIES, AMENITY
from domain.hours import Hours, OpenState
from domain.languages import LANGUAGES
from domain.navigation import MapApp, amap_url, baidu_url, counted_url, geo_uri
from domain.values import AMENITY_KEYS, Station, StationStatus
from handlers.callbacks import (
    CallCb,
    FilterAction,
    FilterCb,
    LanguageCb,
    ModAction,
    ModCb,
    RateCb,
    ReportAction,
    ReportCb,
    StaffAction,
    StaffCb,
    round_point,
)

#: Icons by amenity key, from the registry.
AMENITY_ICONS: dict[str, str] = {amenity.key: amenity.icon for amenity in AMENITIES}

#: The /language keyboard's names, from the registry.
LANGUAGE_NAMES: dict[str, str] = {language.locale: language.name for language in LANGUAGES}

WEEKDAYS = (__("Mon"), __("Tue"), __("Wed"), __("Thu"), __("Fri"), __("Sat"), __("Sun"))


def amenity_label(key: str) -> str:
    """The amenity's label in the current user's language."""
    return _(AMENITY[key].label)


def format_distance(metres: float) -> str:
    if metres < 1000:
        return _("{metres} m").format(metres=round(metres))
    if metres < 100_000:
        return _("{km} km").format(km=f"{metres / 1000:.1f}")
    return _("{km} km").format(km=f"{metres / 1000:,.0f}")


def format_when(when: datetime, now: datetime) -> str:
    """A time of day, with the day when it is not today (both in the station's timezone)."""
    local_now = now.astimezone(when.tzinfo)
    clock = when.strftime("%H:%M")
    days = (when.date() - local_now.date()).days
    if days == 0:
        return clock
    if days == 1:
        return _("tomorrow {time}").format(time=clock)
    if 1 < days < 7:
        return f"{WEEKDAYS[when.weekday()]} {clock}"
    return _("{month}/{day} {time}").format(month=when.month, day=when.day, time=clock)


def hours_phrase(result: NearbyResult, now: datetime) -> str:
    hit = result.hit
    if hit.status is not StationStatus.ACTIVE:
        return _("⛔ temporarily closed")
    if hit.open_now is None:
        return _("❔ hours unknown")
    change = hit.hours.next_change
    if hit.open_now:
        if change is None:
            return _("🟢 open 24 h")
        return _("🟢 open until {time}").format(time=format_when(change, now))
    if change is None:
        return _("🔴 closed")
    return _("🔴 closed, opens {time}").format(time=format_when(change, now))


def closure_line(note: ClosureNote, now: datetime) -> str:
    """ "2 riders reported it closed at 14:05", in the station's timezone (the note's)."""
    when = note.last_at.strftime("%H:%M")
    if note.last_at.date() != now.astimezone(note.last_at.tzinfo).date():
        when = _("yesterday {time}").format(time=when)
    if note.count == 1:
        return "⚠️ " + _("A rider reported it closed at {time}").format(time=when)
    return "⚠️ " + _("{count} riders reported it closed at {time}").format(count=note.count, time=when)


def listed(items: Iterable[str]) -> str:
    """Items joined the way the reader's language lists things."""
    return join_list(items, get_i18n().current_locale)


#: Zone names that are China's one time zone: staff read “Beijing time” rather than an abbreviation.
BEIJING_TIME = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


def local_datetime(when: datetime, tz: ZoneInfo) -> str:
    """A moment as staff read it: date and time in the station's timezone, with the zone named."""
    local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(tz)
    if tz.key in BEIJING_TIME:
        zone = _("Beijing time")
    else:
        abbreviation = local.tzname() or ""
        offset = local.strftime("%z")
        zone = abbreviation if abbreviation.isalpha() else f"UTC{offset[:3]}:{offset[3:]}"
    return f"{local:%Y-%m-%d %H:%M} {zone}"


def icons(amenities: tuple[str, ...] | list[str]) -> str:
    return "".join(AMENITY_ICONS[key] for key in amenities if key in AMENITY_ICONS)


def filter_summary(amenities: tuple[str, ...]) -> str:
    return _("Filter: {amenities}").format(amenities=listed(amenity_label(k) for k in amenities))


def results_text(page: ResultsPage, amenities: tuple[str, ...], now: datetime) -> str:
    lines: list[str] = []
    if page.fallback:
        lines.append(_("😔 No station is open near you right now. The nearest ones and when they open:"))
    elif page.include_closed:
        lines.append("📍 <b>" + _("Nearest stations, open or not") + "</b>")
    else:
        lines.append("📍 <b>" + _("Nearest open stations") + "</b>")
    if amenities:
        lines.append("🔎 " + filter_summary(amenities))
    if not page.results:
        if page.page > 0:
            lines.append(_("No more stations."))
        elif amenities:
            lines.append(_("No station has everything in your filter. Try clearing it."))
        else:
            lines.append(_("No station is known here yet."))
        return "\n".join(lines)
    if page.far:
        lines.append(
            _("⚠️ The nearest one is {distance} away.").format(
                distance=format_distance(page.results[0].hit.distance_m)
            )
        )
    for n, result in enumerate(page.results, start=page.page * 5 + 1):
        distance = result.hit.distance_m
        minutes = walking_minutes(distance)
        lines.append("")
        lines.append(f"{n}. <b>{escape(result.station.name)}</b>")
        facts = [format_distance(distance)]
        if minutes is not None:
            facts.append(_("🚶 {minutes} min").format(minutes=minutes))
        facts.append(hours_phrase(result, now))
        lines.append("    " + " · ".join(facts))
        if result.station.amenities:
            lines.append("    " + icons(result.station.amenities))
        if result.closure is not None:
            lines.append("    " + closure_line(result.closure, now))
    return "\n".join(lines)


def results_markup(page: ResultsPage, lat: float, lon: float, amenities: tuple[str, ...]) -> dict[str, Any]:
    """The results keyboard as the Bot API's JSON object (the hot path sends it without aiogram's models;
    `results_keyboard` is the same keyboard as one)."""
    lat, lon = round_point(lat, lon)
    rows: list[list[dict[str, str]]] = []
    for n, result in enumerate(page.results, start=page.page * 5 + 1):
        name = result.station.name
        label = f"{n}. {name if len(name) <= 24 else name[:23] + '…'}"
        rows.append([{"text": label, "callback_data": f"st:{result.station.id}:{lat}:{lon}"}])
    closed = int(page.include_closed)
    nav: list[dict[str, str]] = []
    if page.page > 0:
        nav.append({"text": _("◀ Back"), "callback_data": f"r:{lat}:{lon}:{page.page - 1}:{closed}"})
    if page.has_more:
        nav.append({"text": _("More ▶"), "callback_data": f"r:{lat}:{lon}:{page.page + 1}:{closed}"})
    if nav:
        rows.append(nav)
    closed_label = _("Only open ones") if page.include_closed else _("Include closed")
    filter_label = _("🔎 Filter ({count})").format(count=len(amenities)) if amenities else _("🔎 Filter")
    rows.append(
        [
            {"text": closed_label, "callback_data": f"r:{lat}:{lon}:0:{1 - closed}"},
            {"text": filter_label, "callback_data": f"f:o::{lat}:{lon}:{closed}"},
        ]
    )
    return {"inline_keyboard": rows}


def results_keyboard(
    page: ResultsPage, lat: float, lon: float, amenities: tuple[str, ...]
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup.model_validate(results_markup(page, lat, lon, amenities))


def filter_text(amenities: tuple[str, ...]) -> str:
    text = (
        "🔎 <b>"
        + _("What do you need?")
        + "</b>\n"
        + _("Tap to choose; results show only stations with all of it.")
    )
    if amenities:
        text += "\n\n" + filter_summary(amenities)
    return text


def filter_keyboard(amenities: tuple[str, ...], lat: float, lon: float, closed: bool) -> InlineKeyboardMarkup:
    lat, lon = round_point(lat, lon)
    kb = InlineKeyboardBuilder()
    for key in AMENITY_KEYS:
        mark = "✅ " if key in amenities else ""
        kb.button(
            text=f"{mark}{AMENITY_ICONS[key]} {amenity_label(key)}",
            callback_data=FilterCb(
                action=FilterAction.TOGGLE, key=key, lat=lat, lon=lon, closed=closed
            ).pack(),
        )
    kb.adjust(2)
    bottom = [
        InlineKeyboardButton(
            text=_("✔️ Show results"),
            callback_data=FilterCb(action=FilterAction.DONE, lat=lat, lon=lon, closed=closed).pack(),
        )
    ]
    if amenities:
        bottom.insert(
            0,
            InlineKeyboardButton(
                text=_("✖️ Clear"),
                callback_data=FilterCb(action=FilterAction.CLEAR, lat=lat, lon=lon, closed=closed).pack(),
            ),
        )
    kb.row(*bottom)
    return kb.as_markup()


def location_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=_("📍 Share my location"), request_location=True)]],
        resize_keyboard=True,
        input_field_placeholder=_("Share a location or type coordinates"),
    )


def language_keyboard(current: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for locale in LOCALES:
        mark = "✅ " if locale == current else ""
        kb.button(text=mark + LANGUAGE_NAMES[locale], callback_data=LanguageCb(locale=locale).pack())
    kb.adjust(1)
    return kb.as_markup()


def _intervals_text(hours: Hours | None, day: date) -> str:
    if hours is None:
        return _("unknown")
    if hours.is_always_open:
        return _("open 24 h")
    parts = []
    for start, end, state in hours.day_intervals(day):
        span = f"{start.strftime('%H:%M')}–{end.strftime('%H:%M') if end else '24:00'}"
        parts.append(span if state is OpenState.OPEN else _("{span} (unknown)").format(span=span))
    return ", ".join(parts) if parts else _("closed")


def week_text(hours: Hours | None, today: date) -> list[str]:
    monday = today - timedelta(days=today.weekday())
    lines = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        marker = "▸ " if day == today else "   "
        lines.append(f"{marker}{WEEKDAYS[offset]} {_intervals_text(hours, day)}")
    return lines


def navigation_links(station: Station) -> tuple[str, str, str]:
    """Amap and Baidu marker pages declaring WGS-84 input, and a `geo:` URI."""
    return amap_url(station), baidu_url(station), geo_uri(station)


def card_text(
    station: Station,
    hours: Hours | None,
    now: datetime,
    tz: ZoneInfo,
    distance_m: float | None,
    rating: RatingSummary | None = None,
    closure: ClosureNote | None = None,
) -> str:
    local_now = now.astimezone(tz)
    lines = [f"🏠 <b>{escape(station.name)}</b>", _("No. {code}").format(code=escape(station.code))]
    if station.address:
        lines.append("📍 " + escape(station.address))
    if distance_m is not None:
        minutes = walking_minutes(distance_m)
        if minutes is None:
            line = _("{distance} away").format(distance=format_distance(distance_m))
        else:
            line = _("{distance} away, about {minutes} min on foot").format(
                distance=format_distance(distance_m), minutes=minutes
            )
        lines.append("📏 " + line)
    if station.status is StationStatus.TEMPORARILY_CLOSED:
        lines.append("⛔ " + _("Temporarily closed"))
    elif station.status is StationStatus.CLOSED:
        lines.append("⛔ " + _("This station has left the network"))
    elif hours is None:
        lines.append("❔ " + _("Opening hours unknown"))
    else:
        status = hours.status(now)
        if status.state is OpenState.OPEN:
            line = (
                _("🟢 Open now, 24 hours")
                if status.next_change is None
                else _("🟢 Open now, until {time}").format(time=format_when(status.next_change, now))
            )
        elif status.state is OpenState.CLOSED:
            line = (
                _("🔴 Closed now")
                if status.next_change is None
                else _("🔴 Closed now, opens {time}").format(time=format_when(status.next_change, now))
            )
        else:
            line = _("❔ Open now? Unknown")
        if status.comment:
            line += f" ({escape(status.comment)})"
        lines.append(line)
    if closure is not None:
        lines.append(closure_line(closure, now))
    lines.append("🕘 " + _("Today: {hours}").format(hours=_intervals_text(hours, local_now.date())))
    if hours is not None and not hours.is_always_open:
        lines.append("<pre>" + "\n".join(week_text(hours, local_now.date())) + "</pre>")
    if station.opening_hours_text:
        lines.append("📋 " + _("As posted: {hours}").format(hours=escape(station.opening_hours_text)))
    if station.amenities:
        lines.append(
            "🧰 "
            + listed(f"{AMENITY_ICONS[k]}{amenity_label(k)}" for k in station.amenities if k in AMENITY_ICONS)
        )
    if station.host:
        lines.append("🏢 " + _("Host: {host}").format(host=escape(station.host)))
    if station.manager:
        lines.append("👤 " + _("Manager: {name}").format(name=escape(station.manager)))
    if station.phone:
        lines.append("☎️ " + escape(station.phone))
    if rating is not None:
        lines.append(rating_line(rating))
    if station.verified_at:
        lines.append(
            "✔️ "
            + _("Last verified {date}").format(date=station.verified_at.astimezone(tz).date().isoformat())
        )
    _amap, _baidu, geo = navigation_links(station)
    lines.append("🧭 <code>" + escape(geo.split("?")[0]) + "</code>")
    return "\n".join(lines)


def card_keyboard(station: Station, public_url: str | None = None) -> InlineKeyboardMarkup:
    """The card's buttons. With `public_url` the map buttons go through the web app's `/go/` redirect,
    which counts the tap for the station's evaluation; a phone number gets a call button (counted too)."""
    if public_url:
        amap = counted_url(public_url, station.code, MapApp.AMAP)
        baidu = counted_url(public_url, station.code, MapApp.BAIDU)
    else:
        amap, baidu, _geo = navigation_links(station)
    maps = [
        InlineKeyboardButton(text=_("🗺 Amap"), url=amap),
        InlineKeyboardButton(text=_("🗺 Baidu Maps"), url=baidu),
    ]
    if station.phone:
        maps.append(InlineKeyboardButton(text=_("📞 Call"), callback_data=CallCb(station=station.id).pack()))
    return InlineKeyboardMarkup(
        inline_keyboard=[
            maps,
            [
                InlineKeyboardButton(
                    text=_("⚠️ Report a problem"),
                    callback_data=ReportCb(action=ReportAction.START, station=station.id).pack(),
                ),
                InlineKeyboardButton(text=_("⭐ Rate"), callback_data=RateCb(station=station.id).pack()),
            ],
        ]
    )


def rating_line(summary: RatingSummary) -> str:
    if not summary.count or summary.average is None:
        return "⭐ " + _("No ratings yet")
    line = "⭐ " + _("{average} from {count} ratings").format(
        average=f"{summary.average:.1f}", count=summary.count
    )
    if summary.mine:
        line += " · " + _("yours: {stars}").format(stars=summary.mine)
    return line


REPORT_KIND_LABELS = {
    "closed_now": __("🚪 Closed now"),
    "closed_permanently": __("⛔ Closed for good"),
    "amenity_broken": __("🔧 Something is broken"),
    "wrong_location": __("📍 Wrong location"),
    "wrong_hours": __("🕘 Wrong opening hours"),
    "other": __("💬 Something else"),
}


def report_kind_keyboard(station_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for kind, label in REPORT_KIND_LABELS.items():
        kb.button(
            text=str(label),
            callback_data=ReportCb(action=ReportAction.KIND, station=station_id, value=kind).pack(),
        )
    kb.button(text=_("Cancel"), callback_data=ReportCb(action=ReportAction.CANCEL, station=station_id).pack())
    kb.adjust(2)
    return kb.as_markup()


def report_amenity_keyboard(station: Station) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for key in station.amenities:
        if key in AMENITY_ICONS:
            kb.button(
                text=f"{AMENITY_ICONS[key]} {amenity_label(key)}",
                callback_data=ReportCb(action=ReportAction.AMENITY, station=station.id, value=key).pack(),
            )
    kb.button(text=_("Cancel"), callback_data=ReportCb(action=ReportAction.CANCEL, station=station.id).pack())
    kb.adjust(2)
    return kb.as_markup()


def report_send_keyboard(station_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("✅ Send report"),
                    callback_data=ReportCb(action=ReportAction.SEND, station=station_id).pack(),
                ),
                InlineKeyboardButton(
                    text=_("Cancel"),
                    callback_data=ReportCb(action=ReportAction.CANCEL, station=station_id).pack(),
                ),
            ]
        ]
    )


def stars_keyboard(station_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for stars in range(1, 6):
        kb.button(text="⭐" * stars, callback_data=RateCb(station=station_id, stars=stars).pack())
    kb.adjust(1)
    return kb.as_markup()


def case_line(case: CaseView) -> str:
    kind = str(REPORT_KIND_LABELS[case.kind.value])
    if case.topic in AMENITY_ICONS:
        kind += f" ({amenity_label(case.topic)})"
    people = _("{count} people report this").format(count=case.reporters)
    if case.on_site:
        people += ", " + _("{count} on site").format(count=case.on_site)
    return f"#{case.id} <b>{escape(case.station.name)}</b> [{escape(case.station.code)}]\n{kind} · {people}"


def case_text(case: CaseView, default_tz: str) -> str:
    lines = [case_line(case)]
    if case.proposal:
        lines.append(_("Proposed: {value}").format(value=f"<code>{escape(case.proposal)}</code>"))
    if case.kind in CLOSURE_KINDS:
        weight = f"{case.weight:g}"
        lines.append(
            "⚖️ " + _("Weight of on-site reports by trusted reporters: {weight}").format(weight=weight)
        )
    if case.auto_hidden:
        lines.append("🙈 " + _("Hidden from riders automatically until you decide."))
    for text in case.texts:
        lines.append("💬 " + escape(text))
    if case.photos:
        lines.append("📷 " + _("{count} photos").format(count=len(case.photos)))
    tz = ZoneInfo(case.station.timezone or default_tz)
    lines.append(_("Reported {date}").format(date=local_datetime(case.created_at, tz)))
    return "\n".join(lines)


def pause_alert(pause: RegionPause, tz: ZoneInfo) -> str:
    """The circuit breaker's alert to the region's staff."""
    return (
        "🚨 <b>"
        + _("Automatic hiding paused in region {region}").format(region=escape(pause.region or "–"))
        + "</b>\n"
        + _(
            "{count} stations there were hidden automatically within an hour. Until {until}, stations "
            "reported closed there stay listed with a warning: check the reports and close the ones "
            "that really are."
        ).format(count=pause.hidden, until=local_datetime(pause.until, tz))
    )


def case_keyboard(case_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("✅ Approve"), callback_data=ModCb(action=ModAction.APPROVE, case=case_id).pack()
                ),
                InlineKeyboardButton(
                    text=_("❌ Reject"), callback_data=ModCb(action=ModAction.REJECT, case=case_id).pack()
                ),
            ],
            [
                InlineKeyboardButton(
                    text=_("❓ Ask for details"),
                    callback_data=ModCb(action=ModAction.ASK, case=case_id).pack(),
                )
            ],
        ]
    )


def queue_keyboard(cases: list[CaseView], page: int, has_more: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for case in cases:
        label = f"#{case.id} {case.station.name[:20]}"
        kb.row(
            InlineKeyboardButton(text=label, callback_data=ModCb(action=ModAction.VIEW, case=case.id).pack())
        )
    if has_more:
        kb.row(
            InlineKeyboardButton(
                text=_("More ▶"), callback_data=ModCb(action=ModAction.PAGE, page=page + 1).pack()
            )
        )
    return kb.as_markup()


def staff_keyboard(station: Station) -> InlineKeyboardMarkup:
    sid = station.id
    rows = [
        [
            InlineKeyboardButton(
                text=_("✔️ Verified today"),
                callback_data=StaffCb(action=StaffAction.VERIFY, station=sid).pack(),
            )
        ],
    ]
    if station.status is StationStatus.ACTIVE:
        toggle = InlineKeyboardButton(
            text=_("⏸ Close temporarily"),
            callback_data=StaffCb(action=StaffAction.CLOSE_TEMPORARILY, station=sid).pack(),
        )
    else:
        toggle = InlineKeyboardButton(
            text=_("▶️ Reopen"), callback_data=StaffCb(action=StaffAction.REOPEN, station=sid).pack()
        )
    rows.append([toggle])
    if station.status is not StationStatus.CLOSED:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("⛔ Close for good"),
                    callback_data=StaffCb(action=StaffAction.CLOSE_FOR_GOOD, station=sid).pack(),
                )
            ]
        )
    rows.append(
        [
            InlineKeyboardButton(
                text=_("🕘 Hours"), callback_data=StaffCb(action=StaffAction.EDIT_HOURS, station=sid).pack()
            ),
            InlineKeyboardButton(
                text=_("☎️ Phone"), callback_data=StaffCb(action=StaffAction.EDIT_PHONE, station=sid).pack()
            ),
            InlineKeyboardButton(
                text=_("🧰 Amenities"),
                callback_data=StaffCb(action=StaffAction.EDIT_AMENITIES, station=sid).pack(),
            ),
        ]
    )
    rows.append(
        [
            InlineKeyboardButton(
                text=_("📜 History"), callback_data=StaffCb(action=StaffAction.HISTORY, station=sid).pack()
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def staff_amenity_keyboard(station: Station, chosen: tuple[str, ...]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for key in AMENITY_KEYS:
        mark = "✅ " if key in chosen else ""
        kb.button(
            text=f"{mark}{AMENITY_ICONS[key]} {amenity_label(key)}",
            callback_data=StaffCb(action=StaffAction.TOGGLE_AMENITY, station=station.id, value=key).pack(),
        )
    kb.adjust(2)
    kb.row(
        InlineKeyboardButton(
            text=_("💾 Save"),
            callback_data=StaffCb(action=StaffAction.AMENITIES_DONE, station=station.id).pack(),
        )
    )
    return kb.as_markup()
