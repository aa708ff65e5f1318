"""The console's analytics (`/console/analytics`): where riders look and find nothing, where new stations
would serve them, and how each station serves, for the staff of a region.

The page is a shell that draws what the staff-only JSON API under `/console/api/analytics/` answers: the
demand and gap cells as hexagons on a Leaflet map (h3-js draws each cell's boundary), uPlot charts of
demand by hour of the week and of day and night gaps, the suggested sites, and the station evaluation
table with its CSV and XLSX exports. Every answer is for one region, checked on the server against the
staff member's own (`Access.require_staff_for`), whatever the URL says; the analytics service leaves out
every cell with fewer than K_ANONYMITY searches before anything here sees it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.services.analytics import AnalyticsError, CellDemand, Period
from bot.services.evaluation import (
    COLUMNS,
    CONCERN_LABELS,
    Concern,
    InvalidPeriod,
    RegionEvaluation,
    table_rows,
    write_csv,
    write_xlsx,
)
from bot.services.roles import NotAllowed
from bot.web.console.base import ConsoleUser, console_page, console_user, core_of, gettext_for, now, render
from bot.web.responses import json_body
from bot.web.tiles import tile_source

API = "/api/analytics"
_REGION = re.compile(r"[0-9]{2}|[0-9]{4}|[0-9]{6}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Longest period a report covers (days): a few years of daily rows at most.
MAX_DAYS = 3 * 366


class BadRequest(Exception):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def json_answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json_body(data),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


def default_region(user: ConsoleUser) -> str:
    """The first region the staff member manages; an admin's ("" = everywhere) is Guangzhou's province
    until they choose, since a national report is not what a page should start with."""
    regions = [region for region in user.access.regions if region]
    return regions[0] if regions else "44"


def region_of(request: web.Request, user: ConsoleUser) -> str:
    """The `region` asked for (2, 4 or 6 digits of an adcode), which the staff member must manage."""
    region = request.query.get("region", "").strip() or default_region(user)
    if not _REGION.fullmatch(region):
        raise BadRequest("region", "region is an adcode prefix of 2, 4 or 6 digits, e.g. 4401")
    user.access.require_staff_for(region)
    return region


def day_of(request: web.Request, name: str) -> date | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(name, f"{name} is a date: YYYY-MM-DD") from None


def period_of(request: web.Request) -> tuple[date | None, date | None]:
    since, until = day_of(request, "since"), day_of(request, "until")
    if since is not None and until is not None:
        if since > until:
            raise BadRequest("since", "since is after until")
        if (until - since).days > MAX_DAYS:
            raise BadRequest("since", f"a period is at most {MAX_DAYS} days")
    return since, until


def api_handler(
    handler: Callable[[web.Request, ConsoleUser], Any],
) -> Callable[[web.Request], Any]:
    """A JSON endpoint for a logged-in staff member: refusals are JSON too (400 naming the parameter,
    403 outside the staff member's regions)."""

    @console_page
    async def endpoint(request: web.Request) -> web.StreamResponse:
        user = await console_user(request)
        try:
            return json_answer(await handler(request, user))
        except BadRequest as exc:
            return json_answer(
                {"error": {"code": "bad_parameter", "parameter": exc.parameter, "message": exc.message}}, 400
            )
        except (InvalidPeriod, AnalyticsError) as exc:
            return json_answer(
                {"error": {"code": "bad_parameter", "parameter": "since", "message": str(exc)}}, 400
            )
        except NotAllowed:
            return json_answer({"error": {"code": "forbidden", "message": "not a region of yours"}}, 403)

    endpoint.__name__ = handler.__name__
    return endpoint


# -- demand, gaps, suggestions ---------------------------------------------------------------------------

#: Most new stations the page asks placed at once.
MAX_SUGGESTED = 100


def cell_json(cell: CellDemand) -> dict[str, Any]:
    return {
        "cell": format(cell.cell, "x"),  # h3's string form, which h3-js draws
        "lat": round(cell.lat, 6),
        "lon": round(cell.lon, 6),
        "region": cell.region,
        "searches": cell.searches,
        "day": cell.day,
        "night": cell.night,
        "unmet": cell.unmet,
        "unmet_day": cell.unmet_day,
        "unmet_night": cell.unmet_night,
        "unmet_by_amenity": cell.unmet_by_amenity,
        "by_channel": cell.by_channel,
    }


def demand_period(request: web.Request) -> Period:
    since, until = period_of(request)
    return core_of(request).demand.period(
        since, until, now(request).astimezone(core_of(request).evaluation.tz).date()
    )


async def demand_cells(request: web.Request, user: ConsoleUser) -> dict[str, Any]:
    region = region_of(request, user)
    report = await core_of(request).demand.demand(region, demand_period(request))
    return _cells_answer(report.region, report.period, report.cells, report.hidden_cells)


async def gap_cells(request: web.Request, user: ConsoleUser) -> dict[str, Any]:
    region = region_of(request, user)
    report = await core_of(request).demand.gaps(region, demand_period(request))
    body = _cells_answer(report.region, report.period, report.cells, report.hidden_cells)
    body["walkable_m"] = core_of(request).demand.walkable_m
    return body


def _cells_answer(region: str, period: Period, cells: list[CellDemand], hidden: int) -> dict[str, Any]:
    return {
        "region": region,
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "hidden_cells": hidden,
        "cells": [cell_json(cell) for cell in cells],
    }


async def hours_of_week(request: web.Request, user: ConsoleUser) -> dict[str, Any]:
    region = region_of(request, user)
    period = demand_period(request)
    hours = await core_of(request).demand.by_hour_of_week(region, period)
    return {
        "region": region,
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "hours": hours,
    }


async def suggestions(request: web.Request, user: ConsoleUser) -> dict[str, Any]:
    region = region_of(request, user)
    raw = request.query.get("n", "5").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SUGGESTED:
        raise BadRequest("n", f"n is a number of stations from 1 to {MAX_SUGGESTED}")
    report = await core_of(request).demand.suggest(region, demand_period(request), int(raw))
    return {
        "region": report.region,
        "since": report.period.since.isoformat(),
        "until": report.period.until.isoformat(),
        "walkable_m": report.walkable_m,
        "unmet_total": report.unmet_total,
        "suggestions": [
            {
                "rank": s.rank,
                "name": s.name,
                "lat": round(s.lat, 6),
                "lon": round(s.lon, 6),
                "cell": format(s.cell, "x"),
                "region": s.region,
                "covered": s.covered,
                "share": s.share,
                "cumulative_share": s.cumulative_share,
                "cells": s.cells,
            }
            for s in report.suggestions
        ],
    }


# -- station evaluation -----------------------------------------------------------------------------------


async def _evaluation(request: web.Request, user: ConsoleUser) -> RegionEvaluation:
    region = region_of(request, user)
    since, until = period_of(request)
    return await core_of(request).evaluation.evaluate(
        region, now(request), since=since, until=until, access=user.access
    )


#: Rows of the station evaluation one answer carries: by default, and at most (a province has thousands of
#: stations; the CSV and XLSX exports carry them all).
EVALUATION_PAGE = 50
MAX_EVALUATION_PAGE = 200
#: Largest offset asked for: far beyond any region's stations, small enough to stay a plain number.
MAX_OFFSET = 1_000_000


def count_of(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 7 or not low <= int(raw) <= high:
        raise BadRequest(name, f"{name} is a whole number from {low} to {high}")
    return int(raw)


async def station_evaluation(request: web.Request, user: ConsoleUser) -> dict[str, Any]:
    """One page of the region's ranked stations (`offset`, `limit` up to MAX_EVALUATION_PAGE) with the
    total; the ranks are the whole region's, so a page reads the same as the export's rows."""
    limit = count_of(request, "limit", EVALUATION_PAGE, 1, MAX_EVALUATION_PAGE)
    offset = count_of(request, "offset", 0, 0, MAX_OFFSET)
    evaluation = await _evaluation(request, user)
    _ = gettext_for(request)
    body = evaluation.as_json(offset, limit)
    body["concern_labels"] = {concern.value: _(CONCERN_LABELS[concern]) for concern in Concern}
    return body


@console_page
async def evaluation_export(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    fmt = request.match_info["format"]
    try:
        evaluation = await _evaluation(request, user)
    except (BadRequest, InvalidPeriod) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    _ = gettext_for(request)
    header, rows = table_rows(evaluation, _)
    name = f"stations-{evaluation.region}-{evaluation.since}-{evaluation.until}.{fmt}"
    if fmt == "csv":
        text = io.StringIO()
        write_csv(header, rows, text)
        body, content_type = text.getvalue().encode("utf-8"), "text/csv"
    else:
        binary = io.BytesIO()
        write_xlsx(header, rows, binary, _("Station evaluation"))
        body = binary.getvalue()
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type + ("; charset=utf-8" if fmt == "csv" else ""),
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


# -- the page ---------------------------------------------------------------------------------------------


@console_page
async def analytics_page(request: web.Request) -> web.StreamResponse:
    user = await console_user(request)
    try:
        region = region_of(request, user)
    except BadRequest:
        raise web.HTTPBadRequest(text="region is an adcode prefix of 2, 4 or 6 digits") from None
    settings = core_of(request).settings
    tiles = tile_source(settings.map_tiles, url=settings.map_tile_url, tianditu_key=settings.tianditu_key)
    _ = gettext_for(request)
    columns = [(key, _(title)) for key, title in COLUMNS]
    return await render(
        request,
        "analytics.html",
        {
            "region": region,
            "regions": [r for r in user.access.regions if r],
            "since": request.query.get("since", ""),
            "until": request.query.get("until", ""),
            "tiles": tiles,
            "columns": columns,
            "page_size": EVALUATION_PAGE,
        },
    )


#: The H5 page's WGS-84 → GCJ-02 transform (a port of domain/coords.py): on Amap's tiles the hexagons are
#: shifted by it, as the H5 page shifts its markers.
COORDS_JS = Path(__file__).resolve().parent.parent / "static" / "coords.js"


@console_page
async def coords_script(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(COORDS_JS, headers={"Content-Type": "text/javascript; charset=utf-8"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/analytics", analytics_page, name="analytics")
    app.router.add_get("/analytics/coords.js", coords_script, name="analytics_coords")
    app.router.add_get(f"{API}/stations", api_handler(station_evaluation), name="analytics_stations")
    app.router.add_get(f"{API}/demand", api_handler(demand_cells), name="analytics_demand")
    app.router.add_get(f"{API}/gaps", api_handler(gap_cells), name="analytics_gaps")
    app.router.add_get(f"{API}/hours", api_handler(hours_of_week), name="analytics_hours")
    app.router.add_get(f"{API}/suggestions", api_handler(suggestions), name="analytics_suggestions")
    app.router.add_get("/analytics/stations.{format:csv|xlsx}", evaluation_export, name="analytics_export")
