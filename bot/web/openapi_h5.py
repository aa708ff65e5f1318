"""The OpenAPI description of what the H5 page asks for besides stations: its UI strings, reports sent
from the page and followed there, and the union's notices around a position (bot/web/reports_api.py,
bot/web/h5.py). `build_openapi` merges these paths and schemas into the one document."""

from __future__ import annotations

from typing import Any

from bot.i18n import LOCALES
from bot.services.reports import MAX_TEXT, InvalidReport, ReportKind
from bot.web.reports_api import API_PREFIX, MAX_CODE, MAX_DETAIL, MAX_REPORT_ID
from domain.statuses import CaseStatus
from domain.values import CRS

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }


_DATE_TIME = {"type": "string", "format": "date-time"}
_ERROR = _json("Error", "Refused: `error.code` says why, `error.parameter` names the field at fault")
_RETRY = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}
_DEVICE = {
    "name": "device",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{32,64}$"},
    "description": "The device token the browser's first report answered with",
}
_POINT = [
    {
        "name": "lat",
        "in": "query",
        "required": True,
        "schema": {"type": "number", "minimum": -90, "maximum": 90},
        "description": "Latitude",
    },
    {
        "name": "lon",
        "in": "query",
        "required": True,
        "schema": {"type": "number", "minimum": -180, "maximum": 180},
        "description": "Longitude",
    },
    {
        "name": "crs",
        "in": "query",
        "schema": {"type": "string", "enum": [c.value for c in CRS], "default": CRS.WGS84.value},
        "description": "Coordinate system of lat/lon",
    },
]


def h5_paths() -> dict[str, Any]:
    return {
        f"{API_PREFIX}/ui/{{locale}}.json": {
            "get": {
                "tags": ["h5"],
                "operationId": "uiStrings",
                "summary": "Everything the H5 page shows, in one language",
                "description": "The page's strings, amenity labels, weekdays, demo places, language names "
                "and the distance thresholds the bot uses, translated from the project's catalogues.",
                "parameters": [
                    {
                        "name": "locale",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": f"One of {', '.join(LOCALES)} (case and - or _ as you like)",
                    }
                ],
                "responses": {
                    "200": _json("UiCatalogue", "The catalogue"),
                    "404": _json("Error", "Not a locale the page speaks (`unknown_locale`)"),
                },
            }
        },
        f"{API_PREFIX}/reports": {
            "post": {
                "tags": ["h5"],
                "operationId": "submitReport",
                "summary": "Report a station's problem (as the bot takes reports)",
                "description": (
                    "Staff of the station's region see it as a case like any report. The first report of "
                    "a browser answers with a `device` token to keep (only its hash is stored) and send "
                    "with later reports and to follow them. `lat`/`lon` (WGS-84), where the browser is, "
                    "are used for its distance to the station and not kept; web reports weigh toward "
                    "hiding a station only as WEB_REPORT_WEIGHT says (nothing by default). Limits: one "
                    "report per station per hour and the daily limits per browser, and WEB_REPORT_RATE "
                    "per client address."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ReportRequest")}},
                },
                "responses": {
                    "201": _json("ReportReceipt", "Taken"),
                    "400": _ERROR,
                    "404": _json("Error", "No listed station with that code (`unknown_station`)"),
                    "413": _json("Error", "The body is too large"),
                    "429": {
                        **_json(
                            "Error", "Too many reports (`report_too_soon`, `report_limit`, `rate_limited`)"
                        ),
                        "headers": _RETRY,
                    },
                },
            },
            "get": {
                "tags": ["h5"],
                "operationId": "deviceReports",
                "summary": "A browser's reports and what became of them, newest first",
                "parameters": [_DEVICE],
                "responses": {
                    "200": _json("DeviceReports", "The reports (none for an unknown token)"),
                    "400": _ERROR,
                },
            },
            "delete": {
                "tags": ["h5"],
                "operationId": "forgetDevice",
                "summary": "Forget a browser: its reports are unlinked from its token, which is deleted",
                "description": (
                    "What the bot's /forget does for a rider, for a browser: the reports stay with staff "
                    "as cases, but nothing ties them to this browser any more, and the token no longer "
                    "lists them. A later report starts a new token."
                ),
                "parameters": [_DEVICE],
                "responses": {
                    "200": _json("Forgotten", "Forgotten"),
                    "400": _ERROR,
                    "404": _json("Error", "No such device (`not_found`): nothing is kept for this token"),
                },
            },
        },
        f"{API_PREFIX}/reports/{{id}}": {
            "get": {
                "tags": ["h5"],
                "operationId": "deviceReport",
                "summary": "One of a browser's reports and what became of it",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_REPORT_ID},
                        "description": "The report's id",
                    },
                    _DEVICE,
                ],
                "responses": {
                    "200": _json("DeviceReportAnswer", "The report"),
                    "400": _ERROR,
                    "404": _json("Error", "No such report of this browser"),
                },
            }
        },
        f"{API_PREFIX}/notices": {
            "get": {
                "tags": ["h5"],
                "operationId": "notices",
                "summary": "The union's announcements whose audience covers a position, newest first",
                "description": "Announcements sent in the last 30 days to a region holding the position, "
                "within their radius when they have one. The position is not kept.",
                "parameters": _POINT,
                "responses": {"200": _json("Notices", "The notices"), "400": _ERROR},
            }
        },
    }


def h5_schemas() -> dict[str, Any]:
    report = _object(
        {
            "id": {"type": "integer", "minimum": 1},
            "station": _object({"code": {"type": "string"}, "name": {"type": "string"}}),
            "kind": _ref("ReportKind"),
            "status": {
                "type": "string",
                "enum": [status.value for status in CaseStatus],
                "description": "open, needs_info (staff asked for details), approved or rejected",
            },
            "created_at": _DATE_TIME,
            "decided_at": {**_DATE_TIME, "type": ["string", "null"]},
        }
    )
    return {
        "ReportKind": {"type": "string", "enum": [kind.value for kind in ReportKind]},
        "ReportRequest": _object(
            {
                "station": {"type": "string", "minLength": 1, "maxLength": MAX_CODE},
                "kind": _ref("ReportKind"),
                "detail": {
                    "type": "string",
                    "maxLength": MAX_DETAIL,
                    "description": "amenity_broken: the amenity key; wrong_location: `lat,lon` of the "
                    "right place; wrong_hours: the right hours (OSM syntax, or Chinese: "
                    "周一至周五 9:00-18:00)",
                },
                "text": {"type": "string", "maxLength": MAX_TEXT, "description": "Required for other"},
                "device": {"type": "string", "description": "The token of an earlier report, if any"},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
            },
            required=["station", "kind"],
        ),
        "DeviceReport": report,
        "ReportReceipt": _object(
            {
                "report": _ref("DeviceReport"),
                "device": {
                    "type": ["string", "null"],
                    "description": "A new token for this browser to keep; null when it sent one",
                },
            }
        ),
        "DeviceReports": _object({"reports": {"type": "array", "items": _ref("DeviceReport")}}),
        "DeviceReportAnswer": _object({"report": _ref("DeviceReport")}),
        "Forgotten": _object(
            {
                "forgotten": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Reports unlinked from the browser",
                }
            }
        ),
        "Notices": _object(
            {
                "notices": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": {"type": "integer", "minimum": 1},
                            "text": {"type": "string", "description": "Plain text"},
                            "sent_at": _DATE_TIME,
                        }
                    ),
                }
            }
        ),
        "UiCatalogue": {
            "type": "object",
            "required": [
                "locale",
                "strings",
                "amenities",
                "weekdays",
                "places",
                "languages",
                "report_kinds",
                "distances",
            ],
            "properties": {
                "locale": {"type": "string", "enum": list(LOCALES)},
                "strings": {"type": "object", "additionalProperties": {"type": "string"}},
                "amenities": {"type": "object", "additionalProperties": {"type": "string"}},
                "weekdays": {"type": "array", "items": {"type": "string"}, "minItems": 7, "maxItems": 7},
                "places": {
                    "type": "array",
                    "items": _object(
                        {
                            "key": {"type": "string"},
                            "label": {"type": "string"},
                            "lat": {"type": "number"},
                            "lon": {"type": "number"},
                        }
                    ),
                },
                "languages": {"type": "object", "additionalProperties": {"type": "string"}},
                "report_kinds": {
                    "type": "array",
                    "items": _ref("ReportKind"),
                    "description": "The kinds of problem a report names, in the order the page offers them",
                },
                "distances": {"type": "object", "additionalProperties": {"type": "number"}},
            },
        },
    }


#: The `reason` of an `invalid_report` error.
REPORT_REASONS = [
    InvalidReport.KIND,
    InvalidReport.UNKNOWN_AMENITY,
    InvalidReport.AMENITY_NOT_LISTED,
    InvalidReport.LOCATION,
    InvalidReport.HOURS_MISSING,
    InvalidReport.HOURS,
    InvalidReport.TOO_LONG,
    InvalidReport.TEXT_MISSING,
]
