"""The console's announcements: compose with a live preview exactly as riders will see it and the audience's
size, send now or at a time in the region's timezone; then the list, and each announcement's progress with
pause, resume and cancel, and its final report.

Every page and action asks `AnnouncementService` with the staff member's `Access`, which checks the region
on the server: a crafted id or audience gets a 404 or a refusal, never another region's announcement. The
broadcaster runs in the bot or worker process; the console only changes rows, which the broadcaster reads
with every window it claims, so a pause or a cancel here stops a sending broadcaster within two windows.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup

from bot.app import Core
from bot.i18n import translator
from bot.services.announcements import (
    MAX_RADIUS_KM,
    MAX_TEXT,
    AnnouncementError,
    AnnouncementView,
    Audience,
    check_text,
    rider_message,
    station_scope,
)
from bot.services.roles import Access, NotAllowed
from bot.web.console.base import (
    CONSOLE,
    N_,
    PREFIX,
    ConsoleUser,
    client_ip,
    console_page,
    console_user,
    core_of,
    gettext_for,
    now,
    photo_response,
    render,
    state_of,
)
from bot.web.message_preview import rider_message_html
from domain.languages import LANGUAGES
from domain.statuses import AnnouncementStatus
from domain.telegram_html import EntityParseError, parse_html
from domain.values import GeoPoint, StationNotFound

log = logging.getLogger(__name__)

Gettext = Callable[[str], str]

#: A form field longer than this is refused unread (the text's own limit is checked after).
MAX_FIELD = MAX_TEXT * 4
MAX_CODE = 64
#: How far ahead an announcement may be scheduled.
MAX_AHEAD = timedelta(days=366)
AUDIENCE_KINDS = ("region", "district", "station")
ACTIVE = (AnnouncementStatus.SCHEDULED, AnnouncementStatus.SENDING, AnnouncementStatus.PAUSED)
PAGE_SIZE = 20


@dataclass(slots=True)
class Draft:
    """The compose form as typed, kept whole so that a refused form comes back as it was."""

    text: str = ""
    audience: str = "region"
    region: str = ""
    district: str = ""
    station: str = ""
    radius: str = "3"
    when: str = "now"
    at: str = ""

    @classmethod
    def from_form(cls, form: Mapping[str, object]) -> Draft:
        def value(name: str, default: str = "") -> str:
            raw = form.get(name, default)
            return raw[:MAX_FIELD] if isinstance(raw, str) else default

        return cls(
            text=value("text").replace("\r\n", "\n"),
            audience=value("audience", "region"),
            region=value("region").strip(),
            district=value("district").strip(),
            station=value("station").strip(),
            radius=value("radius", "3").strip(),
            when=value("when", "now"),
            at=value("at").strip(),
        )


@dataclass(slots=True)
class Checked:
    """A draft as the server reads it: what is wrong, field by field, and what is right."""

    draft: Draft
    errors: dict[str, str] = field(default_factory=dict)
    previews: list[tuple[str, str, Markup]] = field(default_factory=list)  # (locale, name, HTML)
    audience: Audience | None = None
    size: int | None = None
    tz: ZoneInfo | None = None
    scheduled_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def text_error(exc: AnnouncementError, _: Gettext) -> str:
    if exc.code == AnnouncementError.EMPTY:
        return _("The announcement has no text.")
    if exc.code == AnnouncementError.TOO_LONG:
        return _("Too long: at most {limit} characters, formatting included.").format(limit=MAX_TEXT)
    if exc.code == AnnouncementError.MARKUP:
        detail = exc.reason.rsplit(": ", 1)[-1]
        return _(
            "Telegram cannot read this formatting ({detail}). Use only the tags b, i, u, s, a href, code, "
            "pre, blockquote and tg-spoiler, each closed; a line break is a new line, not br."
        ).format(detail=detail)
    return _("This announcement cannot be sent: {reason}").format(reason=exc.reason)


def _radius(text: str) -> float | None:
    try:
        value = float(text.lower().removesuffix("km").strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 < value <= MAX_RADIUS_KM else None


async def _audience(
    core: Core, access: Access, draft: Draft, errors: dict[str, str], _: Gettext
) -> Audience | None:
    if draft.audience == "region":
        return Audience(draft.region)
    if draft.audience == "district":
        if not (len(draft.district) == 6 and draft.district.isascii() and draft.district.isdigit()):
            errors["district"] = _("Choose a district.")
            return None
        return Audience(draft.district)
    if draft.audience == "station":
        radius = _radius(draft.radius)
        if radius is None:
            errors["radius"] = _("Type a distance in km, more than 0 and at most {max}.").format(
                max=f"{MAX_RADIUS_KM:g}"
            )
        code = draft.station
        if not code or len(code) > MAX_CODE:
            errors["station"] = _("Type the code of a station.")
            return None
        try:
            station = await core.stations.get(code)
        except StationNotFound:
            errors["station"] = _("No station with the code {code}.").format(code=code)
            return None
        if radius is None:
            return None
        return Audience(
            station_scope(access.regions, station.region), GeoPoint(station.lat, station.lon), radius
        )
    errors["audience"] = _("Choose who gets it.")
    return None


def previews(
    text: str, photo_file_id: str | None = None, photo_url: str | None = None
) -> list[tuple[str, str, Markup]]:
    """The announcement as riders of each language will receive it: the same message, the button in their
    language (`rider_message`, which the broadcaster sends), as safe HTML (`bot/web/message_preview.py`);
    its photo from `photo_url` when the console can fetch it."""
    return [
        (
            language.locale,
            language.name,
            Markup(
                rider_message_html(
                    rider_message(text, photo_file_id, translator(language.locale).gettext), photo_url
                )
            ),
        )
        for language in LANGUAGES
    ]


async def check_draft(core: Core, access: Access, draft: Draft, now: datetime, _: Gettext) -> Checked:
    checked = Checked(draft)
    errors = checked.errors
    text = draft.text.strip()
    try:
        check_text(text)
    except AnnouncementError as exc:
        errors["text"] = text_error(exc, _)
    else:
        checked.previews = previews(text)
    audience = await _audience(core, access, draft, errors, _)
    if audience is not None:
        try:
            checked.size = await core.announcements.audience_size(access, audience)
            checked.audience = audience
        except NotAllowed:
            errors["audience"] = _("You can only address subscribers in your region: {regions}.").format(
                regions=", ".join(r or _("all of China") for r in access.regions) or "—"
            )
        except AnnouncementError as exc:
            log.info("audience %r refused for %s: %s", audience, access.user_id, exc.reason)
            errors["audience"] = _("This audience cannot be used: {reason}").format(reason=exc.reason)
    region = audience.region if audience is not None else (access.regions[0] if access.regions else "")
    checked.tz = await core.announcements.timezone_of(region)
    if draft.when == "at":
        try:
            local = datetime.strptime(draft.at, "%Y-%m-%dT%H:%M")
        except ValueError:
            errors["at"] = _("Choose the date and time.")
        else:
            when = local.replace(tzinfo=checked.tz)
            if when <= now:
                errors["at"] = _("That time has passed. Choose a time in the future.")
            elif when > now + MAX_AHEAD:
                errors["at"] = _("At most a year ahead.")
            else:
                checked.scheduled_at = when
    elif draft.when != "now":
        errors["at"] = _("Send now or choose a time.")
    return checked


def eta_text(seconds: float | None, _: Gettext) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("about {hours} h {minutes} min to go").format(hours=hours, minutes=minutes)
    return _("about {minutes} min {seconds} s to go").format(minutes=minutes, seconds=secs)


def local_time(when: datetime | None, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when is not None else ""


# -- pages ---------------------------------------------------------------------------------------------------
STATUS_LABELS = {
    AnnouncementStatus.DRAFT: N_("Draft"),
    AnnouncementStatus.SCHEDULED: N_("Scheduled"),
    AnnouncementStatus.SENDING: N_("Sending"),
    AnnouncementStatus.PAUSED: N_("Paused"),
    AnnouncementStatus.CANCELLED: N_("Cancelled"),
    AnnouncementStatus.DONE: N_("Done"),
}
#: What a pause, resume or cancel did, for the page it leads back to.
OUTCOMES = {
    "paused": N_("Paused: no more messages go out until it is resumed."),
    "resumed": N_("Resumed."),
    "cancelled": N_("Cancelled: the messages not sent yet will not be sent."),
    "unchanged": N_("Nothing to change: it has moved on meanwhile."),
}
#: The compose form's idempotency keys kept in the session (a double click sends once).
SENT_KEYS = 20


def audience_label(audience: Audience, names: Mapping[str, str], _: Gettext) -> str:
    area = _("All of China") if not audience.region else names.get(audience.region, audience.region)
    if audience.point is None or audience.radius_km is None:
        return area
    return _("{area}, within {km} km of {lat}, {lon}").format(
        area=area,
        km=f"{audience.radius_km:g}",
        lat=f"{audience.point.lat:.4f}",
        lon=f"{audience.point.lon:.4f}",
    )


def snippet(html_text: str, limit: int = 80) -> str:
    try:
        plain = parse_html(html_text).text
    except EntityParseError:
        plain = html_text
    plain = " ".join(plain.split())
    return plain if len(plain) <= limit else plain[: limit - 1] + "…"


def _announcement_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) < 2**63:
        raise web.HTTPNotFound()
    return int(raw)


async def _names(core: Core, user: ConsoleUser) -> dict[str, str]:
    names = {code: name for code, name in await core.announcements.districts(user.access)}
    for region in user.access.regions:
        names.setdefault(region, region)
    return names


async def _get(request: web.Request, user: ConsoleUser) -> AnnouncementView:
    """The announcement if it lies in the user's regions (a `NotAllowed` is the console's 403 page)."""
    try:
        return await core_of(request).announcements.get(_announcement_id(request), user.access)
    except AnnouncementError as exc:
        raise web.HTTPNotFound() from exc


async def _record(request: web.Request, user: ConsoleUser, action: str, target: int, **detail: Any) -> None:
    await core_of(request).console.record(
        now(request),
        action,
        account_id=user.account_id,
        username=user.username,
        address=client_ip(request),
        target=str(target),
        detail=detail,
    )


@console_page
async def list_page(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    core = core_of(request)
    try:
        page = max(1, min(int(request.query.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    views = await core.announcements.list(user.access, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    _ = gettext_for(request)
    names = await _names(core, user)
    rows = [
        {
            "view": view,
            "status": _(STATUS_LABELS[view.status]),
            "audience": audience_label(view.audience, names, _),
            "snippet": snippet(view.text),
            "tz": (tz := await core.announcements.timezone_of(view.audience.region)),
            "created": local_time(view.created_at, tz),
            "scheduled": local_time(view.scheduled_at, tz),
        }
        for view in views[:PAGE_SIZE]
    ]
    context = {"rows": rows, "page": page, "more": len(views) > PAGE_SIZE}
    return await render(request, "announcements/list.html", context)


async def _compose_context(
    request: web.Request, user: ConsoleUser, checked: Checked | None, key: str = ""
) -> dict[str, Any]:
    core = core_of(request)
    draft = (
        checked.draft
        if checked is not None
        else Draft(region=user.access.regions[0] if user.access.regions else "")
    )
    tz = (
        checked.tz
        if checked is not None and checked.tz is not None
        else await core.announcements.timezone_of(draft.region)
    )
    _ = gettext_for(request)
    return {
        "draft": draft,
        "checked": checked,
        "regions": [(r, r or _("All of China")) for r in user.access.regions],
        "districts": await core.announcements.districts(user.access),
        "max_text": MAX_TEXT,
        "max_radius": f"{MAX_RADIUS_KM:g}",
        "tz": tz.key,
        "now_local": local_time(now(request), tz).replace(" ", "T"),
        # Sent with the form: the same key twice creates one announcement.
        "key": key or secrets.token_urlsafe(16),
    }


@console_page
async def compose_page(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    return await render(request, "announcements/compose.html", await _compose_context(request, user, None))


@console_page
async def preview_fragment(request: web.Request) -> web.StreamResponse:
    """The preview in each language and the audience's size, as the form is typed (htmx)."""
    user = await console_user(request)
    draft = Draft.from_form(await request.post())
    checked = await check_draft(core_of(request), user.access, draft, now(request), gettext_for(request))
    return await render(request, "announcements/_preview.html", {"checked": checked})


@console_page
async def create(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    form = await request.post()
    raw_key = form.get("key")
    key = raw_key if isinstance(raw_key, str) and 0 < len(raw_key) <= 64 else ""
    session = await get_session(request)
    sent: dict[str, int] = dict(session.get("announce_keys") or {})
    in_flight: set[str] = state_of(request).extra.setdefault("announcement_keys_in_flight", set())
    if key in sent:
        # The same form sent twice (a double click, a reload): the first one stands.
        raise web.HTTPSeeOther(f"/console/announcements/{sent[key]}")
    if key in in_flight:
        raise web.HTTPSeeOther("/console/announcements")
    if key:
        in_flight.add(key)
    try:
        return await _create(request, user, form, key, sent)
    finally:
        in_flight.discard(key)


async def _create(
    request: web.Request, user: ConsoleUser, form: Mapping[str, object], key: str, sent: dict[str, int]
) -> web.StreamResponse:
    core = core_of(request)
    session = await get_session(request)
    draft = Draft.from_form(form)
    _ = gettext_for(request)
    checked = await check_draft(core, user.access, draft, now(request), _)
    if not checked.ok or checked.audience is None:
        context = await _compose_context(request, user, checked, key)
        return await render(request, "announcements/compose.html", context, status=400)
    try:
        view = await core.announcements.create(
            user.access, draft.text, checked.audience, now(request), scheduled_at=checked.scheduled_at
        )
    except AnnouncementError as exc:
        checked.errors["text"] = text_error(exc, _)
        context = await _compose_context(request, user, checked, key)
        return await render(request, "announcements/compose.html", context, status=400)
    if key:
        sent[key] = view.id
        session["announce_keys"] = dict(list(sent.items())[-SENT_KEYS:])
    await _record(
        request,
        user,
        "announcement_create",
        view.id,
        region=view.audience.region,
        radius_km=view.audience.radius_km,
        recipients=view.counts.total,
        scheduled_at=view.scheduled_at.isoformat() if view.scheduled_at else None,
    )
    raise web.HTTPSeeOther(f"/console/announcements/{view.id}")


async def _progress_context(
    request: web.Request, user: ConsoleUser, view: AnnouncementView
) -> dict[str, Any]:
    core = core_of(request)
    progress = await core.announcements.progress(
        view.id, user.access, now(request), core.settings.broadcast_rate
    )
    view = progress.view
    tz = await core.announcements.timezone_of(view.audience.region)
    _ = gettext_for(request)
    counts = view.counts
    done = counts.total - counts.left
    outcome = request.query.get("done", "")
    return {
        "view": view,
        "counts": counts,
        "status": _(STATUS_LABELS[view.status]),
        "active": is_active(view),
        "percent": 100 if not counts.total else round(100 * done / counts.total),
        "eta": eta_text(progress.eta_s, _),
        "tz": tz.key,
        "created": local_time(view.created_at, tz),
        "scheduled": local_time(view.scheduled_at, tz),
        "started": local_time(view.started_at, tz),
        "finished": local_time(view.finished_at, tz),
        "outcome": _(OUTCOMES[outcome]) if outcome in OUTCOMES else "",
    }


@console_page
async def detail_page(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    view = await _get(request, user)
    _ = gettext_for(request)
    context = await _progress_context(request, user, view)
    shown = view.photo_file_id is not None and request.app[CONSOLE].photos is not None
    context.update(
        previews=previews(
            view.text, view.photo_file_id, f"{PREFIX}/announcements/{view.id}/photo" if shown else None
        ),
        audience=audience_label(view.audience, await _names(core_of(request), user), _),
    )
    return await render(request, "announcements/detail.html", context)


@console_page
async def progress_fragment(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    view = await _get(request, user)
    return await render(request, "announcements/_progress.html", await _progress_context(request, user, view))


@console_page
async def change(request: web.Request) -> web.StreamResponse:
    """Pause, resume or cancel: a row change that the broadcaster, wherever it runs, reads with its next
    window."""
    user = await console_user(request)
    announcement_id = _announcement_id(request)
    action = request.match_info["action"]
    announcements = core_of(request).announcements
    try:
        if action == "pause":
            changed = await announcements.pause(announcement_id, user.access)
        elif action == "resume":
            changed = await announcements.resume(announcement_id, user.access, now(request))
        else:
            changed = await announcements.cancel(announcement_id, user.access)
    except AnnouncementError as exc:
        raise web.HTTPNotFound() from exc
    if changed:
        await _record(request, user, f"announcement_{action}", announcement_id)
    outcome = (
        {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action] if changed else "unchanged"
    )
    raise web.HTTPSeeOther(f"/console/announcements/{announcement_id}?done={outcome}")


@console_page
async def photo(request: web.Request) -> web.StreamResponse:
    """An announcement's photo, from Telegram, for staff who may see the announcement."""
    user = await console_user(request)
    view = await _get(request, user)
    if view.photo_file_id is None:
        raise web.HTTPNotFound()
    return await photo_response(request, view.photo_file_id, f"announcement {view.id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/announcements", list_page, name="announcements")
    app.router.add_get(r"/announcements/{id:\d+}/photo", photo, name="announcement_photo")
    app.router.add_get("/announcements/new", compose_page, name="announcement_new")
    app.router.add_post("/announcements/preview", preview_fragment, name="announcement_preview")
    app.router.add_post("/announcements", create, name="announcement_create")
    app.router.add_get(r"/announcements/{id:\d+}", detail_page, name="announcement")
    app.router.add_get(r"/announcements/{id:\d+}/progress", progress_fragment, name="announcement_progress")
    app.router.add_post(
        r"/announcements/{id:\d+}/{action:pause|resume|cancel}", change, name="announcement_change"
    )


def is_active(view: AnnouncementView) -> bool:
    return view.status in ACTIVE
