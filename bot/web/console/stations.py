"""The console's stations: the list (`/console/stations`: search, filters, pages, CSV and Excel exports of
the selection) and a station's page (`/console/stations/{code}`: the edit form, lifecycle actions, the
audit trail, cases, ratings and a small map).

Every handler passes the staff member's `Access` to `StationConsoleService`, which narrows lists and exports
to their regions and refuses another region's station. Such a station is answered like one that does not
exist (404), on reads and writes alike, so a crafted URL does not even learn that it exists.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.services.roles import NotAllowed
from bot.services.station_admin import InvalidEdit
from bot.services.station_console import (
    EDIT_FIELDS,
    ExportTooLarge,
    InvalidStationQuery,
    StationEditRejected,
    StationQuery,
)
from bot.web.console.base import (
    N_,
    ConsoleUser,
    client_ip,
    console_page,
    console_user,
    core_of,
    gettext_for,
    now,
    render,
)
from bot.web.console.dashboard import STATUS_LABELS
from bot.web.tiles import tile_source
from domain.amenities import AMENITIES
from domain.coords import wgs84_to_gcj02
from domain.hours_zh import HOURS_EXAMPLE_OSM, HOURS_EXAMPLE_ZH
from domain.messages import translated
from domain.values import Station, StationNotFound, StationStatus

log = logging.getLogger(__name__)

#: What the lifecycle buttons do: the status each sets (None: verify), and what the audit trail calls it.
LIFECYCLE: dict[str, StationStatus | None] = {
    "verify": None,
    "close_temporarily": StationStatus.TEMPORARILY_CLOSED,
    "reopen": StationStatus.ACTIVE,
    "close": StationStatus.CLOSED,
}
#: How the audit trail names each action (anything else is shown as recorded).
ACTION_LABELS = {
    "edit": N_("Edited"),
    "verify": N_("Verified"),
    "close_temporarily": N_("Closed temporarily"),
    "reopen": N_("Reopened"),
    "close": N_("Closed for good"),
    "edit_hours": N_("Hours edited"),
    "edit_phone": N_("Phone edited"),
    "edit_amenities": N_("Amenities edited"),
    "auto_hide": N_("Hidden after reports"),
    "auto_restore": N_("Shown again"),
}
#: Report kinds (bot/services/reports.py: ReportKind) as the console names them.
CASE_KINDS = {
    "closed_now": N_("Closed now"),
    "closed_permanently": N_("Closed for good"),
    "amenity_broken": N_("Something is broken"),
    "wrong_location": N_("Wrong location"),
    "wrong_hours": N_("Wrong opening hours"),
    "other": N_("Something else"),
}
CASE_STATUSES = {
    "open": N_("Open"),
    "needs_info": N_("Waiting for details"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}
#: The form's labels (the importer's messages name fields with bot/services/station_console.py's).
FIELD_LABELS = {
    "name": N_("Name"),
    "address": N_("Address"),
    "lat": N_("Latitude (WGS-84)"),
    "lon": N_("Longitude (WGS-84)"),
    "host": N_("Host organisation"),
    "opening_hours": N_("Opening hours"),
    "amenities": N_("Amenities"),
    "phone": N_("Phone"),
    "manager": N_("Manager"),
    "timezone": N_("Timezone"),
}
TIMEZONES = ("Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei")


def _is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _page_link(query: StationQuery, **cursor: str) -> str:
    return "/console/stations?" + urlencode({**query.params(), **cursor})


def _export_link(query: StationQuery, fmt: str) -> str:
    params = query.params()
    return f"/console/stations/export.{fmt}" + ("?" + urlencode(params) if params else "")


def _common() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "amenities": [(a.key, a.icon, a.label) for a in AMENITIES],
        "amenity_labels": {a.key: a.label for a in AMENITIES},
    }


@console_page
async def station_list(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    _ = gettext_for(request)
    context: dict[str, Any] = {**_common(), "error": None, "error_field": None, "page": None}
    status = 200
    try:
        query = StationQuery.parse(request.query)
    except InvalidStationQuery as exc:
        query = StationQuery()
        context.update(error=translated(exc.message, _), error_field=exc.field)
        status = 400
    context["query"] = query
    context["form"] = {key: request.query.get(key, "") for key in ("q", "district", "status", "amenity")}
    if status == 200:
        try:
            page = await core_of(request).station_console.search(
                user.access,
                query,
                after=request.query.get("after") or None,
                before=request.query.get("before") or None,
                at=now(request),
            )
        except InvalidStationQuery as exc:
            context.update(error=translated(exc.message, _), error_field=exc.field)
            status = 400
        else:
            context["page"] = page
            context["next_link"] = _page_link(query, after=page.next_after) if page.next_after else None
            context["previous_link"] = (
                _page_link(query, before=page.previous_before) if page.previous_before else None
            )
    context["csv_link"] = _export_link(query, "csv")
    context["xlsx_link"] = _export_link(query, "xlsx")
    # htmx asks for the results alone when the search changes; a plain request gets the whole page.
    template = "stations/_results.html" if _is_htmx(request) else "stations/list.html"
    return await render(request, template, context, status=status)


async def _audit(request: web.Request, user: ConsoleUser, action: str, target: str, **detail: Any) -> None:
    await core_of(request).console.record(
        now(request),
        action,
        account_id=user.account_id,
        username=user.username,
        address=client_ip(request),
        target=target,
        detail=detail,
    )


@console_page
async def export(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    _ = gettext_for(request)
    fmt = request.match_info["fmt"]
    service = core_of(request).station_console
    at = now(request)
    try:
        # A district's name is looked up before the answer starts: a name of no place is a 400, not a
        # broken download.
        query = await service.resolve(StationQuery.parse(request.query), user.access)
    except InvalidStationQuery as exc:
        raise web.HTTPBadRequest(reason=translated(exc.message, _)) from None
    name = f"stations-{at:%Y%m%d-%H%M}.{fmt}"
    await _audit(request, user, "stations_export", "", format=fmt, **query.params())
    if fmt == "xlsx":
        try:
            body = await service.export_xlsx(user.access, query, at)
        except ExportTooLarge as exc:
            raise web.HTTPBadRequest(reason=translated(exc.message, _)) from None
        return web.Response(
            body=body,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    await response.prepare(request)
    async for chunk in service.export_csv(user.access, query, at):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _station_or_404(request: web.Request, user: ConsoleUser) -> Station:
    code = request.match_info["code"]
    try:
        return await core_of(request).station_console.station(code, user.access)
    except (StationNotFound, NotAllowed) as exc:
        # Another region's station is answered like a missing one: a crafted URL learns nothing.
        log.info("console: station %r refused to %s: %s", code, user.username, exc)
        raise web.HTTPNotFound() from None


def _form_of(station: Station) -> dict[str, Any]:
    return {
        "name": station.name,
        "address": station.address,
        "lat": f"{station.lat:.7f}".rstrip("0").rstrip("."),
        "lon": f"{station.lon:.7f}".rstrip("0").rstrip("."),
        "host": station.host,
        "opening_hours": station.opening_hours_text or station.opening_hours,
        "amenities": list(station.amenities),
        "phone": station.phone,
        "manager": station.manager,
        "timezone": station.timezone or "",
    }


def _same(field: str, a: Any, b: Any) -> bool:
    if field == "amenities":
        return sorted(a) == sorted(b)
    return str(a).strip() == str(b).strip()


def _base_of(posted: Mapping[str, Any]) -> dict[str, Any] | None:
    """The values the form showed when it was opened (its `base_*` fields); None for a form without them."""
    if "base_name" not in posted:
        return None
    base: dict[str, Any] = {name: str(posted.get(f"base_{name}", "")) for name in EDIT_FIELDS}
    base["amenities"] = [key for key in base["amenities"].split(",") if key]
    return base


def merge_edit(
    base: Mapping[str, Any], mine: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Three-way merge of a station form: `base` as the form was opened, `mine` as it was posted, `current`
    as the station is now. A field the clerk did not touch takes the current value (a save never undoes
    what someone else saved meanwhile); a field both changed, to different values, is a conflict."""
    merged: dict[str, Any] = {}
    conflicts: list[str] = []
    for name in EDIT_FIELDS:
        if _same(name, mine[name], base[name]):
            merged[name] = current[name]
        else:
            merged[name] = mine[name]
            if not _same(name, current[name], base[name]) and not _same(name, current[name], mine[name]):
                conflicts.append(name)
    return merged, conflicts


def _conflict_errors(conflicts: list[str], current: Mapping[str, Any], _: Any) -> dict[str, list[str]]:
    labels = {a.key: _(a.label) for a in AMENITIES}
    errors: dict[str, list[str]] = {}
    for name in conflicts:
        value = current[name]
        if name == "amenities":
            value = "、".join(labels.get(key, key) for key in value) or "—"
        message = _("Saved meanwhile by someone else as “{value}”. Save again to replace it with yours.")
        errors.setdefault("position" if name in ("lat", "lon") else name, []).append(
            message.format(value=value or "—")
        )
    return errors


def _map_of(request: web.Request, station: Station) -> dict[str, Any]:
    settings = core_of(request).settings
    try:
        source = tile_source(
            settings.map_tiles, url=settings.map_tile_url, tianditu_key=settings.tianditu_key
        )
    except ValueError:
        source = tile_source("osm")
    lat, lon = station.lat, station.lon
    if source.datum == "gcj02":
        lat, lon = wgs84_to_gcj02(lat, lon)  # Amap draws GCJ-02: the marker goes where its tiles show it
    return {
        "lat": lat,
        "lon": lon,
        "url": source.url,
        "overlay": source.overlay,
        "subdomains": source.subdomains,
        "attribution": source.attribution,
        "max_zoom": source.max_zoom,
    }


async def _station_page(
    request: web.Request,
    user: ConsoleUser,
    station: Station,
    *,
    form: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    conflict: bool = False,
    lifecycle_error: str = "",
    status: int = 200,
) -> web.Response:
    file = await core_of(request).station_console.station_file(station.code, user.access)
    base = base if base is not None else _form_of(file.station)
    return await render(
        request,
        "stations/station.html",
        {
            **_common(),
            "file": file,
            "station": file.station,
            "form": form if form is not None else _form_of(file.station),
            # What the form showed when it was opened: a save merges against it (`merge_edit`).
            "base": {**base, "amenities": ",".join(base["amenities"])},
            "errors": errors or {},
            "conflict": conflict,
            "lifecycle_error": lifecycle_error,
            "saved": request.query.get("saved", ""),
            "fields": FIELD_LABELS,
            "action_labels": ACTION_LABELS,
            "case_kinds": CASE_KINDS,
            "case_statuses": CASE_STATUSES,
            "timezones": TIMEZONES,
            "hours_examples": (HOURS_EXAMPLE_ZH, HOURS_EXAMPLE_OSM),
            "map": _map_of(request, file.station),
            "tz": file.station.timezone or core_of(request).settings.default_tz,
        },
        status=status,
    )


@console_page
async def station_page(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    station = await _station_or_404(request, user)
    return await _station_page(request, user, station)


@console_page
async def edit_station(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    station = await _station_or_404(request, user)
    posted = await request.post()
    form: dict[str, Any] = {name: str(posted.get(name, "")) for name in EDIT_FIELDS if name != "amenities"}
    form["amenities"] = [str(value) for value in posted.getall("amenities", [])]
    _ = gettext_for(request)
    base = _base_of(posted)
    if base is not None:
        current = _form_of(station)
        form, conflicts = merge_edit(base, form, current)
        if conflicts:
            # Nothing is saved: the clerk sees the other's values, keeps theirs in the form, and saving
            # again (now against the current values) replaces them on purpose.
            errors = _conflict_errors(conflicts, current, _)
            return await _station_page(
                request, user, station, form=form, base=current, errors=errors, conflict=True, status=409
            )
    try:
        updated = await core_of(request).station_console.edit(
            station.code, form, user.access, now(request), user.actor_id
        )
    except StationEditRejected as exc:
        errors = {field: [translated(p, _) for p in problems] for field, problems in exc.problems.items()}
        return await _station_page(request, user, station, form=form, base=base, errors=errors, status=422)
    except NotAllowed:
        raise web.HTTPNotFound() from None
    changed = updated.updated_at != station.updated_at
    if changed:
        await _audit(request, user, "station_edit", station.code)
    raise web.HTTPSeeOther(f"/console/stations/{station.code}?saved={'edit' if changed else 'same'}")


@console_page
async def lifecycle(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    station = await _station_or_404(request, user)
    posted = await request.post()
    action = str(posted.get("action", ""))
    if action not in LIFECYCLE:
        raise web.HTTPBadRequest()
    reason = str(posted.get("reason", "")).strip()
    service = core_of(request).station_console
    at = now(request)
    _ = gettext_for(request)
    try:
        status = LIFECYCLE[action]
        if status is None:
            await service.verify(station.code, user.access, at, user.actor_id)
        else:
            await service.set_status(station.code, status, user.access, at, reason, user.actor_id)
    except InvalidEdit as exc:
        if exc.code == InvalidEdit.REASON_MISSING:
            message = _("Closing a station for good needs a reason.")
        else:
            message = exc.reason
        return await _station_page(request, user, station, lifecycle_error=message, status=422)
    except NotAllowed:
        raise web.HTTPNotFound() from None
    await _audit(request, user, f"station_{action}", station.code, reason=reason)
    raise web.HTTPSeeOther(f"/console/stations/{station.code}?saved={action}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/stations", station_list, name="stations")
    app.router.add_get(r"/stations/export.{fmt:csv|xlsx}", export, name="stations_export")
    app.router.add_get("/stations/{code}", station_page, name="station")
    app.router.add_post("/stations/{code}", edit_station, name="station_edit")
    app.router.add_post("/stations/{code}/lifecycle", lifecycle, name="station_lifecycle")
