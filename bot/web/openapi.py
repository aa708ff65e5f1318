"""The OpenAPI 3.1 description of API v1, served at /api/v1/openapi.json.

Written as data next to the handlers rather than generated from them, so that it reads as the contract
partners code against; tests check that it is a valid document, that every route of the app is in it and
that real answers match its schemas. Enumerations (amenity keys, statuses, coordinate systems) and limits
come from the code, so they cannot disagree with it.
"""

from __future__ import annotations

import functools
from typing import Any

from bot.web.api import API_PREFIX, DEFAULT_K, DEFAULT_SYNC_LIMIT, MAX_K, MAX_SYNC_LIMIT
from bot.web.openapi_h5 import REPORT_REASONS, h5_paths, h5_schemas
from bot.web.openapi_usage import usage_paths, usage_schemas
from bot.web.params import EARLIEST_AT, LATEST_AT
from bot.web.responses import json_body
from domain.clock import DEFAULT_TZ
from domain.values import AMENITY_KEYS, AMENITY_LABELS_ZH, CRS, StationStatus

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


_DATE_TIME = {"type": "string", "format": "date-time"}
_LAT = {"type": "number", "minimum": -90, "maximum": 90, "description": "WGS-84 latitude, degrees"}
_LON = {"type": "number", "minimum": -180, "maximum": 180, "description": "WGS-84 longitude, degrees"}
_AMENITIES = {"type": "array", "items": _ref("Amenity")}
_OPEN_NOW = {
    "type": ["boolean", "null"],
    "description": "Open at the instant; null when the opening hours are unknown. A station that is not "
    "active is never open.",
}
_CLOSURE_REPORTS = {
    "type": ["object", "null"],
    "required": ["count", "last_at"],
    "properties": {
        "count": {"type": "integer", "minimum": 1, "description": "People who reported it closed"},
        "last_at": {**_DATE_TIME, "description": "The latest such report, in the station's timezone"},
    },
    "additionalProperties": False,
    "description": "Closure reports of the last 24 hours that weigh something (made on site by trusted "
    "reporters) on a station still listed, while staff have not decided; null when there are none.",
}
_NEXT_CHANGE = {
    **_nullable(_DATE_TIME),
    "description": "When the opening-hours state changes next, in the station's timezone; null when it "
    "never does (24/7) or is unknown.",
}

_STATION_PROPERTIES: dict[str, Any] = {
    "code": {"type": "string", "description": "The union's station number (unique)"},
    "name": {"type": "string"},
    "address": {"type": "string"},
    "lat": _LAT,
    "lon": _LON,
    "region": {"type": "string", "description": "6-digit administrative division code (adcode), or empty"},
    "host": {"type": "string", "description": "The organisation hosting the station"},
    "opening_hours": {
        "type": "string",
        "description": "OpenStreetMap opening_hours syntax; empty means unknown. PH = public holidays.",
    },
    "amenities": _AMENITIES,
    "phone": {"type": "string"},
    "manager": {"type": "string"},
    "status": _ref("Status"),
    "timezone": {
        "type": ["string", "null"],
        "description": f"IANA timezone of the opening hours; null means the service default ({DEFAULT_TZ})",
    },
    "verified_at": _nullable(_DATE_TIME),
    "created_at": _DATE_TIME,
    "updated_at": _DATE_TIME,
}

_NEARBY_RESULT_PROPERTIES: dict[str, Any] = {
    "code": {"type": "string"},
    "name": {"type": "string"},
    "address": {"type": "string"},
    "lat": _LAT,
    "lon": _LON,
    "distance_m": {
        "type": "integer",
        "minimum": 0,
        "description": "WGS-84 geodesic distance from the query point, metres",
    },
    "open_now": _OPEN_NOW,
    "next_change": _NEXT_CHANGE,
    "opening_hours": {"type": "string"},
    "amenities": _AMENITIES,
    "phone": {"type": "string"},
    "status": _ref("Status"),
}

# The GeoJSON properties are the export's columns, so that a downloaded file re-imports unchanged.
_FEATURE_PROPERTIES: dict[str, Any] = {
    "code": {"type": "string"},
    "name": {"type": "string"},
    "address": {"type": "string"},
    "lat": _LAT,
    "lon": _LON,
    "opening_hours": {"type": "string"},
    "amenities": _AMENITIES,
    "phone": {"type": "string"},
    "manager": {"type": "string"},
    "host": {"type": "string"},
    "region": {"type": "string"},
    "status": _ref("Status"),
    "timezone": {"type": ["string", "null"]},
    "verified_at": _nullable(_DATE_TIME),
    "opening_hours_text": {
        "type": "string",
        "description": "The hours as the source wrote them (周一至周五 9:00-17:00) when opening_hours is "
        "their translation; empty otherwise",
    },
}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


_HHMM = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"}
_WEEK = {
    "type": ["object", "null"],
    "required": ["today", "days"],
    "properties": {
        "today": {"type": "string", "format": "date", "description": "The station's local date now"},
        "days": {
            "type": "array",
            "minItems": 7,
            "maxItems": 7,
            "items": _object(
                {
                    "date": {"type": "string", "format": "date"},
                    "intervals": {
                        "type": "array",
                        "items": _object(
                            {
                                "start": _HHMM,
                                "end": {**_HHMM, "description": "24:00 means until midnight"},
                                "state": {"type": "string", "enum": ["open", "unknown"]},
                            }
                        ),
                        "description": "Open (or unknown) times of the day; empty on a day off",
                    },
                }
            ),
        },
    },
    "additionalProperties": False,
    "description": "The week holding the instant, Monday to Sunday, in the station's timezone, public "
    "holidays applied; null when the opening hours are unknown.",
}


def _json(schema_name: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }
    if headers:
        response["headers"] = headers
    return response


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description, **extra}


_BAD_PARAMETER = {"$ref": "#/components/responses/BadParameter"}
_NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
_CACHE = {"Cache-Control": {"schema": {"type": "string"}, "description": "Caching rule of this answer"}}


def build_openapi() -> dict[str, Any]:
    statuses = [s.value for s in StationStatus]
    amenity_list = ", ".join(f"`{key}` {label}" for key, label in AMENITY_LABELS_ZH.items())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "yizhan API",
            "version": "1.0.0",
            "summary": "China's trade-union service stations for outdoor workers (工会驿站), open now.",
            "description": (
                "A public JSON API over the station network (read-only but for the reports the H5 page "
                "sends). Coordinates are WGS-84 unless a "
                "`crs` parameter says otherwise (GCJ-02 as Amap and Tencent publish, BD-09 as Baidu does); "
                'answers are always WGS-84. Every error is `{"error": {"code", "message", '
                '"parameter"?}}`; every /api/v1 answer carries `Access-Control-Allow-Origin: *`.'
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "stations", "description": "Finding and synchronising stations"},
            {"name": "meta", "description": "This document and the health check"},
            {"name": "h5", "description": "What the H5 page asks for: its strings, reports, notices"},
        ],
        "paths": {
            f"{API_PREFIX}/stations/nearby": {
                "get": {
                    "tags": ["stations"],
                    "operationId": "nearbyStations",
                    "summary": "The nearest stations open at an instant",
                    "description": (
                        "The k nearest active stations open at `at` that have every amenity asked for, "
                        "nearest first (WGS-84 geodesic distance). With `include_closed`, the k nearest "
                        "active or temporarily closed stations whatever their hours. The same answer as "
                        "`yizhan nearby --json`."
                    ),
                    "parameters": [
                        _query(
                            "lat",
                            {"type": "number", "minimum": -90, "maximum": 90},
                            "Latitude",
                            required=True,
                        ),
                        _query(
                            "lon",
                            {"type": "number", "minimum": -180, "maximum": 180},
                            "Longitude",
                            required=True,
                        ),
                        _query(
                            "k",
                            {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K},
                            "How many stations",
                        ),
                        _query(
                            "amenity",
                            {"type": "array", "items": _ref("Amenity")},
                            "Amenities every result must have; repeat the parameter or separate keys with "
                            f"commas. Keys: {amenity_list}.",
                            style="form",
                            explode=True,
                        ),
                        _query(
                            "include_closed",
                            {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
                            "Also stations closed at the instant or temporarily closed",
                        ),
                        _query(
                            "crs",
                            {"type": "string", "enum": [c.value for c in CRS], "default": CRS.WGS84.value},
                            "Coordinate system of lat/lon; GCJ-02 and BD-09 points must lie in China",
                        ),
                        _query(
                            "at",
                            {"type": "string", "format": "date-time"},
                            "ISO 8601 instant to evaluate opening hours at (default: now); without an offset "
                            f"it is Beijing time. Between {EARLIEST_AT.year} and {LATEST_AT.year - 1}.",
                        ),
                        {
                            "name": "X-Yizhan-Channel",
                            "in": "header",
                            "schema": {"type": "string", "enum": ["h5"]},
                            "description": (
                                "`h5` from the H5 page. A search without `at` is counted for the union's "
                                "demand reports by coarse cell (~0.7 km²) and channel: never the position, "
                                "never the client."
                            ),
                        },
                    ],
                    "responses": {
                        "200": _json("NearbyResponse", "The stations, nearest first", _CACHE),
                        "400": _BAD_PARAMETER,
                    },
                }
            },
            f"{API_PREFIX}/stations/{{code}}": {
                "get": {
                    "tags": ["stations"],
                    "operationId": "getStation",
                    "summary": "One station, with whether it is open now",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 64},
                            "description": "The station's code",
                        }
                    ],
                    "responses": {
                        "200": _json(
                            "StationDetail", "The station (closed ones too, with status closed)", _CACHE
                        ),
                        "404": _NOT_FOUND,
                    },
                }
            },
            f"{API_PREFIX}/stations": {
                "get": {
                    "tags": ["stations"],
                    "operationId": "syncStations",
                    "summary": "Stations changed since an instant, for keeping a copy in step",
                    "description": (
                        "Stations changed after `since` (all when absent), closed ones included so that "
                        "copies remove them, ordered by (updated_at, code key). Follow `next_cursor` until "
                        "it is null, then sync next time with `since` = the `server_time` of the last page: "
                        "it is read before the query and never later than the start of a write still in "
                        "progress, so no change is missed, however long the transaction that made it (a "
                        "change may come twice; apply changes by code)."
                    ),
                    "parameters": [
                        _query(
                            "bbox",
                            {"type": "string", "pattern": r"^[^,]+,[^,]+,[^,]+,[^,]+$"},
                            "minLon,minLat,maxLon,maxLat (WGS-84, edges included)",
                            example="113.2,23.0,113.4,23.2",
                        ),
                        _query("since", {"type": "string", "format": "date-time"}, "ISO 8601 with an offset"),
                        _query(
                            "limit",
                            {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_SYNC_LIMIT,
                                "default": DEFAULT_SYNC_LIMIT,
                            },
                            "Most stations in one page",
                        ),
                        _query("cursor", {"type": "string"}, "`next_cursor` of the previous page (opaque)"),
                    ],
                    "responses": {
                        "200": _json("SyncPage", "One page of changed stations", _CACHE),
                        "400": _BAD_PARAMETER,
                    },
                }
            },
            f"{API_PREFIX}/stations.geojson": {
                "get": {
                    "tags": ["stations"],
                    "operationId": "networkGeoJSON",
                    "summary": "The whole network (active and temporarily closed) as GeoJSON",
                    "description": (
                        "A FeatureCollection of Points ([lon, lat], WGS-84) whose properties are the "
                        "export columns. Revalidate with If-None-Match; gzip is served when accepted."
                    ),
                    "parameters": [
                        {
                            "name": "If-None-Match",
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "ETag of a copy held",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The network",
                            "headers": {
                                "ETag": {"schema": {"type": "string"}, "description": "Strong validator"},
                                **_CACHE,
                            },
                            "content": {"application/geo+json": {"schema": _ref("FeatureCollection")}},
                        },
                        "304": {"description": "The copy held is current"},
                    },
                }
            },
            f"{API_PREFIX}/openapi.json": {
                "get": {
                    "tags": ["meta"],
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/healthz": {
                "get": {
                    "tags": ["meta"],
                    "operationId": "health",
                    "summary": "Readiness: database, Redis and the search index",
                    "responses": {
                        "200": _json("Health", "Healthy"),
                        "503": _json("Health", "Not ready: the database or Redis does not answer"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "tags": ["meta"],
                    "operationId": "metrics",
                    "summary": "This process's Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            **h5_paths(),
            **usage_paths(),
        },
        "components": {
            "schemas": {
                **h5_schemas(),
                **usage_schemas(),
                "Amenity": {"type": "string", "enum": list(AMENITY_KEYS)},
                "Status": {
                    "type": "string",
                    "enum": statuses,
                    "description": "closed = left the network (kept for history)",
                },
                "Station": _object(_STATION_PROPERTIES, "A station with every stored field"),
                "StationDetail": _object(
                    {
                        **_STATION_PROPERTIES,
                        "open_now": _OPEN_NOW,
                        "next_change": _NEXT_CHANGE,
                        "closure_reports": _CLOSURE_REPORTS,
                        "week": _WEEK,
                    },
                    "A station and its state now",
                ),
                "NearbyResult": _object(_NEARBY_RESULT_PROPERTIES),
                "NearbyResponse": _object(
                    {
                        "query": _object(
                            {"lat": _LAT, "lon": _LON, "at": _DATE_TIME},
                            "The query point converted to WGS-84 and the instant used",
                        ),
                        "results": {"type": "array", "items": _ref("NearbyResult")},
                    }
                ),
                "SyncPage": _object(
                    {
                        "server_time": {
                            **_DATE_TIME,
                            "description": "Pass as `since` next time (after the last page)",
                        },
                        "stations": {"type": "array", "items": _ref("Station")},
                        "next_cursor": {
                            "type": ["string", "null"],
                            "description": "Pass as `cursor` for the next page; null on the last one",
                        },
                    }
                ),
                "Feature": _object(
                    {
                        "type": {"const": "Feature"},
                        "geometry": _object(
                            {
                                "type": {"const": "Point"},
                                "coordinates": {
                                    "type": "array",
                                    "prefixItems": [_LON, _LAT],
                                    "minItems": 2,
                                    "maxItems": 2,
                                },
                            }
                        ),
                        "properties": _object(_FEATURE_PROPERTIES),
                    }
                ),
                "FeatureCollection": _object(
                    {
                        "type": {"const": "FeatureCollection"},
                        "features": {"type": "array", "items": _ref("Feature")},
                    }
                ),
                "Health": _object(
                    {
                        "status": {"type": "string", "enum": ["ok", "error"]},
                        "stations": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "Stations in this process's search index",
                        },
                        "database": {"type": "string", "enum": ["ok", "error"]},
                        "redis": {
                            "type": "string",
                            "enum": ["ok", "error", "disabled"],
                            "description": "disabled: this deployment runs without REDIS_URL",
                        },
                        "index": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "Stations in this process's search index (as `stations`)",
                        },
                        "cached": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "Stations whose details this process holds in memory (filled in "
                            "the background after start-up; answers need no database read for them)",
                        },
                        "ready": {
                            "type": "boolean",
                            "description": "Database ok, index loaded, and Redis ok or disabled; HTTP 200 "
                            "exactly when true",
                        },
                    }
                ),
                "Error": _object(
                    {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "additionalProperties": False,
                            "properties": {
                                "code": {
                                    "type": "string",
                                    "description": "bad_parameter, not_found, method_not_allowed, "
                                    "internal_error, …",
                                },
                                "parameter": {"type": "string", "description": "The parameter at fault"},
                                "message": {"type": "string", "description": "What to fix, in English"},
                                "reason": {
                                    "type": "string",
                                    "enum": REPORT_REASONS,
                                    "description": "Of an invalid_report: what is wrong with it",
                                },
                            },
                        }
                    }
                ),
            },
            "responses": {
                "BadParameter": _json(
                    "Error", "A parameter is missing or invalid (`error.parameter` names it)"
                ),
                "NotFound": _json("Error", "No such station"),
            },
        },
    }


@functools.cache
def openapi_json() -> bytes:
    """The document encoded once per process (it only changes with the code)."""
    return json_body(build_openapi())
