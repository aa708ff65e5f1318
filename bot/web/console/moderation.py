"""The console's moderation queue: the open cases of the staff member's regions, and each case beside its
station (hours, address, a small map, earlier cases, what riders are told of its closure) with the bot's
decisions (approve, reject, ask for details).

Deciding goes through `ReportService.decide`, the one the bot's `/reports` uses: a case is decided exactly
once whichever of the two gets there first, the other is told it is already decided, and the change reaches
the bot, the API and the other processes through the same index patch and change feed. Every read and
every decision passes the user's `Access`, so a crafted URL or POST for another region's case is refused.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.services.reports import (
    CLOSURE_KINDS,
    AlreadyDecided,
    CaseNotFound,
    Decision,
    ReportKind,
)
from bot.services.stations import week_json
from bot.web.console.base import (
    CONSOLE,
    N_,
    PREFIX,
    client_ip,
    console_page,
    console_user,
    core_of,
    gettext_for,
    now,
    photo_response,
    render,
)
from bot.web.tiles import tile_source
from domain.amenities import AMENITY
from domain.coords import wgs84_to_gcj02
from domain.hours import hours_of
from domain.statuses import CaseStatus

log = logging.getLogger(__name__)

PATH = PREFIX + "/moderation"
PAGE = 20

#: The words of the bot's report kinds (handlers/views.py: REPORT_KIND_LABELS), the same msgids.
KIND_LABELS: dict[str, str] = {
    ReportKind.CLOSED_NOW: N_("🚪 Closed now"),
    ReportKind.CLOSED_PERMANENTLY: N_("⛔ Closed for good"),
    ReportKind.AMENITY_BROKEN: N_("🔧 Something is broken"),
    ReportKind.WRONG_LOCATION: N_("📍 Wrong location"),
    ReportKind.WRONG_HOURS: N_("🕘 Wrong opening hours"),
    ReportKind.OTHER: N_("💬 Something else"),
}
#: The bot's decision buttons (handlers/views.py: case_keyboard), in its order, with its words.
DECISIONS: tuple[tuple[str, str], ...] = (
    (Decision.APPROVE.value, N_("✅ Approve")),
    (Decision.REJECT.value, N_("❌ Reject")),
    (Decision.ASK.value, N_("❓ Ask for details")),
)
OUTCOMES: dict[str, str] = {
    Decision.APPROVE.value: N_("✅ Approved: the change is live."),
    Decision.REJECT.value: N_("❌ Rejected."),
    Decision.ASK.value: N_("❓ Asked the reporters for details."),
}
CASE_STATUS_LABELS: dict[str, str] = {
    CaseStatus.OPEN.value: N_("open"),
    CaseStatus.NEEDS_INFO.value: N_("waiting for details"),
    CaseStatus.APPROVED.value: N_("approved"),
    CaseStatus.REJECTED.value: N_("rejected"),
}
STATION_STATUS_LABELS: dict[str, str] = {
    "active": N_("active"),
    "temporarily_closed": N_("temporarily closed"),
    "closed": N_("closed for good"),
}
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def _case_id(request: web.Request) -> int:
    raw = request.match_info["case"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


def _page_number(request: web.Request) -> int:
    raw = request.query.get("page", "0")
    return min(int(raw), 10_000) if raw.isdigit() and len(raw) < 6 else 0


def _kind_label(kind: ReportKind, topic: str, gettext: Any) -> str:
    label = gettext(KIND_LABELS[kind])
    if kind is ReportKind.AMENITY_BROKEN and topic in AMENITY:
        label += f" ({gettext(AMENITY[topic].label)})"
    return label


@console_page
async def queue_page(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    page = _page_number(request)
    cases, total = await core_of(request).reports.open_cases(user.access, limit=PAGE, offset=page * PAGE)
    _ = gettext_for(request)
    return await render(
        request,
        "moderation/queue.html",
        {
            "cases": [{"case": c, "kind": _kind_label(c.kind, c.topic, _)} for c in cases],
            "total": total,
            "page": page,
            "has_more": (page + 1) * PAGE < total,
            "status_labels": CASE_STATUS_LABELS,
        },
    )


def _map(core: Any, lat: float, lon: float) -> dict[str, Any]:
    settings = core.settings
    try:
        source = tile_source(
            settings.map_tiles, url=settings.map_tile_url, tianditu_key=settings.tianditu_key
        )
    except ValueError:
        log.warning("console: map tiles misconfigured; the case page shows no map", exc_info=True)
        return {}
    if source.datum == "gcj02":  # the tiles are drawn in GCJ-02: so is the marker
        lat, lon = wgs84_to_gcj02(lat, lon)
    return {
        "lat": lat,
        "lon": lon,
        "url": source.url,
        "overlay": source.overlay,
        "attribution": source.attribution,
        "subdomains": source.subdomains,
        "max_zoom": source.max_zoom,
    }


async def _case_context(request: web.Request, case_id: int) -> dict[str, Any]:
    user = await console_user(request)
    core = core_of(request)
    at: datetime = now(request)
    context = await core.reports.context(case_id, user.access, at)
    case = context.case
    station = case.station
    _ = gettext_for(request)
    tz = station.timezone or core.settings.default_tz
    week = week_json(hours_of(station, core.settings.default_tz), at)
    return {
        "case": case,
        "station": station,
        "tz": tz,
        "kind": _kind_label(case.kind, case.topic, _),
        "closure_kind": case.kind in CLOSURE_KINDS,
        "open": case.status in (CaseStatus.OPEN, CaseStatus.NEEDS_INFO),
        "ask_left": case.status is CaseStatus.OPEN,
        "earlier": [{"case": c, "kind": _kind_label(c.kind, c.topic, _)} for c in context.earlier],
        "closure": context.closure,
        "pause": context.pause,
        "week": week,
        "weekdays": WEEKDAYS,
        "map": _map(core, station.lat, station.lon),
        "decisions": DECISIONS,
        "status_labels": CASE_STATUS_LABELS,
        "station_status": STATION_STATUS_LABELS.get(station.status.value, station.status.value),
        "amenities": [AMENITY[a].icon + " " + _(AMENITY[a].label) for a in station.amenities if a in AMENITY],
        # Without a bot token the console cannot fetch them from Telegram: the page says where they are.
        "photos_shown": request.app[CONSOLE].photos is not None,
    }


async def _render_case(
    request: web.Request, case_id: int, notice: str | None = None, error: str | None = None, status: int = 200
) -> web.StreamResponse:
    try:
        context = await _case_context(request, case_id)
    except CaseNotFound:
        raise web.HTTPNotFound() from None
    context["notice"] = notice
    context["error"] = error
    return await render(request, "moderation/case.html", context, status=status)


@console_page
async def case_page(request: web.Request) -> web.StreamResponse:
    done = request.query.get("done", "")
    _ = gettext_for(request)
    notice = _(OUTCOMES[done]) if done in OUTCOMES else None
    return await _render_case(request, _case_id(request), notice=notice)


@console_page
async def decide_case(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    core = core_of(request)
    case_id = _case_id(request)
    _ = gettext_for(request)
    form = await request.post()
    raw = form.get("decision")
    try:
        decision = Decision(raw if isinstance(raw, str) else "")
    except ValueError:
        raise web.HTTPBadRequest(reason="unknown decision") from None
    try:
        # The bot tells the reporters (its digest loop), in their own language.
        result = await core.reports.decide(case_id, decision, user.access, now(request), tell_later=True)
    except CaseNotFound:
        raise web.HTTPNotFound() from None
    except AlreadyDecided:
        return await _render_case(request, case_id, error=_("Someone already decided this case."), status=409)
    log.info(
        "console: %s (actor %d) decided case %d: %s", user.username, user.actor_id, case_id, decision.value
    )
    await core.console.record(
        now(request),
        "case_decide",
        account_id=user.account_id,
        username=user.username,
        address=client_ip(request),
        target=str(case_id),
        detail={"decision": decision.value, "station": result.case.station.code},
    )
    raise web.HTTPSeeOther(f"{PATH}/{case_id}?done={decision.value}")


@console_page
async def case_photo(request: web.Request) -> web.StreamResponse:
    """A photo of a case, from Telegram, for a clerk who may see the case (another region's: 403)."""
    user = await console_user(request)
    try:
        number = int(request.match_info["n"])
        case = (await core_of(request).reports.context(_case_id(request), user.access, now(request))).case
        file_id = case.photos[number]
    except (CaseNotFound, ValueError, IndexError):
        raise web.HTTPNotFound() from None
    return await photo_response(request, file_id, f"case {case.id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/moderation", queue_page, name="console_moderation")
    app.router.add_get("/moderation/{case}", case_page, name="console_case")
    app.router.add_get("/moderation/{case}/photos/{n}", case_photo, name="console_case_photo")
    app.router.add_post("/moderation/{case}/decide", decide_case, name="console_case_decide")
