"""API v1 for the H5 page's own journeys: reporting a station's problem, following the report, and the
union's notices around a position.

`POST /api/v1/reports` takes a JSON body and answers with the report and, for a browser's first report,
its device token (bot/services/web_reports.py); `GET /api/v1/reports?device=` and
`GET /api/v1/reports/{id}?device=` show that browser's reports with their cases' status. Each refusal is
a 4xx JSON error naming what to fix: `invalid_report` (with the service's `reason` code, which the page
words in the rider's language), `unknown_station`, `report_too_soon` and `report_limit`, and `rate_limited`
beyond WEB_REPORT_RATE reports an hour from one address. `GET /api/v1/notices?lat=&lon=` lists the
announcements whose audience covers the position, which is not kept (bot/services/notices.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from bot.services.notices import NoticeService
from bot.services.reports import MAX_TEXT, InvalidReport, ReportLimitReached, ReportTooSoon
from bot.services.web_reports import DeviceReport, InvalidDeviceToken, WebReportService, check_token
from bot.web import params
from bot.web.admission import RateLimited, client_address
from bot.web.keys import ADMISSION, CLOCK, CORE, NEARBY
from bot.web.responses import ApiError, BadParameter, NotFound, json_response
from domain.values import GeoPoint, InvalidLocation, StationNotFound

API_PREFIX = "/api/v1"
#: A report's body is a few short fields; anything bigger is refused before it is parsed.
MAX_BODY = 16 * 1024
MAX_CODE = 64
#: The longest proposal a report carries (opening hours, a position).
MAX_DETAIL = 500
MAX_REPORT_ID = 2**63 - 1

WEB_REPORTS: web.AppKey[WebReportService] = web.AppKey("web_reports", WebReportService)
NOTICES: web.AppKey[NoticeService] = web.AppKey("notices", NoticeService)

#: The parameter each refusal of the report service is about.
_PARAMETER_OF = {
    InvalidReport.KIND: "kind",
    InvalidReport.TOO_LONG: "text",
    InvalidReport.TEXT_MISSING: "text",
}


class InvalidReportBody(ApiError):
    """The report cannot be taken as it is; `reason` is the service's code (`InvalidReport`)."""

    status = 400
    code = "invalid_report"

    def __init__(self, reason: str, parameter: str, message: str) -> None:
        super().__init__(message, parameter=parameter)
        self.reason = reason

    def as_json(self) -> dict[str, Any]:
        body = super().as_json()
        body["error"]["reason"] = self.reason
        return body


class UnknownStation(ApiError):
    status = 404
    code = "unknown_station"

    def __init__(self, code: str) -> None:
        super().__init__(f"no station with code {code!r} takes reports", parameter="station")


class ReportTooSoonError(ApiError):
    status = 429
    code = "report_too_soon"

    def __init__(self, error: ReportTooSoon) -> None:
        super().__init__("one report per station per hour from one browser", parameter="station")
        self.headers = {"Retry-After": str(max(1, math.ceil(error.retry_after.total_seconds())))}


class ReportLimitError(ApiError):
    status = 429
    code = "report_limit"

    def __init__(self, error: ReportLimitReached) -> None:
        super().__init__(str(error))


def _string(body: dict[str, Any], name: str, *, required: bool = False, longest: int) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise BadParameter(name, f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise BadParameter(name, f"{name} must be a string")
    if len(value) > longest:
        if name == "text":
            raise InvalidReportBody(
                InvalidReport.TOO_LONG, name, f"the text is longer than {MAX_TEXT} characters"
            )
        raise BadParameter(name, f"{name} is longer than {longest} characters")
    return value


def _point(body: dict[str, Any]) -> GeoPoint | None:
    """Where the browser says it is (both `lat` and `lon`, or neither)."""
    lat, lon = body.get("lat"), body.get("lon")
    if lat is None and lon is None:
        return None
    for name, value in (("lat", lat), ("lon", lon)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadParameter(name, f"{name} must be a number (lat and lon come together)")
    try:
        return GeoPoint.parse(str(lat), str(lon))
    except InvalidLocation as exc:
        raise BadParameter("lat", exc.reason) from None


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    # Read already, within HTTP_BODY_TIMEOUT and aiohttp's client_max_size (bot/web/app.py).
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError("the body must be a JSON object")
    return body


def report_json(report: DeviceReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "station": {"code": report.station_code, "name": report.station_name},
        "kind": report.kind,
        "status": report.status,
        "created_at": report.created_at.isoformat(),
        "decided_at": report.decided_at.isoformat() if report.decided_at else None,
    }


def _device(value: str | None) -> str:
    """The `device` parameter of a request that follows or forgets a browser's reports, checked."""
    if not value:
        raise BadParameter("device", "device is required: the token the first report answered with")
    try:
        return check_token(value.strip())
    except InvalidDeviceToken as exc:
        raise BadParameter("device", str(exc)) from None


async def submit_report(request: web.Request) -> web.Response:
    app = request.app
    limiter = app[CORE].web_report_limiter
    if limiter is not None:
        decision = await limiter.check(client_address(request, app[ADMISSION].trusted))
        if not decision.allowed:
            raise RateLimited(decision)
    body = await _json_object(request)
    station = _string(body, "station", required=True, longest=MAX_CODE)
    kind = _string(body, "kind", required=True, longest=32)
    detail = _string(body, "detail", longest=MAX_DETAIL)
    text = _string(body, "text", longest=MAX_TEXT)
    device = body.get("device")
    if device is not None and not isinstance(device, str):
        raise BadParameter("device", "device must be a string")
    point = _point(body)
    try:
        receipt = await app[WEB_REPORTS].submit(
            device or None, station, kind, app[CLOCK](), detail=detail, text=text, point=point
        )
    except InvalidDeviceToken as exc:
        raise BadParameter("device", str(exc)) from None
    except StationNotFound:
        raise UnknownStation(station) from None
    except InvalidReport as exc:
        raise InvalidReportBody(exc.code, _PARAMETER_OF.get(exc.code, "detail"), exc.reason) from None
    except ReportTooSoon as exc:
        raise ReportTooSoonError(exc) from None
    except ReportLimitReached as exc:
        raise ReportLimitError(exc) from None
    return json_response({"report": report_json(receipt.report), "device": receipt.new_token}, status=201)


async def device_reports(request: web.Request) -> web.Response:
    reports = await request.app[WEB_REPORTS].reports_of(_device(request.query.get("device")))
    return json_response({"reports": [report_json(report) for report in reports]})


async def forget_device(request: web.Request) -> web.Response:
    """The page's "forget": the browser's reports are unlinked from its token, which is deleted."""
    unlinked = await request.app[WEB_REPORTS].forget(_device(request.query.get("device")))
    if unlinked is None:
        raise NotFound("no such device: nothing is kept for this token")
    return json_response({"forgotten": unlinked})


async def device_report(request: web.Request) -> web.Response:
    raw_id = request.match_info["id"]
    token = _device(request.query.get("device"))
    report_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 19 else 0
    if not 1 <= report_id <= MAX_REPORT_ID:
        raise NotFound(f"no report {raw_id[:20]!r}")
    report = await request.app[WEB_REPORTS].report(token, report_id)
    if report is None:
        raise NotFound(f"no report {report_id} of this device")
    return json_response({"report": report_json(report)})


async def notices(request: web.Request) -> web.Response:
    app = request.app
    point = params.required_point(request.query)
    crs = params.crs(request.query)
    try:
        point = app[NEARBY].to_wgs84(point, crs)
    except InvalidLocation as exc:
        raise BadParameter("crs", exc.reason) from None
    found = await app[NOTICES].covering(point, app[CLOCK]())
    # Depends on the position: no shared cache may keep it.
    return json_response({"notices": [notice.as_json() for notice in found]}, cache="no-store")


def add_routes(app: web.Application) -> None:
    core = app[CORE]
    app[WEB_REPORTS] = WebReportService(core.sessions, core.reports, core.stations)
    app[NOTICES] = NoticeService(core.sessions, core.stations.regions)
    app.router.add_post(f"{API_PREFIX}/reports", submit_report, name="report_submit")
    app.router.add_get(f"{API_PREFIX}/reports", device_reports, name="device_reports")
    app.router.add_delete(f"{API_PREFIX}/reports", forget_device, name="device_forget")
    app.router.add_get(f"{API_PREFIX}/reports/{{id}}", device_report, name="device_report")
    app.router.add_get(f"{API_PREFIX}/notices", notices, name="notices")
